// The dispatch table: per request kind, the phases it is served in, whether it counts
// against the rate limit, and its handler (OpenSSH's monitor table; the protocol's phases
// are in broker.h). HandleMessage applies it to every datagram a worker sends. Runs in the
// privileged process on the serving thread; every byte is hostile.
#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "broker/broker_internal.h"
#include "broker/request.h"
#include "ipc/message.h"

namespace vow {

// A new brokered call: its row here, its handler in its family's file.
constexpr Broker::Impl::Route Broker::Impl::kRoutes[] = {
    // kind                    phases        rate-limited  handler
    {RequestKind::kHello,      kBeforeHello, false,        &Impl::HandleHello},
    // The broker's child installs the filter itself; a worker never asks for it.
    {RequestKind::kGetFilter,  kNoPhase,     false,        nullptr},
    {RequestKind::kOpen,       kAfterHello,  true,         &Impl::HandleOpen},
    {RequestKind::kConnect,    kAfterHello,  true,         &Impl::HandleConnect},
    {RequestKind::kClock,      kAfterHello,  true,         &Impl::HandleClock},
    // Penalty trap only (the handler checks): reports are limited per second instead.
    {RequestKind::kViolation,  kAfterHello,  false,        &Impl::HandleViolation},
};
const size_t Broker::Impl::kRouteCount = std::size(kRoutes);

namespace {

// Every RequestKind has its row at its own index (so no out-of-range index can follow the
// checks). Whether a row has a handler is checked where it is called: comparing member
// function pointers is not a constant expression in every compiler configuration (GCC with
// the sanitizers refuses it).
constexpr bool RoutesAreComplete(const auto& routes, size_t kinds) {
  if (std::size(routes) != kinds) return false;
  for (size_t i = 0; i < std::size(routes); ++i) {
    if (static_cast<size_t>(routes[i].kind) != i) return false;
  }
  return true;
}

}  // namespace

bool Broker::Impl::HandleMessage(Worker& w, const capnp::word* data, size_t bytes, int* fds,
                                 int nfds) {
  // Every attached fd is ours to close unless a handler takes it.
  UniqueFd attached[kMaxFdsPerMessage];
  for (int i = 0; i < nfds; ++i) attached[i].reset(fds[i]);

  absl::StatusOr<DecodedRequest> decoded = DecodeRequest(data, bytes);
  if (!decoded.ok()) {
    End(w, WorkerResult::Kind::kProtocolError, std::string(decoded.status().message()));
    return false;
  }
  const DecodedRequest& request = *decoded;
  static_assert(RoutesAreComplete(kRoutes, static_cast<size_t>(RequestKind::kViolation) + 1),
                "kRoutes needs one row per RequestKind, in enum order");
  if (nfds != 0 && request.kind != RequestKind::kHello) {
    return ProtocolError(w, "a request carried file descriptors");
  }
  if (w.phase == Phase::kEnded) return false;
  const size_t index = static_cast<size_t>(request.kind);
  const uint8_t phase = w.phase == Phase::kAwaitHello ? kBeforeHello : kAfterHello;
  if (index >= kRouteCount || (kRoutes[index].phases & phase) == 0) {
    return ProtocolError(w, w.phase == Phase::kAwaitHello ? "the first request must be hello"
                                                           : "request not allowed after hello");
  }
  const Route& route = kRoutes[index];
  // Rate limit.
  uint32_t rps = w.policy->policy.limits.requests_per_second;
  if (rps != 0 && route.rate_limited) {
    absl::Time now = MonotonicNow();
    w.tokens = std::min<double>(rps, w.tokens + absl::ToDoubleSeconds(now - w.last_refill) * rps);
    w.last_refill = now;
    if (w.tokens < 1) {
      End(w, WorkerResult::Kind::kLimitExceeded,
          absl::StrCat("more than ", rps, " requests per second"));
      return false;
    }
    w.tokens -= 1;
  }
  if (route.handler == nullptr) {
    End(w, WorkerResult::Kind::kProtocolError, "a request no phase serves");
    return false;
  }
  return (this->*route.handler)(w, request, attached, nfds);
}

}  // namespace vow
