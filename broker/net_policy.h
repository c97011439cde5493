// The broker's connect rules and the one place where it connects a socket for a worker.
// Runs in the privileged broker; every byte of a ConnectTarget comes from a worker and is
// hostile.
//
// A Connect(target) is decided in this order (the first refusal wins):
//  - tcp/udp: the address must be 4 or 16 bytes (else EINVAL) and the port non-zero
//    (EINVAL). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is treated as, and connected
//    as, the IPv4 address a.b.c.d: only IPv4 rules can allow it (a rule written as
//    ::ffff:a.b.c.d/96+n is turned into the IPv4 rule a.b.c.d/n by Create). The
//    unspecified addresses 0.0.0.0 and :: are refused (EACCES): Linux connects them to
//    the local host, which would bypass rules about 127.0.0.0/8 and ::1.
//    A rule allows the target when the transports are equal, the families are equal,
//    the first prefix_len bits of the addresses are equal and port_min <= port <=
//    port_max. No rule -> EACCES.
//  - unix: the path must be non-empty, absolute, NUL-free (EINVAL) and at most
//    sizeof(sun_path) - 1 = 107 bytes (ENAMETOOLONG); an abstract socket (leading NUL) is
//    refused with EACCES. A rule allows it when its unix_path is byte-for-byte equal.
//    The socket is SOCK_STREAM.
//    Unix rules are pinned at Create: when the socket file exists then, the broker keeps
//    an O_PATH fd of it (symlinks in the rule path are followed once, at Create) and
//    every connect goes through /proc/self/fd/N of that fd, i.e. to that inode, whatever
//    is planted at the path later. (A service that re-creates its socket needs the
//    policy prepared again.) When it does not exist at Create, each connect looks the
//    path up with openat2(O_PATH, RESOLVE_NO_SYMLINKS): no symlink anywhere in it is
//    followed (write the rule with the real path). Either way the file must be a socket
//    (else ECONNREFUSED, as the kernel says for a non-socket), and after connecting the
//    peer is re-checked: the name it is bound to (getpeername) must be the rule's path
//    or the real path it had at Create (else EACCES), so a socket elsewhere is refused.
// Then (tcp) the broker connects a SOCK_NONBLOCK socket and waits, until `deadline`,
// for the connection to be ESTABLISHED: a failure (SO_ERROR: ECONNREFUSED, ETIMEDOUT,
// ...) or the deadline (ETIMEDOUT) is returned and the socket closed; a worker never
// holds a half-connected socket (a failed connect would leave one that
// sendmsg(MSG_FASTOPEN) could connect elsewhere). The returned socket is blocking.
// (udp) the broker connects a UDP socket of its own to the target and gives the worker
// the SOCK_SEQPACKET end of a UdpRelay session (udp_relay.h): the worker never holds a
// datagram socket of the network, so msg_name/sendmmsg cannot reach another peer.
// (unix) as tcp; a full backlog (EAGAIN) is returned at once.
//
// Thread-safety: a NetPolicy is immutable after Create() (its relay is internally
// synchronized); Connect() may be called from many threads. Connect() blocks up to the
// deadline: call it from a thread that may wait (not an event loop).
#ifndef VOW_BROKER_NET_POLICY_H_
#define VOW_BROKER_NET_POLICY_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/monotonic.h"
#include "base/unique_fd.h"
#include "policies/policy.h"

namespace vow {

// What a worker asks to connect to (decoded from the request; still hostile).
struct ConnectTarget {
  ConnectRule::Transport transport = ConnectRule::Transport::kTcp;
  std::string address;  // tcp/udp: 4 or 16 bytes, network order
  uint16_t port = 0;    // tcp/udp
  std::string unix_path;  // unix
};

// Checks one rule (transport in range; tcp/udp: address of 4 or 16 bytes, prefix_len
// within 0..32 or 0..128, port_min <= port_max, port_max > 0, no unix_path; unix: an
// absolute NUL-free path of 1..107 bytes, no address). Pure. The message names the rule
// as "connect rule <index> (<rule>)".
absl::Status CheckConnectRule(size_t index, const ConnectRule& rule);

class UdpRelay;

class NetPolicy {
 public:
  // Used by the one-argument Connect().
  static constexpr absl::Duration kDefaultConnectTimeout = absl::Seconds(5);

  // Checks every rule with CheckConnectRule(), keeps them normalized and pins the unix
  // rules whose socket exists (see the file comment).
  static absl::StatusOr<NetPolicy> Create(const std::vector<ConnectRule>& rules);

  NetPolicy(NetPolicy&&) noexcept;
  NetPolicy& operator=(NetPolicy&&) noexcept;
  ~NetPolicy();  // stops the UDP relay: relayed workers read EOF

  // Checks `target` against the rules and connects (see the file comment), waiting at
  // most until `deadline`, a time on the monotonic clock (MonotonicNow() + a timeout,
  // base/monotonic.h). On success the fd to hand to the worker, O_CLOEXEC, blocking,
  // owned by the caller: an established tcp or unix socket, or for udp the worker's
  // SOCK_SEQPACKET end of a relay session. On failure a Status from ErrnoStatus():
  // ErrnoOf() is the errno for the worker (EACCES when no rule allows it, ETIMEDOUT at
  // the deadline) and the message says why.
  absl::StatusOr<UniqueFd> Connect(const ConnectTarget& target, absl::Time deadline) const;
  // The same with a deadline of kDefaultConnectTimeout from now.
  absl::StatusOr<UniqueFd> Connect(const ConnectTarget& target) const;

  size_t size() const { return rules_.size(); }
  // Open UDP relay sessions (for tests).
  size_t relayed_sessions() const;

 private:
  struct Rule {
    size_t index = 0;
    ConnectRule::Transport transport = ConnectRule::Transport::kTcp;
    int family = 0;                   // AF_INET, AF_INET6 or AF_UNIX
    std::array<uint8_t, 16> address{};  // masked to prefix_len
    int prefix_len = 0;
    uint16_t port_min = 0;
    uint16_t port_max = 0;
    std::string unix_path;
    std::string unix_real_path;  // realpath at Create (empty: did not exist)
    UniqueFd unix_pin;           // O_PATH of the socket file, when it existed at Create
  };
  struct Relay {
    absl::Mutex mu;
    std::unique_ptr<UdpRelay> relay ABSL_GUARDED_BY(mu);  // started on first use
  };

  NetPolicy();
  absl::StatusOr<UniqueFd> ConnectUdp(int family, const void* addr, socklen_t len,
                                      const std::string& context) const;
  absl::StatusOr<UniqueFd> ConnectUnix(const Rule& rule, absl::Time deadline) const;

  std::vector<Rule> rules_;
  std::unique_ptr<Relay> relay_;
};

}  // namespace vow

#endif  // VOW_BROKER_NET_POLICY_H_
