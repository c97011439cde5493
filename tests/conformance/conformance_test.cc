// The conformance harness: for each (libc, case), a real broker (this process) spawns the
// glibc or musl conformance worker with Broker::SpawnExec under the policy the case needs,
// with stdio on the kind of file the case asks for, and checks exactly how it ended:
// exit 0 for permitted behaviour; for denials the result kind, the syscall the broker
// named, the promise it says would allow it, and who reported it. Nothing here installs a
// sandbox on the test process itself.
//
// Environment: every worker gets the test's environment (SpawnExec passes it on, minus
// VOW_*). TZ=UTC is set for the whole run (see README.md, "time zones"); cases that need
// TZ unset or GLIBC_TUNABLES set change the environment around their SpawnExec only.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sched.h>
#include <sys/sysinfo.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/match.h"
#include "base/unique_fd.h"
#include "broker/broker.h"
#include "gtest/gtest.h"
#include "policies/promise_compiler.h"
#include "policies/promises.h"

namespace vow {
namespace {

using Kind = WorkerResult::Kind;

enum class Libc { kGlibc, kMusl };
// What fds 0 and 1 of the worker are.
enum class Stdio { kPipe, kFile, kSocket, kPty };
// What the harness prepares for the case; its arguments name it with placeholders.
enum class Setup {
  kNone,
  kRpathTree,   // $DIR holds a.txt ("hello rpath") and sub/
  kEmptyDir,    // $DIR is empty, and must be empty again after the case
  kTcpServer,   // $PORT: 127.0.0.1 port that answers "ping" with "pong"
  kUnixServer,  // $SOCK: AF_UNIX stream socket path, same
};
enum class Tz { kUtc, kUnset, kBerlin };

// How the worker must end.
struct Expect {
  Kind kind = Kind::kExited;
  int exit_code = 0;  // kExited
  int signal = 0;     // kSignaled
  // kViolation: the fatal syscall. kExited with `recorded`: the only violation the
  // broker recorded (penalties errno and trap). Empty with kExited: none recorded.
  std::string syscall;
  std::string allowed_by;
  bool from_kernel = true;
  std::optional<std::string> stdout_exact;
  std::string stderr_contains;
  // kExited: a path call the broker refused, recorded with this text in it (e.g.
  // "newfstatat(\"/etc/passwd\"").
  std::string refusal;
  // kExited: the broker refused no path call at all (the libc_* cases: everything libc
  // reads on its own must be served).
  bool no_refusals = false;
};

struct Case {
  std::string name;
  std::string worker_case;
  std::vector<std::string> args;
  PromiseSet promises = PromiseSet{Promise::kStdio};
  Penalty penalty = Penalty::kKill;
  Stdio stdio = Stdio::kFile;
  Setup setup = Setup::kNone;
  Tz tz = Tz::kUtc;
  bool rseq_off = false;  // GLIBC_TUNABLES=glibc.pthread.rseq=0
  absl::Duration timeout = absl::Seconds(60);  // then the worker is killed and it fails
  std::optional<std::vector<std::string>> musl_args;  // musl's, when they differ
  bool glibc = true;
  bool musl = true;
  // A vow bug makes this case fail (the expectation is what the issue requires): the
  // test is registered DISABLED_ so the suite stays green, and this says why. Run it
  // with --gtest_also_run_disabled_tests. Listed in README.md.
  std::string known_bug;
  bool known_bug_musl_only = false;
  bool known_bug_glibc_only = false;
  Expect expect;                      // both libcs...
  std::optional<Expect> musl_expect;  // ...unless musl differs
};

struct Param {
  Libc libc;
  Case c;
};

// ---- expectations ------------------------------------------------------------------

Expect Exits0() { return Expect{}; }

// Whether this kernel runs i386 `int 0x80` at all (IA32 emulation may be compiled out or
// disabled with ia32_emulation=0): probed in a child without any filter.
bool HasIa32() {
#if defined(__x86_64__)
  static const bool has = [] {
    pid_t pid = fork();
    if (pid == 0) {
      long rc;
      __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L /* i386 getpid */) : "memory");
      _exit(rc > 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }();
  return has;
#else
  return false;
#endif
}
Expect Prints(std::string out) {
  Expect e;
  e.stdout_exact = std::move(out);
  return e;
}
Expect KilledFor(std::string syscall, std::string allowed_by) {
  Expect e;
  e.kind = Kind::kViolation;
  e.syscall = std::move(syscall);
  e.allowed_by = std::move(allowed_by);
  return e;
}
Expect Signaled(int sig) {
  Expect e;
  e.kind = Kind::kSignaled;
  e.signal = sig;
  return e;
}
// A path call the broker refused: the case's CHECK fails (exit 2), the worker is not
// killed, and the refusal names the call and its path.
Expect PathRefused(std::string call) {
  Expect e;
  e.exit_code = 2;
  e.refusal = std::move(call);
  return e;
}
// The worker lived (penalty errno/trap), the call failed, and the broker recorded it.
Expect RefusedAndRecorded(std::string syscall, bool from_kernel) {
  Expect e;
  e.syscall = std::move(syscall);
  e.from_kernel = from_kernel;
  return e;
}

std::string PenaltyName(Penalty p) {
  switch (p) {
    case Penalty::kKill: return "kill";
    case Penalty::kErrno: return "errno";
    case Penalty::kTrap: return "trap";
    case Penalty::kLog: return "log";
  }
  return "?";
}

PromiseSet AllPromises() {
  PromiseSet s;
  for (int i = 0; i < kPromiseCount; ++i) s.insert(static_cast<Promise>(i));
  return s;
}

// The highest syscall number the compiler's tables (libseccomp) know for this arch.
int HighestKnownSyscall() {
  int highest = -1;
  for (int nr = 0; nr < 1024; ++nr) {
    if (!absl::StartsWith(SyscallName(NativeArch(), nr), "syscall_")) highest = nr;
  }
  return highest;
}

// ---- the case list -----------------------------------------------------------------

std::vector<Case> PermittedCases() {
  std::vector<Case> cases;
  auto add = [&](Case c) { cases.push_back(std::move(c)); };

  // stdio on a pipe, a file, a socket and a pty: the first printf/fputs/fgets after
  // lock-down, and isatty.
  const struct {
    Stdio stdio;
    const char* name;
  } kinds[] = {{Stdio::kPipe, "pipe"}, {Stdio::kFile, "file"}, {Stdio::kSocket, "socket"},
               {Stdio::kPty, "pty"}};
  for (const auto& k : kinds) {
    Case c;
    c.stdio = k.stdio;
    c.name = absl::StrCat("printf_", k.name);
    c.worker_case = "printf";
    c.expect = Prints("printf ok 42\n");
    add(c);
    c.name = absl::StrCat("fputs_", k.name);
    c.worker_case = "fputs";
    c.expect = Prints("fputs ok\n");
    add(c);
    c.name = absl::StrCat("fgets_", k.name);
    c.worker_case = "fgets";
    c.expect = Prints("got: fgets input\n");
    add(c);
    c.name = absl::StrCat("isatty_", k.name);
    c.worker_case = "isatty";
    c.args = {k.stdio == Stdio::kPty ? "1" : "0"};
    c.expect = Prints("");
    add(c);
  }

  auto simple = [&](std::string name, std::vector<std::string> args = {}) {
    Case c;
    c.name = name;
    c.worker_case = name;
    c.args = std::move(args);
    c.expect = Exits0();
    return c;
  };
  add(simple("fstat"));  // fd 0 is a regular file (Stdio::kFile)
  {
    // glibc 2.36's stat() is newfstatat(AT_FDCWD, path, buf, 0); musl 1.2.3's is stat().
    // Path calls are the broker's: no rule covers /etc/passwd, so they are refused
    // (ENOENT), recorded with the path, and the worker lives.
    Case c = simple("stat_path", {"/etc/passwd"});
    c.expect = PathRefused("newfstatat(\"/etc/passwd\")");
    c.expect.exit_code = 3;  // the case reports what stat() returned (VOW_CASE_RAN)
    c.expect.stderr_contains = "returned -1 (errno 2)";
    c.musl_expect = c.expect;
    c.musl_expect->refusal = "stat(\"/etc/passwd\")";
    add(c);
    c = simple("statx_path", {"/etc/passwd"});
    c.expect = PathRefused("statx(\"/etc/passwd\")");
    c.expect.exit_code = 3;
    c.expect.stderr_contains = "returned -1 (errno 2)";
    c.musl_expect.reset();
    add(c);
  }
  add(simple("sleep"));
  for (const char* name : {"poll", "select", "epoll"}) {
    // The C++ lock-down leaves the broker's HelloReply queued on the channel (it does not
    // wait for it; the Client skips it later); the C lock-down reads it.
    Case c = simple(name, {"queued"});
    c.musl_args = std::vector<std::string>{"empty"};
    add(c);
  }
  add(simple("malloc"));
  {
    Case c = simple("qsort", {"1024"});
    c.name = "qsort_1k";
    add(c);
    c.name = "qsort_64m";
    c.args = {"67108864"};
    c.timeout = absl::Seconds(300);  // musl's smoothsort: ~34 s alone on this machine
    add(c);
  }
  add(simple("getrandom"));
  {
    Case c = simple("arc4random");
    c.musl = false;  // musl 1.2.3 has no arc4random
    add(c);
  }
  add(simple("localtime"));
  {
    // glibc without warming: the first localtime() opens /usr/share/zoneinfo/UTC;
    // musl reads no file for TZ=UTC. Both from the libc set, with no rule written.
    Case c = simple("localtime_cold");
    add(c);
    // TZ unset: glibc stats /etc/localtime at every localtime(); musl opens it once.
    c = simple("localtime");
    c.name = "localtime_tz_unset";
    c.tz = Tz::kUnset;
    add(c);
  }
  {
    Case c = simple("pthread", {"rseq_on"});
    c.promises = PromiseSet{Promise::kStdio, Promise::kThread};
    add(c);
    c.name = "pthread_rseq_off";
    c.args = {"rseq_off"};
    c.rseq_off = true;
    c.musl = false;  // a glibc tunable
    add(c);
    // Without `thread`: clone3 gets ENOSYS, then clone with thread flags is refused.
    c = simple("pthread_refused");
    c.expect = KilledFor("clone", "thread");
    add(c);
  }
  {
    Case c = simple("perror");
    c.expect.stderr_contains = "conformance perror: No such file or directory";
    add(c);
    c = simple("assert");
    c.expect = Signaled(SIGABRT);
    c.expect.stderr_contains = "argc == 12345";
    add(c);
    c = simple("abort");
    c.expect = Signaled(SIGABRT);
    add(c);
    // abort() in a second thread: glibc's raise() is tgkill(getpid(), gettid()), allowed;
    // musl's is tkill(gettid()), and stdio's tkill rule can only name the pid (the main
    // thread's tid): another thread's tkill is refused.
    c = simple("abort_in_thread");
    c.promises = PromiseSet{Promise::kStdio, Promise::kThread};
    c.expect = Signaled(SIGABRT);
    c.known_bug =
        "stdio allows tkill only to the main thread (tid == pid); musl's abort() in "
        "another thread is tkill(its tid)";
    c.known_bug_musl_only = true;
    add(c);
  }
  {
    Case c = simple("fopen_read", {"$DIR/a.txt", "hello rpath"});
    c.promises = PromiseSet{Promise::kStdio, Promise::kRpath};
    c.setup = Setup::kRpathTree;
    add(c);
    c.name = c.worker_case = "opendir";
    c.args = {"$DIR", "a.txt", "sub"};
    add(c);
    c.name = c.worker_case = "access";
    c.args = {"$DIR/a.txt"};
    add(c);
    // The same without rpath: the rule covers $DIR, the promise is missing (EACCES).
    c.name = "fopen_refused";
    c.worker_case = "fopen_read";
    c.args = {"$DIR/a.txt", "hello rpath"};
    c.promises = PromiseSet{Promise::kStdio};
    c.expect = PathRefused("promise rpath would allow it");
    c.musl_expect = PathRefused("promise rpath would allow it");
    add(c);
  }
  {
    // O_RDWR reads and writes: rpath and wpath, as on OpenBSD; O_CREAT adds cpath.
    Case c = simple("files", {"$DIR"});
    c.promises = PromiseSet{Promise::kStdio, Promise::kRpath, Promise::kCpath, Promise::kWpath};
    c.setup = Setup::kEmptyDir;
    add(c);
  }
  {
    Case c = simple("tcp", {"$PORT"});
    c.promises = PromiseSet{Promise::kStdio, Promise::kInet};
    c.setup = Setup::kTcpServer;
    add(c);
    c.name = "tcp_refused";
    c.promises = PromiseSet{Promise::kStdio, Promise::kUnix};
    c.expect = KilledFor("socket", "inet");
    add(c);
    c = simple("unix", {"$SOCK"});
    c.promises = PromiseSet{Promise::kStdio, Promise::kUnix};
    c.setup = Setup::kUnixServer;
    add(c);
  }
  {
    // A number in a hole of x86-64's table (335..423 are unassigned).
    Case c = simple("enosys_number", {"400"});
    c.name = "enosys_hole";
    add(c);
  }
  return cases;
}

// ---- what libc reads behind the program's back (issue 7) ----------------------------

const char* TzName(Tz tz) {
  switch (tz) {
    case Tz::kUtc: return "UTC";
    case Tz::kUnset: return nullptr;
    case Tz::kBerlin: return "Europe/Berlin";
  }
  return nullptr;
}

// Sets the harness's own TZ as a worker will see it (nullptr: unset).
void SetTz(const char* tz) {
  if (tz == nullptr) {
    unsetenv("TZ");
  } else {
    setenv("TZ", tz, 1);
  }
  tzset();
}

// What the worker's strftime("%Y-%m-%d %H:%M:%S %Z %z") must print for `t` in `tz`,
// computed here, unsandboxed, with this process's glibc.
std::string LocalText(Tz tz, time_t t) {
  SetTz(TzName(tz));
  struct tm tm;
  char text[96] = {0};
  if (localtime_r(&t, &tm) == nullptr ||
      strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S %Z %z", &tm) == 0) {
    text[0] = '\0';
  }
  SetTz("UTC");
  return text;
}

std::vector<Case> LibcSetCases() {
  const time_t winter = 1609459200, summer = 1625097600;  // 2021-01-01, 2021-07-01 UTC
  cpu_set_t affinity;
  CPU_ZERO(&affinity);
  const int affine =
      sched_getaffinity(0, sizeof(affinity), &affinity) == 0 ? CPU_COUNT(&affinity) : -1;
  std::vector<Case> cases;
  const struct {
    Tz tz;
    const char* name;
  } zones[] = {{Tz::kUnset, "tz_unset"}, {Tz::kUtc, "tz_utc"}, {Tz::kBerlin, "tz_berlin"}};
  for (const auto& zone : zones) {
    auto libc_case = [&](std::string worker_case, std::vector<std::string> args = {}) {
      Case c;
      c.name = absl::StrCat(worker_case, "_", zone.name);
      c.worker_case = std::move(worker_case);
      c.args = std::move(args);
      c.tz = zone.tz;
      c.expect = Exits0();
      c.expect.no_refusals = true;
      return c;
    };
    const std::string w = LocalText(zone.tz, winter), s = LocalText(zone.tz, summer);
    cases.push_back(libc_case("libc_localtime", {w, s}));
    {
      Case c = libc_case("libc_localtime", {w, s, "tzset"});
      c.name = absl::StrCat("libc_tzset_", zone.name);
      cases.push_back(c);
    }
    {
      // glibc reads sysfs (the harness's glibc gives the same answers unsandboxed);
      // musl 1.2.3 counts the affinity mask for all four.
      Case c = libc_case(
          "libc_nprocs",
          {absl::StrCat(sysconf(_SC_NPROCESSORS_ONLN)), absl::StrCat(sysconf(_SC_NPROCESSORS_CONF)),
           absl::StrCat(get_nprocs()), absl::StrCat(get_nprocs_conf())});
      const std::string a = absl::StrCat(affine);
      c.musl_args = std::vector<std::string>{a, a, a, a};
      cases.push_back(c);
    }
    {
      Case c = libc_case("libc_setlocale");
      cases.push_back(c);
    }
    {
      Case c = libc_case("libc_iconv");
      c.musl = false;  // musl's iconv is built in: no files
      cases.push_back(c);
    }
    {
      Case c = libc_case("libc_getattr_np");
      cases.push_back(c);
    }
    {
      Case c = libc_case("libc_arena_shrink");
      c.promises = PromiseSet{Promise::kStdio, Promise::kThread};
      cases.push_back(c);
    }
  }
  return cases;
}

// Denied in every penalty mode and every promise set.
std::vector<Case> DeniedCases() {
  struct Act {
    const char* worker_case;
    const char* syscall;  // what the broker must name; "" for the kernel's own answers
    enum { kRefused, kEnosys, kSigsys } how;
  };
  const Act acts[] = {
      {"tiocsti", "ioctl", Act::kRefused},
      {"tiocsti_high", "ioctl", Act::kRefused},
      {"io_uring_setup", "", Act::kEnosys},
      {"ptrace", "ptrace", Act::kRefused},
      {"process_vm_writev", "process_vm_writev", Act::kRefused},
      {"bpf", "bpf", Act::kRefused},
      {"perf_event_open", "perf_event_open", Act::kRefused},
      {"userfaultfd", "userfaultfd", Act::kRefused},
      {"keyctl", "keyctl", Act::kRefused},
      {"add_key", "add_key", Act::kRefused},
      {"unshare", "unshare", Act::kRefused},
      {"setns", "setns", Act::kRefused},
      {"mount", "mount", Act::kRefused},
      {"clone_newuser", "clone", Act::kRefused},
      {"x32", "", Act::kSigsys},
      {"int80", "", Act::kSigsys},
      {"enosys_number", "", Act::kEnosys},
  };
  using P = Promise;
  const struct {
    const char* name;
    PromiseSet set;
  } sets[] = {
      {"stdio", PromiseSet{P::kStdio}},
      {"files_net", PromiseSet{P::kStdio, P::kRpath, P::kWpath, P::kCpath, P::kDpath,
                               P::kTmppath, P::kFattr, P::kChown, P::kFlock, P::kInet,
                               P::kUnix, P::kDns}},
      {"proc_thread", PromiseSet{P::kStdio, P::kTty, P::kRecvfd, P::kSendfd, P::kProc,
                                 P::kThread, P::kExec, P::kProtExec, P::kId}},
      {"all", AllPromises()},
  };
  const std::string above = absl::StrCat(HighestKnownSyscall() + 1);
  std::vector<Case> cases;
  for (const Act& act : acts) {
    for (Penalty penalty :
         {Penalty::kKill, Penalty::kErrno, Penalty::kTrap, Penalty::kLog}) {
      for (const auto& set : sets) {
        Case c;
        c.name = absl::StrCat("denied_", act.worker_case, "_", PenaltyName(penalty), "_",
                              set.name);
        c.worker_case = act.worker_case;
        c.promises = set.set;
        c.penalty = penalty;
        // TIOCSTI gets a terminal to push into, so only the filter can stop it.
        c.stdio = absl::StartsWith(act.worker_case, "tiocsti") ? Stdio::kPty : Stdio::kFile;
        switch (act.how) {
          case Act::kEnosys:
            c.args = {act.worker_case == std::string("enosys_number") ? above : "ENOSYS"};
            c.expect = Exits0();
            break;
          case Act::kSigsys:
            // i386 `int 0x80`: SIGSYS from the filter, or SIGSEGV from a kernel built
            // without IA32 emulation (then the call never reaches seccomp at all).
            c.expect = Signaled(act.worker_case == std::string("int80") && !HasIa32()
                                    ? SIGSEGV
                                    : SIGSYS);
            break;
          case Act::kRefused:
            c.args = {"EPERM"};
            c.expect = penalty == Penalty::kKill
                           ? KilledFor(act.syscall, "")
                           : RefusedAndRecorded(act.syscall, penalty != Penalty::kTrap);
            // Penalty log included: learning mode refuses (EPERM) what no promise
            // allows, and records it.
            break;
        }
        cases.push_back(std::move(c));
      }
    }
  }
  return cases;
}

std::vector<Param> AllParams() {
  std::vector<Param> params;
  std::vector<Case> cases = PermittedCases();
  std::vector<Case> denied = DeniedCases();
  cases.insert(cases.end(), denied.begin(), denied.end());
  std::vector<Case> libc_set = LibcSetCases();
  cases.insert(cases.end(), libc_set.begin(), libc_set.end());
  for (Libc libc : {Libc::kGlibc, Libc::kMusl}) {
    for (const Case& c : cases) {
      if ((libc == Libc::kGlibc && c.glibc) || (libc == Libc::kMusl && c.musl)) {
        params.push_back(Param{libc, c});
      }
    }
  }
  return params;
}

bool IsKnownBug(const Param& p) {
  return !p.c.known_bug.empty() && (!p.c.known_bug_musl_only || p.libc == Libc::kMusl) &&
         (!p.c.known_bug_glibc_only || p.libc == Libc::kGlibc);
}

// Short names in test output instead of a byte dump.
void PrintTo(const Param& p, std::ostream* os) {
  *os << (p.libc == Libc::kGlibc ? "glibc " : "musl ") << p.c.worker_case << " ["
      << p.c.promises.ToString() << ", " << PenaltyName(p.c.penalty) << "]";
  if (IsKnownBug(p)) *os << " known vow bug: " << p.c.known_bug;
}

// ---- the harness -------------------------------------------------------------------

std::string WorkerPath(Libc libc) {
  const char* srcdir = getenv("TEST_SRCDIR");
  std::string base = srcdir != nullptr ? std::string(srcdir) + "/vow" : "";
  const char* name = libc == Libc::kGlibc ? "conformance_worker" : "conformance_worker_musl";
  return absl::StrCat(base, "/tests/conformance/", name);
}

std::string MakeTempDir() {
  // Short, under /tmp: an AF_UNIX path must fit in 108 bytes.
  char tmpl[] = "/tmp/vow-conformance-XXXXXX";
  char* dir = mkdtemp(tmpl);
  return dir != nullptr ? std::string(dir) : std::string();
}

void RemoveTree(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (d == nullptr) {
    unlink(path.c_str());
    return;
  }
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string child = path + "/" + name;
    struct stat st;
    if (lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      RemoveTree(child);
    } else {
      unlink(child.c_str());
    }
  }
  closedir(d);
  rmdir(path.c_str());
}

bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Everything readable from `fd` now (non-blocking; stops at EOF, EAGAIN or EIO).
std::string Drain(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  return Drain(fd.get());
}

// One end for the worker (given as its fd 0 or 1), one for the harness.
struct StdioEnd {
  UniqueFd worker;
  UniqueFd ours;
  std::string path;  // kFile
};

std::optional<StdioEnd> MakeStdio(Stdio kind, bool input, const std::string& dir,
                                  const std::string& contents) {
  StdioEnd end;
  switch (kind) {
    case Stdio::kPipe: {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0) return std::nullopt;
      end.worker = UniqueFd(input ? p[0] : p[1]);
      end.ours = UniqueFd(input ? p[1] : p[0]);
      if (input && !WriteAll(end.ours.get(), contents)) return std::nullopt;
      if (input) end.ours.reset();  // EOF after the contents
      return end;
    }
    case Stdio::kFile: {
      end.path = absl::StrCat(dir, input ? "/stdin" : "/stdout");
      UniqueFd w(open(end.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!w) return std::nullopt;
      if (input) {
        if (!WriteAll(w.get(), contents)) return std::nullopt;
        w.reset();
        end.worker = UniqueFd(open(end.path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!end.worker) return std::nullopt;
      } else {
        end.worker = std::move(w);
      }
      return end;
    }
    case Stdio::kSocket: {
      int s[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) return std::nullopt;
      end.worker = UniqueFd(s[0]);
      end.ours = UniqueFd(s[1]);
      if (input && !WriteAll(end.ours.get(), contents)) return std::nullopt;
      return end;
    }
    case Stdio::kPty: {
      UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
      if (!master || grantpt(master.get()) != 0 || unlockpt(master.get()) != 0) {
        return std::nullopt;
      }
      char name[128];
      if (ptsname_r(master.get(), name, sizeof(name)) != 0) return std::nullopt;
      end.worker = UniqueFd(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
      if (!end.worker) return std::nullopt;
      struct termios t;
      if (tcgetattr(end.worker.get(), &t) != 0) return std::nullopt;
      cfmakeraw(&t);  // no echo, no \n -> \r\n: bytes arrive as written
      if (tcsetattr(end.worker.get(), TCSANOW, &t) != 0) return std::nullopt;
      end.ours = std::move(master);
      if (input && !WriteAll(end.ours.get(), contents)) return std::nullopt;
      return end;
    }
  }
  return std::nullopt;
}

// A one-shot server: accepts one connection, reads "ping", answers "pong".
class PingServer {
 public:
  ~PingServer() {
    if (thread_.joinable()) thread_.join();
  }
  bool Start(UniqueFd listener) {
    listener_ = std::move(listener);
    if (listen(listener_.get(), 4) != 0) return false;
    thread_ = std::thread([this] {
      struct pollfd p = {listener_.get(), POLLIN, 0};
      if (poll(&p, 1, 30000) != 1) return;
      UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      char buf[4];
      size_t got = 0;
      while (got < 4) {
        ssize_t n = read(conn.get(), buf + got, 4 - got);
        if (n <= 0) return;
        got += static_cast<size_t>(n);
      }
      if (memcmp(buf, "ping", 4) == 0) WriteAll(conn.get(), "pong");
    });
    return true;
  }
  // Unblocks the thread if no one connected (a case that was refused the socket).
  void Stop() {
    if (listener_) shutdown(listener_.get(), SHUT_RDWR);
  }

 private:
  UniqueFd listener_;
  std::thread thread_;
};

class ConformanceTest : public ::testing::TestWithParam<Param> {
 protected:
  static void SetUpTestSuite() {
    setenv("TZ", "UTC", 1);
    auto broker = Broker::Create();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker).release();
  }
  static void TearDownTestSuite() {
    delete broker_;
    broker_ = nullptr;
  }
  static Broker* broker_;
};
Broker* ConformanceTest::broker_ = nullptr;

TEST_P(ConformanceTest, Case) {
  const Libc libc = GetParam().libc;
  const Case& c = GetParam().c;
  const Expect& want = libc == Libc::kMusl && c.musl_expect ? *c.musl_expect : c.expect;
  ASSERT_NE(broker_, nullptr);

  const std::string worker = WorkerPath(libc);
  ASSERT_EQ(access(worker.c_str(), X_OK), 0) << "missing worker binary " << worker;
  const std::string tmp = MakeTempDir();
  ASSERT_FALSE(tmp.empty());
  struct Cleanup {
    std::string dir;
    ~Cleanup() { RemoveTree(dir); }
  } cleanup{tmp};

  // Case setup and its placeholders.
  std::string dir = tmp + "/case";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  std::vector<std::pair<std::string, std::string>> subst = {{"$DIR", dir}};
  PingServer server;
  switch (c.setup) {
    case Setup::kNone:
    case Setup::kEmptyDir:
      break;
    case Setup::kRpathTree: {
      UniqueFd f(open((dir + "/a.txt").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      ASSERT_TRUE(f.valid());
      ASSERT_TRUE(WriteAll(f.get(), "hello rpath"));
      ASSERT_EQ(mkdir((dir + "/sub").c_str(), 0755), 0);
      break;
    }
    case Setup::kTcpServer: {
      UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      ASSERT_TRUE(s.valid());
      struct sockaddr_in addr = {};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ASSERT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
      socklen_t len = sizeof(addr);
      ASSERT_EQ(getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
      subst.push_back({"$PORT", absl::StrCat(ntohs(addr.sin_port))});
      ASSERT_TRUE(server.Start(std::move(s)));
      break;
    }
    case Setup::kUnixServer: {
      UniqueFd s(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      ASSERT_TRUE(s.valid());
      std::string path = tmp + "/sock";
      struct sockaddr_un addr = {};
      addr.sun_family = AF_UNIX;
      ASSERT_LT(path.size(), sizeof(addr.sun_path));
      memcpy(addr.sun_path, path.data(), path.size());
      ASSERT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
      subst.push_back({"$SOCK", path});
      ASSERT_TRUE(server.Start(std::move(s)));
      break;
    }
  }
  std::vector<std::string> argv = {worker, c.worker_case};
  const auto& args = libc == Libc::kMusl && c.musl_args ? *c.musl_args : c.args;
  for (const std::string& a : args) argv.push_back(absl::StrReplaceAll(a, subst));

  // stdio.
  auto in = MakeStdio(c.stdio, true, tmp, "fgets input\n");
  ASSERT_TRUE(in.has_value()) << "stdin setup: " << strerror(errno);
  auto out = MakeStdio(c.stdio, false, tmp, "");
  ASSERT_TRUE(out.has_value()) << "stdout setup: " << strerror(errno);
  const std::string err_path = tmp + "/stderr";
  UniqueFd err(open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(err.valid());
  SpawnOptions options;
  options.stdin_fd = in->worker.get();
  options.stdout_fd = out->worker.get();
  options.stderr_fd = err.get();
  options.name = c.name;

  Policy policy;
  policy.promises = c.promises;
  policy.penalty = c.penalty;
  // The case's own directory is unveiled; the promises decide what the worker may do
  // there (rpath alone never means "any file").
  if (c.setup == Setup::kRpathTree) policy.paths.push_back(PathRule{dir, /*read=*/true});
  if (c.setup == Setup::kEmptyDir) {
    policy.paths.push_back(PathRule{dir, true, true, false, true});
  }
  // connect() is the broker's: the case's own server is the one allowed peer.
  for (const auto& [key, value] : subst) {
    ConnectRule rule;
    if (key == "$PORT") {
      rule.transport = ConnectRule::Transport::kTcp;
      rule.address = std::string("\x7f\x00\x00\x01", 4);
      rule.prefix_len = 32;
      rule.port_min = rule.port_max = static_cast<uint16_t>(std::stoi(value));
    } else if (key == "$SOCK") {
      rule.transport = ConnectRule::Transport::kUnix;
      rule.unix_path = value;
    } else {
      continue;
    }
    policy.connects.push_back(rule);
  }
  auto prepared = broker_->Prepare(policy);
  ASSERT_TRUE(prepared.ok()) << prepared.status();

  // The environment the worker inherits, for this spawn only.
  if (c.tz != Tz::kUtc) SetTz(TzName(c.tz));
  if (c.rseq_off) setenv("GLIBC_TUNABLES", "glibc.pthread.rseq=0", 1);
  auto id = broker_->SpawnExec(*prepared, argv, options);
  if (c.rseq_off) unsetenv("GLIBC_TUNABLES");
  if (c.tz != Tz::kUtc) SetTz("UTC");
  ASSERT_TRUE(id.ok()) << id.status();
  // The broker dup'ed what the worker needs; a pipe's EOF must not wait on our copy.
  if (c.stdio == Stdio::kPipe) out->worker.reset();

  auto result = broker_->Wait(*id, c.timeout);
  if (!result.ok()) {
    broker_->Kill(*id);
    result = broker_->Wait(*id);
    ADD_FAILURE() << "the worker did not end within " << c.timeout;
  }
  server.Stop();
  ASSERT_TRUE(result.ok()) << result.status();

  const std::string got_out =
      c.stdio == Stdio::kFile ? ReadFile(out->path) : Drain(out->ours.get());
  const std::string got_err = ReadFile(err_path);
  std::vector<std::string> seen, refused;
  for (const Violation& v : result->violations) seen.push_back(v.ToString());
  for (const Refusal& r : result->refusals) refused.push_back(r.ToString());
  std::string audit;
  for (const AuditEntry& e : broker_->audit().Entries()) {
    if (e.worker_id == *id) absl::StrAppend(&audit, "\n    ", AuditLog::FormatLine(e));
  }
  const std::string context =
      absl::StrCat("\n  audit:", audit, "\n  worker: ", absl::StrJoin(argv, " "), "\n  promises: ",
                   c.promises.ToString(), ", penalty ", PenaltyName(c.penalty),
                   "\n  result: ", result->ToString(), "\n  violations: [",
                   absl::StrJoin(seen, "; "), "]\n  refusals: [",
                   absl::StrJoin(refused, "; "), "]\n  stderr: ", got_err,
                   "\n  stdout: ", got_out);

  ASSERT_EQ(result->kind, want.kind) << context;
  switch (want.kind) {
    case Kind::kExited:
      EXPECT_EQ(result->exit_code, want.exit_code) << context;
      if (!want.refusal.empty()) {
        std::string refusals;
        for (const Refusal& r : result->refusals) absl::StrAppend(&refusals, r.ToString(), "\n");
        EXPECT_TRUE(absl::StrContains(refusals, want.refusal)) << refusals << context;
      }
      if (want.no_refusals) EXPECT_TRUE(result->refusals.empty()) << context;
      if (want.syscall.empty()) {
        EXPECT_TRUE(result->violations.empty()) << context;
      } else {
        ASSERT_EQ(result->violations.size(), 1u) << context;
        EXPECT_EQ(result->violations[0].syscall, want.syscall) << context;
        EXPECT_EQ(result->violations[0].allowed_by, want.allowed_by) << context;
        EXPECT_EQ(result->violations[0].from_kernel, want.from_kernel) << context;
      }
      break;
    case Kind::kViolation:
      ASSERT_TRUE(result->violation.has_value()) << context;
      EXPECT_EQ(result->violation->syscall, want.syscall) << context;
      EXPECT_EQ(result->violation->allowed_by, want.allowed_by) << context;
      EXPECT_TRUE(result->violation->from_kernel) << context;
      EXPECT_EQ(result->violations.size(), 1u) << context;
      break;
    case Kind::kSignaled:
      EXPECT_EQ(result->signal, want.signal) << context;
      EXPECT_TRUE(result->violations.empty()) << context;
      break;
    default:
      FAIL() << "unexpected expectation kind" << context;
  }
  if (want.stdout_exact.has_value()) EXPECT_EQ(got_out, *want.stdout_exact) << context;
  if (!want.stderr_contains.empty()) {
    EXPECT_TRUE(absl::StrContains(got_err, want.stderr_contains)) << context;
  }
  if (c.setup == Setup::kEmptyDir) {
    DIR* d = opendir(dir.c_str());
    ASSERT_NE(d, nullptr);
    int entries = 0;
    while (readdir(d) != nullptr) ++entries;
    closedir(d);
    EXPECT_EQ(entries, 2) << "the case left files behind" << context;
  }
}

INSTANTIATE_TEST_SUITE_P(All, ConformanceTest, ::testing::ValuesIn(AllParams()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return absl::StrCat(IsKnownBug(info.param) ? "DISABLED_" : "",
                                               info.param.libc == Libc::kGlibc ? "glibc_"
                                                                               : "musl_",
                                               info.param.c.name);
                         });

// The number the ENOSYS cases use, so a change of libseccomp shows up here first.
TEST(ConformanceMeta, HighestKnownSyscallIsNamed) {
  const int highest = HighestKnownSyscall();
  EXPECT_GT(highest, 400);
  EXPECT_EQ(SyscallName(NativeArch(), highest + 1), absl::StrCat("syscall_", highest + 1));
  std::printf("highest syscall number the tables know on %s: %d (%s)\n",
              std::string(ArchName(NativeArch())).c_str(), highest,
              SyscallName(NativeArch(), highest).c_str());
}

}  // namespace
}  // namespace vow
