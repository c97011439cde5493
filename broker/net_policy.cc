#include "broker/net_policy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "broker/audit_log.h"

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

absl::StatusOr<UniqueFd> NetPolicy::Connect(const ConnectTarget& target) const {
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

  absl::StatusOr<long> sock = Syscall("socket", [&] {
    return socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  });
  if (!sock.ok()) return sock.status();
  UniqueFd fd(static_cast<int>(*sock));

  const std::string context = absl::StrCat("connect to ", what, " (allowed by connect rule ",
                                           allowed->index, ")");
  int rc = connect(fd.get(), reinterpret_cast<const sockaddr*>(&storage), addr_len);
  if (rc != 0) {
    int err = errno;
    if (err != EINPROGRESS && err != EINTR) return Refuse(err, context);
    // In progress: report a failure the kernel already knows (loopback refusals are
    // decided before connect() returns), without waiting for anything.
    pollfd p = {fd.get(), POLLOUT, 0};
    if (poll(&p, 1, 0) > 0) {
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
        return Refuse(errno, absl::StrCat(context, ": getsockopt(SO_ERROR)"));
      }
      if (so_error != 0) return Refuse(so_error, context);
    }
  }
  absl::StatusOr<long> fl = Syscall("fcntl(F_GETFL)", [&] { return fcntl(fd.get(), F_GETFL); });
  if (!fl.ok()) return fl.status();
  RETURN_IF_ERROR(Syscall("fcntl(F_SETFL)", [&] {
                    return fcntl(fd.get(), F_SETFL, static_cast<int>(*fl) & ~O_NONBLOCK);
                  }).status());
  return fd;
}

}  // namespace vow
