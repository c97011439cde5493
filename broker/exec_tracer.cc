#include "broker/exec_tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "base/unique_fd.h"

namespace vow {
namespace {

#if defined(__x86_64__)

// What the helper knows of one thread of the worker's tree.
enum class State : uint8_t {
  kFree = 0,
  kFull,     // runs under the worker's own filter
  kNarrow,   // an exec'd image (or a fork of one): has the execpromises filter
  kPending,  // stopped at its first stop before its parent's fork event named it
};
struct Known {
  pid_t tid;
  State state;
  bool started;  // its initial stop has been seen and resumed
};
constexpr int kMaxKnown = 4096;

// The helper: a forked copy of the broker running only raw syscalls (the broker is
// multi-threaded: no heap, no locks after fork).
class Helper {
 public:
  Helper(pid_t worker, std::atomic<int32_t>* table, const sock_filter* code, size_t len)
      : worker_(worker), table_(table), code_(code), len_(len) {}

  [[noreturn]] void Run() {
    Known* w = Add(worker_);
    w->state = State::kFull;
    w->started = true;  // seized while running, never stopped
    for (;;) {
      int status = 0;
      const pid_t tid = waitpid(-1, &status, __WALL);
      if (tid < 0) {
        if (errno == EINTR) continue;
        _exit(errno == ECHILD ? 0 : 1);  // no tracee left
      }
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        Forget(tid);
        continue;
      }
      if (!WIFSTOPPED(status)) continue;
      OnStop(tid, WSTOPSIG(status), status >> 16);
    }
  }

