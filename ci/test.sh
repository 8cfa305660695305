#!/usr/bin/env bash
# The README's test command: install what is missing, then lint, build and
# run every test (host unit tests and the QEMU integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh
echo "== fetching test kernels"
bash ci/fetch-kernels.sh >/dev/null
echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy (host crates)"
cargo clippy -q --workspace --exclude cocoon-firmware --all-targets -- -D warnings
echo "== cargo clippy (firmware, x86_64-unknown-none)"
cargo clippy -q -p cocoon-firmware --target x86_64-unknown-none -- -D warnings
echo "== building firmware"
COCOON_FIRMWARE=$(bash ci/build-firmware.sh)
export COCOON_FIRMWARE
echo "   $COCOON_FIRMWARE ($(stat -c %s "$COCOON_FIRMWARE") bytes)"
echo "== cargo test"
cargo test --workspace 2>&1 | tee target/test-output.log
