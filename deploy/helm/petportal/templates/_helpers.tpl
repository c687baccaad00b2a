{{/*
Shared templates. A service's template file calls them with a context made by:
  (dict "root" $ "name" "<service>" "values" .Values.<service>)
*/}}

{{/* The services of the chart, in one place: the value blocks, packages and ConfigMap URLs follow it. */}}
{{- define "petportal.services" -}}
identity pets messaging todo sync notify gateway
{{- end }}

{{- define "petportal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-petportal, or the release name when it already contains the chart name. */}}
{{- define "petportal.fullname" -}}
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

{{- define "petportal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "petportal.configmapName" -}}
{{- printf "%s-common" (include "petportal.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of a service's Deployment and Service: <fullname>-<service>. Takes (dict "root" $ "name" …). */}}
{{- define "petportal.componentName" -}}
{{- printf "%s-%s" (include "petportal.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* In-cluster base URL of a service. Takes (dict "root" $ "name" …). */}}
{{- define "petportal.serviceUrl" -}}
{{- $values := index .root.Values .name -}}
{{- printf "http://%s:%v" (include "petportal.componentName" .) $values.port }}
{{- end }}

{{- define "petportal.commonLabels" -}}
helm.sh/chart: {{ include "petportal.chart" . }}
app.kubernetes.io/name: {{ include "petportal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: petportal
{{- end }}

{{/* Selector of a service's pods. Takes (dict "root" $ "name" …). */}}
{{- define "petportal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "petportal.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "petportal.componentLabels" -}}
{{ include "petportal.commonLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* repository:tag of a service, falling back to the top-level image and the chart's appVersion. */}}
{{- define "petportal.image" -}}
{{- $image := .values.image | default dict -}}
{{- $repository := $image.repository | default .root.Values.image.repository -}}
{{- $tag := $image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repository (toString $tag) }}
{{- end }}

{{/*
A service's own variables: DATABASE_URL, variables from Secrets, paths of mounted secret files and
its plain env. Used by the Deployment and by the migration Job.
*/}}
{{- define "petportal.env" -}}
{{- $values := .values -}}
- name: INTERNAL_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ required "internalApiToken.secretName is required: the services' shared credential for /internal/ calls" .root.Values.internalApiToken.secretName }}
      key: {{ .root.Values.internalApiToken.key | default "INTERNAL_API_TOKEN" }}
{{- if $values.database.enabled }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s.database.secretName is required when its database is enabled" .name) $values.database.secretName }}
      key: {{ $values.database.key | default "DATABASE_URL" }}
{{- end }}
{{- range $values.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- range $values.secretFiles }}
{{- if .env }}
- name: {{ .env }}
  value: {{ printf "%s/%s" (trimSuffix "/" .mountPath) .key | quote }}
{{- end }}
{{- end }}
{{- range $key, $value := $values.env }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{- define "petportal.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- range .values.secretFiles }}
- name: {{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "petportal.volumes" -}}
# The root filesystem is read-only: /tmp is the only writable place.
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- range .values.secretFiles }}
- name: {{ .name }}
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0440
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}

{{/* An httpGet probe on the http port: {path, periodSeconds, …} from the service's values. */}}
{{- define "petportal.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
{{- with omit . "path" }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The Deployment of one service. Takes (dict "root" $ "name" "<service>" "values" .Values.<service>). */}}
{{- define "petportal.deployment" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $env := include "petportal.env" . | trim -}}
{{- if $values.metricsPort }}
{{- $env = printf "%s\n- name: METRICS_PORT\n  value: %s" $env ($values.metricsPort | toString | quote) | trim -}}
{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "petportal.componentName" . }}
  labels:
    {{- include "petportal.componentLabels" . | nindent 4 }}
spec:
  {{- /* With an autoscaler the HPA owns the count: a replicas field would reset it on every upgrade. */}}
  {{- if not ($values.autoscaling | default dict).enabled }}
  replicas: {{ $values.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "petportal.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "petportal.componentLabels" . | nindent 8 }}
      annotations:
        # Roll the pods when the common configuration changes.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if $root.Values.metrics.scrapeAnnotations }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $values.metricsPort | default $values.port | quote }}
        prometheus.io/path: /metrics
        {{- end }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      automountServiceAccountToken: false
      {{- with $root.Values.serviceAccountName }}
      serviceAccountName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .name }}
          image: {{ include "petportal.image" . | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - python
            - -m
            - petportal_{{ .name }}
            - serve
            - --host
            - "0.0.0.0"
            - --port
            - {{ $values.port | quote }}
          ports:
            - name: http
              containerPort: {{ $values.port }}
              protocol: TCP
            {{- with $values.metricsPort }}
            # /metrics only; the Service does not expose it.
            - name: metrics
              containerPort: {{ . }}
              protocol: TCP
            {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "petportal.configmapName" $root }}
            {{- with $root.Values.extraEnvFrom }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- if $env }}
          env:
            {{- $env | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          startupProbe:
            {{- include "petportal.probe" $values.probes.startup | nindent 12 }}
          livenessProbe:
            {{- include "petportal.probe" $values.probes.liveness | nindent 12 }}
          readinessProbe:
            {{- include "petportal.probe" $values.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          volumeMounts:
            {{- include "petportal.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "petportal.volumes" . | nindent 8 }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/* The ClusterIP (or other type) Service in front of one service's pods. Same context as above. */}}
{{- define "petportal.service" -}}
{{- $values := .values -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "petportal.componentName" . }}
  labels:
    {{- include "petportal.componentLabels" . | nindent 4 }}
spec:
  type: {{ (($values.service | default dict).type) | default "ClusterIP" }}
  selector:
    {{- include "petportal.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $values.port }}
      targetPort: http
      protocol: TCP
{{- end }}

{{/*
The migration Job of one service: a pre-install/pre-upgrade hook, so it runs before the new pods and
before the release's ConfigMap exists; it therefore gets its variables directly, not from the ConfigMap.
Its pods carry the component "<service>-migrate", so the service's Service never selects them.
*/}}
{{- define "petportal.migrateJob" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $jobContext := dict "root" $root "name" (printf "%s-migrate" .name) -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "petportal.componentName" $jobContext }}
  labels:
    {{- include "petportal.componentLabels" $jobContext | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ $root.Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ $root.Values.migrations.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "petportal.componentLabels" $jobContext | nindent 8 }}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      {{- with $root.Values.serviceAccountName }}
      serviceAccountName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: migrate
          image: {{ include "petportal.image" . | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - python
            - -m
            - petportal_{{ .name }}
            - migrate
          env:
            - name: ENVIRONMENT
              value: {{ $root.Values.config.environment | quote }}
            - name: LOG_LEVEL
              value: {{ $root.Values.config.logLevel | quote }}
            {{- with include "petportal.env" . | trim }}
            {{- . | nindent 12 }}
            {{- end }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          resources:
            {{- toYaml $root.Values.migrations.resources | nindent 12 }}
          volumeMounts:
            {{- include "petportal.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "petportal.volumes" . | nindent 8 }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/* The HorizontalPodAutoscaler of one service (CPU utilisation of its requests). Same context. */}}
{{- define "petportal.hpa" -}}
{{- $autoscaling := .values.autoscaling -}}
{{- if lt (int $autoscaling.maxReplicas) (int $autoscaling.minReplicas) }}
{{- fail (printf "%s.autoscaling.maxReplicas must be at least minReplicas" .name) }}
{{- end -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "petportal.componentName" . }}
  labels:
    {{- include "petportal.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "petportal.componentName" . }}
  minReplicas: {{ $autoscaling.minReplicas }}
  maxReplicas: {{ $autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    # A consumer that scales in hands its partitions over (a rebalance): not for every dip.
    scaleDown:
      stabilizationWindowSeconds: 300
{{- end }}

{{/* The PodDisruptionBudget of one service. Same context. */}}
{{- define "petportal.pdb" -}}
{{- $budget := .values.podDisruptionBudget -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "petportal.componentName" . }}
  labels:
    {{- include "petportal.componentLabels" . | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $budget.minAvailable) }}
  minAvailable: {{ $budget.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $budget.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "petportal.selectorLabels" . | nindent 6 }}
{{- end }}
