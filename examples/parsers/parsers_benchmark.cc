// `bazel run -c opt //examples/parsers:parsers_benchmark`. Not a test: timing is never
// asserted. Images/s of a warm pool of 2 workers (2 client threads) vs the same library
// with 2 threads in-process, for 1x1, ~100 KiB and ~1 MiB JPEGs (RGBA pixels returned in
// both), with per-request p50/p99; archive extraction MB/s in a worker vs `bsdtar -x` on the same tar.
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "examples/parsers/image.h"
#include "examples/parsers/image_corpus.h"
#include "examples/parsers/parsers.h"

namespace vow::parsers {
namespace {

namespace fs = std::filesystem;

// A JPEG of at least `target` bytes (the pattern's noise makes it compress poorly);
// target 0: a 1x1 JPEG. Made once, under a lock, before a benchmark's timed loop (the
// benchmark threads call this at the same time).
const std::string& Jpeg(int64_t target) {
  static absl::Mutex mu(absl::kConstInit);
  static std::map<int64_t, std::string>* cache = new std::map<int64_t, std::string>;
  absl::MutexLock lock(&mu);
  std::string& out = (*cache)[target];
  if (target == 0 && out.empty()) {
    out = *EncodeTestImage(ImageFormat::kJpeg, 1, 1, TestPattern(1, 1, 96, false, false), 90);
  }
  for (uint32_t w = 200; out.size() < static_cast<size_t>(target); w += w / 8) {
    uint32_t h = w * 3 / 4;
    out = *EncodeTestImage(ImageFormat::kJpeg, w, h, TestPattern(w, h, 96, false, false), 90);
  }
  return out;
}

Parsers& Pool() {
  static Parsers* p = Parsers::Create(ParserOptions{.pool_size = 2})->release();
  return *p;
}

// Per-request latency of one benchmark thread, reported as p50/p99 in microseconds
// (averaged over the threads).
class Latencies {
 public:
  void Add(int64_t ns) { ns_.push_back(ns); }
  void Report(benchmark::State& state) {
    if (ns_.empty()) return;
    std::sort(ns_.begin(), ns_.end());
    auto at = [this](double q) { return ns_[static_cast<size_t>(q * (ns_.size() - 1))] / 1e3; };
    state.counters["p50_us"] = benchmark::Counter(at(0.50), benchmark::Counter::kAvgThreads);
    state.counters["p99_us"] = benchmark::Counter(at(0.99), benchmark::Counter::kAvgThreads);
  }

 private:
  std::vector<int64_t> ns_;
};

// CPU time (ns) of this process (CLOCK_PROCESS_CPUTIME_ID: all threads, those that have
// exited too, like a finished benchmark thread) and of every descendant (the pool's
// workers, which live on), from /proc/PID/task/TID/schedstat. On this shared VM wall-clock throughput swings with
// the other builds; CPU per image does not, and images/s with both CPUs busy is 2 CPUs
// over it.
int64_t TreeCpuNs() {
  std::map<int, std::vector<int>> children;
  for (const fs::directory_entry& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2) {
      children[ppid].push_back(atoi(name.c_str()));
    }
  }
  timespec self;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &self);
  int64_t total = self.tv_sec * 1000000000ll + self.tv_nsec;
  std::vector<int> todo = children[getpid()];
  while (!todo.empty()) {
    int pid = todo.back();
    todo.pop_back();
    for (int child : children[pid]) todo.push_back(child);
    std::error_code ec;
    for (const fs::directory_entry& t :
         fs::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
      std::ifstream in(t.path() / "schedstat");
      int64_t ns = 0;
      if (in >> ns) total += ns;
    }
  }
  return total;
}

// Reports the process tree's CPU per image (cpu_ms), measured by thread 0 around the timed
// loop (the loop starts and ends at a barrier of all benchmark threads).
class TreeCpu {
 public:
  explicit TreeCpu(benchmark::State& state) : state_(state) {
    if (state.thread_index() == 0) start_ = TreeCpuNs();
  }
  void Report() {
    if (state_.thread_index() != 0 || state_.iterations() == 0) return;
    double images = static_cast<double>(state_.iterations()) * state_.threads();
    state_.counters["cpu_ms"] = (TreeCpuNs() - start_) / 1e6 / images;
  }

 private:
  benchmark::State& state_;
  int64_t start_ = 0;
};

int64_t NowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000ll + t.tv_nsec;
}

