// The fork server (README "Spawn, round 3"): a single-threaded copy of the broker, forked
// once per WorkerPool, that makes the pool's workers with clone3(CLONE_PARENT |
// CLONE_PIDFD). The server side runs in that copy (no worker code, no worker bytes: its
// only input is the broker's socket); the broker side checks every reply as hostile
// (broker/fork_server.h).
//
// Why clone3(CLONE_PARENT) and not the server's fork(): the worker stays the broker's own
// child, so everything the broker does for a forked worker holds unchanged: the parent
// check in LockDown (getppid() == the broker), PR_SET_PDEATHSIG (the parent is the
// thread that forked the server), waitid(P_PIDFD) and the exit status from the kernel;
// the server never reports a status the broker would have to believe. glibc's fork() takes
// no CLONE_PARENT, so the child is made by the raw syscall and what glibc's fork would
// have fixed in it is fixed here, each from a fact checked at start-up (ServerMain):
//  - the thread id glibc caches in the thread descriptor (used by raise/abort,
//    pthread_kill, recursive and error-checking mutexes): CLONE_CHILD_SETTID writes the
//    child's tid there, at an offset found by a probe (a glibc fork child of the server
//    must hold its gettid() there and the server its own, at exactly one offset);
//  - the robust-futex list, which the kernel does not copy: the child registers the
//    server's list head again (get_robust_list in the server, set_robust_list in the
//    child), as glibc's fork does;
//  - CLONE_CHILD_CLEARTID on the same word, as glibc's fork sets it.
// What is not done: pthread_atfork child handlers do not run in the worker (the server
// itself is a glibc fork(), so they ran once, in the server). rseq: the server unregisters
// its area at start (ServerMain), so its workers have none. The server is single-threaded and idle in recvmsg when it clones, so no lock
// of malloc or stdio can be held in the child.
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "base/spawn_trace.h"
#include "base/status_macros.h"
#include "base/raw_syscall.h"
#include "base/syscall.h"
#include "broker/broker_internal.h"
#include "broker/fork_server.h"
#include "worker/client.h"
#include "worker/lockdown.h"

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace vow {

namespace {

// PIDFD_GET_INFO (Linux 6.13; Debian 12's headers predate it).
struct PidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
  uint32_t coredump_mask;
  uint32_t spare;
};
constexpr uint64_t kPidfdInfoPid = 1;
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
// pidfs (Linux 6.9; every pidfd is on it): checked before the ioctl, so the broker never
// issues an ioctl on an fd of another kind (a device's driver would interpret the number).
constexpr long kPidfsMagic = 0x50494446;

// How far into the thread descriptor the probe looks for the cached tid (glibc 2.36
// x86-64 keeps it at 720 of a ~2.3 KiB struct pthread).
constexpr size_t kTidScanBytes = 1024;
constexpr int kMaxProbeHits = 64;
constexpr size_t kProgramPage = 4096;  // the program copy's alignment (State::program)

}  // namespace

namespace {
// Test hooks; a server reads its copy (made at its fork), so each holds for the servers
// started while it is set.
std::atomic<pid_t> g_pidfd_lie{0};            // SetForkServerPidfdLieForTesting
std::atomic<bool> g_pidfd_lie_premade_only{false};
std::atomic<bool> g_stop_after_clone{false};  // SetForkServerStopAfterCloneForTesting
std::atomic<int64_t> g_hello_deadline_ms{0};  // SetForkServerHelloDeadlineForTesting
std::atomic<int64_t> g_reply_wait_ms{0};      // SetForkServerReplyWaitForTesting
std::atomic<int64_t> g_reply_check_delay_ms{0};  // SetForkServerReplyCheckDelayForTesting
std::atomic<void (*)(pid_t)> g_server_fork_hook{nullptr};  // SetForkServerForkHookForTesting
std::atomic<bool> g_fail_start{false};        // SetForkServerFailStartForTesting
std::atomic<const char*> g_children_probe{nullptr};  // SetForkServerChildrenProbeForTesting
std::atomic<int (*)(int, int)> g_end_signal{nullptr};  // SetForkServerEndSignalForTesting
std::atomic<int> g_send_error{0};  // SetForkServerSendErrorForTesting
std::atomic<void (*)(pid_t)> g_reply_check_hook{nullptr};  // SetForkServerReplyCheckHookForTesting
}  // namespace

void SetForkServerPidfdLieForTesting(pid_t pid, bool premade_only) {
  g_pidfd_lie.store(pid);
  g_pidfd_lie_premade_only.store(premade_only);
}
void SetForkServerStopAfterCloneForTesting(bool stop) { g_stop_after_clone.store(stop); }
void SetForkServerHelloDeadlineForTesting(absl::Duration d) {
  g_hello_deadline_ms.store(d == absl::InfiniteDuration() ? 0 : absl::ToInt64Milliseconds(d));
}
void SetForkServerReplyWaitForTesting(absl::Duration d) {
  g_reply_wait_ms.store(d == absl::InfiniteDuration() ? 0 : absl::ToInt64Milliseconds(d));
}
void SetForkServerReplyCheckDelayForTesting(absl::Duration d) {
  g_reply_check_delay_ms.store(d == absl::InfiniteDuration() ? 0
                                                            : absl::ToInt64Milliseconds(d));
}
void SetForkServerForkHookForTesting(void (*hook)(pid_t)) { g_server_fork_hook.store(hook); }
void SetForkServerFailStartForTesting(bool fail) { g_fail_start.store(fail); }
void SetForkServerChildrenProbeForTesting(const char* path) { g_children_probe.store(path); }
void SetForkServerReplyCheckHookForTesting(void (*hook)(pid_t worker)) {
  g_reply_check_hook.store(hook);
}
void SetForkServerSendErrorForTesting(int err) { g_send_error.store(err); }
void SetForkServerEndSignalForTesting(int (*send)(int pidfd, int sig)) {
  g_end_signal.store(send);
}

int ForkServerPollSliceMs(absl::Duration left) {
  // An infinite duration converts to INT64_MAX milliseconds: compare before adding.
  return left >= absl::Seconds(1) ? 1000
                                  : static_cast<int>(absl::ToInt64Milliseconds(left) + 1);
}

namespace {
std::atomic<bool> g_premade{true};
}  // namespace

void SetForkServerPremade(bool on) { g_premade.store(on); }

