#include "worker/lockdown.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>

#include "base/raw_syscall.h"
#include "base/spawn_trace.h"
#include "capnp/serialize.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"
#include "policies/seccomp_loader.h"
#include "policies/stat_trap_abi.h"
#include "worker/sigsys_context.h"
#include "worker/stat_trap.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace vow {
namespace {

// The SIGSYS reporter's buffer. Static: a worker is one process, and the handler may not
// touch the heap. (The lock-down has none: its hello is made by the spawning thread, see
// LockdownSpec::hello; an exec child shares the broker's memory with other threads'.)
MessageArena g_trap_arena;
std::atomic<bool> g_trap_busy{false};
int g_trap_channel_fd = -1;
// Penalty trap: SIGSYS that is not the stat trap is a violation to report.
bool g_trap_reporter = false;

int Errno() { return errno != 0 ? errno : EIO; }

// Closes every fd from 3 up except the `n` fds in `keep` (each >= 3; duplicates and -1
// entries ignored). close_range exists since Linux 5.9.
int CloseAllBut(int* keep, size_t n) {
  auto close_range = [](unsigned lo, unsigned hi) -> int {
    if (lo > hi) return 0;
    if (syscall(SYS_close_range, lo, hi, 0) == 0) return 0;
    if (errno != ENOSYS) return -Errno();
    // Fallback for old kernels: close one by one up to the fd limit.
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -Errno();
    unsigned top = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : static_cast<unsigned>(rl.rlim_cur);
    for (unsigned fd = lo; fd <= hi && fd < top; ++fd) close(static_cast<int>(fd));
    return 0;
  };
  // Insertion sort: a handful of fds, no library call.
  for (size_t i = 1; i < n; ++i) {
    for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) {
      const int t = keep[j - 1];
      keep[j - 1] = keep[j];
      keep[j] = t;
    }
  }
  unsigned next = 3;  // the lowest fd not yet closed or kept
  for (size_t i = 0; i < n; ++i) {
    if (keep[i] < 0) continue;
    if (keep[i] < 3) return -EBADF;
    const unsigned fd = static_cast<unsigned>(keep[i]);
    if (fd < next) continue;  // a duplicate
    if (fd > next) {
      if (const int rc = close_range(next, fd - 1); rc != 0) return rc;
    }
    next = fd + 1;
  }
  return close_range(next, ~0u);
}

int SetLimit(int resource, uint64_t value) {
  struct rlimit rl;
  rl.rlim_cur = value;
  rl.rlim_max = value;
  if (setrlimit(resource, &rl) != 0) return -Errno();
  return 0;
}

// The SIGSYS reporter (penalty trap). Sends what the kernel refused to the broker, then
// makes the refused call return -EPERM. Uses sendmsg only.
void SigsysReporter(int, siginfo_t* info, void* context) {
  int saved_errno = errno;
  uint64_t args[6];
  SigsysArgs(context, args);
  bool expected = false;
  if (g_trap_channel_fd >= 0 && g_trap_busy.compare_exchange_strong(expected, true)) {
    g_trap_arena.Reset();
    {
      capnp::MallocMessageBuilder builder(g_trap_arena.segment());
      auto request = builder.initRoot<wire::Request>();
      request.setId(0);
      auto violation = request.initViolation();
      violation.setSyscall(info->si_syscall);
      violation.setArch(info->si_arch);
      auto list = violation.initArgs(6);
      for (unsigned i = 0; i < 6; ++i) list.set(i, args[i]);
      Channel channel{UniqueFd(g_trap_channel_fd)};
      (void)channel.Send(builder);
      (void)channel.release();
      g_trap_arena.MarkUsed(builder);
    }
    g_trap_busy.store(false);
  }
  SetSigsysResult(context, -EPERM);
  errno = saved_errno;
}

// The worker's one SIGSYS handler. Its two cases are told apart by what the kernel puts
// in the siginfo: the stat trap (SECCOMP_RET_TRAP | kStatTrapData, si_errno ==
// kStatTrapData, newfstatat/statx) goes to HandleStatTrap(); anything else to the
// penalty-trap reporter if the policy has one. A SIGSYS that neither explains (someone
// sent the signal) gets SIGSYS's default action, as before the handler existed: the
// handler is reset and the signal raised again (it is not blocked: SA_NODEFER).
void OnSigsys(int sig, siginfo_t* info, void* context) {
  if (HandleStatTrap(info, context)) return;
  if (g_trap_reporter) {
    SigsysReporter(sig, info, context);
    return;
  }
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSYS, &dfl, nullptr);
  syscall(SYS_tgkill, getpid(), gettid(), SIGSYS);
}

// Installs OnSigsys. SIGSYS stays unblocked while it runs (SA_NODEFER), so a trap inside
// it is not turned into a kill by the kernel; both cases are re-entrant (the stat trap
// keeps no state, the reporter skips a report while another is being sent).
int InstallSigsysHandler() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnSigsys;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) return -Errno();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGSYS);
  if (sigprocmask(SIG_UNBLOCK, &set, nullptr) != 0) return -Errno();
  return 0;
}

