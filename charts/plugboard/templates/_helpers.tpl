{{- define "plugboard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "plugboard.labels" -}}
app.kubernetes.io/name: plugboard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "plugboard.selectorLabels" -}}
app.kubernetes.io/name: plugboard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "plugboard.serviceAccountName" -}}
{{- default (include "plugboard.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "plugboard.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ else }}false{{ end -}}
{{- end -}}

{{- /* The Lease only the leader holds; the Role grants get/patch on this name alone. */ -}}
{{- define "plugboard.leaseName" -}}
{{- printf "%s-leader" (include "plugboard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* The Secret in the release namespace that keeps the OAuth state signing key. */ -}}
{{- define "plugboard.stateKeySecret" -}}
{{- printf "%s-state-key" (include "plugboard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "plugboard.pdbEnabled" -}}
{{- if or .Values.podDisruptionBudget.enabled (gt (int .Values.replicas) 1) }}true{{ end -}}
{{- end -}}
