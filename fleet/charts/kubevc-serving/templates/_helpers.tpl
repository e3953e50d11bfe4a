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
TF Serving ModelServerConfig (text protobuf) for --model_config_file: (list root models).
Checks the model list first: unique names, labels pointing at listed versions.
*/}}
{{- define "kubevc-serving.modelConfig" -}}
{{- $root := index . 0 -}}
{{- $models := index . 1 -}}
{{- $seen := dict -}}
model_config_list {
{{- range $models }}
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


{{/*
The serving Deployments as JSON {"items": [...]}, each normalised: name (object name), group
(serving group; empty for the single Deployment of a chart without deployments), runtime,
models (the entries of .Values.models it serves), replicas, resources, nodeSelector, tolerations,
hpa, pdb. Without .Values.deployments: one TF Serving Deployment named like the release serving
every model (the chart's behaviour before per-model serving). Checks the lists first.
*/}}
{{- define "kubevc-serving.deployments" -}}
{{- $root := . -}}
{{- $byName := dict -}}
{{- range .Values.models }}
{{- if hasKey $byName .name }}{{ fail (printf "models: model name %q is listed twice" .name) }}{{ end -}}
{{- $_ := set $byName .name . -}}
{{- end -}}
{{- $items := list -}}
{{- if not .Values.deployments -}}
{{- $items = append $items (dict "name" (include "kubevc-serving.fullname" .) "group" "" "runtime" "tfserving" "models" .Values.models "replicas" .Values.replicaCount "resources" .Values.resources "nodeSelector" .Values.nodeSelector "tolerations" .Values.tolerations "hpa" .Values.autoscaling "pdb" .Values.podDisruptionBudget) -}}
{{- else -}}
{{- $claimed := dict -}}
{{- $groups := dict -}}
{{- range .Values.deployments -}}
{{- $d := . -}}
{{- if hasKey $groups .name }}{{ fail (printf "deployments: %q is listed twice" .name) }}{{ end -}}
{{- $_ := set $groups .name true -}}
{{- $models := list -}}
{{- range .models -}}
{{- if not (hasKey $byName .) }}{{ fail (printf "deployments[%s].models: %q is not in models" $d.name .) }}{{ end -}}
{{- if hasKey $claimed . }}{{ fail (printf "deployments[%s].models: %q is already served by deployment %q" $d.name . (get $claimed .)) }}{{ end -}}
{{- $_ := set $claimed . $d.name -}}
{{- $models = append $models (get $byName .) -}}
{{- end -}}
{{- $name := printf "%s-%s" (include "kubevc-serving.fullname" $root) .name | trunc 63 | trimSuffix "-" -}}
{{- $resources := mergeOverwrite (deepCopy $root.Values.resources) (deepCopy (default dict .resources)) -}}
{{- $nodeSelector := merge (deepCopy (default dict .nodeSelector)) (deepCopy $root.Values.nodeSelector) -}}
{{- $tolerations := concat $root.Values.tolerations (default list .tolerations) -}}
{{- $hpa := mergeOverwrite (deepCopy $root.Values.autoscaling) (deepCopy (default dict .hpa)) -}}
{{- $pdb := mergeOverwrite (deepCopy $root.Values.podDisruptionBudget) (deepCopy (default dict .pdb)) -}}
{{- $replicas := ternary .replicas $root.Values.replicaCount (hasKey . "replicas") -}}
{{- $items = append $items (dict "name" $name "group" .name "runtime" (default "tfserving" .runtime) "models" $models "replicas" $replicas "resources" $resources "nodeSelector" $nodeSelector "tolerations" $tolerations "hpa" $hpa "pdb" $pdb) -}}
{{- end -}}
{{- range .Values.models }}
{{- if not (hasKey $claimed .name) }}{{ fail (printf "models[%s]: no entry of deployments serves it" .name) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "items" $items) -}}
{{- end -}}

{{/* Selector labels of one Deployment's pods: (list root deployment). */}}
{{- define "kubevc-serving.deploymentSelectorLabels" -}}
{{- $root := index . 0 -}}{{- $d := index . 1 -}}
{{ include "kubevc-serving.selectorLabels" $root }}
{{- if $d.group }}
kubevc.io/serving-group: {{ $d.group }}
{{- end }}
{{- end -}}

{{/* Labels of one Deployment's objects: (list root deployment). */}}
{{- define "kubevc-serving.deploymentLabels" -}}
{{- $root := index . 0 -}}{{- $d := index . 1 -}}
{{ include "kubevc-serving.labels" $root }}
{{- if $d.group }}
kubevc.io/serving-group: {{ $d.group }}
kubevc.io/runtime: {{ $d.runtime }}
{{- end }}
{{- end -}}

{{/* Ports of a runtime: (list root runtime) -> JSON {grpc, http, metrics}; metrics 0 = on http. */}}
{{- define "kubevc-serving.ports" -}}
{{- $root := index . 0 -}}{{- $runtime := index . 1 -}}
{{- if eq $runtime "tfserving" -}}
{{- toJson (dict "grpc" $root.Values.service.grpcPort "http" $root.Values.service.restPort "metrics" 0) -}}
{{- else -}}
{{- $r := index $root.Values.runtimes $runtime -}}
{{- toJson (dict "grpc" $r.grpcPort "http" $r.httpPort "metrics" $r.metricsPort) -}}
{{- end -}}
{{- end -}}

{{/* Image of a runtime: (list root runtime) -> JSON {ref, pullPolicy}. */}}
{{- define "kubevc-serving.runtimeImage" -}}
{{- $root := index . 0 -}}{{- $runtime := index . 1 -}}
{{- $image := $root.Values.image -}}
{{- if ne $runtime "tfserving" }}{{ $image = index $root.Values.runtimes $runtime "image" }}{{ end -}}
{{- $ref := printf "%s:%s" $image.repository $image.tag -}}
{{- if $image.digest -}}{{- $ref = printf "%s@%s" $ref $image.digest -}}{{- end -}}
{{- toJson (dict "ref" $ref "pullPolicy" $image.pullPolicy) -}}
{{- end -}}

{{/* A model's folder relative to the store mount: (list model root). */}}
{{- define "kubevc-serving.storeFolder" -}}
{{- $path := include "kubevc-serving.basePath" . -}}
{{- $root := index . 1 -}}
{{- trimPrefix (printf "%s/" (trimSuffix "/" $root.Values.modelStore.mountPath)) $path -}}
{{- end -}}

{{/* Labels of the helm test Pods: their own name, so no Service, NetworkPolicy or PDB selects them. */}}
{{- define "kubevc-serving.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevc-serving.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubevc-serving.testLabels" -}}
helm.sh/chart: {{ include "kubevc-serving.chart" . }}
{{ include "kubevc-serving.testSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/part-of: kubevc
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The helm test's check, run by python3 (no shell or curl needed): GET every URL given as an
argument until it answers 2xx, .Values.tests.attempts tries 3 s apart.
*/}}
{{- define "kubevc-serving.testScript" -}}
import sys, time, urllib.error, urllib.request
attempts = int(sys.argv[1])
for url in sys.argv[2:]:
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                print(f"ok {url}: {answer.status}", flush=True)
                break
        except (urllib.error.URLError, OSError) as exc:
            print(f"attempt {attempt}/{attempts} {url}: {exc}", flush=True)
            if attempt < attempts:
                time.sleep(3)
    else:
        sys.exit(f"FAILED {url}")
{{- end -}}
