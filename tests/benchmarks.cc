// vow's performance targets (DESIGN.md), measured as ratios against a baseline in the
// same run. A separate binary, never a timed test:
//   bazel run -c opt //tests:benchmarks
//
//  1. open through the broker vs the bare SCM_RIGHTS floor between the same two
//     processes (the worker sends a path on a raw socket, a thread of the broker process
//     opens it and returns the fd). Target: ratio <= 1.25.
//  2. spawn-to-locked (fork, lock-down, first instruction of the worker function, exit,
//     reap) vs bare fork + _exit + waitpid of the same process (the caller: one idle
//     broker, nothing else alive), and vs a small fork (a fresh exec of this binary).
//     Target: ratio <= 1.3 against the caller's own fork.
//  3. an allowed syscall (getppid) under the stdio filter vs the same call under a
//     1-instruction allow-all filter (any filter costs ~70-100 ns per syscall here), all
//     in a child; also bare, and each filter with SECCOMP_FILTER_FLAG_SPEC_ALLOW.
//     Target: ratio <= 1.05 (the kernel's constant-action cache covers the call).
// Timing of 1 and 3 happens inside the worker (CLOCK_MONOTONIC through the vDSO), so the
// control pipes between the benchmark and the worker are not measured.
#include <algorithm>
#include <atomic>
#include <vector>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "base/spawn_trace.h"
#include "benchmark/benchmark.h"
#include "broker/broker.h"
#include "broker/fork_server.h"
#include "broker/fs_policy.h"
#include "broker/policy_check.h"
#include "ipc/channel.h"
#include "policies/promise_compiler.h"
#include "policies/seccomp_loader.h"
#include "worker/client.h"
#include "worker/lockdown.h"

namespace vow {
namespace {

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

uint64_t ThreadCpuNs() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

constexpr char kFile[] = "/etc/hostname";
constexpr uint32_t kBatch = 200;

bool WriteFull(int fd, const void* p, size_t n) { return write(fd, p, n) == (ssize_t)n; }
bool ReadFull(int fd, void* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, static_cast<char*>(p) + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// ---- Spawn-to-locked (target 2) and where its time goes. ----------------------------
// Registered first, so these run before any other benchmark has started a broker, a
// floor thread or a worker: fork's cost grows with the caller's address space and
// threads, and a baseline forked beside other benchmarks' leftovers is not the caller's.
// Both spawn baselines and the target report the process's size (threads, VmSize,
// VmRSS, VmPTE) when they start, so a reader can see that they fork the same process.

// Threads and the VmSize/VmRSS/VmPTE lines (KiB) of /proc/self/status, as counters.
void ReportProcessSize(benchmark::State& state) {
  FILE* f = fopen("/proc/self/status", "re");
  if (f == nullptr) return;
  char line[256];
  while (fgets(line, sizeof(line), f) != nullptr) {
    for (const char* key : {"Threads", "VmSize", "VmRSS", "VmPTE"}) {
      size_t len = strlen(key);
      if (strncmp(line, key, len) == 0 && line[len] == ':') {
        state.counters[std::string(key) == "Threads" ? "threads" : std::string(key) + "_kB"] =
            static_cast<double>(strtoull(line + len + 1, nullptr, 10));
      }
    }
  }
  fclose(f);
}

long CountThreads() {
  FILE* f = fopen("/proc/self/status", "re");
  if (f == nullptr) abort();
  char line[256];
  long threads = -1;
  while (fgets(line, sizeof(line), f) != nullptr) {
    if (strncmp(line, "Threads:", 8) == 0) threads = strtol(line + 8, nullptr, 10);
  }
  fclose(f);
  return threads;
}

// True when this process has only its main thread and no child: no other benchmark's
// broker, floor thread or worker is alive. A broker this group destroyed a moment ago
// may still have pool threads on their way out: they get a second.
bool NothingElseAlive(benchmark::State& state) {
  for (int i = 0; i < 1000 && CountThreads() != 1; ++i) usleep(1000);
  if (CountThreads() != 1 || waitpid(-1, nullptr, WNOHANG) != -1) {
    state.SkipWithError("another benchmark's threads or children are alive: the baseline "
                        "would not be the caller's own fork");
    return false;
  }
  return true;
}

// The caller's own fork: this process in the state BM_SpawnToLocked's caller is in (one
// idle broker with a prepared Policy{}, nothing else), fork + _exit + waitpid.
void BM_ForkExitWait(benchmark::State& state) {
  if (!NothingElseAlive(state)) return;
  std::unique_ptr<Broker> broker = std::move(*Broker::Create());
  auto prepared = *broker->Prepare(Policy{});
  ReportProcessSize(state);
  for (auto _ : state) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int status;
    waitpid(pid, &status, 0);
  }
}
BENCHMARK(BM_ForkExitWait)->UseRealTime()->MinTime(2.0);

// A small fork: a fresh exec of this binary that has done nothing yet (no broker, no
// thread, no heap of its own; main() runs SmallForkLoop() before anything else) forks,
// exits and reaps kSmallForks times and reports the mean.
constexpr char kSmallForkEnv[] = "VOW_BENCHMARKS_SMALL_FORK";
constexpr int kSmallForks = 200;

int SmallForkLoop() {
  uint64_t start = MonotonicNs();
  for (int i = 0; i < kSmallForks; ++i) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0 || waitpid(pid, nullptr, 0) != pid) return 1;
  }
  uint64_t ns = (MonotonicNs() - start) / kSmallForks;
  return WriteFull(1, &ns, sizeof(ns)) ? 0 : 2;
}

