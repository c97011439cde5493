#include "broker/net_policy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "broker/audit_log.h"
#include "broker/udp_relay.h"

namespace vow {
namespace {

constexpr size_t kMaxUnixPath = sizeof(sockaddr_un::sun_path) - 1;

const char* TransportName(ConnectRule::Transport t) {
  switch (t) {
    case ConnectRule::Transport::kTcp: return "tcp";
    case ConnectRule::Transport::kUdp: return "udp";
    case ConnectRule::Transport::kUnix: return "unix";
  }
  return "?";
}

bool ValidTransport(ConnectRule::Transport t) {
  return t == ConnectRule::Transport::kTcp || t == ConnectRule::Transport::kUdp ||
         t == ConnectRule::Transport::kUnix;
}

// An address of 4 or 16 bytes as text; anything else as its escaped bytes.
std::string AddressText(absl::string_view address) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (address.size() == 4 && inet_ntop(AF_INET, address.data(), buf, sizeof(buf)) != nullptr) {
    return buf;
  }
  if (address.size() == 16 &&
      inet_ntop(AF_INET6, address.data(), buf, sizeof(buf)) != nullptr) {
    return buf;
  }
  return absl::StrCat("\"", AuditLog::EscapeBytes(address, 32), "\"");
}

std::string RuleText(const ConnectRule& r) {
  if (r.transport == ConnectRule::Transport::kUnix) {
    return absl::StrCat("unix \"", AuditLog::EscapeBytes(r.unix_path), "\"");
  }
  return absl::StrCat(TransportName(r.transport), " ", AddressText(r.address), "/",
                      r.prefix_len, " ports ", r.port_min, "-", r.port_max);
}

bool IsV4Mapped(absl::string_view a) {
  static constexpr unsigned char kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return a.size() == 16 && std::memcmp(a.data(), kPrefix, sizeof(kPrefix)) == 0;
}

bool PrefixEqual(const uint8_t* a, const uint8_t* b, int bits) {
  int full = bits / 8;
  if (std::memcmp(a, b, static_cast<size_t>(full)) != 0) return false;
  int rem = bits % 8;
  if (rem == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rem));
  return (a[full] & mask) == (b[full] & mask);
}

void MaskTo(std::array<uint8_t, 16>& a, int bits, int total_bytes) {
  for (int i = 0; i < total_bytes; ++i) {
    int keep = bits - i * 8;
    if (keep >= 8) continue;
    a[i] = keep <= 0 ? 0 : static_cast<uint8_t>(a[i] & (0xff << (8 - keep)));
  }
}

absl::Status Refuse(int err, absl::string_view why) { return ErrnoStatus(err, why); }

}  // namespace

absl::Status CheckConnectRule(size_t index, const ConnectRule& r) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("connect rule ", index, " (", RuleText(r), "): ", why));
  };
  if (!ValidTransport(r.transport)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "connect rule ", index, ": unknown transport ", static_cast<int>(r.transport)));
  }
  if (r.transport == ConnectRule::Transport::kUnix) {
    if (r.unix_path.empty()) return bad("the unix socket path is empty");
    if (r.unix_path.find('\0') != std::string::npos) {
      return bad("the unix socket path contains a NUL byte (abstract sockets are not "
                 "supported)");
    }
    if (r.unix_path[0] != '/') return bad("the unix socket path is not absolute");
    if (r.unix_path.size() > kMaxUnixPath) {
      return bad(absl::StrCat("the unix socket path is longer than ", kMaxUnixPath, " bytes"));
    }
    if (!r.address.empty()) return bad("a unix rule has an address");
    return absl::OkStatus();
  }
  if (r.address.size() != 4 && r.address.size() != 16) {
    return bad(absl::StrCat("the address is ", r.address.size(),
                            " bytes long (4 for IPv4 or 16 for IPv6)"));
  }
  const int max_bits = static_cast<int>(r.address.size() * 8);
  if (r.prefix_len < 0 || r.prefix_len > max_bits) {
    return bad(absl::StrCat("prefix_len ", r.prefix_len, " is out of range 0..", max_bits));
  }
  if (r.port_min > r.port_max) {
    return bad(absl::StrCat("port_min ", r.port_min, " is above port_max ", r.port_max));
  }
  if (r.port_max == 0) return bad("the port range allows no port (0 is never allowed)");
  if (!r.unix_path.empty()) return bad("a tcp/udp rule has a unix_path");
  return absl::OkStatus();
}

