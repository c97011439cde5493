#!/usr/bin/env bash
# vow_view's HTTP front door, with curl: every request needs the token printed at start
# (in ?token= or the cookie the server sets), a Host of its own address, no other site
# (Sec-Fetch-Site, Origin), and opening a tab is POST only. Each refused request is one
# that would otherwise open a tab (POST /view/doc.md, right in all but one thing): it gets
# a 403 (405 for GET) saying what was wrong, and no tab is opened, no renderer leased
# (about:renderers: 0 tabs, no renderer row). Then the same request done right opens one.
set -euo pipefail
VIEW="$TEST_SRCDIR/$TEST_WORKSPACE/examples/renderer/vow_view"
work="$(mktemp -d)"
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/docs"
printf '# Hello from vow\n' > "$work/docs/doc.md"
"$VIEW" --help > "$work/help"
grep -q 'token' "$work/help" || { echo "FAIL: --help says nothing of the token"; exit 1; }
"$VIEW" serve --port 0 --spares 1 "$work/docs" > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 100); do grep -q "http://" "$work/out" 2>/dev/null && break; sleep 0.1; done
url="$(grep -o 'http://127.0.0.1:[0-9]*/?token=[0-9a-f]*' "$work/out")" || { cat "$work/out" "$work/err"; exit 1; }
base="${url%/?token=*}"
port="${base##*:}"
token="${url##*token=}"
[[ ${#token} == 32 ]] || { echo "FAIL: token '$token' is not 32 hex digits"; exit 1; }
fails=0
# refused WHAT EXPECTED_CODE BODY_PATTERN CURL_ARGS...
refused() {
  local what="$1" code="$2" pattern="$3"; shift 3
  local got
  got="$(curl -s -o "$work/body" -w '%{http_code}' "$@")" || got="curl failed"
  if [[ "$got" == "$code" ]] && grep -q -- "$pattern" "$work/body"; then
    echo "ok: $what: $code $(cat "$work/body")"
  else
    echo "FAIL: $what: got $got '$(cat "$work/body")', want $code with '$pattern'"; fails=$((fails + 1))
  fi
}
open_url="$base/view/doc.md"
refused "no token" 403 "no token" -X POST "$open_url"
refused "no token, file list" 403 "no token" "$base/"
refused "wrong token" 403 "wrong token" -X POST "$open_url?token=0123456789abcdef0123456789abcdef"
refused "wrong cookie" 403 "wrong token" -X POST -b "vow_view_token_$port=0123456789abcdef0123456789abcdef" "$open_url"
refused "foreign Host (DNS rebinding)" 403 "Host header" -X POST -H "Host: evil.example:$port" "$open_url?token=$token"
refused "cross-site request" 403 "another site" -X POST -H "Sec-Fetch-Site: cross-site" "$open_url?token=$token"
refused "same-site request (another port)" 403 "another site" -X POST -H "Sec-Fetch-Site: same-site" "$open_url?token=$token"
refused "foreign Origin" 403 "another origin" -X POST -H "Origin: http://evil.example" "$open_url?token=$token"
refused "GET opens no tab" 405 "POST only" "$open_url?token=$token"
# (about:renderers itself needs the token.)
curl -s "$base/about:renderers?token=$token" > "$work/about"
if grep -q 'id="tabs">0<' "$work/about" && ! grep -q '<tr class=' "$work/about"; then
  echo "ok: no tab opened, no renderer leased"
else
  echo "FAIL: a refused request opened a tab"; cat "$work/about"; fails=$((fails + 1))
fi
# Done right: a tab, its renderer, and the cookie that serves the tab's page without
# the token in the URL.
code="$(curl -s -o /dev/null -D "$work/headers" -w '%{http_code}' -X POST "$open_url?token=$token")"
location="$(grep -i '^location:' "$work/headers" | tr -d '\r' | sed 's/^[^:]*: //')"
cookie="$(grep -i '^set-cookie:' "$work/headers" | tr -d '\r' | sed 's/^[^:]*: //; s/;.*//')"
if [[ "$code" == 303 && "$location" == /tab/1 && "$cookie" == "vow_view_token_$port=$token" ]] &&
   grep -qi '^set-cookie:.*HttpOnly; SameSite=Strict' "$work/headers"; then
  echo "ok: POST with the token opens tab 1"
else
  echo "FAIL: POST with the token: $code '$location' '$cookie'"; cat "$work/headers"; fails=$((fails + 1))
fi
curl -s -b "$cookie" "$base$location" > "$work/tab"
if grep -q '<h1>Hello from vow</h1>' "$work/tab" && grep -q 'id="pid">[0-9]' "$work/tab"; then
  echo "ok: the cookie alone serves the tab"
else
  echo "FAIL: the tab with the cookie"; cat "$work/tab"; fails=$((fails + 1))
fi
curl -s -b "$cookie" "$base/about:renderers" > "$work/about2"
if grep -q 'id="tabs">1<' "$work/about2" && [[ "$(grep -o '<tr class="live">' "$work/about2" | wc -l)" == 1 ]]; then
  echo "ok: about:renderers counts the tab and its renderer"
else
  echo "FAIL: about:renderers after the tab"; cat "$work/about2"; fails=$((fails + 1))
fi
refused "closing is POST only" 405 "POST only" -b "$cookie" "$base/tab/1/close"
refused "reload is POST only" 405 "POST only" -b "$cookie" "$base/tab/1?reload=1"
refused "closing needs the token" 403 "no token" -X POST "$base/tab/1/close"
code="$(curl -s -o "$work/close" -w '%{http_code}' -X POST -b "$cookie" "$base/tab/1/close")"
if [[ "$code" == 200 ]] && grep -q 'tab closed' "$work/close"; then echo "ok: POST closes the tab"; else
  echo "FAIL: close: $code"; fails=$((fails + 1)); fi
kill -0 "$server" || { echo "FAIL: vow_view died"; fails=$((fails + 1)); }
[[ "$fails" == 0 ]] || { echo "$fails failures"; cat "$work/err"; exit 1; }
echo PASS
