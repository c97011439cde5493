// The policy of one worker: what the kernel lets it do (promises, enforced by seccomp in
// the worker) and what the broker will do for it (filesystem, connect and clock rules,
// limits). Plain data; built by the broker's caller in code or parsed from the text
// format (policy_file.h), and checked by ValidatePolicy() before any worker starts.
// Trusted side: a Policy is never built from worker bytes.
#ifndef VOW_POLICIES_POLICY_H_
#define VOW_POLICIES_POLICY_H_

#include <array>
#include <cstdint>
#include <optional>
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
  uint64_t memory_bytes = 0;              // RLIMIT_AS (forked: on top of the inherited size)
  uint64_t file_bytes = 0;                // RLIMIT_FSIZE: the largest file it may write (API only)
  absl::Duration wall_time = absl::ZeroDuration();  // the broker kills the worker after it
};

// A kernel layer beneath the seccomp filter, applied in the worker before the filter
// (worker/layers.h). Names in the policy file: userns mountns netns ipcns utsns pidns
// landlock (LayerName in policy_file.h).
enum class Layer : uint8_t {
  kUserns,    // a fresh user namespace, no id mapped (needs the identity drop)
  kMountns,   // a mount namespace with an empty, read-only root: no host path exists
  kNetns,     // a network namespace with no interfaces (host abstract sockets unreachable)
  kIpcns,     // System V IPC and POSIX message queues of its own
  kUtsns,     // hostname "vow"
  kPidns,     // pid 1 of its own PID namespace (the broker's spawn makes it: CLONE_NEWPID)
  kLandlock,  // every filesystem right, TCP bind/connect, abstract sockets, signals denied
};
inline constexpr int kLayerCount = 7;

enum class LayerMode : uint8_t {
  kAuto,  // on where the kernel has it, reported as off where it does not
  kOn,    // required (`layers +NAME`): a kernel without it refuses the spawn
  kOff,   // explicitly off (`layers -NAME`)
};

// What `Policy{}` has: every layer kAuto except pidns, which is kOff (as pid 1 the program
// would ignore SIGINT/SIGTERM it has no handler for; it must be asked for).
inline constexpr LayerMode DefaultLayerMode(Layer layer) {
  return layer == Layer::kPidns ? LayerMode::kOff : LayerMode::kAuto;
}

struct Layers {
  std::array<LayerMode, kLayerCount> modes = {
      DefaultLayerMode(Layer::kUserns), DefaultLayerMode(Layer::kMountns),
      DefaultLayerMode(Layer::kNetns),  DefaultLayerMode(Layer::kIpcns),
      DefaultLayerMode(Layer::kUtsns),  DefaultLayerMode(Layer::kPidns),
      DefaultLayerMode(Layer::kLandlock)};
  LayerMode& operator[](Layer l) { return modes[static_cast<size_t>(l)]; }
  LayerMode operator[](Layer l) const { return modes[static_cast<size_t>(l)]; }
};

// Who the worker is after the layers (worker/layers.h, step 4).
struct Identity {
  enum class Kind : uint8_t {
    kNobody,  // 65534:65534, no supplementary groups, no capabilities (the default)
    kKeep,    // stay the broker's identity (root, all capabilities); must be explicit
    kIds,     // `uid`:`gid`, no supplementary groups, no capabilities; never 0
  };
  Kind kind = Kind::kNobody;
  uint32_t uid = 65534;  // kIds only
  uint32_t gid = 65534;
};

struct Policy {
  PromiseSet promises = PromiseSet{Promise::kStdio};
  // What a program the worker execs gets (OpenBSD's execpromises): nullopt = no
  // statement (the exec'd image keeps `promises`). Needs `exec` in `promises` and is a
  // subset of them (seccomp filters only narrow across exec).
  std::optional<PromiseSet> exec_promises;
  Penalty penalty = Penalty::kKill;
  std::vector<PathRule> paths;
  std::vector<ConnectRule> connects;
  ClockRule clock;
  Limits limits;
  Layers layers;
  Identity identity;
  // The libc set (DESIGN.md): the files libc reads behind the program's back, readable
  // with no rule written. `libc none` in a policy file turns it off.
  bool libc_set = true;
};

}  // namespace vow

#endif  // VOW_POLICIES_POLICY_H_