absl::StatusOr<NetPolicy> NetPolicy::Create(const std::vector<ConnectRule>& rules) {
  NetPolicy policy;
  for (size_t i = 0; i < rules.size(); ++i) {
    const ConnectRule& r = rules[i];
    RETURN_IF_ERROR(CheckConnectRule(i, r));
    Rule rule;
    rule.index = i;
    rule.transport = r.transport;
    if (r.transport == ConnectRule::Transport::kUnix) {
      rule.family = AF_UNIX;
      rule.unix_path = r.unix_path;
      // Pinned when it exists now (trusted: the rule path is followed once, here).
      int pin = open(r.unix_path.c_str(), O_PATH | O_CLOEXEC);
      if (pin >= 0) {
        UniqueFd pinned(pin);
        struct stat st;
        if (fstat(pin, &st) != 0 || !S_ISSOCK(st.st_mode)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "connect rule ", i, " (", RuleText(r), "): the path exists and is not a socket"));
        }
        char* real = realpath(r.unix_path.c_str(), nullptr);
        if (real != nullptr) {
          rule.unix_real_path = real;
          free(real);
        }
        rule.unix_pin = std::move(pinned);
      }
    } else {
      rule.port_min = r.port_min;
      rule.port_max = r.port_max;
      if (IsV4Mapped(r.address) && r.prefix_len >= 96) {
        rule.family = AF_INET;
        std::memcpy(rule.address.data(), r.address.data() + 12, 4);
        rule.prefix_len = r.prefix_len - 96;
      } else {
        rule.family = r.address.size() == 4 ? AF_INET : AF_INET6;
        std::memcpy(rule.address.data(), r.address.data(), r.address.size());
        rule.prefix_len = r.prefix_len;
      }
      MaskTo(rule.address, rule.prefix_len, rule.family == AF_INET ? 4 : 16);
    }
    policy.rules_.push_back(std::move(rule));
  }
  return policy;
}

NetPolicy::NetPolicy() : relay_(std::make_unique<Relay>()) {}
NetPolicy::NetPolicy(NetPolicy&&) noexcept = default;
NetPolicy& NetPolicy::operator=(NetPolicy&&) noexcept = default;
NetPolicy::~NetPolicy() {
  if (relay_ == nullptr) return;
  absl::MutexLock lock(&relay_->mu);
  if (relay_->relay != nullptr) relay_->relay->Stop();
}

size_t NetPolicy::relayed_sessions() const {
  absl::MutexLock lock(&relay_->mu);
  return relay_->relay == nullptr ? 0 : relay_->relay->sessions();
}

absl::StatusOr<UniqueFd> NetPolicy::Connect(const ConnectTarget& target) const {
  return Connect(target, MonotonicNow() + kDefaultConnectTimeout);
}

namespace {

// Waits until the non-blocking `fd` is connected or failed, at most until `deadline`.
absl::Status AwaitConnected(int fd, absl::Time deadline, const std::string& context) {
  for (;;) {
    const absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) {
      return Refuse(ETIMEDOUT, absl::StrCat(context, ": not established by the deadline"));
    }
    pollfd p = {fd, POLLOUT, 0};
    const int64_t ms = absl::ToInt64Milliseconds(left) + 1;
    int r = poll(&p, 1, static_cast<int>(ms > 60000 ? 60000 : ms));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Refuse(errno, absl::StrCat(context, ": poll"));
    if (r == 0) continue;
    break;
  }
  int so_error = 0;
  socklen_t len = sizeof(so_error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
    return Refuse(errno, absl::StrCat(context, ": getsockopt(SO_ERROR)"));
  }
  if (so_error != 0) return Refuse(so_error, context);
  // POLLOUT with no error: established. Confirm it has a peer.
  sockaddr_storage peer;
  socklen_t peer_len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    return Refuse(errno == ENOTCONN ? ECONNREFUSED : errno,
                  absl::StrCat(context, ": not connected after the wait"));
  }
  return absl::OkStatus();
}

