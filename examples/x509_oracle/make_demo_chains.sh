#!/bin/bash
# Writes the demo certificate chains that ./run.sh verifies with the oracle, using only
# the `openssl` command line tool (OpenSSL 3.0 or newer), and the hand-written
# x509-limbo test files that embed them. The output is checked in; rerun this script
# only to replace it (keys are new each time, so every file changes).
#
#   examples/x509_oracle/make_demo_chains.sh [OUTPUT_DIR]   (default: ./testdata next to
#                                                            this script)
#
# Writes, in OUTPUT_DIR:
#   demo_root.pem          trust anchor "vow demo root" (2020-01-01 .. 2045-01-01)
#   valid_chain.pem        leaf www.vow.test + intermediate, both valid 2020..2045
#   expired_chain.pem      leaf www.vow.test valid 2020-01-01 .. 2021-01-01 + intermediate
#   wrong_host_chain.pem   leaf other.vow.test (valid 2020..2045) + intermediate: fails
#                          when verified for www.vow.test
#   demo_leaf.key          private key of the valid leaf (only for limbo's
#                          peer_certificate_key field; the oracle never needs it)
#   limbo/*.json           x509-limbo format files for limbo_test (needs `jq`)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/testdata}"
mkdir -p "$out/limbo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

cat > ca.cnf <<'EOF'
[ ca ]
default_ca = demo

[ demo ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ any ]
organizationName = optional
commonName = supplied

