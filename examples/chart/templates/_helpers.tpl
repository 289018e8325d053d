{{/* Common labels. Call with (dict "root" $ "component" "frontend"). */}}
{{- define "threek8s.labels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "threek8s.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "threek8s.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Image reference: <registry>/threek8s-<component>:<appVersion>. */}}
{{- define "threek8s.image" -}}
{{- printf "%s/threek8s-%s:%s" .root.Values.image.registry .component .root.Chart.AppVersion }}
{{- end }}

{{/*
Container env of a component, following the chart's env convention (see values.yaml):
<component>.env NAME: value pairs (empty values are skipped), <component>.envFromSecret as envFrom,
and every <component>.requiredEnv name must be set in env or come from envFromSecret.
*/}}
{{- define "threek8s.env" -}}
{{- $values := index .root.Values .component }}
{{- $env := $values.env | default dict }}
{{- range $name := $values.requiredEnv | default list }}
{{- $value := index $env $name }}
{{- if and (or (kindIs "invalid" $value) (eq (toString $value) "")) (not $values.envFromSecret) }}
{{- fail (printf "%s.env.%s is required: set it (--set %s.env.%s=...) or provide %s.envFromSecret" $.component $name $.component $name $.component) }}
{{- end }}
{{- end }}
{{- $set := list }}
{{- range $name, $value := $env }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
{{- $set = append $set $name }}
{{- end }}
{{- end }}
{{- if $set }}
env:
{{- range $name := $set }}
  - name: {{ $name }}
    value: {{ index $env $name | toString | quote }}
{{- end }}
{{- end }}
{{- with $values.envFromSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end }}
