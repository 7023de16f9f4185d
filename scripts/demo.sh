#!/usr/bin/env bash
# Installs dependencies, builds the CLI, and captions Flickr8k test images with the bundled
# model (models/flickr8k-resnet50c4) from their reference features in ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/configure.sh -DCAPTION_BUILD_TESTS=OFF -DCAPTION_BUILD_BENCH=OFF >/dev/null
cmake --build build --target caption -j "$(nproc)"
data=../shared/data/flickr8k
if [[ ! -f $data/features_resnet50c4.safetensors ]]; then
  echo "demo: $data/features_resnet50c4.safetensors not found (the shared Flickr8k data)" >&2
  exit 1
fi
mkdir -p runs/demo
head -n 8 "$data/text/Flickr_8k.testImages.txt" > runs/demo/images.txt
build/caption describe --model models/flickr8k-resnet50c4 --features "$data/features_resnet50c4.safetensors" \
  --images runs/demo/images.txt --beam 3 --no-unk --output runs/demo/captions.jsonl
cat runs/demo/captions.jsonl
echo "demo: captions written to runs/demo/captions.jsonl"
