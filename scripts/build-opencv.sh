#!/usr/bin/env bash
# Builds the smallest OpenCV the engine links (core, imgproc, imgcodecs; JPEG, PNG and WebP
# through this system's Debian libraries) from Debian's own source of the installed version,
# for scripts/gpu-carry.sh: Debian's libopencv-imgcodecs cannot travel, it links GDAL and its
# 129 libraries. The download, the build and the install live in .carry-build/ (git-ignored);
# a second run finds the install there and returns at once. Prints the install prefix last.
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.6.0+dfsg
revision=12
pool=http://deb.debian.org/debian/pool/main/o/opencv
tarball=opencv_$version.orig.tar.xz
dsc=opencv_$version-$revision.dsc
cache=$PWD/.carry-build/opencv
prefix=$cache/install
arch=x86_64-linux-gnu

# Everything off that the engine does not use or that would add libraries to carry; the
# download-only parts (IPP, ADE) are off too, the GPU machine has no network to fetch them.
options=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DBUILD_LIST=core,imgproc,imgcodecs
  -DCMAKE_INSTALL_LIBDIR=lib/$arch
  -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_opencv_apps=OFF -DBUILD_DOCS=OFF
  -DBUILD_JAVA=OFF -DBUILD_opencv_python2=OFF -DBUILD_opencv_python3=OFF -DINSTALL_PYTHON_EXAMPLES=OFF
  -DWITH_IPP=OFF -DWITH_ITT=OFF -DWITH_OPENCL=OFF -DWITH_CUDA=OFF -DWITH_GDAL=OFF -DWITH_GDCM=OFF
  -DWITH_TIFF=OFF -DWITH_OPENEXR=OFF -DWITH_JASPER=OFF -DWITH_OPENJPEG=OFF -DWITH_IMGCODEC_HDR=OFF
  -DWITH_FFMPEG=OFF -DWITH_GSTREAMER=OFF -DWITH_V4L=OFF -DWITH_1394=OFF -DWITH_GTK=OFF -DWITH_QT=OFF
  -DWITH_VTK=OFF -DWITH_OPENGL=OFF -DWITH_VA=OFF -DWITH_VA_INTEL=OFF -DWITH_TBB=OFF -DWITH_OPENMP=OFF
  -DWITH_EIGEN=OFF -DWITH_LAPACK=OFF -DWITH_PROTOBUF=OFF -DWITH_ADE=OFF -DWITH_QUIRC=OFF
  -DWITH_JPEG=ON -DBUILD_JPEG=OFF -DWITH_PNG=ON -DBUILD_PNG=OFF -DWITH_WEBP=ON -DBUILD_WEBP=OFF
  -DBUILD_ZLIB=OFF -DOPENCV_GENERATE_PKGCONFIG=OFF
  # No RUNPATH to this machine's install folder: the engine's binaries find the carried copies
  # through their own build-tree RUNPATH (see scripts/gpu-check.sh).
  -DCMAKE_SKIP_INSTALL_RPATH=ON)
# The same options reuse the install (its CMake files are relocatable, so a moved checkout
# keeps it); changed ones reconfigure the build folder, which rebuilds what they touch (delete
# .carry-build/opencv/build for a clean build).
stamp="$version-$revision $(printf '%s\n' "${options[@]}" | sha256sum | cut -c1-16)"
if [[ -f $prefix/.stamp && $(cat "$prefix/.stamp") == "$stamp" ]]; then
  echo "$prefix"
  exit 0
fi

mkdir -p "$cache"
cd "$cache"
[[ -f $dsc ]] || curl -sSfO "$pool/$dsc"
[[ -f $tarball ]] || curl -sSfO "$pool/$tarball"
# The .dsc names the tarball's sha256; a mismatch means a corrupt or different download.
want=$(awk -v f="$tarball" '/^Checksums-Sha256:/ {on = 1; next} /^[^ ]/ {on = 0} on && $3 == f {print $1}' "$dsc")
have=$(sha256sum "$tarball" | cut -d' ' -f1)
if [[ -z $want || $want != "$have" ]]; then
  echo "$tarball: sha256 $have, $dsc says ${want:-nothing}" >&2
  exit 1
fi

if [[ ! -f src/CMakeLists.txt ]]; then
  rm -rf src && mkdir src
  tar -xJf "$tarball" -C src --strip-components=1
fi
rm -rf "$prefix"
# A build folder configured at another path (a moved checkout) cannot be reused.
grep -qs "^CMAKE_HOME_DIRECTORY:INTERNAL=$cache/src\$" build/CMakeCache.txt || rm -rf build
cmake -S src -B build -G Ninja "${options[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" >build.log 2>&1 || { tail -40 build.log >&2; exit 1; }
cmake --build build -j "$(nproc)" >>build.log 2>&1 || { tail -40 build.log >&2; exit 1; }
cmake --install build >>build.log 2>&1
cp src/LICENSE "$prefix/share/licenses/opencv4/"  # Apache 2.0: the copies we carry go with it
echo "$stamp" >"$prefix/.stamp"
echo "$prefix"
