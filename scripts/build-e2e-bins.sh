#!/usr/bin/env bash
# Build the e2e tier's kube-apiserver and etcd from Go modules into a versioned cache outside the repo.
# Usage: scripts/build-e2e-bins.sh CACHE_DIR
#   -> CACHE_DIR/e2e/k8s-$KUBERNETES_VERSION/kube-apiserver   (k8s.io/kubernetes, tests/e2e/bins/kube-apiserver)
#   -> CACHE_DIR/e2e/etcd-$ETCD_VERSION/etcd                   (go.etcd.io/etcd/server/v3, tests/e2e/bins/etcd)
# Idempotent: each binary is skipped when already there; a binary only appears (atomic rename) once built.
# Versions live in tests/e2e/VERSIONS and must match the pinned go.mod files (checked here). Each versioned
# directory holds a SOURCE file saying where its binary came from. If the etcd module build fails, etcd falls
# back to Debian's etcd-server package (apt-get) and SOURCE says so.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bins="$repo/tests/e2e/bins"
cache_dir=${1:?usage: $0 CACHE_DIR}
# shellcheck source=lib/gobuild.sh
source "$repo/scripts/lib/gobuild.sh"

KUBERNETES_VERSION=$(version_of "$repo/tests/e2e/VERSIONS" KUBERNETES_VERSION)
ETCD_VERSION=$(version_of "$repo/tests/e2e/VERSIONS" ETCD_VERSION)
k8s_dir="$cache_dir/e2e/k8s-$KUBERNETES_VERSION"
etcd_dir="$cache_dir/e2e/etcd-$ETCD_VERSION"

if [[ -x "$k8s_dir/kube-apiserver" && -x "$etcd_dir/etcd" ]]; then
    echo "e2e binaries already built: $k8s_dir/kube-apiserver, $etcd_dir/etcd"
    exit 0
fi
command -v go >/dev/null || { echo "build-e2e-bins.sh: go toolchain not found (needed to build kube-apiserver and etcd)" >&2; exit 1; }

export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
echo "first build of the e2e binaries: about 10 min on 2 cores with empty Go caches (4 min with the Go" \
    "modules already downloaded); later runs find them in $cache_dir/e2e and take no time"
started=$SECONDS

etcd_from_debian() { # fallback when the module build fails: Debian's etcd-server, recorded in SOURCE
    echo "build-e2e-bins.sh: etcd module build failed; falling back to Debian's etcd-server" >&2
    command -v apt-get >/dev/null || { echo "build-e2e-bins.sh: no apt-get for the etcd fallback" >&2; exit 1; }
    apt-get install -y -q etcd-server >&2 || { echo "build-e2e-bins.sh: apt-get install etcd-server failed" >&2; exit 1; }
    echo "debian etcd-server $(dpkg-query -W -f '${Version}' etcd-server) (module build of $ETCD_VERSION failed)" \
        >"$etcd_dir/SOURCE"
    ln -sf "$(command -v etcd || echo /usr/bin/etcd)" "$etcd_dir/etcd"
}

if [[ ! -x "$k8s_dir/kube-apiserver" ]]; then
    check_pin "$bins/kube-apiserver" k8s.io/kubernetes "$KUBERNETES_VERSION"
    minor=${KUBERNETES_VERSION#v1.}
    minor=${minor%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.gitTreeState=clean"
    done
    build_into "$k8s_dir" "go module k8s.io/kubernetes@$KUBERNETES_VERSION" "$bins/kube-apiserver" \
        "$ldflags" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver \
        || { echo "build-e2e-bins.sh: kube-apiserver build failed" >&2; exit 1; }
fi

if [[ ! -x "$etcd_dir/etcd" ]]; then
    check_pin "$bins/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
    if ! build_into "$etcd_dir" "go module go.etcd.io/etcd/server/v3@$ETCD_VERSION" "$bins/etcd" \
        "-s -w" etcd go.etcd.io/etcd/server/v3; then
        etcd_from_debian
    fi
fi

"$k8s_dir/kube-apiserver" --version
"$etcd_dir/etcd" --version | sed -n 1p  # sed, not head: no SIGPIPE under pipefail
echo "e2e binaries ready: $k8s_dir/kube-apiserver, $etcd_dir/etcd ($(cat "$etcd_dir/SOURCE")); built in" \
    "$(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
