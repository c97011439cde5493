#!/usr/bin/env bash
# Installs what is missing, builds, and runs vow's main job. See README.md.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup.sh
vow_setup
bazel build //examples/... >&2
echo "== x509_oracle: OpenSSL locked in a sandboxed worker verifies the shipped demo chains =="
echo "   (trust anchor: the demo root; time: the broker's real clock; verify exits 1 for 'not valid')"
oracle=./bazel-bin/examples/x509_oracle/x509_oracle
demo=examples/x509_oracle/testdata
for chain in valid expired wrong_host; do
  echo "-- ${chain}_chain.pem for www.vow.test:"
  "$oracle" verify --chain "$demo/${chain}_chain.pem" --trusted "$demo/demo_root.pem" \
    --host www.vow.test || [ $? -eq 1 ]
done
echo "== vow_cat: a worker locked to stdio reads a file through the broker =="
./bazel-bin/examples/vow_cat --audit examples/testdata/pledge.txt
echo "== vow run: an unmodified program (Debian's cat), locked before its first instruction =="
echo "   vow run -p 'stdio rpath' -v r:examples/testdata -- cat examples/testdata/pledge.txt /etc/shadow"
./bazel-bin/broker/vow run -p 'stdio rpath' -v r:examples/testdata -- \
  cat examples/testdata/pledge.txt /etc/shadow || echo "   (cat exited $?: /etc/shadow has no rule, so the broker answered ENOENT)"
echo "== vow_view: untrusted documents rendered by locked renderers, in your browser =="
echo "   ./bazel-bin/examples/renderer/vow_view serve --port 8080 examples/renderer/testdata"
echo "   then open the URL it prints (http://127.0.0.1:8080/?token=...: every request needs the token)"
if [[ "${VOW_VIEW:-0}" == 1 ]]; then
  exec ./bazel-bin/examples/renderer/vow_view serve --port 8080 examples/renderer/testdata
fi
