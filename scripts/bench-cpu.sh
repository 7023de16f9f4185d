#!/usr/bin/env bash
# Builds the benchmarks and the CLI into build/ and prints the engine-vs-PyTorch table for this
# CPU, with one thread count (nproc) for both sides, end to end captioning included (--pipeline;
# skipped with a note where ../shared is missing). Usage: scripts/bench-cpu.sh [OUT_DIR] [compare.py args]
# e.g. scripts/bench-cpu.sh build/bench-results --kernels. OUT_DIR defaults to build/bench-results.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/bench-results}
shift || true
[[ -f build/build.ninja ]] || scripts/configure.sh >/dev/null
cmake --build build -j "$(nproc)" --target bench_train_step bench_kernels bench_encoder bench_encoder_ops caption
/usr/bin/python3 bench/compare.py --build build --device cpu --threads "$(nproc)" --python /usr/bin/python3 \
  --pipeline --out "$out" "$@"
