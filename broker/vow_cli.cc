// `vow`: the command-line front end of the framework. Runs in the broker (privileged);
// its input is the invoking user's command line and policy files, never a worker's bytes.
// `vow help` and `vow COMMAND --help` print the usage below (kUsage, kRunHelp, ...).
//
// Exit codes (all commands): what the program returned when it ran and exited; 128+N
// when it was killed by signal N; 125 when vow itself failed (a usage error, a bad
// policy, a missing layer, the broker); 126 when the program exists but cannot be
// executed; 127 when it is not found. `vow check` exits 1 for a policy it refuses.
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "base/placed_thread.h"
#include "base/unique_fd.h"
#include "broker/broker.h"
#include "broker/learn.h"
#include "broker/policy_check.h"
#include "broker/run_flags.h"
#include "policies/explain.h"
#include "policies/policy_file.h"
#include "policies/promise_compiler.h"
#include "worker/layers.h"

namespace vow {
namespace {

constexpr int kExitVowError = 125;
constexpr int kExitNotExecutable = 126;
constexpr int kExitNotFound = 127;
constexpr int kExitPolicyRefused = 1;

constexpr char kExitCodes[] =
    "exit status:\n"
    "  the program's own exit code when it ran and exited; 128+N when it was killed by\n"
    "  signal N (also when the sandbox killed it for a refused call, which vow names on\n"
    "  stderr); 125 when vow itself failed (usage, policy, a missing layer); 126 when\n"
    "  PROGRAM exists but cannot be executed; 127 when PROGRAM is not found.\n";

constexpr char kUsage[] =
    "usage: vow COMMAND [OPTIONS] ...\n"
    "\n"
    "commands:\n"
    "  run      run a program sandboxed: vow run -p 'stdio rpath' -v r:/etc -- PROGRAM ARGS\n"
    "  learn    run a program with every call allowed and logged; print a policy\n"
    "  check    validate a policy file exactly as the broker will; print it canonically\n"
    "  explain  every syscall a set of promises allows, and the BPF size\n"
    "  help     this text, or `vow help COMMAND`\n"
    "\n"
    "`vow COMMAND --help` describes each command.\n";

constexpr char kRunHelp[] =
    "usage: vow run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM (looked up in $PATH like execvp) in a sandbox: seccomp from the promises,\n"
    "the broker answering its opens under the unveil rules, and the layers beneath\n"
    "(namespaces, an unprivileged identity, Landlock) where this kernel has them.\n"
    "\n"
    "options (each also as --name=value):\n"
    "  -p, --promises 'P...'   the promises, exactly (stdio is not implied);\n"
    "                          default: stdio\n"
    "  --execpromises 'P...'   what a program PROGRAM execs gets (OpenBSD's execpromises):\n"
    "                          a subset of -p, which must hold exec; default: the same\n"
    "  -v, --unveil [PERM:]PATH  allow PATH (and beneath it) with PERM made of r (read),\n"
    "                          w (write), x (execute), c (create); default r; repeatable.\n"
    "                          A relative PATH is taken from the current directory\n"
    "  --policy FILE           a policy file (see README); -p must agree with it, -v adds\n"
    "  --audit                 print the broker's audit log on stderr\n"
    "  --explain               print the layers, promises, rules and libc set; run nothing\n"
    "  --vow-worker            PROGRAM is a vow worker (calls vow::LockDownExecWorker() and\n"
    "                          uses the broker channel on fd 3); otherwise fd 3 is closed\n"
    "  -h, --help              this text\n"
    "\n"
    "No rule means nowhere: a promise grants an operation, a -v rule grants where.\n"
    "\n";

constexpr char kLearnHelp[] =
    "usage: vow learn [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Runs PROGRAM with penalty `log`: a call its promises refuse is recorded and ALLOWED\n"
    "(except what no promise could allow), then prints on stdout, after the program's own\n"
    "output, a policy file that would run it: the policy it ran under (-p, -v, --policy)\n"
    "with the smallest promise set that covers what it did and the path rules its calls\n"
    "needed. Takes the options of `vow run` (-p, -v, --policy, --audit).\n"
    "Exits with vow's codes as `vow run` does (see `vow run --help`).\n";

constexpr char kCheckHelp[] =
    "usage: vow check POLICY_FILE\n"
    "\n"
    "Parses POLICY_FILE and validates it exactly as the broker does before a run: the\n"
    "syntax, the rules, that every unveil path exists, and that this kernel has every\n"
    "layer the policy requires. Prints the policy in canonical form and exits 0, or\n"
    "prints what is wrong (FILE:LINE:COLUMN where it applies) and exits 1.\n"
    "125: a usage error.\n";

constexpr char kExplainHelp[] =
    "usage: vow explain [--arch=x86_64|aarch64] PROMISE...\n"
    "\n"
    "Prints every syscall the promises allow, with argument conditions, and the size of\n"
    "the compiled BPF program. 125: an unknown promise or architecture.\n";

// One "vow: ..." line on stderr; returns `code`.
int Fail(int code, const std::string& message) {
  fprintf(stderr, "vow: %s\n", message.c_str());
  return code;
}

int UsageError(const char* command, const std::string& message) {
  fprintf(stderr, "vow: %s: %s\nTry 'vow %s --help'.\n", command, message.c_str(), command);
  return kExitVowError;
}

std::string Cwd() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof(buf)) != nullptr ? std::string(buf) : std::string();
}

