#!/usr/bin/env bash
# vow_view in a real headless Chromium: starts `vow_view serve --test-hooks` on a directory
# of documents made here, and asserts on the DOM Chromium builds (--dump-dom) for the file
# list, a Markdown tab (script dropped) that keeps its renderer across re-renders, an SVG
# tab (a PNG image of the right size, another renderer), a crashed tab that stays crashed
# until its reload starts a fresh renderer, /about:renderers (per tab), closing a tab
# (its renderer ends), 30 tabs opened at once over HTTP (30 renderers); and that a
# screenshot is not blank. Every URL carries the token vow_view printed at start; what
# opens, reloads or closes a tab is a POST (curl), what shows a page is Chromium.
# Fails (never skips silently) when Chromium is missing.
set -euo pipefail
VIEW="$TEST_SRCDIR/$TEST_WORKSPACE/examples/renderer/vow_view"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  echo "FAIL: $CHROMIUM not found: install Debian's chromium (tools/setup.sh does)" >&2
  exit 1
fi
work="$(mktemp -d)"
docs="$work/docs"
mkdir -p "$docs"
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
printf '# Hello from vow\n\nSome *emphasis*.\n\n<script>document.title="owned"</script>\n' > "$docs/doc.md"
cat > "$docs/pic.svg" <<'SVG'
<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"><rect width="120" height="80" fill="#3366cc"/><text x="10" y="50" font-family="DejaVu Sans" font-size="30" fill="#fff">vow</text></svg>
SVG
"$VIEW" serve --port 0 --test-hooks --spares 1 "$docs" > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 100); do grep -q "http://" "$work/out" 2>/dev/null && break; sleep 0.1; done
printed="$(grep -o 'http://127.0.0.1:[0-9]*/?token=[0-9a-f]*' "$work/out")" || { cat "$work/err"; exit 1; }
url="${printed%/?token=*}"
token="${printed##*token=}"
cookie="vow_view_token_${url##*:}=$token"
# open_tab NAME: POSTs /view/NAME and prints the tab id of the 303's Location.
open_tab() {
  curl -s -o /dev/null -w '%{redirect_url}' -b "$cookie" -X POST "$url/view/$1" | grep -o '/tab/[0-9]*$' | grep -o '[0-9]*$'
}
fails=0
chrome() {  # chrome OUT_FILE ARGS...
  local out="$1"; shift
  timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run \
    --user-data-dir="$(mktemp -d -p "$work")" "$@" > "$out" 2> "$work/chrome.err"
}
expect() {  # expect FILE PATTERN WHAT
  if grep -q -- "$2" "$1"; then echo "ok: $3"; else echo "FAIL: $3 (no '$2')"; fails=$((fails + 1)); fi
}
expect_not() {
  if grep -q -- "$2" "$1"; then echo "FAIL: $3 ('$2' present)"; fails=$((fails + 1)); else echo "ok: $3"; fi
}
chrome "$work/list" --dump-dom "$url/?token=$token"
expect "$work/list" 'action="/view/doc.md"' "file list opens doc.md"
expect "$work/list" 'action="/view/pic.svg"' "file list opens pic.svg"
md_tab="$(open_tab doc.md)" || md_tab=""
chrome "$work/md" --dump-dom "$url/tab/$md_tab?token=$token"
expect "$work/md" '<h1>Hello from vow</h1>' "Markdown rendered"
expect "$work/md" '<em>emphasis</em>' "Markdown emphasis"
expect_not "$work/md" '<script' "Markdown script dropped"
expect_not "$work/md" 'owned' "no script ran"
# POST /view/doc.md opened a tab (303 to /tab/N) with a renderer of its own.
tab="$(grep -o 'id="tab">tab [0-9]*' "$work/md" | grep -o '[0-9]*$')" || tab=""
pid="$(grep -o 'id="pid">[0-9]*' "$work/md" | grep -o '[0-9]*$')" || pid=""
if [[ -z "$tab" || -z "$pid" ]]; then echo "FAIL: no tab id or pid in the tab page"; cat "$work/md"; exit 1; fi
echo "ok: doc.md opened as tab $tab, renderer pid $pid"
chrome "$work/again" --dump-dom "$url/tab/$tab?token=$token"
expect "$work/again" "id=\"pid\">$pid<" "the tab re-renders in the same renderer"
svg_tab="$(open_tab pic.svg)" || svg_tab=""
chrome "$work/svg" --dump-dom "$url/tab/$svg_tab?token=$token"
expect "$work/svg" 'id="rendering"' "SVG tab has the rendering"
expect "$work/svg" 'width="120" height="80" src="data:image/png;base64,' "SVG rendered as a 120x80 PNG"
expect_not "$work/svg" "id=\"pid\">$pid<" "the SVG tab has another renderer"
chrome "$work/crash" --dump-dom "$url/tab/$tab?test=segv&token=$token"
expect "$work/crash" 'This document crashed' "crash page"
expect "$work/crash" 'SIGSEGV' "crash reason"
expect "$work/crash" "action=\"/tab/$tab?reload=1\"" "reload button"
chrome "$work/still" --dump-dom "$url/tab/$tab?token=$token"
expect "$work/still" 'This document crashed' "the tab stays crashed until a reload"
curl -s -o /dev/null -b "$cookie" -X POST "$url/tab/$tab?reload=1"
chrome "$work/reload" --dump-dom "$url/tab/$tab?token=$token"
expect "$work/reload" '<h1>Hello from vow</h1>' "reload renders again"
pid2="$(grep -o 'id="pid">[0-9]*' "$work/reload" | grep -o '[0-9]*$')" || pid2=""
if [[ -n "$pid2" && "$pid2" != "$pid" ]]; then echo "ok: reload started a fresh renderer ($pid2)"; else
  echo "FAIL: reload did not start a fresh renderer ('$pid2' vs '$pid')"; fails=$((fails + 1)); fi
