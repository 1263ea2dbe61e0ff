#!/bin/sh
# Renders report.html in headless Chromium and checks what a reader would get: every section,
# at least 6 SVG charts in the DOM, and a screenshot that is not blank. Installs nothing.
#
#   tests/report/browser_test.sh out/report.html [SCREENSHOT.png]
#
# Needs `chromium` on PATH (Debian: apt-get install -y chromium). Prints the screenshot's path.
# Exit status: 0 pass, 1 a check failed, 2 bad usage or no chromium.
set -eu

report=${1:-}
if [ -z "$report" ] || [ ! -s "$report" ]; then
    echo "usage: $0 REPORT.html [SCREENSHOT.png] (the report must exist and not be empty)" >&2
    exit 2
fi
if ! command -v chromium >/dev/null 2>&1; then
    echo "$0: chromium not found on PATH (apt-get install -y chromium)" >&2
    exit 2
fi
case $report in
    /*) url="file://$report" ;;
    *) url="file://$(pwd)/$report" ;;
esac
work=$(mktemp -d)
screenshot=${2:-$work/report-screenshot.png}
fail=0

# The flags, exactly; each run gets a fresh profile directory.
run_chromium() {
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d)" "$@" 2>>"$work/chromium.log"
}

# 1. The DOM: every section and at least 6 charts.
run_chromium --dump-dom "$url" >"$work/dom.html" || true
if [ ! -s "$work/dom.html" ]; then
    echo "FAIL: chromium produced no DOM (log: $work/chromium.log)" >&2
    exit 1
fi
for id in headline chart-stop-ratio chart-exposure chart-causes chart-persons \
    chart-disclosures chart-identification flags assumptions method provenance; do
    if ! grep -q "id=\"$id\"" "$work/dom.html"; then
        echo "FAIL: section id=\"$id\" missing from the rendered DOM" >&2
        fail=1
    fi
done
charts=$(grep -o '<svg' "$work/dom.html" | wc -l)
if [ "$charts" -lt 6 ]; then
    echo "FAIL: $charts <svg> charts in the rendered DOM, expected at least 6" >&2
    fail=1
fi
if grep -qi '<script' "$work/dom.html"; then
    echo "FAIL: the rendered DOM holds a <script>" >&2
    fail=1
fi

# 2. A screenshot: large enough and not a single colour.
rm -f "$screenshot"
run_chromium --screenshot="$screenshot" --window-size=1200,3000 "$url" >/dev/null || true
if [ ! -s "$screenshot" ]; then
    echo "FAIL: no screenshot written (log: $work/chromium.log)" >&2
    exit 1
fi
size=$(wc -c <"$screenshot")
if [ "$size" -le 20000 ]; then
    echo "FAIL: screenshot is $size bytes, expected more than 20 kB (blank page?)" >&2
    fail=1
fi
# PNG signature, then a crude "more than one colour" check: a single-colour 1200x3000 image
# compresses to a few kB, so its compressed data is nearly all one repeated pattern. Count the
# distinct bytes of the compressed data: a real page uses almost all 256 values.
signature=$(od -An -tx1 -N8 "$screenshot" | tr -d ' \n')
if [ "$signature" != "89504e470d0a1a0a" ]; then
    echo "FAIL: screenshot is not a PNG (signature $signature)" >&2
    fail=1
fi
distinct=$(od -An -v -tx1 -j 64 "$screenshot" | tr -s ' ' '\n' | grep -v '^$' | sort -u | wc -l)
if [ "$distinct" -lt 200 ]; then
    echo "FAIL: screenshot looks like a single colour ($distinct distinct bytes)" >&2
    fail=1
fi

echo "$screenshot"
if [ "$fail" -ne 0 ]; then
    echo "browser test: FAILED (DOM: $work/dom.html)" >&2
    exit 1
fi
echo "browser test: passed ($charts charts, screenshot $size bytes)" >&2
