#!/usr/bin/env bash
# Builds the benchmarks and the CLI into build/ and prints the engine-vs-PyTorch table for this
# CPU, with one thread count (nproc) for both sides, decoding and end to end captioning included
# (--decode, --pipeline; the rows that need ../shared are skipped with a note without it); the
# training-step and encoder rows are each side's best of two alternating rounds (a shared VM has
# slow spells). Usage: scripts/bench-cpu.sh [OUT_DIR] [compare.py args], e.g.
# scripts/bench-cpu.sh build/bench-results --kernels. OUT_DIR defaults to build/bench-results.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/bench-results}
shift || true
[[ -f build/build.ninja ]] || scripts/configure.sh >/dev/null
cmake --build build -j "$(nproc)" --target bench_train_step bench_kernels bench_encoder bench_encoder_ops bench_decode caption
/usr/bin/python3 bench/compare.py --build build --device cpu --threads "$(nproc)" --python /usr/bin/python3 --rounds 2 \
  --decode --pipeline --out "$out" "$@"
