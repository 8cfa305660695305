#!/usr/bin/env bash
# Build the bootable firmware and print its path.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cocoon-firmware --target x86_64-unknown-none >&2
echo "$PWD/target/x86_64-unknown-none/release/cocoon"
