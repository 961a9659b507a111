#!/usr/bin/env bash
# Build the container image from the repository's Dockerfile with a private Docker daemon, and test it.
#
# Usage: scripts/image.sh build|test CACHE_DIR PYTHON [CLOUDS]
#   build  routectl:VERSION (every cloud), or routectl:VERSION-CLOUD when CLOUDS names one cloud, saved as
#          CACHE_DIR/image/routectl-TAG.tar for `docker load` (`make image`, `make image CLOUDS=aws`)
#   test   build routectl:VERSION and routectl:VERSION-aws, then run the image tier (tests/image) on them
#          (`make image-test`). Under CI=true a Docker that cannot run fails; elsewhere the tier's image
#          tests skip with a loud notice and its package test still runs.
# PYTHON is a Python 3.11 (the image's version): it builds the wheels on the host.
#
# Steps, each cached under CACHE_DIR/image (outside the repo):
# 1. Debian's docker.io (and mmdebstrap) are installed with apt-get when missing. Debian's 20.10 client
#    (/usr/bin/docker) is used explicitly: a newer client first on PATH may lack the builder it defaults to.
# 2. A private dockerd: --iptables=false --ip-forward=false --bridge=none (it changes nothing in the host's
#    network), its data root (the layer cache) in CACHE_DIR/image/docker, its exec root, socket and log in a
#    temp dir. It is stopped by PID (SIGTERM, then SIGKILL), its containerd too, and every mount left under
#    its directories is unmounted, on any exit. A lock file serialises runs sharing one cache.
# 3. The base image: python:3.11-slim when present or pullable; else (no registry reachable) one made from
#    Debian packages with mmdebstrap (python3, python3-venv, ca-certificates, libstdc++6), kept as a tarball
#    (image/base/) and `docker import`ed; passed to the Dockerfile as BASE_IMAGE.
# 4. Wheels, built on the host: every dependency pinned by constraints.txt in CACHE_DIR/image/wheels (from
#    the package index only when the cache lacks one), and routectl's own, gathered in the build context.
# 5. `docker build --network=none`: the Dockerfile installs the wheels offline.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?usage: $0 build|test CACHE_DIR PYTHON [CLOUDS]}
cache_dir=${2:?usage: $0 build|test CACHE_DIR PYTHON [CLOUDS]}
python=${3:?usage: $0 build|test CACHE_DIR PYTHON [CLOUDS]}
clouds=${4:-aws,gcp,alibaba}
[[ "$mode" == build || "$mode" == test ]] || { echo "image.sh: unknown mode '$mode'" >&2; exit 2; }

docker=${ROUTECTL_DOCKER:-/usr/bin/docker}
dockerd=${ROUTECTL_DOCKERD:-/usr/sbin/dockerd}
image_cache="$cache_dir/image"
wheel_cache="$image_cache/wheels"
all_clouds=aws,gcp,alibaba
default_base=python:3.11-slim
debian_packages=python3,python3-venv,ca-certificates,libstdc++6  # grpcio (GCP) links libstdc++

say() { echo "image.sh: $*" >&2; }
elapsed() { # START -> "12.3 s"
    awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - s }'
}

version=$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$repo/pyproject.toml")
minor=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ "$minor" == 3.11 ]] || { say "$python is Python $minor; the image's wheels are built with 3.11"; exit 1; }

tag_for() { # CLOUDS -> image tag
    if [[ "$1" == "$all_clouds" ]]; then echo "routectl:$version"; else echo "routectl:$version-${1//,/-}"; fi
}

# --- 1. tools ---------------------------------------------------------------------------------------

apt_install() { # PACKAGE...: install with apt-get (root only), refreshing the package lists once if needed
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || { say "cannot install $* (needs root and apt-get)"; return 1; }
    say "installing Debian packages: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; }
}

ensure_docker() {
    [[ -x "$docker" && -x "$dockerd" ]] || apt_install docker.io || return 1
    [[ -x "$docker" && -x "$dockerd" ]] || { say "docker.io installed no $docker / $dockerd"; return 1; }
}

# --- 2. the private daemon --------------------------------------------------------------------------

run_dir=""
dockerd_pid=""

stop_dockerd() {
    [[ -n "$run_dir" ]] || return 0
    if [[ -n "$dockerd_pid" ]] && kill -0 "$dockerd_pid" 2>/dev/null; then
        kill -TERM "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
    fi
    local containerd_pid
    containerd_pid=$(cat "$run_dir/exec/containerd/containerd.pid" 2>/dev/null || true)
    if [[ -n "$containerd_pid" ]] && kill -0 "$containerd_pid" 2>/dev/null; then
        kill -KILL "$containerd_pid" 2>/dev/null || true
    fi
    # Mounts left by a daemon that did not stop cleanly (container rootfs, netns, shm): deepest first.
    local mount
    awk -v a="$run_dir/" -v b="$image_cache/docker/" \
        'index($5, a) == 1 || index($5, b) == 1 { print $5 }' /proc/self/mountinfo | sort -r \
        | while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
    rm -rf "$run_dir"
    run_dir=""
}

