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
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A bind address for one of the controller's HTTP servers: ":PORT", or "0" when disabled. */}}
{{- define "routectl.bindAddress" -}}
{{- if .enabled -}}:{{ int .port }}{{- else -}}0{{- end -}}
{{- end -}}

{{/*
The controller's command line as a YAML list: every setting of values.yaml mapped onto its
`routectl run` flag (DESIGN.md §4.1). Empty optional strings are omitted so the controller's default
applies. Rendered through toYaml so any value is quoted safely.
*/}}
{{- define "routectl.args" -}}
{{- $v := .Values -}}
{{- $cloud := get $v $v.provider | default dict -}}
{{- $args := list "run"
  (printf "--cluster-name=%s" $v.clusterName)
  (printf "--cluster-cidr=%s" (join "," $v.clusterCIDRs))
  (printf "--allocate-node-cidrs=%t" $v.ipam.allocateNodeCIDRs) -}}
{{- /* A node mask is passed only for a family that has a cluster CIDR: the controller rejects a
mask given for a family it does not manage. */ -}}
{{- $families := dict -}}
{{- range $v.clusterCIDRs }}
{{- $_ := set $families (ternary "v6" "v4" (contains ":" .)) true }}
{{- end }}
{{- if hasKey $families "v4" }}
{{- $args = append $args (printf "--node-cidr-mask-size-ipv4=%d" (int $v.ipam.nodeCIDRMaskSizeIPv4)) }}
{{- end }}
{{- if hasKey $families "v6" }}
{{- $args = append $args (printf "--node-cidr-mask-size-ipv6=%d" (int $v.ipam.nodeCIDRMaskSizeIPv6)) }}
{{- end }}
{{- with $v.provider }}
{{- $args = append $args (printf "--provider=%s" .) }}
{{- end }}
{{- range $v.ipam.reservedCIDRs }}
{{- $args = append $args (printf "--reserved-cidr=%s" .) }}
{{- end }}
{{- with $v.ipam.excludeLabel }}
{{- $args = append $args (printf "--exclude-label=%s" .) }}
{{- end }}
{{- $args = append $args (printf "--configure-cloud-routes=%t" $v.routes.configureCloudRoutes) }}
{{- range $v.routes.routeTableIDs }}
{{- $args = append $args (printf "--route-table-id=%s" .) }}
{{- end }}
{{- $args = concat $args (list
  (printf "--route-table-quota=%d" (int $v.routes.routeTableQuota))
  (printf "--route-reconciliation-period=%s" $v.routes.reconciliationPeriod)
  (printf "--concurrent-node-syncs=%d" (int $v.routes.concurrentNodeSyncs))
  (printf "--dry-run=%t" $v.routes.dryRun)) }}
{{- with get $cloud "region" }}
{{- $args = append $args (printf "--region=%s" .) }}
{{- end }}
{{- with get $cloud "vpcID" }}
{{- $args = append $args (printf "--vpc-id=%s" .) }}
{{- end }}
{{- if eq $v.provider "gcp" }}
{{- $args = concat $args (list
  (printf "--project=%s" $v.gcp.project)
  (printf "--network=%s" $v.gcp.network)
  (printf "--route-priority=%d" (int $v.gcp.routePriority))) }}
{{- end }}
{{- /* Any provider's settings by flag name (an adapter without a section above, docs/providers.md);
a list repeats the flag. */ -}}
{{- range $name, $value := $v.providerSettings }}
{{- range (ternary $value (list $value) (kindIs "slice" $value)) }}
{{- $args = append $args (printf "--%s=%v" $name .) }}
{{- end }}
{{- end }}
{{- with $v.cloud.endpoint }}
{{- $args = append $args (printf "--cloud-endpoint=%s" .) }}
{{- end }}
{{- $args = concat $args (list
  (printf "--cloud-write-rate=%v" $v.cloud.writeRate)
  (printf "--cloud-write-burst=%d" (int $v.cloud.writeBurst))
  (printf "--cloud-read-rate=%v" $v.cloud.readRate)
  (printf "--cloud-read-burst=%d" (int $v.cloud.readBurst))
  (printf "--leader-elect=%t" $v.leaderElection.enabled)
  (printf "--leader-elect-lease-duration=%s" $v.leaderElection.leaseDuration)
  (printf "--leader-elect-renew-deadline=%s" $v.leaderElection.renewDeadline)
  (printf "--leader-elect-retry-period=%s" $v.leaderElection.retryPeriod)
  (printf "--leader-elect-resource-namespace=%s" .Release.Namespace)
  (printf "--leader-elect-resource-name=%s" $v.leaderElection.leaseName)
  (printf "--metrics-bind-address=%s" (include "routectl.bindAddress" (dict "enabled" $v.metrics.enabled "port" $v.metrics.port)))
  (printf "--health-probe-bind-address=%s" (include "routectl.bindAddress" (dict "enabled" true "port" $v.health.port)))
  (printf "--log-level=%s" $v.logLevel)
  (printf "--log-format=%s" $v.logFormat)) }}
{{- toYaml $args }}
{{- end -}}
