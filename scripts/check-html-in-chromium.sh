#!/usr/bin/env bash
# Opens a run's HTML report in headless Chromium (Debian's `chromium`, installed with apt-get
# when missing) and checks that hostile data stays data: the run judges rows whose every text
# field holds <script>alert(1)</script> and markup that would change the page if it ran.
#
#   scripts/check-html-in-chromium.sh [OUT_DIR]     # default: target/html-check
#
# Checks, on the DOM Chromium builds after loading the page:
#   - the payload is there as text (escaped in the source, visible in the open first card);
#   - no planted script or event handler ran (none of them got to mark the page);
#   - the page has no <script> element at all.
# Leaves OUT_DIR/report.png, a screenshot to look at, and OUT_DIR/dom.html.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-target/html-check}")"
rm -rf "$out"
mkdir -p "$out"

if ! command -v chromium >/dev/null; then
    echo "installing Debian's chromium (apt-get)" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >&2
fi

cargo build --quiet --bin halubench
halubench="${CARGO_TARGET_DIR:-$PWD/target}/debug/halubench"

# Each row is planted twice, once per label, so the baseline gets one of the two wrong and
# the report lists it.
# The attribute a planted script would set is spelt in two halves, so only a script that
# ran can put the whole name into the DOM.
payload='<script>alert(1)</script> <script>document.documentElement.setAttribute("data-"+"pwned","script")</script> <img src=x onerror="document.documentElement.setAttribute(&quot;data-&quot;+&quot;pwned&quot;,&quot;onerror&quot;)"> & "quotes"'
python3 - "$out/hostile.jsonl" "$payload" <<'EOF'
import json, sys
path, payload = sys.argv[1], sys.argv[2]
with open(path, "w") as f:
    for i in range(3):
        for label in ("PASS", "FAIL"):
            f.write(json.dumps({
                "id": f"row-{i}-{label}-{payload}",
                "source_ds": "hostile",
                "question": f"Question {i}: {payload}",
                "passage": f"Passage {i} says the sky is blue. {payload}",
                "answer": f"The sky is blue. {payload}",
                "label": label,
            }) + "\n")
EOF

HALUBENCH_CACHE_DIR="$out/cache" "$halubench" run --dataset "$out/hostile.jsonl" \
    --out "$out/run" >"$out/run.log"
report="$out/run/report.html"

chrome=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --user-data-dir="$out/profile" --window-size=1280,1600)
"${chrome[@]}" --dump-dom "file://$report" >"$out/dom.html" 2>"$out/chromium.log"
"${chrome[@]}" --screenshot="$out/report.png" "file://$report" 2>>"$out/chromium.log"

fail() { echo "html check FAILED: $*" >&2; exit 1; }
grep -q 'data-pwned' "$out/dom.html" && fail "a planted script ran (data-pwned is set)"
grep -qi '<script' "$out/dom.html" && fail "the page holds a <script> element"
grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;' "$out/dom.html" ||
    fail "the payload is not on the page as text"
grep -q '<details open' "$out/dom.html" || fail "no open example card to show the payload"
[ -s "$out/report.png" ] || fail "no screenshot"
echo "html check passed: the payload shows as text and nothing ran; screenshot $out/report.png"
