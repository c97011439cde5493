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
// Then the broker makes the socket (SOCK_CLOEXEC | SOCK_NONBLOCK) and connects without
// blocking: an immediate failure (ECONNREFUSED, ENETUNREACH, EAGAIN from a full unix
// backlog, ...) is passed through, and so is a failure already known right after an
// EINPROGRESS (a refused loopback connection). A connection still in progress is handed
// over as it is: O_NONBLOCK is cleared, so the worker's first read or write waits for it
// and reports its failure.
//
// Thread-safety: a NetPolicy is immutable after Create(); Connect() may be called from
// many threads.
#ifndef VOW_BROKER_NET_POLICY_H_
#define VOW_BROKER_NET_POLICY_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

class NetPolicy {
 public:
  // Checks every rule with CheckConnectRule() and keeps them normalized.
  static absl::StatusOr<NetPolicy> Create(const std::vector<ConnectRule>& rules);

  // Checks `target` against the rules, creates the socket and connects (see the file
  // comment). On success a connected (or connecting) socket, O_CLOEXEC, blocking, owned
  // by the caller. On failure a Status from ErrnoStatus(): ErrnoOf() is the errno for the
  // worker (EACCES when no rule allows it) and the message says why.
  absl::StatusOr<UniqueFd> Connect(const ConnectTarget& target) const;

  size_t size() const { return rules_.size(); }

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
  };

  NetPolicy() = default;

  std::vector<Rule> rules_;
};

}  // namespace vow

#endif  // VOW_BROKER_NET_POLICY_H_