void BM_ForkExitWaitSmall(benchmark::State& state) {
  if (!NothingElseAlive(state)) return;
  for (auto _ : state) {
    int res[2];
    if (pipe2(res, O_CLOEXEC)) abort();
    pid_t pid = fork();
    if (pid == 0) {
      dup2(res[1], 1);
      setenv(kSmallForkEnv, "1", 1);
      execl("/proc/self/exe", "benchmarks", nullptr);
      _exit(127);
    }
    close(res[1]);
    uint64_t ns = 0;
    bool ok = ReadFull(res[0], &ns, sizeof(ns));
    close(res[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!ok || status != 0) {
      state.SkipWithError("the small-fork helper failed");
      return;
    }
    state.SetIterationTime(static_cast<double>(ns) / 1e9);
  }
}
BENCHMARK(BM_ForkExitWaitSmall)->UseManualTime()->Iterations(10);

// The shared page a spawned worker writes its first instruction's clock to.
uint64_t* FirstInstructionClock() {
  static uint64_t* page = static_cast<uint64_t*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  return page;
}

// A worker that records its first instruction and exits.
int RecordFirstInstruction(Client&) {
  *FirstInstructionClock() = MonotonicNs();
  return 0;
}

#ifdef VOW_SPAWN_TRACE
// The per-step breakdown (base/spawn_trace.h, README "Spawn, round 4"): every spawn's
// timestamps, then per step the median of its time since the broker's send and the
// median of its time since the step before it (in the order of the medians), on stderr.
struct SpawnTraces {
  std::vector<std::vector<uint64_t>> runs;
  void Clear() {
    if (g_spawn_trace != nullptr) memset(g_spawn_trace, 0, kTrCount * sizeof(uint64_t));
  }
  void Take() {
    if (g_spawn_trace != nullptr) runs.emplace_back(g_spawn_trace, g_spawn_trace + kTrCount);
  }
  static double Median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  void Print(const char* what) const {
    std::vector<std::pair<double, int>> order;
    for (int s = 0; s < kTrCount; ++s) {
      std::vector<double> d;
      for (const auto& r : runs) {
        if (r[s] != 0 && r[kTrBrokerSent] != 0) d.push_back((double)r[s] - r[kTrBrokerSent]);
      }
      // Steps of most spawns: a fork server's first spawn is a fresh clone, the others
      // get a pre-made worker (README "Spawn, round 5"), whose lock-down steps happened
      // before the spawn (before the page was cleared) and are not on its path.
      if (!d.empty() && d.size() * 10 >= runs.size() * 9) order.emplace_back(Median(d), s);
    }
    std::sort(order.begin(), order.end());
    fprintf(stderr, "\nspawn trace (%s): %zu spawns, medians in us\n", what, runs.size());
    fprintf(stderr, "%10s %10s  %s\n", "since send", "step", "after");
    for (size_t i = 0; i < order.size(); ++i) {
      std::vector<double> step;
      if (i > 0) {
        for (const auto& r : runs) {
          if (r[order[i].second] != 0 && r[order[i - 1].second] != 0) {
            step.push_back((double)r[order[i].second] - r[order[i - 1].second]);
          }
        }
      }
      fprintf(stderr, "%10.1f %10.1f  %s\n", order[i].first / 1000, Median(step) / 1000,
              kSpawnTraceNames[order[i].second]);
    }
  }
};
#endif

// Where the time goes, as counters (means, us): `spawn_returned` (Spawn's own work in the
// caller: socketpair, fork, pidfd, registration), `first_instruction` (from the call to
// the worker function's first instruction: fork, lock-down, filter attach; the worker
// stores its clock in a shared page), `reaped` (from that instruction to Wait's return:
// exit, teardown, the broker's reap).
// TimeSpawns times `spawn` (which starts a RecordFirstInstruction worker) into them;
// built with VOW_SPAWN_TRACE and given a `trace` name, it also prints the step table.
void TimeSpawns(benchmark::State& state, Broker& broker,
                const std::function<absl::StatusOr<WorkerId>()>& spawn,
                const char* trace = nullptr) {
  uint64_t* first = FirstInstructionClock();
  double returned = 0, to_first = 0, reaped = 0;
#ifdef VOW_SPAWN_TRACE
  SpawnTraces traces;
#endif
  for (auto _ : state) {
#ifdef VOW_SPAWN_TRACE
    traces.Clear();
#endif
    const uint64_t t0 = MonotonicNs();
    auto id = spawn();
    const uint64_t t1 = MonotonicNs();
    if (!id.ok()) abort();
    auto result = broker.Wait(*id);
    const uint64_t t2 = MonotonicNs();
    if (!result.ok() || result->kind != WorkerResult::Kind::kExited) abort();
#ifdef VOW_SPAWN_TRACE
    traces.Take();
#endif
    returned += t1 - t0;
    to_first += *first - t0;
    reaped += t2 - *first;
  }
  const double n = static_cast<double>(state.iterations()) * 1000;
  state.counters["spawn_returned_us"] = returned / n;
  state.counters["first_instruction_us"] = to_first / n;
  state.counters["reaped_us"] = reaped / n;
#ifdef VOW_SPAWN_TRACE
  if (trace != nullptr) traces.Print(trace);
#else
  (void)trace;
#endif
}

// The CPU a fork-server spawn costs, wherever it is spent: the server's (schedstat, ns) and
// the reaped workers' (RUSAGE_CHILDREN: each worker's clone, lock-down, function and exit,
// a pre-made one's included, as it is reaped after its spawn). Per spawn, as counters
// `server_cpu_us` and `workers_cpu_us`, and `premade_share` (spawns that got a pre-made
// worker / all), so that work moved off the spawn's path is not taken for work saved.
struct SpawnCpu {
  uint64_t server_ns = 0;
  uint64_t children_us = 0;
  static SpawnCpu Now(pid_t server) {
    SpawnCpu c;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/schedstat", server);
    if (FILE* f = fopen(path, "r")) {
      unsigned long long ns = 0;
      if (fscanf(f, "%llu", &ns) == 1) c.server_ns = ns;
      fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    c.children_us = static_cast<uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    return c;
  }
  void Report(benchmark::State& state, const SpawnCpu& before, const ForkServer& server) const {
    const double n = static_cast<double>(state.iterations());
    if (n == 0) return;
    state.counters["server_cpu_us"] = static_cast<double>(server_ns - before.server_ns) / 1000 / n;
    state.counters["workers_cpu_us"] = static_cast<double>(children_us - before.children_us) / n;
    const double premade = static_cast<double>(server.premade_spawns());
    const double all = premade + static_cast<double>(server.fresh_spawns());
    state.counters["premade_share"] = all > 0 ? premade / all : 0;
  }
};

void BM_SpawnToLocked(benchmark::State& state) {
  if (!NothingElseAlive(state)) return;
  std::unique_ptr<Broker> broker = std::move(*Broker::Create());
  auto prepared = *broker->Prepare(Policy{});
  ReportProcessSize(state);
  FirstInstructionClock();  // mapped before the timing starts
  TimeSpawns(state, *broker, [&] { return broker->Spawn(prepared, RecordFirstInstruction); });
}
BENCHMARK(BM_SpawnToLocked)->UseRealTime()->MinTime(2.0);


// The same spawn through a fork server (Broker::StartForkServer, made once, as a
// WorkerPool makes it; README "Spawn, round 3"): the single-threaded server clones each
// worker, which is still this process's child and is locked down and reaped as above.
// Counters as in BM_SpawnToLocked.
void BM_SpawnToLockedForkServer(benchmark::State& state) {
  if (!NothingElseAlive(state)) return;
  std::unique_ptr<Broker> broker = std::move(*Broker::Create());
  auto prepared = *broker->Prepare(Policy{});
  ReportProcessSize(state);
  FirstInstructionClock();  // mapped before the server is forked
  auto server = broker->StartForkServer(prepared, RecordFirstInstruction);
  if (!server.ok()) {
    state.SkipWithError(std::string(server.status().message()).c_str());
    return;
  }
  const SpawnCpu before = SpawnCpu::Now((*server)->pid());
  TimeSpawns(state, *broker, [&] { return broker->SpawnFrom(**server); }, "fork server");
  SpawnCpu::Now((*server)->pid()).Report(state, before, **server);
}
BENCHMARK(BM_SpawnToLockedForkServer)->UseRealTime()->MinTime(2.0);

// The same with the worker made when it is asked for (SetForkServerPremade(false): main's
// path before README "Spawn, round 5"), for the same-run comparison of time and CPU.
void BM_SpawnToLockedForkServerNoPremade(benchmark::State& state) {
  if (!NothingElseAlive(state)) return;
  std::unique_ptr<Broker> broker = std::move(*Broker::Create());
  auto prepared = *broker->Prepare(Policy{});
  FirstInstructionClock();
  SetForkServerPremade(false);
  auto server = broker->StartForkServer(prepared, RecordFirstInstruction);
  SetForkServerPremade(true);
  if (!server.ok()) {
    state.SkipWithError(std::string(server.status().message()).c_str());
    return;
  }
  const SpawnCpu before = SpawnCpu::Now((*server)->pid());
  TimeSpawns(state, *broker, [&] { return broker->SpawnFrom(**server); });
  SpawnCpu::Now((*server)->pid()).Report(state, before, **server);
}
BENCHMARK(BM_SpawnToLockedForkServerNoPremade)->UseRealTime()->MinTime(2.0);

// Spawns spaced apart (10 ms idle before each, outside the timing), so that the server's
// pre-made worker is made and locked when the request comes: the latency a pool's refill
// sees when its spawns are not back to back. Manual time: from SpawnFrom's call to Wait's
// return (`first_instruction_us` as above). `premade` as arg: 1 pre-made, 0 not.
void BM_SpawnToLockedForkServerSpaced(benchmark::State& state) {
  if (!NothingElseAlive(state)) return;
  std::unique_ptr<Broker> broker = std::move(*Broker::Create());
  auto prepared = *broker->Prepare(Policy{});
  uint64_t* first = FirstInstructionClock();
  SetForkServerPremade(state.range(0) != 0);
  auto server = broker->StartForkServer(prepared, RecordFirstInstruction);
  SetForkServerPremade(true);
  if (!server.ok()) {
    state.SkipWithError(std::string(server.status().message()).c_str());
    return;
  }
  double to_first = 0;
  const SpawnCpu before = SpawnCpu::Now((*server)->pid());
#ifdef VOW_SPAWN_TRACE
  SpawnTraces traces;
#endif
  for (auto _ : state) {
    usleep(10000);
#ifdef VOW_SPAWN_TRACE
    traces.Clear();
#endif
    const uint64_t t0 = MonotonicNs();
    auto id = broker->SpawnFrom(**server);
    if (!id.ok()) abort();
    auto result = broker->Wait(*id);
    const uint64_t t2 = MonotonicNs();
    if (!result.ok() || result->kind != WorkerResult::Kind::kExited) abort();
#ifdef VOW_SPAWN_TRACE
    traces.Take();
#endif
    to_first += *first - t0;
    state.SetIterationTime(static_cast<double>(t2 - t0) / 1e9);
  }
  state.counters["first_instruction_us"] =
      to_first / (static_cast<double>(state.iterations()) * 1000);
  SpawnCpu::Now((*server)->pid()).Report(state, before, **server);
#ifdef VOW_SPAWN_TRACE
  traces.Print(state.range(0) != 0 ? "fork server, spaced, pre-made" : "fork server, spaced");
#endif
}
BENCHMARK(BM_SpawnToLockedForkServerSpaced)->Arg(0)->Arg(1)->UseManualTime()->Iterations(300);

// The lock-down BM_SpawnToLocked's workers get, for the diagnostics below: Policy{}
// (stdio, penalty kill, so a user-notification listener; the default limits) and the
// layers this kernel has, filled in as the broker's child fills its LockdownSpec
// (Broker::Impl::SpawnCommon).
class TargetLockdown {
 public:
  TargetLockdown() {
    auto program = CompilePromises(policy_.promises, policy_.penalty);
    auto layers = ResolveLayers(policy_, ProbeLayers());
    if (!program.ok() || !layers.ok()) abort();
    code_ = program->code;
    needs_listener_ = program->needs_listener();
    layers_ = *layers;
    // Forked workers enter their policy's shared empty root (SpawnCommon, MakeSharedRoot).
    if (layers_.mountns && layers_.drop_identity) {
      const int root = MakeSharedRoot(layers_, nullptr);
      if (root < 0) abort();
      layers_.shared_root_fd = root;
    }
  }
  TargetLockdown(const TargetLockdown&) = delete;
  // The spec, with the channel on `channel_fd` (the child patches its own copy of the
  // program in place).
  LockdownSpec Spec(int channel_fd) {
    LockdownSpec spec;
    spec.channel_fd = channel_fd;
    spec.layers = &layers_;
    spec.broker_pid = getpid();
    spec.program = code_.data();
    spec.program_len = code_.size();
    spec.needs_listener = needs_listener_;
    spec.trap_reporter = policy_.penalty == Penalty::kTrap;
    spec.max_open_fds = policy_.limits.max_open_fds;
    spec.cpu_seconds = policy_.limits.cpu_seconds;
    spec.memory_bytes = policy_.limits.memory_bytes;
    spec.file_bytes = policy_.limits.file_bytes;
    for (bool& keep : spec.keep_stdio) keep = false;  // the spawn gives no stdio
    spec.keep_fd = layers_.shared_root_fd;  // the child's copy; ApplyLayers closes it
    hello_len_ = HelloBytes(needs_listener_, hello_, sizeof(hello_));
    if (hello_len_ == 0) abort();
    spec.hello = hello_;
    spec.hello_len = hello_len_;
    return spec;
  }
  std::vector<sock_filter>& code() { return code_; }
  bool needs_listener() const { return needs_listener_; }

 private:
  Policy policy_;
  std::vector<sock_filter> code_;
  bool needs_listener_ = false;
  LayerSpec layers_;
  unsigned char hello_[256];
  size_t hello_len_ = 0;
};

// Diagnostics for spawn-to-locked: the target's lock-down without the broker around it
// (the child locks down, sends hello with the listener and exits; the parent only waits).
void BM_ForkLockDownExitWait(benchmark::State& state) {
  TargetLockdown target;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) abort();
  static uint64_t* stamps = static_cast<uint64_t*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  double to_child = 0, lockdown = 0, to_reaped = 0;
  for (auto _ : state) {
    LockdownSpec spec = target.Spec(kWorkerChannelFd);
    uint64_t t0 = MonotonicNs();
    pid_t pid = fork();
    if (pid == 0) {
      stamps[0] = MonotonicNs();
      dup2(sv[1], kWorkerChannelFd);
      int rc = LockDown(spec, nullptr);
      stamps[1] = MonotonicNs();
      _exit(rc == 0 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    if (status != 0) abort();
    uint64_t t3 = MonotonicNs();
    to_child += stamps[0] - t0;
    lockdown += stamps[1] - stamps[0];
    to_reaped += t3 - stamps[1];
    // Drain hello; close the listener it carried.
    char buf[256];
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    for (;;) {
      struct iovec iov = {buf, sizeof(buf)};
      struct msghdr msg = {};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      if (recvmsg(sv[0], &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0) break;
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          int fd;
          memcpy(&fd, CMSG_DATA(c), sizeof(int));
          close(fd);
        }
      }
    }
  }
  close(sv[0]);
  close(sv[1]);
  double n = static_cast<double>(state.iterations());
  state.counters["fork_to_child_us"] = to_child / n / 1000;
  state.counters["lockdown_us"] = lockdown / n / 1000;
  state.counters["exit_to_reaped_us"] = to_reaped / n / 1000;
}
BENCHMARK(BM_ForkLockDownExitWait)->UseRealTime()->MinTime(2.0);

// Diagnostic: the target's lock-down up to the seccomp step (fds, layers, prctl,
// rlimits): a null program stops it there with EINVAL.
void BM_ForkLockDownBeforeSeccomp(benchmark::State& state) {
  TargetLockdown target;
  for (auto _ : state) {
    int res[2];
    if (pipe2(res, O_CLOEXEC)) abort();
    LockdownSpec spec = target.Spec(9);
    spec.program = nullptr;
    spec.program_len = 0;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(res[1], 9);
      uint64_t start = MonotonicNs();
      int rc = LockDown(spec, nullptr);
      uint64_t ns = MonotonicNs() - start;
      (void)!write(9, &ns, sizeof(ns));
      _exit(rc == -EINVAL ? 0 : 1);
    }
    close(res[1]);
    uint64_t ns = 0;
    bool ok = ReadFull(res[0], &ns, sizeof(ns));
    close(res[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!ok || status != 0) {
      state.SkipWithError("the lock-down failed before its seccomp step");
      return;
    }
    state.SetIterationTime(static_cast<double>(ns) / 1e9);
  }
}
BENCHMARK(BM_ForkLockDownBeforeSeccomp)->UseManualTime()->Iterations(200);

// Diagnostic: the kernel's cost of loading the target's program (measured in the child),
// with the listener it asks for.
void BM_LoadStdioProgram(benchmark::State& state) {
  TargetLockdown target;
  state.counters["instructions"] = target.code().size();
  for (auto _ : state) {
    int res[2];
    if (pipe2(res, O_CLOEXEC)) abort();
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      std::vector<sock_filter>& code = target.code();
      PatchSelfPid(code.data(), code.size(), static_cast<uint32_t>(getpid()));
      int listener = -1;
      uint64_t start = MonotonicNs();
      if (LoadSeccompProgram(code.data(), code.size(),
                             target.needs_listener() ? &listener : nullptr) != 0) {
        _exit(1);
      }
      uint64_t ns = MonotonicNs() - start;
      (void)!write(res[1], &ns, sizeof(ns));
      _exit(0);
    }
    close(res[1]);
    uint64_t ns = 0;
    if (!ReadFull(res[0], &ns, sizeof(ns))) abort();
    close(res[0]);
    waitpid(pid, nullptr, 0);
    state.SetIterationTime(static_cast<double>(ns) / 1e9);
  }
}
BENCHMARK(BM_LoadStdioProgram)->UseManualTime()->Iterations(200);

// Not a part of the target: the whole spawn under penalty trap (no listener to create
// and pass), to show what the listener costs.
void BM_SpawnToLockedTrap(benchmark::State& state) {
  std::unique_ptr<Broker> broker = std::move(*Broker::Create());
  Policy policy;
  policy.penalty = Penalty::kTrap;
  auto prepared = *broker->Prepare(policy);
  for (auto _ : state) {
    auto id = broker->Spawn(prepared, [](Client&) { return 0; });
    if (!id.ok()) abort();
    auto result = broker->Wait(*id);
    if (!result.ok() || result->kind != WorkerResult::Kind::kExited) abort();
  }
}
BENCHMARK(BM_SpawnToLockedTrap)->UseRealTime()->MinTime(2.0);

// The floor's server: a thread of the broker process answering raw path datagrams with
// an fd, nothing else (no policy, no encoding, no audit). It waits in recv(); only the
// placement diagnostic (BM_ServerPlacementInterleaved) makes it wait in epoll_wait() first,
// as the broker's serving thread does, to price how the kernel places a thread woken
// through epoll against one woken by the socket itself.
std::atomic<bool> g_floor_waits_in_epoll{false};
std::atomic<int> g_floor_tid{0};

void FloorServer(int sock) {
  g_floor_tid = static_cast<int>(syscall(SYS_gettid));
  // The socket is in the epoll set only while in that mode: an epoll entry on the
  // socket's wait queue would otherwise add a callback to every wake-up of the floor.
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) abort();
  bool watched = false;
  char path[4096];
  for (;;) {
    const bool in_epoll = g_floor_waits_in_epoll.load(std::memory_order_relaxed);
    if (in_epoll != watched) {
      struct epoll_event watch = {};
      watch.events = EPOLLIN;
      if (epoll_ctl(ep, in_epoll ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, sock, &watch) != 0) abort();
      watched = in_epoll;
    }
    if (in_epoll) {
      struct epoll_event ready[4];
      if (epoll_wait(ep, ready, 4, -1) < 0 && errno != EINTR) break;
    }
    ssize_t n = recv(sock, path, sizeof(path) - 1, 0);
    if (n <= 0) break;
    path[n] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char ok = fd >= 0 ? 1 : 0;
    struct iovec iov = {&ok, 1};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (fd >= 0) close(fd);
  }
  close(ep);
}

