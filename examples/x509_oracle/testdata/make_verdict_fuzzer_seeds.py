#!/usr/bin/env python3
"""Writes the seeds of verdict_fuzzer (binary verdicts, protocol.h) into
verdict_fuzzer_corpus/. Written from the format's description, not from EncodeVerdict,
so the seeds also check that the two agree (verdict_fuzzer_replay_test requires each
well-formed seed to re-encode byte for byte). Run from this directory."""
import os
import struct

OUT = "verdict_fuzzer_corpus"
SHA = "3f" * 32


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<I", len(b)) + b


def verdict(valid, code, depth, time, chain, error_string=b"", openssl=b"OpenSSL 3.0.x",
            input_error=b""):
    flags = (1 if valid else 0) | (2 if time is not None else 0)
    out = struct.pack("<BBiiqI", 1, flags, code, depth, time or 0, len(chain))
    out += s(error_string) + s(openssl) + s(input_error)
    for entry in chain:
        for field in entry:
            out += s(field)
    return out


def cert(subject, issuer):
    return (subject, issuer, "2024-01-01T00:00:00Z", "2034-01-01T00:00:00Z", SHA)


SEEDS = {
    "valid_chain": verdict(True, 0, -1, 1735689600,
                           [cert("CN=leaf.example", "CN=Int"), cert("CN=Int", "CN=Root"),
                            cert("CN=Root", "CN=Root")], b"ok"),
    "expired": verdict(False, 10, 0, 1735689600, [cert("CN=leaf", "CN=Root")],
                       b"certificate has expired"),
    "hostname_mismatch": verdict(False, 62, 0, 1735689600, [cert("CN=leaf", "CN=Root")],
                                 b"hostname mismatch (other.example)"),
    "input_error": verdict(False, 0, -1, None, [], openssl=b"",
                           input_error=b"chain: neither PEM nor a DER certificate"),
    "hostile_strings": verdict(False, 20, 1, -62135596800,
                               [cert(b"CN=\x00\x01\"\\\xff\xfe", b"CN=\xe2\x82"),
                                (b"", b"", b"", b"", b"")], b"\x1b[31m"),
    "time_max": verdict(False, 7, 1024, 253402300799, []),
    "cut_short": verdict(True, 0, -1, 1735689600, [cert("CN=a", "CN=a")])[:40],
    "trailing": verdict(True, 0, -1, 1735689600, []) + b"\x00",
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
