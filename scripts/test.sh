#!/usr/bin/env bash
# Installs dependencies, builds into build/ and runs every test (GPU tests skip without a device).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/configure.sh -DCAPTION_BUILD_TESTS=ON -DCAPTION_BUILD_BENCH=ON >/dev/null
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
