// Hello: the first request of every worker, sent by the lock-down (a forked worker) or by
// the broker's own child before execve (an exec'd one), with the worker's seccomp listener
// attached. Runs in the privileged process; the message and the fd are checked
// (CheckHello) before the listener is watched.
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/epoll.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "broker/broker_internal.h"
#include "broker/request.h"

namespace vow {

bool Broker::Impl::HandleHello(Worker& w, const DecodedRequest& request, UniqueFd* attached,
                               int nfds) {
  // Every program has a listener: path calls are always the broker's.
  absl::Status hello_ok =
      CheckHello(request, nfds, nfds == 1 ? attached[0].get() : -1, /*listener_expected=*/true);
  if (!hello_ok.ok()) return ProtocolError(w, std::string(hello_ok.message()));
  {
    int flags = fcntl(attached[0].get(), F_GETFL);
    fcntl(attached[0].get(), F_SETFL, flags | O_NONBLOCK);
    w.shared->listener = std::move(attached[0]);
    // Not for a hello read while draining an ended worker, or after Shutdown has freed the
    // pool (review h67, M1: Shutdown's reap reads what a worker sent last).
    if (listener_in_place_ && !w.draining && !stop_ && pool_ != nullptr &&
        in_place_listeners_ < kMaxInPlaceListeners) {
      // Served by a pool thread of its own (BrokerOptions::listener_in_place): it waits for
      // the listener and answers each call itself, without the loop's hand-off.
      ++in_place_listeners_;
      pool_->Submit([this, shared = w.shared, id = w.id, life = life_] {
        ServeListenerInPlace(shared, id, life);
      });
      return FinishHello(w, request);
    }
    struct epoll_event e = {};
    e.events = EPOLLIN;
    e.data.u64 = Key(w.id, kListener);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, w.shared->listener.get(), &e) != 0) {
      return ProtocolError(w, absl::StrCat("epoll_ctl(listener): ", strerror(errno)));
    }
    w.listener_registered = true;
  }
  return FinishHello(w, request);
}

bool Broker::Impl::FinishHello(Worker& w, const DecodedRequest& request) {
  // The phase changes before the answer is sent: a worker that exits before reading
  // it (it does not wait for it) has still said hello.
  w.phase = Phase::kServing;
  if (w.hello_deadline != absl::InfiniteFuture()) {
    w.hello_deadline = absl::InfiniteFuture();
    --hello_waits_;
  }
  Audit(w, "hello", true, "locked; seccomp listener received");
  int rc = SendHelloReply(w.channel, request.id);
  if (rc != 0) return SendFailed(w, rc, "the answer to hello");
  return true;
}

}  // namespace vow