int FloorOpen(int sock) {
  if (send(sock, kFile, sizeof(kFile) - 1, 0) < 0) return -1;
  char ok;
  struct iovec iov = {&ok, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0) return -1;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == nullptr) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return fd;
}

// One locked worker that serves both measurements, so broker and floor are measured
// between the same two processes. Commands on stdin: 'b' = brokered batch, 'f' = floor
// batch; it answers with the batch's nanoseconds on stdout.
class OpenFixture {
 public:
  OpenFixture() {
    broker_ = std::move(*Broker::Create());
    int cmd[2], res[2], floor[2];
    if (pipe2(cmd, O_CLOEXEC) || pipe2(res, O_CLOEXEC) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, floor)) {
      abort();
    }
    floor_thread_ = std::thread(FloorServer, floor[0]);
    floor_sock_ = floor[0];
    Policy policy;
    policy.paths.push_back(PathRule{kFile, /*read=*/true});
    policy.limits.requests_per_second = 0;
    SpawnOptions options;
    options.stdin_fd = cmd[0];
    options.stdout_fd = res[1];
    options.stderr_fd = floor[1];  // the floor's raw socket rides in the stderr slot
    auto id = broker_->Spawn(policy, [](Client& client) {
      char c;
      while (read(0, &c, 1) == 1) {
        uint64_t start = MonotonicNs();
        for (uint32_t i = 0; i < kBatch; ++i) {
          int fd = c == 'b' ? client.OpenRaw(kFile, sizeof(kFile) - 1, O_RDONLY, 0) : FloorOpen(2);
          if (fd < 0) return 1;
          close(fd);
        }
        // The batch's time, and the CPU this process ended it on (rseq or the vDSO: no
        // syscall), for the placement counters.
        uint64_t out[2] = {MonotonicNs() - start, static_cast<uint64_t>(sched_getcpu())};
        if (write(1, out, sizeof(out)) != sizeof(out)) return 2;
      }
      return 0;
    }, options);
    if (!id.ok()) abort();
    id_ = *id;
    close(cmd[0]);
    close(res[1]);
    close(floor[1]);
    cmd_ = cmd[1];
    res_ = res[0];
    serving_tid_ = FindServingThread();
  }
  ~OpenFixture() {
    close(cmd_);
    (void)broker_->Wait(id_);
    close(res_);
    shutdown(floor_sock_, SHUT_RDWR);
    floor_thread_.join();
    close(floor_sock_);
  }
  // Nanoseconds for one batch of kBatch opens: 'b' through the broker, 'f' the floor,
  // 'e' the floor's thread waiting in epoll_wait (a diagnostic, never the target's floor).
  // The floor's thread reads the mode between requests: a batch's first request is
  // served the previous batch's way.
  double Batch(char kind) {
    g_floor_waits_in_epoll = kind == 'e';
    if (kind == 'e') kind = 'f';
    uint64_t out[2] = {};
    if (!WriteFull(cmd_, &kind, 1) || !ReadFull(res_, out, sizeof(out))) {
      // Say why the worker stopped answering before giving up on the run.
      auto result = broker_->Wait(id_);
      fprintf(stderr, "open benchmark: the worker stopped answering: %s\n",
              result.ok() ? result->reason.c_str() : result.status().ToString().c_str());
      abort();
    }
    // Placement at the batch's end: the worker's CPU against the last CPU of the thread
    // that served the batch (/proc/self/task/TID/stat, field 39). Outside the timed part.
    const int server = kind == 'b' ? serving_tid_ : g_floor_tid.load();
    const int server_cpu = LastCpu(server);
    last_batch_same_cpu_ = server_cpu < 0 ? -1 : server_cpu == static_cast<int>(out[1]) ? 1 : 0;
    return static_cast<double>(out[0]);
  }
  // 1 if the last batch ended with the worker and its server on the same CPU, 0 if not,
  // -1 if unknown.
  int last_batch_same_cpu() const { return last_batch_same_cpu_; }

 private:
  static int LastCpu(int tid) {
    if (tid <= 0) return -1;
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    const ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0) return -1;
    text[n] = '\0';
    // Fields after the command's closing parenthesis: state is field 3, processor 39.
    const char* p = strrchr(text, ')');
    if (p == nullptr) return -1;
    int field = 2;
    for (; *p != '\0' && field < 39; ++p) {
      if (*p == ' ') ++field;
    }
    return field == 39 ? atoi(p) : -1;
  }
  // The broker's serving thread: the one thread of this process waiting in epoll_wait
  // while nothing is asked (the floor's thread waits in recv, the pool's in futex).
  static int FindServingThread() {
    int found = -1;
    const int self = static_cast<int>(syscall(SYS_gettid));
    for (int attempt = 0; attempt < 100 && found < 0; ++attempt) {
      DIR* dir = opendir("/proc/self/task");
      if (dir == nullptr) return -1;
      while (struct dirent* e = readdir(dir)) {
        const int tid = atoi(e->d_name);
        if (tid <= 0 || tid == self || tid == g_floor_tid.load()) continue;
        char path[64], wchan[64] = {};
        snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", tid);
        const int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        (void)!read(fd, wchan, sizeof(wchan) - 1);
        close(fd);
        if (strstr(wchan, "epoll") != nullptr) found = tid;
      }
      closedir(dir);
      if (found < 0) usleep(10000);
    }
    return found;
  }

  int serving_tid_ = -1;
  int last_batch_same_cpu_ = -1;
  std::unique_ptr<Broker> broker_;
  WorkerId id_;
  int cmd_, res_, floor_sock_;
  std::thread floor_thread_;
};

