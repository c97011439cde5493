#include "broker/path_handler.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/monotonic.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "broker/elf_headers.h"
#include "broker/worker_memory.h"
#include "policies/libc_set.h"
#include "policies/promises.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace vow {

PromiseSet CallerPromises(const WorkerShared& w, pid_t tid) {
  if (w.tracer == nullptr || w.tracer->HoldsFullPromises(tid)) return w.promises;
  return w.exec_promises;
}
namespace {

// The value of `key` ("Umask:", "Threads:") in thread `tid`'s /proc status, blanks
// stripped, or nullopt when it cannot be read.
std::optional<std::string> StatusField(pid_t tid, absl::string_view key) {
  std::ifstream status(absl::StrCat("/proc/", tid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, key)) {
      return std::string(absl::StripAsciiWhitespace(absl::string_view(line).substr(key.size())));
    }
  }
  return std::nullopt;
}

// The calling thread's umask (its /proc status, Linux >= 4.7): the broker creates files
// and directories for it, and its own umask is not the program's (review h72: `umask 077;
// echo secret > f` made f 0644). 077 when it cannot be read, the safe side.
uint32_t WorkerUmask(pid_t tid) {
  constexpr uint32_t kUnknown = 077;
  const std::optional<std::string> field = StatusField(tid, "Umask:");
  if (!field.has_value() || field->empty() || field->size() > 4) return kUnknown;
  uint32_t mask = 0;
  for (char c : *field) {
    if (c < '0' || c > '7') return kUnknown;
    mask = mask * 8 + static_cast<uint32_t>(c - '0');
  }
  return mask & 0777;
}

// The number of threads of the process thread `tid` belongs to (its /proc status), or
// -1 when it cannot be read.
int ThreadCount(pid_t tid) {
  const std::optional<std::string> field = StatusField(tid, "Threads:");
  int n = -1;
  return field.has_value() && absl::SimpleAtoi(*field, &n) ? n : -1;
}

bool IsReadOnlyOpen(uint32_t flags) {
  return (flags & O_ACCMODE) == O_RDONLY &&
         (flags & (O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE | O_PATH)) == 0;
}

// A copy of the worker's fd `fd` (the same open file description), or -errno.
// A copy of fd `fd` of the thread that made the call (`req.pid` is its tid; after a fork
// inside the worker it is not the worker's first process), the same open file
// description, or -errno. The thread's pidfd is taken first and the notification checked
// afterwards, so a tid reused meanwhile is never read from.
int WorkerFd(const WorkerShared& w, const struct seccomp_notif& req, int fd) {
  constexpr unsigned kPidfdThread = O_EXCL;  // PIDFD_THREAD (Linux >= 6.9)
  long pidfd = syscall(SYS_pidfd_open, static_cast<pid_t>(req.pid), kPidfdThread);
  if (pidfd < 0) return -ESRCH;
  UniqueFd owner(static_cast<int>(pidfd));
  uint64_t id = req.id;
  if (ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) return -ESRCH;
  long rc = syscall(SYS_pidfd_getfd, owner.get(), fd, 0);
  if (rc < 0) return errno == EBADF ? -EBADF : -errno;
  // pidfd_getfd sets O_CLOEXEC on the copy.
  return static_cast<int>(rc);
}

std::string FdTarget(int fd) {
  char buf[PATH_MAX + 1];
  ssize_t n = readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, PATH_MAX);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::string Join(const std::string& dir, const std::string& rel) {
  if (dir.empty() || dir == "/") return absl::StrCat("/", rel);
  return absl::StrCat(dir, "/", rel);
}

// `rel` relative to `real_dir`, a directory's physical path (the broker's FdTarget of it,
// or the worker's cwd, kept as one): its leading `.` and `..` components are taken
// against that path, as the kernel takes `..` of a directory (its physical parent; `/` is
// its own). Only the leading ones: after a name, `..` would depend on whether the name
// is a symlink, and the rules' lookup refuses it. fts (find, du, rm -r) opens `..` of
// the directory it is in (review h72: they failed below a few levels).
std::string JoinPhysical(const std::string& real_dir, absl::string_view rel) {
  std::string dir = real_dir.empty() ? "/" : real_dir;
  while (!rel.empty()) {
    const size_t slash = rel.find('/');
    const absl::string_view part = rel.substr(0, slash);
    if (part == "..") {
      const size_t last = dir.find_last_of('/');
      dir = last == 0 || last == std::string::npos ? "/" : dir.substr(0, last);
    } else if (part != "." && !part.empty()) {
      break;
    }
    rel = slash == absl::string_view::npos ? absl::string_view() : rel.substr(slash + 1);
  }
  return rel.empty() ? dir : Join(dir, std::string(rel));
}

}  // namespace

std::string Refusal::ToString() const {
  std::string s = absl::StrCat(call, learning ? " allowed (learning)" : " refused", " (",
                               strerrorname_np(err) != nullptr ? strerrorname_np(err) : "?",
                               ")");
  if (!promise.empty()) absl::StrAppend(&s, "; promise ", promise, " would allow it");
  if (!reason.empty()) absl::StrAppend(&s, ": ", reason);
  return s;
}

struct PathHandler::Answer {
  int error = 0;         // > 0: the call fails with this errno
  int64_t val = 0;       // the call's return value when error == 0 and no fd
  UniqueFd fd;           // inject this fd (its number is the return value)
  bool cloexec = false;  // O_CLOEXEC on the injected fd
  bool cont = false;     // SECCOMP_USER_NOTIF_FLAG_CONTINUE (see the header)
  int replace_fd = -1;   // with `fd`: put it at this number in the worker (connect)
  bool refused = false;  // record a Refusal
  bool learning = false; // performed in learning mode although refused
  std::string path;      // the absolute path, for the record
  std::string reason;
  std::string promise;   // a missing promise
  static Answer Error(int err, std::string why, std::string promise = "") {
    Answer a;
    a.error = err;
    // A decision of the broker's (EACCES, EPERM; a missing promise; a path no rule
    // covers) is a refusal; the file system's own answer (ENOENT for a file that is not
    // there, ENOTDIR, ELOOP...) is just the call's result. Callers override for the
    // broker's ENOENT.
    a.refused = err == EACCES || err == EPERM || !promise.empty();
    a.reason = std::move(why);
    a.promise = std::move(promise);
    return a;
  }
};

