// `bazel run -c opt //examples/x509_oracle:limbo_benchmark [-- CASES]`: limbo mode on a
// generated suite (MakeLimboSuite, default 3000 cases), cases/s judged in-process with
// 2 threads vs sandboxed with 2 pooled workers and 2 cases at a time, and the ratio.
// Each configuration runs after one warm-up pass; timing starts when the oracle is up.
// Not a test: timing is never asserted.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/limbo.h"
#include "examples/x509_oracle/oracle.h"
#include "examples/x509_oracle/verify.h"

int main(int argc, char** argv) {
  using namespace vow::x509;  // NOLINT
  int n = argc > 1 ? std::atoi(argv[1]) : 3000;
  if (n <= 0 || !WarmUpOpenSsl()) return 2;
  absl::StatusOr<std::vector<LimboCase>> cases =
      ParseLimbo(MakeLimboSuite(n), absl::ToUnixSeconds(absl::Now()));
  if (!cases.ok()) return 2;
  OracleOptions o;
  o.pool_size = 2;
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(o);
  if (!oracle.ok()) return 3;
  Oracle* p = oracle->get();
  VerifyFn sandboxed = [p](const VerifyRequest& r) { return p->Verify(r); };
  auto run = [&](const VerifyFn& fn) {
    RunLimbo(*cases, fn, 2);  // warm-up
    absl::Time start = absl::Now();
    LimboReport r = RunLimbo(*cases, fn, 2);
    double s = absl::ToDoubleSeconds(absl::Now() - start);
    return (r.total - r.skipped) / s;
  };
  double in_process = run(Verify);
  double pool = run(sandboxed);
  std::printf("limbo, %d cases: in-process 2 threads %.0f cases/s, sandboxed 2 workers "
              "%.0f cases/s, ratio %.2fx (failed workers %llu)\n",
              n, in_process, pool, pool / in_process,
              static_cast<unsigned long long>(p->failed_workers()));
  return 0;
}
