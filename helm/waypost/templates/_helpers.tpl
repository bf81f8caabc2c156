{{/*
Names, labels and the small pieces every template shares. Pod-level pieces (security
contexts, environment, volumes, probes) are in _pod.tpl.
*/}}

{{- define "waypost.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "waypost.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of one of the release's objects: (dict "root" $ "suffix" "console"). */}}
{{- define "waypost.componentName" -}}
{{- printf "%s-%s" (include "waypost.fullname" .root) .suffix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "waypost.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: (dict "root" $ "component" "console"); component may be empty. */}}
{{- define "waypost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "waypost.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "waypost.labels" -}}
helm.sh/chart: {{ include "waypost.chart" .root }}
{{ include "waypost.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: waypost
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "waypost.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "waypost.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "waypost.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the database URL. */}}
{{/* The ServiceAccount of the hook Jobs: their own (a hook) or the named one. */}}
{{- define "waypost.hookServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ include "waypost.componentName" (dict "root" . "suffix" "hooks") }}
{{- else -}}
{{ include "waypost.serviceAccountName" . }}
{{- end -}}
{{- end }}

{{- define "waypost.databaseSecretName" -}}
{{- if .Values.database.url }}
{{- include "waypost.componentName" (dict "root" . "suffix" "database") }}
{{- else }}
{{- .Values.database.existingSecret }}
{{- end }}
{{- end }}

{{- define "waypost.databaseSecretKey" -}}
{{- if .Values.database.url }}url{{ else }}{{ .Values.database.existingSecretKey }}{{ end }}
{{- end }}

{{/* The topic namespace (WAYPOST_NAMESPACE), for the KEDA triggers. */}}
{{- define "waypost.topicNamespace" -}}
{{- default "waypost" .Values.config.namespace }}
{{- end }}

{{/*
An agent pool with agentDefaults filled in, as YAML: keys the pool does not set come from
agentDefaults; maps set in both are merged one level deep (hasKey, so false and 0 in a
pool win over the defaults).
*/}}
{{- define "waypost.pool" -}}
{{- $pool := deepCopy .pool }}
{{- range $key, $default := .defaults }}
{{- if not (hasKey $pool $key) }}
{{- $_ := set $pool $key $default }}
{{- else if and (kindIs "map" $default) (kindIs "map" (get $pool $key)) }}
{{- $merged := deepCopy $default }}
{{- range $k, $v := get $pool $key }}
{{- $_ := set $merged $k $v }}
{{- end }}
{{- $_ := set $pool $key $merged }}
{{- end }}
{{- end }}
{{- toYaml $pool }}
{{- end }}

{{/* A file of a ConfigMap: YAML text as given, or a mapping written as YAML. */}}
{{- define "waypost.yamlFile" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ toYaml . }}{{ end }}
{{- end }}

{{/*
Directories of playbooks (orchestrator, console) or policies (agent pools), as a YAML
list of {volume, configMap, path}: the chart's own ConfigMap first, then existing ones.
*/}}
{{- define "waypost.playbookSources" -}}
{{- $sources := list }}
{{- if .Values.playbooks.files }}
{{- $sources = append $sources (dict "volume" "playbooks" "configMap" (include "waypost.componentName" (dict "root" . "suffix" "playbooks")) "path" "/etc/waypost/playbooks/chart") }}
{{- end }}
{{- range $i, $name := .Values.playbooks.existingConfigMaps }}
{{- $sources = append $sources (dict "volume" (printf "playbooks-%d" $i) "configMap" $name "path" (printf "/etc/waypost/playbooks/configmap-%s" $name)) }}
{{- end }}
{{- toYaml $sources }}
{{- end }}

{{/* (dict "root" $ "pool" $pool) */}}
{{- define "waypost.policySources" -}}
{{- $root := .root }}
{{- $sources := list }}
{{- if $root.Values.policies.files }}
{{- $sources = append $sources (dict "volume" "policies" "configMap" (include "waypost.componentName" (dict "root" $root "suffix" "policies")) "path" "/etc/waypost/policies/chart") }}
{{- end }}
{{- range $i, $name := $root.Values.policies.existingConfigMaps }}
{{- $sources = append $sources (dict "volume" (printf "policies-%d" $i) "configMap" $name "path" (printf "/etc/waypost/policies/configmap-%s" $name)) }}
{{- end }}
{{- $own := .pool.policies | default dict }}
{{- if $own.files }}
{{- $sources = append $sources (dict "volume" "pool-policies" "configMap" (include "waypost.componentName" (dict "root" $root "suffix" (printf "agent-%s-policies" .pool.name))) "path" "/etc/waypost/policies/pool") }}
{{- end }}
{{- range $i, $name := $own.existingConfigMaps }}
{{- $sources = append $sources (dict "volume" (printf "pool-policies-%d" $i) "configMap" $name "path" (printf "/etc/waypost/policies/pool-configmap-%s" $name)) }}
{{- end }}
{{- toYaml $sources }}
{{- end }}

{{/* A HorizontalPodAutoscaler: (dict "root" $ "name" ... "component" ... "autoscaling" ...). */}}
{{- define "waypost.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  labels:
    {{- include "waypost.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .name }}
  minReplicas: {{ .autoscaling.minReplicas }}
  maxReplicas: {{ .autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .autoscaling.targetCPUUtilizationPercentage }}
{{- end }}

{{/* A PodDisruptionBudget: (dict "root" $ "name" ... "component" ...). */}}
{{- define "waypost.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels:
    {{- include "waypost.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  maxUnavailable: {{ .root.Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "waypost.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
{{- end }}

{{/* A headless Service exposing a worker's metrics port (for ServiceMonitor). */}}
{{- define "waypost.metricsService" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}-metrics
  labels:
    {{- include "waypost.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "waypost.selectorLabels" (dict "root" .root "component" .component) | nindent 4 }}
  ports:
    - name: metrics
      port: {{ .root.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
{{- end }}

{{/*
Checks across values that values.schema.json cannot express clearly; each message says
what to change.
*/}}
{{- define "waypost.validate" -}}
{{- if not (or .Values.database.url .Values.database.existingSecret) }}
{{- fail "database: set database.existingSecret (a Secret holding the PostgreSQL URL) or database.url" }}
{{- end }}
{{- $seen := dict }}
{{- range .Values.agents }}
{{- if hasKey $seen .name }}
{{- fail (printf "agents: two pools are named %q; pool names must be unique" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- $pool := include "waypost.pool" (dict "pool" . "defaults" $.Values.agentDefaults) | fromYaml }}
{{- if and $pool.autoscaling.enabled $pool.keda.enabled }}
{{- fail (printf "agents[%s]: autoscaling.enabled and keda.enabled are both true; KEDA makes its own HorizontalPodAutoscaler, so enable only one" .name) }}
{{- end }}
{{- if and $pool.keda.enabled (not $pool.capabilities) }}
{{- fail (printf "agents[%s]: keda.enabled needs capabilities (the module's @agent capabilities) to know which consumer groups to watch" .name) }}
{{- end }}
{{- end }}
{{- if and .Values.console.ingress.enabled (not .Values.console.ingress.hosts) }}
{{- fail "console.ingress: enabled without hosts; add at least one host" }}
{{- end }}
{{- end }}

{{/* The paths of playbookSources/policySources, comma-separated (WAYPOST_*_DIRS). */}}
{{- define "waypost.joinPaths" -}}
{{- $paths := list }}
{{- range . }}
{{- $paths = append $paths .path }}
{{- end }}
{{- join "," $paths }}
{{- end }}