absl::StatusOr<std::unique_ptr<PathHandler>> PathHandler::Create(AuditLog* audit) {
  std::unique_ptr<PathHandler> h(new PathHandler(audit));
  auto existing = [&h](const std::vector<LibcSetEntry>& set) {
    std::vector<PathRule> rules;
    for (const LibcSetEntry& e : set) {
      struct stat st;
      if (stat(e.path.c_str(), &st) != 0) {  // not on this machine
        h->absent_.push_back(e.path);
        continue;
      }
      PathRule r;
      r.path = e.path;
      r.read = true;
      r.write = e.write;
      r.create = e.write;  // O_CREAT of an existing file creates nothing (/dev/null)
      rules.push_back(r);
    }
    return rules;
  };
  ASSIGN_OR_RETURN(FsPolicy libc, FsPolicy::Create(existing(LibcSet())));
  h->libc_.emplace(std::move(libc));
  std::vector<PathRule> loader_rules = existing(LoaderSet());
  // /lib -> usr/lib on merged-/usr systems: keep only distinct real directories for the
  // mmap check, but every spelling for opens (the loader asks for /lib/...).
  for (const PathRule& r : loader_rules) {
    char* real = realpath(r.path.c_str(), nullptr);
    if (real == nullptr) continue;
    struct stat st;
    if (stat(real, &st) == 0 && S_ISDIR(st.st_mode)) h->loader_real_dirs_.push_back(real);
    free(real);
  }
  ASSIGN_OR_RETURN(FsPolicy loader, FsPolicy::Create(loader_rules));
  h->loader_.emplace(std::move(loader));
  PathRule everything;
  everything.path = "/";
  everything.read = everything.write = everything.create = true;
  ASSIGN_OR_RETURN(FsPolicy learning, FsPolicy::Create({everything}));
  h->learning_.emplace(std::move(learning));
  return h;
}

void PathHandler::Audit(const WorkerShared& w, const std::string& what, bool allowed,
                        const std::string& reason) {
  AuditEntry entry;
  entry.worker_id = w.id;
  entry.pid = w.pid;
  entry.request = what;
  entry.allowed = allowed;
  entry.reason = reason;
  absl::ReaderMutexLock lock(&audit_mu_);
  if (audit_ != nullptr) audit_->Record(std::move(entry));
}

void PathHandler::DetachAudit() {
  absl::MutexLock lock(&audit_mu_);
  audit_ = nullptr;
}

PathHandler::Answer PathHandler::Decide(WorkerShared& w, const struct seccomp_notif& req,
                                        const PathCall& call, std::string* described) {
  std::string learned;
  std::string abs_path;
  Answer a = DecideInner(w, req, call, described, &learned, &abs_path);
  if (a.path.empty()) a.path = abs_path;
  if (!learned.empty() && a.error == 0) {
    a.learning = true;
    a.refused = true;
    a.reason = learned;
  }
  return a;
}

