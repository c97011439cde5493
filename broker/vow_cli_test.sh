#!/bin/bash
# The `vow` command's front end: help, exit codes, errors, --explain. Runs nothing
# sandboxed (the runs themselves are tested in //tests:exec_worker_test).
set -u
VOW="$1"
fail=0
# expect CODE SUBSTRING ARGS...: runs vow ARGS, checks the exit code and the output.
expect() {
  local want="$1" text="$2"
  shift 2
  local out code
  out="$("$VOW" "$@" 2>&1)"
  code=$?
  if [[ "$code" != "$want" ]] || [[ "$out" != *"$text"* ]]; then
    echo "FAIL: vow $*: exit $code (want $want), output:"
    echo "$out"
    echo "--- wanted it to contain: $text"
    fail=1
  fi
}
expect 0 "usage: vow COMMAND" help
expect 0 "usage: vow run" help run
expect 0 "usage: vow run" run --help
expect 0 "127 when PROGRAM is not found" run --help
expect 0 "usage: vow learn" learn --help
expect 0 "usage: vow check" check --help
expect 0 "usage: vow explain" explain --help
expect 0 "usage: vow COMMAND" help --help
expect 0 "usage: vow COMMAND" help -h
expect 125 "unknown command" frobnicate
expect 125 "usage: vow COMMAND"
expect 125 "vow: run: unknown option --polcy; did you mean --policy?" run --polcy x -- true
expect 125 "vow: run: -p needs a value" run -p
expect 125 "vow: run: no program given" run -p stdio
expect 125 'vow: -p: unknown promise "rpat"; did you mean "rpath"?' run -p 'stdio rpat' -- true
expect 125 'does not include stdio' run -p rpath -- true
expect 125 "-v rz:/tmp: unknown permission 'z'" run -v rz:/tmp -- true
expect 127 "vow: vow-no-such-program: not found" run -- vow-no-such-program
expect 127 "vow: /nonexistent/prog: not found" run -- /nonexistent/prog
expect 126 "vow: /etc/passwd: permission denied" run -- /etc/passwd
expect 125 'unknown promise "stdoi"; did you mean "stdio"?' explain stdoi
expect 0 "# arch: aarch64" explain --arch aarch64 stdio
expect 0 "# arch: aarch64" explain --arch=aarch64 stdio
expect 0 "unveil /etc r" run -p 'stdio rpath' -v /etc --explain -- true
expect 0 "promises: stdio rpath" run --promises='stdio rpath' --unveil=rwc:/tmp --explain -- true
expect 0 "unveil /tmp rwc" run --promises='stdio rpath' --unveil=rwc:/tmp --explain -- true
expect 0 "program: /usr/bin/true" run --explain -- true
expect 0 "layers: landlock" run --explain -- true
expect 0 "libc set: on" run --explain -- true
dir="${TEST_TMPDIR:-/tmp}"
printf 'promises stdio\nunveil /no/such/dir/for/vow r\n' > "$dir/missing.policy"
expect 1 '"/no/such/dir/for/vow": does not exist' check "$dir/missing.policy"
printf 'libc none\nunveil /etc r\n' > "$dir/ok.policy"
expect 0 "libc none" check "$dir/ok.policy"
expect 0 "libc set: off" run --policy "$dir/ok.policy" --explain -- true
expect 125 "conflicts with" run --policy "$dir/ok.policy" -v w:/etc -- true
printf 'layers -netns\nlayers -netns\n' > "$dir/dup.policy"
expect 1 "dup.policy:2:1: duplicate \"layers\" line" check "$dir/dup.policy"
expect 125 "expected one policy file" check
# A clock rule does nothing for an unmodified program (it reads the kernel's clock):
# refused, not ignored (review h72).
printf 'promises stdio\nclock fixed 2024-05-01T00:00:00Z\n' > "$dir/clock.policy"
expect 125 "clock rule applies to vow workers (--vow-worker) only" run --policy "$dir/clock.policy" -- true
# A refusal that comes after `vow run` has started its compile thread (PrepareRun starts
# it before the layer probe): as nobody, the identity drop cannot be made. vow must end
# with 125 and the message, the thread joined (not SIGABRT from a joinable thread).
nobody_dir="$(mktemp -d /tmp/vow_cli_test.XXXXXX)"
cp "$VOW" "$nobody_dir/vow" && chmod 755 "$nobody_dir" "$nobody_dir/vow"
for command in run learn; do
  out="$(setpriv --reuid=65534 --regid=65534 --clear-groups "$nobody_dir/vow" "$command" -- /bin/true 2>&1)"
  code=$?
  if [[ "$code" != 125 ]] || [[ "$out" != *"needs root; run vow as root"* ]]; then
    echo "FAIL: vow $command as nobody: exit $code (want 125), output:"
    echo "$out"
    fail=1
  fi
done
rm -rf "$nobody_dir"
exit $fail