absl::StatusOr<pid_t> ChildOfPidfd(int pidfd) {
  struct statfs fs;
  if (fstatfs(pidfd, &fs) != 0) return ErrnoStatus(errno, "fork server: fstatfs of the reply's fd");
  if (static_cast<long>(fs.f_type) != kPidfsMagic) {
    return absl::PermissionDeniedError(absl::StrCat(
        "fork server: the reply's fd is not a pidfd (its file system is 0x",
        absl::Hex(static_cast<unsigned long>(fs.f_type)), ", not pidfs)"));
  }
  PidfdInfo info;
  memset(&info, 0, sizeof(info));
  info.mask = kPidfdInfoPid;
  if (ioctl(pidfd, kPidfdGetInfo, &info) != 0) {
    return ErrnoStatus(errno, "fork server: the fd is not a pidfd (PIDFD_GET_INFO)");
  }
  if ((info.mask & kPidfdInfoPid) == 0 || info.pid == 0) {
    return absl::PermissionDeniedError("fork server: PIDFD_GET_INFO gave no pid");
  }
  // The kernel's own answer to "is it my child": waitid refuses anyone else's (ECHILD).
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  if (waitid(P_PIDFD, static_cast<id_t>(pidfd), &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fork server: waitid on pid ", info.pid));
  }
  return static_cast<pid_t>(info.pid);
}

absl::StatusOr<pid_t> ServerChildOfPidfd(int pidfd, int server_pidfd, pid_t server_pid) {
  ASSIGN_OR_RETURN(pid_t child, ChildOfPidfd(pidfd));
  if (child == server_pid) {
    return absl::PermissionDeniedError("fork server: sent its own pidfd as a worker's");
  }
  const pid_t sid = getsid(child);
  siginfo_t si;
  // Still an unreaped child after getsid: `child` named this process when getsid ran (an
  // unreaped child's pid is not reused).
  memset(&si, 0, sizeof(si));
  if (waitid(P_PIDFD, static_cast<id_t>(pidfd), &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fork server: pid ", child, " was reaped meanwhile"));
  }
  // The server unreaped: its pid, the session's id, is still its own.
  memset(&si, 0, sizeof(si));
  if (waitid(P_PIDFD, static_cast<id_t>(server_pidfd), &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return ErrnoStatus(errno, "fork server: the server itself was reaped (its session id may "
                              "name another session)");
  }
  if (sid != server_pid) {
    return absl::PermissionDeniedError(
        absl::StrCat("fork server: pid ", child, " is not in the server's session (", sid,
                     ", not ", server_pid, "): not a process the server made"));
  }
  return child;
}

bool ForkServerRequestValid(const ForkServerRequest& req, size_t bytes, int msg_flags,
                            int nfds) {
  if (bytes != sizeof(req)) return false;
  if (req.magic != kForkServerMagic) return false;
  if (req.kind != kFsFresh && req.kind != kFsPremade) return false;
  if (req.reserved != 0) return false;
  if ((msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) return false;
  if ((req.fds & kFsChannel) == 0) return false;
  if ((req.fds & ~((1u << kForkServerMaxFds) - 1)) != 0) return false;
  // Each fd is taken by its bit: as many fds as bits, or an index would run past them.
  if (__builtin_popcount(req.fds) != nfds) return false;
  return true;
}

bool HandoffValid(const ForkServerHandoff& h, size_t bytes, int msg_flags, uint32_t want,
                  const int* fds, int nfds) {
  if (bytes != sizeof(h)) return false;
  if (h.magic != kForkServerMagic) return false;
  if (h.fds != want) return false;
  if ((msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) return false;
  if (__builtin_popcount(want) != nfds) return false;
  for (int i = 0; i < nfds; ++i) {
    if (fds[i] <= 3) return false;
  }
  return true;
}

absl::StatusOr<UniqueFd> CheckForkServerReply(const ForkServerReply& reply, size_t bytes,
                                              int msg_flags, std::vector<UniqueFd>* fds,
                                              uint64_t seq, pid_t server_pid,
                                              int server_pidfd,
                                              const std::function<bool(pid_t)>& registered,
                                              pid_t* pid, bool* server_fault) {
  *server_fault = true;
  if (bytes != sizeof(ForkServerReply)) {
    return absl::DataLossError(absl::StrCat("fork server: a reply of ", bytes, " bytes, not ",
                                            sizeof(ForkServerReply)));
  }
  if ((msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    return absl::DataLossError("fork server: a truncated reply (or too many fds)");
  }
  if (reply.magic != kForkServerMagic) return absl::DataLossError("fork server: bad magic");
  if (reply.seq != seq) {
    return absl::DataLossError(
        absl::StrCat("fork server: a reply to request ", reply.seq, ", expected ", seq));
  }
  if (reply.err != 0) {
    if (!fds->empty()) {
      return absl::DataLossError("fork server: a failure reply that carries fds");
    }
    *server_fault = false;
    char step[sizeof(reply.step) + 1];
    memcpy(step, reply.step, sizeof(reply.step));
    step[sizeof(reply.step)] = '\0';
    return ErrnoStatus(reply.err, absl::StrCat("fork server: ", step));
  }
  if (fds->size() != 1) {
    return absl::DataLossError(
        absl::StrCat("fork server: a success reply with ", fds->size(), " fds, not 1"));
  }
  ASSIGN_OR_RETURN(pid_t child, ServerChildOfPidfd((*fds)[0].get(), server_pidfd, server_pid));
  if (child != reply.pid) {
    return absl::PermissionDeniedError(absl::StrCat(
        "fork server: reply names pid ", reply.pid, " but its pidfd is pid ", child));
  }
  // A registered worker adopted twice would be reaped once and waited for forever.
  if (registered(child)) {
    return absl::PermissionDeniedError(
        absl::StrCat("fork server: pid ", child, " is a registered worker"));
  }
  *pid = child;
  UniqueFd out = std::move((*fds)[0]);
  fds->clear();
  return out;
}

// The fds a stray sweep (ForEachServerStray) holds at once: /proc/self/task and one
// thread's children list, then one pidfd at a time.
constexpr int kSweepFds = 2;

struct ForkServer::State {
  // Made in the broker before the fork; the server and every worker have their copies.
  std::shared_ptr<const PreparedPolicy> policy;
  std::shared_ptr<const BpfProgram> compiled;
  WorkerMain main;
  // Each worker patches its own copy (PatchSelfPid, PatchStatTrampoline): a copy-on-write
  // fault per page it writes, so the copy starts on a page of its own and a program of up to
  // 512 instructions is one page, not two (README "2026-12-05, spawn: where a worker's CPU
  // goes").
  struct FreeProgram {
    void operator()(sock_filter* p) const { free(p); }
  };
  std::unique_ptr<sock_filter[], FreeProgram> program;
  size_t program_len = 0;
  unsigned char hello[256];  // the framed hello every worker sends (LockdownSpec::hello)
  LayerSpec layers;
  LockdownSpec spec;
  int shared_root = -1;  // owned by `policy`
  int null_fd = -1;      // the server's /dev/null (LockdownSpec::null_fd); server only
  pid_t broker_pid = -1;
  // Found by the server at start-up (ServerMain); meaningful in the server only.
  size_t tid_offset = 0;
  void* robust_head = nullptr;
  size_t robust_len = 0;
  // The pre-made worker (README "Spawn, round 5"), server only: its pid, pidfd and the
  // server's end of its hand-off socket (-1: none), and how many died in a row before
  // their hand-off.
  bool premade = false;  // make them (set in the broker before the fork)
  pid_t premade_pid = -1;
  int premade_pidfd = -1;
  int premade_sock = -1;
  int premade_deaths = 0;
  // The broker's side.
  // Broker::Impl::IsWorkerPid, for EndStrays: used only while the broker is there
  // (`registry`: its Shutdown ends every listed server first).
  std::function<bool(pid_t)> is_worker;
  absl::Duration hello_deadline = kForkServerHelloDeadline;
  absl::Duration reply_wait = kForkServerReplyWait;
  absl::Duration reply_check_delay = absl::ZeroDuration();  // tests only
  // Made readable by EndForkServers (Shutdown) before it takes `mu`: a spawn waiting for a
  // reply (ReceiveReply, holding `mu`) stops waiting and ends the server, so Shutdown is
  // not held for the reply wait (review h58, L-1). Set at the start, never changed.
  UniqueFd interrupt;
  std::shared_ptr<ForkServerRegistry> registry;
  mutable absl::Mutex mu;
  // Held for the stray sweep (ForEachServerStray frees them for its own opens, then takes
  // them again): it can look when this process has no fd left (review h65, L5).
  UniqueFd sweep_fds[kSweepFds] ABSL_GUARDED_BY(mu);
  pid_t pid ABSL_GUARDED_BY(mu) = -1;
  UniqueFd pidfd ABSL_GUARDED_BY(mu);
  UniqueFd socket ABSL_GUARDED_BY(mu);
  uint64_t seq ABSL_GUARDED_BY(mu) = 0;
  std::string failure ABSL_GUARDED_BY(mu);
  bool ask_premade ABSL_GUARDED_BY(mu) = false;  // send kFsPremade requests
  uint64_t premade_spawns ABSL_GUARDED_BY(mu) = 0;
  uint64_t fresh_spawns ABSL_GUARDED_BY(mu) = 0;
};

namespace {

// ---- The server (a fork of the broker; single-threaded; touches no lock of the broker).

void SetStep(ForkServerReply* reply, int err, const char* step) {
  reply->err = err;
  strncpy(reply->step, step, sizeof(reply->step) - 1);
}

// One datagram of `len` bytes with `nfds` fds (SCM_RIGHTS) on `sock`; true if all of it
// went. Raw syscalls only: the server and the broker both use it.
bool SendWithFds(int sock, const void* data, size_t len, const int* fds, int nfds,
                 int flags) {
  struct iovec iov = {const_cast<void*>(data), len};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(kForkServerMaxFds * sizeof(int))];
  if (nfds < 0 || nfds > kForkServerMaxFds) return false;
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  }
  for (;;) {
    if (sendmsg(sock, &msg, flags | MSG_NOSIGNAL) == static_cast<ssize_t>(len)) return true;
    if (errno != EINTR) return false;
  }
}

// The fds that came with a received message, at most `max` of them, into `out`; returns
// how many (any beyond `max` are closed).
int ReceivedFds(struct msghdr& msg, int* out, int max) {
  int n = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (n < max) {
        out[n++] = fd;
      } else {
        close(fd);
      }
    }
  }
  return n;
}

bool SendReply(int sock, const ForkServerReply& reply, int fd) {
  return SendWithFds(sock, &reply, sizeof(reply), &fd, fd >= 0 ? 1 : 0, 0);
}

// Closes every fd from 3 up except `a`, `b` and `c` (-1: none).
void CloseAllExcept(int a, int b, int c) {
  int keep[3] = {a, b, c};
  std::sort(keep, keep + 3);
  unsigned next = 3;
  for (int fd : keep) {
    if (fd < 3) continue;
    if (static_cast<unsigned>(fd) > next) syscall(SYS_close_range, next, fd - 1, 0);
    next = static_cast<unsigned>(fd) + 1;
  }
  syscall(SYS_close_range, next, ~0u, 0);
}

// Finds where glibc caches this thread's tid in its descriptor: the one offset (below
// kTidScanBytes, 4-aligned) that holds the child's gettid() in a glibc fork() child and
// this thread's gettid() here. 0 and *offset, or -errno (ENOENT: none, ENOTUNIQ: several).
int ProbeTidOffset(size_t* offset) {
  const unsigned char* self = reinterpret_cast<const unsigned char*>(pthread_self());
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -errno;
  const pid_t me = gettid();
  const pid_t child = fork();
  if (child < 0) return -errno;
  if (child == 0) {
    const pid_t t = gettid();
    uint16_t hits[kMaxProbeHits];
    int32_t n = 0;
    for (size_t off = 0; off + sizeof(pid_t) <= kTidScanBytes && n < kMaxProbeHits;
         off += sizeof(pid_t)) {
      pid_t v;
      memcpy(&v, self + off, sizeof(v));
      if (v == t) hits[n++] = static_cast<uint16_t>(off);
    }
    const bool ok = write(p[1], &n, sizeof(n)) == sizeof(n) &&
                    write(p[1], hits, n * sizeof(hits[0])) ==
                        static_cast<ssize_t>(n * sizeof(hits[0]));
    _exit(ok ? 0 : 1);
  }
  close(p[1]);
  int32_t n = -1;
  uint16_t hits[kMaxProbeHits];
  const bool got = read(p[0], &n, sizeof(n)) == sizeof(n) && n >= 0 && n <= kMaxProbeHits &&
                   read(p[0], hits, n * sizeof(hits[0])) ==
                       static_cast<ssize_t>(n * sizeof(hits[0]));
  close(p[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -EIO;
  int found = 0;
  for (int32_t i = 0; i < n; ++i) {
    pid_t v;
    memcpy(&v, self + hits[i], sizeof(v));
    if (v == me) {
      *offset = hits[i];
      ++found;
    }
  }
  if (found == 0) return -ENOENT;
  if (found > 1) return -ENOTUNIQ;
  return 0;
}

// What every worker the server clones does first: registers the robust-futex list again
// (the kernel does not copy it; glibc's fork does the same) and takes its LockdownSpec
// from the server's.
LockdownSpec ServerWorkerSpec(ForkServer::State& s) {
  if (syscall(SYS_set_robust_list, s.robust_head, s.robust_len) != 0) {
    _exit(kLockdownFailedExit);
  }
  LockdownSpec spec = s.spec;
  spec.program = s.program.get();
  spec.hello = s.hello;
  spec.null_fd = s.null_fd;
  return spec;
}

// What a server-made worker does between its hello and its function (review h49, M1):
// waits for the broker's first message on its channel, which the broker sends only once it
// has checked the server's reply that names this worker (CheckForkServerReply: in the
// server's session, among others; SpawnFromOnce), so no code of the worker's own runs
// before that check: a worker with the `proc` promise cannot leave the server's session
// (setsid) before the broker has seen it there, which made the broker refuse the reply, end
// the server and leave the worker running unregistered. The message is a hello answer (id
// 0, which the Client skips as stale; the serving loop's own answer to the hello comes
// later and is skipped too); sent by the spawning thread right after its check, it is
// usually queued before the worker's lock-down ends, so the wait costs no round trip
// through the serving loop. Under the filter (stdio: recvmsg); inline, as the lock-down's
// late calls. EOF (the broker refused the reply, or is gone) or an error: the worker exits,
// its function never run.
void AwaitBrokerAcceptance() {
  alignas(8) unsigned char answer[256];
  struct iovec iov = {answer, sizeof(answer)};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  long n;
  while ((n = RawSyscall(SYS_recvmsg, kWorkerChannelFd, reinterpret_cast<long>(&msg), 0)) ==
         -EINTR) {
  }
  if (n <= 0) _exit(kLockdownFailedExit);
  VOW_TRACE(kTrWorkerAccepted);
}

// The worker, made by the server's clone3. Async-signal-safe until LockDown has returned.
[[noreturn]] void WorkerChild(ForkServer::State& s, const int sources[kChildFdSources]) {
  VOW_TRACE(kTrWorkerStart);
  LockdownSpec spec = ServerWorkerSpec(s);
  LayerSpec layers = s.layers;
  LockDownForkedWorker(spec, layers, sources);
  AwaitBrokerAcceptance();
  RunWorkerFunction(s.main);
}

// The pre-made worker: clones like WorkerChild, with the server's end of a hand-off
// socket where the channel goes (fd 3) and no stdio of its own yet, locks down completely
// (the filter attached, the listener kept), then waits on fd 3 for the hand-off: the
// stdio and channel fds, placed with dup3 (stdio allows dup3, recvmsg and close: nothing
// was widened for this); the channel's dup3 onto 3 closes the hand-off socket, so nothing of
// the server's is left; then the hello, then the worker function. If the server goes (its
// end closes) before a hand-off, the recvmsg reads EOF and the worker exits.
[[noreturn]] void PremadeWorkerChild(ForkServer::State& s,
                                     const int sources[kChildFdSources]) {
  LockdownSpec spec = ServerWorkerSpec(s);
  int listener = -1;
  spec.listener_out = &listener;
  LayerSpec layers = s.layers;
  LockDownForkedWorker(spec, layers, sources);
  // Locked. From here every call is under the filter (stdio).
  // Before the hand-off fd 3 is the hand-off socket, not the channel: the SIGSYS and
  // stat-trap handlers write to fd 3, so only recvmsg, dup3, close, write (ChildError, to
  // fd 2) and exit may run until the channel's dup3 onto 3 (review L7): any call that
  // could trap would send its report to the server's socket. Keep it so.
  ForkServerHandoff h;
  h.magic = 0;  // the magic checked below is the one received (review L5)
  h.fds = 0;
  struct iovec iov = {&h, sizeof(h)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  while ((n = recvmsg(kWorkerChannelFd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0) _exit(kLockdownFailedExit);  // the server went
  VOW_TRACE(kTrWorkerHandoffReceived);
  int fds[4];
  const int nfds = ReceivedFds(msg, fds, 4);
  uint32_t want = kFsChannel;
  for (int i = 0; i < 3; ++i) {
    if (spec.keep_stdio[i]) want |= 1u << i;
  }
  if (!HandoffValid(h, static_cast<size_t>(n), msg.msg_flags, want, fds, nfds)) {
    ChildError("pre-made worker: ", "a malformed hand-off", EPROTO);
    _exit(kLockdownFailedExit);
  }
  int next = 0;
  for (int target = 0; target < 4; ++target) {
    if ((want & (1u << target)) == 0) continue;
    // Every received fd is above 3 (HandoffValid): the dup3 never closes one not yet placed.
    if (dup3(fds[next++], target, 0) != target) {
      ChildError("pre-made worker: ", "dup3", errno);
      _exit(kLockdownFailedExit);
    }
  }
  for (int i = 0; i < nfds; ++i) close(fds[i]);
  VOW_TRACE(kTrWorkerHandoffPlaced);
  if (const int rc = LockDownHello(spec, listener); rc != 0) {
    ChildError("worker lock-down failed at ", "hello", -rc);
    _exit(kLockdownFailedExit);
  }
  AwaitBrokerAcceptance();
  RunWorkerFunction(s.main);
}

// Makes the next pre-made worker with the namespace fds `net` and `ipc` (-1: none). No
// worker on failure. It is born in the server's session: the broker finds it there if the
// server is ended before its hand-off (EndStrays).
void MakePremade(ForkServer::State& s, int net, int ipc) {
  if (!s.premade || s.premade_pid > 0 || s.premade_deaths >= kPremadeMaxDeaths) return;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return;
  // 0-2 are the server's /dev/null until the hand-off, whatever the server's own 0-2 are
  // (its 2 is the broker's, possibly closed): it holds no fd of the broker's, and the fds it
  // receives land above 3 (review fix L1).
  int sources[kChildFdSources] = {s.null_fd, s.null_fd, s.null_fd, sv[1], s.shared_root,
                                  net, ipc};
  int pidfd = -1;
  struct clone_args args;
  memset(&args, 0, sizeof(args));
  args.flags = CLONE_PARENT | CLONE_PIDFD | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
  args.pidfd = reinterpret_cast<uintptr_t>(&pidfd);
  args.child_tid = reinterpret_cast<uintptr_t>(
      reinterpret_cast<unsigned char*>(pthread_self()) + s.tid_offset);
  const long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0) PremadeWorkerChild(s, sources);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return;
  }
  VOW_TRACE(kTrServerPremade);
  s.premade_pid = static_cast<pid_t>(pid);
  s.premade_pidfd = pidfd;
  s.premade_sock = sv[0];
}

// Forgets the pre-made worker.
void DropPremade(ForkServer::State& s) {
  if (s.premade_pidfd >= 0) close(s.premade_pidfd);
  if (s.premade_sock >= 0) close(s.premade_sock);
  s.premade_pid = -1;
  s.premade_pidfd = -1;
  s.premade_sock = -1;
}

// Test hook (SetForkServerPidfdLieForTesting): a success reply names another process.
void LieForTesting(ForkServerReply* reply, int* pidfd, bool premade) {
  const pid_t lie = g_pidfd_lie.load();
  if (lie <= 0 || *pidfd < 0 || (g_pidfd_lie_premade_only.load() && !premade)) return;
  close(*pidfd);
  *pidfd = static_cast<int>(syscall(SYS_pidfd_open, lie, 0));
  reply->pid = lie;
}

// A kFsPremade request (already checked): hands the fds to the pre-made worker and answers
// with its pidfd, or answers that there is none; then makes the next one with the
// request's namespace pair.
void ServePremade(ForkServer::State& s, int sock, const ForkServerRequest& req,
                  const int* fds) {
  ForkServerReply reply;
  reply.seq = req.seq;
  int handoff[4];
  int nhandoff = 0;
  int ns[2] = {-1, -1};
  int next = 0;
  for (int bit = 0; bit < kForkServerMaxFds; ++bit) {
    if ((req.fds & (1u << bit)) == 0) continue;
    if (bit < 4) {
      handoff[nhandoff++] = fds[next++];
    } else {
      ns[bit - 4] = fds[next++];
    }
  }
  int pidfd = -1;
  if (s.premade_pid <= 0) {
    if (s.premade && s.premade_deaths < kPremadeMaxDeaths) {
      SetStep(&reply, kPremadeNone, "no pre-made worker");
    } else {
      SetStep(&reply, kPremadeStopped, "pre-made workers stopped");
    }
  } else {
    struct pollfd p = {s.premade_pidfd, POLLIN, 0};
    bool alive = poll(&p, 1, 0) == 0;
    if (alive) {
      ForkServerHandoff h;
      h.fds = req.fds & (kFsStdin | kFsStdout | kFsStderr | kFsChannel);
      alive = SendWithFds(s.premade_sock, &h, sizeof(h), handoff, nhandoff, MSG_DONTWAIT);
    }
    VOW_TRACE(kTrServerHandedOff);
    if (alive) {
      reply.pid = s.premade_pid;
      pidfd = s.premade_pidfd;
      s.premade_pidfd = -1;
      s.premade_deaths = 0;
    } else {
      // Died before its hand-off, or it cannot take it: ended here, through the server's
      // own pidfd, and waited for (its pidfd reads at its exit), so that the broker, told
      // by reply.pid != 0 that one is left, only reaps exited children of the server's
      // (EndStrays without kill) and signals none (review fix M2); it is the broker's
      // child. This spawn is made afresh.
      syscall(SYS_pidfd_send_signal, s.premade_pidfd, SIGKILL, nullptr, 0);
      // At most 1 s (it was 5 s), well within the broker's wait for this reply
      // (kForkServerReplyWait, 10 s: past it the broker ends the server): a SIGKILLed
      // worker's exit takes milliseconds; one not gone by then stays a stray of the server
      // (not reaped here: the broker reaps only exited ones; swept at the server's end).
      struct pollfd dead = {s.premade_pidfd, POLLIN, 0};
      while (poll(&dead, 1, 1000) < 0 && errno == EINTR) {
      }
      reply.pid = s.premade_pid;
      ++s.premade_deaths;
      SetStep(&reply, s.premade_deaths < kPremadeMaxDeaths ? kPremadeNone : kPremadeStopped,
              "the pre-made worker died");
    }
    DropPremade(s);
  }
  for (int i = 0; i < nhandoff; ++i) close(handoff[i]);
  LieForTesting(&reply, &pidfd, true);
  SendReply(sock, reply, pidfd);
  VOW_TRACE(kTrServerReplied);
  if (pidfd >= 0) close(pidfd);
  MakePremade(s, ns[0], ns[1]);
  if (ns[0] >= 0) close(ns[0]);
  if (ns[1] >= 0) close(ns[1]);
}

// One request: makes the worker from the received fds and answers.
void ServeOne(ForkServer::State& s, int sock, const ForkServerRequest& req, ssize_t n,
              int msg_flags, int* fds, int nfds) {
  VOW_TRACE(kTrServerReceived);
  ForkServerReply reply;
  reply.seq = req.seq;
  int pidfd = -1;
  if (n < 0 || !ForkServerRequestValid(req, static_cast<size_t>(n), msg_flags, nfds)) {
    SetStep(&reply, EINVAL, "malformed request");
  } else if (req.kind == kFsPremade) {
    ServePremade(s, sock, req, fds);
    return;
  } else {
    // PlaceChildFds order: stdin, stdout, stderr, channel, shared root, net, ipc.
    int sources[kChildFdSources] = {-1, -1, -1, -1, s.shared_root, -1, -1};
    const int slot[kForkServerMaxFds] = {0, 1, 2, 3, 5, 6};
    int next = 0;
    for (int bit = 0; bit < kForkServerMaxFds; ++bit) {
      if ((req.fds & (1u << bit)) != 0) sources[slot[bit]] = fds[next++];
    }
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_PARENT | CLONE_PIDFD | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    args.pidfd = reinterpret_cast<uintptr_t>(&pidfd);
    // The worker is born in the server's session: a server killed before its reply leaves
    // it where the broker finds it (EndStrays), with no pid written anywhere.
    args.child_tid = reinterpret_cast<uintptr_t>(
        reinterpret_cast<unsigned char*>(pthread_self()) + s.tid_offset);
    // exit_signal stays 0: with CLONE_PARENT the kernel takes the server's (SIGCHLD).
    const long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0) WorkerChild(s, sources);
    VOW_TRACE(kTrServerCloned);
    if (pid < 0) {
      SetStep(&reply, errno, "clone3");
    } else {
      reply.pid = static_cast<int32_t>(pid);
      if (g_stop_after_clone.load()) raise(SIGSTOP);
    }
  }
  for (int i = 0; i < nfds; ++i) close(fds[i]);
  LieForTesting(&reply, &pidfd, false);
  // A broker gone meanwhile: the next recvmsg sees it.
  SendReply(sock, reply, pidfd);
  VOW_TRACE(kTrServerReplied);
  if (pidfd >= 0) close(pidfd);
}

[[noreturn]] void ServerMain(ForkServer::State& s, int sock, int gate) {
  // Dies with the thread that forked it, and refuses to start if that already happened.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != s.broker_pid) _exit(1);
  // The gate (as a forked worker's, Broker::Impl::SpawnCommon): nothing more, and no exit of
  // its own, until the broker holds its pidfd; otherwise a server that ends at once (a
  // failed start) could be reaped by the embedder (waitpid(-1), SIGCHLD ignored) before
  // the broker's pidfd_open, and its pid given to another process, whose pidfd the broker
  // would then hold and signal. EOF (the broker failed to open the pidfd): it exits.
  {
    char go = 0;
    ssize_t got;
    while ((got = read(gate, &go, 1)) < 0 && errno == EINTR) {
    }
    if (got != 1) _exit(1);
    close(gate);
  }
  // A session of its own: every process it clones is born in it and none can be moved in,
  // which is how the broker tells the server's workers from its other children (the file
  // comment of fork_server.h). No controlling terminal: its workers get no terminal signal
  // (they die with the broker: PR_SET_PDEATHSIG).
  if (setsid() != getpid()) _exit(1);
  // The embedder's signal handlers back to the default before anything is unblocked (as
  // ExecChildMain does): a `proc` worker knows the server's pid (getsid) and may signal it,
  // and a handler of the embedder's would then run inside the server at a time of the
  // worker's choosing. Ignored signals stay ignored (no code runs for them).
  // Every signal has been blocked since the fork (StartForkServer; review h62, L3: before,
  // one that came before this reset ran the embedder's handler here). One that came
  // meanwhile is dropped, not delivered with the default action: it was meant for a copy
  // of the embedder, and the server is ended by its socket's EOF and PR_SET_PDEATHSIG.
  if (!ResetCaughtSignals()) _exit(1);
  {
    sigset_t all;
    sigfillset(&all);
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&all, nullptr, &zero) > 0) {
    }
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Nothing of the broker's but its socket and the shared root; 0 and 1 are /dev/null, 2
  // stays for its workers' lock-down errors before their own stderr is in place.
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0 || dup2(null_fd, 0) != 0 || dup2(null_fd, 1) != 1) _exit(1);
  // One more, above the fds PlaceChildFds places, for the workers' stdio (LockdownSpec::
  // null_fd): no open of /dev/null per worker.
  s.null_fd = fcntl(null_fd, F_DUPFD_CLOEXEC, 10);
  if (s.null_fd < 0) _exit(1);
  if (null_fd > 2) close(null_fd);
  CloseAllExcept(sock, s.shared_root, s.null_fd);
  // No rseq area for the server, so none for its workers: the kernel writes a process's
  // rseq area (the cpu id) on its first return to user space, and in a fresh worker that
  // write is a copy-on-write fault of a TLS page that nothing else of its lock-down writes
  // (~80 us of CPU per worker on this VM: README "2026-12-05, spawn: where a worker's CPU
  // goes"). glibc then does what it does on a kernel without rseq (sched_getcpu: the vDSO);
  // threads a worker starts register their own. Best effort: a failure changes nothing.
  // The kernel wants the length it was registered with: glibc 2.35-2.39 registers 32 bytes
  // and reports the feature size (20) in __rseq_size; a later glibc may register that.
  if (__rseq_size > 0) {
    void* area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
    if (syscall(SYS_rseq, area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) != 0 && __rseq_size != 32) {
      (void)syscall(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
    }
  }

  ForkServerReply ready;
  ready.pid = getpid();
  if (g_fail_start.load()) {
    SetStep(&ready, ECANCELED, "start refused (test)");
  } else if (const int rc = ProbeTidOffset(&s.tid_offset); rc != 0) {
    SetStep(&ready, -rc, "probe of glibc's cached tid");
  } else if (syscall(SYS_get_robust_list, 0, &s.robust_head, &s.robust_len) != 0 ||
             s.robust_head == nullptr) {
    SetStep(&ready, errno != 0 ? errno : ENOENT, "get_robust_list");
  } else if (s.spec.memory_bytes != 0) {
    // As for a forked worker (SpawnCommon): the limit is on top of what it starts with.
    absl::StatusOr<uint64_t> inherited = AddressSpaceBytes();
    if (inherited.ok()) {
      s.spec.memory_bytes += *inherited;
    } else {
      SetStep(&ready, EIO, "address space size");
    }
  }
  if (!SendReply(sock, ready, -1) || ready.err != 0) _exit(0);

  for (;;) {
    ForkServerRequest req;
    struct iovec iov = {&req, sizeof(req)};
    alignas(struct cmsghdr) char control[CMSG_SPACE(kForkServerMaxFds * sizeof(int))];
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(0);  // the broker closed its end
    int fds[kForkServerMaxFds * 2];
    const int nfds = ReceivedFds(msg, fds, kForkServerMaxFds * 2);
    ServeOne(s, sock, req, n, msg.msg_flags, fds, nfds);
  }
}

// ---- The broker's side.

// Waits (until `deadline`; a deadline in the past: only what is queued) for one reply;
// fills what recvmsg returned. A dead server's socket reads as closed (or reset), once
// what it sent has been read.
absl::Status ReceiveReply(int sock, int interrupt, absl::Time deadline,
                          ForkServerReply* reply, size_t* bytes, int* flags,
                          std::vector<UniqueFd>* fds) {
  for (;;) {
    struct iovec iov = {reply, sizeof(*reply)};
    alignas(struct cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n >= 0) {
      int got[4];
      const int k = ReceivedFds(msg, got, 4);
      for (int i = 0; i < k; ++i) fds->emplace_back(got[i]);
      if (n == 0) return absl::UnavailableError("fork server: it closed its socket (died)");
      *bytes = static_cast<size_t>(n);
      *flags = msg.msg_flags;
      return absl::OkStatus();
    }
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) {
      return absl::UnavailableError("fork server: it reset its socket (died)");
    }
    if (errno != EAGAIN) return ErrnoStatus(errno, "fork server: recvmsg");
    const absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("fork server: no reply in time");
    }
    struct pollfd p[2] = {{sock, POLLIN, 0}, {interrupt, POLLIN, 0}};
    const int ms = ForkServerPollSliceMs(left);
    if (poll(p, 2, ms) < 0 && errno != EINTR) return ErrnoStatus(errno, "fork server: poll");
    if ((p[1].revents & POLLIN) != 0) {
      return absl::CancelledError("fork server: the broker is shutting down");
    }
    // POLLHUP: the next recvmsg reads what is left, then EOF.
  }
}

// Takes (again) the fds held for the next sweep (State::sweep_fds); one that cannot be
// opened (EMFILE: another thread took it meanwhile) is tried again after the next sweep.
void ReserveSweepFds(ForkServer::State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  for (UniqueFd& fd : s.sweep_fds) {
    if (!fd.valid()) fd.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
}

// ForEachServerStray's sweep, with its fds free (see there).
void SweepServerStrays(ForkServer::State& s, absl::FunctionRef<bool(pid_t, int)> visit)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  // A sweep that cannot look (EMFILE, /proc unmounted since the server's start) leaves
  // the strays it would have found; that is said, never silent (review h58, L-5). A
  // thread that ended meanwhile (ENOENT) and a child that exited (ESRCH) are not failures.
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) {
    fprintf(stderr, "vow: fork server: cannot look for server %d's strays: /proc/self/task: %s\n",
            static_cast<int>(s.pid), strerror(errno));
    return;
  }
  std::vector<pid_t> pids;
  while (struct dirent* e = readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    const std::string path = absl::StrCat("/proc/self/task/", e->d_name, "/children");
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) {
        fprintf(stderr, "vow: fork server: cannot look for server %d's strays: %s: %s\n",
                static_cast<int>(s.pid), path.c_str(), strerror(errno));
      }
      continue;
    }
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
    close(fd);
    const char* p = text.c_str();
    while (*p != '\0') {
      char* end = nullptr;
      const long v = strtol(p, &end, 10);
      if (end == p) break;
      if (v > 0) pids.push_back(static_cast<pid_t>(v));
      p = end;
      while (*p == ' ' || *p == '\n') ++p;
    }
  }
  closedir(tasks);
  // One pidfd at a time: each stray is visited (ended) before the next is opened.
  for (pid_t pid : pids) {
    UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!fd.valid()) {
      if (errno != ESRCH) {
        fprintf(stderr, "vow: fork server: cannot look at child %d for server %d's strays: %s\n",
                static_cast<int>(pid), static_cast<int>(s.pid), strerror(errno));
      }
      continue;
    }
    absl::StatusOr<pid_t> child = ServerChildOfPidfd(fd.get(), s.pidfd.get(), s.pid);
    if (!child.ok() || s.is_worker(*child)) continue;
    if (!visit(*child, fd.get())) return;
  }
}