std::vector<std::string> ArgsAfter(int argc, char** argv, int first) {
  std::vector<std::string> out;
  for (int i = first; i < argc; ++i) out.push_back(argv[i]);
  return out;
}

std::string PermsOf(const PathRule& r) {
  std::string out;
  if (r.read) out += 'r';
  if (r.write) out += 'w';
  if (r.exec) out += 'x';
  if (r.create) out += 'c';
  return out.empty() ? "none (denied beneath)" : out;
}

// `vow run --explain`: what a run would be, without running it.
int ExplainRun(const Policy& policy, const RunFlags& flags) {
  const LayerSupport& support = ProbeLayers();
  absl::StatusOr<LayerSpec> layers = ResolveLayers(policy, support);
  printf("layers: %s\n", layers.ok() ? DescribeLayers(*layers, support).c_str()
                                     : absl::StrCat("REFUSED: ", layers.status().message()).c_str());
  printf("promises: %s\n", policy.promises.ToString().c_str());
  if (policy.exec_promises.has_value()) {
    printf("execpromises: %s\n", policy.exec_promises->ToString().c_str());
  }
  if (policy.paths.empty()) {
    printf("unveil: none (no path is reachable but the libc and loader sets)\n");
  }
  for (const PathRule& r : policy.paths) printf("unveil %s %s\n", r.path.c_str(), PermsOf(r).c_str());
  // Connect rules, clock and limits in the policy file's own words.
  std::string text = FormatPolicy(policy);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "connect ") || absl::StartsWith(line, "clock ") ||
        absl::StartsWith(line, "penalty ") || absl::StartsWith(line, "limit ")) {
      printf("%s\n", std::string(line).c_str());
    }
  }
  printf("libc set: %s\n", policy.libc_set ? "on (the files libc reads behind the program's "
                                              "back, read-only; `libc none` turns it off)"
                                           : "off (libc none)");
  if (!flags.argv.empty()) {
    absl::StatusOr<std::string> program = FindProgram(flags.argv[0], getenv("PATH"), Cwd());
    printf("program: %s\n", program.ok() ? program->c_str()
                                         : std::string(program.status().message()).c_str());
  }
  return layers.ok() ? 0 : kExitVowError;
}

// The exec image's seccomp program, compiled on a thread of its own while the broker
// starts (Broker::Create resolves the libc set, Prepare opens the rules): the compile is
// the largest piece of `vow run`'s own work (README "Start-up"). It starts once the policy
// and the program are known, before the layer probe (PrepareRun). No fork happens while
// it runs but the probe's fallback child, which makes only raw syscalls (Create and
// Prepare start threads, fork nothing; the spawn's child is cloned after Wait), and
// nothing else compiles meanwhile (CompileExecProgram). An error is not
// reported here: the spawn then compiles again and reports it.
//
// The worker's empty root (PrepareExecRoot: a mount namespace the spawn's child enters
// with setns instead of copying the host's mount tree, building the root and detaching
// the old one, README "Start-up, round 6") is made by the compile thread after the
// compile (its child is a CLONE_VM | CLONE_VFORK child that copies nothing). Its
// detaching unmount sleeps in the kernel (an expedited RCU grace period), which then
// overlaps the main thread's work instead of the child's lock-down. h52 let the main
// thread make it when it was free first; no gain was measured (README "Start-up, round
// 8"), so that was removed. An error is not reported either: the child then builds its
// own root, and fails there if it cannot.
class BackgroundCompile {
 public:
  BackgroundCompile(const Policy& policy, SpawnOptions::ExecChannel channel,
                    const std::string& program)
      : channel_(channel),
        filters_(std::make_shared<FilterCache>()),
        roots_(std::make_shared<ExecRoots>()),
        state_(std::make_shared<State>()),
        thread_([filters = filters_, roots = roots_, state = state_, policy, channel, program] {
          (void)CompileExecProgram(*filters, policy, channel);
          (void)PrepareExecRoot(*roots, policy, program);
          // Before the thread's own exit (its stack's madvise, its arena's release): the
          // spawn waits for this, not for the join.
          state->done.Notify();
        }) {}
  ~BackgroundCompile() { Join(); }
  BackgroundCompile(const BackgroundCompile&) = delete;
  BackgroundCompile& operator=(const BackgroundCompile&) = delete;

