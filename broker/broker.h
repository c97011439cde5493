// The broker: spawns workers, serves their requests, and reports how each one ended.
// Runs in the privileged process; every byte it reads from a worker is hostile.
//
// One serving thread multiplexes every worker with epoll: its channel, its seccomp
// user-notification listener and its pidfd. A worker's request is checked against its
// policy and answered; a worker that breaks the protocol (garbage, oversized or
// out-of-phase messages, fds it was not asked for, a flood over its rate limit) is ended
// with SIGKILL and reported, and the others are not affected. Nothing a worker sends can
// crash the broker: decoding errors are caught at the ipc boundary and end that worker.
//
// Dispatch table (the protocol's phases, after OpenSSH's monitor):
//   request     fork worker            exec worker                      after hello
//   getFilter   refused                refused (the broker's child      refused
//                                      installs the filter)
//   hello       once, first            once, first (sent by the broker's refused
//                                      child before execve)
//   open        -                      -                                yes
//   connect     -                      -                                yes
//   clock       -                      -                                yes
//   violation   -                      -                                penalty trap only
// "refused" and "-" end the worker. The table in code: Broker::Impl::kRoutes
// (broker/broker_dispatch.cc).
//
// Threads: Spawn*, Wait, Kill are thread-safe. PR_SET_PDEATHSIG follows the *thread* that
// forked: a worker dies when the thread that called Spawn* exits, so spawn from a thread
// that lives as long as the workers (e.g. main). The destructor kills and reaps every
// worker still running.
#ifndef VOW_BROKER_BROKER_H_
#define VOW_BROKER_BROKER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broker/audit_log.h"
#include "broker/refusal.h"
#include "policies/policy.h"

