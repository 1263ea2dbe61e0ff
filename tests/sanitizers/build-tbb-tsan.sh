#!/bin/sh
# Builds oneTBB with ThreadSanitizer, from Debian 12's own source of the libtbb-dev we use
# (2021.8.0), into PREFIX, for the TSan build of stopscan (.ci/sanitizers, docs/security.md).
#
# Why: Debian's libtbb12 is not instrumented, so the hand-over of a task from one thread to
# another happens where TSan cannot see it and TSan reports races that are not there (and
# oneTBB-internal ones that vary from run to run). Built with TBB_SANITIZE=thread, oneTBB's
# own synchronisation is visible and no suppression file is needed.
#
# Usage: tests/sanitizers/build-tbb-tsan.sh PREFIX   (then -DTBB_DIR=PREFIX/lib/cmake/TBB)
# Needs curl (installed if missing, as root), xz-utils, g++ and cmake. Idempotent: does
# nothing when PREFIX already holds the build.
set -eu
prefix=$1
version=2021.8.0
tarball=onetbb_$version.orig.tar.xz
sha256=7e9111b8bb59c8800bf6d0b06afe7b0891937443d2dae1ee1101c8e2ede6a7ef
url=http://deb.debian.org/debian/pool/main/o/onetbb/$tarball

if [ -s "$prefix/lib/cmake/TBB/TBBConfig.cmake" ] && [ -s "$prefix/.stopscan-tbb-$version-tsan" ]; then
  exit 0
fi
for p in curl xz-utils; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
  fi
done
work=$(mktemp -d /tmp/stopscan-tbb-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
curl -fsS -o "$work/$tarball" "$url"
echo "$sha256  $work/$tarball" | sha256sum -c --quiet -
tar -C "$work" -xf "$work/$tarball"
# Only the tbb library: no tests, no tbbmalloc (stopscan does not use it), no hwloc binding.
# The compiler's output (GCC warns that TSan does not model atomic_thread_fence) goes to a log
# shown only on failure.
if ! { cmake -S "$work/oneTBB-$version" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DTBB_SANITIZE=thread -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF \
  -DTBBMALLOC_BUILD=OFF -DTBB_STRICT=OFF -DTBB_DISABLE_HWLOC_AUTOMATIC_SEARCH=ON &&
  cmake --build "$work/build" -j2 && cmake --install "$work/build"; } >"$work/log" 2>&1; then
  tail -n 40 "$work/log" >&2
  echo "build-tbb-tsan: building oneTBB failed" >&2
  exit 1
fi
touch "$prefix/.stopscan-tbb-$version-tsan"
echo "build-tbb-tsan: oneTBB $version with ThreadSanitizer in $prefix"