// Calls `visit` with each unregistered worker of the server `s` among this process's
// children (its pid and a pidfd, closed after the call) until it returns false: each pid
// of /proc/self/task/*/children (the kernel's list; a worker's parent is the thread that
// forked the server) is opened and visited only if it is the server's
// (ServerChildOfPidfd: in its session, while it is unreaped) and not a registered worker.
// No pid the server wrote is used. Caller holds s.mu; the broker must be there (is_worker).
// The fds the sweep needs are the server's, held since its start and freed here: it
// looks even when this process has no fd left (EMFILE), which is when a server is
// likeliest to be ended (review h65, L5). Another thread of this process opening fds
// meanwhile may take them; the sweep then cannot look, and says so.
void ForEachServerStray(ForkServer::State& s, absl::FunctionRef<bool(pid_t, int)> visit)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  if (!s.pidfd.valid() || !s.is_worker) return;
  for (UniqueFd& fd : s.sweep_fds) fd.reset();
  SweepServerStrays(s, visit);
  ReserveSweepFds(s);
}

// SIGKILLs the process of `pidfd` and waits until it has exited (not reaped), at most
// kEndWait: a SIGKILLed process exits by the kernel's doing, a stopped one included, but
// not while in an uninterruptible sleep (a FUSE request never answered), and one the
// broker may not signal (EPERM: a setuid exec) never does. Either is said on stderr and
// left (review h58, M-A: the wait was unbounded, under the server's lock and the
// registry's, and held Shutdown forever). Returns whether it has exited.
constexpr int kEndWaitMs = 2000;

