#!/usr/bin/env bash
# Mutation check: breaks the broker, the lock-down and the policies on purpose, one
# single-line change at a time, and runs the tests that must notice.
#
#   tools/mutate.sh [LIST] [FILTER]
#
# LIST (default tools/mutations.txt) has one mutation per line:
#   file ||| exact original snippet ||| replacement ||| test targets [||| occurrence]
# FILTER (optional) is a substring: only mutations whose line contains it run.
#
# The real tree is never modified: the tracked and untracked (not ignored) files are
# copied to a temporary directory once, each mutation is applied there, its targets run
# with `bazel test`, and the file is restored. Results: CAUGHT (a target failed),
# MISSED (every target passed), NOT-FOUND (the snippet is not in the file, or not once:
# the code moved; re-anchor it), NO-BUILD (the mutant does not compile: not a valid
# mutation). The script prints a Markdown table and exits non-zero unless every
# mutation is CAUGHT. Slow (one incremental build + test per mutation); the copy has its
# own Bazel output base, so the first mutation builds the tree once.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LIST="${1:-$ROOT/tools/mutations.txt}"
FILTER="${2:-}"
[[ "$LIST" = /* ]] || LIST="$PWD/$LIST"

WORK="$(mktemp -d /tmp/vow-mutate.XXXXXX)"
cleanup() {
  (cd "$WORK" 2>/dev/null && bazel shutdown >/dev/null 2>&1)
  rm -rf "$WORK"
}
trap cleanup EXIT
(cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$WORK"
# The list as it is now: editing it during a run must not shift the lines being read.
cp "$LIST" "$WORK/.mutate.list" || exit 2

# Applies or checks one mutation in $WORK. Prints OK, NOT-FOUND or NOT-UNIQUE.
apply() {  # mode file snippet replacement occurrence
  python3 - "$@" <<'PY'
import sys
mode, path, old, new, occ = sys.argv[1:6]
text = open(path).read()
count = text.count(old)
if count == 0:
    print("NOT-FOUND"); sys.exit(0)
if occ == "" and count != 1:
    print("NOT-UNIQUE (%d times)" % count); sys.exit(0)
n = int(occ) if occ else 1
if n > count:
    print("NOT-FOUND (occurrence %d of %d)" % (n, count)); sys.exit(0)
start = -1
for _ in range(n):
    start = text.index(old, start + 1)
if mode == "apply":
    open(path, "w").write(text[:start] + new + text[start + len(old):])
print("OK")
PY
}

trim() { local s="$1"; s="${s#"${s%%[![:space:]]*}"}"; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

declare -a ROWS
failures=0
index=0
while IFS= read -r line || [[ -n "$line" ]]; do
  [[ -z "${line// }" || "$line" = \#* ]] && continue
  [[ -n "$FILTER" && "$line" != *"$FILTER"* ]] && continue
  index=$((index + 1))
  IFS=$'\x1f' read -r -a f <<<"${line// ||| /$'\x1f'}"
  file="$(trim "${f[0]}")"
  old="${f[1]}"        # kept verbatim: leading spaces may make a snippet unique
  new="${f[2]}"
  targets="$(trim "${f[3]:-}")"
  occ="$(trim "${f[4]:-}")"
  label="$file: \`$(trim "$old")\` -> \`$(trim "$new")\`${occ:+ (#$occ)}"
  if [[ ! -f "$WORK/$file" || -z "$targets" ]]; then
    result="NOT-FOUND (no file or no targets)"
  else
    cp "$WORK/$file" "$WORK/.mutate.orig"
    status="$(apply apply "$WORK/$file" "$old" "$new" "$occ")"
    if [[ "$status" != OK ]]; then
      result="$status"
    else
      echo "== [$index] $label" >&2
      # shellcheck disable=SC2086
      (cd "$WORK" && bazel test --test_timeout=180 --test_output=summary $targets \
          >"$WORK/.mutate.log" 2>&1)
      rc=$?
      case $rc in
        0) result="MISSED" ;;
        3) result="CAUGHT" ;;
        1) result="NO-BUILD" ; tail -5 "$WORK/.mutate.log" >&2 ;;
        *) result="ERROR (bazel exit $rc)" ; tail -5 "$WORK/.mutate.log" >&2 ;;
      esac
    fi
    cp "$WORK/.mutate.orig" "$WORK/$file"
  fi
  [[ "$result" == CAUGHT ]] || failures=$((failures + 1))
  echo "   $result" >&2
  ROWS+=("| $index | $label | $targets | $result |")
done <"$WORK/.mutate.list"

echo "| # | mutation | targets | result |"
echo "| --- | --- | --- | --- |"
for row in "${ROWS[@]}"; do echo "$row"; done
echo
echo "$((index - failures)) of $index mutations caught."
[[ $failures -eq 0 ]]
