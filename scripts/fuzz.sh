#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang, ASan and UBSan into build-fuzz/ and runs
# each for SECONDS (default 60), seeded from tests/data/fuzz/<target>/ (tiny seeds and the inputs
# of past findings). New corpus entries stay in build-fuzz/corpus/; a crash leaves its input in
# build-fuzz/crash-<target>-* and fails the run: fix it, then add the input under
# tests/data/fuzz/<target>/ so that caption_tests replays it. A fixed -seed keeps CI runs repeatable.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DCAPTION_CUDA=OFF -DCAPTION_BUILD_TESTS=OFF -DCAPTION_BUILD_BENCH=OFF -DCAPTION_FUZZ=ON \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
# fuzz_image is a target only when OpenCV was found.
all_targets=$(ninja -C build-fuzz -t targets all)
built=()
for src in tests/fuzz/fuzz_*.cpp; do
  t=$(basename "$src" .cpp)
  if grep -q "^$t:" <<<"$all_targets"; then built+=("$t"); fi
done
cmake --build build-fuzz -j "$(nproc)" --target "${built[@]}"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
status=0
for t in "${built[@]}"; do
  name=${t#fuzz_}
  corpus=build-fuzz/corpus/$name
  mkdir -p "$corpus"
  [[ -d tests/data/fuzz/$name ]] && cp -n tests/data/fuzz/"$name"/* "$corpus"/
  echo "== $t (${seconds}s)"
  if ! build-fuzz/tests/fuzz/"$t" -max_total_time="$seconds" -seed=1 -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="build-fuzz/crash-$name-" -print_final_stats=1 "$corpus" \
      2>"build-fuzz/$t.log"; then
    status=1
    tail -n 60 "build-fuzz/$t.log"
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "build-fuzz/$t.log" | tail -n 2 || true
done
exit $status