start_dockerd() {
    run_dir=$(mktemp -d /tmp/routectl-dockerd.XXXXXX)
    mkdir -p "$image_cache/docker"
    echo '{}' >"$run_dir/daemon.json"  # no host /etc/docker/daemon.json applies
    "$dockerd" --config-file "$run_dir/daemon.json" --data-root "$image_cache/docker" \
        --exec-root "$run_dir/exec" --pidfile "$run_dir/dockerd.pid" --host "unix://$run_dir/docker.sock" \
        --iptables=false --ip-forward=false --ip-masq=false --bridge=none --log-level=warn \
        >"$run_dir/dockerd.log" 2>&1 9>&- &  # fd 9 is the cache lock: no daemon process may keep it
    dockerd_pid=$!
    export DOCKER_HOST="unix://$run_dir/docker.sock"
    local started
    started=$(date +%s.%N)
    for _ in $(seq 300); do
        if "$docker" version >/dev/null 2>&1; then
            say "private dockerd (pid $dockerd_pid) ready in $(elapsed "$started"), data root $image_cache/docker"
            return 0
        fi
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.1
    done
    say "dockerd did not start; its log:"
    tail -20 "$run_dir/dockerd.log" >&2
    return 1
}

# --- 3. the base image ------------------------------------------------------------------------------

debian_base() { # -> a base image made from Debian packages, built once and cached as a tarball
    local suite sources options key tarball tag
    suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    sources=/etc/apt/sources.list.d/debian.sources
    [[ -f "$sources" ]] || sources=/etc/apt/sources.list
    [[ -n "$suite" && -f "$sources" ]] || { say "no Debian suite or apt sources on this host for mmdebstrap"; return 1; }
    # Leave out documentation, manuals and translations (copyright files stay); merged /usr like Debian.
    options=(--variant=essential "--include=$debian_packages" --mode=unshare
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
        "--dpkgopt=path-exclude=/usr/share/man/*" "--dpkgopt=path-exclude=/usr/share/locale/*"
        "--dpkgopt=path-exclude=/usr/share/info/*" "--dpkgopt=path-exclude=/usr/share/doc/*"
        "--dpkgopt=path-include=/usr/share/doc/*/copyright")
    key=$(printf '%s\n' "$suite" "${options[@]}" | sha256sum | cut -c1-12)
    tarball="$image_cache/base/debian-$suite-$key.tar"
    tag="routectl-base:debian-$suite-$key"
    if "$docker" image inspect "$tag" >/dev/null 2>&1; then
        echo "$tag"
        return 0
    fi
    if [[ ! -f "$tarball" ]]; then
        command -v mmdebstrap >/dev/null || apt_install mmdebstrap >&2 || return 1
        mkdir -p "$image_cache/base"
        say "building the base from Debian $suite packages ($debian_packages) with mmdebstrap (~2 min) ..."
        local started
        started=$(date +%s.%N)
        local partial="$image_cache/base/.partial-$key.tar"  # mmdebstrap picks the format by the suffix
        SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s) \
            mmdebstrap "${options[@]}" "$suite" "$partial" "$sources" >"$image_cache/base/mmdebstrap.log" 2>&1 \
            || { say "mmdebstrap failed:"; tail -5 "$image_cache/base/mmdebstrap.log" >&2; rm -rf "$partial"; return 1; }
        mv "$partial" "$tarball"
        say "base tarball built in $(elapsed "$started"): $tarball"
    fi
    "$docker" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/sh"]' "$tarball" "$tag" >/dev/null || return 1
    echo "$tag"
}

base_image() { # -> the base image to build on: ROUTECTL_BASE_IMAGE, python:3.11-slim, or the Debian one
    local base=${ROUTECTL_BASE_IMAGE:-$default_base}
    if "$docker" image inspect "$base" >/dev/null 2>&1 || timeout 300 "$docker" pull -q "$base" >/dev/null 2>&1; then
        echo "$base"
    elif [[ -n "${ROUTECTL_BASE_IMAGE:-}" ]]; then
        say "base image $base can neither be found nor pulled"
        return 1
    else
        say "$base cannot be pulled (no registry reachable); using a base made from Debian packages"
        debian_base
    fi
}

# --- 4. wheels --------------------------------------------------------------------------------------

pip_offline() { # pip ARGS... with only the wheel cache as package source
    "$python" -m pip "$@" --no-index --find-links "$wheel_cache" --constraint "$repo/constraints.txt"
}

gather_wheels() { # DIST CONTEXT CLOUDS...: routectl's wheel into DIST; per cloud set, its dependencies
    local dist=$1 context=$2 cloud_set
    shift 2
    # SOURCE_DATE_EPOCH: the same tree gives the same wheel bytes.
    SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 315532800) \
        pip_offline wheel -q --no-deps --wheel-dir "$dist" "$repo" || return 1
    for cloud_set in "$@"; do
        mkdir -p "$context/$cloud_set"
        pip_offline wheel -q --find-links "$dist" --wheel-dir "$context/$cloud_set/wheels" \
            "routectl[$cloud_set]" || return 1
        rm -f "$context/$cloud_set/wheels"/routectl-*.whl
        cp -r "$dist" "$context/$cloud_set/dist"
        cp "$repo/constraints.txt" "$context/$cloud_set/"
    done
}

