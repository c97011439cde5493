// Throughput and latency of the X.509 oracle on the generated corpus: OpenSSL in-process,
// the sandboxed pool (persistent locked workers), and a fresh locked worker per request.
//
//   bazel run -c opt //examples/x509_oracle:oracle_benchmark
//
// Each configuration runs a fixed number of verifications per client thread, cycling
// through the whole corpus (valid and invalid chains, including the garbage entry).
// Timing is never asserted; the summary at the end prints verifications/s, p50/p99
// latency and the pool/in-process ratio at the same client concurrency (DESIGN.md target:
// >= 0.9). A run's rate is its verifications over its own wall time (from the start
// barrier to the last thread's last answer); with --benchmark_repetitions each run is
// one rate and the summary prints their median. A run with a wrong verdict counts for
// nothing: it is reported as failed and left out of the rates and latencies.
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/oracle.h"
#include "examples/x509_oracle/protocol.h"
#include "examples/x509_oracle/verify.h"

namespace vow::x509 {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<CorpusEntry>* g_corpus;
std::vector<std::string>* g_payloads;
std::map<std::string, Oracle*>* g_oracles;

// One configuration's finished runs (one per repetition).
struct Samples {
  std::vector<double> latency_us;  // every sample of every successful run
  std::vector<double> rates;       // verifications/s, one per successful run
  int failed_runs = 0;
};
// The run in progress: its client threads report one by one.
struct PendingRun {
  std::vector<double> latency_us;
  double wall_s = 0;  // the slowest client thread, start barrier to its last answer
  int reported = 0;
  bool failed = false;
};
absl::Mutex g_mu;
std::map<std::string, Samples>* g_samples;
std::map<std::string, PendingRun>* g_pending;

// Runs `verify(i)` for the benchmark's iterations and records each latency.
template <typename F>
void Measure(benchmark::State& state, const std::string& name, F verify) {
  std::vector<double> lat;
  lat.reserve(static_cast<size_t>(state.max_iterations));
  size_t i = static_cast<size_t>(state.thread_index()) * 7;
  bool failed = false;
  Clock::time_point start, end;
  for (auto _ : state) {
    auto t0 = Clock::now();
    if (lat.empty()) start = t0;  // after begin(), i.e. after the threads' start barrier
    bool ok = verify(i % g_payloads->size());
    end = Clock::now();
    lat.push_back(std::chrono::duration<double, std::micro>(end - t0).count());
    if (!ok) {
      failed = true;
      state.SkipWithError("wrong verdict");
      break;
    }
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  absl::MutexLock lock(&g_mu);
  PendingRun& run = (*g_pending)[name];
  run.latency_us.insert(run.latency_us.end(), lat.begin(), lat.end());
  if (!lat.empty()) {
    run.wall_s = std::max(run.wall_s, std::chrono::duration<double>(end - start).count());
  }
  run.failed = run.failed || failed;
  if (++run.reported < state.threads()) return;
  // The run's last thread: the run is complete.
  Samples& s = (*g_samples)[name];
  if (run.failed || run.wall_s <= 0) {
    ++s.failed_runs;
  } else {
    s.rates.push_back(static_cast<double>(run.latency_us.size()) / run.wall_s);
    s.latency_us.insert(s.latency_us.end(), run.latency_us.begin(), run.latency_us.end());
  }
  g_pending->erase(name);
}

bool Matches(size_t k, bool valid) {
  return k >= g_corpus->size() || valid == (*g_corpus)[k].expect_valid;
}

// The in-process baseline: the same job as the pool's, from the same bytes to the same
// answer. A caller of the pool holds a job payload (EncodeJob's bytes: what a `serve`
// client sends, what the CLI builds) and gets the verdict's JSON (what `serve` and the CLI
// hand on) and the decoded verdict; OpenSSL in the caller's own process would decode the
// job, verify, and write the JSON.
bool InProcessJob(size_t k) {
    absl::StatusOr<Job> job = DecodeJob((*g_payloads)[k]);
    if (!job.ok()) return false;
    Verdict v = Verify(job->request);
    std::string json = VerdictToJson(v);
    benchmark::DoNotOptimize(json);
    return Matches(k, v.valid);
}

void BM_InProcess(benchmark::State& state) {
  Measure(state, "in-process/threads:" + std::to_string(state.threads()), InProcessJob);
}

// The floor of any design that verifies in another process, for the 1x1 ratio: the
// in-process job (as BM_InProcess), preceded by one round trip to a trivial process (one
// byte there and back over a socketpair) with the thread and that process on one CPU, as
// colocate_single_caller puts a lone caller and its worker. The pool's exchange has the
// same two context switches per request, plus its real work (the job's and the verdict's
// bytes, the check of the answer, the pinning); this one has nothing else. Diagnostic
// only: never the baseline of a ratio the target is about.
int g_echo_fd = -1;
pid_t g_echo_pid = -1;

void BM_InProcessSwitch(benchmark::State& state) {
  cpu_set_t saved, one;
  int cpu = sched_getcpu();
  bool pinned = cpu >= 0 && sched_getaffinity(0, sizeof(saved), &saved) == 0;
  if (pinned) {
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned = sched_setaffinity(0, sizeof(one), &one) == 0 &&
             sched_setaffinity(g_echo_pid, sizeof(one), &one) == 0;
  }
  Measure(state, "in-process + switch/threads:1", [](size_t k) {
    char c = 0;
    if (write(g_echo_fd, &c, 1) != 1 || read(g_echo_fd, &c, 1) != 1) return false;
    return InProcessJob(k);
  });
  if (pinned) (void)sched_setaffinity(0, sizeof(saved), &saved);
}

// The previous baseline, kept for comparison: Verify on an already-decoded request, no
// job decoding and no JSON (what a library caller that holds a VerifyRequest and wants
// only the struct pays; the pool cannot serve such a caller without both).
void BM_InProcessDecoded(benchmark::State& state) {
  Measure(state, "in-process decoded/threads:" + std::to_string(state.threads()),
          [](size_t k) { return Matches(k, Verify((*g_corpus)[k].request).valid); });
}

// The job's bytes in, the verdict's JSON and the decoded verdict out (Oracle checks every
// worker answer by decoding it and hands the decoded verdict back: no second parse).
void BM_Sandboxed(benchmark::State& state, const std::string& oracle_name) {
  Oracle* oracle = (*g_oracles)[oracle_name];
  Measure(state, oracle_name + "/threads:" + std::to_string(state.threads()),
          [oracle](size_t k) {
            Verdict v;
            std::string json = oracle->VerifyPayload((*g_payloads)[k], &v);
            benchmark::DoNotOptimize(json);
            return Matches(k, v.valid) && v.internal_error.empty();
          });
}

// The round-trip floor: a job the worker refuses at once (bad version), so no OpenSSL.
void BM_PoolFloor(benchmark::State& state) {
  Oracle* oracle = (*g_oracles)["pool:1"];
  const std::string job(1, '\0');
  Measure(state, "pool:1 empty job (floor)", [oracle, &job](size_t) {
    return oracle->VerifyPayload(job).find("bad request frame") != std::string::npos;
  });
}

// The verdict's trip per request, without the sandbox, over the corpus's verdicts: as it
// was (the worker's VerdictToJson, the front end's VerdictFromJson check) and as it is
// (the worker's EncodeVerdict; the front end's DecodeVerdict, then VerdictToJson).
std::vector<Verdict>* g_verdicts;

void BM_VerdictTripJson(benchmark::State& state) {
  size_t i = 0;
  for (auto _ : state) {
    const Verdict& v = (*g_verdicts)[i++ % g_verdicts->size()];
    std::string json = VerdictToJson(v);
    absl::StatusOr<Verdict> back = VerdictFromJson(json);
    benchmark::DoNotOptimize(back);
  }
}

void BM_VerdictTripBinary(benchmark::State& state) {
  size_t i = 0;
  for (auto _ : state) {
    const Verdict& v = (*g_verdicts)[i++ % g_verdicts->size()];
    std::string bytes = EncodeVerdict(v);
    absl::StatusOr<Verdict> back = DecodeVerdict(bytes);
    std::string json = BoundedVerdictJson(&*back);
    benchmark::DoNotOptimize(json);
  }
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

}  // namespace
}  // namespace vow::x509

int main(int argc, char** argv) {
  using namespace vow::x509;
  if (!WarmUpOpenSsl()) return 1;
  std::vector<CorpusEntry> corpus = MakeCorpus();
  std::vector<std::string> payloads;
  for (const CorpusEntry& e : corpus) payloads.push_back(EncodeJob(e.request, true));
  g_corpus = &corpus;
  g_payloads = &payloads;
  std::vector<Verdict> verdicts;
  for (const CorpusEntry& e : corpus) verdicts.push_back(Verify(e.request));
  g_verdicts = &verdicts;
  std::map<std::string, Samples> samples;
  g_samples = &samples;
  std::map<std::string, PendingRun> pending;
  g_pending = &pending;

  // Oracles are created (workers forked) before any benchmark thread runs OpenSSL.
  std::map<std::string, std::unique_ptr<Oracle>> owned;
  std::map<std::string, Oracle*> oracles;
  auto make = [&](const std::string& name, OracleOptions::Workers w, size_t size,
                  bool colocate = true) {
    OracleOptions o;
    o.workers = w;
    o.pool_size = size;
    o.colocate_single_caller = colocate;
    o.stderr_fd = 2;
    auto oracle = Oracle::Create(o);
    if (!oracle.ok()) {
      fprintf(stderr, "%s: %s\n", name.c_str(), std::string(oracle.status().message()).c_str());
      exit(1);
    }
    oracles[name] = oracle->get();
    owned[name] = *std::move(oracle);
  };
  make("pool:1", OracleOptions::Workers::kPool, 1);
  make("pool:2", OracleOptions::Workers::kPool, 2);
  // Diagnostic (not a target): the 1x1 pool without colocate_single_caller, to price the
  // pinning where other tasks use the CPUs (README, "Open, round 5").
  make("pool:1 unpinned", OracleOptions::Workers::kPool, 1, /*colocate=*/false);
  make("fresh", OracleOptions::Workers::kFresh, 0);
  g_oracles = &oracles;
  {
    // BM_InProcessSwitch's other process: forked before any benchmark thread runs; it
    // only reads and writes its socket, and exits at EOF.
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
    g_echo_pid = fork();
    if (g_echo_pid < 0) return 1;
    if (g_echo_pid == 0) {
      close(sv[0]);
      char c;
      while (read(sv[1], &c, 1) == 1 && write(sv[1], &c, 1) == 1) {
      }
      _exit(0);
    }
    close(sv[1]);
    g_echo_fd = sv[0];
  }

  constexpr int kN = 3000;  // per client thread
  benchmark::RegisterBenchmark("in_process", BM_InProcess)->Threads(1)->Iterations(kN)
      ->UseRealTime();
  benchmark::RegisterBenchmark("in_process", BM_InProcess)->Threads(2)->Iterations(kN)
      ->UseRealTime();
  benchmark::RegisterBenchmark("in_process_switch", BM_InProcessSwitch)->Threads(1)
      ->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("in_process_decoded", BM_InProcessDecoded)->Threads(1)
      ->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("in_process_decoded", BM_InProcessDecoded)->Threads(2)
      ->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("pool_1_worker", BM_Sandboxed, std::string("pool:1"))
      ->Threads(1)->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("pool_1_worker_unpinned", BM_Sandboxed,
                               std::string("pool:1 unpinned"))
      ->Threads(1)->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("pool_1_worker_empty_job", BM_PoolFloor)
      ->Threads(1)->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("pool_2_workers", BM_Sandboxed, std::string("pool:2"))
      ->Threads(2)->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("fresh_worker", BM_Sandboxed, std::string("fresh"))
      ->Threads(1)->Iterations(kN / 10)->UseRealTime();
  benchmark::RegisterBenchmark("fresh_worker", BM_Sandboxed, std::string("fresh"))
      ->Threads(2)->Iterations(kN / 10)->UseRealTime();

  benchmark::RegisterBenchmark("verdict_trip_json", BM_VerdictTripJson);
  benchmark::RegisterBenchmark("verdict_trip_binary", BM_VerdictTripBinary);

  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  close(g_echo_fd);
  (void)waitpid(g_echo_pid, nullptr, 0);

  printf("\n== x509 oracle: %zu corpus entries (all kinds), %ld CPUs ==\n", corpus.size(),
         sysconf(_SC_NPROCESSORS_ONLN));
  printf("%-34s %10s %10s %10s %10s %6s %6s\n", "configuration", "verif/s", "p50 us",
         "p99 us", "samples", "runs", "failed");
  std::map<std::string, double> rate;
  for (const auto& [name, s] : samples) {
    double r = s.rates.empty() ? 0 : Percentile(s.rates, 0.5);
    rate[name] = r;
    printf("%-34s %10.0f %10.1f %10.1f %10zu %6zu %6d\n", name.c_str(), r,
           Percentile(s.latency_us, 0.5), Percentile(s.latency_us, 0.99), s.latency_us.size(),
           s.rates.size(), s.failed_runs);
  }
  // Only at the same client concurrency; a configuration without a successful run has
  // no ratio.
  auto ratio = [&](const char* a, const char* b) {
    if (rate[a] <= 0 || rate[b] <= 0) {
      printf("ratio %-22s / %-30s: no successful run of both\n", a, b);
      return;
    }
    printf("ratio %-22s / %-30s = %.2fx\n", a, b, rate[a] / rate[b]);
  };
  ratio("pool:2/threads:2", "in-process/threads:2");
  ratio("pool:1/threads:1", "in-process/threads:1");
  ratio("pool:1 unpinned/threads:1", "in-process/threads:1");
  ratio("pool:2/threads:2", "in-process decoded/threads:2");
  ratio("pool:1/threads:1", "in-process decoded/threads:1");
  ratio("in-process + switch/threads:1", "in-process/threads:1");
  ratio("pool:1/threads:1", "in-process + switch/threads:1");
  ratio("fresh/threads:2", "in-process/threads:2");
  printf("target (DESIGN.md): pool / in-process >= 0.90x at the same client concurrency\n");
  return 0;
}
