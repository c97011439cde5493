#!/usr/bin/env bash
# Installs what vow needs from Debian 12's archive, if it is missing. Idempotent: a
# machine that has everything runs no apt-get at all. Sourced by run.sh and test.sh.
set -euo pipefail

VOW_PACKAGES=(
  bazel-bootstrap   # Bazel 4.2.3; offline shims in third_party/offline_bazel
  g++
  clang             # fuzzers (libFuzzer) and the sanitizer builds
  libclang-rt-14-dev
  libseccomp-dev
  capnproto
  libcapnp-dev
  libabsl-dev
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libssl-dev
  nlohmann-json3-dev  # examples/x509_oracle/json.cc (header-only)
  openssl
  musl-tools        # the musl conformance worker; the static program in //tests:real_programs_test
  sqlite3           # //tests:real_programs_test runs it unmodified
  python3           # //tests:real_programs_test runs it unmodified
  curl              # //tests:real_programs_test runs it unmodified (gzip is Essential)
  age               # //tests:real_programs_test runs it unmodified (a Go program)
  hyperfine         # tools/bench_startup.sh
  bubblewrap        # tools/bench_startup.sh compares against bwrap
  libpng-dev        # examples/parsers: the image, archive and font libraries
  libjpeg62-turbo-dev
  libgif-dev
  libwebp-dev
  libtiff-dev
  libarchive-dev
  libfreetype-dev
  fonts-dejavu-core # examples/parsers: the font the tests render
  imagemagick       # examples/parsers: corpus tools
  libarchive-tools
  zip
  libcmark-dev      # examples/renderer: Markdown -> HTML (CMARK_OPT_SAFE)
  librsvg2-dev      # examples/renderer: SVG -> pixels
  libcairo2-dev
  libpoppler-cpp-dev  # examples/renderer: PDF pages -> pixels
  chromium          # examples/renderer:chromium_test drives vow_view in headless Chromium
)

vow_missing_packages() {
  local missing=()
  for p in "${VOW_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  echo "${missing[@]:-}"
}

vow_setup() {
  local missing
  missing="$(vow_missing_packages)"
  if [[ -n "${missing// /}" ]]; then
    echo "vow: installing missing packages: $missing" >&2
    local sudo=""
    if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update -qq || true
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >&2
  fi
}
