// The fork server's wire format and the broker's checks of what the server sends. The
// server is the broker's own code in a process of its own (broker/broker_fork_server.cc);
// it runs no worker code, but the broker still checks every reply before it registers a
// worker: a server that lies (or was taken over) must not make the broker adopt a process
// that is not a new child of its own.
//
// One message per SOCK_SEQPACKET datagram, fixed size, native byte order (both ends are
// the same binary):
//   broker -> server  ForkServerRequest, with SCM_RIGHTS: the fds whose bits are set in
//                     `fds`, in bit order (stdin, stdout, stderr, channel, net ns, ipc ns).
//   server -> broker  ForkServerReply: first one "ready" (seq 0, pid = the server's own, no
//                     fd; err != 0: the server cannot serve, `step` says why), then one
//                     per request with the same seq: err 0 and exactly one fd, the
//                     worker's pidfd (CLONE_PIDFD); or err != 0 and no fd.
// Two kinds of request (README "Spawn, round 5"): kFsFresh, the server clones a worker for
// it (the net/IPC pair is this worker's); kFsPremade, the server hands the stdio and
// channel fds to the worker it made and locked down ahead (its reply names that worker),
// and the net/IPC pair is for the NEXT pre-made worker, which it makes after replying. With
// no live pre-made worker the reply to kFsPremade is an honest failure (no fd; pid != 0 if
// one died and is left for the broker to reap).
//
// Who is a worker of the server (README "Fork server: a worker's identity", h48): the server
// calls setsid() at its start, and every process it clones is born in its session; no
// process can be moved into a session (setsid makes a new one, setpgid stays within its
// own), so an unreaped child of the broker whose session is the server's, while the server
// itself is unreaped (its pid is the session's), can only be one the server (or one of its
// workers) made. The broker learns pids only from pidfds: a reply's, or one it opens for a
// pid of /proc/self/task/*/children (the kernel's list of its children) and then checks so;
// nothing it signals or reaps comes from a pid the server wrote.
//
// A server-made worker runs none of its own code before the broker has accepted the reply
// that names it (README "Spawn, round 7", review h49 M1): after its hello it waits for the
// broker's go on its channel (an id-0 hello answer), which the broker sends only after
// CheckForkServerReply, so it cannot leave the server's session (setsid) before the check.
// The broker waits at most kForkServerReplyWait for a reply, and the server's own start
// has a gate (it runs once the broker holds its pidfd), as a forked worker's.
#ifndef VOW_BROKER_FORK_SERVER_H_
#define VOW_BROKER_FORK_SERVER_H_

#include <errno.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace vow {

inline constexpr uint32_t kForkServerMagic = 0x76667331;  // "vfs1"

enum ForkServerFd : uint32_t {
  kFsStdin = 1u << 0,
  kFsStdout = 1u << 1,
  kFsStderr = 1u << 2,
  kFsChannel = 1u << 3,
  kFsNet = 1u << 4,
  kFsIpc = 1u << 5,
};
inline constexpr int kForkServerMaxFds = 6;

enum ForkServerKind : uint32_t { kFsFresh = 0, kFsPremade = 1 };

struct ForkServerRequest {
  uint32_t magic = kForkServerMagic;
  uint32_t fds = 0;  // ForkServerFd bits; kFsChannel is required
  uint64_t seq = 0;
  uint32_t kind = kFsFresh;  // ForkServerKind
  uint32_t reserved = 0;     // 0
};

// The server's message to its pre-made worker, with SCM_RIGHTS: the fds whose bits
// (kFsStdin..kFsChannel) are set in `fds`, in bit order.
struct ForkServerHandoff {
  uint32_t magic = kForkServerMagic;
  uint32_t fds = 0;
};

// The honest failure replies to a kFsPremade request (reply.err): no pre-made worker was
// alive (slot 0 may name a dead one), or the server no longer makes them (after
// kPremadeMaxDeaths in a row died before their hand-off): the broker stops asking.
inline constexpr int kPremadeNone = EAGAIN;
inline constexpr int kPremadeStopped = EOPNOTSUPP;
inline constexpr int kPremadeMaxDeaths = 3;
// How long a worker made by a fork server may take from its registration to its hello
// before the broker ends it (review L4: a worker stopped or hostile before its hello).
inline constexpr absl::Duration kForkServerHelloDeadline = absl::Seconds(10);
// How long the broker waits for the server's reply to one request, whatever the caller's
// timeout (review h49, L5): it waits holding the server's lock, which Shutdown and the
// ForkServer's destructor take too, so a stopped or compromised server could otherwise hold
// them for as long as the caller allowed (forever). Past it the server is ended as
// misbehaving (the pool goes on with Spawn). An honest reply takes a clone3 (~1 ms); the
// bound is generous (an overloaded machine must not end an honest server; it was 2 s until
// h59) because Shutdown does not wait for it: it interrupts the wait (an eventfd polled
// with the reply), and the spawn fails and ends the server.
inline constexpr absl::Duration kForkServerReplyWait = absl::Seconds(10);
// A policy whose RLIMIT_NOFILE is below this gets no pre-made worker: it holds fds 0-3, its
// listener and up to four received fds when the hand-off comes, and under its filter it
// cannot raise the limit.
inline constexpr uint32_t kPremadeMinOpenFds = 16;

struct ForkServerReply {
  uint32_t magic = kForkServerMagic;
  int32_t err = 0;  // errno of the failed step; 0: ok
  uint64_t seq = 0;
  int32_t pid = 0;
  char step[36] = {};  // NUL-terminated, for err != 0
};

// The server's check of a request (the broker is trusted, but the server indexes the fds
// by the request's bits): `bytes` and `msg_flags` as recvmsg returned them, `nfds` the fds
// that came with it.
bool ForkServerRequestValid(const ForkServerRequest& req, size_t bytes, int msg_flags,
                            int nfds);

