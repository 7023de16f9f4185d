#!/usr/bin/env bash
# Packs what the lent GPU machine lacks into .carry/ (git-ignored), for scripts/gpu-check.sh:
#  - deps.tar.gz, from this machine's Debian packages: GoogleTest source, Google Benchmark,
#    nlohmann_json, CLI11, OpenBLAS (with libgfortran and libquadmath), libpng and zlib, headers,
#    shared libraries and CMake package files, in a /usr-like tree; and OpenCV core, imgproc and
#    imgcodecs built by scripts/build-opencv.sh from Debian's source, with the JPEG and WebP
#    libraries they load (Debian's own imgcodecs links GDAL, far too much to carry);
#  - with --images[=N], shared/data/flickr8k: the first N (default 512) test-split images, the
#    20 originals and their 224px copies, and the split file cut to match, for compare.py's
#    pipeline rows and the image-loader tests, and those images' reference features (the whole
#    file is 17 MB) for its decode rows. The tests find shared/ through CAPTION_SHARED_DIR;
#  - shared/data/weights/resnet50_msra_c4.safetensors from ../shared (34 MB, for the CUDA
#    ResNet-50 golden test) when it fits: the device tool's 64 MiB limit counts the tracked files
#    too (the bundled model is 22 MB of them), so beside the libraries and images it usually does
#    not, and that one test skips there.
# Carry it with the device tool's carry: [".carry"].
#
# The libraries are built against Debian 12's glibc 2.36 and GCC 12's libstdc++; the
# MANIFEST records the newest symbol versions they need, and gpu-check.sh compares them with
# the GPU machine's (an older glibc there would make them unloadable).
set -euo pipefail
cd "$(dirname "$0")/.."
images=0
for a in "$@"; do
  case $a in
    --images) images=512 ;;
    --images=[0-9]*) images=${a#--images=} ;;
    *) echo "usage: scripts/gpu-carry.sh [--images[=N]]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh >/dev/null
# First, so that a failed build stops the script before anything is staged (minutes, once).
opencv=$(scripts/build-opencv.sh | tail -1)

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

# OpenCV in a prefix of its own, off LD_LIBRARY_PATH (as zlib): a Debian machine's own OpenCV
# users (its PyTorch) would load this core, built without OpenCL, and fail. The engine's
# binaries find it through their build-tree RUNPATH. Headers, the three libraries without their
# symbol tables (18% of their size), and the CMake package files, which find the rest
# relative to themselves (lib/<arch>/cmake/opencv4 -> the prefix).
O=$P/opencv
mkdir -p "$O/include" "$O/lib/$arch/cmake" "$O/share/licenses"
cp -a "$opencv/include/opencv4" "$O/include/"
cp -a "$opencv/lib/$arch"/libopencv_{core,imgproc,imgcodecs}.so* "$O/lib/$arch/"
find "$O/lib/$arch" -name 'libopencv_*' -type f -exec strip --strip-unneeded {} +
cp -a "$opencv/lib/$arch/cmake/opencv4" "$O/lib/$arch/cmake/"
cp -a "$opencv/share/licenses/opencv4" "$O/share/licenses/"
# And in lib/<arch> the libraries they load that the GPU machine may lack (libjpeg, libwebp): all
# but glibc's, libstdc++'s and zlib, which it has, and those carried already (libpng).
for lib in $(objdump -p "$O/lib/$arch"/libopencv_*.so.*.* | awk '$1 == "NEEDED" {print $2}' | sort -u); do
  case $lib in
    libopencv_* | libc.so.* | libm.so.* | libstdc++.so.* | libgcc_s.so.* | libpthread.so.* | libdl.so.* | \
      librt.so.* | ld-linux* | libz.so.*) ;;
    *) [[ -e $P/lib/$arch/$lib ]] || cp -L "$usr_lib/$lib" "$P/lib/$arch/" ;;
  esac
done

# What the libraries need from the system they land on.
{
  echo "built on: $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
  echo "packages:"
  dpkg-query -W -f='  ${Package} ${Version}\n' googletest libbenchmark-dev nlohmann-json3-dev libcli11-dev \
    libopenblas0-pthread libgfortran5 libpng16-16 zlib1g libjpeg62-turbo libwebp7 2>/dev/null
  echo "  opencv $(cut -d' ' -f1 "$opencv/.stamp") from source: core imgproc imgcodecs (scripts/build-opencv.sh)"
  for v in GLIBC GLIBCXX CXXABI GCC; do
    need=$(find "$P/lib" "$P/zlib/lib" "$O/lib" -name '*.so*' -type f -exec objdump -T {} + 2>/dev/null |
      grep -o "${v}_[0-9.]*" | sort -u -V | tail -1)
    echo "needs $v: ${need:-none}"
  done
} >"$P/MANIFEST"

mkdir -p .carry
rm -f .carry/deps.tar.gz
tar -C "$stage" -czf .carry/deps.tar.gz deps
cat "$P/MANIFEST"
echo "wrote .carry/deps.tar.gz ($(du -h .carry/deps.tar.gz | cut -f1))"

# Shared data, made afresh each run so that it matches the flags; .carry/flickr8k is where the
# slice used to go, and would count against the 64 MiB.
rm -rf .carry/shared .carry/flickr8k
S=../shared/data
limit=$((64 * 1048576))
tracked=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
if [[ -d $S ]]; then
  if ((images)); then
    d=.carry/shared/data/flickr8k
    mkdir -p "$d/images" "$d/text"
    cp -r "$S/flickr8k/originals" "$d/"
    head -n "$images" "$S/flickr8k/text/Flickr_8k.testImages.txt" >"$d/text/Flickr_8k.testImages.txt"
    # The image-loader test compares each original with its 224px copy.
    { cat "$d/text/Flickr_8k.testImages.txt"; ls "$S/flickr8k/originals"; } | sort -u |
      sed "s|^|$S/flickr8k/images/|" | xargs cp -t "$d/images/"
    # The features file cut to the carried images: the same header form and tensors.
    /usr/bin/python3 - "$S/flickr8k/features_resnet50c4.safetensors" "$d/images" \
      "$d/features_resnet50c4.safetensors" <<'EOF'
import json, os, struct, sys
src, images, dst = sys.argv[1:]
with open(src, "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    data = f.read()
out, blobs, offset = {}, [], 0
for name in sorted(os.listdir(images)):
    if name in header and name not in out:
        begin, end = header[name]["data_offsets"]
        out[name] = dict(header[name], data_offsets=[offset, offset + end - begin])
        blobs.append(data[begin:end])
        offset += end - begin
text = json.dumps(out).encode()
text += b" " * (-len(text) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
EOF
    echo "wrote $d: $(ls "$d/images" | wc -l) images, $(ls "$d/originals" | wc -l) originals, their features"
  fi
  w=$S/weights/resnet50_msra_c4.safetensors
  if (($(du -sb .carry | cut -f1) + tracked + $(stat -c %s "$w") < limit)); then
    mkdir -p .carry/shared/data/weights && cp "$w" .carry/shared/data/weights/
  else
    echo "not carrying $(basename "$w"): it does not fit (ResNet50.MsraC4MatchesTorchvisionCuda will skip)"
  fi
else
  echo "no ../shared: carrying neither the ResNet-50 weights nor images"
fi
du -h --apparent-size -d 3 .carry | sort -k2
total=$(($(du -sb .carry | cut -f1) + tracked))
echo ".carry and the tracked files: $((total / 1048576)) MiB of the device tool's 64 MiB"
((total < limit)) || { echo "too large to carry" >&2; exit 1; }