bool KillAndAwaitExit(int pidfd, pid_t pid, const char* what) {
  int (*send)(int, int) = g_end_signal.load();
  const int rc = send != nullptr
                     ? send(pidfd, SIGKILL)
                     : static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0));
  const int err = rc == 0 ? 0 : errno;
  // ESRCH: it has exited already (a zombie): the poll below sees it at once.
  // The bound is a deadline: a signal (EINTR) does not restart the wait in full (review
  // h62, L2: a signal every < 2 s held Shutdown forever).
  struct pollfd p = {pidfd, POLLIN, 0};
  int ready;
  const absl::Time deadline =
      MonotonicNow() + absl::Milliseconds(err == 0 || err == ESRCH ? kEndWaitMs : 0);
  for (;;) {
    const int64_t left_ms = std::max<int64_t>(
        0, absl::ToInt64Milliseconds(absl::Ceil(deadline - MonotonicNow(), absl::Milliseconds(1))));
    ready = poll(&p, 1, static_cast<int>(left_ms));
    if (ready >= 0 || errno != EINTR) break;
  }
  if (ready == 1 && (p.revents & POLLIN) != 0) return true;
  fprintf(stderr, "vow: fork server: %s %d not dead after SIGKILL (%s), left\n", what,
          static_cast<int>(pid), err == 0 ? "sent" : strerror(err));
  return false;
}

