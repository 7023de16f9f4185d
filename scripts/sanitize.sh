#!/usr/bin/env bash
# Builds the CPU test suite with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/
# and runs it; any sanitizer report fails the run. CUDA is off: the sanitizers cannot see device
# code, and the GPU tests skip on CI anyway. CAPTION_NATIVE is off, so that CI also runs the
# portable 4-lane vector math (build/ has the machine's widest).
set -euo pipefail
cd "$(dirname "$0")/.."
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCAPTION_CUDA=OFF -DCAPTION_NATIVE=OFF -DCAPTION_BUILD_TESTS=ON -DCAPTION_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
cmake --build build-asan -j "$(nproc)" --target caption_tests caption
# Leak reports from third-party libraries (OpenBLAS thread pool, OpenCV) are suppressed by
# tests/lsan.supp; our own code is never listed there.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
