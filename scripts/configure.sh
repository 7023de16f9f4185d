#!/usr/bin/env bash
# Configures build/ (Release, Ninja); CUDA when nvcc is found on PATH or in /usr/local/cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
args=(-S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release)
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
cmake "${args[@]}" "$@"