wheels() { # CONTEXT CLOUDS...: a build context per cloud set, from the wheel cache (filled when short)
    local context=$1
    shift
    mkdir -p "$wheel_cache"
    if ! gather_wheels "$context/dist" "$context" "$@" 2>"$context/offline.log"; then
        say "the wheel cache $wheel_cache lacks some pinned wheel; filling it from the package index ..."
        "$python" -m pip wheel -q --find-links "$wheel_cache" --constraint "$repo/constraints.txt" \
            --wheel-dir "$wheel_cache" "$repo[$all_clouds]" "setuptools"
        rm -f "$wheel_cache"/routectl-*.whl
        rm -rf "${context:?}"/*
        gather_wheels "$context/dist" "$context" "$@"
    fi
    rm -f "$context/offline.log"
}

# --- 5. build ---------------------------------------------------------------------------------------

build() { # BASE CONTEXT CLOUDS -> builds tag_for(CLOUDS) from CONTEXT/CLOUDS
    local base=$1 context=$2 image_clouds=$3 tag started
    tag=$(tag_for "$image_clouds")
    started=$(date +%s.%N)
    DOCKER_BUILDKIT=0 "$docker" build --quiet --network=none --file "$repo/Dockerfile" \
        --build-arg "BASE_IMAGE=$base" --build-arg "CLOUDS=$image_clouds" \
        --build-arg "VERSION=$version" \
        --build-arg "REVISION=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)" \
        --build-arg "CREATED=$(git -C "$repo" log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)" \
        --tag "$tag" "$context/$image_clouds" >/dev/null
    say "built $tag in $(elapsed "$started"): $(( $("$docker" image inspect -f '{{.Size}}' "$tag") / 1000000 )) MB"
}

context=""

main() {
    local started step base cloud_sets tag
    started=$(date +%s.%N)
    mkdir -p "$image_cache"
    exec 9>"$image_cache/lock"
    flock -n 9 || { say "another image build holds $image_cache/lock; waiting ..."; flock 9; }
    context=$(mktemp -d /tmp/routectl-image-context.XXXXXX)
    trap 'stop_dockerd; rm -rf "$context"' EXIT
    trap 'exit 130' INT TERM
    if [[ "$mode" == test ]]; then cloud_sets=("$all_clouds" aws); else cloud_sets=("$clouds"); fi

    step=$(date +%s.%N)
    wheels "$context" "${cloud_sets[@]}"
    say "wheels ready in $(elapsed "$step"): $(find "$context/${cloud_sets[0]}/wheels" -name '*.whl' | wc -l)" \
        "dependencies of routectl[${cloud_sets[0]}], and routectl's own"

    local docker_ok=true
    ensure_docker && start_dockerd || docker_ok=false
    if [[ "$docker_ok" == true ]]; then
        step=$(date +%s.%N)
        if base=$(base_image); then say "base image $base ready in $(elapsed "$step")"; else docker_ok=false; fi
    fi
    if [[ "$docker_ok" == true ]]; then
        local base_minor
        base_minor=$("$docker" run --rm --network=none --entrypoint python3 "$base" \
            -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        [[ "$base_minor" == "$minor" ]] || { say "base $base has Python $base_minor, the wheels are for $minor"; exit 1; }
        for tag in "${cloud_sets[@]}"; do build "$base" "$context" "$tag"; done
        # Untagged images (earlier builds, stages of old pins) older than a week: the cache stays bounded.
        "$docker" image prune --force --filter until=168h >/dev/null
    fi

    if [[ "$mode" == build ]]; then
        [[ "$docker_ok" == true ]] || { say "no image built: Docker cannot run here"; exit 1; }
        tag=$(tag_for "$clouds")
        "$docker" save "$tag" -o "$image_cache/${tag/:/-}.tar"
        say "image $tag saved to $image_cache/${tag/:/-}.tar (load it with: docker load -i that file)"
        say "done in $(elapsed "$started")"
        return 0
    fi

    if [[ "$docker_ok" == true ]]; then
        export ROUTECTL_DOCKER="$docker" ROUTECTL_IMAGE ROUTECTL_IMAGE_AWS
        ROUTECTL_IMAGE=$(tag_for "$all_clouds")
        ROUTECTL_IMAGE_AWS=$(tag_for aws)
    elif [[ "${CI:-}" == true ]]; then
        say "CI=true and Docker cannot run: the image tier fails"
        exit 1
    fi
    export ROUTECTL_WHEELHOUSE="$context/$all_clouds"
    say "build steps done in $(elapsed "$started"); running the image tier"
    scripts/run-tier.sh image tests/image
}

cd "$repo"
main