namespace vow {

class Client;
class ExecRoots;
class FilterCache;
class PreparedPolicy;
struct LayerSpec;

using WorkerId = uint64_t;
// The worker's own code, run after lock-down in the forked child. Its return value is the
// worker's exit code (stdout and stderr are flushed first).
using WorkerMain = std::function<int(Client&)>;

struct SpawnOptions {
  // Given to the worker as its fd 0, 1, 2 (the broker dups them; the caller keeps its
  // copies). -1: /dev/null.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // For the audit log and reports.
  std::string name;
  // SpawnExec only. kKeep: the program is a vow worker (it calls LockDownExecWorker()
  // and uses the channel, fd 3). kClose: an unmodified program; fd 3 is closed before
  // execve and nothing of vow is in its environment. Either way the broker's child has
  // locked it down before execve.
  enum class ExecChannel : uint8_t { kKeep, kClose };
  ExecChannel exec_channel = ExecChannel::kKeep;
  // SpawnExec only: how long the broker's child may take from its release to its execve
  // (lock-down, hello, the execve itself). Past it the child is killed and the spawn fails
  // with DeadlineExceeded naming the child's state (e.g. stopped by a signal before its
  // execve); the next SpawnExec of the process is not held up longer than this.
  absl::Duration exec_deadline = absl::Seconds(10);
};

// Test only: `hook` (null: none) is called by every later SpawnExec with its child's pid
// (as this process sees it) after the clone and before the child is let go, so a test can
// do to that child what a terminal or a debugger might (SIGSTOP it before its execve).
void SetExecChildHookForTesting(void (*hook)(pid_t));

// Test only: `hook` (null: none) is called by every later Spawn of a forked worker with
// its pid after the fork and before the broker opens the worker's pidfd, so a test can
// hold the broker there as a loaded machine may (the worker must not end meanwhile).
void SetForkChildHookForTesting(void (*hook)(pid_t));

// Test only: `hook` (null: none) is called by the serving loop after an epoll_wait that
// returned a worker's pidfd event and before the loop takes the broker's lock to serve it,
// so a test can reap that worker from another path (Kill, Wait) meanwhile.
void SetLoopPidfdEventHookForTesting(void (*hook)());

// Test only: `send` (null: the real pidfd_send_signal) takes the place of the SIGKILL with
// which the broker ends a worker (a violation, a limit, Kill; returns 0 or -1 with errno
// set), so a test can hold open the time between the broker's verdict and the worker's
// death, in which the worker may still end by itself: one already exiting, or dying of a
// signal of its own, is not changed by a SIGKILL (review h67). Shutdown's are not replaced.
void SetEndSignalForTesting(int (*send)(int pidfd, int sig));

// Test only: while `err` is not 0, every poll of a worker's listener by its in-place
// thread (BrokerOptions::listener_in_place) that reports something (a call, a hang-up)
// fails with it instead, as the kernel's ENOMEM would.
void SetInPlacePollErrorForTesting(int err);

// A syscall that no promise of the worker allowed.
struct Violation {
  int nr = -1;
  uint32_t audit_arch = 0;   // AUDIT_ARCH_* of the call
  std::string syscall;       // e.g. "openat", or "syscall_999"
  uint64_t args[6] = {0, 0, 0, 0, 0, 0};
  std::string allowed_by;    // the promise that would have allowed it; empty: none does
  bool from_kernel = false;  // true: seccomp user notification; false: the worker's report
  std::string ToString() const;  // "openat(...) refused; promise rpath would allow it"
};

struct WorkerResult {
  enum class Kind {
    kExited,          // exit_code is valid
    kSignaled,        // signal is valid (a crash, or killed from outside)
    kViolation,       // penalty kill: `violation` says which syscall
    kProtocolError,   // the worker broke the protocol and was ended; see `reason`
    kLimitExceeded,   // rate, wall time; see `reason`
    kLockdownFailed,  // the worker never got locked; see `reason`
    kStatusLost,      // it ended, but another wait in this process took its status
  };
  Kind kind = Kind::kExited;
  int exit_code = 0;
  int signal = 0;
  std::optional<Violation> violation;
  // Every refused syscall the broker saw (penalties errno, trap, log; for kill, the fatal
  // one), in order, at most 1000.
  std::vector<Violation> violations;
  // Every path call the broker refused (opens, stats, ... made by any code in the
  // worker), in order, at most 1000. Refusals do not end a worker.
  std::vector<Refusal> refusals;
  // The kernel layers beneath the filter, as applied ("landlock ABI 7: on; userns: on;
  // ...; identity: 65534:65534, no capabilities").
  std::string layers;
  std::string reason;
  std::string ToString() const;
};

struct BrokerOptions {
  // Where audit lines go (not owned; -1: kept in memory only).
  int audit_fd = -1;
  // The cache the broker's seccomp programs are compiled into and taken from; null: a
  // cache of its own. Shared, a program can be compiled before the broker exists, on
  // another thread (CompileExecProgram; `vow run` overlaps it with Create and Prepare).
  std::shared_ptr<FilterCache> filters;
  // Fresh network + IPC namespace pairs kept ready for spawns (broker/namespace_stock.h,
  // at most NamespaceStock::kMaxDepth); 0: none, every worker makes its own.
  size_t namespace_stock = 4;
  // Make the `namespace_stock` pairs once, at Create, on the calling thread (no stock
  // thread), and never replace them: for a broker that spawns one worker (`vow run`, whose
  // other thread compiles the filter meanwhile), so that its spawn child enters them
  // instead of making them. Default: the stock's thread starts at the first spawn that
  // takes a pair (which finds it empty) and keeps it full.
  bool namespace_stock_once = false;
  // Task-pool threads (they answer the workers' brokered calls: opens, stats, the loader's
  // calls of an exec'd program) started at Create instead of at the first call, which
  // would wait for its thread's start: `vow run` starts one while the broker starts.
  size_t pool_threads_at_create = 0;
  // Each worker's seccomp listener is watched by a pool thread of its own for the worker's
  // life (at most 4 workers at once; the others' by the serving loop as usual), which
  // answers the worker's path calls itself: one wake-up less per call than the loop's
  // hand-off to the pool (worker -> loop -> pool thread -> worker). Decisions, audit and
  // deadlines are the same; a slow call holds only its own worker's thread, as on the
  // pool. For a broker with few workers (`vow run`: one).
  bool listener_in_place = false;
  // Empty roots for exec'd workers made ahead of time (PrepareExecRoot): a SpawnExec whose
  // worker's root would bind exactly the files one of them binds enters it instead of
  // building its own in the spawn's child. Null: every exec'd worker builds its own.
  std::shared_ptr<ExecRoots> exec_roots;
};

// Mount namespaces with an empty root (MakeSharedRoot, worker/layers.h), one per set of
// listed files and scratch directory, made ahead of time for exec'd workers (`vow run`:
// on its compile thread while Broker::Create runs, so the spawn's child enters the root
// with a setns instead of copying, building and detaching a mount tree). Read-only, in
// the broker's user namespace: sharing one is what forked workers of a policy already do
// (see MakeSharedRoot). Thread-safe.
class ExecRoots {
 public:
  ExecRoots();
  ~ExecRoots();
  ExecRoots(const ExecRoots&) = delete;
  ExecRoots& operator=(const ExecRoots&) = delete;