  SpawnOptions::ExecChannel channel() const { return channel_; }
  const std::shared_ptr<FilterCache>& filters() const { return filters_; }
  const std::shared_ptr<ExecRoots>& roots() const { return roots_; }
  // Returns once the compile and the root are done.
  void Wait() { state_->done.WaitForNotification(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct State {
    absl::Notification done;
  };

  SpawnOptions::ExecChannel channel_;
  std::shared_ptr<FilterCache> filters_;
  std::shared_ptr<ExecRoots> roots_;
  std::shared_ptr<State> state_;
  // Started on the other CPU: the main thread goes on with the layer probe and
  // Broker::Create meanwhile (base/placed_thread.h).
  PlacedThread thread_;
};

// Runs the program under `policy` and returns how it ended. On success `*finished` is
// the broker, already Shut down (every worker reaped, every audit line written): the
// caller ends the process with ExitNow, which does not destroy it.
absl::StatusOr<WorkerResult> RunProgram(const Policy& policy, const std::vector<std::string>& argv,
                                        bool audit, BackgroundCompile& compile,
                                        std::unique_ptr<Broker>* finished) {
  BrokerOptions options;
  options.audit_fd = audit ? STDERR_FILENO : -1;
  options.filters = compile.filters();
  options.exec_roots = compile.roots();
  // The worker's network and IPC namespaces, made by Create on this thread while the
  // other one compiles (one pair, no replacement), not by the spawn's child; none when
  // the policy turns both layers off.
  absl::StatusOr<LayerSpec> layers = ResolveLayers(policy, ProbeLayers());
  options.namespace_stock = layers.ok() && (layers->netns || layers->ipcns) ? 1 : 0;
  options.namespace_stock_once = true;
  // The thread that answers the loader's calls, started now rather than at its execve.
  options.pool_threads_at_create = 1;
  // Its one worker's calls answered by that thread, without the serving loop's hand-off.
  options.listener_in_place = true;
  absl::StatusOr<std::unique_ptr<Broker>> broker = Broker::Create(options);
  if (!broker.ok()) return broker.status();
  // Prepare compiles the execpromises' program itself: not while the other compile runs.
  if (policy.exec_promises.has_value()) compile.Join();
  auto prepared = (*broker)->Prepare(policy);
  if (!prepared.ok()) return prepared.status();
  compile.Wait();
  SpawnOptions spawn;
  spawn.stdin_fd = STDIN_FILENO;
  spawn.stdout_fd = STDOUT_FILENO;
  spawn.stderr_fd = STDERR_FILENO;
  spawn.name = argv[0];
  spawn.exec_channel = compile.channel();
  auto id = (*broker)->SpawnExec(*prepared, argv, spawn);
  if (!id.ok()) return id.status();
  absl::StatusOr<WorkerResult> result = (*broker)->Wait(*id);
  if (!result.ok()) return result.status();
  (*broker)->Shutdown();
  *finished = *std::move(broker);
  return result;
}

// Ends `vow run` and `vow learn` once the result is known and the broker Shut down:
// flushes stdout and exits without the broker's destructor, the other
// threads' joins or the static destructors (about 0.4 ms of a `vow run`, README
// "Start-up, round 5"). The process's exit closes the fds and frees the memory.
[[noreturn]] void ExitNow(int code) {
  fflush(stdout);  // stderr is unbuffered
  _exit(code);
}

// The policy and the resolved program for `run` and `learn`, or an exit code.
struct Prepared {
  Policy policy;
  RunFlags flags;
  std::vector<std::string> argv;  // argv[0]: the program's absolute path
  // Started as soon as the policy and the program are known, before the layer probe:
  // the compile and the root are the longest chain before the spawn (README "Start-up,
  // round 11"). Destroyed (joined) last if the run stops before its spawn.
  std::unique_ptr<BackgroundCompile> compile;
  // `vow learn`: the penalty the user's policy had before learning mode replaced it.
  Penalty penalty_asked = Penalty::kKill;
};

// `learning`: `vow learn` (the policy's penalty is kLog, set before the compile starts).
int PrepareRun(const char* command, int argc, char** argv, bool learning, Prepared* out,
               bool* done) {
  *done = true;
  absl::StatusOr<RunFlags> flags = ParseRunFlags(ArgsAfter(argc, argv, 2));
  if (!flags.ok()) return UsageError(command, std::string(flags.status().message()));
  if (flags->help) {
    fputs(strcmp(command, "run") == 0 ? kRunHelp : kLearnHelp, stdout);
    if (strcmp(command, "run") == 0) fputs(kExitCodes, stdout);
    return 0;
  }
  const std::string cwd = Cwd();
  absl::StatusOr<Policy> policy = PolicyFromRunFlags(*flags, cwd);
  if (!policy.ok()) return Fail(kExitVowError, std::string(policy.status().message()));
  if (flags->explain) {
    if (strcmp(command, "run") != 0) return UsageError(command, "--explain is for vow run");
    return ExplainRun(*policy, *flags);
  }
  if (flags->argv.empty()) {
    return UsageError(command, absl::StrCat("no program given (vow ", command,
                                            " [OPTIONS] -- PROGRAM [ARGS...])"));
  }
  // The clock rule is what the broker answers a vow worker's clock requests with; an
  // unmodified program reads the kernel's clock (vDSO), which no rule changes. Refused
  // rather than ignored (review h72: `clock fixed ...` ran `date` with today's date).
  if (!flags->vow_worker && policy->clock.kind != ClockRule::Kind::kReal) {
    return Fail(kExitVowError,
                "the policy's clock rule applies to vow workers (--vow-worker) only: an "
                "unmodified program reads the kernel's clock, which no rule changes; remove "
                "the clock line");
  }
  absl::StatusOr<std::string> program = FindProgram(flags->argv[0], getenv("PATH"), cwd);
  if (!program.ok()) {
    const bool missing = program.status().code() == absl::StatusCode::kNotFound;
    return Fail(missing ? kExitNotFound : kExitNotExecutable,
                std::string(program.status().message()));
  }
  out->penalty_asked = policy->penalty;
  if (learning) policy->penalty = Penalty::kLog;
  // The compile thread starts here, beside the layer probe below (its /proc/sys reads:
  // 0.3 ms). A probe that forks (ProbeLayers' fallback) forks a child that only makes
  // raw syscalls. On a refusal below, `out` joins the thread as it goes.
  out->compile = std::make_unique<BackgroundCompile>(
      *policy, flags->vow_worker ? SpawnOptions::ExecChannel::kKeep
                                 : SpawnOptions::ExecChannel::kClose,
      *program);
  // A required layer this kernel lacks refuses the run before anything starts.
  absl::StatusOr<LayerSpec> layers = ResolveLayers(*policy, ProbeLayers());
  if (!layers.ok()) return Fail(kExitVowError, std::string(layers.status().message()));
  out->policy = *std::move(policy);
  out->flags = *std::move(flags);
  out->argv = out->flags.argv;
  out->argv[0] = *program;
  *done = false;
  return 0;
}

// Exit code for how the program ended, with the reason on stderr when it did not simply
// exit.
int ExitCodeOf(const std::string& program, const WorkerResult& result) {
  // A program that failed after the broker refused something it asked for: say what.
  if (result.kind == WorkerResult::Kind::kExited && result.violations.empty() &&
      (result.exit_code == 0 || result.refusals.empty())) {
    return result.exit_code;
  }
  fprintf(stderr, "vow: %s: %s\n", program.c_str(), result.ToString().c_str());
  for (const Violation& v : result.violations) {
    fprintf(stderr, "vow:   %s\n", v.ToString().c_str());
  }
  for (const Refusal& r : result.refusals) {
    fprintf(stderr, "vow:   %s\n", r.ToString().c_str());
  }
  if (result.kind == WorkerResult::Kind::kExited) return result.exit_code;
  if (result.kind == WorkerResult::Kind::kSignaled) return 128 + result.signal;
  // Ended by the broker (a forbidden syscall, a limit, the protocol): with SIGKILL.
  if (result.kind == WorkerResult::Kind::kViolation ||
      result.kind == WorkerResult::Kind::kLimitExceeded ||
      result.kind == WorkerResult::Kind::kProtocolError) {
    return 128 + SIGKILL;
  }
  return kExitVowError;
}

int Run(int argc, char** argv) {
  Prepared run;
  bool done = false;
  const int code = PrepareRun("run", argc, argv, /*learning=*/false, &run, &done);
  if (done) return code;
  std::unique_ptr<Broker> finished;
  absl::StatusOr<WorkerResult> result =
      RunProgram(run.policy, run.argv, run.flags.audit, *run.compile, &finished);
  if (!result.ok()) {
    return Fail(kExitVowError, absl::StrCat(run.flags.argv[0], ": ", result.status().message()));
  }
  ExitNow(ExitCodeOf(run.flags.argv[0], *result));
}

int Learn(int argc, char** argv) {
  Prepared run;
  bool done = false;
  const int code = PrepareRun("learn", argc, argv, /*learning=*/true, &run, &done);
  if (done) return code;
  const PromiseSet held = run.policy.promises;
  fprintf(stderr, "vow: learning mode: refused syscalls are recorded and ALLOWED "
                  "(except those no promise allows)\n");
  std::unique_ptr<Broker> finished;
  absl::StatusOr<WorkerResult> result =
      RunProgram(run.policy, run.argv, run.flags.audit, *run.compile, &finished);
  if (!result.ok()) {
    return Fail(kExitVowError, absl::StrCat(run.flags.argv[0], ": ", result.status().message()));
  }
  fprintf(stderr, "vow: %s %s\n", run.flags.argv[0].c_str(), result->ToString().c_str());
  absl::StatusOr<LearnedPromises> learned = LearnPromises(*result, held);
  if (!learned.ok()) ExitNow(Fail(kExitVowError, std::string(learned.status().message())));
  fputs(learned->report.c_str(), stderr);
  // The user's own policy (its rules, x rules, connect rules, limits, layers, penalty)
  // with the learned promises and rules added, written as `vow check` writes a policy:
  // paths quoted where they must be (review h72: a learned policy dropped the `-v`
  // rules it ran with, and printed a path with a space unquoted).
  Policy out = run.policy;
  out.penalty = run.penalty_asked;
  out.promises = learned->promises;
  for (const PathRule& r : learned->rules) {
    auto same = std::find_if(out.paths.begin(), out.paths.end(),
                             [&r](const PathRule& p) { return p.path == r.path; });
    if (same == out.paths.end()) {
      out.paths.push_back(r);
    } else {
      same->read |= r.read;
      same->write |= r.write;
      same->create |= r.create;
    }
  }
  fputs(FormatPolicy(out).c_str(), stdout);
  if (result->kind == WorkerResult::Kind::kExited) ExitNow(result->exit_code);
  if (result->kind == WorkerResult::Kind::kSignaled) ExitNow(128 + result->signal);
  ExitNow(kExitVowError);
}

int Check(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fputs(kCheckHelp, stdout);
      return 0;
    }
    if (arg == "--" && i + 1 < argc) {
      files.push_back(argv[++i]);
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') return UsageError("check", "unknown option " + arg);
    files.push_back(arg);
  }
  if (files.size() != 1) return UsageError("check", "expected one policy file");
  absl::StatusOr<Policy> policy = LoadPolicyFile(files[0]);
  if (!policy.ok()) return Fail(kExitPolicyRefused, std::string(policy.status().message()));
  absl::Status valid = ValidatePolicy(*policy);
  if (!valid.ok()) return Fail(kExitPolicyRefused, absl::StrCat(files[0], ": ", valid.message()));
  absl::StatusOr<LayerSpec> layers = ResolveLayers(*policy, ProbeLayers());
  if (!layers.ok()) {
    return Fail(kExitPolicyRefused, absl::StrCat(files[0], ": ", layers.status().message()));
  }
  // The broker's own Prepare-time checks: rule paths exist and open.
  absl::StatusOr<std::unique_ptr<Broker>> broker = Broker::Create();
  if (!broker.ok()) return Fail(kExitVowError, std::string(broker.status().message()));
  auto prepared = (*broker)->Prepare(*policy);
  if (!prepared.ok()) {
    return Fail(kExitPolicyRefused, absl::StrCat(files[0], ": ", prepared.status().message()));
  }
  // The filters compile (a spawn compiles the one it loads; check compiles both kinds).
  for (ProgramVariant variant : {ProgramVariant::kForkedWorker, ProgramVariant::kExecImage}) {
    absl::StatusOr<BpfProgram> program =
        CompilePromises(policy->promises, policy->penalty, NativeArch(), variant);
    if (!program.ok()) {
      return Fail(kExitPolicyRefused, absl::StrCat(files[0], ": ", program.status().message()));
    }
  }
  fputs(FormatPolicy(*policy).c_str(), stdout);
  return 0;
}

int Explain(int argc, char** argv) {
  Arch arch = NativeArch();
  PromiseSet promises;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fputs(kExplainHelp, stdout);
      return 0;
    }
    if (arg == "--arch" || arg.rfind("--arch=", 0) == 0) {
      std::string name;
      if (arg == "--arch") {
        if (i + 1 >= argc) return UsageError("explain", "--arch needs a value");
        name = argv[++i];
      } else {
        name = arg.substr(7);
      }
      std::optional<Arch> a = ArchFromName(name);
      if (!a.has_value()) {
        return UsageError("explain", "unknown architecture " + name + " (x86_64, aarch64)");
      }
      arch = *a;
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') return UsageError("explain", "unknown option " + arg);
    std::optional<Promise> p = PromiseFromName(arg);
    if (!p.has_value()) {
      std::optional<std::string> near = NearestPromiseName(arg);
      return UsageError("explain", absl::StrCat("unknown promise \"", arg, "\"",
                                                near.has_value()
                                                    ? absl::StrCat("; did you mean \"", *near, "\"?")
                                                    : ""));
    }
    promises.insert(*p);
  }
  absl::StatusOr<std::string> text = ExplainPromises(promises, arch, ExplainDetail::kWithBpf);
  if (!text.ok()) return Fail(kExitVowError, std::string(text.status().message()));
  fputs(text->c_str(), stdout);
  return 0;
}

