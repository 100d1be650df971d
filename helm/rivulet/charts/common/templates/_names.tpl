{{/*
Names and labels shared by every Rivulet chart. Templates are global in Helm, so subcharts call
these although only the umbrella chart lists `common` as a dependency.
*/}}

{{/* "<release>-<chart>", at most 63 characters. */}}
{{- define "common.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The fullname of a sibling component: (dict "ctx" $ "name" "triton"). */}}
{{- define "common.componentName" -}}
{{- printf "%s-%s" .ctx.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select one component's pods. */}}
{{- define "common.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every object's labels. */}}
{{- define "common.labels" -}}
{{ include "common.selectorLabels" . }}
app.kubernetes.io/part-of: rivulet
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | default .Chart.Version | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* registry/repository:tag (or @digest); registry from the component, else global.imageRegistry. */}}
{{- define "common.image" -}}
{{- $img := .image -}}
{{- $registry := $img.registry | default ((.ctx.Values.global).imageRegistry) | default "" -}}
{{- $ref := ternary (printf "@%s" $img.digest) (printf ":%s" ($img.tag | default .ctx.Chart.AppVersion)) (not (empty $img.digest)) -}}
{{- if $registry -}}
{{- printf "%s/%s%s" $registry $img.repository $ref -}}
{{- else -}}
{{- printf "%s%s" $img.repository $ref -}}
{{- end -}}
{{- end -}}

{{- define "common.imagePullSecrets" -}}
{{- $secrets := concat (((.Values.global).imagePullSecrets) | default list) (.Values.imagePullSecrets | default list) -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secret holding the Redis password and its key (shared by the redis chart and its clients). */}}
{{- define "common.redis.secretName" -}}
{{- ((.Values.global).redis).existingSecret | default (include "common.componentName" (dict "ctx" . "name" "redis")) -}}
{{- end -}}

{{- define "common.redis.secretKey" -}}
{{- ((.Values.global).redis).existingSecretPasswordKey | default "redis-password" -}}
{{- end -}}

{{/* Pod labels that NetworkPolicies of Triton and Redis admit. */}}
{{- define "common.clientLabels" -}}
{{- with .Values.needs }}
{{- if .triton }}
rivulet.ai/triton-client: "true"
{{- end }}
{{- if .redis }}
rivulet.ai/redis-client: "true"
{{- end }}
{{- if .grpcServices }}
rivulet.ai/grpc-client: "true"
{{- end }}
{{- end }}
{{- end -}}
