# RDP Doctor: `make run` serves the portal with a private PostgreSQL and a local agent;
# `make test` runs every test. Both install what is missing first; a second run is fast.

SHELL := /bin/bash
.DEFAULT_GOAL := help

WASM_BINDGEN_VERSION := 0.2.130
WASM_TARGET := wasm32-unknown-unknown
SITE_PKG := target/site/pkg
OUTPUT_NAME := rdp_doctor
CARGO ?= cargo
# Quiet cargo in CI logs; the summary lines of each test binary still print.
CARGO_TEST_FLAGS ?=

export CARGO_TERM_COLOR ?= never
# CI builds once from a clean clone: incremental caches would only cost time and disk there.
ifeq ($(CI),true)
export CARGO_INCREMENTAL ?= 0
endif

.PHONY: help run test bench setup setup-run setup-test build build-windows site lint fmt test-rust test-e2e clean-site

help:
	@echo "make run   - set up what is missing, build, and serve RDP Doctor at http://127.0.0.1:3000"
	@echo "make test  - set up what is missing, build, lint, and run every test"

## ---- set-up (idempotent) -------------------------------------------------------------

setup-run:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

## ---- build ------------------------------------------------------------------------------

build:
	$(CARGO) build -p server -p agent-client

# The WebAssembly bundle that hydrates the portal, and its stylesheet. By default the release
# bundle the portal ships with (size-optimised, link-time optimised, names stripped, plus a gzip
# copy the server sends to browsers that accept it); `make site SITE_PROFILE=dev` builds the
# quicker-to-rebuild debug bundle instead.
SITE_PROFILE ?= wasm-release
SITE_WASM := target/$(WASM_TARGET)/$(if $(filter dev,$(SITE_PROFILE)),debug,$(SITE_PROFILE))/app.wasm
site:
	$(CARGO) build -p app --lib --target $(WASM_TARGET) --features hydrate --profile $(SITE_PROFILE)
	@mkdir -p $(SITE_PKG)
	@if [ ! -f $(SITE_PKG)/$(OUTPUT_NAME)_bg.wasm ] || [ $(SITE_WASM) -nt $(SITE_PKG)/$(OUTPUT_NAME)_bg.wasm ] \
		|| [ "$$(cat target/.site-profile 2>/dev/null)" != "$(SITE_PROFILE)" ]; then \
		echo "wasm-bindgen ($(SITE_PROFILE)) -> $(SITE_PKG)"; \
		wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
			--out-dir $(SITE_PKG) --out-name $(OUTPUT_NAME) $(SITE_WASM) \
		&& gzip -9 -n -f -k $(SITE_PKG)/$(OUTPUT_NAME)_bg.wasm $(SITE_PKG)/$(OUTPUT_NAME).js \
		&& echo "$(SITE_PROFILE)" > target/.site-profile; \
	fi
	@cp style/main.css $(SITE_PKG)/$(OUTPUT_NAME).css
	@gzip -9 -n -f -k $(SITE_PKG)/$(OUTPUT_NAME).css

## ---- run --------------------------------------------------------------------------------

run: setup-run build site
	@scripts/run-local.sh

## ---- test -------------------------------------------------------------------------------

test: setup-test lint build site build-windows test-rust test-e2e
	@echo "make test: all checks passed"

# The agent also ships for Windows hosts.
build-windows:
	$(CARGO) build --target x86_64-pc-windows-gnu -p agent-client

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p server -p agent-client -p engine --all-targets -- -D warnings
	$(CARGO) clippy -p app --features ssr --all-targets -- -D warnings
	$(CARGO) clippy -p app --lib --features hydrate --target $(WASM_TARGET) -- -D warnings

test-rust:
	$(CARGO) test --workspace $(CARGO_TEST_FLAGS)

test-e2e:
	cd e2e && npx playwright test

## ---- benchmarks (printed figures; see docs/BENCHMARKS.md) ---------------------------------

bench: setup-test
	$(CARGO) run --release -q -p server --example fanout -- 1000 3
	scripts/bench-agent-footprint.sh
	$(CARGO) run --release -q -p engine --example simulate -- --n 10000 --seed 1 --slip 0.1

fmt:
	$(CARGO) fmt --all

clean-site:
	rm -rf target/site