int Help(int argc, char** argv) {
  std::string topic = argc > 2 ? argv[2] : "";
  if (topic == "--help" || topic == "-h") topic = "help";  // review h72: it pointed at itself
  if (topic == "run") {
    fputs(kRunHelp, stdout);
  } else if (topic == "learn") {
    fputs(kLearnHelp, stdout);
  } else if (topic == "check") {
    fputs(kCheckHelp, stdout);
  } else if (topic == "explain") {
    fputs(kExplainHelp, stdout);
  } else if (topic.empty() || topic == "help") {
    fputs(kUsage, stdout);
  } else {
    return UsageError("help", "unknown command " + topic);
  }
  fputs("\n", stdout);
  fputs(kExitCodes, stdout);
  return 0;
}

}  // namespace
}  // namespace vow

int main(int argc, char** argv) {
  // Before any thread: `vow run` compiles on a thread started before Broker::Create (which
  // fills closed 0-2 too), and an fd it opens first would otherwise sit on a closed 0-2
  // there, be taken for stdio and handed to the program (review h49 L3).
  if (!vow::FillClosedStdio()) {
    fputs("vow: cannot open /dev/null for a closed fd 0, 1 or 2\n", stderr);
    return vow::kExitVowError;
  }
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex lock of the broker runs
  // Abseil's debug-build deadlock detector (a lock-order graph, ~0.4 ms of a `vow run`).
  // An optimized build of Abseil has it off; so does the command. The tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc < 2) {
    fputs(vow::kUsage, stderr);
    return vow::kExitVowError;
  }
  const std::string command = argv[1];
  if (command == "run") return vow::Run(argc, argv);
  if (command == "learn") return vow::Learn(argc, argv);
  if (command == "check") return vow::Check(argc, argv);
  if (command == "explain") return vow::Explain(argc, argv);
  if (command == "help" || command == "--help" || command == "-h") return vow::Help(argc, argv);
  fprintf(stderr, "vow: unknown command \"%s\"\n%s", command.c_str(), vow::kUsage);
  return vow::kExitVowError;
}