OpenFixture& Fixture() {
  static OpenFixture* fixture = new OpenFixture();
  return *fixture;
}

// Counters of where each batch ended: same_cpu = the share of batches that ended with
// the worker and its server on the same CPU (the cross-CPU wake-ups of a round trip
// cost more than the broker's checks on this VM: README, "Open, round 4").
// Batches of `which` ('f': the floor, 'b': through the broker), one per iteration.
void OpenBatches(benchmark::State& state, char which) {
  int same = 0, known = 0;
  for (auto _ : state) {
    state.SetIterationTime(Fixture().Batch(which) / 1e9 / kBatch);
    const int s = Fixture().last_batch_same_cpu();
    if (s >= 0) ++known, same += s;
  }
  if (known > 0) state.counters["same_cpu"] = static_cast<double>(same) / known;
}

void BM_OpenFloorScmRights(benchmark::State& state) { OpenBatches(state, 'f'); }
BENCHMARK(BM_OpenFloorScmRights)->UseManualTime()->Iterations(3000);

void BM_OpenThroughBroker(benchmark::State& state) { OpenBatches(state, 'b'); }
BENCHMARK(BM_OpenThroughBroker)->UseManualTime()->Iterations(3000);

// The ratio itself, from interleaved batches (floor, broker, floor, broker, ...), so both
// see the same machine: on a noisy 2-core VM this is steadier than two separate runs.
void BM_OpenRatioInterleaved(benchmark::State& state) {
  double floor_ns = 0, broker_ns = 0;
  int floor_same = 0, broker_same = 0, floor_known = 0, broker_known = 0;
  for (auto _ : state) {
    floor_ns += Fixture().Batch('f');
    if (int s = Fixture().last_batch_same_cpu(); s >= 0) ++floor_known, floor_same += s;
    broker_ns += Fixture().Batch('b');
    if (int s = Fixture().last_batch_same_cpu(); s >= 0) ++broker_known, broker_same += s;
  }
  double n = static_cast<double>(state.iterations()) * kBatch;
  state.counters["floor_us"] = floor_ns / n / 1000;
  state.counters["broker_us"] = broker_ns / n / 1000;
  state.counters["ratio"] = broker_ns / floor_ns;
  if (floor_known > 0) state.counters["floor_same_cpu"] = double(floor_same) / floor_known;
  if (broker_known > 0) state.counters["broker_same_cpu"] = double(broker_same) / broker_known;
}
BENCHMARK(BM_OpenRatioInterleaved)->Iterations(3000);

