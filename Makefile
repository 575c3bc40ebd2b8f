# parallax: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PYTHON      := $(VENV)/bin/python
ORT_VERSION := 1.31.1
# The ONNX Runtime library the workers load at run time (ort's load-dynamic).
export ORT_DYLIB_PATH ?= $(abspath $(VENV))/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.$(ORT_VERSION)
CARGO       ?= cargo
APT_PACKAGES := ffmpeg chromium chromium-driver
# A CI run builds once from scratch: incremental caches would only cost disk there.
ifeq ($(CI),true)
export CARGO_INCREMENTAL ?= 0
endif

.PHONY: demo up fleet-release bench-fleet
.PHONY: help setup system-deps venv test lint fmt clean test-aws infra-lint localstack bench bench-video bench-media bench-web bench-quality gpu-check

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: system-deps venv ## Install what a fresh machine lacks (system packages, Python venv, nextest)
	@command -v cargo-nextest >/dev/null || $(CARGO) install cargo-nextest --locked

system-deps: ## Install missing system packages (ffmpeg, chromium + chromium-driver for browser tests) with apt-get when running as root
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing (e.g. sudo apt-get install$$missing)"; exit 1; fi; \
	fi

venv: $(VENV)/.stamp ## Python tools in a local venv (onnxruntime for the depth model, onnx to write models)

$(VENV)/.stamp: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

test: setup lint infra-lint ## Run every test, lint included (installs what is missing first); the engine's tests also on its portable (non-SIMD) code
	VENV=$(VENV) infra/local/with-moto.sh $(CARGO) nextest run --workspace --features parallax-core/aws --no-fail-fast
	PARALLAX_SIMD=portable $(CARGO) nextest run -p parallax-engine --no-fail-fast

test-aws: setup ## The AWS adapters' conformance suite against a fresh moto server
	VENV=$(VENV) infra/local/with-moto.sh $(CARGO) nextest run -p parallax-core --features aws --no-fail-fast

infra-lint: venv ## cfn-lint and checkov on the CloudFormation templates in infra/
	$(VENV)/bin/cfn-lint infra/cloudformation/*.yaml
	$(VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -d infra/cloudformation

localstack: ## Start LocalStack with parallax's resources (needs Docker; see README)
	docker compose -f infra/local/docker-compose.yml up -d --wait

demo: setup fleet-release ## Convert a generated sample clip end to end through the local fleet; the 3D result lands in out/
	target/release/parallax-fleet demo --out-dir out

up: setup fleet-release ## Run web-ui, media-worker and video-worker until Ctrl-C (WEB_UI_PORT, default 8080; DATA_DIR, default ./data)
	target/release/parallax-fleet up

fleet-release: ## Build the fleet's binaries (release)
	$(CARGO) build --release -p web-ui -p media-worker -p video-worker -p parallax-e2e --bins

bench: bench-quality bench-video bench-media bench-web bench-fleet ## Run every benchmark; figures in target/bench/results.json

bench-fleet: setup fleet-release ## Fleet figures (release): fleet_vs_single_process (1 and 2 video-workers), 60 s 720p clip
	target/release/parallax-fleet bench --results target/bench/results.json

bench-media: ## media-worker figures (release): chunk_vs_remux, concat_vs_remux on a 60 s 1080p source
	$(CARGO) run --release -p media-worker --example bench_media

bench-quality: venv ## Picture figures: disparity_error_px, edge_artifact_ratio, static_flicker, seam_jump on generated scenes of known depth
	BENCH_ONLY=quality $(CARGO) bench -p parallax-engine --bench video

gpu-check: venv ## On a GPU host (not part of make test): the execution provider in use and the real-size model's fps (EXECUTION_PROVIDER, default cuda; ORT_DYLIB_PATH to onnxruntime-gpu's library)
	BENCH_ONLY=gpu $(CARGO) bench -p parallax-engine --bench video

bench-video: venv ## Engine figures (release): frame_path_vs_ffmpeg, inference_vs_onnxruntime, warp_mpix_per_s, warp10_vs_warp8, rerender_vs_first, and the picture figures
	$(CARGO) bench -p parallax-engine --bench video

bench-web: ## web-ui figures (release): dashboard_rps, dashboard_p99_ms with 10,000 jobs
	$(CARGO) build --release -p web-ui --bin web-ui --example bench_web
	target/release/examples/bench_web --server target/release/web-ui --results target/bench/results.json

lint: ## Format check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --features parallax-core/aws -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

clean: ## Remove build output and local state
	$(CARGO) clean
	rm -rf data out
