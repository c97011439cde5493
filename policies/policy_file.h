// The text format of a vow policy: parsing (ParsePolicy, LoadPolicyFile) and printing
// (FormatPolicy). Runs on the trusted side (the broker's caller, tools); a policy file is
// written by the application's developer, never by a worker. The parser is strict anyway
// (every byte is either understood or an error, with a line and column) and bounded
// (kMaxPolicyFileBytes, kMaxPolicyLineBytes), and it is fuzzed.
//
// The format, one directive per line (documented for users in the README):
//
//   # vow policy for the x509 oracle worker      <- '#' comment (line start or after blank)
//   promises stdio rpath                         <- at most once; exactly this set
//   penalty kill                                 <- kill | errno | trap | log
//   unveil /etc/ssl/certs r                      <- absolute, normalized path; perms from
//   unveil "/srv/my files" rw                       r w x c, or `none` (deny beneath)
//   connect tcp 127.0.0.1:8080                   <- tcp | udp, address or CIDR, port,
//   connect tcp 10.0.0.0/8:443                      port range N-M or * (any port)
//   connect tcp [2001:db8::/32]:1-1024           <- IPv6 in brackets, prefix inside them
//   connect unix /run/app.sock                   <- exact socket path
//   clock fixed 2024-05-01T00:00:00Z             <- real | fixed RFC3339 | offset -3600s | none
//   limit memory 256M                            <- open_fds, requests_per_second,
//   limit wall_time 30s                             message_bytes, cpu_seconds, memory,
//                                                   wall_time; a value or `unlimited`
//   layers -netns +pidns                         <- at most once: +NAME required, -NAME
//                                                   off; unnamed layers keep their default
//                                                   (on where the kernel has them; pidns
//                                                   off); names: userns mountns netns
//                                                   ipcns utsns pidns landlock
//   identity nobody                              <- nobody (default) | keep (stay root) |
//                                                   UID:GID (neither 0)
//   libc default                                 <- default | none: the libc set
//   execpromises stdio rpath                     <- what an exec'd image gets
//
// Lexical rules:
//  - Lines end in LF or CRLF. Tokens are separated by spaces or tabs. Other control
//    characters (and a CR not followed by LF) are errors, even inside comments.
//  - Columns in errors are 1-based byte offsets within the line (a tab counts as 1).
//  - Paths may be written in double quotes, with \" and \\ as the only escapes; a path
//    with a blank, a '"', a '\\' or a leading '#' must be quoted. Nothing else is quoted.
//  - Numbers are decimal, without sign or leading zeros. Sizes take K, M, G or T
//    (powers of 1024); durations need a unit: ns, us, ms, s, m, h or d (e.g. 30s, 90m).
//  - `promises`, `penalty`, `clock`, `layers`, `identity`, `libc`, `execpromises` and each
//    `limit` appear at most once; the same layer twice in `layers`, the same
//    unveil path, the same promise or the same connect rule twice is an error.
//  - A directive that is absent keeps the default of `Policy{}`: an empty file (or one
//    of only comments) is the default policy: `promises stdio`, `penalty kill`, no
//    unveil or connect rules, `clock real`, the default limits of `Limits`.
#ifndef VOW_POLICIES_POLICY_FILE_H_
#define VOW_POLICIES_POLICY_FILE_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "policies/policy.h"

namespace vow {

// Larger files are refused before any parsing.
inline constexpr size_t kMaxPolicyFileBytes = 1 << 20;
// Longer lines are refused (a path is at most 4095 bytes, quoted at most twice that).
inline constexpr size_t kMaxPolicyLineBytes = 10000;

// Parses a policy. On error the status is InvalidArgument and its message is exactly
// "<filename>:<line>:<column>: <what was found and what was expected>", e.g.
//   x.policy:3:10: unknown promise "rpat"; did you mean "rpath"?
// (errors about the whole text, such as its size, use "<filename>: ...").
[[nodiscard]] absl::StatusOr<Policy> ParsePolicy(absl::string_view text,
                                                 absl::string_view filename = "<policy>");

// Reads `path` (a regular file of at most kMaxPolicyFileBytes) and parses it, with `path`
// as the file name in error messages. I/O errors carry errno (ErrnoOf in base/syscall.h).
[[nodiscard]] absl::StatusOr<Policy> LoadPolicyFile(const std::string& path);

// The canonical text of `policy`: every setting written out explicitly (promises,
// execpromises if set, penalty, clock, all six limits, the layers that differ from their
// default, identity, libc) followed by unveil and connect rules in their order.
// ParsePolicy(FormatPolicy(p)) gives back p for every p that ParsePolicy can return.
// A policy built in code that the format cannot express (a relative path, an empty
// promise set, a fixed time outside years 0000..9999, ...) formats to text that
// ParsePolicy rejects with an error naming the problem; it is never silently altered.
std::string FormatPolicy(const Policy& policy);

// The promise name closest to `unknown` (case-insensitive; optimal string alignment
// distance, so one transposition counts 1), if it is close enough to be a plausible
// typo: at most 2 edits and at most half of `unknown`'s length. Ties go to the earlier
// promise in vocabulary order. "rpat" -> "rpath", "stdoi" -> "stdio", "xyzzy" -> nullopt.
std::optional<std::string> NearestPromiseName(absl::string_view unknown);

// "userns", "mountns", "netns", "ipcns", "utsns", "pidns", "landlock".
absl::string_view LayerName(Layer layer);
std::optional<Layer> LayerFromName(absl::string_view name);
// The words of a `layers` line for `layers` ("-netns +pidns"), "" if all are default.
std::string FormatLayers(const Layers& layers);

}  // namespace vow

#endif  // VOW_POLICIES_POLICY_FILE_H_
