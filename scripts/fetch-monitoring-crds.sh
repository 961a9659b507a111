#!/usr/bin/env bash
# Fetch the prometheus-operator CRDs the chart's ServiceMonitor and PrometheusRule need, from the pinned
# Go module (github.com/prometheus-operator/prometheus-operator, its example/prometheus-operator-crd/),
# into a versioned cache outside the repo; the e2e tier installs them into its API server.
# Usage: scripts/fetch-monitoring-crds.sh CACHE_DIR  ->  CACHE_DIR/monitoring-crds-$VERSION/*.yaml
# Idempotent; the version is PROMETHEUS_OPERATOR_VERSION in tests/e2e/VERSIONS.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache_dir=${1:?usage: $0 CACHE_DIR}
version=$(sed -n 's/^PROMETHEUS_OPERATOR_VERSION=//p' "$repo/tests/e2e/VERSIONS")
[[ -n "$version" ]] || { echo "fetch-monitoring-crds.sh: no PROMETHEUS_OPERATOR_VERSION in tests/e2e/VERSIONS" >&2; exit 1; }
dest="$cache_dir/monitoring-crds-$version"
crds=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)

if [[ -f "$dest/${crds[0]}" && -f "$dest/${crds[1]}" ]]; then
    echo "monitoring CRDs $version already fetched: $dest"
    exit 0
fi
command -v go >/dev/null || { echo "fetch-monitoring-crds.sh: no go toolchain (needed for go mod download)" >&2; exit 1; }

module_dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$version" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
[[ -d "$module_dir/example/prometheus-operator-crd" ]] \
    || { echo "fetch-monitoring-crds.sh: no example/prometheus-operator-crd in $module_dir" >&2; exit 1; }
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for crd in "${crds[@]}"; do
    cp "$module_dir/example/prometheus-operator-crd/$crd" "$tmp/$crd"
done
echo "go module github.com/prometheus-operator/prometheus-operator@$version" >"$tmp/SOURCE"
mv "$tmp"/* "$dest"/
echo "monitoring CRDs $version ready: $dest"