// Ends the server's unregistered workers (ForEachServerStray): with `kill_live`, each is killed
// through its pidfd and reaped (KillAndAwaitExit: bounded; one that does not die is left);
// without, only those that have already exited are reaped and none is signalled.
void EndStrays(ForkServer::State& s, bool kill_live) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  ForEachServerStray(s, [kill_live](pid_t pid, int fd) {
    siginfo_t si;
    if (kill_live) {
      if (!KillAndAwaitExit(fd, pid, "stray worker")) return true;
    } else {
      memset(&si, 0, sizeof(si));
      if (waitid(P_PIDFD, static_cast<id_t>(fd), &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
          si.si_pid != pid) {
        return true;
      }
    }
    while (waitid(P_PIDFD, static_cast<id_t>(fd), &si, WEXITED) != 0 && errno == EINTR) {
    }
    return true;
  });
}

// Kills the server, then (with `strays`: the broker is there) ends its unregistered
// workers while it is dead but not yet reaped (its pid still names its session), then
// reaps it. Its socket is closed first: the kernel drops whatever is queued in it (any
// worker named there is a stray, found by the sweep). Not read until empty, as before
// (review h49, L5): a process that holds the server's end (one a compromised server
// forked) could keep it from ever being empty, under the server's lock.
// A server that does not die (KillAndAwaitExit) is left unreaped; its strays are still
// swept (alive, its pid still names its session).
void EndServerProcess(ForkServer::State& s, bool strays) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  const bool dead = KillAndAwaitExit(s.pidfd.get(), s.pid, "server");
  s.socket.reset();
  if (strays) EndStrays(s, /*kill_live=*/true);
  if (!dead) return;
  siginfo_t si;
  while (waitid(P_PIDFD, static_cast<id_t>(s.pidfd.get()), &si, WEXITED) != 0 &&
         errno == EINTR) {
  }
}

}  // namespace

