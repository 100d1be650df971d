{{/*
One Rivulet gRPC service (NLU, ASR, TTS, Dialog): Deployment, Service, HorizontalPodAutoscaler,
PodDisruptionBudget, NetworkPolicy and (optional) ServiceMonitor. A service chart's only template is

    {{ include "common.grpcService" . }}

and its values.yaml has the block documented in charts/nlu/values.yaml.
*/}}
{{- define "common.grpcService" -}}
{{ include "common.grpcService.deployment" . }}
---
{{ include "common.grpcService.service" . }}
{{- if .Values.autoscaling.enabled }}
---
{{ include "common.grpcService.hpa" . }}
{{- end }}
{{- if .Values.pdb.enabled }}
---
{{ include "common.grpcService.pdb" . }}
{{- end }}
{{- if ((.Values.global).networkPolicy).enabled }}
---
{{ include "common.grpcService.networkPolicy" . }}
{{- end }}
{{- if ((.Values.global).serviceMonitor).enabled }}
---
{{ include "common.serviceMonitor" (dict "ctx" . "port" "metrics" "path" "/metrics") }}
{{- end }}
{{- end -}}

{{/* Fails the render with a clear message when autoscaling.minReplicas > maxReplicas (JSON schema cannot compare). */}}
{{- define "common.checkReplicaRange" -}}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) -}}
{{- fail (printf "%s: autoscaling.minReplicas (%d) must not be greater than autoscaling.maxReplicas (%d)" .Chart.Name (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- end -}}

{{/* Seconds a pod gets between SIGTERM and SIGKILL: preStop pause + the service's own drain + margin. */}}
{{- define "common.grpcService.terminationGrace" -}}
{{- add .Values.preStopSleepSeconds .Values.shutdownGraceSeconds 10 -}}
{{- end -}}

{{/*
The address a service dials for one entry of `calls`: the entry's own `address` (a service outside
this release), else the ClusterIP Service of this release's chart named `service`, <release>-<service>:<port>.
*/}}
{{- define "common.grpcService.callAddress" -}}
{{- .call.address | default (printf "%s:%d" (include "common.componentName" (dict "ctx" .ctx "name" .call.service)) (int .call.port)) -}}
{{- end -}}

{{/* Fails the render when a service calls other services without the label their NetworkPolicies admit. */}}
{{- define "common.checkCalls" -}}
{{- if and .Values.calls (not .Values.needs.grpcServices) -}}
{{- fail (printf "%s: calls lists gRPC services to call, so needs.grpcServices must be true (it sets the rivulet.ai/grpc-client label their NetworkPolicies admit)" .Chart.Name) -}}
{{- end -}}
{{- end -}}

{{/* TLS and API keys (global.tls, global.auth): the Secrets' mount paths, and a render error that says
what to set when a required Secret name is missing. */}}
{{- define "common.security.tlsDir" -}}/etc/rivulet/tls{{- end -}}
{{/* "true" when Redis serves TLS: global.tls on and its `redis` switch not turned off. */}}
{{- define "common.redis.tls" -}}
{{- $tls := (.Values.global).tls | default dict -}}
{{- if and $tls.enabled (ne (toString $tls.redis) "false") }}true{{ end -}}
{{- end -}}
{{/* "true" when Triton's gRPC endpoint serves TLS: global.tls on and its `triton` switch not off. */}}
{{- define "common.triton.tls" -}}
{{- $tls := (.Values.global).tls | default dict -}}
{{- if and $tls.enabled (ne (toString $tls.triton) "false") }}true{{ end -}}
{{- end -}}
{{/* The query a rediss:// URL needs: the CA to trust, and the client certificate under mutual TLS. */}}
{{- define "common.redis.tlsQuery" -}}
{{- $dir := include "common.security.tlsDir" . -}}
?ssl_ca_certs={{ $dir }}/ca.crt{{ if ((.Values.global).tls).mutual }}&ssl_certfile={{ $dir }}/tls.crt&ssl_keyfile={{ $dir }}/tls.key{{ end }}
{{- end -}}
{{- define "common.security.authDir" -}}/etc/rivulet/auth{{- end -}}
{{- define "common.checkSecurity" -}}
{{- $tls := (.Values.global).tls | default dict -}}
{{- $auth := (.Values.global).auth | default dict -}}
{{- if and $tls.enabled (not $tls.secretName) -}}
{{- fail "global.tls.enabled needs global.tls.secretName: a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt" -}}
{{- end -}}
{{- if and $auth.enabled (not $auth.existingSecret) -}}
{{- fail "global.auth.enabled needs global.auth.existingSecret: a Secret holding the hashed keys file (python -m rivulet.core.apikeys)" -}}
{{- end -}}
{{- end -}}

{{/* Environment variables for TLS and API keys (a list of EnvVar, indented by the caller). */}}
{{- define "common.security.env" -}}
{{- $tls := (.Values.global).tls | default dict -}}
{{- $auth := (.Values.global).auth | default dict -}}
{{- $dir := include "common.security.tlsDir" . -}}
{{- if $tls.enabled }}
- name: RIVULET_TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" $dir | quote }}
- name: RIVULET_TLS_KEY_FILE
  value: {{ printf "%s/tls.key" $dir | quote }}
- name: RIVULET_HEALTH_PORT
  value: {{ $tls.healthPort | quote }}
{{- if $tls.mutual }}
- name: RIVULET_TLS_CLIENT_CA_FILE
  value: {{ printf "%s/ca.crt" $dir | quote }}
{{- end }}
{{- if .Values.calls }}
- name: RIVULET_CLIENT_TLS
  value: "true"
- name: RIVULET_CLIENT_TLS_CA_FILE
  value: {{ printf "%s/ca.crt" $dir | quote }}
{{- if $tls.mutual }}
- name: RIVULET_CLIENT_TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" $dir | quote }}
- name: RIVULET_CLIENT_TLS_KEY_FILE
  value: {{ printf "%s/tls.key" $dir | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.needs.triton (include "common.triton.tls" .) }}
- name: RIVULET_TRITON_TLS
  value: "true"
- name: RIVULET_TRITON_TLS_CA_FILE
  value: {{ printf "%s/ca.crt" $dir | quote }}
{{- if $tls.mutual }}
- name: RIVULET_TRITON_TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" $dir | quote }}
- name: RIVULET_TRITON_TLS_KEY_FILE
  value: {{ printf "%s/tls.key" $dir | quote }}
{{- end }}
{{- end }}
{{- if $auth.enabled }}
- name: RIVULET_AUTH_KEYS_FILE
  value: {{ printf "%s/%s" (include "common.security.authDir" .) $auth.secretKey | quote }}
- name: RIVULET_AUTH_OPEN_HEALTH
  value: {{ $auth.openHealth | quote }}
- name: RIVULET_AUTH_OPEN_REFLECTION
  value: {{ $auth.openReflection | quote }}
- name: RIVULET_AUTH_DEFAULT_MAX_STREAMS
  value: {{ $auth.defaultMaxStreams | default 0 | quote }}
- name: RIVULET_AUTH_DEFAULT_REQUESTS_PER_S
  value: {{ $auth.defaultRequestsPerSecond | default 0 | quote }}
{{- if and .Values.calls $auth.internalKeySecret }}
- name: RIVULET_CLIENT_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $auth.internalKeySecret }}
      key: {{ $auth.internalKeySecretKey | default "api-key" }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "common.grpcService.deployment" -}}
{{- include "common.checkCalls" . -}}
{{- include "common.checkSecurity" . -}}
{{- $tls := (.Values.global).tls | default dict -}}
{{- $auth := (.Values.global).auth | default dict -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "common.labels" . | nindent 4 }}
    app.kubernetes.io/component: grpc-service
  annotations:
    # Read by `python -m rivulet.clustercheck` to health-check the pods of this Deployment.
    rivulet.ai/grpc-service: {{ .Values.grpcServiceName | quote }}
    rivulet.ai/grpc-port: {{ .Values.containerPorts.grpc | quote }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
  selector:
    matchLabels:
      {{- include "common.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "common.labels" . | nindent 8 }}
        app.kubernetes.io/component: grpc-service
        {{- include "common.clientLabels" . | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        rivulet.ai/grpc-service: {{ .Values.grpcServiceName | quote }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with include "common.imagePullSecrets" . | trim }}{{ . | nindent 6 }}{{ end }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ include "common.grpcService.terminationGrace" . }}
      securityContext:
        {{- include "common.podSecurityContext" .Values.podSecurityContext | nindent 8 }}
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        {{- include "common.topologySpread" . | nindent 8 }}
      containers:
        - name: {{ .Chart.Name }}
          image: {{ include "common.image" (dict "image" .Values.image "ctx" .) | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - name: grpc
              containerPort: {{ .Values.containerPorts.grpc }}
              protocol: TCP
            - name: metrics
              containerPort: {{ .Values.containerPorts.metrics }}
              protocol: TCP
            {{- if $tls.enabled }}
            - name: health
              containerPort: {{ $tls.healthPort }}
              protocol: TCP
            {{- end }}
          env:
            - name: RIVULET_GRPC_PORT
              value: {{ .Values.containerPorts.grpc | quote }}
            - name: RIVULET_METRICS_PORT
              value: {{ .Values.containerPorts.metrics | quote }}
            - name: RIVULET_LOG_LEVEL
              value: {{ .Values.logLevel | quote }}
            - name: RIVULET_SHUTDOWN_GRACE_S
              value: {{ .Values.shutdownGraceSeconds | quote }}
            {{- if .Values.needs.triton }}
            - name: RIVULET_TRITON_URL
              value: {{ printf "%s:%d" (include "common.componentName" (dict "ctx" . "name" "triton")) (int .Values.tritonGrpcPort) | quote }}
            {{- end }}
            {{- if .Values.needs.redis }}
            - name: RIVULET_REDIS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "common.redis.secretName" . }}
                  key: {{ include "common.redis.secretKey" . }}
            - name: RIVULET_REDIS_URL
              {{- if include "common.redis.tls" . }}
              value: {{ printf "rediss://:$(RIVULET_REDIS_PASSWORD)@%s:%d/%d%s" (include "common.componentName" (dict "ctx" . "name" "redis")) (int .Values.redisPort) (int .Values.redisDatabase) (include "common.redis.tlsQuery" .) | quote }}
              {{- else }}
              value: {{ printf "redis://:$(RIVULET_REDIS_PASSWORD)@%s:%d/%d" (include "common.componentName" (dict "ctx" . "name" "redis")) (int .Values.redisPort) (int .Values.redisDatabase) | quote }}
              {{- end }}
            {{- end }}
            {{- range .Values.calls }}
            - name: {{ .env }}
              value: {{ include "common.grpcService.callAddress" (dict "ctx" $ "call" .) | quote }}
            {{- end }}
            {{- if (.Values.modelRepository).mount }}
            - name: RIVULET_ASR_MODEL_REPOSITORY
              value: {{ .Values.modelRepository.mountPath | quote }}
            {{- end }}
            {{- with include "common.security.env" . | trim }}{{ . | nindent 12 }}{{ end }}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- /* Liveness and startup check that the server accepts connections; readiness asks the
                 gRPC health service, which says NOT_SERVING until Triton's models are ready. A
                 Triton outage therefore takes pods out of the Service without restarting them. */}}
          startupProbe:
            tcpSocket:
              port: grpc
            periodSeconds: {{ .Values.probes.startup.periodSeconds }}
            timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
            failureThreshold: {{ .Values.probes.startup.failureThreshold }}
          readinessProbe:
            grpc:
              {{- /* with TLS on, the kubelet (which cannot speak TLS) asks the plain-text health port */}}
              port: {{ ternary $tls.healthPort .Values.containerPorts.grpc (and $tls.enabled true) }}
              service: {{ .Values.grpcServiceName | quote }}
            periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
            successThreshold: 1
          livenessProbe:
            tcpSocket:
              port: grpc
            periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
          lifecycle:
            preStop:
              # Let endpoints controllers and the ingress drop this pod before SIGTERM starts the drain.
              exec:
                command: ["sleep", {{ .Values.preStopSleepSeconds | quote }}]
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- include "common.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if (.Values.modelRepository).mount }}
            - name: model-repository
              mountPath: {{ .Values.modelRepository.mountPath | quote }}
              readOnly: true
            {{- end }}
            {{- if $tls.enabled }}
            - name: tls
              mountPath: {{ include "common.security.tlsDir" . }}
              readOnly: true
            {{- end }}
            {{- if $auth.enabled }}
            - name: api-keys
              mountPath: {{ include "common.security.authDir" . }}
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $tls.enabled }}
        - name: tls
          secret:
            secretName: {{ $tls.secretName }}
            defaultMode: 0440
        {{- end }}
        {{- if $auth.enabled }}
        - name: api-keys
          secret:
            secretName: {{ $auth.existingSecret }}
            defaultMode: 0440
            items:
              - key: {{ $auth.secretKey }}
                path: {{ $auth.secretKey }}
        {{- end }}
        {{- if (.Values.modelRepository).mount }}
        - name: model-repository
          persistentVolumeClaim:
            claimName: {{ .Values.modelRepository.claimName | default (printf "%s-models" (include "common.componentName" (dict "ctx" . "name" "triton"))) | quote }}
            readOnly: true
        {{- end }}
{{- end -}}