  // The fd of the root made for exactly `layers`' listed files and scratch directory, or
  // -1. Owned by this object.
  int Find(const LayerSpec& layers) const;
  // Number of roots made.
  size_t size() const;

 private:
  friend absl::Status PrepareExecRoot(ExecRoots& roots, const Policy& policy,
                                      const std::string& program);
  struct State;
  std::unique_ptr<State> state_;
};

// Makes in `roots` the empty root that SpawnExec of `program` (a path, opened here as
// SpawnExec opens it) under `policy` would build: its loader (PT_INTERP; a #! script's
// interpreter's) and, with the exec promise, the policy's `x` files bind-mounted
// read-only. Nothing is made when the policy's layers have no mount namespace or keep the
// broker's identity (a shared root needs the drop). A root that turns out not to match
// the spawn (the program changed meanwhile) is only not used.
absl::Status PrepareExecRoot(ExecRoots& roots, const Policy& policy, const std::string& program);

// Compiles into `filters` the seccomp program that SpawnExec of `policy` with
// `channel` loads (the same cache key), so that the spawn finds it there. Thread-safe
// as FilterCache is; libseccomp is not known to be safe with two compiles at once in a
// process (its kernel probe is a process-wide cache), so a caller that compiles on
// another thread (vow run) joins it before anything else compiles.
absl::Status CompileExecProgram(FilterCache& filters, const Policy& policy,
                                SpawnOptions::ExecChannel channel);

// A fork server (broker/broker_fork_server.cc; README "Spawn, round 3"): a single-threaded
// copy of this process, forked once by Broker::StartForkServer, that holds one prepared
// policy's compiled filter and shared root and one worker function, and makes each worker
// with clone3(CLONE_PARENT | CLONE_PIDFD): the worker is this process's child, as a
// forked one is (same parent check, parent-death signal and reaping), but this process's
// threads and page tables are not copied for it. WorkerPool uses one. After each request
// the server makes and locks down the next worker ahead of time (README "Spawn, round 5";
// SetForkServerPremade in broker/fork_server.h), which the next SpawnFrom gets with its
// fds. The destructor ends the server and a pre-made worker still waiting (not the workers
// it handed out). A ForkServer may outlive its Broker: the broker's Shutdown (and
// destructor) ends each of its servers (and their pre-made workers) first, and the
// ForkServer's destructor then has nothing left to do and does not touch the broker (review
// fix M1, README "Spawn, round 5"). Not thread-safe: one SpawnFrom at a time.
class ForkServer {
 public:
  struct State;
  ~ForkServer();
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;
  // The server's pid (for tests), or -1 once it has been ended.
  pid_t pid() const;
  // Why the server was ended ("" while it serves). After a failure every SpawnFrom fails.
  std::string failure() const;
  // The pre-made worker waiting for a request (0: none; -1: the server was ended), for
  // tests: the server's one unregistered worker, found as EndServer finds its strays.
  pid_t premade_pid_for_testing() const;
  // How many SpawnFrom calls got the worker the server had made ahead of the request
  // (README "Spawn, round 5"), and how many a worker cloned for the request.
  uint64_t premade_spawns() const;
  uint64_t fresh_spawns() const;