 private:
  void OnStop(pid_t tid, int sig, int event) {
    Known* k = Find(tid);
    switch (event) {
      case PTRACE_EVENT_FORK:
      case PTRACE_EVENT_VFORK:
      case PTRACE_EVENT_CLONE: {
        unsigned long msg = 0;
        if (ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &msg) == 0) {
          NewChild(static_cast<pid_t>(msg), k != nullptr && k->state == State::kFull);
        }
        Resume(tid, 0);
        return;
      }
      case PTRACE_EVENT_EXEC: {
        unsigned long former = 0;
        ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &former);
        // A non-leader thread that execs takes the leader's id; its own filter is what
        // the image runs under.
        Known* f = static_cast<pid_t>(former) != tid ? Find(static_cast<pid_t>(former)) : k;
        const bool full = (f != nullptr && f->state == State::kFull) ||
                          (f == nullptr && k != nullptr && k->state == State::kFull);
        if (f != nullptr && f != k) Forget(static_cast<pid_t>(former));
        if (k == nullptr) {
          k = Add(tid);
          if (k == nullptr) return Kill(tid);
          k->started = true;
        }
        if (tid == worker_ && !first_exec_done_) {
          // The broker's own execve of the program: it keeps the worker's promises.
          first_exec_done_ = true;
          Resume(tid, 0);
          return;
        }
        if (!full) {
          // Already narrow: the filter survived the exec.
          k->state = State::kNarrow;
          Resume(tid, 0);
          return;
        }
        // Narrow in the table first: from here on the broker answers its path calls with
        // the execpromises, even if what follows fails.
        k->state = State::kNarrow;
        TableRemove(tid);
        int deliver = 0;
        switch (Inject(tid, &deliver)) {
          case Outcome::kDone:
            Resume(tid, deliver);
            return;
          case Outcome::kGone:
            Forget(tid);
            return;
          case Outcome::kFailed:
            return Kill(tid);
        }
        return;
      }
      case PTRACE_EVENT_STOP:
        if (k == nullptr) {
          // A new child whose parent's event has not been seen yet: it stays stopped
          // until we know which filter it runs under.
          k = Add(tid);
          if (k == nullptr) return Kill(tid);
          k->state = State::kPending;
          return;
        }
        if (!k->started) {
          k->started = true;
          Resume(tid, 0);
          return;
        }
        if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
          ptrace(PTRACE_LISTEN, tid, nullptr, nullptr);  // a group stop: stay stopped
          return;
        }
        Resume(tid, 0);
        return;
      case 0:
        // Signal-delivery-stop: deliver it (TRACESYSGOOD stops only occur in Inject()).
        Resume(tid, sig);
        return;
      default:
        Resume(tid, 0);
        return;
    }
  }

  void NewChild(pid_t child, bool full) {
    Known* c = Find(child);
    const bool pending = c != nullptr && c->state == State::kPending;
    if (c == nullptr) c = Add(child);
    if (c == nullptr) return Kill(child);
    c->state = full ? State::kFull : State::kNarrow;
    TableRemove(child);  // a stale entry of a reused id
    if (full && !TableAdd(child)) {
      // The broker could not know it holds the full promises: it would be answered
      // as narrow while its filter is wide. Refuse the fork instead.
      return Kill(child);
    }
    if (pending) {
      c->started = true;
      Resume(child, 0);
    }
  }

  enum class Outcome { kDone, kGone, kFailed };

  // Resumes `tid` with PTRACE_SYSCALL until its next syscall stop. A signal that
  // arrives meanwhile is held back (one) and delivered by the caller at the end.
  Outcome ToSyscallStop(pid_t tid, int* deliver) {
    for (;;) {
      if (ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr) != 0) return Outcome::kFailed;
      int status = 0;
      pid_t got;
      do {
        got = waitpid(tid, &status, __WALL);
      } while (got < 0 && errno == EINTR);
      if (got != tid) return Outcome::kFailed;
      if (WIFEXITED(status) || WIFSIGNALED(status)) return Outcome::kGone;
      if (!WIFSTOPPED(status)) return Outcome::kFailed;
      const int sig = WSTOPSIG(status);
      if (sig == (SIGTRAP | 0x80)) return Outcome::kDone;
      if ((status >> 16) != 0) return Outcome::kFailed;  // no event can happen here
      if (*deliver != 0 && *deliver != sig) return Outcome::kFailed;
      *deliver = sig;
    }
  }

  // At the PTRACE_EVENT_EXEC stop of `tid`: make it call
  // seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog) with the execpromises program before its
  // first instruction, and put everything back.
  Outcome Inject(pid_t tid, int* deliver) {
    Outcome o = ToSyscallStop(tid, deliver);  // the exit of its execve
    if (o != Outcome::kDone) return o;
    struct user_regs_struct saved;
    if (ptrace(PTRACE_GETREGS, tid, nullptr, &saved) != 0) return Outcome::kFailed;
    if (saved.orig_rax != SYS_execve && saved.orig_rax != SYS_execveat) {
      return Outcome::kFailed;
    }
    // The program and its sock_fprog below the stack pointer, past the 128-byte red
    // zone, 16-aligned. A fresh image's stack has the kernel's 128 KiB of room below
    // its arguments.
    const size_t code_bytes = len_ * sizeof(sock_filter);
    const uint64_t at = (saved.rsp - 256 - 16 - code_bytes) & ~uint64_t{15};
    struct sock_fprog fprog = {};
    fprog.len = static_cast<unsigned short>(len_);
    fprog.filter = reinterpret_cast<sock_filter*>(at + 16);
    struct iovec local[2] = {{&fprog, sizeof(fprog)},
                             {const_cast<sock_filter*>(code_), code_bytes}};
    struct iovec remote = {reinterpret_cast<void*>(at), 16 + code_bytes};
    static_assert(sizeof(fprog) <= 16, "sock_fprog fits the 16 bytes reserved for it");
    local[0].iov_len = 16;  // the padding after sock_fprog is written too
    unsigned char head[16] = {};
    memcpy(head, &fprog, sizeof(fprog));
    local[0].iov_base = head;
    if (process_vm_writev(tid, local, 2, &remote, 1, 0) !=
        static_cast<ssize_t>(16 + code_bytes)) {
      return Outcome::kFailed;
    }
    // A `syscall` instruction (0f 05) at the entry point, the original word kept.
    errno = 0;
    const long word = ptrace(PTRACE_PEEKTEXT, tid, reinterpret_cast<void*>(saved.rip), nullptr);
    if (errno != 0) return Outcome::kFailed;
    const long patched =
        static_cast<long>((static_cast<unsigned long>(word) & ~0xffffUL) | 0x050fUL);
    if (ptrace(PTRACE_POKETEXT, tid, reinterpret_cast<void*>(saved.rip),
               reinterpret_cast<void*>(patched)) != 0) {
      return Outcome::kFailed;
    }
    struct user_regs_struct call = saved;
    call.rax = SYS_seccomp;
    call.orig_rax = static_cast<unsigned long long>(-1);  // no syscall restart on the way out
    call.rdi = SECCOMP_SET_MODE_FILTER;
    call.rsi = 0;
    call.rdx = at;
    bool ok = ptrace(PTRACE_SETREGS, tid, nullptr, &call) == 0;
    if (ok) o = ToSyscallStop(tid, deliver);  // entry
    struct user_regs_struct now;
    ok = ok && o == Outcome::kDone && ptrace(PTRACE_GETREGS, tid, nullptr, &now) == 0 &&
         now.orig_rax == SYS_seccomp;
    if (ok) o = ToSyscallStop(tid, deliver);  // exit
    ok = ok && o == Outcome::kDone && ptrace(PTRACE_GETREGS, tid, nullptr, &now) == 0 &&
         now.rax == 0;
    if (o == Outcome::kGone) return o;
    if (!ok) return Outcome::kFailed;
    // A return value of 0 proves nothing: a filter of the program's own can answer
    // seccomp with ERRNO(0) without running it. The newest filter of the tracee must be
    // exactly the program written above (one the program installed itself before exec,
    // if identical, narrows it just the same).
    if (!NewestFilterIsOurs(tid)) return Outcome::kFailed;
    if (ptrace(PTRACE_POKETEXT, tid, reinterpret_cast<void*>(saved.rip),
               reinterpret_cast<void*>(word)) != 0 ||
        ptrace(PTRACE_SETREGS, tid, nullptr, &saved) != 0) {
      return Outcome::kFailed;
    }
    return Outcome::kDone;
  }

  // PTRACE_SECCOMP_GET_FILTER counts from the OLDEST filter (index 0): the newest is
  // the last index that exists (ENOENT past it). The kernel bounds a process's filters
  // (32768 instructions in all, at least 5 per filter).
  bool NewestFilterIsOurs(pid_t tid) {
    static sock_filter got[BPF_MAXINSNS];
    long newest = -1;
    long n = -1;
    for (unsigned long i = 0; i < 32768; ++i) {
      const long c = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, reinterpret_cast<void*>(i), nullptr);
      if (c < 0) {
        if (errno != ENOENT) return false;
        break;
      }
      newest = static_cast<long>(i);
      n = c;
    }
    if (newest < 0 || n != static_cast<long>(len_)) return false;
    if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, reinterpret_cast<void*>(newest), got) != n) {
      return false;
    }
    return memcmp(got, code_, len_ * sizeof(sock_filter)) == 0;
  }

  void Resume(pid_t tid, int sig) {
    ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
  }

  // Fail closed: the whole process (its exit is reported and forgotten as usual).
  void Kill(pid_t tid) {
    TableRemove(tid);
    syscall(SYS_tgkill, tid, tid, SIGKILL);
    kill(tid, SIGKILL);
  }

  Known* Find(pid_t tid) {
    for (int i = 0; i < kMaxKnown; ++i) {
      if (known_[i].state != State::kFree && known_[i].tid == tid) return &known_[i];
    }
    return nullptr;
  }
  Known* Add(pid_t tid) {
    for (int i = 0; i < kMaxKnown; ++i) {
      if (known_[i].state == State::kFree) {
        known_[i] = Known{tid, State::kPending, false};
        return &known_[i];
      }
    }
    return nullptr;
  }
  void Forget(pid_t tid) {
    TableRemove(tid);
    Known* k = Find(tid);
    if (k != nullptr) *k = Known{0, State::kFree, false};
  }
  bool TableAdd(pid_t tid) {
    for (int i = 0; i < ExecTracer::kMaxFull; ++i) {
      int32_t expected = 0;
      if (table_[i].compare_exchange_strong(expected, tid)) return true;
    }
    return false;
  }
  void TableRemove(pid_t tid) {
    for (int i = 0; i < ExecTracer::kMaxFull; ++i) {
      int32_t expected = tid;
      table_[i].compare_exchange_strong(expected, 0);
    }
  }

  const pid_t worker_;
  std::atomic<int32_t>* const table_;
  const sock_filter* const code_;
  const size_t len_;
  bool first_exec_done_ = false;
  Known known_[kMaxKnown] = {};
};