// The hello (with the listener, if any). The worker does not wait for the broker's
// HelloReply: it is already locked, a broker that refuses the hello kills it, and the
// Client skips the reply (id 0) when it reads its first answer. Saves a round trip on
// every spawn. (A fork server's worker does wait, after this, for the broker's go, an id-0
// answer sent once the server's reply naming it is checked: AwaitBrokerAcceptance in
// broker/broker_fork_server.cc, README "Spawn, round 7".)
void BuildHello(capnp::MessageBuilder& builder, bool listener_attached) {
  auto request = builder.initRoot<wire::Request>();
  request.setId(0);
  auto hello = request.initHello();
  hello.setVersion(wire::PROTOCOL_VERSION);
  hello.setListenerAttached(listener_attached);
}

// Sends the prebuilt hello with the listener, if any.
int Hello(int channel_fd, int listener_fd, const unsigned char* bytes, size_t len) {
  Channel channel{UniqueFd(channel_fd)};
  const int result = channel.SendBytes(bytes, len, listener_fd >= 0 ? &listener_fd : nullptr,
                                       listener_fd >= 0 ? 1 : 0);
  (void)channel.release();
  return result;
}

void WriteStderr(const char* a, const char* b, int err) {
  char line[256];
  size_t len = 0;
  auto append = [&](const char* s) {
    while (*s != '\0' && len < sizeof(line) - 2) line[len++] = *s++;
  };
  append("vow: worker lock-down failed at ");
  append(a);
  append(b);
  append(": ");
  append(strerrordesc_np(err) != nullptr ? strerrordesc_np(err) : "unknown error");
  line[len++] = '\n';
  (void)!write(STDERR_FILENO, line, len);
}

}  // namespace

size_t HelloBytes(bool listener_attached, unsigned char* out, size_t cap) {
  // The hello is a few words: a small zeroed first segment, not a 64 KiB MessageArena
  // (which Spawn would zero on its thread's stack for every worker).
  capnp::word first[16] = {};
  capnp::MallocMessageBuilder builder(kj::arrayPtr(first, 16));
  BuildHello(builder, listener_attached);
  // One segment: the table (segment count - 1, its size, padded to a word), then the words.
  auto segments = builder.getSegmentsForOutput();
  if (segments.size() != 1) return 0;
  const size_t words = segments[0].size() * sizeof(capnp::word);
  if (cap < 8 + words) return 0;
  const uint32_t table[2] = {0, static_cast<uint32_t>(segments[0].size())};
  memcpy(out, table, sizeof(table));
  memcpy(out + 8, segments[0].begin(), words);
  return 8 + words;
}

