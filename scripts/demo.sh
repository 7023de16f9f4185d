#!/usr/bin/env bash
# Installs dependencies, builds the CLI, and captions the images in examples/ with the bundled
# model (models/flickr8k-resnet50c4: ResNet50 C4 encoder + decoder), straight from the JPEGs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/configure.sh -DCAPTION_BUILD_TESTS=OFF -DCAPTION_BUILD_BENCH=OFF >/dev/null
cmake --build build --target caption -j "$(nproc)"
build/caption describe examples --beam 3 --no-unk --output examples/captions.jsonl --html examples/gallery.html
cat examples/captions.jsonl
echo "demo: captions written to examples/captions.jsonl; open examples/gallery.html to see them with the images"