PathHandler::Answer PathHandler::DecideInner(WorkerShared& w, const struct seccomp_notif& req,
                                             const PathCall& call, std::string* described,
                                             std::string* learned, std::string* abs_out) {
  using Op = PathCall::Op;
  const pid_t tid = static_cast<pid_t>(req.pid);
  // 1. The strings, copied out of the worker.
  std::string path, path2;
  bool null_path = false;
  if (call.op == Op::kConnect) return Connect(w, req, call, described);
  const bool fd_attr = call.op == Op::kFchmod || call.op == Op::kFchown;
  const bool wants_path = call.op != Op::kFchdir && call.op != Op::kGetcwd &&
                          call.op != Op::kMmapExec && !fd_attr;
  if (wants_path) {
    if (call.path == 0 && call.path_may_be_null) {
      null_path = true;
    } else {
      int rc = ReadWorkerString(tid, call.path, PATH_MAX, &path);
      if (rc != 0) {
        *described = DescribePathCall(call, "<unreadable>");
        return Answer::Error(-rc, rc == -ENAMETOOLONG
                                      ? "the path has no NUL within PATH_MAX bytes"
                                      : "the path is not readable in the worker's memory");
      }
    }
  }
  if (call.op == Op::kRename) {
    int rc = ReadWorkerString(tid, call.path2, PATH_MAX, &path2);
    if (rc != 0) {
      *described = DescribePathCall(call, path, "<unreadable>");
      return Answer::Error(-rc, "the second path is not readable in the worker's memory");
    }
  }
  *described = DescribePathCall(call, path, path2);
  // The thread may have died (and its tid been reused) while we read.
  uint64_t id = req.id;
  if (ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) {
    Answer a;
    a.error = ENOENT;
    a.reason = "the calling thread is gone";
    return a;
  }

  if (call.op == Op::kConnect) return Connect(w, req, call, described);

  // 2. The fd-only forms: answered for the fd, no path involved.
  if (call.op == Op::kStat && (null_path || path.empty()) &&
      (call.at_flags & AT_EMPTY_PATH) != 0) {
    int fd = WorkerFd(w, req, call.dirfd);
    if (fd < 0) return Answer::Error(-fd, "not an open fd of the worker");
    UniqueFd copy(fd);
    Answer a;
    a.reason = "the worker's own fd";
    if (call.statx) {
      struct statx stx;
      if (statx(copy.get(), "", AT_EMPTY_PATH | (call.at_flags & AT_STATX_SYNC_TYPE),
                call.statx_mask, &stx) != 0) {
        return Answer::Error(errno, "statx of the fd");
      }
      int rc = WriteWorkerMemory(tid, call.buf, &stx, sizeof(stx));
      if (rc != 0) return Answer::Error(-rc, "the statx buffer is not writable");
    } else {
      struct stat st;
      if (fstat(copy.get(), &st) != 0) return Answer::Error(errno, "fstat of the fd");
      int rc = WriteWorkerMemory(tid, call.buf, &st, sizeof(st));
      if (rc != 0) return Answer::Error(-rc, "the stat buffer is not writable");
    }
    return a;
  }
  if (call.op == Op::kUtimes && null_path) {
    if (!CallerPromises(w, static_cast<pid_t>(req.pid)).contains(Promise::kFattr)) {
      return Answer::Error(EACCES, "changing times needs a promise", "fattr");
    }
    int fd = WorkerFd(w, req, call.dirfd);
    if (fd < 0) return Answer::Error(-fd, "not an open fd of the worker");
    UniqueFd copy(fd);
    const int fl = fcntl(copy.get(), F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || (fl & O_PATH) != 0) {
      return Answer::Error(EACCES, "changing the times of an fd not open for writing");
    }
    struct timespec times[2];
    if (call.buf != 0) {
      int rc = ReadWorkerMemory(tid, call.buf, times, sizeof(times));
      if (rc != 0) return Answer::Error(-rc, "the times are not readable");
    }
    // The worker's own fd (it opened it for writing, or owns the file): as futimens.
    if (futimens(copy.get(), call.buf != 0 ? times : nullptr) != 0) {
      Answer b = Answer::Error(errno, "futimens");
      b.refused = false;
      return b;
    }
    return Answer();
  }
  if (call.op == Op::kMmapExec) {
    // The fd is only what the loader maps its libraries from: with MAP_ANONYMOUS the
    // kernel ignores it (anonymous executable memory), and writable code is what
    // prot_exec alone grants (review h71). The loader maps code read-only and private.
    if ((call.flags & MAP_ANONYMOUS) != 0) {
      return Answer::Error(EACCES, "mmap(PROT_EXEC, MAP_ANONYMOUS): anonymous executable memory "
                                   "needs prot_exec, whatever the fd");
    }
    if ((call.mode & PROT_WRITE) != 0) {
      return Answer::Error(EACCES, "mmap(PROT_WRITE|PROT_EXEC) of a file: writable code needs "
                                   "prot_exec");
    }
    int fd = WorkerFd(w, req, call.dirfd);
    if (fd < 0) return Answer::Error(-fd, "mmap(PROT_EXEC) of something that is not an fd");
    UniqueFd copy(fd);
    struct stat st;
    std::string target = FdTarget(copy.get());
    if (fstat(copy.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Answer::Error(EACCES, "mmap(PROT_EXEC) of something that is not a regular file");
    }
    for (const std::string& dir : loader_real_dirs_) {
      if (absl::StartsWith(target, absl::StrCat(dir, "/"))) {
        // The kernel looks the fd number up again after this check: another task of the
        // same fd table could have put another file there meanwhile (review h73: a
        // second thread's dup2 of a file it wrote mapped its own code). Only threads
        // share a worker's fd table (`proc`'s clone takes no CLONE_FILES), and a process
        // whose one thread waits here cannot make another: one thread, nothing can swap.
        const int threads = ThreadCount(tid);
        if (threads != 1) {
          return Answer::Error(EACCES, absl::StrCat(
              "mmap(PROT_EXEC) of a file in a process of ", threads < 0 ? "unknown" :
              absl::StrCat(threads), " threads: another could swap the fd (prot_exec maps "
              "code at any time)"), "prot_exec");
        }
        Answer a;
        a.cont = true;
        a.reason = absl::StrCat("a library of the loader set: ", target);
        return a;
      }
    }
    return Answer::Error(EACCES, absl::StrCat("mmap(PROT_EXEC) of ", target,
                                              ", which is not in the loader set"));
  }
  if (call.op == Op::kGetcwd) {
    std::string cwd;
    {
      absl::MutexLock lock(&w.mu);
      cwd = w.cwd;
    }
    if (call.bufsize < cwd.size() + 1) return Answer::Error(ERANGE, "buffer too small");
    int rc = WriteWorkerMemory(tid, call.buf, cwd.c_str(), cwd.size() + 1);
    if (rc != 0) return Answer::Error(-rc, "the getcwd buffer is not writable");
    Answer a;
    a.val = static_cast<int64_t>(cwd.size() + 1);
    return a;
  }
  if (call.op == Op::kExec) {
    absl::MutexLock lock(&w.mu);
    if (w.exec_image && !w.exec_done && tid == w.pid) {
      // The broker's own child executing the program: its memory is the broker's code,
      // no worker code has run yet, so the kernel may resolve this one path.
      w.exec_done = true;
      Answer a;
      a.cont = true;
      a.reason = "the broker's execve of the program";
      return a;
    }
    if (CallerPromises(w, static_cast<pid_t>(req.pid)).contains(Promise::kExec)) {
      // The path must be beneath an `x` rule. The kernel then resolves it again in the
      // worker's own view (CONTINUE): with the mount namespace that view holds only the
      // `x` rules (bound read-only) and Landlock allows EXECUTE only there, so a string
      // changed after this check can name nothing else.
      std::string exe = path;
      // The kernel resolves a relative path against the worker's own directory (or
      // execveat's fd), not against the directory the broker keeps for it: checked
      // against the broker's, `lib64/ld-linux-x86-64.so.2` from an `x` directory ran the
      // root's loader, and through it any program of the loader's directories (review
      // h71). Only an absolute path names the same file for both.
      if (exe.empty() || exe[0] != '/') {
        return Answer::Error(EACCES, "execve of a relative path (the kernel would resolve it "
                                     "elsewhere than the broker checks it): give the absolute "
                                     "path");
      }
      absl::StatusOr<PathRule> rule =
          w.fs != nullptr ? w.fs->RuleFor(exe) : absl::StatusOr<PathRule>(
                                                     absl::NotFoundError("no rules"));
      if (!rule.ok() || !rule->exec) {
        return Answer::Error(EACCES, "executing needs an `x` rule for the program");
      }
      // The kernel makes the new image's stack executable if it asks (its own, or its #!
      // interpreter's PT_GNU_STACK), before any filter looks: executable memory is
      // prot_exec's, held by the image's promises (review h73).
      const PromiseSet image_promises = w.tracer != nullptr ? w.exec_promises : w.promises;
      if (!image_promises.contains(Promise::kProtExec)) {
        absl::StatusOr<bool> stack = ExecWantsExecutableStack(exe);
        if (!stack.ok()) {
          // What SpawnExec refuses in a program, refused here too (a #! line it cannot
          // follow): whether that image's stack would be executable is not known.
          return Answer::Error(EACCES, absl::StrCat("the program: ", stack.status().message()));
        }
        if (*stack) {
          return Answer::Error(EACCES, "the program asks for an executable stack (PT_GNU_STACK "
                                       "with PF_X), which needs prot_exec", "prot_exec");
        }
      }
      Answer a;
      a.cont = true;
      a.reason = w.tracer != nullptr
                     ? "promise exec, an `x` rule (the new image gets the execpromises)"
                     : "promise exec, an `x` rule (the new image keeps this filter)";
      return a;
    }
    if (w.penalty == Penalty::kLog) {
      // Learning mode: record it; the new image keeps this filter.
      Answer a;
      a.cont = true;
      *learned = "a second program";
      return a;
    }
    return Answer::Error(EACCES, "a second program", "exec");
  }

  // 3. An absolute path, resolved the way the broker sees the worker's directories.
  std::string abs;
  // fchmod/fchown: the worker's fd (a copy), acted on in step 5 once the rules agree for
  // the file it names.
  UniqueFd attr_fd;
  if (fd_attr) {
    int fd = WorkerFd(w, req, call.dirfd);
    if (fd < 0) return Answer::Error(-fd, "not an open fd of the worker");
    attr_fd.reset(fd);
    abs = FdTarget(fd);
    // A pipe, a socket, an anonymous file, a file deleted since ("... (deleted)" is then
    // looked up as a name and not found): no file the rules can name.
    if (abs.empty() || abs[0] != '/') {
      return Answer::Error(EPERM, "the fd names no file the broker can find");
    }
  } else if (call.op == Op::kFchdir) {
    int fd = WorkerFd(w, req, call.dirfd);
    if (fd < 0) return Answer::Error(-fd, "fchdir: not an open fd of the worker");
    UniqueFd copy(fd);
    abs = FdTarget(copy.get());
    struct stat st;
    if (fstat(copy.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Answer::Error(ENOTDIR, "fchdir: not a directory");
    }
  } else if (null_path || path.empty()) {
    return Answer::Error(ENOENT, "an empty path");
  } else if (path[0] == '/') {
    abs = path;
  } else if (call.dirfd == AT_FDCWD) {
    absl::MutexLock lock(&w.mu);
    abs = JoinPhysical(w.cwd, path);
  } else {
    int fd = WorkerFd(w, req, call.dirfd);
    if (fd < 0) return Answer::Error(-fd, "the directory fd is not an open fd of the worker");
    UniqueFd copy(fd);
    std::string dir = FdTarget(copy.get());
    struct stat st;
    if (dir.empty() || dir[0] != '/' || fstat(copy.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Answer::Error(ENOTDIR, "the directory fd is not a directory the broker can name");
    }
    abs = JoinPhysical(dir, path);
  }

  if (call.op == Op::kUnsupported) {
    const bool chown = absl::StrContains(call.syscall, "chown");
    return Answer::Error(chown ? EPERM : EACCES,
                         absl::StrCat(call.syscall, " is not brokered (refused)"));
  }
  if (call.op == Op::kXattrRead) {
    Answer a;
    a.error = EOPNOTSUPP;
    a.reason = "extended attributes are not served";
    return a;
  }

  // The #! script being run: its interpreter reads it by the path the broker gave it,
  // read-only, from the file the broker checked at spawn (a new open file description,
  // not the path again), with no rule or promise: running a script is reading it.
  if (w.script_fd.valid() && abs == w.script_path && call.op == Op::kOpen &&
      IsReadOnlyOpen(call.flags) && (call.flags & (O_DIRECTORY | O_PATH)) == 0) {
    int fd = open(absl::StrCat("/proc/self/fd/", w.script_fd.get()).c_str(),
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Answer::Error(errno, "reopening the #! script");
    Answer a;
    a.fd.reset(fd);
    a.cloexec = (call.flags & O_CLOEXEC) != 0;
    a.reason = "the #! script being run";
    return a;
  }

  // 4. Who decides: the worker's rules, else the libc set, else (exec'd image) the
  // loader set. The sets serve reads only and need no promise.
  const FsPolicy* fs = nullptr;
  bool needs_promise = true;
  const bool read_only =
      (call.op == Op::kOpen && IsReadOnlyOpen(call.flags)) || call.op == Op::kStat ||
      call.op == Op::kReadlink || (call.op == Op::kAccess && (call.mode & W_OK) == 0);
  // Shells open /dev/null with O_WRONLY|O_CREAT|O_TRUNC for `> /dev/null`.
  const bool dev_null_write = call.op == Op::kOpen && abs == "/dev/null" &&
                              (call.flags & O_TMPFILE) != O_TMPFILE;
  if (w.fs != nullptr && w.fs->Covers(abs)) {
    fs = w.fs;
  } else if (w.libc_set && (read_only || dev_null_write) && libc_->Covers(abs)) {
    fs = &*libc_;
    needs_promise = false;
    if (call.op == Op::kOpen && (call.flags & O_DIRECTORY) != 0) {
      return Answer::Error(EACCES, "the libc set serves files, not directories");
    }
  } else if (w.exec_image && read_only && loader_->Covers(abs)) {
    fs = &*loader_;
    needs_promise = false;
  } else if (w.libc_set && read_only && absl::StartsWith(abs, "/proc/")) {
    // /proc/self/NAME and /proc/thread-self/NAME of the libc set: the WORKER's files.
    for (const LibcSetEntry& e : LibcProcSelfSet()) {
      std::string target;
      // The calling thread's own process (after a fork inside the worker, not the first
      // one): /proc/TID/NAME names the process of thread TID.
      if (abs == absl::StrCat("/proc/self/", e.path)) target = absl::StrCat("/proc/", tid, "/", e.path);
      if (abs == absl::StrCat("/proc/thread-self/", e.path)) {
        target = absl::StrCat("/proc/", tid, "/task/", tid, "/", e.path);
      }
      if (target.empty()) continue;
      if (call.op != Op::kOpen) return Answer::Error(EACCES, "only opens of /proc/self files");
      int fd = open(target.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) return Answer::Error(errno, absl::StrCat("open ", target));
      Answer a;
      a.fd.reset(fd);
      a.cloexec = (call.flags & O_CLOEXEC) != 0;
      a.reason = absl::StrCat("libc set: the worker's own ", target);
      return a;
    }
  }
  const PromiseSet held = CallerPromises(w, static_cast<pid_t>(req.pid));
  const Promise needed = call.MissingPromise(held);
  const bool promised = (call.NeededPromises().bits() & ~held.bits()) == 0;
  std::string learned_reason;
  if (w.penalty == Penalty::kLog && (fs == nullptr || (needs_promise && !promised))) {
    // Learning mode: do it, and record what it needed.
    learned_reason = fs == nullptr ? "no rule covers the path" : "a promise is missing";
    fs = &*learning_;
    needs_promise = false;
  }
  if (fs == nullptr && std::find(absent_.begin(), absent_.end(), abs) != absent_.end()) {
    Answer a;
    a.error = ENOENT;
    a.reason = "a libc/loader set file that does not exist here";
    return a;
  }
  if (fs == nullptr) {
    // fchmod/fchown of a file the worker was given outside its rules (its stdout
    // redirected to a file): refused as the kernel would refuse a stranger (EPERM).
    Answer a = Answer::Error(fd_attr ? EPERM : ENOENT,
                             w.fs == nullptr ? "the policy has no filesystem rules"
                                             : "no rule covers the path");
    a.path = abs;
    a.refused = true;
    return a;
  }
  if (needs_promise && !promised) {
    Answer a = Answer::Error(EACCES, "the worker's rules cover the path, but not its promises",
                             std::string(PromiseName(needed)));
    a.path = abs;
    return a;
  }
  *learned = learned_reason;
  *abs_out = abs;
  OpenContext ctx;
  ctx.pid = w.pid;
  ctx.tid = tid;
  const char* origin = fs == w.fs         ? "allowed by rule"
                       : fs == &*libc_    ? "libc set"
                       : fs == &*loader_  ? "loader set"
                                          : "learning mode";

  // 5. The call itself.
  switch (call.op) {
    case Op::kOpen: {
      // An O_PATH file cannot be injected (SECCOMP_IOCTL_NOTIF_ADDFD refuses it): the
      // worker gets a read-only fd of the same file instead, under the same `r`.
      uint32_t flags = call.flags;
      if ((flags & O_PATH) != 0) {
        flags = O_RDONLY | (flags & (O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      }
      // A file it may create gets the program's umask, as its own open would.
      const uint32_t mode =
          (flags & (O_CREAT | __O_TMPFILE)) != 0 ? call.mode & ~WorkerUmask(tid) : call.mode;
      absl::StatusOr<UniqueFd> fd = fs->Open(abs, flags, mode, ctx);
      // glibc's setlocale() opens a locale category that may be a directory
      // (C.utf8/LC_MESSAGES) without O_DIRECTORY, then fstats it: in the libc set's
      // locale tree, a read-only directory fd is what it expects.
      if (!fd.ok() && ErrnoOf(fd.status()) == EISDIR && fs == &*libc_ &&
          absl::StartsWith(abs, "/usr/lib/locale/") && (flags & O_ACCMODE) == O_RDONLY) {
        fd = fs->Open(abs, flags | O_DIRECTORY, mode, ctx);
      }
      if (!fd.ok()) {
        int err = ErrnoOf(fd.status());
        return Answer::Error(err != 0 ? err : EACCES, std::string(fd.status().message()));
      }
      Answer a;
      a.fd = *std::move(fd);
      a.cloexec = (call.flags & O_CLOEXEC) != 0;
      a.reason = origin;
      return a;
    }
    case Op::kStat:
    case Op::kAccess:
    case Op::kReadlink:
    case Op::kChdir:
    case Op::kFchdir: {
      const bool follow = call.op == Op::kReadlink ? false
                          : (call.at_flags & AT_SYMLINK_NOFOLLOW) == 0;
      absl::StatusOr<FsPolicy::Lookup> found = fs->LookupPath(abs, follow, ctx);
      if (!found.ok()) {
        int err = ErrnoOf(found.status());
        return Answer::Error(err != 0 ? err : EACCES, std::string(found.status().message()));
      }
      const int fd = found->fd.get();
      Answer a;
      a.reason = origin;
      if (call.op == Op::kStat) {
        if (call.statx) {
          struct statx stx;
          if (statx(fd, "", AT_EMPTY_PATH | (call.at_flags & AT_STATX_SYNC_TYPE),
                    call.statx_mask, &stx) != 0) {
            return Answer::Error(errno, "statx");
          }
          int rc = WriteWorkerMemory(tid, call.buf, &stx, sizeof(stx));
          if (rc != 0) return Answer::Error(-rc, "the statx buffer is not writable");
        } else {
          struct stat st;
          if (fstat(fd, &st) != 0) return Answer::Error(errno, "fstat");
          int rc = WriteWorkerMemory(tid, call.buf, &st, sizeof(st));
          if (rc != 0) return Answer::Error(-rc, "the stat buffer is not writable");
        }
      } else if (call.op == Op::kAccess) {
        const PathRule& r = found->rule;
        if (((call.mode & R_OK) && !r.read) || ((call.mode & W_OK) && !r.write) ||
            ((call.mode & X_OK) && !r.exec && !(fs == &*loader_))) {
          return Answer::Error(EACCES, "the rule does not grant that access");
        }
        if (syscall(SYS_faccessat2, fd, "", call.mode & 7, AT_EMPTY_PATH | AT_EACCESS) != 0) {
          Answer b = Answer::Error(errno, "faccessat2");
          b.refused = false;  // the file's own mode says no: not a refusal of the broker's
          return b;
        }
      } else if (call.op == Op::kReadlink) {
        struct stat lst;
        if (call.bufsize == 0) return Answer::Error(EINVAL, "readlink with a size of 0");
        if (fstatat(fd, "", &lst, AT_EMPTY_PATH) != 0 || !S_ISLNK(lst.st_mode)) {
          Answer b = Answer::Error(EINVAL, "not a symlink");
          b.refused = false;
          return b;
        }
        char buf[PATH_MAX];
        ssize_t n = readlinkat(fd, "", buf, sizeof(buf));
        if (n < 0) {
          Answer b = Answer::Error(errno, "readlink");
          b.refused = false;
          return b;
        }
        size_t len = std::min<uint64_t>(static_cast<size_t>(n), call.bufsize);
        int rc = WriteWorkerMemory(tid, call.buf, buf, len);
        if (rc != 0) return Answer::Error(-rc, "the readlink buffer is not writable");
        a.val = static_cast<int64_t>(len);
      } else {
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
          return Answer::Error(ENOTDIR, "not a directory");
        }
        std::string real = FdTarget(fd);
        if (real.empty() || real[0] != '/') return Answer::Error(ENOENT, "no path");
        absl::MutexLock lock(&w.mu);
        w.cwd = real;
      }
      return a;
    }
    case Op::kTruncate:
    case Op::kChmod:
    case Op::kUtimes:
    case Op::kStatfs: {
      absl::StatusOr<FsPolicy::Lookup> found =
          fs->LookupPath(abs, (call.at_flags & AT_SYMLINK_NOFOLLOW) == 0, ctx);
      if (!found.ok()) {
        int err = ErrnoOf(found.status());
        return Answer::Error(err != 0 ? err : EACCES, std::string(found.status().message()));
      }
      Answer a;
      a.reason = origin;
      if (call.op != Op::kStatfs && !found->rule.write) {
        return Answer::Error(EACCES, "changing a file needs 'w'");
      }
      const std::string proc = absl::StrCat("/proc/self/fd/", found->fd.get());
      int rc = 0;
      if (call.op == Op::kStatfs) {
        struct statfs sfs;
        rc = fstatfs(found->fd.get(), &sfs);
        if (rc == 0 && (rc = WriteWorkerMemory(tid, call.buf, &sfs, sizeof(sfs))) != 0) {
          return Answer::Error(-rc, "the statfs buffer is not writable");
        }
      } else if (call.op == Op::kTruncate) {
        absl::StatusOr<UniqueFd> wfd = fs->Open(abs, O_WRONLY | O_NONBLOCK, 0, ctx);
        if (!wfd.ok()) {
          int err = ErrnoOf(wfd.status());
          return Answer::Error(err != 0 ? err : EACCES, std::string(wfd.status().message()));
        }
        rc = ftruncate(wfd->get(), static_cast<off_t>(call.bufsize));
      } else if (call.op == Op::kChmod) {
        rc = chmod(proc.c_str(), call.mode & 0777);  // never setuid, setgid or sticky
      } else {
        struct timespec times[2];
        if (call.buf != 0 &&
            (rc = ReadWorkerMemory(tid, call.buf, times, sizeof(times))) != 0) {
          return Answer::Error(-rc, "the times are not readable");
        }
        rc = utimensat(AT_FDCWD, proc.c_str(), call.buf != 0 ? times : nullptr, 0);
      }
      if (rc != 0) {
        Answer b = Answer::Error(errno, call.syscall);
        b.refused = false;
        return b;
      }
      return a;
    }
    case Op::kFchmod:
    case Op::kFchown: {
      // The file the fd names now, looked up beneath the rules without following a final
      // symlink, must be the fd's own file (not renamed away, not replaced), under a `w`
      // rule, and the fd open for writing: the worker may already change that file's
      // contents, and nothing it was handed read-only or outside its rules.
      absl::StatusOr<FsPolicy::Lookup> found = fs->LookupPath(abs, /*follow=*/false, ctx);
      if (!found.ok()) {
        return Answer::Error(EPERM, absl::StrCat("the fd's file: ", found.status().message()));
      }
      if (!found->rule.write) return Answer::Error(EPERM, "changing a file needs 'w'");
      struct stat named, held;
      if (fstat(found->fd.get(), &named) != 0 || fstat(attr_fd.get(), &held) != 0 ||
          named.st_dev != held.st_dev || named.st_ino != held.st_ino) {
        return Answer::Error(EPERM, "the fd's file is no longer the one at its path");
      }
      const int fl = fcntl(attr_fd.get(), F_GETFL);
      if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || (fl & O_PATH) != 0) {
        return Answer::Error(EPERM, "an fd not open for writing");
      }
      Answer a;
      a.reason = origin;
      if (call.op == Op::kFchmod) {
        if (fchmod(attr_fd.get(), call.mode & 0777) != 0) {  // never setuid, setgid or sticky
          Answer b = Answer::Error(errno, "fchmod");
          b.refused = false;
          return b;
        }
        return a;
      }
      // fchown: the broker changes no owner (the worker is nobody; a file the broker made
      // is its own). Asked for what the file already has (or -1: unchanged), as programs
      // that copy a file's attributes do, it succeeds without doing anything.
      const uint32_t uid = static_cast<uint32_t>(call.args[1]);
      const uint32_t gid = static_cast<uint32_t>(call.args[2]);
      if ((uid != 0xffffffffu && uid != held.st_uid) ||
          (gid != 0xffffffffu && gid != held.st_gid)) {
        return Answer::Error(EPERM, "fchown to another owner or group (the worker is nobody)");
      }
      a.reason = absl::StrCat(origin, "; the owner and group it already has: nothing to do");
      return a;
    }
    default:
      break;
  }
  // Create/delete: the parent is looked up beneath the rules, the final name is acted
  // on with the *at call (which never follows a final symlink for these).
  auto split = [](const std::string& p, std::string* parent, std::string* name) {
    size_t slash = p.find_last_of('/');
    *parent = slash == 0 ? "/" : p.substr(0, slash);
    *name = p.substr(slash + 1);
    return !name->empty() && *name != "." && *name != "..";
  };
  std::string parent, name;
  if (!split(abs, &parent, &name)) return Answer::Error(EINVAL, "no final name");
  absl::StatusOr<PathRule> rule = fs->RuleFor(abs);
  if (!rule.ok()) {
    int err = ErrnoOf(rule.status());
    return Answer::Error(err != 0 ? err : EACCES, std::string(rule.status().message()));
  }
  if (!rule->create) return Answer::Error(EACCES, "creating or removing needs 'c'");
  absl::StatusOr<FsPolicy::Lookup> dir = fs->LookupPath(parent, true, ctx);
  if (!dir.ok()) {
    int err = ErrnoOf(dir.status());
    return Answer::Error(err != 0 ? err : EACCES, std::string(dir.status().message()));
  }
  // The rule where the parent really is decides too: a parent spelled through a
  // symlink may have led beneath a narrower rule (review h71).
  auto entry_rule = [&](int dirfd, const std::string& entry,
                        const char* what) -> std::optional<Answer> {
    absl::StatusOr<PathRule> landed = fs->RuleForEntry(dirfd, entry);
    if (!landed.ok()) {
      int err = ErrnoOf(landed.status());
      return Answer::Error(err != 0 ? err : EACCES, std::string(landed.status().message()));
    }
    if (!landed->create) {
      return Answer::Error(EACCES, absl::StrCat(what, " needs 'c' where the path really leads (",
                                                landed->path, ")"));
    }
    return std::nullopt;
  };
  if (std::optional<Answer> no = entry_rule(dir->fd.get(), name, "creating or removing")) {
    return *std::move(no);
  }
  Answer a;
  a.reason = origin;
  int rc = 0;
  switch (call.op) {
    case Op::kMkdir:
      rc = mkdirat(dir->fd.get(), name.c_str(), call.mode & 0777 & ~WorkerUmask(tid));
      break;
    case Op::kUnlink:
      rc = unlinkat(dir->fd.get(), name.c_str(), 0);
      break;
    case Op::kRmdir:
      rc = unlinkat(dir->fd.get(), name.c_str(), AT_REMOVEDIR);
      break;
    case Op::kRename: {
      std::string abs2 = path2;
      if (abs2.empty()) return Answer::Error(ENOENT, "an empty path");
      if (abs2[0] != '/' && call.dirfd2 == AT_FDCWD) {
        absl::MutexLock lock(&w.mu);
        abs2 = JoinPhysical(w.cwd, abs2);
      } else if (abs2[0] != '/') {
        // Relative to a directory fd of the worker (`mv FILE DIR/` opens DIR; review
        // h72), named as the source's is: the rules then decide that path, and where it
        // really leads (RuleForEntry below).
        int fd2 = WorkerFd(w, req, call.dirfd2);
        if (fd2 < 0) return Answer::Error(-fd2, "the target's directory fd is not an open fd of the worker");
        UniqueFd copy2(fd2);
        std::string dir2_path = FdTarget(copy2.get());
        struct stat st2;
        if (dir2_path.empty() || dir2_path[0] != '/' || fstat(copy2.get(), &st2) != 0 ||
            !S_ISDIR(st2.st_mode)) {
          return Answer::Error(ENOTDIR, "the target's directory fd is not a directory the broker can name");
        }
        abs2 = JoinPhysical(dir2_path, abs2);
      }
      std::string parent2, name2;
      if (!split(abs2, &parent2, &name2)) return Answer::Error(EINVAL, "no final name");
      if (fs != w.fs && fs != &*learning_) return Answer::Error(EACCES, "rename in a libc set");
      absl::StatusOr<PathRule> rule2 = fs->RuleFor(abs2);
      if (!rule2.ok() || !rule2->create) return Answer::Error(EACCES, "rename target needs 'c'");
      absl::StatusOr<FsPolicy::Lookup> dir2 = fs->LookupPath(parent2, true, ctx);
      if (!dir2.ok()) {
        int err = ErrnoOf(dir2.status());
        return Answer::Error(err != 0 ? err : EACCES, std::string(dir2.status().message()));
      }
      if ((call.flags & ~static_cast<uint32_t>(RENAME_NOREPLACE)) != 0) {
        return Answer::Error(EINVAL, "renameat2 flags other than RENAME_NOREPLACE");
      }
      if (std::optional<Answer> no = entry_rule(dir2->fd.get(), name2, "a rename target")) {
        return *std::move(no);
      }
      // Neither end may hold a rule beneath it: a narrower rule (a deny rule, a read-only
      // one) would stay at its path while its files moved under the wider one (h71).
      for (const auto& [dirfd, entry] : {std::pair<int, const std::string*>{dir->fd.get(), &name},
                                         std::pair<int, const std::string*>{dir2->fd.get(), &name2}}) {
        absl::Status beneath = fs->CheckNoRuleBeneath(dirfd, *entry);
        if (!beneath.ok()) {
          int err = ErrnoOf(beneath);
          return Answer::Error(err != 0 ? err : EACCES, std::string(beneath.message()));
        }
      }
      rc = static_cast<int>(syscall(SYS_renameat2, dir->fd.get(), name.c_str(),
                                    dir2->fd.get(), name2.c_str(), call.flags));
      break;
    }
    default:
      return Answer::Error(EACCES, absl::StrCat(call.syscall, " is not brokered"));
  }
  if (rc != 0) {
    Answer b = Answer::Error(errno, call.syscall);
    b.refused = false;
    return b;
  }
  return a;
}

PathHandler::Answer PathHandler::Connect(WorkerShared& w, const struct seccomp_notif& req,
                                         const PathCall& call, std::string* described) {
  const pid_t tid = static_cast<pid_t>(req.pid);
  struct sockaddr_storage addr = {};
  const size_t len = std::min<uint64_t>(call.bufsize, sizeof(addr));
  *described = DescribePathCall(call, "<unreadable>");
  if (call.bufsize < sizeof(sa_family_t) || call.bufsize > sizeof(addr)) {
    return Answer::Error(EINVAL, "bad address length");
  }
  int rc = ReadWorkerMemory(tid, call.buf, &addr, len);
  if (rc != 0) return Answer::Error(-rc, "the address is not readable in the worker's memory");
  uint64_t id = req.id;
  if (ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) {
    Answer a;
    a.error = ENOENT;
    return a;
  }
  int fd = WorkerFd(w, req, call.dirfd);
  if (fd < 0) {
    *described = DescribePathCall(call, "?");
    return Answer::Error(-fd, "not an open fd of the worker");
  }
  UniqueFd copy(fd);
  int type = 0;
  socklen_t optlen = sizeof(type);
  if (getsockopt(copy.get(), SOL_SOCKET, SO_TYPE, &type, &optlen) != 0) {
    return Answer::Error(ENOTSOCK, "not a socket");
  }
  ConnectTarget target;
  std::string shown;
  Promise needed = Promise::kInet;
  if (addr.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    target.address.assign(reinterpret_cast<const char*>(&in->sin_addr), 4);
    target.port = ntohs(in->sin_port);
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    shown = absl::StrCat(text, ":", target.port);
  } else if (addr.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    target.address.assign(reinterpret_cast<const char*>(&in6->sin6_addr), 16);
    target.port = ntohs(in6->sin6_port);
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    shown = absl::StrCat("[", text, "]:", target.port);
  } else if (addr.ss_family == AF_UNIX) {
    needed = Promise::kUnix;
    const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
    const size_t path_len = len - offsetof(sockaddr_un, sun_path);
    if (path_len == 0 || un->sun_path[0] == '\0') {
      *described = DescribePathCall(call, "unix abstract");
      return Answer::Error(EACCES, "abstract unix sockets are never reachable", "");
    }
    target.transport = ConnectRule::Transport::kUnix;
    target.unix_path.assign(un->sun_path, strnlen(un->sun_path, path_len));
    shown = absl::StrCat("unix ", target.unix_path);  // escaped by DescribePathCall
  } else {
    *described = DescribePathCall(call, absl::StrCat("family ", addr.ss_family));
    return Answer::Error(EAFNOSUPPORT, "an address family the broker does not connect");
  }
  *described = DescribePathCall(call, shown);
  if (!CallerPromises(w, static_cast<pid_t>(req.pid)).contains(needed)) {
    return Answer::Error(EACCES, "the promise for this address family is missing",
                         std::string(PromiseName(needed)));
  }
  if (target.transport != ConnectRule::Transport::kUnix) {
    if (type == SOCK_STREAM) {
      target.transport = ConnectRule::Transport::kTcp;
    } else if (type == SOCK_DGRAM) {
      target.transport = ConnectRule::Transport::kUdp;
    } else {
      return Answer::Error(EPROTOTYPE, "only stream and datagram sockets are connected");
    }
  }
  if (!CallerPromises(w, static_cast<pid_t>(req.pid)).contains(needed)) {
    return Answer::Error(EACCES, "the promise for this address family is missing",
                         std::string(PromiseName(needed)));
  }
  if (w.net == nullptr) return Answer::Error(EACCES, "the policy has no connect rules");
  absl::StatusOr<UniqueFd> connected = w.net->Connect(target, MonotonicNow() + absl::Seconds(5));
  if (!connected.ok()) {
    int err = ErrnoOf(connected.status());
    return Answer::Error(err != 0 ? err : EACCES, std::string(connected.status().message()));
  }
  // The worker's socket keeps its number; the broker's connected one takes its place,
  // with the worker's O_NONBLOCK.
  int fl = fcntl(copy.get(), F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK) != 0) {
    fcntl(connected->get(), F_SETFL, fcntl(connected->get(), F_GETFL) | O_NONBLOCK);
  }
  Answer a;
  a.fd = *std::move(connected);
  a.replace_fd = call.dirfd;
  a.cloexec = true;
  // FD_CLOEXEC of the worker's fd: from /proc/PID/fdinfo (flags, octal).
  {
    std::string info = absl::StrCat("/proc/", req.pid, "/fdinfo/", call.dirfd);
    char buf[256] = {};
    int ifd = open(info.c_str(), O_RDONLY | O_CLOEXEC);
    if (ifd >= 0) {
      ssize_t n = read(ifd, buf, sizeof(buf) - 1);
      close(ifd);
      const char* f = n > 0 ? strstr(buf, "flags:") : nullptr;
      if (f != nullptr) a.cloexec = (strtoul(f + 6, nullptr, 8) & O_CLOEXEC) != 0;
    }
  }
  a.reason = "allowed by rule";
  return a;
}

void PathHandler::Handle(WorkerShared& w, const struct seccomp_notif& req,
                         const PathCall& call) {
  std::string described;
  Answer a = Decide(w, req, call, &described);
  // Learning mode: a refusal for a missing promise or rule is recorded and the call is
  // still refused (the broker cannot let the kernel resolve a path: that would be
  // CONTINUE for a path). What it would have needed is in the record.
  const bool allowed = a.error == 0;
  Audit(w, described, allowed,
        a.learning ? absl::StrCat("allowed (learning): ", a.reason)
        : allowed  ? a.reason
                   : absl::StrCat(strerrorname_np(a.error) ?: "?", ": ", a.reason));
  if (a.refused) {
    Refusal r;
    r.call = described;
    r.err = a.error;
    r.reason = a.reason;
    r.promise = a.promise;
    r.learning = a.learning;
    r.path = a.path;
    const Promise main = call.MissingPromise(CallerPromises(w, static_cast<pid_t>(req.pid)));
    r.needed = std::string(PromiseName(main));
    r.letter = main == Promise::kCpath ? 'c' : main == Promise::kWpath ? 'w' : 'r';
    absl::MutexLock lock(&w.mu);
    if (w.refusals.size() < 1000) {
      w.refusals.push_back(std::move(r));
    } else {
      ++w.refusals_dropped;
    }
  }
  if (a.fd.valid() && a.replace_fd >= 0) {
    struct seccomp_notif_addfd addfd = {};
    addfd.id = req.id;
    addfd.flags = SECCOMP_ADDFD_FLAG_SETFD;
    addfd.srcfd = static_cast<uint32_t>(a.fd.get());
    addfd.newfd = static_cast<uint32_t>(a.replace_fd);
    addfd.newfd_flags = a.cloexec ? O_CLOEXEC : 0;
    if (ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) < 0) {
      if (errno == ENOENT) return;
      a.error = errno;
    }
    a.fd.reset();
  }
  if (a.fd.valid()) {
    struct seccomp_notif_addfd addfd = {};
    addfd.id = req.id;
    addfd.flags = SECCOMP_ADDFD_FLAG_SEND;
    addfd.srcfd = static_cast<uint32_t>(a.fd.get());
    addfd.newfd_flags = a.cloexec ? O_CLOEXEC : 0;
    // Returns the fd number in the worker; the kernel completes the call with it. On
    // failure (the worker died, its fd table is full: EMFILE) answer with the errno.
    if (ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) >= 0) return;
    a.error = errno == EMFILE ? EMFILE : errno;
    if (a.error == ENOENT) return;  // the thread is gone
  }
  struct seccomp_notif_resp resp = {};
  resp.id = req.id;
  if (a.cont) {
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  } else if (a.error != 0) {
    resp.error = -a.error;
  } else {
    resp.val = a.val;
  }
  ioctl(w.listener.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

}  // namespace vow