 private:
  friend class Broker;
  explicit ForkServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class Broker {
 public:
  static absl::StatusOr<std::unique_ptr<Broker>> Create(BrokerOptions options = {});
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Checks `policy` (an error names the bad rule), resolves its layers and opens its
  // filesystem rules. A prepared policy can spawn any number of workers. Its seccomp
  // program is compiled at the first spawn that loads it (a forked worker's, an exec'd
  // image's), then shared by every later spawn of the broker with the same promises and
  // penalty.
  absl::StatusOr<std::shared_ptr<const PreparedPolicy>> Prepare(const Policy& policy);

  // Forks a worker that locks itself down and then runs `main`.
  absl::StatusOr<WorkerId> Spawn(std::shared_ptr<const PreparedPolicy> policy, WorkerMain main,
                                 const SpawnOptions& options = {});
  absl::StatusOr<WorkerId> Spawn(const Policy& policy, WorkerMain main,
                                 const SpawnOptions& options = {});

  // Starts a child and executes `argv` (argv[0] is a path). The broker's child locks
  // itself down completely (the policy's filter, compiled for an exec'd image) BEFORE
  // execve, so the program runs locked from its first instruction, whether or not it is a
  // vow worker; the filter lets exactly that execve through, and the dynamic loader's
  // opens and library mappings are served by the broker from the loader set. The child
  // is a clone that shares this process's memory until it execs (as posix_spawn's vfork:
  // no copy of the broker's address space), so SpawnExec returns once the program has
  // replaced it (or it has failed and exited), or fails past options.exec_deadline (the
  // child is killed); the exec spawns of one process lock down one at a time.
  absl::StatusOr<WorkerId> SpawnExec(std::shared_ptr<const PreparedPolicy> policy,
                                     const std::vector<std::string>& argv,
                                     const SpawnOptions& options = {});

  // Forks a fork server for workers that run `main` under `policy` with the stdio of
  // `options` (which of fds 0-2 are given, not their values: each SpawnFrom passes its
  // own). PR_SET_PDEATHSIG follows the calling thread, as for Spawn: the server and every
  // worker it makes die when this thread exits. Fails (and leaves nothing behind) when
  // the kernel or glibc lacks what the server needs (see the .cc); callers then Spawn.
  absl::StatusOr<std::unique_ptr<ForkServer>> StartForkServer(
      std::shared_ptr<const PreparedPolicy> policy, WorkerMain main,
      const SpawnOptions& options = {});
  // Spawns a worker through `server`. Waits at most `timeout` for the server, and never
  // longer than kForkServerReplyWait (10 s, broker/fork_server.h) whatever `timeout` says
  // (the wait holds the server's lock); Shutdown from another thread interrupts the wait
  // (the spawn fails, the server is ended). A server that does not answer
  // in time, dies or sends anything but a pidfd of a new child of this process is ended
  // (ForkServer::failure says why) and the spawn fails with Unavailable: the caller may
  // Spawn instead.
  absl::StatusOr<WorkerId> SpawnFrom(ForkServer& server, const SpawnOptions& options = {},
                                     absl::Duration timeout = absl::Seconds(5));

  // Waits until the worker has ended and been reaped; returns (and forgets) its result.
  // Returns DeadlineExceeded if it has not ended by `timeout` (it keeps running).
  absl::StatusOr<WorkerResult> Wait(WorkerId id, absl::Duration timeout = absl::InfiniteDuration());

  // Ends the worker with SIGKILL (its result says kSignaled, reason "killed by the broker").
  void Kill(WorkerId id);

  // The worker's pid, or -1 once it has been reaped.
  pid_t pid(WorkerId id) const;

  // How many workers are alive (spawned and not yet reaped).
  size_t live_workers() const;

  // For tests: the workers whose listener a pool thread of their own serves now
  // (BrokerOptions::listener_in_place).
  int InPlaceListenersForTesting() const;

  AuditLog& audit() { return audit_; }

  // For a process about to exit without destroying the broker (`vow run` ends with
  // _exit once its program's result is known): does what the destructor does before it
  // frees anything. Every worker not yet reaped is ended with SIGKILL and reaped; the
  // wait for their exits is at most 2 s in all and does not hold the broker's lock (other
  // threads' calls are answered meanwhile), and a worker still there then (in an
  // uninterruptible sleep, or a zombie its tracer has not released) is said on stderr and
  // left: it stays listed (live_workers, Kill, Wait), and is never reaped by a broker
  // destroyed before it ends. The serving thread and the pool are stopped (no task
  // touches the broker afterwards), and every audit line recorded is written to the fd
  // or dropped (waits at most AuditLog::kStopDrainTimeout, as the destructor).
  // Afterwards the broker serves nothing (a Wait still gets a worker's end, a spawn
  // fails) and may be destroyed; what it still holds (fds, memory, the audit writer's
  // thread) the process's exit releases. Call from the thread that owns the broker.
  void Shutdown();

 private:
  class Impl;
  explicit Broker(BrokerOptions options);
  AuditLog audit_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vow

#endif  // VOW_BROKER_BROKER_H_
