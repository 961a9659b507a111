#!/usr/bin/env bash
# Build the dataplane tier's flanneld and CNI plugins from Go modules into the versioned cache.
# Usage: scripts/build-dataplane-bins.sh CACHE_DIR
#   -> CACHE_DIR/dataplane/flannel-$FLANNEL_VERSION/flanneld                      (github.com/flannel-io/flannel)
#      and kube-flannel.yml from the same module (the tier applies flannel's own ServiceAccount and RBAC)
#   -> CACHE_DIR/dataplane/cni-plugins-$CNI_PLUGINS_VERSION/{bridge,host-local}   (containernetworking/plugins)
# One pinned module (tests/dataplane/bins/go.mod, go.sum committed) names all three with `tool` directives.
# Idempotent: a directory is skipped when its binaries are there; binaries appear only once built (atomic
# rename); each versioned directory holds a SOURCE file saying where its binaries came from.
#
# Two things keep flannel's main module from building as-is, and are handled here, reproducibly:
# - it requires github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc v1.3.188, which the Go module
#   proxy refuses (403). bins/go.mod replaces it with v1.3.75, a served version (the one flannel v0.28.4
#   shipped with); only the tencentvpc backend, unused here, imports it.
# - its udp backend has a cgo file (pkg/backend/udp/cproxy_amd64.go): with CGO_ENABLED=0 that file is left
#   out and the package fails to compile (undefined: runCProxy ...). flanneld is built with CGO_ENABLED=1,
#   so a C compiler is needed; the CNI plugins are pure Go and built with CGO_ENABLED=0.
# Machine packages the tier needs and a fresh Debian machine may lack are installed with apt-get when
# missing: gcc (for the cgo build) and nftables (`nft`, which flanneld's nftables mode runs in each node).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bins="$repo/tests/dataplane/bins"
cache_dir=${1:?usage: $0 CACHE_DIR}
# shellcheck source=lib/gobuild.sh
source "$repo/scripts/lib/gobuild.sh"

FLANNEL_VERSION=$(version_of "$repo/tests/dataplane/VERSIONS" FLANNEL_VERSION)
CNI_PLUGINS_VERSION=$(version_of "$repo/tests/dataplane/VERSIONS" CNI_PLUGINS_VERSION)
flannel_dir="$cache_dir/dataplane/flannel-$FLANNEL_VERSION"
cni_dir="$cache_dir/dataplane/cni-plugins-$CNI_PLUGINS_VERSION"
plugins=(main/bridge ipam/host-local)

cni_built() {
    local plugin
    for plugin in "${plugins[@]}"; do [[ -x "$cni_dir/${plugin#*/}" ]] || return 1; done
}

need_command() { # COMMAND DEBIAN_PACKAGE WHY: install the package when the command is missing
    command -v "$1" >/dev/null && return 0
    command -v apt-get >/dev/null || { echo "build-dataplane-bins.sh: $1 not found ($3) and no apt-get to install $2" >&2; exit 1; }
    echo "build-dataplane-bins.sh: $1 not found ($3); installing Debian's $2"
    apt-get install -y -q "$2" >&2 || { echo "build-dataplane-bins.sh: apt-get install $2 failed" >&2; exit 1; }
}
need_command nft nftables "flanneld's nftables mode runs it inside each node namespace"
need_command iptables iptables "flanneld clears its iptables rules at start, even in nftables mode, and exits without the binary"

flannel_built() {
    [[ -x "$flannel_dir/flanneld" && -f "$flannel_dir/kube-flannel.yml" ]]
}

if flannel_built && cni_built; then
    echo "dataplane binaries already built: $flannel_dir/flanneld, $cni_dir/{bridge,host-local}"
    exit 0
fi
command -v go >/dev/null || { echo "build-dataplane-bins.sh: go toolchain not found (needed to build flanneld and the CNI plugins)" >&2; exit 1; }

export GOFLAGS="-mod=mod -buildvcs=false"

check_pin "$bins" github.com/flannel-io/flannel "$FLANNEL_VERSION"
check_pin "$bins" github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION"

if ! flannel_built; then
    # The manifest first: the binary, renamed last, is what marks the directory complete.
    mkdir -p "$flannel_dir"
    # `go list -m` names the module's directory only once it is downloaded: on a cold machine download it first.
    (cd "$bins" && go mod download github.com/flannel-io/flannel)
    manifest="$(cd "$bins" && go list -m -f '{{.Dir}}' github.com/flannel-io/flannel)/Documentation/kube-flannel.yml"
    cp "$manifest" "$flannel_dir/.kube-flannel.yml.$$" && mv "$flannel_dir/.kube-flannel.yml.$$" "$flannel_dir/kube-flannel.yml"
    need_command "${CC:-gcc}" gcc "flannel's udp backend needs cgo"
    export CGO_ENABLED=1
    build_into "$flannel_dir" \
        "go module github.com/flannel-io/flannel@$FLANNEL_VERSION (CGO_ENABLED=1; tencentcloud-sdk-go vpc replaced by v1.3.75)" \
        "$bins" "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" flanneld \
        github.com/flannel-io/flannel \
        || { echo "build-dataplane-bins.sh: flanneld build failed" >&2; exit 1; }
fi

if ! cni_built; then
    export CGO_ENABLED=0
    build_into "$cni_dir" "go module github.com/containernetworking/plugins@$CNI_PLUGINS_VERSION (CGO_ENABLED=0)" \
        "$bins" "-s -w" "" "${plugins[@]/#/github.com/containernetworking/plugins/plugins/}" \
        || { echo "build-dataplane-bins.sh: CNI plugins build failed" >&2; exit 1; }
fi

"$flannel_dir/flanneld" --version
echo "dataplane binaries ready: $flannel_dir/flanneld, $cni_dir/{bridge,host-local}"
