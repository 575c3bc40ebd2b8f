# parallax: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PYTHON      := $(VENV)/bin/python
ORT_VERSION := 1.31.1
# The ONNX Runtime library the workers load at run time (ort's load-dynamic).
# Whatever Python the venv was made with (python3.X): found, not assumed. Looked up by the
# shell each time a recipe runs (make's own wildcard would remember that the folder was
# missing before `venv` made it).
export ORT_DYLIB_PATH ?= $(shell ls -1 $(abspath $(VENV))/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.$(ORT_VERSION) 2>/dev/null | head -n 1)
CARGO       ?= cargo
APT_PACKAGES := ffmpeg chromium chromium-driver
# A CI run builds once from scratch: incremental caches would only cost disk there.
ifeq ($(CI),true)
export CARGO_INCREMENTAL ?= 0
endif

.PHONY: demo up fleet-release bench-fleet
.PHONY: docs docs-check bench-table help setup toolchain system-deps venv test lint fmt clean test-aws infra-lint localstack bench bench-video bench-media bench-web bench-quality bench-realmodel gpu-check

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: toolchain system-deps venv ## Install what a fresh machine lacks (toolchain, system packages, Python venv, nextest)
	@command -v cargo-nextest >/dev/null || $(CARGO) install cargo-nextest --locked

RUST_TOOLCHAIN := $(shell sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
toolchain: ## The Rust toolchain of rust-toolchain.toml: installed by rustup, or an installed stable of that version registered under its name (no internet)
	@if ! rustup toolchain list | grep -q '^$(RUST_TOOLCHAIN)'; then \
	  if rustup run stable rustc --version 2>/dev/null | grep -q '^rustc $(RUST_TOOLCHAIN) '; then \
	    echo "using the installed stable toolchain as $(RUST_TOOLCHAIN)"; \
	    host=$$(rustup run stable rustc -vV | sed -n 's/^host: //p'); \
	    ln -sfn "$$(rustup run stable rustc --print sysroot)" "$${RUSTUP_HOME:-$$HOME/.rustup}/toolchains/$(RUST_TOOLCHAIN)-$$host"; \
	  else rustup toolchain install $(RUST_TOOLCHAIN) --profile minimal -c rustfmt,clippy; fi; \
	fi

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
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)
	$(MAKE) --no-print-directory docs-check

docs: ## Rewrite docs/flags.md from the binaries' own --help
	$(CARGO) build -q -p web-ui -p media-worker -p video-worker -p parallax-launcher --bins --features parallax-core/aws
	docs/gen-flags.sh target/debug docs/flags.md

docs-check: ## Fail when docs/flags.md differs from the binaries' --help (run `make docs`)
	$(CARGO) build -q -p web-ui -p media-worker -p video-worker -p parallax-launcher --bins --features parallax-core/aws
	@docs/gen-flags.sh target/debug target/flags.md
	@diff -u docs/flags.md target/flags.md || { echo "docs/flags.md is stale: run \`make docs\`"; exit 1; }

# Fuzzing (docs/fuzzing.md): cargo-fuzz on nightly, installed into .tools/ when missing;
# seeds, corpora, crash artifacts and the build all under target/fuzz/.
.PHONY: fuzz
FUZZ_SECONDS      ?= 300
FUZZ_TEST_SECONDS ?= 25
FUZZ_TARGETS      := mp4_index mkv_join
FUZZ_DIR          := $(abspath target/fuzz)
FUZZ_TOOLS        := $(abspath .tools)

fuzz: ## Fuzz the readers of uploads (MP4 index, MKV segments) for FUZZ_SECONDS each (default 300); crashes land in target/fuzz/artifacts
	@$(CARGO) +nightly --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	@test -x $(FUZZ_TOOLS)/bin/cargo-fuzz || $(CARGO) install cargo-fuzz --locked --root $(FUZZ_TOOLS)
	fuzz/seeds.sh $(FUZZ_DIR)/seeds
	@rm -rf $(FUZZ_DIR)/tmp && mkdir -p $(FUZZ_DIR)/tmp
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts/$$t || exit 1; \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  TMPDIR=$(FUZZ_DIR)/tmp PATH="$(FUZZ_TOOLS)/bin:$$PATH" $(CARGO) +nightly fuzz run -a --target-dir $(FUZZ_DIR) \
	    $$t $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -max_len=65536 \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ -print_final_stats=1 || exit 1; \
	done

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
	$(CARGO) build --release -p web-ui -p media-worker -p video-worker -p parallax-launcher --bins

bench: bench-quality bench-video bench-media bench-web bench-fleet ## Run every benchmark; figures in target/bench/results.json, the table of them in target/bench/results.md
	$(MAKE) --no-print-directory bench-table

bench-table: ## The one table of figures (commit, date, machine) from target/bench/results.json, written to target/bench/results.md
	$(CARGO) run -q -p parallax-testkit --bin bench-table

bench-fleet: setup fleet-release ## Fleet figures (release): fleet_vs_single_process (1 and 2 video-workers), 60 s 720p clip
	target/release/parallax-fleet bench --results target/bench/results.json

bench-media: ## media-worker figures (release): chunk_vs_remux, concat_vs_remux on a 60 s 1080p source
	$(CARGO) run --release -p media-worker --example bench_media

bench-quality: venv ## Picture figures: disparity_error_px, edge_artifact_ratio, static_flicker, seam_jump on generated scenes of known depth
	BENCH_ONLY=quality $(CARGO) bench -p parallax-engine --bench video

bench-realmodel: venv ## CPU fast depth path: realmodel_cpu_speedup (ViT-S/14 DPT, 720p) and realmodel_depth_error (default model, moving clip)
	BENCH_ONLY=realmodel $(CARGO) bench -p parallax-engine --bench video

gpu-check: venv ## On a GPU host (not part of make test): the execution provider in use and the real-size model's fps (EXECUTION_PROVIDER, default cuda; ORT_DYLIB_PATH to onnxruntime-gpu's library)
	BENCH_ONLY=gpu $(CARGO) bench -p parallax-engine --bench video

bench-video: venv ## Engine figures (release): frame_path_vs_ffmpeg, inference_vs_onnxruntime, warp_mpix_per_s, warp10_vs_warp8, rerender_vs_first, realmodel_cpu_speedup, realmodel_depth_error, and the picture figures
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