// Not a target: the interleaved batches again with a third kind, the floor's thread
// waiting in epoll_wait() before its recv() as the broker's serving thread does. Same
// socket, same open, same reply; only how the kernel wakes (and so places) the thread
// differs. floor_epoll_us against floor_us is what that wake-up alone does here.
void BM_ServerPlacementInterleaved(benchmark::State& state) {
  double ns[3] = {};
  int same[3] = {}, known[3] = {};
  const char kinds[3] = {'f', 'e', 'b'};
  for (auto _ : state) {
    for (int k = 0; k < 3; ++k) {
      ns[k] += Fixture().Batch(kinds[k]);
      if (int s = Fixture().last_batch_same_cpu(); s >= 0) ++known[k], same[k] += s;
    }
  }
  g_floor_waits_in_epoll = false;
  double n = static_cast<double>(state.iterations()) * kBatch;
  const char* names[3] = {"floor", "floor_epoll", "broker"};
  for (int k = 0; k < 3; ++k) {
    state.counters[std::string(names[k]) + "_us"] = ns[k] / n / 1000;
    if (known[k] > 0) {
      state.counters[std::string(names[k]) + "_same_cpu"] = double(same[k]) / known[k];
    }
  }
  state.counters["broker_per_epoll_floor"] = ns[2] / ns[1];
}
BENCHMARK(BM_ServerPlacementInterleaved)->Iterations(1000);

// FsPolicy::Open alone, in this thread (no channel, no worker): the broker's own CPU
// per open of kFile and close, through a file rule (the direct open) and through a
// directory rule on a mount without nodev (the O_PATH lookup and the reopen through
// /proc/self/fd). Thread CPU time, so other processes on the 2 vCPUs count less.
void FsPolicyOpenLoop(benchmark::State& state, const PathRule& rule) {
  absl::StatusOr<FsPolicy> policy = FsPolicy::Create({rule});
  if (!policy.ok()) {
    state.SkipWithError(std::string(policy.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    uint64_t start = ThreadCpuNs();
    for (uint32_t i = 0; i < kBatch; ++i) {
      absl::StatusOr<UniqueFd> fd = policy->Open(kFile, O_RDONLY, 0);
      if (!fd.ok()) {
        state.SkipWithError(std::string(fd.status().message()).c_str());
        return;
      }
    }
    state.SetIterationTime(static_cast<double>(ThreadCpuNs() - start) / 1e9 / kBatch);
  }
}

void BM_FsPolicyOpenFileRule(benchmark::State& state) {
  FsPolicyOpenLoop(state, PathRule{kFile, /*read=*/true});
}
BENCHMARK(BM_FsPolicyOpenFileRule)->UseManualTime()->Iterations(500);

void BM_FsPolicyOpenDirRule(benchmark::State& state) {
  FsPolicyOpenLoop(state, PathRule{"/etc", /*read=*/true});
}
BENCHMARK(BM_FsPolicyOpenDirRule)->UseManualTime()->Iterations(500);

// getppid in a child, bare or after it loads a filter: vow's stdio program, or the floor
// any filter has here, a 1-instruction allow-all program; each also with
// SECCOMP_FILTER_FLAG_SPEC_ALLOW (the kernel then leaves the task's speculation
// mitigations alone). No listener: nothing is refused.
enum class GetppidFilter { kBare, kAllowAll, kStdio, kAllowAllSpecAllow, kStdioSpecAllow };

double GetppidNs(GetppidFilter filter) {
  auto program = CompilePromises(PromiseSet{Promise::kStdio}, Penalty::kKill);
  if (!program.ok()) abort();
  std::vector<sock_filter> code = program->code;
  const bool allow_all =
      filter == GetppidFilter::kAllowAll || filter == GetppidFilter::kAllowAllSpecAllow;
  if (allow_all) code = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  const bool spec_allow =
      filter == GetppidFilter::kAllowAllSpecAllow || filter == GetppidFilter::kStdioSpecAllow;
  int res[2];
  if (pipe2(res, O_CLOEXEC)) abort();
  pid_t pid = fork();
  if (pid == 0) {
    if (filter != GetppidFilter::kBare) {
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      PatchSelfPid(code.data(), code.size(), static_cast<uint32_t>(getpid()));
      if (spec_allow) {
        struct sock_fprog prog = {static_cast<unsigned short>(code.size()), code.data()};
        if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
                    SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog) != 0) {
          _exit(1);
        }
      } else {
        int listener = -1;
        if (LoadSeccompProgram(code.data(), code.size(), &listener) != 0) _exit(1);
      }
    }
    // The thread's CPU time, not the wall clock: on 2 vCPUs shared with builds, the
    // child is preempted for milliseconds at a time, which the wall clock would count.
    constexpr int kN = 2000000;
    uint64_t start = ThreadCpuNs();
    for (int i = 0; i < kN; ++i) syscall(SYS_getppid);
    double ns = static_cast<double>(ThreadCpuNs() - start) / kN;
    (void)!write(res[1], &ns, sizeof(ns));
    _exit(0);
  }
  close(res[1]);
  double ns = -1;
  if (!ReadFull(res[0], &ns, sizeof(ns))) abort();
  close(res[0]);
  waitpid(pid, nullptr, 0);
  return ns;
}

