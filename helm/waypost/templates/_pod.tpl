{{/*
What every Waypost pod shares: security contexts (fixed, not values), scheduling, the
environment that configures the process, volumes and probes.
*/}}

{{/* Pod spec fields before the containers: (dict "root" $ "values" <component values>). */}}
{{- define "waypost.podSpec" -}}
{{- $root := .root }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
serviceAccountName: {{ .serviceAccountName | default (include "waypost.serviceAccountName" $root) }}
automountServiceAccountToken: false
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  runAsNonRoot: true
  {{- with $root.Values.securityContext.runAsUser }}
  runAsUser: {{ . }}
  {{- end }}
  {{- with $root.Values.securityContext.runAsGroup }}
  runAsGroup: {{ . }}
  {{- end }}
  {{- with $root.Values.securityContext.fsGroup }}
  fsGroup: {{ . }}
  {{- end }}
  seccompProfile:
    type: RuntimeDefault
{{- with (.values.nodeSelector | default $root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.values.tolerations | default $root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.values.affinity | default $root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.values.topologySpreadConstraints | default $root.Values.topologySpreadConstraints) }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod template labels and annotations: (dict "root" $ "component" ... "values" ... "annotations" {...}). */}}
{{- define "waypost.podMetadata" -}}
labels:
  {{- include "waypost.selectorLabels" (dict "root" .root "component" .component) | nindent 2 }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $annotations := merge (dict) (.annotations | default dict) (.values.podAnnotations | default dict) .root.Values.podAnnotations }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The image and the container's security context. */}}
{{- define "waypost.container" -}}
image: {{ include "waypost.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  runAsNonRoot: true
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  privileged: false
  capabilities:
    drop:
      - ALL
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/*
A value of `config` as an environment variable's text: strings as they are, everything
else as JSON (maps and lists as the settings expect; numbers without exponents).
*/}}
{{- define "waypost.envValue" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/*
The environment of a Waypost process: (dict "root" $ "values" <component values>
"service" "orchestrator" "kafka" true "metrics" true "own" <list of the component's own
variables>). `config` first, then what the chart sets (the schema refuses those keys in
`config`), then extraEnv and the component's env.
*/}}
{{- define "waypost.env" -}}
{{- $root := .root }}
{{- $values := $root.Values }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- range $key, $value := $values.config }}
{{- if not (kindIs "invalid" $value) }}
- name: WAYPOST_{{ upper $key }}
  value: {{ include "waypost.envValue" $value | quote }}
{{- end }}
{{- end }}
- name: WAYPOST_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "waypost.databaseSecretName" $root }}
      key: {{ include "waypost.databaseSecretKey" $root }}
{{- if .kafka }}
- name: WAYPOST_KAFKA_BOOTSTRAP
  value: {{ $values.kafka.bootstrap | quote }}
{{- if $values.kafka.clientConfigSecret.name }}
- name: WAYPOST_KAFKA_CLIENT_CONFIG
  valueFrom:
    secretKeyRef:
      name: {{ $values.kafka.clientConfigSecret.name }}
      key: {{ $values.kafka.clientConfigSecret.key }}
{{- else }}
{{- $clientConfig := deepCopy $values.kafka.clientConfig }}
{{- with $values.kafka.sasl.existingSecret }}
{{- /* Kubernetes expands $(VAR) from variables defined earlier in the list. */}}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $values.kafka.sasl.usernameKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $values.kafka.sasl.passwordKey }}
{{- $_ := set $clientConfig "sasl.username" "$(KAFKA_SASL_USERNAME)" }}
{{- $_ := set $clientConfig "sasl.password" "$(KAFKA_SASL_PASSWORD)" }}
{{- end }}
{{- with $clientConfig }}
- name: WAYPOST_KAFKA_CLIENT_CONFIG
  value: {{ toJson . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if .metrics }}
- name: WAYPOST_METRICS_HOST
  value: {{ $values.metrics.bindAddress | quote }}
- name: WAYPOST_METRICS_PORT
  value: {{ $values.metrics.port | quote }}
{{- end }}
{{- if .service }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "%s-%s" $values.otel.serviceNamePrefix .service | quote }}
{{- with $values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME)"
{{- end }}
{{- end }}
{{- with .own }}
{{ toYaml . }}
{{- end }}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes every pod has: /tmp, the Kafka TLS files, extraVolumes; (dict "root" $ "kafka" bool "sources" list). */}}
{{- define "waypost.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- if and .kafka .root.Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .root.Values.kafka.tls.existingSecret }}
{{- end }}
{{- range .sources }}
- name: {{ .volume }}
  configMap:
    name: {{ .configMap }}
{{- end }}
{{- with .root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "waypost.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and .kafka .root.Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: /etc/waypost/kafka-tls
  readOnly: true
{{- end }}
{{- range .sources }}
- name: {{ .volume }}
  mountPath: {{ .path }}
  readOnly: true
{{- end }}
{{- with .root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Start-up, liveness (/healthz) and readiness (/readyz) probes on a named port. */}}
{{- define "waypost.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ . }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 36
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ . }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ . }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}