void BM_DecodeInProcess(benchmark::State& state) {
  const std::string& file = Jpeg(state.range(0));
  Latencies latencies;
  TreeCpu cpu(state);
  for (auto _ : state) {
    int64_t t0 = NowNs();
    auto r = DecodeImageBytes(file, kDefaultMaxPixels, true);
    if (!r.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(r);
    latencies.Add(NowNs() - t0);
  }
  cpu.Report();
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(absl::StrCat(file.size(), " bytes"));
  latencies.Report(state);
}
// Warm-up (untimed) first: the first large decodes in a process fault in every page of
// their buffers (on this VM a page fault costs tens of microseconds), which would make
// the first two 1 MiB iterations, all that a 1 s run takes, the whole figure.
BENCHMARK(BM_DecodeInProcess)->Arg(0)->Arg(100 << 10)->Arg(1 << 20)->Threads(2)->UseRealTime()
    ->MinWarmUpTime(1);

// Diagnostic, the strictest baseline: in-process into one caller buffer per thread, made
// and faulted in once, reused for every image (DecodeImageInto: no allocation, no
// zero-fill of a fresh std::string).
void BM_DecodeInProcessIntoBuffer(benchmark::State& state) {
  const std::string& file = Jpeg(state.range(0));
  constexpr size_t kBytes = 32 << 20;
  static char* buffers[2] = {};
  static absl::Mutex mu(absl::kConstInit);
  char* buffer;
  {
    absl::MutexLock lock(&mu);
    char*& mine = buffers[state.thread_index() % 2];
    if (mine == nullptr) {
      mine = static_cast<char*>(aligned_alloc(kPixelBufferAlignment, kBytes));
      memset(mine, 0, kBytes);
    }
    buffer = mine;
  }
  PixelBuffer out{buffer, kBytes};
  TreeCpu cpu(state);
  for (auto _ : state) {
    auto r = DecodeImageInto(file, kDefaultMaxPixels, out);
    if (!r.ok() || !r->in_buffer) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(buffer);
  }
  cpu.Report();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeInProcessIntoBuffer)->Arg(100 << 10)->Arg(1 << 20)->Threads(2)
    ->UseRealTime()->MinWarmUpTime(1);

void BM_DecodeWarmPool(benchmark::State& state) {
  const std::string& file = Jpeg(state.range(0));
  Parsers& p = Pool();
  Latencies latencies;
  TreeCpu cpu(state);
  for (auto _ : state) {
    int64_t t0 = NowNs();
    ImageResult r = p.DecodeImage(file);
    if (r.outcome != Outcome::kOk) state.SkipWithError(r.error.c_str());
    benchmark::DoNotOptimize(r);
    latencies.Add(NowNs() - t0);
  }
  cpu.Report();
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(absl::StrCat(file.size(), " bytes"));
  latencies.Report(state);
}
BENCHMARK(BM_DecodeWarmPool)->Arg(0)->Arg(100 << 10)->Arg(1 << 20)->Threads(2)->UseRealTime()
    ->MinWarmUpTime(1);

// Diagnostic: the same without returning the pixels (metadata and warnings only), to show
// what handing width*height*4 bytes back costs.
void BM_DecodeWarmPoolNoPixels(benchmark::State& state) {
  const std::string& file = Jpeg(state.range(0));
  Parsers& p = Pool();
  ImageOptions options;
  options.keep_pixels = false;
  TreeCpu cpu(state);
  for (auto _ : state) {
    ImageResult r = p.DecodeImage(file, options);
    if (r.outcome != Outcome::kOk) state.SkipWithError(r.error.c_str());
  }
  cpu.Report();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeWarmPoolNoPixels)->Arg(100 << 10)->Arg(1 << 20)->Threads(2)->UseRealTime()
    ->MinWarmUpTime(1);

// 32 files of 1 MiB in an uncompressed tar.
const std::string& Tar() {
  static std::string* path = [] {
    std::string dir = fs::temp_directory_path() / "vow_bench_src";
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::string data = TestPattern(512, 512, 255, false, false);  // 1 MiB
    for (int i = 0; i < 32; ++i) std::ofstream(absl::StrCat(dir, "/f", i), std::ios::binary) << data;
    auto* tar = new std::string(fs::temp_directory_path() / "vow_bench.tar");
    system(("bsdtar -cf " + *tar + " -C " + dir + " .").c_str());
    return tar;
  }();
  return *path;
}

void BM_ExtractSandboxed(benchmark::State& state) {
  std::string into = fs::temp_directory_path() / "vow_bench_out";
  int64_t bytes = fs::file_size(Tar());
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(into);
    int fd = open(Tar().c_str(), O_RDONLY | O_CLOEXEC);
    state.ResumeTiming();
    ExtractResult r = Pool().ExtractArchive(fd, into);
    state.PauseTiming();
    close(fd);
    if (r.outcome != 0) state.SkipWithError(r.ToJson().c_str());
    state.ResumeTiming();
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_ExtractSandboxed)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_ExtractBsdtar(benchmark::State& state) {
  std::string into = fs::temp_directory_path() / "vow_bench_out";
  int64_t bytes = fs::file_size(Tar());
  std::string command = "bsdtar -xf " + Tar() + " -C " + into;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(into);
    fs::create_directories(into);
    state.ResumeTiming();
    if (system(command.c_str()) != 0) state.SkipWithError("bsdtar failed");
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(BM_ExtractBsdtar)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vow::parsers

// The benchmark files are made before any benchmark runs: a benchmark's first (timed)
// iterations must not wait for another thread generating one.
int main(int argc, char** argv) {
  for (int64_t target : {0, 100 << 10, 1 << 20}) vow::parsers::Jpeg(target);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