// Interleaved rounds (bare, allow-all, stdio, each with SPEC_ALLOW, ...), so every
// figure sees the same machine; each counter is the mean over the rounds, in ns.
void BM_GetppidFilters(benchmark::State& state) {
  const std::pair<const char*, GetppidFilter> kinds[] = {
      {"bare_ns", GetppidFilter::kBare},
      {"allow_all_ns", GetppidFilter::kAllowAll},
      {"stdio_ns", GetppidFilter::kStdio},
      {"allow_all_spec_allow_ns", GetppidFilter::kAllowAllSpecAllow},
      {"stdio_spec_allow_ns", GetppidFilter::kStdioSpecAllow}};
  std::map<std::string, double> sum;
  for (auto _ : state) {
    for (const auto& [name, kind] : kinds) sum[name] += GetppidNs(kind);
  }
  const double n = static_cast<double>(state.iterations());
  for (const auto& [name, total] : sum) state.counters[name] = total / n;
  state.counters["ratio"] = sum["stdio_ns"] / sum["allow_all_ns"];
  state.counters["spec_allow_gain"] = sum["stdio_ns"] / sum["stdio_spec_allow_ns"];
}
BENCHMARK(BM_GetppidFilters)->Iterations(5);

void BM_GetppidBare(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(GetppidNs(GetppidFilter::kBare) / 1e9);
}
BENCHMARK(BM_GetppidBare)->UseManualTime()->Iterations(5);

void BM_GetppidUnderAllowAll(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(GetppidNs(GetppidFilter::kAllowAll) / 1e9);
}
BENCHMARK(BM_GetppidUnderAllowAll)->UseManualTime()->Iterations(5);

void BM_GetppidUnderStdio(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(GetppidNs(GetppidFilter::kStdio) / 1e9);
}
BENCHMARK(BM_GetppidUnderStdio)->UseManualTime()->Iterations(5);

// ---- issue 7: what libc does behind the program's back, sandboxed vs bare ----------
// One stdio worker with no rule (the libc set serves /etc/localtime) and one bare forked
// child run the same command loop; batches are interleaved so both see the same machine.
// Commands: 'o' kBatch x openat("/etc/localtime", O_RDONLY|O_CLOEXEC) + close (brokered
// by user notification in the worker), 's' kBatch x syscall(SYS_fstat, fd) (fd-only, in
// the kernel), 'g' kBatch x glibc fstat(fd) (newfstatat(fd, "", AT_EMPTY_PATH): brokered,
// answered from a pidfd_getfd copy). The child answers each batch's nanoseconds.
constexpr char kLibcFile[] = "/etc/localtime";

int LibcPathLoop() {
  int fd = static_cast<int>(syscall(SYS_openat, AT_FDCWD, kLibcFile, O_RDONLY | O_CLOEXEC));
  if (fd < 0) return 1;
  char c;
  while (read(0, &c, 1) == 1) {
    uint64_t start = MonotonicNs();
    for (uint32_t i = 0; i < kBatch; ++i) {
      struct stat st;
      if (c == 'o') {
        int f = static_cast<int>(
            syscall(SYS_openat, AT_FDCWD, kLibcFile, O_RDONLY | O_CLOEXEC));
        if (f < 0) return 2;
        close(f);
      } else if (c == 's') {
        if (syscall(SYS_fstat, fd, &st) != 0) return 3;
      } else {
        if (fstat(fd, &st) != 0) return 4;
      }
    }
    uint64_t ns = MonotonicNs() - start;
    if (write(1, &ns, sizeof(ns)) != sizeof(ns)) return 5;
  }
  return 0;
}

class LibcPathFixture {
 public:
  LibcPathFixture() {
    broker_ = std::move(*Broker::Create());
    int cmd[2], res[2];
    if (pipe2(cmd, O_CLOEXEC) || pipe2(res, O_CLOEXEC)) abort();
    Policy policy;  // stdio, no rule: the libc set alone
    policy.limits.requests_per_second = 0;
    SpawnOptions options;
    options.stdin_fd = cmd[0];
    options.stdout_fd = res[1];
    auto id = broker_->Spawn(policy, [](Client&) { return LibcPathLoop(); }, options);
    if (!id.ok()) abort();
    id_ = *id;
    close(cmd[0]);
    close(res[1]);
    sandboxed_ = {cmd[1], res[0]};
    if (pipe2(cmd, O_CLOEXEC) || pipe2(res, O_CLOEXEC)) abort();
    bare_pid_ = fork();
    if (bare_pid_ == 0) {
      // Only its own ends: EOF on stdin when the benchmark ends.
      close(cmd[1]);
      close(res[0]);
      close(sandboxed_.cmd);
      close(sandboxed_.res);
      dup2(cmd[0], 0);
      dup2(res[1], 1);
      _exit(LibcPathLoop());
    }
    close(cmd[0]);
    close(res[1]);
    bare_ = {cmd[1], res[0]};
  }
  // Nanoseconds for one batch of `kind` in the sandboxed or the bare child.
  double Batch(char kind, bool sandboxed) {
    const Pipes& p = sandboxed ? sandboxed_ : bare_;
    uint64_t ns = 0;
    if (!WriteFull(p.cmd, &kind, 1) || !ReadFull(p.res, &ns, sizeof(ns))) {
      fprintf(stderr, "libc path benchmark: the %s child failed\n",
              sandboxed ? "sandboxed" : "bare");
      abort();
    }
    return static_cast<double>(ns);
  }

 private:
  struct Pipes {
    int cmd = -1, res = -1;
  };
  std::unique_ptr<Broker> broker_;
  WorkerId id_;
  pid_t bare_pid_ = -1;
  Pipes sandboxed_, bare_;
};

