{{/* A Prometheus Operator ServiceMonitor for one component: (dict "ctx" $ "port" "metrics" "path" "/metrics"). */}}
{{- define "common.serviceMonitor" -}}
{{- $sm := .ctx.Values.global.serviceMonitor -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "common.fullname" .ctx }}
  namespace: {{ $sm.namespace | default .ctx.Release.Namespace }}
  labels:
    {{- include "common.labels" .ctx | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  jobLabel: app.kubernetes.io/name
  namespaceSelector:
    matchNames: [{{ .ctx.Release.Namespace | quote }}]
  selector:
    matchLabels:
      {{- include "common.selectorLabels" .ctx | nindent 6 }}
  endpoints:
    - port: {{ .port }}
      path: {{ .path }}
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
{{- end -}}
