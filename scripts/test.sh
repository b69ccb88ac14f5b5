#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/property/conformance/end-to-end tests, and a
# compile check of the fuzz targets. Installs with apt-get whatever the tests need and lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests need: command name -> Debian package.
declare -A needs=([cc]=gcc [pkg-config]=pkg-config [sipp]=sip-tester [sipsak]=sipsak)
missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# Fuzz targets build with cargo-fuzz on nightly; checking them here keeps them compiling.
cargo check --manifest-path fuzz/Cargo.toml
