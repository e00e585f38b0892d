#!/usr/bin/env bash
# Installs what `make run` (argument: run) or `make test` (argument: test) needs and is
# missing. Safe to run again: each step checks first, so a second run takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

purpose=${1:-run}
WASM_BINDGEN_VERSION=$(sed -n 's/^WASM_BINDGEN_VERSION := //p' Makefile)

say() { printf 'setup: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=false
apt_install() {
  if ! $apt_updated; then
    say "apt-get update"
    as_root apt-get update -qq
    apt_updated=true
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Disk: a clean `make test` fills about 5 GB under target/. Say so early rather than let a
# linker fail on a full disk half an hour in.
mkdir -p target
free_kb=$(df -Pk target | awk 'NR == 2 { print $4 }')
if [ "${free_kb:-0}" -lt $((6 * 1024 * 1024)) ]; then
  say "warning: only $((free_kb / 1024 / 1024)) GB free for target/; a clean build needs about 5 GB"
fi

# PostgreSQL 15 server binaries (initdb, postgres, pg_ctl) for the private cluster.
have_postgres() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
if ! have_postgres; then
  apt_install postgresql
fi
# setpriv (util-linux) starts PostgreSQL as an unprivileged user with a parent-death signal.
command -v setpriv >/dev/null 2>&1 || apt_install util-linux

# Rust: the WebAssembly target and the wasm-bindgen CLI matching Cargo.lock.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes, once)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --quiet
fi

if [ "$purpose" = test ]; then
  # Debian packages the tests use: Chromium for the browser tests (Playwright never downloads
  # a browser here); real RDP servers (xrdp, FreeRDP's shadow server under Xvfb) and openssl
  # for the agent's protocol probes; libfaketime to run a server with a skewed clock for the
  # clock comparison; nftables for the host firewall checks, and with iproute2 for a lossy
  # path in a private network namespace (the path check); mingw for the agent's Windows
  # build.
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v xrdp >/dev/null 2>&1 || missing+=(xrdp)
  command -v freerdp-shadow-cli >/dev/null 2>&1 || missing+=(freerdp2-shadow-x11)
  command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v faketime >/dev/null 2>&1 || missing+=(faketime)
  command -v nft >/dev/null 2>&1 || missing+=(nftables)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing+=(gcc-mingw-w64-x86-64)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-pc-windows-gnu; then
    say "rustup target add x86_64-pc-windows-gnu"
    rustup target add x86_64-pc-windows-gnu
  fi
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  if [ ! -d e2e/node_modules ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
    say "npm ci (e2e)"
    (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
