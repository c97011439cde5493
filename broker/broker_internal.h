// The broker's internals, shared by its files. Runs in the privileged process; every
// byte a worker sends is hostile. Not a public interface: only broker/broker*.cc include
// it.
//
// The files, after Chromium's split of its broker:
//   broker.cc             lifecycle: Create/Prepare, Spawn (fork, or for SpawnExec a
//                         CLONE_VM child: ExecChild; the child's lock-down),
//                         Wait, Kill, Reap, the destructor
//   broker_loop.cc        the privileged serving loop: epoll, reading datagrams and seccomp
//                         notifications, the task pool hand-off, deadlines
//   broker_dispatch.cc    the dispatch table (per request kind: its phases, whether it is
//                         rate-limited, its handler) and HandleMessage, which applies it
//   broker_hello.cc       handlers, one file per family: hello; files (explicit opens,
//   broker_files.cc         and the glue to PathHandler for path calls); network
//   broker_network.cc       (connect); clock; violations (trap reports, the record of
//   broker_clock.cc         refused syscalls)
//   broker_violations.cc
//   broker_wire.cc        encoding the answers (decoding is DecodeRequest, request.cc)
//   namespace_stock.cc    fresh network and IPC namespaces made ahead of time for
//                         forked workers (its own thread; used by Spawn)
//
// Adding a brokered call: its schema entry (ipc/protocol.capnp) and decoding (request.cc),
// one handler (a Handle* member, in its family's file), the client stub (worker/client.*),
// and its row in kRoutes (broker_dispatch.cc).
#ifndef VOW_BROKER_BROKER_INTERNAL_H_
#define VOW_BROKER_BROKER_INTERNAL_H_

#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/monotonic.h"
#include "base/unique_fd.h"
#include "broker/audit_log.h"
#include "broker/broker.h"
#include "broker/fs_policy.h"
#include "broker/namespace_stock.h"
#include "broker/net_policy.h"
#include "broker/path_call.h"
#include "broker/path_handler.h"
#include "broker/request.h"
#include "broker/task_pool.h"
#include "capnp/common.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "policies/promise_compiler.h"
#include "worker/layers.h"
#include "worker/lockdown.h"

