#!/usr/bin/env bash
# Build prometheus, promtool and the promql-names parser helper from the github.com/prometheus/prometheus
# Go module into a versioned cache outside the repo.
# Usage: scripts/build-prometheus.sh CACHE_DIR
#   -> CACHE_DIR/prometheus-$PROMETHEUS_MODULE/{prometheus,promtool,promql-names,promql-names.sha256,SOURCE}
# The version lives in tests/monitoring/VERSIONS and must match tests/monitoring/bins/go.mod (checked here).
# Idempotent: exits at once when everything is there. The server and promtool appear together (atomic
# rename of the whole directory) only once built; the helper, whose source is in this repo, is rebuilt
# alone (atomic rename of the file) when its source's sha256 differs from the one stamped beside it.
# No web UI assets (no `builtinassets` tag): the tests use the HTTP API only. Service discovery plugins
# are left out (`remove_all_sd`): the tests scrape static targets.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
module_dir="$repo/tests/monitoring/bins"
cache_dir=${1:?usage: $0 CACHE_DIR}
PROMETHEUS_MODULE=$(sed -n 's/^PROMETHEUS_MODULE=//p' "$repo/tests/monitoring/VERSIONS")
dest="$cache_dir/prometheus-$PROMETHEUS_MODULE"
helper_sum=$(sha256sum "$module_dir/promql-names/main.go" | cut -d' ' -f1)

have_server() { [[ -x "$dest/prometheus" && -x "$dest/promtool" ]]; }
have_helper() { [[ -x "$dest/promql-names" && "$(cat "$dest/promql-names.sha256" 2>/dev/null)" == "$helper_sum" ]]; }
if have_server && have_helper; then
    echo "prometheus $PROMETHEUS_MODULE already built: $dest"
    exit 0
fi
command -v go >/dev/null || { echo "build-prometheus.sh: no go toolchain (needed to build prometheus)" >&2; exit 1; }

export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
got=$(cd "$module_dir" && go list -m -f '{{.Version}}' github.com/prometheus/prometheus)
[[ "$got" == "$PROMETHEUS_MODULE" ]] || {
    echo "build-prometheus.sh: $module_dir/go.mod pins github.com/prometheus/prometheus $got, VERSIONS says $PROMETHEUS_MODULE" >&2
    exit 1
}
# `go list -m` names the module's directory only once it is downloaded: on a cold machine download it first.
(cd "$module_dir" && go mod download github.com/prometheus/prometheus)
release=$(cat "$(cd "$module_dir" && go list -m -f '{{.Dir}}' github.com/prometheus/prometheus)/VERSION")

mkdir -p "$cache_dir"
tmp=$(mktemp -d "$cache_dir/.prometheus-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
build() { # PACKAGE... -> $tmp
    (cd "$module_dir" && nice -n 10 go build -trimpath -tags netgo,remove_all_sd -ldflags "$ldflags" -o "$tmp/" "$@")
}
ldflags="-s -w -X github.com/prometheus/common/version.Version=$release"
ldflags+=" -X github.com/prometheus/common/version.Branch=module-$PROMETHEUS_MODULE"

if ! have_server; then
    echo "building prometheus $release (module $PROMETHEUS_MODULE) into $dest (go build; takes many minutes) ..."
    build github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool ./promql-names
    echo "go module github.com/prometheus/prometheus@$PROMETHEUS_MODULE (Prometheus $release), tags netgo,remove_all_sd" \
        >"$tmp/SOURCE"
    echo "$helper_sum" >"$tmp/promql-names.sha256"
    "$tmp/promtool" --version | sed -n 1p
    chmod 755 "$tmp"  # mktemp made it private; the cache is shared like the other binaries' directories
    rm -rf "$dest"
    mv "$tmp" "$dest"
    trap - EXIT
else
    echo "building promql-names (its source changed) into $dest ..."
    build ./promql-names
    echo "$helper_sum" >"$tmp/promql-names.sha256"
    mv "$tmp/promql-names" "$dest/promql-names"
    mv "$tmp/promql-names.sha256" "$dest/promql-names.sha256"
fi
echo "prometheus $PROMETHEUS_MODULE ready: $dest"
