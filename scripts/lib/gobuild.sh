# Sourced by scripts/build-e2e-bins.sh and scripts/build-dataplane-bins.sh: pinned versions, go.mod pin
# checks and atomic builds from a pinned module into the versioned binary cache.
# The calling script sets `set -euo pipefail`; error messages name it ($0).

version_of() { # VERSIONS_FILE KEY -> the KEY=value line's value
    sed -n "s/^$2=//p" "$1"
}

check_pin() { # MODULE_DIR MODULE WANT: the module's version in MODULE_DIR/go.mod must equal VERSIONS
    local got
    got=$(cd "$1" && go list -m -f '{{.Version}}' "$2")
    [[ "$got" == "$3" ]] || { echo "$(basename "$0"): $1/go.mod pins $2 $got, VERSIONS says $3" >&2; exit 1; }
}

build_into() { # DEST_DIR SOURCE_NOTE MODULE_DIR LDFLAGS OUT PACKAGE...: returns 1 if go build fails
    # `go build -o TMP/OUT` in MODULE_DIR (OUT empty with several packages: each binary is named after its
    # package), then every binary is renamed into DEST_DIR, so none appears half-written; SOURCE records
    # where they came from. CGO_ENABLED is the caller's.
    local dest_dir=$1 note=$2 module_dir=$3 ldflags=$4 out=$5 tmp binary
    shift 5
    mkdir -p "$dest_dir"
    tmp=$(mktemp -d "$dest_dir/.build.XXXXXX")
    echo "building $* into $dest_dir (go build; this takes minutes) ..."
    if ! (cd "$module_dir" && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$tmp/$out" "$@"); then
        rm -rf "$tmp"
        return 1
    fi
    echo "$note" >"$dest_dir/SOURCE"
    for binary in "$tmp"/*; do mv "$binary" "$dest_dir/"; done
    rm -rf "$tmp"
}