absl::Status MakeBlocking(int fd) {
  absl::StatusOr<long> fl = Syscall("fcntl(F_GETFL)", [&] { return fcntl(fd, F_GETFL); });
  if (!fl.ok()) return fl.status();
  return Syscall("fcntl(F_SETFL)", [&] {
           return fcntl(fd, F_SETFL, static_cast<int>(*fl) & ~O_NONBLOCK);
         }).status();
}

}  // namespace

absl::StatusOr<UniqueFd> NetPolicy::ConnectUdp(int family, const void* addr, socklen_t len,
                                               const std::string& context) const {
  ASSIGN_OR_RETURN(long sock, Syscall("socket", [&] {
                     return socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                   }));
  UniqueFd udp(static_cast<int>(sock));
  if (connect(udp.get(), static_cast<const sockaddr*>(addr), len) != 0) {
    return Refuse(errno, context);
  }
  UdpRelay* relay;
  {
    absl::MutexLock lock(&relay_->mu);
    if (relay_->relay == nullptr) {
      absl::StatusOr<std::unique_ptr<UdpRelay>> made = UdpRelay::Create();
      if (!made.ok()) return made.status();
      relay_->relay = *std::move(made);
    }
    relay = relay_->relay.get();  // lives as long as this NetPolicy
  }
  absl::StatusOr<UniqueFd> end = relay->Add(std::move(udp));
  if (!end.ok()) return Refuse(ErrnoOf(end.status()) != 0 ? ErrnoOf(end.status()) : EAGAIN,
                               absl::StrCat(context, ": ", end.status().message()));
  return end;
}

absl::StatusOr<UniqueFd> NetPolicy::ConnectUnix(const Rule& rule, absl::Time deadline) const {
  (void)deadline;  // a unix connect does not wait (a full backlog is EAGAIN)
  const std::string context = absl::StrCat("connect to unix socket \"",
                                           AuditLog::EscapeBytes(rule.unix_path),
                                           "\" (allowed by connect rule ", rule.index, ")");
  UniqueFd looked_up;
  int target = rule.unix_pin.get();
  if (target < 0) {
    struct open_how how = {};
    how.flags = O_PATH | O_CLOEXEC | O_NOFOLLOW;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    absl::StatusOr<long> rc = Syscall("openat2", [&] {
      return syscall(SYS_openat2, AT_FDCWD, rule.unix_path.c_str(), &how, sizeof(how));
    });
    if (!rc.ok()) {
      return Refuse(ErrnoOf(rc.status()),
                    absl::StrCat(context, ": looking up the path without following symlinks"));
    }
    looked_up.reset(static_cast<int>(*rc));
    target = looked_up.get();
  }
  struct stat st;
  if (fstat(target, &st) != 0) return Refuse(errno, absl::StrCat(context, ": fstat"));
  if (S_ISLNK(st.st_mode)) {
    return Refuse(ELOOP, absl::StrCat(context, ": a symlink at the socket path is not followed"));
  }
  if (!S_ISSOCK(st.st_mode)) return Refuse(ECONNREFUSED, absl::StrCat(context, ": not a socket"));

  ASSIGN_OR_RETURN(long sock, Syscall("socket", [&] {
                     return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                   }));
  UniqueFd fd(static_cast<int>(sock));
  // Through the magic link of the fd: the kernel finds the socket by that inode.
  sockaddr_un sun = {};
  sun.sun_family = AF_UNIX;
  const std::string via = absl::StrCat("/proc/self/fd/", target);
  std::memcpy(sun.sun_path, via.data(), via.size());
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + via.size() + 1);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&sun), len) != 0) {
    return Refuse(errno, context);
  }
  // The peer: bound under the rule's name (or its real path at Create).
  sockaddr_un peer = {};
  socklen_t peer_len = sizeof(peer);
  if (getpeername(fd.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
    return Refuse(errno, absl::StrCat(context, ": getpeername"));
  }
  const size_t name_len = peer_len > offsetof(sockaddr_un, sun_path)
                              ? strnlen(peer.sun_path, peer_len - offsetof(sockaddr_un, sun_path))
                              : 0;
  const std::string name(peer.sun_path, name_len);
  if (name != rule.unix_path && (rule.unix_real_path.empty() || name != rule.unix_real_path)) {
    return Refuse(EACCES, absl::StrCat(context, ": the peer is bound as \"",
                                       AuditLog::EscapeBytes(name),
                                       "\", not as the allowed socket"));
  }
  RETURN_IF_ERROR(MakeBlocking(fd.get()));
  return fd;
}

