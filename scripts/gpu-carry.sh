#!/usr/bin/env bash
# Packs what the lent GPU machine lacks into .carry/deps.tar.gz (git-ignored), taken from this
# machine's Debian packages: GoogleTest source, Google Benchmark, nlohmann_json, CLI11, OpenBLAS
# (with libgfortran and libquadmath), libpng and zlib, headers, shared libraries and CMake
# package files, in a /usr-like tree. scripts/gpu-check.sh unpacks and uses it.
# Carry it with the device tool's carry: [".carry"].
#
# The libraries are built against Debian 12's glibc 2.36 and GCC 12's libstdc++; the
# MANIFEST records the newest symbol versions they need, and gpu-check.sh compares them with
# the GPU machine's (an older glibc there would make them unloadable).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

arch=x86_64-linux-gnu
usr_lib=/usr/lib/$arch
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
P=$stage/deps
mkdir -p "$P/include" "$P/lib/$arch" "$P/share/cmake" "$P/zlib/include" "$P/zlib/lib"

# GoogleTest: the source tree, built by tests/CMakeLists.txt via -DGTEST_SOURCE_DIR.
cp -a /usr/src/googletest "$P/googletest"

# Header-only libraries and their CMake package files (they locate the headers relative to
# themselves, three folders up: share/cmake/<name>/ -> the prefix).
cp -a /usr/include/nlohmann /usr/include/CLI "$P/include/"
cp -a /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$P/share/cmake/"

# Google Benchmark: Debian ships it shared; its package files expect lib/<arch>/.
cp -a /usr/include/benchmark "$P/include/"
cp -a "$usr_lib"/libbenchmark.so* "$usr_lib/libbenchmark_main.a" "$P/lib/$arch/"
mkdir -p "$P/lib/$arch/cmake"
cp -a "$usr_lib/cmake/benchmark" "$P/lib/$arch/cmake/"

# OpenBLAS (pthread flavour, as here) and its Fortran runtime.
openblas=$(readlink -f "$usr_lib/libopenblas.so.0")
cp "$openblas" "$P/lib/$arch/libopenblas.so.0"
ln -s libopenblas.so.0 "$P/lib/$arch/libopenblas.so"
cp -L "$usr_lib/libgfortran.so.5" "$usr_lib/libquadmath.so.0" "$P/lib/$arch/"
cp "$(dirname "$(readlink -f /usr/include/$arch/openblas-pthread/cblas.h)")"/{cblas.h,f77blas.h,openblas_config.h} \
  "$P/include/"

# libpng (links zlib).
cp -a /usr/include/png.h /usr/include/pngconf.h /usr/include/pnglibconf.h /usr/include/libpng16 "$P/include/"
cp -L "$usr_lib/libpng16.so.16" "$P/lib/$arch/"
ln -s libpng16.so.16 "$P/lib/$arch/libpng16.so"
ln -s libpng16.so "$P/lib/$arch/libpng.so"

# zlib in a folder of its own: gpu-check.sh puts lib/<arch> on LD_LIBRARY_PATH, and the GPU
# machine's own (newer) libz.so.1 must stay the one that Python and PyTorch load.
cp -a /usr/include/zlib.h /usr/include/zconf.h "$P/zlib/include/"
cp -L "$usr_lib/libz.so.1" "$P/zlib/lib/"
ln -s libz.so.1 "$P/zlib/lib/libz.so"

# What the libraries need from the system they land on.
{
  echo "built on: $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
  echo "packages:"
  dpkg-query -W -f='  ${Package} ${Version}\n' googletest libbenchmark-dev nlohmann-json3-dev libcli11-dev \
    libopenblas0-pthread libgfortran5 libpng16-16 zlib1g 2>/dev/null
  for v in GLIBC GLIBCXX CXXABI GCC; do
    need=$(find "$P/lib" "$P/zlib/lib" -name '*.so*' -type f -exec objdump -T {} + 2>/dev/null |
      grep -o "${v}_[0-9.]*" | sort -u -V | tail -1)
    echo "needs $v: ${need:-none}"
  done
} >"$P/MANIFEST"

mkdir -p .carry
rm -f .carry/deps.tar.gz
tar -C "$stage" -czf .carry/deps.tar.gz deps
cat "$P/MANIFEST"
echo "wrote .carry/deps.tar.gz ($(du -h .carry/deps.tar.gz | cut -f1))"