// In the forked helper: lock its own state down, seize the worker, report, trace.
[[noreturn]] void HelperMain(pid_t parent, pid_t worker, int ack_fd,
                             std::atomic<int32_t>* table, const sock_filter* code,
                             size_t len) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  int err = 0;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) err = errno;
  if (err == 0 && getppid() != parent) err = ESRCH;
  if (err == 0 && dup2(ack_fd, 3) < 0) err = errno;
  if (err == 0 && syscall(SYS_close_range, 4, ~0U, 0) != 0) err = errno;
  constexpr long kOptions = PTRACE_O_TRACEEXEC | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                            PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD;
  if (err == 0 && ptrace(PTRACE_SEIZE, worker, nullptr, reinterpret_cast<void*>(kOptions)) != 0) {
    err = errno;
  }
  (void)!write(3, &err, sizeof(err));
  if (err != 0) _exit(1);
  close(3);
  alignas(Helper) static unsigned char storage[sizeof(Helper)];
  Helper* helper = new (storage) Helper(worker, table, code, len);
  helper->Run();
}

#endif  // __x86_64__

}  // namespace

absl::StatusOr<std::unique_ptr<ExecTracer>> ExecTracer::Start(pid_t pid,
                                                              const BpfProgram& narrow) {
#if !defined(__x86_64__)
  (void)pid;
  (void)narrow;
  return absl::UnimplementedError("execpromises: the exec tracer is x86-64 only");
#else
  if (narrow.code.empty() || narrow.code.size() > BPF_MAXINSNS) {
    return absl::InvalidArgumentError("execpromises: no program to inject");
  }
  // The table decides which images hold the full promises, so only this process and its
  // tracer may map it: a memfd mapped here with MADV_DONTFORK (no later fork of the broker,
  // a worker, a fork server or another tracer, inherits it; an anonymous shared mapping
  // was inherited by every worker forked while a tracer lived, found by review) and mapped
  // again by the tracer after its fork. A worker forked meanwhile inherits the fd only until
  // its lock-down closes every fd it was not given.
  constexpr size_t kTableBytes = kMaxFull * sizeof(std::atomic<int32_t>);
  UniqueFd table_fd(memfd_create("vow-exec-tracer", MFD_CLOEXEC));
  if (!table_fd) return ErrnoStatus(errno, "execpromises: memfd_create for the tracer table");
  if (ftruncate(table_fd.get(), kTableBytes) != 0) {
    return ErrnoStatus(errno, "execpromises: ftruncate of the tracer table");
  }
  void* mem = mmap(nullptr, kTableBytes, PROT_READ | PROT_WRITE, MAP_SHARED, table_fd.get(), 0);
  if (mem == MAP_FAILED) return ErrnoStatus(errno, "execpromises: mmap of the tracer table");
  if (madvise(mem, kTableBytes, MADV_DONTFORK) != 0) {
    const int err = errno;
    munmap(mem, kTableBytes);
    return ErrnoStatus(err, "execpromises: madvise(MADV_DONTFORK) of the tracer table");
  }
  auto* table = new (mem) std::atomic<int32_t>[kMaxFull];
  table[0].store(pid);  // the worker: its first image holds the full promises
  int ack[2];
  if (pipe2(ack, O_CLOEXEC) != 0) {
    const int err = errno;
    munmap(mem, kMaxFull * sizeof(std::atomic<int32_t>));
    return ErrnoStatus(err, "execpromises: pipe");
  }
  const pid_t parent = getpid();
  const pid_t helper = fork();
  if (helper == 0) {
    close(ack[0]);
    void* own = mmap(nullptr, kTableBytes, PROT_READ | PROT_WRITE, MAP_SHARED, table_fd.get(), 0);
    if (own == MAP_FAILED) {
      const int err = errno;
      (void)!write(ack[1], &err, sizeof(err));
      _exit(1);
    }
    HelperMain(parent, pid, ack[1], static_cast<std::atomic<int32_t>*>(own), narrow.code.data(),
               narrow.code.size());
  }
  table_fd.reset();
  close(ack[1]);
  std::unique_ptr<ExecTracer> tracer;
  if (helper > 0) tracer.reset(new ExecTracer(helper, table));
  int err = helper < 0 ? errno : 0;
  if (helper > 0) {
    struct pollfd p = {ack[0], POLLIN, 0};
    int got = -1;
    if (poll(&p, 1, 5000) == 1) got = static_cast<int>(read(ack[0], &err, sizeof(err)));
    if (got != static_cast<int>(sizeof(err))) err = got == 0 ? ECHILD : ETIMEDOUT;
  }
  close(ack[0]);
  if (helper < 0) {
    munmap(mem, kMaxFull * sizeof(std::atomic<int32_t>));
    return ErrnoStatus(err, "execpromises: fork of the tracer");
  }
  if (err != 0) {
    return ErrnoStatus(err, "execpromises: the tracer could not PTRACE_SEIZE the worker");
  }
  return tracer;
#endif
}

ExecTracer::~ExecTracer() {
  kill(helper_, SIGKILL);
  while (waitpid(helper_, nullptr, 0) < 0 && errno == EINTR) {
  }
  munmap(table_, kMaxFull * sizeof(std::atomic<int32_t>));
}

bool ExecTracer::HoldsFullPromises(pid_t tid) const {
  if (tid <= 0) return false;
  for (int i = 0; i < kMaxFull; ++i) {
    if (table_[i].load(std::memory_order_acquire) == tid) return true;
  }
  return false;
}

}  // namespace vow