int LockDown(const LockdownSpec& spec, const char** failed_step) {
  const char* unused;
  if (failed_step == nullptr) failed_step = &unused;
  int rc;
  // 1. Descriptors.
  *failed_step = "stdio";
  for (int i = 0; i < 3; ++i) {
    if (spec.keep_stdio[i]) continue;
    if (spec.null_fd >= 3) {
      if (dup2(spec.null_fd, i) < 0) return -Errno();  // dup2 clears FD_CLOEXEC on i
      continue;
    }
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) return -Errno();
    if (null_fd != i) {
      if (dup2(null_fd, i) < 0) return -Errno();  // dup2 clears FD_CLOEXEC on i
      close(null_fd);
    } else if (fcntl(i, F_SETFD, 0) != 0) {
      return -Errno();
    }
  }
  *failed_step = "close_range";
  if (spec.channel_fd < 3) return -EBADF;
  {
    // The channel, keep_fd and the namespace fds the layers enter (ApplyLayers closes
    // those once entered).
    int keep[5] = {spec.channel_fd, spec.keep_fd, -1, -1, -1};
    if (spec.layers != nullptr) {
      keep[2] = spec.layers->shared_root_fd;
      keep[3] = spec.layers->fresh_net_fd;
      keep[4] = spec.layers->fresh_ipc_fd;
    }
    if ((rc = CloseAllBut(keep, 5)) != 0) return rc;
  }
  VOW_TRACE(kTrLdStdio);

  // 1b. The layers.
  if (spec.layers != nullptr) {
    const char* layer_step = nullptr;
    rc = ApplyLayers(*spec.layers, &layer_step);
    if (rc != 0) {
      *failed_step = layer_step != nullptr ? layer_step : "layers";
      return rc;
    }
  }

  // 2. Process attributes.
  *failed_step = "PR_SET_PDEATHSIG";
  // Inline system calls (base/raw_syscall.h): libc's prctl and getppid are each a page of
  // code the worker would fault in for these calls only.
  if ((rc = static_cast<int>(RawSyscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL))) != 0) return rc;
  // The broker may have died between fork and prctl; then nobody would kill us.
  if (spec.broker_pid != 0 && RawSyscall(SYS_getppid) != spec.broker_pid) return -ESRCH;
  *failed_step = "PR_SET_DUMPABLE";
  if ((rc = static_cast<int>(RawSyscall(SYS_prctl, PR_SET_DUMPABLE, 0))) != 0) return rc;
  *failed_step = "PR_SET_NO_NEW_PRIVS";
  if ((rc = static_cast<int>(RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1))) != 0) return rc;
  VOW_TRACE(kTrLdAttrs);

  // 3. Limits.
  *failed_step = "RLIMIT_CORE";
  if ((rc = SetLimit(RLIMIT_CORE, 0)) != 0) return rc;
  if (spec.max_open_fds != 0) {
    *failed_step = "RLIMIT_NOFILE";
    if ((rc = SetLimit(RLIMIT_NOFILE, spec.max_open_fds)) != 0) return rc;
  }
  if (spec.cpu_seconds != 0) {
    *failed_step = "RLIMIT_CPU";
    if ((rc = SetLimit(RLIMIT_CPU, spec.cpu_seconds)) != 0) return rc;
  }
  if (spec.file_bytes != 0) {
    *failed_step = "RLIMIT_FSIZE";
    if ((rc = SetLimit(RLIMIT_FSIZE, spec.file_bytes)) != 0) return rc;
    // A write past the limit fails with EFBIG instead of killing the worker.
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    if (sigaction(SIGXFSZ, &ign, nullptr) != 0) return -Errno();
  }
  if (spec.memory_bytes != 0) {
    *failed_step = "RLIMIT_AS";
    if ((rc = SetLimit(RLIMIT_AS, spec.memory_bytes)) != 0) return rc;
  }

  VOW_TRACE(kTrLdLimits);

  // 4. Seccomp.
  *failed_step = "seccomp";
  if (spec.program == nullptr || spec.program_len == 0) return -EINVAL;
  PatchSelfPid(spec.program, spec.program_len, static_cast<uint32_t>(RawSyscall(SYS_getpid)));
  // A forked worker's program traps stats with a path (worker/stat_trap.h): its
  // placeholders become this process's trampoline address, and the handler must be in
  // place before the filter.
  const size_t stat_trap_sites =
      PatchStatTrampoline(spec.program, spec.program_len, StatTrampolineAddress());
  if (stat_trap_sites != 0 && stat_trap_sites != kStatTrampolinePatchSites) return -EINVAL;
  VOW_TRACE(kTrLdPatched);
  if (stat_trap_sites != 0) PrepareStatTrap();
  if (spec.trap_reporter || stat_trap_sites != 0) {
    *failed_step = "SIGSYS handler";
    // Written only when it changes: a store to a page of .bss the worker does not otherwise
    // write is a copy-on-write fault (~20 us here) for a value that is already false.
    if (g_trap_reporter != spec.trap_reporter) g_trap_reporter = spec.trap_reporter;
    if (spec.trap_reporter) g_trap_channel_fd = spec.channel_fd;
    if ((rc = InstallSigsysHandler()) != 0) return rc;
  }
  VOW_TRACE(kTrLdPatch);
  *failed_step = "seccomp";
  int listener = -1;
  rc = LoadSeccompProgram(spec.program, spec.program_len,
                          spec.needs_listener ? &listener : nullptr);
  if (rc != 0) return rc;
  VOW_TRACE(kTrLdFilter);

  // 5. Hello. From here on every syscall is under the filter.
  *failed_step = "hello";
  if (spec.listener_out != nullptr) {
    *spec.listener_out = listener;
    *failed_step = nullptr;
    return 0;
  }
  rc = LockDownHello(spec, listener);
  if (rc != 0) return rc;
  *failed_step = nullptr;
  return 0;
}

int LockDownHello(const LockdownSpec& spec, int listener) {
  if (spec.hello == nullptr || spec.hello_len == 0) {
    if (listener >= 0) close(listener);
    return -EINVAL;
  }
  const int rc = Hello(spec.channel_fd, listener, spec.hello, spec.hello_len);
  if (listener >= 0) close(listener);
  if (rc != 0) return rc;
  VOW_TRACE(kTrLdHello);
  return 0;
}

int LockDownExecWorker() {
  // The broker's child locked this process down before execve (filter, limits, hello
  // with the listener). Nothing is left to do but check that it really did: a program
  // started some other way must not run unlocked.
  int channel_fd = kWorkerChannelFd;
  const char* env = getenv(kChannelFdEnv);
  if (env != nullptr) channel_fd = atoi(env);
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2) {
    WriteStderr("check", " (not started by a vow broker: no seccomp filter)", EPERM);
    _exit(kLockdownFailedExit);
  }
  if (channel_fd < 3 || fcntl(channel_fd, F_GETFD) < 0) {
    WriteStderr("check", " (no broker channel)", EBADF);
    _exit(kLockdownFailedExit);
  }
  // Penalty trap: exec reset the child's handlers, so the reporter is installed here (a
  // violation before this point kills the process with SIGSYS: it cannot go unseen).
  if (const char* trap = getenv(kTrapEnv); trap != nullptr && strcmp(trap, "1") == 0) {
    g_trap_channel_fd = channel_fd;
    g_trap_reporter = true;
    if (int rc = InstallSigsysHandler(); rc != 0) {
      WriteStderr("SIGSYS reporter", "", -rc);
      _exit(kLockdownFailedExit);
    }
  }
  return channel_fd;
}

}  // namespace vow
