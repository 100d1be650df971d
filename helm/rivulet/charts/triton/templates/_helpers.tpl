{{/* Identifies one model-repository build: the copied models, the builds, the builder image and the revision. */}}
{{- define "triton.buildId" -}}
{{- $img := include "common.image" (dict "image" .Values.modelBuilder.image "ctx" .) -}}
{{- printf "%s|%s|%s|%s" (toJson .Values.modelBuilder.models) (toJson .Values.modelBuilder.builds) $img (toString .Values.modelBuilder.revision) | sha256sum | trunc 10 -}}
{{- end -}}

{{/* The file the model builder writes last; Triton waits for it before it starts. */}}
{{- define "triton.readyMarker" -}}
{{- printf "%s/.rivulet-build-%s" .Values.modelRepository.mountPath (include "triton.buildId" .) -}}
{{- end -}}

{{- define "triton.claimName" -}}
{{- .Values.modelRepository.existingClaim | default (printf "%s-models" (include "common.fullname" .)) -}}
{{- end -}}
