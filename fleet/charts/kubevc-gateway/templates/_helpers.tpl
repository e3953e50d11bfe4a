{{/* Chart name, overridable. */}}
{{- define "kubevc-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name: the release name, suffixed with the chart name unless it already contains it. */}}
{{- define "kubevc-gateway.fullname" -}}
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
{{- define "kubevc-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select this release's pods; never change them after install. */}}
{{- define "kubevc-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevc-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "kubevc-gateway.labels" -}}
helm.sh/chart: {{ include "kubevc-gateway.chart" . }}
{{ include "kubevc-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: kubevc
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Image reference: repository:tag, with @digest when pinned by digest. */}}
{{- define "kubevc-gateway.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- if .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* gateway.yaml, checked for references the schema cannot see. */}}
{{- define "kubevc-gateway.config" -}}
{{- $backends := dict -}}
{{- range .Values.config.backends -}}
{{- if hasKey $backends .name }}{{ fail (printf "config.backends: backend name %q is listed twice" .name) }}{{ end -}}
{{- $_ := set $backends .name true -}}
{{- end -}}
{{- $models := dict -}}
{{- range .Values.config.models -}}
{{- if hasKey $models .name }}{{ fail (printf "config.models: model name %q is listed twice" .name) }}{{ end -}}
{{- $_ := set $models .name true -}}
{{- if not (hasKey $backends .backend) }}{{ fail (printf "config.models[%s].backend: %q is not a config.backends[].name" .name .backend) }}{{ end -}}
{{- end -}}
{{- toYaml .Values.config -}}
{{- end -}}

{{/* kubernetes.io/arch values: Debian's "armhf" is the node label "arm". */}}
{{- define "kubevc-gateway.nodeArchitectures" -}}
{{- $archs := list -}}
{{- range .Values.architectures -}}
{{- $archs = append $archs (ternary "arm" . (eq . "armhf")) -}}
{{- end -}}
{{- toYaml (uniq $archs) -}}
{{- end -}}

{{/* Labels of the helm test Pod: its own name, so no Service, NetworkPolicy or PDB selects it. */}}
{{- define "kubevc-gateway.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevc-gateway.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubevc-gateway.testLabels" -}}
helm.sh/chart: {{ include "kubevc-gateway.chart" . }}
{{ include "kubevc-gateway.testSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: helm-test
app.kubernetes.io/part-of: kubevc
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The helm test's check, run by python3 (the gateway image has no shell or curl): GET every URL
given as an argument until it answers 2xx, .Values.tests.attempts tries 3 s apart.
*/}}
{{- define "kubevc-gateway.testScript" -}}
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
