# kubevc: every target creates what it needs (.venv, tool venvs, Debian packages) on first use.
# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
PY          := $(BIN)/python
TOOLS       := .tools
EXTRAS      := gen,gateway,video,demo,test,dev,bench
DEMO_EXTRAS := gen,gateway,demo
# Tools with dependency pins of their own live in venvs of their own (see docs/architecture.md).
CHECKOV     := $(TOOLS)/checkov/bin/checkov
MLSERVER    := $(TOOLS)/mlserver/bin/mlserver
TF_PYTHON   := $(TOOLS)/tf/bin/python
TRITON_PYTHON := $(TOOLS)/triton/bin/python
TF_VERSION  := 2.21.0
export KUBEVC_CHECKOV   := $(abspath $(CHECKOV))
export KUBEVC_MLSERVER  := $(abspath $(MLSERVER))
export KUBEVC_TF_PYTHON := $(abspath $(TF_PYTHON))
export KUBEVC_TRITON_PYTHON := $(abspath $(TRITON_PYTHON))
export PATH := $(abspath $(BIN)):$(PATH)
PIP_QUIET   := --quiet --disable-pip-version-check
# pip byte-compiles every file it installs (half of an install's CPU); Python compiles what it
# imports on first use instead. For the demo's venvs only (make demo <= 5 min on a fresh machine).
PIP_NO_COMPILE := --no-compile
# Debian packages the tests use: debootstrap (pyinfra @chroot tests), iproute2 (network
# namespaces for benchmarks), zstd (chroot cache), prometheus + node exporter (monitoring tests),
# wrk (benchmark load generator in its own process), mmdebstrap + umoci + runc + crun (the gateway
# image: built by `make image`, unpacked and run by tests/image), libturbojpeg0 (the gateway's
# JPEG decoding at any DCT scale, tests/gateway/test_dct_resize.py).
# What `make image` / `make image-push` need: mmdebstrap (Debian root), skopeo (push); umoci, runc
# and crun run the image in tests/image.
IMAGE_APT_PACKAGES := mmdebstrap umoci skopeo runc crun
APT_PACKAGES := debootstrap iproute2 zstd prometheus prometheus-node-exporter wrk $(IMAGE_APT_PACKAGES) prometheus-alertmanager libturbojpeg0
# Pinned runtime dependencies of the gateway: the image build and the venv use the same versions.
CONSTRAINTS := constraints/gateway.txt
VERSION     := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
IMAGE       := kubevc-gateway
PLATFORMS   ?= linux/amd64 linux/arm64

.PHONY: help venv tools system-deps apt-install image-deps test test-again test-fast test-under-load demo lint protos fleet bench bench-full clean \
	image image-push image-measure constraints

help:
	@echo "make demo   - a demo fleet with two regions rendered, validated and committed; the gateway answers a request"
	@echo "make test   - the whole test suite (installs everything it needs first)"
	@echo "make lint   - ruff + mypy --strict on kubevc.generator, kubevc.gateway, kubevc.nodeprep + lint-imports (layers)"
	@echo "make protos - regenerate gateway/_proto from protos/*.proto"
	@echo "make fleet  - re-render the committed example fleet in fleet/"
	@echo "make bench  - quick benchmarks (< 3 min), results in bench/results and docs/benchmarks.md"
	@echo "make image  - the gateway OCI image for $(PLATFORMS) in build/oci (docs/deployment.md)"
	@echo "make image-push REGISTRY=host/namespace - push build/oci:$(VERSION) (all platforms) with skopeo"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --upgrade pip setuptools wheel
	$(PY) -m pip install $(PIP_QUIET) -e ".[$(EXTRAS)]" --constraint $(CONSTRAINTS)
	touch $@ $(VENV)/.installed-demo

# The demo runs kubevc-gen and the gateway only: no test, lint or benchmark tools, no TF/MLServer.
$(VENV)/.installed-demo: pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) $(PIP_NO_COMPILE) --upgrade pip setuptools wheel
	$(PY) -m pip install $(PIP_QUIET) $(PIP_NO_COMPILE) -e ".[$(DEMO_EXTRAS)]" --constraint $(CONSTRAINTS)
	touch $@

# A stamp file per tool venv marks a finished install, so an interrupted one is redone.
tools: $(TOOLS)/checkov/.installed $(TOOLS)/mlserver/.installed $(TOOLS)/tf/.installed $(TOOLS)/triton/.installed

$(TOOLS)/checkov/.installed:
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install $(PIP_QUIET) $(PIP_NO_COMPILE) "checkov>=3.2,<4"
	touch $@

$(TOOLS)/mlserver/.installed:
	$(PYTHON) -m venv $(TOOLS)/mlserver
	$(TOOLS)/mlserver/bin/pip install $(PIP_QUIET) "mlserver>=1.6,<1.8" numpy
	touch $@

# tensorflow-serving-api pulls the full tensorflow; tensorflow-cpu of the same version + --no-deps is enough.
$(TOOLS)/tf/.installed:
	$(PYTHON) -m venv $(TOOLS)/tf
	$(TOOLS)/tf/bin/pip install $(PIP_QUIET) "tensorflow-cpu==$(TF_VERSION)"
	$(TOOLS)/tf/bin/pip install $(PIP_QUIET) --no-deps "tensorflow-serving-api==$(TF_VERSION)"
	touch $@