ForkServer::ForkServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

ForkServer::~ForkServer() {
  // Unlisted first; a broker gone (or shut down) already ended this server (pid -1), and
  // the broker is not used once `gone` is set (review fix M1: it was, after the free).
  std::shared_ptr<ForkServerRegistry> registry = state_->registry;
  std::optional<absl::MutexLock> listed;
  if (registry != nullptr) {
    listed.emplace(&registry->mu);
    auto& v = registry->servers;
    v.erase(std::remove(v.begin(), v.end(), state_.get()), v.end());
  }
  absl::MutexLock lock(&state_->mu);
  if (state_->pid < 0) return;
  state_->socket.reset();  // the server exits on EOF; SIGKILL in case it is stuck
  // Its pre-made worker, if any, is this process's child: ended and reaped, never left as
  // a zombie or a waiting process.
  EndServerProcess(*state_, registry != nullptr && !registry->gone);
  state_->pidfd.reset();
  state_->pid = -1;
}

void Broker::Impl::EndForkServers() {
  absl::MutexLock lock(&fork_servers_->mu);
  fork_servers_->gone = true;
  // First, without their locks: a spawn waiting for a reply stops (State::interrupt).
  for (ForkServer::State* s : fork_servers_->servers) {
    const uint64_t one = 1;
    (void)!write(s->interrupt.get(), &one, sizeof(one));
  }
  for (ForkServer::State* s : fork_servers_->servers) {
    absl::MutexLock server_lock(&s->mu);
    EndServer(*s, "the broker shut down");
  }
  fork_servers_->servers.clear();
}

pid_t ForkServer::pid() const {
  absl::MutexLock lock(&state_->mu);
  return state_->pid;
}

std::string ForkServer::failure() const {
  absl::MutexLock lock(&state_->mu);
  return state_->failure;
}

uint64_t ForkServer::premade_spawns() const {
  absl::MutexLock lock(&state_->mu);
  return state_->premade_spawns;
}

uint64_t ForkServer::fresh_spawns() const {
  absl::MutexLock lock(&state_->mu);
  return state_->fresh_spawns;
}

pid_t ForkServer::premade_pid_for_testing() const {
  absl::MutexLock lock(&state_->mu);
  if (state_->pid < 0) return -1;
  // The server's one unregistered worker between spawns: its pre-made worker.
  pid_t premade = 0;
  ForEachServerStray(*state_, [&premade](pid_t pid, int) {
    premade = pid;
    return false;
  });
  return premade;
}

bool Broker::Impl::IsWorkerPid(pid_t pid) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, w] : workers_) {
    if (!w->reaped && w->pid == pid) return true;
  }
  return false;
}

// Ends the server (it no longer serves) and every unregistered worker it made.
void Broker::Impl::EndServer(ForkServer::State& s, const std::string& reason) {
  if (s.pid < 0) return;
  s.failure = reason;
  EndServerProcess(s, /*strays=*/true);
  AuditEntry entry;
  entry.pid = s.pid;
  entry.request = "fork server";
  entry.allowed = false;
  entry.reason = absl::StrCat("ended: ", reason);
  audit_->Record(std::move(entry));
  s.socket.reset();
  s.pidfd.reset();
  s.pid = -1;
}

