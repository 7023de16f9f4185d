#!/usr/bin/env bash
# The whole GPU check for the lent H100/H200 machine, in one run of under 8 minutes:
# versions, configure (sm_90, cuDNN from PyTorch's pip wheels, the libraries packed by
# scripts/gpu-carry.sh into .carry/), build, every test, the engine-vs-PyTorch table
# (bench/compare.py), compute-sanitizer memcheck and initcheck on the CUDA tests and racecheck on
# our kernels' tests, and the cuDNN algorithm sweep (bench/conv_algos.cu).
# Writes OUT_DIR/gpu-check.log (everything; gzipped when over 15 MB), OUT_DIR/summary.md, the
# table under OUT_DIR/bench/ and OUT_DIR/conv-algos.md.
#
#   scripts/gpu-carry.sh --images            # here, once: packs .carry/ (see its header)
#   scripts/gpu-check.sh "$OUT"              # there (device tool: carry [".carry"])
#
# Without a GPU (any other machine) it still configures, builds and runs the tests (the CUDA
# ones skip), and reports the GPU steps as skipped.
#
# The table's end-to-end rows (compare.py --pipeline: `caption describe` vs a PyTorch pipeline
# on up to 512 test images and the 20 originals) need Flickr8k images there, and ../shared does
# not travel: `scripts/gpu-carry.sh --images` puts a slice of it under .carry/shared/data/flickr8k
# (git-ignored; 512 images by default: with the tracked files, what travels stays under 64 MiB).
# Without it those rows are skipped with a note. The tests read .carry/shared through
# CAPTION_SHARED_DIR when there is no ../shared.
#
# Image decoding (the image tests, `caption describe`) needs OpenCV: gpu-carry.sh carries one
# built from Debian's source, and an older deps.tar.gz without it builds without images.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu-check.log
exec > >(tee "$LOG") 2>&1
TEE_PID=$!

T0=$(date +%s)
DEADLINE=$((T0 + ${GPU_CHECK_SECONDS:-470}))  # the device call is given 8 minutes or more
BUILD=${GPU_CHECK_BUILD:-build-gpu}
# The parts after the build, in this order; GPU_CHECK_ONLY (comma-separated) runs a subset, e.g.
# GPU_CHECK_ONLY=sanitize for a second call on the still-warm machine (its build folder is kept,
# so the build is a no-op) that adds what the first ran out of time for.
ONLY=",${GPU_CHECK_ONLY:-tests,bench,sanitize,algos},"
want() { [[ $ONLY == *",$1,"* ]]; }
STEPS=()  # "name|status|seconds" rows for the summary

say() { printf '\n=== %s (t=%ss)\n' "$*" "$(($(date +%s) - T0))"; }
# step NAME LIMIT CMD...: runs CMD under `timeout`, capped by what is left before the deadline;
# with CAPTURE=FILE set, its output also goes to FILE.
CAPTURE=""
step() {
  local name=$1 limit=$2 t rc
  t=$(date +%s)
  shift 2
  local left=$((DEADLINE - t - 5))
  ((left < limit)) && limit=$left
  if ((limit < 5)); then
    echo "--- $name: skipped, out of time"
    STEPS+=("$name|skipped (out of time)|0")
    return 124
  fi
  say "$name (limit ${limit}s)"
  if [[ -n $CAPTURE ]]; then
    timeout --kill-after=5 "$limit" "$@" 2>&1 | tee "$CAPTURE"
    rc=${PIPESTATUS[0]}
  else
    timeout --kill-after=5 "$limit" "$@"
    rc=$?
  fi
  local status=ok
  ((rc == 124 || rc == 137)) && status="TIMED OUT (${limit}s)"
  ((rc != 0 && rc != 124 && rc != 137)) && status="FAILED (exit $rc)"
  STEPS+=("$name|$status|$(($(date +%s) - t))")
  return $rc
}
skip() { echo "--- $1: skipped, $2"; STEPS+=("$1|skipped ($2)|0"); }

# ---------------------------------------------------------------- what this machine has
say "machine"
date -u
uname -srm
ldd --version 2>&1 | head -1
HAVE_GPU=0
if command -v nvidia-smi >/dev/null && timeout 30 nvidia-smi; then
  timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv && HAVE_GPU=1
