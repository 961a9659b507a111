{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "routectl.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped object name; the release name alone when it already contains the chart name. */}}
{{- define "routectl.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "routectl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable across upgrades, so never include versions here. */}}
{{- define "routectl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "routectl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Standard labels on every object. */}}
{{- define "routectl.labels" -}}
helm.sh/chart: {{ include "routectl.chart" . }}
{{ include "routectl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: routectl
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "routectl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "routectl.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "routectl.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where the ConfigMap is mounted; ROUTECTL_CONFIG names the file for every command run in the pod. */}}
{{- define "routectl.configDir" -}}/etc/routectl{{- end -}}
{{- define "routectl.configFile" -}}{{ include "routectl.configDir" . }}/config.yaml{{- end -}}
{{- define "routectl.tokenDir" -}}/var/run/secrets/cloud-identity{{- end -}}
{{- define "routectl.metricsCertDir" -}}/var/run/secrets/routectl-metrics-tls{{- end -}}

{{/*
The selected provider's workload identity section when it is switched on (a role, or for GCP an
audience), else an empty dict. Its "tokenAudience" key is the `aud` the projected token carries.
*/}}
{{- define "routectl.identity" -}}
{{- $v := .Values -}}
{{- $id := dict -}}
{{- if and (eq $v.provider "aws") $v.workloadIdentity.aws.roleARN -}}
{{- $id = dict "tokenAudience" $v.workloadIdentity.aws.audience -}}
{{- else if and (eq $v.provider "gcp") $v.workloadIdentity.gcp.audience -}}
{{- $gcp := $v.workloadIdentity.gcp -}}
{{- $id = dict "tokenAudience" (default (printf "https:%s" $gcp.audience) $gcp.tokenAudience) -}}
{{- else if and (eq $v.provider "alibaba") $v.workloadIdentity.alibaba.roleARN -}}
{{- $id = dict "tokenAudience" $v.workloadIdentity.alibaba.audience -}}
{{- end -}}
{{- toYaml $id -}}
{{- end -}}

{{/* The env each cloud SDK's default credential chain reads for a projected web-identity token. */}}
{{- define "routectl.identityEnv" -}}
{{- $v := .Values -}}
{{- $token := printf "%s/token" (include "routectl.tokenDir" .) -}}
{{- if and (eq $v.provider "aws") $v.workloadIdentity.aws.roleARN }}
- name: AWS_ROLE_ARN
  value: {{ $v.workloadIdentity.aws.roleARN | quote }}
- name: AWS_WEB_IDENTITY_TOKEN_FILE
  value: {{ $token | quote }}
- name: AWS_ROLE_SESSION_NAME
  value: "$(POD_NAME)"
- name: AWS_STS_REGIONAL_ENDPOINTS
  value: regional
{{- else if and (eq $v.provider "gcp") $v.workloadIdentity.gcp.audience }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: {{ printf "%s/gcp-credentials.json" (include "routectl.configDir" .) | quote }}
{{- /* Else google-auth asks Cloud Resource Manager which project the federated identity is in. */}}
- name: GOOGLE_CLOUD_PROJECT
  value: {{ $v.gcp.project | quote }}
{{- else if and (eq $v.provider "alibaba") $v.workloadIdentity.alibaba.roleARN }}
- name: ALIBABA_CLOUD_ROLE_ARN
  value: {{ $v.workloadIdentity.alibaba.roleARN | quote }}
- name: ALIBABA_CLOUD_OIDC_PROVIDER_ARN
  value: {{ $v.workloadIdentity.alibaba.oidcProviderARN | quote }}
- name: ALIBABA_CLOUD_OIDC_TOKEN_FILE
  value: {{ $token | quote }}
- name: ALIBABA_CLOUD_ROLE_SESSION_NAME
  value: "$(POD_NAME)"
{{- end }}
{{- end -}}

{{/*
The external-account credential file of GCP Workload Identity Federation (what `gcloud iam
workload-identity-pools create-cred-config --credential-source-file` writes): google-auth exchanges the
projected token at tokenURL, then impersonates serviceAccount when one is set.
*/}}
{{- define "routectl.gcpCredentials" -}}
{{- $gcp := .Values.workloadIdentity.gcp -}}
{{- $file := dict
  "type" "external_account"
  "audience" $gcp.audience
  "subject_token_type" "urn:ietf:params:oauth:token-type:jwt"
  "token_url" $gcp.tokenURL
  "credential_source" (dict "file" (printf "%s/token" (include "routectl.tokenDir" .)) "format" (dict "type" "text")) -}}
{{- with $gcp.serviceAccount }}
{{- $_ := set $file "service_account_impersonation_url" (printf "%s/v1/projects/-/serviceAccounts/%s:generateAccessToken" (trimSuffix "/" $gcp.iamCredentialsURL) .) }}
{{- end }}
{{- toPrettyJson $file -}}
{{- end -}}

{{/* A bind address: ":PORT" (every address), "127.0.0.1:PORT" when loopback, or "0" when disabled. */}}
{{- define "routectl.bindAddress" -}}
{{- if not .enabled -}}0{{- else if .loopback -}}127.0.0.1:{{ int .port }}{{- else -}}:{{ int .port }}{{- end -}}
{{- end -}}

{{/*
The controller's settings as the config file holds them: setting name (the flag without "--") ->
value, for every command (`routectl plan` in the pod reads the same file). Empty optional strings are
left out so the controller's default applies; a built-in provider's section is rendered key by key in
kebab case and `providerSettings` by flag name, so a new provider setting needs no change here.
*/}}
{{- define "routectl.settings" -}}
{{- $v := .Values -}}
{{- $s := dict
  "cluster-name" $v.clusterName
  "cluster-cidr" $v.clusterCIDRs
  "allocate-node-cidrs" $v.ipam.allocateNodeCIDRs
  "configure-cloud-routes" $v.routes.configureCloudRoutes
  "route-table-quota" (int $v.routes.routeTableQuota)
  "route-reconciliation-period" $v.routes.reconciliationPeriod
  "concurrent-node-syncs" (int $v.routes.concurrentNodeSyncs)
  "dry-run" $v.routes.dryRun
  "adopt-routes" $v.routes.adoptRoutes
  "route-policy" $v.routes.policy
  "cloud-write-rate" $v.cloud.writeRate
  "cloud-write-burst" (int $v.cloud.writeBurst)
  "cloud-read-rate" $v.cloud.readRate
  "cloud-read-burst" (int $v.cloud.readBurst)
  "leader-elect" $v.leaderElection.enabled
  "leader-elect-lease-duration" $v.leaderElection.leaseDuration
  "leader-elect-renew-deadline" $v.leaderElection.renewDeadline
  "leader-elect-retry-period" $v.leaderElection.retryPeriod
  "leader-elect-resource-namespace" .Release.Namespace
  "leader-elect-resource-name" $v.leaderElection.leaseName
  "metrics-bind-address" (include "routectl.bindAddress" (dict "enabled" $v.metrics.enabled "port" $v.metrics.port "loopback" (not $v.metrics.secure)))
  "metrics-secure" $v.metrics.secure
  "health-probe-bind-address" (include "routectl.bindAddress" (dict "enabled" true "port" $v.health.port "loopback" true))
  "log-level" $v.logLevel
  "log-format" $v.logFormat -}}
{{- /* A node mask is passed only for a family that has a cluster CIDR: the controller rejects a
mask given for a family it does not manage. */ -}}
{{- range $v.clusterCIDRs }}
{{- if contains ":" . }}
{{- $_ := set $s "node-cidr-mask-size-ipv6" (int $v.ipam.nodeCIDRMaskSizeIPv6) }}
{{- else }}
{{- $_ := set $s "node-cidr-mask-size-ipv4" (int $v.ipam.nodeCIDRMaskSizeIPv4) }}
{{- end }}
{{- end }}
{{- with $v.provider }}{{ $_ := set $s "provider" . }}{{ end }}
{{- with $v.ipam.reservedCIDRs }}{{ $_ := set $s "reserved-cidr" . }}{{ end }}
{{- with $v.ipam.excludeLabel }}{{ $_ := set $s "exclude-label" . }}{{ end }}
{{- with $v.routes.routeTableIDs }}{{ $_ := set $s "route-table-id" . }}{{ end }}
{{- with $v.cloud.endpoint }}{{ $_ := set $s "cloud-endpoint" . }}{{ end }}
{{- if and $v.metrics.enabled $v.metrics.secure $v.metrics.certSecret }}
{{- $_ := set $s "metrics-cert-dir" (include "routectl.metricsCertDir" .) }}
{{- end }}
{{- if has $v.provider (list "aws" "gcp" "alibaba") }}
{{- range $key, $value := get $v $v.provider }}
{{- if not (and (kindIs "string" $value) (eq $value "")) }}
{{- $_ := set $s (kebabcase $key) $value }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Any provider's settings by flag name (an adapter without a section above, docs/providers.md). */}}
{{- range $name, $value := $v.providerSettings }}
{{- $_ := set $s $name $value }}
{{- end }}
{{- toYaml $s }}
{{- end -}}