# The real tritonserver (CPU, Python backend) that nvidia-pytriton's wheel ships; models' Python
# code runs with this venv's numpy. kubevc.gateway.testing.run_tritonserver starts it.
$(TOOLS)/triton/.installed:
	$(PYTHON) -m venv $(TOOLS)/triton
	$(TOOLS)/triton/bin/pip install $(PIP_QUIET) "nvidia-pytriton==0.7.0" numpy
	touch $@

# Installs missing Debian packages when running as root; otherwise says what the tests will skip.
system-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

image-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(IMAGE_APT_PACKAGES)"

apt-install:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "not root: Debian packages$$missing missing; tests needing them are skipped"; fi

# The suite runs on two workers, one file (or one group of files sharing an expensive fixture, see
# tests/conftest.py) per worker at a time, in a random order whose seed pytest-randomly prints
# ("Using --randomly-seed=N"); `make test SEED=N` repeats that order; a plain `pytest` is serial.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile
SEED ?=
PYTEST_SEED = $(if $(SEED),--randomly-seed=$(SEED))
# A seed other than the previous run's (pytest-randomly keeps that one in .pytest_cache).
OTHER_SEED = $$($(PY) -c 'import json, pathlib, random; p = pathlib.Path(".pytest_cache/v/randomly_seed"); \
	last = json.loads(p.read_text()) if p.is_file() else None; \
	print(next(s for s in iter(lambda: random.getrandbits(32), None) if s != last))')

test: venv tools system-deps
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_SEED)

# The whole suite once more in another order (CI runs `make test` then this; both must pass).
test-again: venv tools system-deps
	$(PY) -m pytest $(PYTEST_PARALLEL) --randomly-seed=$(if $(SEED),$(SEED),$(OTHER_SEED))

# The whole suite beside a CPU hog (stress-ng from Debian) at a load average of about LOAD; the
# load seen during the run is printed at the end (issue 19: the suite must hold at load 8).
LOAD ?= 8
test-under-load: venv tools system-deps
	LOAD=$(LOAD) bash .ci/under-load

test-fast: venv
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_SEED) -m "not slow"

# validate runs checkov, so the demo needs that tool venv and no other.
demo: $(VENV)/.installed-demo $(TOOLS)/checkov/.installed
	$(PY) -m kubevc.generator.demo
	$(PY) -m kubevc.gateway.demo

# The gateway image, built offline (Debian + PyPI only, no container registry): docs/deployment.md.
image: venv image-deps
	$(PY) image/build.py build $(addprefix --platform ,$(PLATFORMS))

# Re-resolve the gateway's pinned dependencies for every image platform (after editing pyproject.toml).
constraints: venv
	$(PY) image/build.py lock $(addprefix --platform ,$(PLATFORMS))

# skopeo copy --all: the image index with every platform, to REGISTRY/kubevc-gateway:VERSION.
image-push: image-deps
	@test -f build/oci/index.json || { echo "image-push: no build/oci: run make image first" >&2; exit 2; }
	@if [ -z "$(REGISTRY)" ]; then \
	  echo "would run: skopeo copy --all oci:build/oci:$(VERSION) docker://REGISTRY/$(IMAGE):$(VERSION)"; \
	  echo "image-push: error: set REGISTRY, e.g. make image-push REGISTRY=ghcr.io/kubevc" >&2; exit 2; fi
	skopeo copy --all $(SKOPEO_FLAGS) oci:build/oci:$(VERSION) docker://$(REGISTRY)/$(IMAGE):$(VERSION)

# Start-to-ready time of the built image under runc (docs/deployment.md).
image-measure: venv image-deps
	$(PY) -m image.measure

lint: venv
	rm -rf build/mypy && mkdir -p build/mypy/kubevc
	ln -s ../../../generator build/mypy/kubevc/generator
	ln -s ../../../gateway build/mypy/kubevc/gateway
	ln -s ../../../nodeprep build/mypy/kubevc/nodeprep
	ln -s ../../image build/mypy/image
	$(BIN)/ruff check generator gateway nodeprep tests bench image
	$(BIN)/ruff format --check generator gateway nodeprep tests bench image
	cd build/mypy && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p kubevc.generator -p kubevc.gateway -p kubevc.nodeprep
	cd build/mypy && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p image
	$(BIN)/lint-imports

protos: venv
	$(PY) -m kubevc.gateway._protogen

fleet: venv
	$(PY) -m kubevc.generator.demo --write-fleet fleet

bench: venv system-deps
	$(PY) -m bench --quick

bench-full: venv tools system-deps
	$(PY) -m bench --full

clean:
	rm -rf $(VENV) $(TOOLS) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# KServe's ModelServer for the benchmark's transformer row (bench/suites/kserve.py): `make bench-full`
# only, never `make test` or `make demo`.
KSERVE_PYTHON := $(TOOLS)/kserve/bin/python
export KUBEVC_KSERVE_PYTHON := $(abspath $(KSERVE_PYTHON))

$(TOOLS)/kserve/.installed:
	$(PYTHON) -m venv $(TOOLS)/kserve
	$(TOOLS)/kserve/bin/pip install $(PIP_QUIET) "kserve==0.21.*" numpy pillow
	touch $@

bench-full: $(TOOLS)/kserve/.installed