absl::StatusOr<UniqueFd> NetPolicy::Connect(const ConnectTarget& target,
                                            absl::Time deadline) const {
  if (!ValidTransport(target.transport)) return Refuse(EINVAL, "unknown transport");

  sockaddr_storage storage = {};
  socklen_t addr_len = 0;
  int family = 0;
  int type = SOCK_STREAM;
  const Rule* allowed = nullptr;
  std::string what;

  if (target.transport == ConnectRule::Transport::kUnix) {
    const std::string& path = target.unix_path;
    if (path.empty()) return Refuse(EINVAL, "the unix socket path is empty");
    if (path[0] == '\0') return Refuse(EACCES, "abstract unix sockets are never allowed");
    if (path.find('\0') != std::string::npos) {
      return Refuse(EINVAL, "the unix socket path contains a NUL byte");
    }
    if (path[0] != '/') return Refuse(EINVAL, "the unix socket path is not absolute");
    if (path.size() > kMaxUnixPath) {
      return Refuse(ENAMETOOLONG, absl::StrCat("the unix socket path is ", path.size(),
                                               " bytes long (the limit is ", kMaxUnixPath,
                                               ")"));
    }
    for (const Rule& r : rules_) {
      if (r.family == AF_UNIX && r.unix_path == path) {
        allowed = &r;
        break;
      }
    }
    what = "unix socket";
    family = AF_UNIX;
    auto* sun = reinterpret_cast<sockaddr_un*>(&storage);
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, path.data(), path.size());
    addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  } else {
    absl::string_view address = target.address;
    if (address.size() != 4 && address.size() != 16) {
      return Refuse(EINVAL, absl::StrCat("the address is ", address.size(),
                                         " bytes long (4 for IPv4 or 16 for IPv6)"));
    }
    if (target.port == 0) return Refuse(EINVAL, "port 0");
    if (IsV4Mapped(address)) address.remove_prefix(12);
    family = address.size() == 4 ? AF_INET : AF_INET6;
    type = target.transport == ConnectRule::Transport::kTcp ? SOCK_STREAM : SOCK_DGRAM;
    what = absl::StrCat(TransportName(target.transport), " ", AddressText(address), " port ",
                        target.port);
    if (address.find_first_not_of('\0') == absl::string_view::npos) {
      return Refuse(EACCES, absl::StrCat(what, ": the unspecified address reaches the local "
                                         "host and is never allowed"));
    }
    const auto* bytes = reinterpret_cast<const uint8_t*>(address.data());
    for (const Rule& r : rules_) {
      if (r.transport == target.transport && r.family == family &&
          target.port >= r.port_min && target.port <= r.port_max &&
          PrefixEqual(r.address.data(), bytes, r.prefix_len)) {
        allowed = &r;
        break;
      }
    }
    if (family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(target.port);
      std::memcpy(&sin->sin_addr, bytes, 4);
      addr_len = sizeof(sockaddr_in);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(target.port);
      std::memcpy(&sin6->sin6_addr, bytes, 16);
      addr_len = sizeof(sockaddr_in6);
    }
  }
  if (allowed == nullptr) return Refuse(EACCES, absl::StrCat("no connect rule allows ", what));
  if (family == AF_UNIX) return ConnectUnix(*allowed, deadline);

  const std::string context = absl::StrCat("connect to ", what, " (allowed by connect rule ",
                                           allowed->index, ")");
  if (type == SOCK_DGRAM) return ConnectUdp(family, &storage, addr_len, context);

  absl::StatusOr<long> sock = Syscall("socket", [&] {
    return socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  });
  if (!sock.ok()) return sock.status();
  UniqueFd fd(static_cast<int>(*sock));
  int rc = connect(fd.get(), reinterpret_cast<const sockaddr*>(&storage), addr_len);
  if (rc != 0) {
    const int err = errno;
    if (err != EINPROGRESS && err != EINTR) return Refuse(err, context);
    RETURN_IF_ERROR(AwaitConnected(fd.get(), deadline, context));
  }
  RETURN_IF_ERROR(MakeBlocking(fd.get()));
  return fd;
}

}  // namespace vow