LibcPathFixture& LibcFixture() {
  static LibcPathFixture* fixture = new LibcPathFixture();
  return *fixture;
}

void LibcPathRatio(benchmark::State& state, char kind) {
  double bare_ns = 0, sandboxed_ns = 0;
  for (auto _ : state) {
    bare_ns += LibcFixture().Batch(kind, false);
    sandboxed_ns += LibcFixture().Batch(kind, true);
  }
  double n = static_cast<double>(state.iterations()) * kBatch;
  state.counters["bare_us"] = bare_ns / n / 1000;
  state.counters["stdio_us"] = sandboxed_ns / n / 1000;
  state.counters["ratio"] = sandboxed_ns / bare_ns;
}

void BM_LibcSetOpenLocaltime(benchmark::State& state) { LibcPathRatio(state, 'o'); }
BENCHMARK(BM_LibcSetOpenLocaltime)->Iterations(200);
void BM_LibcFstatSyscall(benchmark::State& state) { LibcPathRatio(state, 's'); }
BENCHMARK(BM_LibcFstatSyscall)->Iterations(200);
void BM_LibcFstatGlibc(benchmark::State& state) { LibcPathRatio(state, 'g'); }
BENCHMARK(BM_LibcFstatGlibc)->Iterations(200);

// ---- Issue 8: an innocent worker's open latency beside hostile workers. ----
// One innocent worker times 2000 brokered opens (p50/p99) five times in the same run:
// quiet; while 50 hostile workers flood the broker (25 with refused open requests on
// the channel, 25 with refused open() path calls, each in a tight loop); and while one
// worker always has a stalled call (its O_TRUNC opens wait in the kernel behind its own
// 128 MiB pwrites of the same file), and while one worker has a stalled connect that costs
// no CPU; and, to tell the broker's share from the CPU's,
// beside 50 workers that only spin (no request at all). Reported as counters (microseconds) and ratios.

constexpr int kInnocentOpens = 2000;
constexpr int kFloodWorkers = 50;

struct Percentiles {
  uint64_t p50 = 0, p99 = 0;
};

class InnocentWorker {
 public:
  explicit InnocentWorker(Broker& broker) : broker_(broker) {
    int cmd[2], res[2];
    if (pipe2(cmd, O_CLOEXEC) || pipe2(res, O_CLOEXEC)) abort();
    Policy policy;
    policy.paths.push_back(PathRule{kFile, /*read=*/true});
    SpawnOptions options;
    options.stdin_fd = cmd[0];
    options.stdout_fd = res[1];
    auto id = broker.Spawn(policy, [](Client& client) {
      char c;
      std::vector<uint64_t> t(kInnocentOpens);
      while (read(0, &c, 1) == 1) {
        for (int i = 0; i < kInnocentOpens; ++i) {
          uint64_t start = MonotonicNs();
          int fd = client.OpenRaw(kFile, sizeof(kFile) - 1, O_RDONLY, 0);
          t[i] = MonotonicNs() - start;
          if (fd < 0) return 1;
          close(fd);
        }
        std::sort(t.begin(), t.end());
        uint64_t out[2] = {t[kInnocentOpens / 2], t[kInnocentOpens * 99 / 100]};
        if (write(1, out, sizeof(out)) != sizeof(out)) return 2;
      }
      return 0;
    }, options);
    if (!id.ok()) abort();
    id_ = *id;
    close(cmd[0]);
    close(res[1]);
    cmd_ = cmd[1];
    res_ = res[0];
  }
  ~InnocentWorker() {
    close(cmd_);
    (void)broker_.Wait(id_);
    close(res_);
  }
  Percentiles Measure() {
    uint64_t out[2];
    char c = 'm';
    if (!WriteFull(cmd_, &c, 1) || !ReadFull(res_, out, sizeof(out))) abort();
    return {out[0], out[1]};
  }

 private:
  Broker& broker_;
  WorkerId id_;
  int cmd_, res_;
};

// Spawns `n` workers running `main`, each writing one byte to the returned pipe once it
// is under way; waits for all of them.
std::vector<WorkerId> SpawnHostile(Broker& broker, const Policy& policy, int n,
                                   const WorkerMain& main) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC)) abort();
  SpawnOptions options;
  options.stdout_fd = ready[1];
  std::vector<WorkerId> ids;
  for (int i = 0; i < n; ++i) {
    auto id = broker.Spawn(policy, main, options);
    if (!id.ok()) abort();
    ids.push_back(*id);
  }
  close(ready[1]);
  for (int i = 0; i < n; ++i) {
    char c;
    if (!ReadFull(ready[0], &c, 1)) abort();
  }
  close(ready[0]);
  return ids;
}

void EndAll(Broker& broker, const std::vector<WorkerId>& ids) {
  for (WorkerId id : ids) broker.Kill(id);
  for (WorkerId id : ids) (void)broker.Wait(id);
}

