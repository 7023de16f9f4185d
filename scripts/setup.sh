#!/usr/bin/env bash
# Installs the Debian packages the engine builds and tests with. The CUDA toolkit (nvcc, cuBLAS,
# cuDNN 9) is used from /usr/local/cuda when present; without it the build is CPU-only. PyTorch,
# for the golden-file generators and the benchmark peers, is separate:
# apt-get install python3-torch python3-torchvision python3-nltk.
set -euo pipefail
# python3-h5py and python3-numpy let the Keras-import tests write their .h5 fixtures.
packages=(build-essential cmake ninja-build pkg-config libopenblas-dev nlohmann-json3-dev libcli11-dev
          libgtest-dev libbenchmark-dev libpng-dev libopencv-dev libhdf5-dev python3-h5py python3-numpy
          clang libclang-rt-14-dev)  # clang + its runtime: the libFuzzer targets (scripts/fuzz.sh)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
