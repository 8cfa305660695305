#!/usr/bin/env bash
# Build the PV conformance kernel (tests/conformance) and print its path.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cocoon-conformance --target x86_64-unknown-none >&2
echo "$PWD/target/x86_64-unknown-none/release/pvtest"