{{- define "common.grpcService.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "common.labels" . | nindent 4 }}
    app.kubernetes.io/component: grpc-service
spec:
  type: ClusterIP
  selector:
    {{- include "common.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: {{ .Values.service.port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    - name: metrics
      port: {{ .Values.containerPorts.metrics }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
{{- end -}}

{{- define "common.grpcService.hpa" -}}
{{- include "common.checkReplicaRange" . -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "common.labels" . | nindent 4 }}
    app.kubernetes.io/component: grpc-service
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "common.fullname" . }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}
    {{- if .Values.autoscaling.inFlightStreams.enabled }}
    # Per-pod sum of the `rivulet_grpc_in_flight` gauge, served by prometheus-adapter (README).
    - type: Pods
      pods:
        metric:
          name: {{ .Values.autoscaling.inFlightStreams.metricName }}
        target:
          type: AverageValue
          averageValue: {{ .Values.autoscaling.inFlightStreams.averageValue | quote }}
    {{- end }}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - type: Percent
          value: 100
          periodSeconds: 30
    scaleDown:
      # Streams last long: shrink slowly so a scale-down does not cut off many conversations at once.
      stabilizationWindowSeconds: {{ .Values.autoscaling.scaleDownStabilizationSeconds }}
      policies:
        - type: Pods
          value: 1
          periodSeconds: 60
{{- end -}}

{{- define "common.grpcService.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "common.labels" . | nindent 4 }}
    app.kubernetes.io/component: grpc-service
spec:
  maxUnavailable: {{ .Values.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "common.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/*
Ingress to a service: its gRPC port from the ingress controller's namespace and from pods of this
release that call gRPC services (label rivulet.ai/grpc-client, e.g. Dialog); its metrics port
from the monitoring namespace.
*/}}
{{- define "common.grpcService.networkPolicy" -}}
{{- $np := .Values.global.networkPolicy -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "common.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "common.labels" . | nindent 4 }}
    app.kubernetes.io/component: grpc-service
spec:
  podSelector:
    matchLabels:
      {{- include "common.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress"]
  ingress:
    - ports:
        - port: grpc
          protocol: TCP
      from:
        - namespaceSelector:
            {{- toYaml $np.ingressControllerNamespaceSelector | nindent 12 }}
          {{- with $np.ingressControllerPodSelector }}
          podSelector:
            {{- toYaml . | nindent 12 }}
          {{- end }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/instance: {{ .Release.Name }}
              rivulet.ai/grpc-client: "true"
    - ports:
        - port: metrics
          protocol: TCP
      from:
        - namespaceSelector:
            {{- toYaml $np.monitoringNamespaceSelector | nindent 12 }}
{{- end -}}
