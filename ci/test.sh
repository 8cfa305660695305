#!/usr/bin/env bash
# The README's test command: install what is missing, then lint, build and
# run every test (host unit tests, the QEMU integration tests and the nested
# Xen matrix).
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
# The nested Xen matrix (real Xen under QEMU). The 4.17 column with every row:
# plain PV must boot; the rows that run a PV kernel inside an HVM/PVH
# container fail there for a known L0 bug (see README) and are reported, not
# required. The 4.20 column: every Cocoon row must pass (PVH, HVM, HVM with
# cocoon.compat=3.4, and the device row: disk across a reboot, ping, console
# input, xl shutdown), with plain PV and pv-shim as the baselines.
# COCOON_TEST_MATRIX=0 skips this stage.
if [ "${COCOON_TEST_MATRIX:-1}" != 0 ]; then
  echo "== nested Xen matrix: Xen 4.17 (bookworm)"
  COCOON_MATRIX_REQUIRE="pv" bash ci/xen-matrix.sh bookworm
  echo "== nested Xen matrix: Xen 4.20 (trixie)"
  COCOON_MATRIX_GUESTS="pv pvshim cocoon cocoonhvm cocoonhvm34 cocoondev" \
    COCOON_MATRIX_REQUIRE="pv pvshim cocoon cocoonhvm cocoonhvm34 cocoondev" bash ci/xen-matrix.sh trixie
fi