absl::StatusOr<std::unique_ptr<ForkServer::State>> Broker::Impl::StartForkServer(
    std::shared_ptr<const PreparedPolicy> policy, WorkerMain main, const SpawnOptions& options) {
  if (policy == nullptr) return absl::InvalidArgumentError("no policy");
  if (policy->exec_narrowing != nullptr) {
    return absl::UnimplementedError("fork server: execpromises are for exec'd programs only");
  }
  if (policy->layers.pidns) {
    // Each worker must be pid 1 of a PID namespace of its own; the server's clone3 does not
    // make one, so such a pool spawns its workers the ordinary way (Spawn).
    return absl::UnimplementedError("fork server: layers +pidns are made by Spawn");
  }
  auto s = std::make_unique<ForkServer::State>();
  ASSIGN_OR_RETURN(s->compiled, ProgramFor(*filters_, policy->policy, false, true));
  {
    const size_t bytes = s->compiled->code.size() * sizeof(sock_filter);
    const size_t rounded = (bytes + kProgramPage - 1) / kProgramPage * kProgramPage;
    void* copy = rounded == 0 ? nullptr : aligned_alloc(kProgramPage, rounded);
    if (copy == nullptr) return absl::ResourceExhaustedError("fork server: program copy");
    memcpy(copy, s->compiled->code.data(), bytes);
    s->program.reset(static_cast<sock_filter*>(copy));
    s->program_len = s->compiled->code.size();
  }
  s->layers = policy->layers;
  ASSIGN_OR_RETURN(s->shared_root, SharedRootFor(*policy));
  s->broker_pid = getpid();
  LockdownSpec& spec = s->spec;
  spec.channel_fd = kWorkerChannelFd;
  spec.broker_pid = s->broker_pid;
  spec.program_len = s->program_len;
  spec.needs_listener = s->compiled->needs_listener();
  spec.trap_reporter = policy->policy.penalty == Penalty::kTrap;
  spec.max_open_fds = policy->policy.limits.max_open_fds;
  spec.cpu_seconds = policy->policy.limits.cpu_seconds;
  spec.memory_bytes = policy->policy.limits.memory_bytes;
  spec.file_bytes = policy->policy.limits.file_bytes;
  spec.keep_stdio[0] = options.stdin_fd >= 0;
  spec.keep_stdio[1] = options.stdout_fd >= 0;
  spec.keep_stdio[2] = options.stderr_fd >= 0;
  spec.hello_len = HelloBytes(spec.needs_listener, s->hello, sizeof(s->hello));
  s->is_worker = [this](pid_t pid) { return IsWorkerPid(pid); };
  if (const int64_t ms = g_hello_deadline_ms.load(); ms > 0) {
    s->hello_deadline = absl::Milliseconds(ms);
  }
  if (const int64_t ms = g_reply_wait_ms.load(); ms > 0) s->reply_wait = absl::Milliseconds(ms);
  s->reply_check_delay = absl::Milliseconds(g_reply_check_delay_ms.load());
  // A worker made ahead of its request (README "Spawn, round 5"): not when the policy's
  // fd limit is too low for the hand-off (it cannot be raised under the filter).
  // The hand-off runs under the filter: recvmsg, dup3 and close are stdio's (every policy
  // has stdio: ValidatePolicy; checked again, as a refused call there would wait forever
  // on a listener that nobody reads yet).
  s->premade = g_premade.load() && (spec.max_open_fds == 0 ||
                                    spec.max_open_fds >= kPremadeMinOpenFds);
  s->premade = s->premade && policy->policy.promises.contains(Promise::kStdio);
  {
    absl::MutexLock lock(&s->mu);
    s->ask_premade = s->premade;
  }
  if (spec.hello_len == 0) return absl::InternalError("fork server: the hello does not fit");
  s->main = std::move(main);
  s->policy = std::move(policy);
  {
    // Every reply is checked with PIDFD_GET_INFO: without it (Linux < 6.13) no server.
    UniqueFd self(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)));
    PidfdInfo info;
    memset(&info, 0, sizeof(info));
    info.mask = kPidfdInfoPid;
    if (!self.valid() || ioctl(self.get(), kPidfdGetInfo, &info) != 0) {
      return ErrnoStatus(errno, "fork server: PIDFD_GET_INFO unavailable");
    }
  }
  {
    // A server's strays (its workers the broker never registered) are found in the
    // kernel's lists of this process's children (ForEachServerStray), which only a kernel built
    // with CONFIG_PROC_CHILDREN has: without them a server killed before its reply, or one
    // that lies, would leave its workers running unseen. Fail closed: no server (a pool
    // goes on with Spawn).
    const char* probe = g_children_probe.load();
    if (probe == nullptr) probe = "/proc/thread-self/children";
    UniqueFd children(open(probe, O_RDONLY | O_CLOEXEC));
    if (!children.valid()) {
      return ErrnoStatus(errno, absl::StrCat("fork server: ", probe, " unavailable (a kernel "
                                             "without CONFIG_PROC_CHILDREN?): its strays "
                                             "could not be found"));
    }
  }
  s->interrupt = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->interrupt.valid()) return ErrnoStatus(errno, "fork server: eventfd");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(errno, "fork server: socketpair");
  }
  UniqueFd server_socket(sv[1]);
  UniqueFd socket(sv[0]);
  // The server's gate (ServerMain): one byte, sent once its pidfd is open. A socket, not a
  // pipe: sent with MSG_NOSIGNAL, a server killed meanwhile fails the start instead of
  // raising SIGPIPE in the embedder's thread.
  int gate_fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gate_fds) != 0) {
    return ErrnoStatus(errno, "fork server: socketpair(gate)");
  }
  UniqueFd gate_write(gate_fds[0]);
  UniqueFd gate_read(gate_fds[1]);
  // One fd held for the server's pidfd, freed just before pidfd_open: that call cannot
  // fail for want of an fd (EMFILE) after the fork, when the only way back would be to
  // reap the server by its pid (review h58, L-4).
  UniqueFd reserved(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!reserved.valid()) return ErrnoStatus(errno, "fork server: an fd for its pidfd");
  {
    // The stray sweep's fds (State::sweep_fds), held from now on (review h65, L5). One
    // that cannot be had now is tried again after each sweep.
    absl::MutexLock lock(&s->mu);
    ReserveSweepFds(*s);
  }
  fflush(nullptr);
  PrepareClientForFork();  // its workers' Clients then learn nothing themselves
  // Every signal blocked across the fork: the server runs no handler of the embedder's
  // before ServerMain has reset them (review h62, L3).
  sigset_t all_signals;
  sigset_t old_mask;
  sigfillset(&all_signals);
  pthread_sigmask(SIG_SETMASK, &all_signals, &old_mask);
  const pid_t pid = fork();
  if (pid == 0) {
    close(gate_write.get());
    ServerMain(*s, server_socket.get(), gate_read.get());
  }
  const int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (pid < 0) return ErrnoStatus(fork_err, "fork server: fork");
  server_socket.reset();
  gate_read.reset();
  if (void (*hook)(pid_t) = g_server_fork_hook.load(); hook != nullptr) hook(pid);
  reserved.reset();
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) {
    const int err = errno;
    // ESRCH: reaped by someone else already (killed from outside); its pid may name
    // another process now. Otherwise (ENOMEM; EMFILE only if another thread took the
    // reserved fd) it waits at its gate: ended by the gate's EOF, and not reaped here (by
    // its pid, that could reap another child of this process that got the pid after the
    // embedder reaped the server): a zombie until the embedder reaps its children.
    if (err != ESRCH) {
      gate_write.reset();
      fprintf(stderr, "vow: fork server %d ended unreaped (pidfd_open: %s)\n",
              static_cast<int>(pid), strerror(err));
    }
    return ErrnoStatus(err, "fork server: pidfd_open");
  }
  if (send(gate_write.get(), "g", 1, MSG_NOSIGNAL) != 1) {
    const int err = errno;
    if (KillAndAwaitExit(pidfd.get(), pid, "server")) {
      siginfo_t info;
      waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED);
    }
    return ErrnoStatus(err, "fork server: send(gate)");
  }
  gate_write.reset();
  absl::MutexLock lock(&s->mu);
  s->pid = pid;
  s->socket = std::move(socket);
  s->pidfd = std::move(pidfd);
  ForkServerReply ready;
  size_t bytes = 0;
  int flags = 0;
  std::vector<UniqueFd> fds;
  absl::Status st = ReceiveReply(s->socket.get(), s->interrupt.get(), MonotonicNow() + absl::Seconds(5),
                                 &ready, &bytes, &flags, &fds);
  if (st.ok()) {
    if (bytes != sizeof(ready) || (flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
        ready.magic != kForkServerMagic || ready.seq != 0 || ready.pid != pid ||
        !fds.empty()) {
      st = absl::DataLossError("fork server: a malformed ready message");
    } else if (ready.err != 0) {
      char step[sizeof(ready.step) + 1];
      memcpy(step, ready.step, sizeof(ready.step));
      step[sizeof(ready.step)] = '\0';
      st = ErrnoStatus(ready.err, absl::StrCat("fork server: ", step));
    }
  }
  if (!st.ok()) {
    fds.clear();
    EndServer(*s, std::string(st.message()));
    return absl::Status(st.code(), absl::StrCat("fork server did not start: ", st.message()));
  }
  return s;
}

