{{/* Chart name, overridable. */}}
{{- define "kubevc-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name: the release name, suffixed with the chart name unless it already contains it. */}}
{{- define "kubevc-serving.fullname" -}}
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
{{- define "kubevc-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select this release's pods; never change them after install. */}}
{{- define "kubevc-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevc-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "kubevc-serving.labels" -}}
helm.sh/chart: {{ include "kubevc-serving.chart" . }}
{{ include "kubevc-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: model-server
app.kubernetes.io/part-of: kubevc
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference: repository:tag, with @digest when pinned by digest. */}}
{{- define "kubevc-serving.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- if .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* Model path in the container. */}}
{{- define "kubevc-serving.basePath" -}}
{{- $model := index . 0 -}}{{- $root := index . 1 -}}
{{- default (printf "%s/%s" (trimSuffix "/" $root.Values.modelStore.mountPath) $model.name) $model.basePath -}}
{{- end -}}

{{/*
TF Serving ModelServerConfig (text protobuf) for --model_config_file.
Checks the model list first: unique names, labels pointing at listed versions.
*/}}
{{- define "kubevc-serving.modelConfig" -}}
{{- $root := . -}}
{{- $seen := dict -}}
model_config_list {
{{- range .Values.models }}
{{- $model := . }}
{{- if hasKey $seen .name }}{{ fail (printf "models: model name %q is listed twice" .name) }}{{ end }}
{{- $_ := set $seen .name true }}
{{- $policy := default "latest" .versionPolicy }}
{{- if and (eq $policy "specific") (not $root.Values.allowVersionLabelsForUnavailableModels) }}
{{- $versions := list }}
{{- range .versions }}{{ $versions = append $versions (int .) }}{{ end }}
{{- range $label, $version := (default dict .versionLabels) }}
{{- if not (has (int $version) $versions) }}
{{- fail (printf "models[%s].versionLabels.%s: version %d is not in versions %v (TF Serving refuses labels on unloaded versions unless allowVersionLabelsForUnavailableModels is true)" $model.name $label (int $version) $versions) }}
{{- end }}
{{- end }}
{{- end }}
  config {
    name: {{ .name | quote }}
    base_path: {{ include "kubevc-serving.basePath" (list . $root) | quote }}
    model_platform: "tensorflow"
    model_version_policy {
{{- if eq $policy "specific" }}
      specific {
{{- range .versions }}
        versions: {{ int . }}
{{- end }}
      }
{{- else if eq $policy "all" }}
      all {}
{{- else }}
      latest {
        num_versions: {{ int (default 1 .numVersions) }}
      }
{{- end }}
    }
{{- range $label, $version := (default dict .versionLabels) }}
    version_labels {
      key: {{ $label | quote }}
      value: {{ int $version }}
    }
{{- end }}
  }
{{- end }}
}
{{- end -}}

{{/* kubernetes.io/arch values: Debian's "armhf" is the node label "arm". */}}
{{- define "kubevc-serving.nodeArchitectures" -}}
{{- $archs := list -}}
{{- range .Values.architectures -}}
{{- $archs = append $archs (ternary "arm" . (eq . "armhf")) -}}
{{- end -}}
{{- toYaml (uniq $archs) -}}
{{- end -}}