fi
CARD="no GPU"
((HAVE_GPU)) && CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

NVCC=$(command -v nvcc || true)
[[ -z $NVCC && -x /usr/local/cuda/bin/nvcc ]] && NVCC=/usr/local/cuda/bin/nvcc
if [[ -z ${CUDA_HOME:-} && -n $NVCC ]]; then
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
fi
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
echo "nvcc: ${NVCC:-not found}"; [[ -n $NVCC ]] && "$NVCC" --version | tail -2
SANITIZER=$(command -v compute-sanitizer || true)
[[ -z $SANITIZER && -x $CUDA_HOME/bin/compute-sanitizer ]] && SANITIZER=$CUDA_HOME/bin/compute-sanitizer
echo "compute-sanitizer: ${SANITIZER:-not found}"
echo "cmake: $(cmake --version | head -1)"; echo "ninja: $(ninja --version 2>/dev/null || echo not found)"
echo "c++: $(c++ --version | head -1)"

# The Python that has torch (the venv's python3 on the GPU image; Debian's here).
PY=""
for p in python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c "import torch" 2>/dev/null; then PY=$(command -v "$p"); break; fi
done
echo "python with torch: ${PY:-none}"
[[ -n $PY ]] && "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), 'cudnn', torch.backends.cudnn.version() if torch.cuda.is_available() else None)"

# cuDNN and cuBLAS: the toolkit's, or the pip wheels under site-packages/nvidia.
NV_SITE=""
[[ -n $PY ]] && NV_SITE=$("$PY" -c "import site, os; print(next((os.path.join(p, 'nvidia') for p in site.getsitepackages() if os.path.isdir(os.path.join(p, 'nvidia'))), ''))")
echo "site-packages/nvidia: ${NV_SITE:-none}"
[[ -n $NV_SITE ]] && ls "$NV_SITE"
CUDNN_ROOT=""
if [[ -n $NV_SITE ]]; then
  h=$(find "$NV_SITE" -name cudnn.h -path '*include*' 2>/dev/null | head -1)
  [[ -n $h ]] && CUDNN_ROOT=$(dirname "$(dirname "$h")")
