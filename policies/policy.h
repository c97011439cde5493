// The policy of one worker: what the kernel lets it do (promises, enforced by seccomp in
// the worker) and what the broker will do for it (filesystem, connect and clock rules,
// limits). Plain data; built by the broker's caller in code or parsed from the text
// format (policy_file.h), and checked by ValidatePolicy() before any worker starts.
// Trusted side: a Policy is never built from worker bytes.
#ifndef VOW_POLICIES_POLICY_H_
#define VOW_POLICIES_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "policies/promises.h"

namespace vow {

// What happens when the worker makes a syscall none of its promises allows.
enum class Penalty : uint8_t {
  // The broker is told by the kernel (seccomp user notification) which syscall it was,
  // records it, and kills the worker. The default.
  kKill,
  // The broker records it and the syscall fails with EPERM; the worker carries on.
  kErrno,
  // SIGSYS in the worker: its handler reports the syscall over the channel (using only
  // what `stdio` allows) and the syscall fails with EPERM.
  kTrap,
  // Learning mode: the broker records it and lets the syscall run.
  kLog,
};

// An unveil-like rule: `path` (absolute, normalized, a directory or a file) and what the
// broker may do beneath it. The most specific (longest) matching rule decides.
struct PathRule {
  std::string path;
  bool read = false;    // r: open for reading
  bool write = false;   // w: open for writing, O_TRUNC, O_APPEND
  bool exec = false;    // x: open for execution (O_PATH/fexecve); never for reading
  bool create = false;  // c: O_CREAT / O_TMPFILE
};

// A rule the broker checks a Connect() request against.
struct ConnectRule {
  enum class Transport : uint8_t { kTcp, kUdp, kUnix };
  Transport transport = Transport::kTcp;
  // kTcp/kUdp: an IPv4 or IPv6 network. `address` holds 4 or 16 bytes in network order;
  // `prefix_len` bits of it must match (32 or 128 for a single address).
  std::string address;
  int prefix_len = 0;
  uint16_t port_min = 0;  // inclusive; 0..65535 means any port
  uint16_t port_max = 0;
  // kUnix: the absolute socket path (exact match).
  std::string unix_path;
};

struct ClockRule {
  enum class Kind : uint8_t {
    kReal,    // the broker's CLOCK_REALTIME
    kFixed,   // always `fixed`
    kOffset,  // real time + `offset`
    kNone,    // Now() is refused (EPERM)
  };
  Kind kind = Kind::kReal;
  absl::Time fixed = absl::UnixEpoch();
  absl::Duration offset = absl::ZeroDuration();
};

// 0 means "no limit" for each field.
struct Limits {
  uint32_t max_open_fds = 256;            // RLIMIT_NOFILE in the worker
  uint32_t requests_per_second = 0;       // broker-side, token bucket; excess ends the worker
  uint32_t max_message_bytes = 64 * 1024; // clamped to ipc's kMaxMessageBytes
  uint32_t cpu_seconds = 0;               // RLIMIT_CPU
  uint64_t memory_bytes = 0;              // RLIMIT_AS
  absl::Duration wall_time = absl::ZeroDuration();  // the broker kills the worker after it
};

struct Policy {
  PromiseSet promises = PromiseSet{Promise::kStdio};
  Penalty penalty = Penalty::kKill;
  std::vector<PathRule> paths;
  std::vector<ConnectRule> connects;
  ClockRule clock;
  Limits limits;
};

}  // namespace vow

#endif  // VOW_POLICIES_POLICY_H_
