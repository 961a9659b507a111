# routectl — every install step lives here, so a fresh machine needs only `make demo` / `make test`.
SHELL := /bin/bash
# The full suite runs on Python 3.11 (pyenv's, else python3.11 on PATH, else python3); the other supported
# versions get venvs of their own (.venv-3.12, .venv-3.13), see "Other Python versions" below.
PYTHON ?= $(shell scripts/find-python.sh 3.11 2>/dev/null || echo python3)
VENV := .venv
export VENV
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PKGS := routectl providers ipam
# Test binaries (helm, kube-apiserver, etcd, prometheus and promtool, flanneld, CNI plugins) and the
# monitoring CRDs come from Go modules, built or fetched into a versioned cache outside the repo and
# reused when present; so are the container image's base, wheels and layers (CACHE_DIR/image).
CACHE_DIR ?= $(HOME)/.cache/routectl
export ROUTECTL_BIN_CACHE := $(CACHE_DIR)
TIER := scripts/run-tier.sh

.PHONY: demo test test-quick lint bench venv unit providers chart e2e dataplane clean
.PHONY: helm-bin e2e-bins prometheus-bin dataplane-bins image image-test lock unit-pythons test-pythons

# Runtime dependencies at the image's pins (constraints.txt): every venv tests what the image ships, and
# pip resolves at once instead of backtracking through old boto3/botocore releases.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,test,demo,bench]' --constraint constraints.txt
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/routectl demo

# Every tier, each also a target of its own; the test binaries are built first when missing (a no-op once
# cached), on a developer's machine as under CI.
test: lint unit providers chart e2e dataplane image-test unit-pythons

test-quick: lint unit

lint: $(STAMP)
	$(VENV)/bin/ruff check $(PKGS) tests bench scripts
	$(VENV)/bin/ruff format --check $(PKGS) tests bench scripts
	$(VENV)/bin/mypy --strict $(PKGS)

unit: $(STAMP)
	$(TIER) unit tests/unit

providers: $(STAMP)
	$(TIER) providers tests/providers

helm-bin:
	scripts/build-helm.sh "$(CACHE_DIR)"

e2e-bins:
	scripts/build-e2e-bins.sh "$(CACHE_DIR)"
	scripts/fetch-monitoring-crds.sh "$(CACHE_DIR)"

# prometheus, promtool and the promql-names parser helper (chart and e2e tiers' alert and dashboard checks).
prometheus-bin:
	scripts/build-prometheus.sh "$(CACHE_DIR)"

dataplane-bins:
	scripts/build-dataplane-bins.sh "$(CACHE_DIR)"

chart: $(STAMP) helm-bin prometheus-bin
	$(TIER) chart tests/chart

e2e: $(STAMP) e2e-bins helm-bin prometheus-bin
	$(TIER) e2e tests/e2e

# Needs root (network namespaces): elsewhere the tier skips, loudly; under CI=true it fails.
dataplane: $(STAMP) e2e-bins helm-bin dataplane-bins
	$(TIER) dataplane tests/dataplane

bench: $(STAMP)
	$(PY) -m bench

# --- Container image (docs/install.md, section 8) -------------------------------------------------
# `make image` builds routectl:VERSION for every cloud, `make image CLOUDS=aws` a single-cloud one;
# `make image-test` builds both and runs the image tier (tests/image) on them. `make lock` refreshes the
# pins (constraints.txt) the image installs.
CLOUDS ?= aws,gcp,alibaba

image: $(STAMP)
	scripts/image.sh build "$(CACHE_DIR)" "$(PYTHON)" "$(CLOUDS)"

image-test: $(STAMP) helm-bin e2e-bins
	scripts/image.sh test "$(CACHE_DIR)" "$(PYTHON)"

lock:
	scripts/lock.sh "$(PYTHON)"

# --- Other Python versions ---------------------------------------------------------------------------
# The same targets in .venv-X.Y, built from that interpreter: `make unit-pythons` (part of `make test`)
# runs the unit tier on each, `make test-pythons` lint + unit + providers. A missing interpreter fails
# under CI=true and is a loud notice elsewhere.
OTHER_PYTHONS := 3.12 3.13

unit-pythons:
	@$(MAKE) --no-print-directory each-python TARGETS=unit

test-pythons:
	@$(MAKE) --no-print-directory each-python TARGETS="lint unit providers"

.PHONY: each-python
each-python:
	@for version in $(OTHER_PYTHONS); do \
		if ! python=$$(scripts/find-python.sh $$version); then \
			if [ "$$CI" = "true" ]; then exit 1; fi; \
			echo "!!! Python $$version SKIPPED: no interpreter (see above)" >&2; continue; \
		fi; \
		echo "=== Python $$version: $(TARGETS) ($$python, .venv-$$version) ==="; \
		$(MAKE) --no-print-directory $(TARGETS) VENV=.venv-$$version PYTHON=$$python || exit 1; \
	done

clean:
	rm -rf $(VENV) $(OTHER_PYTHONS:%=.venv-%) .mypy_cache .ruff_cache .pytest_cache