fi
echo "cuDNN root: ${CUDNN_ROOT:-none, the toolkit cuDNN if any}"
[[ -n $CUDNN_ROOT ]] && ls "$CUDNN_ROOT/lib" | head -20
CMAKE_EXTRA=()
toolkit_cublas=$(find "$CUDA_HOME"/lib64/ "$CUDA_HOME"/targets/*/lib/ -maxdepth 1 -name 'libcublas.so' 2>/dev/null | head -1)
echo "toolkit cuBLAS: ${toolkit_cublas:-none}"
if [[ -z $toolkit_cublas && -n $NV_SITE ]]; then
  # FindCUDAToolkit looks for unversioned names; point its cache variables at the wheel's.
  lib=$(find "$NV_SITE" -name 'libcublas.so.*' | head -1)
  lt=$(find "$NV_SITE" -name 'libcublasLt.so.*' | head -1)
  inc=$(dirname "$(find "$NV_SITE" -name cublas_v2.h | head -1)")
  echo "pip cuBLAS: $lib $lt (headers $inc)"
  CMAKE_EXTRA+=(-DCUDA_cublas_LIBRARY="$lib" -DCUDA_cublasLt_LIBRARY="$lt" -DCMAKE_CXX_FLAGS="-I$inc"
    -DCMAKE_CUDA_FLAGS="-I$inc")
  libdir=$(dirname "$lib")
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

# ---------------------------------------------------------------- carried libraries
DEPS=""
if [[ -f .carry/deps.tar.gz ]]; then
  DEPS_ROOT=${TMPDIR:-/tmp}/caption-carry
  rm -rf "$DEPS_ROOT" && mkdir -p "$DEPS_ROOT" && tar -xzf .carry/deps.tar.gz -C "$DEPS_ROOT" && DEPS=$DEPS_ROOT/deps
fi
if [[ -n $DEPS ]]; then
  say "carried libraries ($DEPS)"
  cat "$DEPS/MANIFEST"
  # Built on Debian 12: they load only where glibc and libstdc++ are at least as new.
  have_glibc=$(ldd --version 2>&1 | head -1 | grep -o '[0-9]\+\.[0-9]\+$')
  need_glibc=$(sed -n 's/^needs GLIBC: GLIBC_//p' "$DEPS/MANIFEST")
  libstdcxx=$(readlink -f "$(c++ -print-file-name=libstdc++.so.6)")
  have_cxx=$(grep -ao 'GLIBCXX_[0-9][0-9.]*[0-9]' "$libstdcxx" | sort -u -V | tail -1)
  need_cxx=$(sed -n 's/^needs GLIBCXX: //p' "$DEPS/MANIFEST")
  echo "glibc: have $have_glibc, need $need_glibc; libstdc++ ($libstdcxx): have $have_cxx, need $need_cxx"
  if [[ $(printf '%s\n%s\n' "$need_glibc" "$have_glibc" | sort -V | head -1) != "$need_glibc" ||
        $(printf '%s\n%s\n' "$need_cxx" "$have_cxx" | sort -V | head -1) != "$need_cxx" ]]; then
    echo "WARNING: this system's glibc or libstdc++ is older than the carried libraries need"
    STEPS+=("ABI check|WARNING: glibc $have_glibc / $have_cxx older than needed ($need_glibc / $need_cxx)|0")
  else
    STEPS+=("ABI check (glibc $have_glibc >= $need_glibc, $have_cxx >= $need_cxx)|ok|0")
  fi
  A=$DEPS/lib/x86_64-linux-gnu
  # The linker and the loader both need libopenblas' own dependencies (libgfortran, libquadmath).
  export LD_LIBRARY_PATH=$A${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  CMAKE_EXTRA+=(-DGTEST_SOURCE_DIR="$DEPS/googletest" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON
    "-DCMAKE_PREFIX_PATH=$DEPS;$DEPS/zlib" -DCMAKE_LIBRARY_PATH="$A" -DBLA_VENDOR=OpenBLAS
    -Dbenchmark_DIR="$A/cmake/benchmark" -Dnlohmann_json_DIR="$DEPS/share/cmake/nlohmann_json"
    -DCLI11_DIR="$DEPS/share/cmake/CLI11" -DZLIB_ROOT="$DEPS/zlib")
  # OpenCV is off LD_LIBRARY_PATH (the binaries' RUNPATH finds it; see gpu-carry.sh); the JPEG
  # and WebP libraries it loads are in $A.
  if [[ -d $DEPS/opencv/lib/x86_64-linux-gnu/cmake/opencv4 ]]; then
    CMAKE_EXTRA+=(-DOpenCV_DIR="$DEPS/opencv/lib/x86_64-linux-gnu/cmake/opencv4")
  else
    echo "no OpenCV carried (a deps.tar.gz from before it was): the image tests compile out"
  fi
else
  echo "no .carry/deps.tar.gz: relying on system packages (run scripts/gpu-carry.sh where they are installed)"
fi
[[ -n $CUDNN_ROOT ]] && export LD_LIBRARY_PATH=$CUDNN_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[[ -d $CUDA_HOME/lib64 ]] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$CUDA_HOME/lib64
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
# The tests' shared data: ../shared where there is one (every developer machine), else the slice
# that gpu-carry.sh carried.
if [[ -z ${CAPTION_SHARED_DIR:-} && ! -d ../shared/data && -d .carry/shared/data ]]; then
  export CAPTION_SHARED_DIR=$PWD/.carry/shared
fi
echo "CAPTION_SHARED_DIR=${CAPTION_SHARED_DIR:-unset, the tests use ../shared}"

# ---------------------------------------------------------------- configure, build
GEN=Ninja
command -v ninja >/dev/null || GEN="Unix Makefiles"
cfg=(-S . -B "$BUILD" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
  # CMake 4 refuses the carried Debian package files' old cmake_policy(VERSION 2.6...).
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
[[ -n $NVCC ]] && cfg+=(-DCMAKE_CUDA_COMPILER="$NVCC")
[[ -n $CUDNN_ROOT ]] && cfg+=(-DCUDNN_ROOT="$CUDNN_ROOT")
BUILT=0
if step "configure" 120 cmake "${cfg[@]}" "${CMAKE_EXTRA[@]}"; then
  grep -E '^(BLAS_[a-z]+_LIBRARY|CBLAS_INCLUDE_DIR|PNG_LIBRARY_RELEASE|CUDNN_LIBRARY|CUDA_cublas_LIBRARY|benchmark_DIR|nlohmann_json_DIR|CLI11_DIR|OpenCV_DIR|CAPTION_CUDA|CAPTION_HAS_OPENCV)[:=]' \
    "$BUILD/CMakeCache.txt"
  # Keep going past a failed file, so that one call shows every compile error.
  keep_going=(-k)
  [[ $GEN == Ninja ]] && keep_going=(-k 0)
  step "build" 300 cmake --build "$BUILD" -j "$(nproc)" -- "${keep_going[@]}" && BUILT=1
  ((BUILT)) && "$BUILD/caption" --version  # what the binary was built with and the device it sees
else
  skip "build" "configure failed"
fi

# ---------------------------------------------------------------- tests
TESTS="n/a"
if ((BUILT)) && want tests; then
  # Eight test processes at once, each with two CPU threads (the engine's pool, which runs the
  # GEMMs too, reads OMP_NUM_THREADS), on the 16 cores.
  CAPTURE=$OUT/.ctest.txt step "ctest" 150 env OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 \
    ctest --test-dir "$BUILD" -j 8 --timeout 120 --output-on-failure
  passed=$(grep -c ' Passed ' "$OUT/.ctest.txt")
  failed=$(grep -cE '\*\*\*(Failed|Exception|Timeout)|Not Run' "$OUT/.ctest.txt")
  skipped=$(grep -c '\*\*\*Skipped' "$OUT/.ctest.txt")
  TESTS="$passed passed, $failed failed, $skipped skipped ($(grep -E 'tests passed' "$OUT/.ctest.txt" || echo 'no ctest summary'))"
  rm -f "$OUT/.ctest.txt"
else
  skip "ctest" "$( ((BUILT)) && echo "not in GPU_CHECK_ONLY" || echo "not built")"
fi

# ---------------------------------------------------------------- engine vs PyTorch
TABLE="(not run)"
if ((BUILT && HAVE_GPU)) && [[ -n $PY ]] && want bench; then
  rm -rf "$OUT/bench"
  DATA=""
  for d in ../shared/data/flickr8k shared/data/flickr8k .carry/shared/data/flickr8k; do [[ -d $d/images ]] && DATA=$d && break; done
  # Stopped at its limit, compare.py still writes the table with the sections it finished (the
  # encoder first, the pipeline last) and the engine's per-op rows.
  step "compare.py (GPU)" 300 "$PY" bench/compare.py --build "$BUILD" --device cuda --python "$PY" --kernels --encoder \
    --decode --pipeline ${DATA:+--data "$DATA"} --pipeline-images 512 --pipeline-originals 100 \
    --min-time 0.1 --peer-time 1.0 --timeout 150 --out "$OUT/bench"
  md=$(ls "$OUT"/bench/*.md 2>/dev/null | head -1)
  [[ -n $md ]] && TABLE=$(cat "$md")
else
  reason="no GPU"
  ((HAVE_GPU)) && reason="not built, or no Python with torch"
  want bench || reason="not in GPU_CHECK_ONLY"
  skip "compare.py (GPU)" "$reason"
fi

# ---------------------------------------------------------------- sanitizers on the CUDA tests
# Not the CLI tests: their work runs in child processes, which the sanitizer would follow
# through whole training runs (the decoder tests cover the same CUDA paths in-process).
CUDA_FILTER='*Cuda*:*CUDA*-Cli.*'
# racecheck looks for shared-memory races, which only our own kernels can have; over every CUDA
# test (cuDNN and cuBLAS included) it ran past 80 s on an H200.
RACE_FILTER='Adam.*Cuda*:BeamTopk.*Cuda*:BroadcastAdd.*Cuda*:Dense.*Cuda*:Dropout.*Cuda*:Embedding.*Cuda*'
RACE_FILTER+=':GradNorm.*Cuda*:LstmCuda.*:Pool.*Cuda*:Preprocess.*Cuda*:SoftmaxXent.*Cuda*'
SAN=()
if ((BUILT && HAVE_GPU)) && [[ -n $SANITIZER ]] && want sanitize; then
  # Each tool's time limit (GPU_CHECK_SANITIZERS="tool:seconds ..." for others); the deadline
  # caps them all (they come last and get what is left).
  for tool_limit in ${GPU_CHECK_SANITIZERS:-memcheck:90 initcheck:60 racecheck:90}; do
    tool=${tool_limit%:*} limit=${tool_limit#*:}
    filter=$CUDA_FILTER
    [[ $tool == racecheck ]] && filter=$RACE_FILTER
    CAPTURE=$OUT/.san.txt step "compute-sanitizer $tool" "$limit" "$SANITIZER" --tool "$tool" --print-limit 20 \
      --error-exitcode 99 "$BUILD/tests/caption_tests" --gtest_filter="$filter" --gtest_brief=1
    # No capture when the step was skipped for time; no summary when it timed out.
    summary=$(grep -sE '(ERROR|RACECHECK) SUMMARY' "$OUT/.san.txt" | tail -1 | sed 's/^========= //')
    gtest=$(grep -sE '^\[  (PASSED|FAILED|SKIPPED) ' "$OUT/.san.txt" | tr '\n' ' ')
    SAN+=("$tool: ${summary:-no summary (see the steps table)}; gtest: ${gtest:-none}")
    rm -f "$OUT/.san.txt"
  done
else
  reason=""
  ((BUILT)) || reason+="not built; "
  ((HAVE_GPU)) || reason+="no GPU; "
  [[ -n $SANITIZER ]] || reason+="no compute-sanitizer; "
  want sanitize || reason+="not in GPU_CHECK_ONLY; "
  skip "compute-sanitizer" "${reason%; }"
  SAN+=("skipped: ${reason%; }")
fi

# ---------------------------------------------------------------- cuDNN algorithms per convolution
# Data for choosing them (bench/conv_algos.cu): every algorithm on every ResNet50 convolution,
# NHWC and NCHW, fused and plain. Last: it only informs the next change.
ALGOS="(not run)"
if ((BUILT && HAVE_GPU)) && [[ -x $BUILD/bench/conv_algos ]] && want algos; then
  # Batch 32 (what the encoder runs) first, then 1 (one photo, where the engine was 0.42x).
  CAPTURE=$OUT/conv-algos.md step "conv_algos" 90 "$BUILD/bench/conv_algos" 32 1
  ALGOS="$OUT/conv-algos.md"
else
  skip "conv_algos" "$( ((BUILT && HAVE_GPU)) && echo "not in GPU_CHECK_ONLY" || echo "no GPU, or not built")"
fi

# ---------------------------------------------------------------- summary
{
  echo "# GPU check: $CARD"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(($(date +%s) - T0)) s in all"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "- nvcc: $([[ -n $NVCC ]] && "$NVCC" --version | grep -o 'release [0-9.]*' || echo none); $(cmake --version | head -1); cuDNN: ${CUDNN_ROOT:-toolkit}"
  [[ -n $PY ]] && echo "- $("$PY" -c "import torch; print('torch', torch.__version__)")"
  echo "- tests: $TESTS"
  echo "- cuDNN algorithm sweep: $ALGOS"
  for s in "${SAN[@]}"; do echo "- sanitizer $s"; done
  echo
  echo "| step | status | seconds |"
  echo "| --- | --- | --- |"
  for s in "${STEPS[@]}"; do IFS='|' read -r a b c <<<"$s"; echo "| $a | $b | $c |"; done
  echo
  echo "$TABLE"
} >"$OUT/summary.md"
say "summary ($OUT/summary.md)"
cat "$OUT/summary.md"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # let tee write the log's last lines before the run returns
# The device tool brings back files of up to 16 MB; a log of failures can be larger.
(($(stat -c %s "$LOG") > 15000000)) && gzip -f "$LOG"
exit 0