chrome "$work/about" --dump-dom "$url/about:renderers?token=$token"
expect "$work/about" "<td>$tab</td><td>$pid2</td><td>doc.md</td><td>text</td><td>idle</td>" "about:renderers lists the tab's live renderer"
expect "$work/about" "<td>$tab</td><td>$pid</td><td>doc.md</td>" "about:renderers lists the tab's crashed renderer"
expect "$work/about" 'crashed: SIGSEGV' "about:renderers shows the crash"
curl -s -o "$work/close" -b "$cookie" -X POST "$url/tab/$tab/close"
expect "$work/close" 'tab closed' "close tab"
chrome "$work/gone" --dump-dom "$url/tab/$tab?token=$token"
expect "$work/gone" "there is no tab $tab" "a closed tab is gone"
chrome "$work/about2" --dump-dom "$url/about:renderers?token=$token"
expect "$work/about2" "<td>$pid2</td><td>doc.md</td><td>text</td><td>ended: tab closed</td>" "closing the tab ended its renderer"
# 30 tabs opened at once over HTTP (curl POSTs and follows the 303 to each tab with a
# GET; the cookie carries the token): each renders in a
# renderer of its own, and about:renderers (in Chromium) counts them while they are open.
curls=()
for i in $(seq 30); do
  timeout 60 curl -s -L -d '' -b "$cookie" -o "$work/many.$i" -w '%{http_code}\n' "$url/view/doc.md" > "$work/many.$i.code" &
  curls+=($!)
done
wait "${curls[@]}" || true  # (not the server: a bare `wait` would wait for it too)
many_ok=0; many_pids=""
for i in $(seq 30); do
  if [[ "$(cat "$work/many.$i.code")" == 200 ]] && grep -q '<h1>Hello from vow</h1>' "$work/many.$i"; then
    many_ok=$((many_ok + 1))
    many_pids+="$(grep -o 'id="pid">[0-9]*' "$work/many.$i" | grep -o '[0-9]*$')"$'\n'
  fi
done
many_distinct="$(printf '%s' "$many_pids" | sort -u | grep -c .)" || many_distinct=0
if [[ "$many_ok" == 30 && "$many_distinct" == 30 ]]; then echo "ok: 30 tabs at once, 30 renderers"; else
  echo "FAIL: 30 tabs at once: $many_ok rendered, $many_distinct distinct renderers"; fails=$((fails + 1)); fi
chrome "$work/about3" --dump-dom "$url/about:renderers?token=$token"
expect "$work/about3" 'id="tabs">31<' "about:renderers counts 31 open tabs (30 + the SVG tab)"
chrome "$work/shot.log" --screenshot="$work/shot.png" --window-size=400,300 "$url/tab/$svg_tab?token=$token"
if [[ -s "$work/shot.png" ]]; then
  colors="$(convert "$work/shot.png" -format '%k' info:)"
  if [[ "$colors" -gt 10 ]]; then echo "ok: screenshot has $colors colors"; else
    echo "FAIL: screenshot looks blank ($colors colors)"; fails=$((fails + 1)); fi
else
  echo "FAIL: no screenshot"; fails=$((fails + 1))
fi
if kill -0 "$server"; then echo "ok: vow_view still serving"; else echo "FAIL: vow_view died"; fails=$((fails + 1)); fi
[[ "$fails" == 0 ]] || { echo "$fails failures"; cat "$work/err"; exit 1; }
echo PASS
