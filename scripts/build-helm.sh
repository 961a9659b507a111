#!/usr/bin/env bash
# Build the helm CLI used by the chart tests from its Go module into a versioned cache outside the repo.
# Usage: scripts/build-helm.sh CACHE_DIR   ->   CACHE_DIR/helm-$HELM_VERSION/helm
# Idempotent: exits at once when the binary is already there. The helm version is defined only here;
# the chart tests read it from this file.
set -euo pipefail

HELM_VERSION=v3.22.0

cache_dir=${1:?usage: $0 CACHE_DIR}
dest_dir="$cache_dir/helm-$HELM_VERSION"
dest="$dest_dir/helm"

if [[ -x "$dest" ]]; then
    echo "helm $HELM_VERSION already built: $dest"
    exit 0
fi
command -v go >/dev/null || { echo "build-helm.sh: no go toolchain (needed to build helm)" >&2; exit 1; }

mkdir -p "$dest_dir"
tmp_bin=$(mktemp -d "$dest_dir/.build.XXXXXX")
trap 'rm -rf "$tmp_bin"' EXIT

echo "building helm $HELM_VERSION into $dest (first build only: go install, about 9 min on 2 cores with empty Go caches) ..."
started=$SECONDS
# Like helm's own Makefile: the default Kubernetes version (helm template, lint deprecation checks)
# is the one of the client-go that helm is built with, not the v1.20 fallback compiled into the source.
gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
k8s_minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
[[ -n "$k8s_minor" ]] || { echo "build-helm.sh: no k8s.io/client-go version in $gomod" >&2; exit 1; }
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$tmp_bin" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

built=$("$tmp_bin/helm" version --template '{{.Version}}')
[[ "$built" == "$HELM_VERSION" ]] || { echo "build-helm.sh: built helm reports '$built'" >&2; exit 1; }
mv "$tmp_bin/helm" "$dest"
echo "helm $HELM_VERSION ready: $dest (built in $((SECONDS - started)) s)"