// For C libraries whose headers predate them (Linux 5.1 and 5.3).
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace vow {

// How often a worker whose reap is pending (Worker::reap_pending) is tried again.
constexpr int kReapRetryMs = 5;

class ExecTracer;

// What a policy becomes once checked: the opened rules and the resolved layers. Its
// seccomp program is compiled at the first spawn that loads it (ProgramFor in broker.cc,
// through the broker's FilterCache), so `vow run` compiles only the exec'd image's.
class PreparedPolicy {
 public:
  Policy policy;
  // Set when the policy's execpromises are narrower than its promises: the filter the
  // exec tracer (exec_tracer.h) adds to every image an exec'd worker execs.
  std::shared_ptr<const BpfProgram> exec_narrowing;
  std::optional<FsPolicy> fs;
  LayerSpec layers;          // resolved against this kernel at Prepare
  std::string layers_text;   // DescribeLayers()
  std::optional<NetPolicy> net;
  // The empty root (mount namespace) the forked workers of this policy enter instead of
  // each making its own (MakeSharedRoot, worker/layers.h): made at the first forked spawn
  // by SharedRootFor (broker.cc), then kept for the policy's lifetime.
  mutable absl::Mutex shared_root_mu;
  mutable UniqueFd shared_root ABSL_GUARDED_BY(shared_root_mu);
  // Whether the forked workers of this policy share one network + IPC namespace pair
  // instead of a fresh pair each: decided at Prepare (NetIpcSharingRefusal, from the
  // promises, the penalty, the identity and the filesystem rules; README "Spawn, round 7").
  bool share_net_ipc = false;
  // That pair: taken from the broker's stock by SharedNetIpcFor at the first forked spawn
  // that finds one there, then kept for the policy's lifetime.
  mutable absl::Mutex shared_net_ipc_mu;
  mutable NamespaceStock::Fresh shared_net_ipc ABSL_GUARDED_BY(shared_net_ipc_mu);
};

// Why the forked workers of `policy` (with `layers` resolved, `fs` its rules or null) must
// each get a network and IPC namespace of their own, or "" when they may share one pair.
// They may when nothing they can do reaches into those namespaces (README "Spawn, round
// 7"): a namespace layer is on, the identity is dropped (no capability over a namespace
// the broker's user namespace owns), the penalty is not kLog (which lets a refused call
// run), no held promise creates an addressable socket or sets a socket's options
// (PromisesReachNetns: stdio's anonymous AF_UNIX pairs only) nor makes a System V IPC or
// message-queue call (PromisesReachIpcns), and no rule lies on /proc (where a worker would
// read its /proc/<pid>/net, e.g. the unix sockets of its namespace).
std::string NetIpcSharingRefusal(const Policy& policy, const LayerSpec& layers,
                                 const FsPolicy* fs);

// A forked worker's network and IPC namespace fds (LayerSpec::fresh_net_fd, fresh_ipc_fd;
// -1: none given).
struct NetIpcFds {
  int net = -1;
  int ipc = -1;
};
// The pair `policy`'s forked workers share (PreparedPolicy::share_net_ipc), owned by the
// policy (valid while the caller holds it); made from `stock` on first use (Take, then
// Done at once: one pair per policy, not per spawn). {-1, -1} when the policy does not
// share, or when the stock had no pair yet: that spawn then takes a fresh pair as before
// (its worker gets a namespace of its own, never less).
NetIpcFds SharedNetIpcFor(const PreparedPolicy& policy, NamespaceStock& stock);

// Where a worker is in the protocol (see the dispatch table in broker.h).
enum class Phase { kAwaitHello, kServing, kEnded };
// What an epoll event is about: the low two bits of its key; the rest is the WorkerId.
enum Source : uint64_t { kChannel = 0, kListener = 1, kPidfd = 2 };

inline uint64_t Key(WorkerId id, Source source) { return (id << 2) | source; }

// "promise rpath would allow it", or "no promise allows this" for "".
std::string AllowedByText(const std::string& promise);

using RequestKind = DecodedRequest::Kind;

// A brokered call that yields an fd (open, connect): what `request` resolves to under the
// worker's policy, an fd or an error whose errno goes back to the worker. Sets
// `*audit_request` to the request as the audit log shows it. Runs on a pool thread without
// the broker's lock, and may block in the kernel (a FIFO, a hung mount, a slow peer).
using ChannelCall = absl::StatusOr<UniqueFd> (*)(pid_t pid, const PreparedPolicy& policy,
                                                 const DecodedRequest& request,
                                                 std::string* audit_request);
// broker_files.cc: an explicit open under the policy's filesystem rules.
absl::StatusOr<UniqueFd> OpenForWorker(pid_t pid, const PreparedPolicy& policy,
                                       const DecodedRequest& request, std::string* audit_request);
// Records the audit entry of a decided channel call (`request` as the log shows it) and
// returns the errno the worker gets: 0 if allowed, a refusal's (EACCES if it has none).
int AuditChannelCall(AuditLog& audit, WorkerId id, pid_t pid, std::string request,
                     const absl::StatusOr<UniqueFd>& fd);
// The audit log's text of an explicit open request.
std::string OpenAuditText(const DecodedRequest& request);
// broker_network.cc: a connect under the policy's connect rules.
absl::StatusOr<UniqueFd> ConnectForWorker(pid_t pid, const PreparedPolicy& policy,
                                          const DecodedRequest& request,
                                          std::string* audit_request);

// The broker's own deadlines, limits and rates (wall time, call deadlines, the rate
// limit, the refusal throttle, violation reports per second, connect deadlines) run on
// MonotonicNow() (base/monotonic.h).

// What a pool task may touch of the broker once its blocking call returns: the broker's
// destructor sets `gone` under the writer lock; a task finishes (audits, answers, re-arms,
// counts) only under the reader lock with `gone` false, and one that finds it gone drops
// its answer (its fds close). A call stuck in the kernel past the broker's end (a hung
// mount) so never touches freed memory.
struct BrokerLife {
  absl::Mutex mu;
  bool gone ABSL_GUARDED_BY(mu) = false;
};

// The broker's fork servers (broker_fork_server.cc), shared with each server's state so
// that either may go first: Shutdown (and so the broker's destructor) sets `gone` and ends
// every server still listed, under `mu`; ~ForkServer unlists its server under `mu` and
// uses the broker (KillStrays) only while `gone` is false. Lock order: `mu`, then a
// server's State::mu, then the broker's mu_ (README "Spawn, round 5", review fix M1).
struct ForkServerRegistry {
  absl::Mutex mu;
  bool gone ABSL_GUARDED_BY(mu) = false;
  std::vector<ForkServer::State*> servers ABSL_GUARDED_BY(mu);
};

// The wire format of the answers (broker_wire.cc; requests are decoded by DecodeRequest
// in request.cc). Each encodes one wire::Response and sends it on `channel`, returning
// Channel::Send's result (0 or -errno).
int SendHelloReply(const Channel& channel, uint64_t id);
int SendTime(const Channel& channel, uint64_t id, absl::Time now);
// The fd (still the caller's to close once sent), or the error's errno (EACCES if it has
// none) and its message (at most 1024 bytes).
// An answer is sent only while the worker's channel holds less than kMaxUnreadAnswerBytes
// of answers it has not read (the broker's end has that send buffer: SetUnreadAnswerBound;
// the kernel's sendmsg fails with EAGAIN past it, at no syscall of ours): otherwise
// nothing is sent, the caller closes the fd, the result is kAnswersUnread, and the caller
// ends the worker. When the
// kernel refuses the fd (ETOOMANYREFS: too many fds in flight for the broker's user, see
// kMaxUnreadAnswerBytes) the worker gets an ENFILE error answer instead, the result is
// that answer's, and `*undelivered` (if given) is set to that error: the caller audits
// what the worker really got.
int SendFdOrError(const Channel& channel, uint64_t id, const absl::StatusOr<UniqueFd>& fd,
                  absl::Status* undelivered = nullptr);
// SendFdOrError's result when the worker has too many answers unread (not an errno).
inline constexpr int kAnswersUnread = 1;
// Makes the broker's end of a worker's channel take no answer once kMaxUnreadAnswerBytes
// of answers are unread by the worker (SO_SNDBUF; the kernel charges a datagram to the sender's
// send buffer until the peer reads it, and a non-blocking sendmsg past it is EAGAIN).
// Fails, and the spawn with it, if the kernel does not set exactly that. Every answer the
// broker sends is far smaller than the bound (the largest: an error with its 1 KiB reason).
absl::Status SetUnreadAnswerBound(int channel_fd);
// A new worker channel: {the broker's end, the worker's end}. The broker's end is
// non-blocking and has the bound on unread answers (SetUnreadAnswerBound). Every way of
// making a worker (Spawn, SpawnExec, a fork server's SpawnFrom) takes its channel here.
absl::StatusOr<std::pair<Channel, Channel>> WorkerChannelPair();
// An fd sent over a unix socket is "in flight" until the peer reads it, and the kernel
// charges it to the sending user: past RLIMIT_NOFILE fds in flight, a sender without
// CAP_SYS_RESOURCE or CAP_SYS_ADMIN gets ETOOMANYREFS for every fd it sends, to any
// worker (unix_inflight, too_many_unix_fds). So one worker that asks for fds and never
// reads them could make every other worker's opens fail. A worker's client reads each
// answer before it asks again (at most its HelloReply and one answer are ever unread);
// one with more than this many bytes of answers unread is ended before it gets another
// fd. The kernel charges each answer at least its buffer overhead (768 bytes for an fd
// answer on Linux 6.18 x86-64), so this is at most 21 fds in flight per worker there, and
// at most 21 x (live workers) in all: a broker that is not root keeps its RLIMIT_NOFILE
// above that.
inline constexpr int kMaxUnreadAnswerBytes = 16 * 1024;
// BrokerOptions::listener_in_place: at most this many workers at once are served by a
// pool thread of their own; the others' listeners go to the serving loop as usual, so
// the pool (64 threads) always has threads for brokered calls.
inline constexpr int kMaxInPlaceListeners = 4;
// How a worker ended for kAnswersUnread says it.
std::string UnreadAnswersReason();

// The refusal throttle: a worker's refused calls (a path call or request the broker
// said no to; not a syscall refused under penalty errno) draw from a token bucket of this
// burst, refilled at this rate. When it is empty the broker stops reading the worker
// (its channel and listener leave epoll) until a token is back: the worker waits in its
// own call, not runnable, and costs the broker nothing. Ordinary programs never get
// near it: a dynamic loader, libc and python3's start-up are refused ~10 times
// (README). Learning mode (penalty log) is not throttled.
inline constexpr double kRefusalBurst = 128;
inline constexpr double kRefusalsPerSecond = 32;
// Many workers at once: all refusals of the broker also draw from one shared bucket.
// While it is empty, a worker that has used more than kRefusalBurstUnderPressure of its
// own burst is throttled as if its own were empty (50 flooders get 8 fast refusals each,
// not 128; one program alone still gets its whole burst).
inline constexpr double kGlobalRefusalBurst = 256;
inline constexpr double kGlobalRefusalsPerSecond = 512;
inline constexpr double kRefusalBurstUnderPressure = 8;

// One spawned worker as the broker sees it; guarded by Impl::mu_ (`shared` has its own
// lock).
struct Worker {
  WorkerId id = 0;
  pid_t pid = -1;
  std::shared_ptr<const PreparedPolicy> policy;
  Channel channel;
  UniqueFd pidfd;
  // What the path-call handler needs (listener, cwd, refusals); shared with the task
  // pool thread serving this worker's current call.
  std::shared_ptr<WorkerShared> shared;
  bool listener_registered = false;
  // A brokered call of this worker is running on the pool (one at a time; the listener
  // is not watched meanwhile). Guarded by Impl::mu_.
  // Two kinds, independent: a path call of the worker's threads (its listener is not
  // watched meanwhile) and an explicit open/connect request (its channel is not read).
  // A worker's last messages (a trap report) are read even while a path call runs.
  bool path_call_in_flight = false;
  bool channel_call_in_flight = false;
  absl::Time path_call_started;
  absl::Time channel_call_started;
  // Violation reports in the current second (penalty trap).
  int reports_this_second = 0;
  absl::Time report_second;
  Phase phase = Phase::kAwaitHello;
  // Set when the broker decided to end the worker; the result kind/reason win over the
  // signal that follows.
  bool ending = false;
  // Reading what a worker sent before it exited: failures to answer are not its fault.
  bool draining = false;
  WorkerResult result;
  bool reaped = false;
  // Kill() ended it: if it turns out to have exited by itself (CLD_EXITED), that is its
  // result, not the kill (review h65, M1).
  bool killed_by_kill = false;
  // It has exited (its pidfd is readable) but is not reapable yet: a traced zombie is
  // shown to its tracer first (an exec'd worker under execpromises, until the tracer
  // helper has waited for it). Its pidfd is out of epoll meanwhile (the level-triggered
  // event would spin the loop) and the loop retries the reap every kReapRetryMs.
  bool reap_pending = false;
  // Token bucket for requests_per_second.
  double tokens = 0;
  absl::Time last_refill;
  absl::Time deadline = absl::InfiniteFuture();
  // Until its hello: a fork server's worker that has not said hello by then is ended
  // (review L4). InfiniteFuture once it has, or for other workers.
  absl::Time hello_deadline = absl::InfiniteFuture();
  // The refusal throttle (kRefusalBurst). `throttled`: the channel and the listener are
  // out of epoll until `throttled_until`. An episode lasts until the bucket is full again
  // and is audited once.
  double refusal_tokens = kRefusalBurst;
  absl::Time refusal_refill = absl::InfinitePast();
  bool throttled = false;
  absl::Time throttled_until = absl::InfinitePast();
  bool throttle_episode = false;
};

// Spawn helpers shared by broker.cc and broker_fork_server.cc (defined in broker.cc).
// The fd of `policy`'s shared root, made on first use; -1 when its workers make their own
// mount namespace or have none. Owned by the policy.
absl::StatusOr<int> SharedRootFor(const PreparedPolicy& policy);
// The seccomp program a spawn loads (compiled on first use, then shared).
absl::StatusOr<std::shared_ptr<const BpfProgram>> ProgramFor(FilterCache& filters,
                                                             const Policy& policy, bool exec,
                                                             bool keep_channel);
// This process's address space (VmSize).
absl::StatusOr<uint64_t> AddressSpaceBytes();
// In a spawn's child (async-signal-safe): "vow: <what><detail>: <error>" to stderr.
void ChildError(const char* what, const char* detail, int err);
// In a spawn's child or a fork server (async-signal-safe): every caught signal back to
// SIG_DFL (the broker's or embedder's handlers must not run there); ignored signals stay
// ignored. False if a handler could not be reset.
bool ResetCaughtSignals();
// The fds a spawn's child is given: stdio (3), the channel, the program or the shared
// root, the fresh network and IPC namespaces.
inline constexpr int kChildFdSources = 7;
// In a spawn's child: sources[0..2] (stdio; -1: none) and sources[3] (the channel) to
// fds 0-3; sources[4..6] moved above 10 and returned in extras[0..2]. False on failure.
bool PlaceChildFds(const int sources[kChildFdSources], int extras[kChildFdSources - 4]);
// A forked worker (Spawn's fork, a fork server's clone3): places its fds, locks down
// under `spec` and `layers` (sources[4]: the shared root, [5..6]: the fresh namespaces)
// and runs `main`; exits with its code. Async-signal-safe until LockDown has returned.
[[noreturn]] void RunForkedWorker(LockdownSpec spec, LayerSpec layers,
                                   const int sources[kChildFdSources], const WorkerMain& main);
// The first part of RunForkedWorker: places the fds and runs LockDown (spec.layers is set
// to &layers); on failure writes the step to stderr and exits with kLockdownFailedExit.
void LockDownForkedWorker(LockdownSpec& spec, LayerSpec& layers,
                          const int sources[kChildFdSources]);
// The tail of RunForkedWorker, once locked down and the hello sent: the worker's Client on
// fd kWorkerChannelFd, `main`, then _exit with its code.
[[noreturn]] void RunWorkerFunction(const WorkerMain& main);

class Broker::Impl {
 public:
  Impl(AuditLog* audit, std::shared_ptr<FilterCache> filters, size_t namespace_stock,
       bool namespace_stock_once, std::shared_ptr<ExecRoots> exec_roots)
      : filters_(filters != nullptr ? std::move(filters) : std::make_shared<FilterCache>()),
        namespaces_(namespace_stock, namespace_stock_once),
        exec_roots_(std::move(exec_roots)),
        audit_(audit) {}
  ~Impl();

  absl::Status Start(size_t pool_threads, bool stock_now);
  // What the destructor does first (Broker::Shutdown): every worker not yet reaped is
  // SIGKILLed, the serving thread stopped, the pool ended, tasks that still touch the
  // broker waited for, the path handler detached from the audit log, the workers reaped.
  // Once only; called by the owning thread.
  void Shutdown();
  // Shutdown's last step: reaps the workers it killed, waiting at most kShutdownEndWait in
  // all (without mu_); one still there then is said on stderr and left (review h65, L1).
  void ReapAfterShutdown();
  absl::StatusOr<WorkerId> SpawnCommon(std::shared_ptr<const PreparedPolicy> policy,
                                       const WorkerMain* main,
                                       const std::vector<std::string>* argv,
                                       const SpawnOptions& options);
  // The second half of a spawn: registers a started child (the channel's broker end
  // `ours`, its pidfd) with the serving loop. On failure the child is killed and reaped.
  // `hello_within` (finite: a fork server's worker): ended if no hello comes in time.
  absl::StatusOr<WorkerId> RegisterWorker(pid_t pid, UniqueFd pidfd, Channel ours,
                                          std::shared_ptr<const PreparedPolicy> policy,
                                          std::shared_ptr<const ExecTracer> tracer, bool exec,
                                          std::string script_path, UniqueFd script_fd,
                                          const SpawnOptions& options,
                                          const std::vector<std::string>* argv,
                                          absl::Duration hello_within = absl::InfiniteDuration());
  // The fork server (broker_fork_server.cc).
  // Ends every listed server (Shutdown).
  void EndForkServers();
  // Lists a started server (or ends it: the broker is shut down).
  absl::Status ListForkServer(ForkServer::State& s);
  absl::StatusOr<std::unique_ptr<ForkServer::State>> StartForkServer(
      std::shared_ptr<const PreparedPolicy> policy, WorkerMain main, const SpawnOptions& options);
  absl::StatusOr<WorkerId> SpawnFrom(ForkServer::State& server, const SpawnOptions& options,
                                     absl::Duration timeout);
  // One request of SpawnFrom: kFsPremade (`premade`; *none set when the server had no
  // pre-made worker: nothing was spawned, the caller asks afresh) or kFsFresh.
  absl::StatusOr<WorkerId> SpawnFromOnce(ForkServer::State& server, const SpawnOptions& options,
                                         absl::Time deadline, bool premade, bool* none);
  // Ends the server (`reason` becomes its failure, audited) and every unregistered worker
  // it made (found in its session, not by a pid it wrote). Called with server.mu held.
  void EndServer(ForkServer::State& server, const std::string& reason);
  // True if `pid` is a registered worker not yet reaped.
  bool IsWorkerPid(pid_t pid) const;
  absl::StatusOr<WorkerResult> Wait(WorkerId id, absl::Duration timeout);
  void Kill(WorkerId id);
  pid_t pid(WorkerId id) const;
  size_t live() const;
  int InPlaceListeners() const {
    absl::MutexLock lock(&mu_);
    return in_place_listeners_;
  }

  const std::shared_ptr<FilterCache> filters_;  // BrokerOptions::filters, or its own
  // Fresh network and IPC namespaces for workers (SpawnCommon); its thread starts at the
  // first spawn that asks for either, or at Create (BrokerOptions).
  NamespaceStock namespaces_;
  // BrokerOptions::listener_in_place; set by Create before Start, read-only afterwards.
  bool listener_in_place_ = false;
  // BrokerOptions::exec_roots (may be null).
  const std::shared_ptr<ExecRoots> exec_roots_;

 private:
  // ---- The dispatch table (broker_dispatch.cc). ----
  // A handler serves one decoded request of a worker, in a phase its row allows, on the
  // serving thread with mu_ held. `attached` holds the `nfds` fds that came with the
  // message (only hello takes one; they are closed after the handler unless it moved
  // them). Returns false when the worker was ended.
  using Handler = bool (Impl::*)(Worker& w, const DecodedRequest& request, UniqueFd* attached,
                                 int nfds);
  // Phases a request is served in (bits); in any other phase it ends the worker.
  enum PhaseSet : uint8_t { kNoPhase = 0, kBeforeHello = 1 << 0, kAfterHello = 1 << 1 };
  struct Route {
    RequestKind kind;
    uint8_t phases;     // PhaseSet bits
    bool rate_limited;  // counts against `limit requests_per_second`
    Handler handler;    // nullptr exactly when phases is kNoPhase
  };
  // One row per RequestKind, in enum order (checked at compile time).
  static const Route kRoutes[];
  static const size_t kRouteCount;
  // Decodes one datagram, checks it against the table (phase, attached fds, rate limit)
  // and calls its handler. Returns false when the worker was ended.
  bool HandleMessage(Worker& w, const capnp::word* data, size_t bytes, int* fds, int nfds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ---- The handlers, one file per family. ----
  // broker_hello.cc: takes the seccomp listener, moves the worker to kServing.
  bool HandleHello(Worker& w, const DecodedRequest& request, UniqueFd* attached, int nfds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The rest of HandleHello once the listener is watched: the phase, the audit line, the reply.
  bool FinishHello(Worker& w, const DecodedRequest& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // broker_files.cc: an explicit open: answered here when FsPolicy::OpenWithoutBlocking
  // decides it (kInline in fs_policy.h), else on the pool (see OpenForWorker).
  bool HandleOpen(Worker& w, const DecodedRequest& request, UniqueFd* attached, int nfds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // broker_files.cc. Runs on a pool thread: answers one path call, then re-arms the
  // worker's listener.
  // `paths` is paths_ as the loop saw it, `life` see BrokerLife (this object may be gone when
  // the call returns).
  void ServePathCall(std::shared_ptr<WorkerShared> shared, WorkerId id,
                     struct seccomp_notif req, PathCall call, PathHandler* paths,
                     std::shared_ptr<BrokerLife> life);
  // broker_network.cc: a connect (on the pool; see ConnectForWorker).
  bool HandleConnect(Worker& w, const DecodedRequest& request, UniqueFd* attached, int nfds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // broker_clock.cc: the time under the policy's clock rule.
  bool HandleClock(Worker& w, const DecodedRequest& request, UniqueFd* attached, int nfds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // broker_violations.cc: a violation report of the worker's SIGSYS handler (penalty trap).
  bool HandleViolation(Worker& w, const DecodedRequest& request, UniqueFd* attached, int nfds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordViolation(Worker& w, Violation v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ---- The serving loop (broker_loop.cc). ----
  void Loop();
  void HandleChannel(Worker& w, int max_messages) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleNotification(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Receives one notification of the worker's listener. A path call is returned (`*req`,
  // `*call`; the worker's path_call_in_flight set and counted in calls_in_flight_), for the
  // caller to serve with ServePathCall; anything else is answered here (a refusal, the
  // worker ended for a violation).
  enum class Received { kNothing, kPathCall, kListenerDead };
  Received ReceiveNotification(Worker& w, struct seccomp_notif* req,
                               std::optional<PathCall>* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // BrokerOptions::listener_in_place: runs on a pool thread for the worker's life, waits
  // for its listener and serves each path call itself (no hand-off from the loop). Ends
  // when the worker ends, the broker stops, or `life` is gone.
  void ServeListenerInPlace(std::shared_ptr<WorkerShared> shared, WorkerId id,
                            std::shared_ptr<BrokerLife> life);
  void ArmListener(WorkerShared& shared, WorkerId id, bool on);
  void ArmChannel(Worker& w, bool on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `call` to the pool (one channel call per worker at a time: its channel is not
  // read until the answer is sent). Returns false when the worker was ended.
  bool SubmitChannelCall(Worker& w, const DecodedRequest& request, ChannelCall call)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An open decided on the serving thread: answered on the worker's channel, then
  // audited (the audit text is built after the answer is sent: off the worker's wait),
  // a refusal counted by the throttle. Returns false when the worker was ended or
  // throttled (its channel is not read on).
  // `walk` (may be invalid): the O_PATH fd OpenWithoutBlocking decided on, closed with the
  // answered fd once the answer is sent.
  bool AnswerOnLoop(Worker& w, const DecodedRequest& request, absl::StatusOr<UniqueFd> fd,
                    UniqueFd walk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs on a pool thread: an explicit open or connect request, answered on `channel_fd`,
  // which it owns (a dup of the worker's channel; closed here once answered).
  // `life`: see BrokerLife (this object may be gone when the call returns).
  void ServeChannelCall(WorkerId id, pid_t pid, const PreparedPolicy& policy, int channel_fd,
                        const DecodedRequest& request, ChannelCall call,
                        std::shared_ptr<BrokerLife> life);
  // The refusal throttle: takes a token for one refusal; when none is left the worker is
  // throttled (its channel and listener leave epoll). Returns true if it is throttled.
  // Called from pool threads too (mu_ held).
  bool NoteRefusal(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a throttled worker's channel and listener back in epoll.
  void Unthrottle(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ---- Lifecycle (broker.cc). ----
  void Reap(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void End(Worker& w, WorkerResult::Kind kind, std::string reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // End(kProtocolError, reason); returns false (what a handler returns for an ended worker).
  bool ProtocolError(Worker& w, std::string reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Audit(const Worker& w, std::string request, bool allowed, std::string reason);
  void Unregister(Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ---- Answers (broker_wire.cc). ----
  bool SendError(Worker& w, uint64_t id, int err, absl::string_view reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a failed send: a vanished worker is left to its pidfd; any other failure ends it.
  bool SendFailed(Worker& w, int rc, absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AuditLog* audit_;
  // See BrokerLife; captured by each pool task.
  std::shared_ptr<BrokerLife> life_ = std::make_shared<BrokerLife>();
  // See ForkServerRegistry.
  std::shared_ptr<ForkServerRegistry> fork_servers_ = std::make_shared<ForkServerRegistry>();
  std::unique_ptr<PathHandler> paths_;
  std::unique_ptr<TaskPool> pool_;
  std::atomic<int> calls_in_flight_{0};
  // The workers served by ServeListenerInPlace (each holds a pool thread for its life), at
  // most kMaxInPlaceListeners.
  int in_place_listeners_ ABSL_GUARDED_BY(mu_) = 0;
  UniqueFd epoll_;
  UniqueFd wake_;
  UniqueFd dev_null_;  // the forked workers' stdio (LockdownSpec::null_fd)
  std::thread thread_;
  // Set by Shutdown under mu_: Loop() checks it under mu_ before serving what epoll
  // returned, so once Shutdown has released mu_ the loop serves nothing more.
  std::atomic<bool> stop_{false};
  bool shut_down_ = false;  // Shutdown() ran
  mutable absl::Mutex mu_;
  std::map<WorkerId, std::unique_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  WorkerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Live workers with a wall-time limit.
  size_t timed_workers_ ABSL_GUARDED_BY(mu_) = 0;
  // Live workers with a hello deadline that have not said hello yet (Worker::hello_deadline).
  // Workers with reap_pending set (changed under mu_; read by the loop before its wait).
  std::atomic<size_t> reap_pendings_{0};
  size_t hello_waits_ ABSL_GUARDED_BY(mu_) = 0;
  // Throttled workers, and the earliest time one of them is due back (Unix ns; read by
  // the loop before it takes mu_, to choose its epoll timeout).
  size_t throttled_workers_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> next_unthrottle_ns_{std::numeric_limits<int64_t>::max()};
  // The broker-wide refusal bucket (kGlobalRefusalBurst).
  double global_refusal_tokens_ ABSL_GUARDED_BY(mu_) = kGlobalRefusalBurst;
  absl::Time global_refusal_refill_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Receive buffer of the serving thread.
  std::unique_ptr<capnp::word[]> buffer_{new capnp::word[kMaxMessageWords + 1]};
  struct seccomp_notif_sizes notif_sizes_ = {};
};

}  // namespace vow

#endif  // VOW_BROKER_BROKER_INTERNAL_H_