absl::Status Broker::Impl::ListForkServer(ForkServer::State& s) {
  absl::MutexLock listed(&fork_servers_->mu);
  absl::MutexLock lock(&s.mu);
  if (fork_servers_->gone) {
    EndServer(s, "the broker shut down");
    return absl::UnavailableError("fork server: the broker shut down");
  }
  fork_servers_->servers.push_back(&s);
  s.registry = fork_servers_;
  return absl::OkStatus();
}

absl::StatusOr<WorkerId> Broker::Impl::SpawnFrom(ForkServer::State& s,
                                                 const SpawnOptions& options,
                                                 absl::Duration timeout) {
  VOW_TRACE(kTrBrokerEnter);
  absl::MutexLock lock(&s.mu);
  if (s.pid < 0) return absl::UnavailableError(absl::StrCat("fork server ended: ", s.failure));
  const int stdio[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  for (int i = 0; i < 3; ++i) {
    if ((stdio[i] >= 0) != s.spec.keep_stdio[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("SpawnFrom: fd ", i, " given or not unlike when the server was made"));
    }
  }
  const absl::Time deadline = MonotonicNow() + timeout;
  if (s.ask_premade) {
    bool none = false;
    absl::StatusOr<WorkerId> id = SpawnFromOnce(s, options, deadline, true, &none);
    if (!none) {
      if (id.ok()) ++s.premade_spawns;
      return id;
    }
    if (s.pid < 0) {
      return absl::UnavailableError(absl::StrCat("fork server ended: ", s.failure));
    }
  }
  absl::StatusOr<WorkerId> id = SpawnFromOnce(s, options, deadline, false, nullptr);
  if (id.ok()) ++s.fresh_spawns;
  return id;
}

absl::StatusOr<WorkerId> Broker::Impl::SpawnFromOnce(ForkServer::State& s,
                                                     const SpawnOptions& options,
                                                     absl::Time deadline, bool premade,
                                                     bool* none) {
  const int stdio[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  ASSIGN_OR_RETURN(auto pair, WorkerChannelPair());
  Channel& ours = pair.first;
  Channel& theirs = pair.second;
  // The policy's shared pair if it has one (README "Spawn, round 7"; sent as a fresh
  // pair is, the server and the worker close their copies), else a fresh pair.
  const NetIpcFds shared_ns = SharedNetIpcFor(*s.policy, namespaces_);
  const bool fresh_ns =
      (s.layers.netns || s.layers.ipcns) && shared_ns.net < 0 && shared_ns.ipc < 0;
  NamespaceStock::Fresh fresh;
  if (fresh_ns) fresh = namespaces_.Take();
  absl::Cleanup refill = [&] {
    if (fresh_ns) namespaces_.Done();
  };
  VOW_TRACE(kTrBrokerPair);
  ForkServerRequest req;
  req.seq = ++s.seq;
  // kFsPremade: the namespace pair is the next pre-made worker's.
  req.kind = premade ? kFsPremade : kFsFresh;
  int send_fds[kForkServerMaxFds];
  int nfds = 0;
  auto add = [&](int fd, uint32_t bit) {
    if (fd < 0) return;
    req.fds |= bit;
    send_fds[nfds++] = fd;
  };
  add(stdio[0], kFsStdin);
  add(stdio[1], kFsStdout);
  add(stdio[2], kFsStderr);
  add(theirs.fd(), kFsChannel);
  add(!s.layers.netns ? -1 : fresh_ns ? fresh.net.get() : shared_ns.net, kFsNet);
  add(!s.layers.ipcns ? -1 : fresh_ns ? fresh.ipc.get() : shared_ns.ipc, kFsIpc);
  const int forced = g_send_error.load();
  if (forced != 0) errno = forced;
  if (forced != 0 ||
      !SendWithFds(s.socket.get(), &req, sizeof(req), send_fds, nfds, MSG_DONTWAIT)) {
    const int err = errno;
    // The kernel refused the fds or the memory (too many fds in flight for this user, see
    // SendFdOrError): the broker's own limit, not the server's fault; nothing was queued.
    // The spawn fails, the server serves on (review h58, L-6: it was ended).
    if (err == ETOOMANYREFS || err == ENOBUFS || err == ENOMEM) {
      return ErrnoStatus(err, "fork server: send of the request");
    }
    EndServer(s, absl::StrCat("send: ", strerror(err)));
    return absl::UnavailableError(absl::StrCat("fork server ended: ", s.failure));
  }
  VOW_TRACE(kTrBrokerSent);
  // The worker's copies are the only ones that matter now.
  theirs = Channel();
  fresh = NamespaceStock::Fresh();
  ForkServerReply reply;
  size_t bytes = 0;
  int flags = 0;
  std::vector<UniqueFd> fds;
  // Never longer than the reply wait, whatever the caller's deadline (review h49, L5: the
  // server's lock is held here); past it the server is ended below.
  absl::Status st = ReceiveReply(s.socket.get(), s.interrupt.get(), std::min(deadline, MonotonicNow() + s.reply_wait),
                                 &reply, &bytes, &flags, &fds);
  VOW_TRACE(kTrBrokerReply);
  if (s.reply_check_delay > absl::ZeroDuration()) absl::SleepFor(s.reply_check_delay);
  void (*check_hook)(pid_t) = g_reply_check_hook.load();
  if (check_hook != nullptr && st.ok() && reply.pid > 0) check_hook(reply.pid);
  pid_t pid = -1;
  bool fault = true;
  absl::StatusOr<UniqueFd> pidfd =
      st.ok() ? CheckForkServerReply(reply, bytes, flags, &fds, req.seq, s.pid, s.pidfd.get(),
                                     [this](pid_t p) { return IsWorkerPid(p); }, &pid, &fault)
              : absl::StatusOr<UniqueFd>(st);
  if (!pidfd.ok()) {
    if (!fault && premade) {
      // No pre-made worker (or a dead one, reply.pid != 0: the server ended it and waited
      // for its exit; the broker reaps the server's exited strays, signals none): this spawn
      // is made afresh.
      if (reply.pid != 0) EndStrays(s, /*kill_live=*/false);
      if (reply.err == kPremadeStopped) s.ask_premade = false;
      *none = true;
      return pidfd.status();
    }
    if (!fault) return pidfd.status();  // the server's own honest failure (clone3)
    fds.clear();  // any worker in them is one of the server's strays: EndServer ends it
    EndServer(s, std::string(pidfd.status().message()));
    return absl::UnavailableError(absl::StrCat("fork server ended: ", s.failure));
  }
  VOW_TRACE(kTrBrokerChecked);
  // The worker's go (AwaitBrokerAcceptance): only now, after the check, may it run its own
  // code. A worker already gone fails the send (MSG_NOSIGNAL): its pidfd reports its end.
  // If the registration below fails, it kills the worker.
  (void)SendHelloReply(ours, 0);
  VOW_TRACE(kTrBrokerSlot);
  // A worker that does not say hello in time (stopped, or hostile) is ended (review L4).
  auto id = RegisterWorker(pid, *std::move(pidfd), std::move(ours), s.policy, nullptr, false,
                           "", UniqueFd(), options, nullptr, s.hello_deadline);
  VOW_TRACE(kTrBrokerRegistered);
  return id;
}

absl::StatusOr<std::unique_ptr<ForkServer>> Broker::StartForkServer(
    std::shared_ptr<const PreparedPolicy> policy, WorkerMain main, const SpawnOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ForkServer::State> state,
                   impl_->StartForkServer(std::move(policy), std::move(main), options));
  RETURN_IF_ERROR(impl_->ListForkServer(*state));
  return std::unique_ptr<ForkServer>(new ForkServer(std::move(state)));
}

absl::StatusOr<WorkerId> Broker::SpawnFrom(ForkServer& server, const SpawnOptions& options,
                                           absl::Duration timeout) {
  return impl_->SpawnFrom(*server.state_, options, timeout);
}

}  // namespace vow
