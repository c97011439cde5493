// The worker's lock-down sequence. Runs in the worker, before any untrusted byte is read.
//
// Order (DESIGN.md), each step checked, the first failure ends the sequence:
//   1. stdio fds the spawn did not ask for become /dev/null (so a later fd can never land
//      on 0/1/2 and receive a stray printf), then every fd except 0-2, the channel,
//      keep_fd and the namespace fds the layers enter (LayerSpec::shared_root_fd,
//      fresh_net_fd, fresh_ipc_fd; ApplyLayers closes them once entered) is closed
//      (close_range);
//   1b. the layers (worker/layers.h: namespaces, the unprivileged identity, Landlock),
//      before PDEATHSIG because a change of identity clears the parent-death signal;
//   2. PR_SET_PDEATHSIG(SIGKILL) and a check that the parent is still the broker,
//      PR_SET_DUMPABLE 0, PR_SET_NO_NEW_PRIVS 1;
//   3. rlimits from the policy (open fds, CPU, address space); RLIMIT_CORE 0;
//   4. the seccomp program, compiled by the broker before fork: the self pid and, in a
//      forked worker's program, the stat trampoline's address patched in; then the
//      SIGSYS handler (the stat trap of worker/stat_trap.h, and the penalty-trap
//      reporter), then the program loaded with TSYNC (and a
//      user-notification listener for the kill/errno/log penalties, and for the path
//      calls);
//   5. the prebuilt hello (LockdownSpec::hello) to the broker, carrying the listener (not
//      waiting for the reply: see .cc).
// Only then does the worker's own code run.
//
// Async-signal-safe and heap-free (a forked child of a multithreaded broker may run it):
// raw syscalls and the channel only. Returns 0 or -errno; on failure `*failed_step` names
// the step (a static string).
#ifndef VOW_WORKER_LOCKDOWN_H_
#define VOW_WORKER_LOCKDOWN_H_

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "worker/layers.h"

namespace vow {

// The fd number the channel has in every worker (fork and exec alike).
inline constexpr int kWorkerChannelFd = 3;
// Exit code of a worker whose lock-down failed (the broker reports it as such).
inline constexpr int kLockdownFailedExit = 121;
// Environment variable naming the channel fd of an exec'd worker.
inline constexpr char kChannelFdEnv[] = "VOW_CHANNEL_FD";
// Set to "1" for an exec'd vow worker under penalty trap: LockDownExecWorker() installs
// the SIGSYS reporter (exec reset the handler the broker's child had).
inline constexpr char kTrapEnv[] = "VOW_TRAP";

struct LockdownSpec {
  int channel_fd = kWorkerChannelFd;
  // Which of stdin, stdout, stderr the spawn gave the worker; the others become /dev/null.
  bool keep_stdio[3] = {true, true, true};
  // The broker's pid: the worker refuses to run if its parent is already someone else.
  pid_t broker_pid = 0;
  // The finished seccomp program. Lock-down patches the self-pid placeholder in place.
  sock_filter* program = nullptr;
  size_t program_len = 0;
  bool needs_listener = false;  // penalties kill, errno, log
  bool trap_reporter = false;   // penalty trap: install the SIGSYS reporter
  uint32_t max_open_fds = 0;    // 0: leave the limit as it is
  uint32_t cpu_seconds = 0;
  uint64_t memory_bytes = 0;
  uint64_t file_bytes = 0;      // RLIMIT_FSIZE (a write past it fails with EFBIG: SIGXFSZ is ignored)
  // The kernel layers (namespaces, identity, Landlock), applied after step 1; null: none.
  const LayerSpec* layers = nullptr;
  // One more fd kept open through step 1 (the program an exec'd worker runs); -1: none.
  int keep_fd = -1;
  // An open /dev/null (>= 3) that step 1 puts on the stdio fds the spawn did not give,
  // instead of opening /dev/null for each (the fork server keeps one); closed with the
  // rest in step 1. -1: open it.
  int null_fd = -1;
  // Step 5's message, framed, made before the fork or clone by HelloBytes(needs_listener),
  // in memory of the spawn's own: sent as it is, so a worker does not run capnp's builder
  // (and page in its code) to say hello, and exec children that share the broker's memory
  // share no buffer. Required: null fails step 5 with EINVAL.
  const unsigned char* hello = nullptr;
  size_t hello_len = 0;
  // Non-null: step 5 is left out and the listener (-1: none) is stored here; the caller
  // sends the hello later with LockDownHello. For the fork server's pre-made worker
  // (README "Spawn, round 5"), which locks down before it has its channel.
  int* listener_out = nullptr;
};

// The framed hello (what step 5 sends) for a worker that attaches a listener or not, in
// `out`. Returns its length, or 0 if it does not fit in `cap` bytes.
size_t HelloBytes(bool listener_attached, unsigned char* out, size_t cap);

// Runs steps 1-5. See the file comment.
int LockDown(const LockdownSpec& spec, const char** failed_step);

// Step 5 alone, for a LockDown run with `listener_out`: sends spec.hello on
// spec.channel_fd with `listener` (-1: none), then closes `listener`. Under the filter:
// sendmsg and close only. Returns 0 or -errno.
int LockDownHello(const LockdownSpec& spec, int listener);

// For a worker that is a separate binary: the first statement of main. The broker's
// child has already run LockDown() before execve (the program cannot pick its own
// filter); this checks that the process is under a seccomp filter and holds the channel
// (fd kWorkerChannelFd or $VOW_CHANNEL_FD). Otherwise it writes one line to stderr and
// exits with kLockdownFailedExit: a worker never runs unlocked. Returns the channel fd.
int LockDownExecWorker();

}  // namespace vow

#endif  // VOW_WORKER_LOCKDOWN_H_