void BM_InnocentLatencyBesideHostileWorkers(benchmark::State& state) {
  auto broker = std::move(*Broker::Create());
  InnocentWorker innocent(*broker);
  Percentiles quiet, flood, spin, stalled, parked;
  for (auto _ : state) {
    (void)innocent.Measure();  // warm-up
    quiet = innocent.Measure();

    // 50 flooding workers: refused requests in a tight loop.
    Policy refused;
    refused.promises.insert(Promise::kRpath);
    refused.paths.push_back(PathRule{"/usr/share/doc", /*read=*/true});
    std::vector<WorkerId> flooders = SpawnHostile(
        *broker, refused, kFloodWorkers / 2, [](Client& client) {
          if (write(1, "f", 1) != 1) return 1;
          for (;;) (void)client.Open("/etc/shadow", O_RDONLY);
        });
    std::vector<WorkerId> more = SpawnHostile(
        *broker, refused, kFloodWorkers - kFloodWorkers / 2, [](Client&) {
          if (write(1, "f", 1) != 1) return 1;
          for (;;) (void)open("/etc/shadow", O_RDONLY | O_CLOEXEC);
        });
    flooders.insert(flooders.end(), more.begin(), more.end());
    flood = innocent.Measure();
    EndAll(*broker, flooders);

    // The CPU share alone: 50 workers spinning without a single request (on a machine
    // with fewer cores than workers, the innocent worker waits for a CPU too).
    std::vector<WorkerId> spinners = SpawnHostile(*broker, Policy{}, kFloodWorkers, [](Client&) {
      if (write(1, "s", 1) != 1) return 1;
      for (volatile uint64_t i = 0;; i = i + 1) {
      }
    });
    spin = innocent.Measure();
    EndAll(*broker, spinners);

    // One worker whose calls stall behind its own pwrites.
    char dir_template[] = "/tmp/vow-bench.XXXXXX";
    if (mkdtemp(dir_template) == nullptr) abort();
    const std::string dir = dir_template;
    const std::string big = dir + "/big";
    int f = open(big.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) abort();
    close(f);
    Policy writer;
    writer.promises.insert(Promise::kThread);
    PathRule w;
    w.path = dir;
    w.write = true;
    writer.paths.push_back(w);
    std::vector<WorkerId> busy = SpawnHostile(*broker, writer, 1, [big](Client& client) {
      auto fd = client.Open(big, O_WRONLY);
      if (!fd.ok()) return 1;
      constexpr size_t kChunk = size_t{128} << 20;
      void* zeros = mmap(nullptr, kChunk, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
      if (zeros == MAP_FAILED) return 2;
      const int out = fd->get();
      std::thread([out, zeros] {
        for (;;) {
          if (pwrite(out, zeros, kChunk, 0) < 0) _exit(3);
        }
      }).detach();
      if (!client.Open(big, O_WRONLY | O_TRUNC).ok()) return 4;
      if (write(1, "b", 1) != 1) return 5;
      for (;;) (void)client.Open(big, O_WRONLY | O_TRUNC);
    });
    stalled = innocent.Measure();
    EndAll(*broker, busy);
    unlink(big.c_str());
    rmdir(dir.c_str());

    // One worker whose call stalls without costing any CPU: a TCP connect to a listener
    // whose accept queue is full (its SYNs are dropped; the broker gives up after its
    // connect deadline, and the worker asks again). Tells the broker's structure from
    // the CPU that the pwrite scenario burns.
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listener, 0) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      abort();
    }
    std::vector<int> fillers;
    for (int i = 0; i < 4; ++i) {  // fill the accept queue (backlog 0 holds one)
      int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      (void)connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fillers.push_back(c);
    }
    const uint16_t port = ntohs(addr.sin_port);
    Policy connecter;
    connecter.promises.insert(Promise::kInet);
    ConnectRule rule;
    rule.transport = ConnectRule::Transport::kTcp;
    rule.address = std::string("\x7f\x00\x00\x01", 4);
    rule.prefix_len = 32;
    rule.port_min = rule.port_max = port;
    connecter.connects.push_back(rule);
    std::vector<WorkerId> parked_ids =
        SpawnHostile(*broker, connecter, 1, [port](Client& client) {
          if (write(1, "p", 1) != 1) return 1;
          for (;;) (void)client.ConnectTcp("127.0.0.1", port);
        });
    usleep(100'000);  // its first connect is under way
    parked = innocent.Measure();
    EndAll(*broker, parked_ids);
    for (int c : fillers) close(c);
    close(listener);
    state.SetIterationTime(1);
  }
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  state.counters["quiet_p50_us"] = us(quiet.p50);
  state.counters["quiet_p99_us"] = us(quiet.p99);
  state.counters["flood_p50_us"] = us(flood.p50);
  state.counters["flood_p99_us"] = us(flood.p99);
  state.counters["spin_p50_us"] = us(spin.p50);
  state.counters["spin_p99_us"] = us(spin.p99);
  state.counters["stalled_p50_us"] = us(stalled.p50);
  state.counters["stalled_p99_us"] = us(stalled.p99);
  state.counters["flood_p99_ratio"] = static_cast<double>(flood.p99) / quiet.p99;
  state.counters["stalled_p99_ratio"] = static_cast<double>(stalled.p99) / quiet.p99;
  state.counters["parked_p50_us"] = us(parked.p50);
  state.counters["parked_p99_us"] = us(parked.p99);
  printf("innocent open latency (us): quiet p50 %.1f p99 %.1f | 50 flooding workers p50 %.1f "
         "p99 %.1f (p99 x%.2f) | 50 spinning workers, no requests p50 %.1f p99 %.1f (p99 x%.2f) "
         "| one stalled worker p50 %.1f p99 %.1f (p99 x%.2f) | one worker stalled in a "
         "connect (no CPU) p50 %.1f p99 %.1f (p99 x%.2f); target p99 within 3x of quiet\n",
         us(quiet.p50), us(quiet.p99), us(flood.p50), us(flood.p99),
         static_cast<double>(flood.p99) / quiet.p99, us(spin.p50), us(spin.p99),
         static_cast<double>(spin.p99) / quiet.p99, us(stalled.p50), us(stalled.p99),
         static_cast<double>(stalled.p99) / quiet.p99, us(parked.p50), us(parked.p99),
         static_cast<double>(parked.p99) / quiet.p99);
}
BENCHMARK(BM_InnocentLatencyBesideHostileWorkers)->UseManualTime()->Iterations(1);

// Collects each benchmark's time per iteration so main can print the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration) {
        times_[run.run_name.function_name] = run.GetAdjustedRealTime();
        auto ratio = run.counters.find("ratio");
        if (ratio != run.counters.end()) counter_ratios_[run.run_name.function_name] = ratio->second;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void PrintRatio(const char* what, const char* num, const char* den, double target) {
    if (!times_.count(num) || !times_.count(den)) return;
    double ratio = times_[num] / times_[den];
    if (target <= 0) {  // reported, no target
      printf("%-44s %8.3f\n", what, ratio);
      return;
    }
    printf("%-44s %8.3f  (target <= %.2f: %s)\n", what, ratio, target,
           ratio <= target ? "met" : "NOT met");
  }

 private:
  std::map<std::string, double> times_;

 public:
  std::map<std::string, double> counter_ratios_;
};

}  // namespace
}  // namespace vow

int main(int argc, char** argv) {
  if (getenv(vow::kSmallForkEnv) != nullptr) return vow::SmallForkLoop();
  benchmark::Initialize(&argc, argv);
  vow::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  printf("\nratios (same run):\n");
  reporter.PrintRatio("open: broker / SCM_RIGHTS floor", "BM_OpenThroughBroker",
                      "BM_OpenFloorScmRights", 1.25);
  if (reporter.counter_ratios_.count("BM_OpenRatioInterleaved")) {
    double r = reporter.counter_ratios_["BM_OpenRatioInterleaved"];
    printf("%-44s %8.3f  (target <= 1.25: %s)\n", "open: broker / floor, interleaved batches", r,
           r <= 1.25 ? "met" : "NOT met");
  }
  reporter.PrintRatio("spawn-to-locked / the caller's fork+exit+wait", "BM_SpawnToLocked",
                      "BM_ForkExitWait", 1.3);
  reporter.PrintRatio("spawn-to-locked / a small fork+exit+wait", "BM_SpawnToLocked",
                      "BM_ForkExitWaitSmall", 1.3);
  reporter.PrintRatio("fork-server spawn-to-locked / caller's fork", "BM_SpawnToLockedForkServer",
                      "BM_ForkExitWait", 1.3);
  reporter.PrintRatio("fork-server spawn-to-locked / Spawn's", "BM_SpawnToLockedForkServer",
                      "BM_SpawnToLocked", 0);
  reporter.PrintRatio("fork server without pre-made worker / caller's fork",
                      "BM_SpawnToLockedForkServerNoPremade", "BM_ForkExitWait", 0);
  reporter.PrintRatio("fork server: pre-made / not, closed loop", "BM_SpawnToLockedForkServer",
                      "BM_SpawnToLockedForkServerNoPremade", 0);
  reporter.PrintRatio("getppid under stdio / under allow-all", "BM_GetppidUnderStdio",
                      "BM_GetppidUnderAllowAll", 1.05);
  if (reporter.counter_ratios_.count("BM_GetppidFilters")) {
    double r = reporter.counter_ratios_["BM_GetppidFilters"];
    printf("%-44s %8.3f  (target <= 1.05: %s)\n", "getppid stdio / allow-all, interleaved", r,
           r <= 1.05 ? "met" : "NOT met");
  }
  reporter.PrintRatio("getppid under allow-all / bare (any filter)", "BM_GetppidUnderAllowAll",
                      "BM_GetppidBare", 0);
  for (const char* name :
       {"BM_LibcSetOpenLocaltime", "BM_LibcFstatSyscall", "BM_LibcFstatGlibc"}) {
    if (reporter.counter_ratios_.count(name)) {
      printf("%-44s %8.3f\n", (std::string(name) + ": stdio / bare").c_str(),
             reporter.counter_ratios_[name]);
    }
  }
  benchmark::Shutdown();
  return 0;
}
