// Throughput and latency of the X.509 oracle on the generated corpus: OpenSSL in-process,
// the sandboxed pool (persistent locked workers), and a fresh locked worker per request.
//
//   bazel run -c opt //examples/x509_oracle:oracle_benchmark
//
// Each configuration runs a fixed number of verifications per client thread (so that
// every sample belongs to one measured run), cycling through the whole corpus (valid and
// invalid chains, including the garbage entry). Timing is never asserted; the summary at
// the end prints verifications/s, p50/p99 latency and the pool/in-process ratio (DESIGN.md
// target: >= 0.9).
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

struct Samples {
  std::vector<double> latency_us;
  double wall_s = 0;  // the slowest client thread's loop
  int threads = 0;
};
absl::Mutex g_mu;
std::map<std::string, Samples>* g_samples;

// Runs `verify(i)` for the benchmark's iterations and records each latency.
template <typename F>
void Measure(benchmark::State& state, const std::string& name, F verify) {
  std::vector<double> lat;
  lat.reserve(static_cast<size_t>(state.max_iterations));
  size_t i = static_cast<size_t>(state.thread_index()) * 7;
  auto start = Clock::now();
  for (auto _ : state) {
    auto t0 = Clock::now();
    bool ok = verify(i % g_payloads->size());
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!ok) state.SkipWithError("wrong verdict");
    ++i;
  }
  double wall = std::chrono::duration<double>(Clock::now() - start).count();
  state.SetItemsProcessed(state.iterations());
  absl::MutexLock lock(&g_mu);
  Samples& s = (*g_samples)[name];
  s.latency_us.insert(s.latency_us.end(), lat.begin(), lat.end());
  s.wall_s = std::max(s.wall_s, wall);
  s.threads = state.threads();
}

bool Matches(size_t k, bool valid) {
  return k >= g_corpus->size() || valid == (*g_corpus)[k].expect_valid;
}

void BM_InProcess(benchmark::State& state) {
  Measure(state, "in-process/threads:" + std::to_string(state.threads()), [](size_t k) {
    return Matches(k, Verify((*g_corpus)[k].request).valid);
  });
}

void BM_Sandboxed(benchmark::State& state, const std::string& oracle_name) {
  Oracle* oracle = (*g_oracles)[oracle_name];
  Measure(state, oracle_name + "/threads:" + std::to_string(state.threads()),
          [oracle](size_t k) {
            std::string json = oracle->VerifyPayload((*g_payloads)[k]);
            absl::StatusOr<Verdict> v = VerdictFromJson(json);
            return v.ok() && Matches(k, v->valid);
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
  std::map<std::string, Samples> samples;
  g_samples = &samples;

  // Oracles are created (workers forked) before any benchmark thread runs OpenSSL.
  std::map<std::string, std::unique_ptr<Oracle>> owned;
  std::map<std::string, Oracle*> oracles;
  auto make = [&](const std::string& name, OracleOptions::Workers w, size_t size) {
    OracleOptions o;
    o.workers = w;
    o.pool_size = size;
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
  make("fresh", OracleOptions::Workers::kFresh, 0);
  g_oracles = &oracles;

  constexpr int kN = 3000;  // per client thread
  benchmark::RegisterBenchmark("in_process", BM_InProcess)->Threads(1)->Iterations(kN)
      ->UseRealTime();
  benchmark::RegisterBenchmark("in_process", BM_InProcess)->Threads(2)->Iterations(kN)
      ->UseRealTime();
  benchmark::RegisterBenchmark("pool_1_worker", BM_Sandboxed, std::string("pool:1"))
      ->Threads(1)->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("pool_1_worker_empty_job", BM_PoolFloor)
      ->Threads(1)->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("pool_2_workers", BM_Sandboxed, std::string("pool:2"))
      ->Threads(2)->Iterations(kN)->UseRealTime();
  benchmark::RegisterBenchmark("fresh_worker", BM_Sandboxed, std::string("fresh"))
      ->Threads(1)->Iterations(kN / 10)->UseRealTime();
  benchmark::RegisterBenchmark("fresh_worker", BM_Sandboxed, std::string("fresh"))
      ->Threads(2)->Iterations(kN / 10)->UseRealTime();

  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  printf("\n== x509 oracle: %zu corpus entries (all kinds), %ld CPUs ==\n", corpus.size(),
         sysconf(_SC_NPROCESSORS_ONLN));
  printf("%-28s %10s %10s %10s %10s\n", "configuration", "verif/s", "p50 us", "p99 us",
         "samples");
  std::map<std::string, double> rate;
  for (const auto& [name, s] : samples) {
    double r = s.wall_s > 0 ? static_cast<double>(s.latency_us.size()) / s.wall_s : 0;
    rate[name] = r;
    printf("%-28s %10.0f %10.1f %10.1f %10zu\n", name.c_str(), r, Percentile(s.latency_us, 0.5),
           Percentile(s.latency_us, 0.99), s.latency_us.size());
  }
  auto ratio = [&](const char* a, const char* b) {
    if (rate[b] <= 0) return;
    printf("ratio %-22s / %-22s = %.2fx\n", a, b, rate[a] / rate[b]);
  };
  ratio("pool:2/threads:2", "in-process/threads:2");
  ratio("pool:1/threads:1", "in-process/threads:1");
  ratio("pool:2/threads:2", "in-process/threads:1");
  ratio("fresh/threads:2", "in-process/threads:2");
  printf("target (DESIGN.md): pool / in-process >= 0.90x at the same client concurrency\n");
  return 0;
}