// The pre-made worker's check of its hand-off (README "Spawn, round 5"; pure, run under its
// filter): `bytes` and `msg_flags` as recvmsg returned them, `want` the fd bits it must
// get, `fds`/`nfds` the fds that came (each must be above 3: it is dup3'd onto 0-3, which
// are taken, so an fd on 0-3 would be overwritten or closed before it is placed).
bool HandoffValid(const ForkServerHandoff& h, size_t bytes, int msg_flags, uint32_t want,
                  const int* fds, int nfds);

// The pid of the process `pidfd` refers to, if it is a pidfd (PIDFD_GET_INFO, Linux 6.13)
// of a child of this process that has not been reaped (waitid(P_PIDFD) accepts it); otherwise an error saying which.
absl::StatusOr<pid_t> ChildOfPidfd(int pidfd);

// The pid of the process `pidfd` refers to, if it is a worker of the fork server
// `server_pid` (`server_pidfd` its pidfd): an unreaped child of this process (ChildOfPidfd)
// in the server's session, not the server itself, while the server is unreaped (see the
// file comment); otherwise an error saying which.
absl::StatusOr<pid_t> ServerChildOfPidfd(int pidfd, int server_pidfd, pid_t server_pid);

// Tests only: fork servers started while `pid` is > 0 send a pidfd of `pid` instead of
// their worker's with every success reply (`premade_only`: only with a pre-made worker's
// hand-off), as a lying server could (the broker must refuse it and never signal or reap
// `pid`; the worker the server did make is ended as unreported).
void SetForkServerPidfdLieForTesting(pid_t pid, bool premade_only);

// Tests only: fork servers started while `stop` is set stop themselves (SIGSTOP) right
// after each fresh worker's clone3, before replying (a server killed there leaves a worker
// the broker never heard of).
void SetForkServerStopAfterCloneForTesting(bool stop);

// Tests only: the hello deadline (kForkServerHelloDeadline) of servers started from now on;
// InfiniteDuration (or zero) restores the default.
void SetForkServerHelloDeadlineForTesting(absl::Duration d);

// Tests only: the reply wait (kForkServerReplyWait) of servers started from now on;
// InfiniteDuration (or zero) restores the default.
void SetForkServerReplyWaitForTesting(absl::Duration d);

// Tests only: the broker sleeps `d` after it has received a server's reply and before it
// checks it (a loaded machine's delay, made certain), for servers started from now on.
void SetForkServerReplyCheckDelayForTesting(absl::Duration d);

// Tests only: called in the broker with the worker pid a server's reply names (as the
// server wrote it), after the reply is received and before it is checked; nullptr: none.
void SetForkServerReplyCheckHookForTesting(void (*hook)(pid_t worker));

// Tests only: called in the broker with the pid of a fork server it has just forked, before
// it opens the server's pidfd (as SetForkChildHookForTesting for forked workers); nullptr:
// none.
void SetForkServerForkHookForTesting(void (*hook)(pid_t));

// Tests only: fork servers started while `fail` is set refuse to start right after their
// gate (a ready message with an error; then they exit), as a failed start-up probe would.
void SetForkServerFailStartForTesting(bool fail);

// Tests only: the file whose presence StartForkServer checks for the kernel's children
// lists (CONFIG_PROC_CHILDREN; default "/proc/thread-self/children"); nullptr: the default.
// The string must outlive its use.
void SetForkServerChildrenProbeForTesting(const char* path);

// The broker's poll slice (milliseconds) while it waits for a reply with `left` to go:
// at most 1 s, at least 1 ms for any positive `left`, InfiniteDuration included (its
// milliseconds are INT64_MAX: an addition there overflowed into poll(0) and spun).
int ForkServerPollSliceMs(absl::Duration left);

// Tests only: while `err` is not 0, the broker's send of each request to a fork server
// fails with it (nothing is sent), as the kernel's ETOOMANYREFS or ENOBUFS would.
void SetForkServerSendErrorForTesting(int err);

// Tests only: replaces the broker's SIGKILL of a fork server or of its stray worker when
// it ends them (pidfd_send_signal; returns 0 or -1 with errno set), as for a process that
// cannot be killed or signalled; nullptr: the real one.
void SetForkServerEndSignalForTesting(int (*send)(int pidfd, int sig));

// Whether fork servers started from now on make each worker ahead of its request (README
// "Spawn, round 5"; default on). Off: every worker is cloned when it is asked for.
void SetForkServerPremade(bool on);

// Checks one reply to request `seq` from the server `server_pid` (`server_pidfd` its
// pidfd; the worker must be the server's: ServerChildOfPidfd): `bytes` and `msg_flags`
// as recvmsg returned them, `fds` what came with it; `registered` says whether a pid is a
// worker the broker has already registered (refused: that worker is left alone). Returns the worker's pidfd (taken from
// `fds`) and sets *pid; an error says what was wrong (and leaves `fds` to the caller, who
// must make sure no child in it outlives the refusal). A reply whose err is set and that
// carries no fd is the server's honest failure: Unknown error with its errno and step, and
// *server_fault stays false; every other failure sets *server_fault.
absl::StatusOr<UniqueFd> CheckForkServerReply(const ForkServerReply& reply, size_t bytes,
                                              int msg_flags, std::vector<UniqueFd>* fds,
                                              uint64_t seq, pid_t server_pid,
                                              int server_pidfd,
                                              const std::function<bool(pid_t)>& registered,
                                              pid_t* pid, bool* server_fault);

}  // namespace vow

#endif  // VOW_BROKER_FORK_SERVER_H_
