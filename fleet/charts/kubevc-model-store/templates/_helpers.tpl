{{/* Chart name, overridable. */}}
{{- define "kubevc-model-store.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name: the release name, suffixed with the chart name unless it already contains it. */}}
{{- define "kubevc-model-store.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chart label value: name-version. */}}
{{- define "kubevc-model-store.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select this release's pods; never change them after install. */}}
{{- define "kubevc-model-store.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevc-model-store.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "kubevc-model-store.labels" -}}
helm.sh/chart: {{ include "kubevc-model-store.chart" . }}
{{ include "kubevc-model-store.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: model-store
app.kubernetes.io/part-of: kubevc
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference: repository:tag, with @digest when pinned by digest. */}}
{{- define "kubevc-model-store.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- if .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* PVs are cluster-scoped: prefix the namespace so two regions or releases never collide. */}}
{{- define "kubevc-model-store.pvName" -}}
{{- printf "%s-%s" .Release.Namespace (include "kubevc-model-store.fullname" .) | trimPrefix "-" | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{/* Volume source of the PVs, shared by the read-only and the publisher volume. */}}
{{- define "kubevc-model-store.source" -}}
{{- $root := index . 0 -}}{{- $readOnly := index . 1 -}}
{{- if eq $root.Values.type "nfs" }}
nfs:
  server: {{ required "nfs.server is required when type is nfs" $root.Values.nfs.server | quote }}
  path: {{ required "nfs.path is required when type is nfs" $root.Values.nfs.path | quote }}
  readOnly: {{ $readOnly }}
{{- else }}
iscsi:
  targetPortal: {{ required "iscsi.targetPortal is required when type is iscsi" $root.Values.iscsi.targetPortal | quote }}
  iqn: {{ required "iscsi.iqn is required when type is iscsi" $root.Values.iscsi.iqn | quote }}
  lun: {{ int $root.Values.iscsi.lun }}
  fsType: {{ $root.Values.iscsi.fsType }}
  readOnly: {{ $root.Values.iscsi.readOnly }}
{{- end }}
{{- end -}}

{{/* Image reference of the publisher job. */}}
{{- define "kubevc-model-store.jobImage" -}}
{{- $image := .Values.publisher.job.image -}}
{{- $ref := printf "%s:%s" $image.repository $image.tag -}}
{{- if $image.digest -}}{{- $ref = printf "%s@%s" $ref $image.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}