[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = placeholder

[ root_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ intermediate_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = $ENV::LEAF_SAN
EOF
: > index.txt
echo 1000 > serial
export LEAF_SAN="DNS:placeholder.invalid"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
csr() { openssl req -new -config ca.cnf -key "$1" -subj "$2" -out "$3"; }
# sign CSR OUT EXTENSIONS START END [ISSUER_CERT ISSUER_KEY]  (no issuer: self-signed)
sign() {
  local csr="$1" out="$2" ext="$3" start="$4" end="$5"
  if [[ $# -gt 5 ]]; then
    openssl ca -batch -notext -config ca.cnf -in "$csr" -out "$out" -extensions "$ext" \
      -startdate "$start" -enddate "$end" -cert "$6" -keyfile "$7" 2>/dev/null
  else
    openssl ca -batch -notext -config ca.cnf -in "$csr" -out "$out" -extensions "$ext" \
      -startdate "$start" -enddate "$end" -selfsign -keyfile "${csr%.csr}.key" 2>/dev/null
  fi
}

key root.key
csr root.key "/O=vow demo/CN=vow demo root" root.csr
sign root.csr root.pem root_ext 20200101000000Z 20450101000000Z

key intermediate.key
csr intermediate.key "/O=vow demo/CN=vow demo intermediate" intermediate.csr
sign intermediate.csr intermediate.pem intermediate_ext 20200101000000Z 20450101000000Z \
  root.pem root.key

key leaf.key
csr leaf.key "/O=vow demo/CN=www.vow.test" leaf.csr
LEAF_SAN="DNS:www.vow.test" sign leaf.csr leaf.pem leaf_ext \
  20200101000000Z 20450101000000Z intermediate.pem intermediate.key

key expired.key
csr expired.key "/O=vow demo/CN=www.vow.test" expired.csr
LEAF_SAN="DNS:www.vow.test" sign expired.csr expired.pem leaf_ext \
  20200101000000Z 20210101000000Z intermediate.pem intermediate.key

key other.key
csr other.key "/O=vow demo/CN=other.vow.test" other.csr
LEAF_SAN="DNS:other.vow.test" sign other.csr other.pem leaf_ext \
  20200101000000Z 20450101000000Z intermediate.pem intermediate.key

cp root.pem "$out/demo_root.pem"
cat leaf.pem intermediate.pem > "$out/valid_chain.pem"
cat expired.pem intermediate.pem > "$out/expired_chain.pem"
cat other.pem intermediate.pem > "$out/wrong_host_chain.pem"
cp leaf.key "$out/demo_leaf.key"

# Sanity check with the CLI's own verifier (at a fixed time: 2030-06-01).
at=1906502400
openssl verify -attime $at -CAfile root.pem -untrusted intermediate.pem \
  -verify_hostname www.vow.test leaf.pem >/dev/null
! openssl verify -attime $at -CAfile root.pem -untrusted intermediate.pem \
  expired.pem >/dev/null 2>&1
! openssl verify -attime $at -CAfile root.pem -untrusted intermediate.pem \
  -verify_hostname www.vow.test other.pem >/dev/null 2>&1

if ! command -v jq >/dev/null; then
  echo "jq not found: limbo/*.json not regenerated" >&2
  exit 0
fi

# --- x509-limbo files (see limbo_test.cc for what each case checks). ---
# A case with every field of the schema; the others vary one thing each.
jq -n --rawfile root root.pem --rawfile inter intermediate.pem --rawfile leaf leaf.pem \
  --rawfile key leaf.key '{
  id: "vow::single::valid-dns",
  conflicts_with: [],
  features: [],
  importance: "high",
  description: "A valid chain for `www.vow.test`, every field of the schema present.",
  validation_kind: "SERVER",
  trusted_certs: [$root],
  untrusted_intermediates: [$inter],
  peer_certificate: $leaf,
  peer_certificate_key: $key,
  validation_time: "2030-06-01T12:00:00Z",
  signature_algorithms: [],
  key_usage: [],
  extended_key_usage: ["serverAuth"],
  expected_result: "SUCCESS",
  expected_peer_name: {kind: "DNS", value: "www.vow.test"},
  expected_peer_names: [],
  max_chain_depth: null
}' > "$out/limbo/single_case.json"

jq -n --rawfile root root.pem --rawfile inter intermediate.pem --rawfile leaf leaf.pem \
  --rawfile expired expired.pem --rawfile other other.pem '
def base: {
  description: "vow limbo reader test",
  validation_kind: "SERVER",
  trusted_certs: [$root],
  untrusted_intermediates: [$inter],
  peer_certificate: $leaf,
  validation_time: "2030-06-01T12:00:00Z",
  signature_algorithms: [],
  key_usage: [],
  extended_key_usage: ["serverAuth"],
  expected_result: "SUCCESS",
  expected_peer_name: {kind: "DNS", value: "www.vow.test"},
  expected_peer_names: []
};
{
  version: 1,
  testcases: [
    (base + {id: "vow::valid"}),
    (base + {id: "vow::expired", peer_certificate: $expired, expected_result: "FAILURE"}),
    (base + {id: "vow::expired-leaf-at-an-earlier-time", peer_certificate: $expired,
             validation_time: "2020-06-01T00:00:00Z"}),
    (base + {id: "vow::not-yet-valid", validation_time: "2019-12-31T23:59:59Z",
             expected_result: "FAILURE"}),
    (base + {id: "vow::time-with-offset", validation_time: "2030-06-01T14:00:00.5+02:00"}),
    (base + {id: "vow::wrong-host", peer_certificate: $other, expected_result: "FAILURE"}),
    (base + {id: "vow::ip-name-against-dns-leaf",
             expected_peer_name: {kind: "IP", value: "192.0.2.1"},
             expected_result: "FAILURE"}),
    (base + {id: "vow::no-peer-name", expected_peer_name: null}),
    (base + {id: "vow::peer-name-omitted"} | del(.expected_peer_name)),
    (base + {id: "vow::missing-intermediate", untrusted_intermediates: [],
             expected_result: "FAILURE"}),
    (base + {id: "vow::intermediate-as-anchor", trusted_certs: [$inter],
             untrusted_intermediates: []}),
    (base + {id: "vow::client-kind-server-leaf", validation_kind: "CLIENT",
             extended_key_usage: ["clientAuth"], expected_peer_name: null,
             expected_result: "FAILURE"}),
    (base + {id: "vow::garbage-peer", peer_certificate: "not a certificate",
             expected_result: "FAILURE"}),
    (base + {id: "vow::wrong-expectation"}),
    (base + {id: "vow::validation-time-null", validation_time: null}),
    (base + {id: "vow::skip::rfc822",
             expected_peer_name: {kind: "RFC822", value: "a@vow.test"}}),
    (base + {id: "vow::skip::max-chain-depth", max_chain_depth: 5}),
    (base + {id: "vow::skip::features", features: ["pedantic-rfc5280", "has-cert-policies"]}),
    (base + {id: "vow::skip::signature-algorithms",
             signature_algorithms: ["ECDSA_WITH_SHA256"]}),
    (base + {id: "vow::skip::key-usage", key_usage: ["digitalSignature"]}),
    (base + {id: "vow::skip::eku-other", extended_key_usage: ["codeSigning"]}),
    (base + {id: "vow::skip::eku-none", extended_key_usage: []}),
    (base + {id: "vow::skip::expected-peer-names",
             expected_peer_names: [{kind: "DNS", value: "www.vow.test"}]}),
    (base + {id: "vow::skip::crls", crls: ["-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"]}),
    (base + {id: "vow::skip::unknown-field", some_future_constraint: true})
  ]
}' > "$out/limbo/suite.json"
# vow::wrong-expectation claims FAILURE for a valid chain: the reader must say MISMATCH.
tmp="$(mktemp)"
jq '(.testcases[] | select(.id == "vow::wrong-expectation") | .expected_result) = "FAILURE"' \
  "$out/limbo/suite.json" > "$tmp" && mv "$tmp" "$out/limbo/suite.json"

chmod 644 "$out"/*.pem "$out"/*.key "$out"/limbo/*.json
echo "wrote demo chains and limbo files to $out"
