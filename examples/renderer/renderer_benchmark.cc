// `bazel run -c opt //examples/renderer:renderer_benchmark`. Not a test: timing is never
// asserted. Runs as the browser (the broker) with real locked renderers.
//  - BM_FirstRendering/{markdown,svg,pdf}: "open tab" (lease a warm renderer) to its first
//    rendering (the document sent, rendered in the fresh renderer, checked, PNG encoded
//    here), against rendering the same bytes in-process (the same library call plus the
//    same PNG encoding), alternating in one run: counters (medians of 8) tab_ms,
//    inproc_ms, ratio (of the medians), and rerender_ms (a second rendering in the same
//    tab, by the same renderer). The
//    pool has 2 spares before each opening, each spawned >= 1 s before (not timed); the
//    tab is closed after each (not timed). Second argument: 1 = spares warm up their
//    libraries (the default), 0 = they do not (a browser with warm_up = false).
//  - BM_HundredTabs: 100 tabs open (60 Markdown, 40 SVG), then 2000 re-render requests
//    from 4 threads over random tabs: p50/p99 latency, the broker's RSS before and with
//    the tabs open, the renderers' PSS sum. Runs first, before anything renders
//    in-process (which would load the libraries into the broker's own memory).
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "examples/parsers/image.h"
#include "examples/renderer/browser.h"
#include "examples/renderer/render.h"

namespace vow::renderer {
namespace {

std::string* dir = nullptr;
Browser* browser = nullptr;       // spares warm up their libraries (the default)
Browser* cold_browser = nullptr;  // spares do not (BrowserOptions::warm_up = false)

const char* const kNames[] = {"doc.md", "pic.svg", "doc.pdf"};

std::string Markdown() {
  std::string s = "# A document\n\n";
  for (int i = 0; i < 30; ++i) {
    absl::StrAppend(&s, "## Section ", i, "\n\nSome *emphasis*, some **strong** text, `code`, ",
                    "and [a link](https://example.org/", i, ").\n\n- one\n- two\n- three\n\n");
  }
  return s;
}

std::string Svg() {
  std::string s =
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300">)"
      R"(<rect width="400" height="300" fill="#3366cc"/>)";
  for (int i = 0; i < 10; ++i) {
    absl::StrAppend(&s, "<circle cx=\"", 20 + 36 * i, "\" cy=\"200\" r=\"15\" fill=\"#fc3\"/>");
  }
  return s + R"(<text x="20" y="80" font-family="DejaVu Sans" font-size="40" fill="#fff">)"
             R"(Hello vow</text></svg>)";
}

std::string Pdf() {
  std::string content = "BT /F1 36 Tf 40 100 Td (Hello vow) Tj ET";
  std::vector<std::string> objs = {
      "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R "
      "/Resources << /Font << /F1 5 0 R >> >> >>",
      absl::StrCat("<< /Length ", content.size(), " >>\nstream\n", content, "\nendstream"),
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"};
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objs.size(); ++i) {
    offsets.push_back(pdf.size());
    absl::StrAppend(&pdf, i + 1, " 0 obj\n", objs[i], "\nendobj\n");
  }
  size_t xref = pdf.size();
  absl::StrAppend(&pdf, "xref\n0 ", objs.size() + 1, "\n0000000000 65535 f \n");
  for (size_t off : offsets) pdf += absl::StrFormat("%010d 00000 n \n", off);
  absl::StrAppend(&pdf, "trailer\n<< /Size ", objs.size() + 1, " /Root 1 0 R >>\nstartxref\n",
                  xref, "\n%%EOF\n");
  return pdf;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A field of /proc/PID/status or smaps_rollup, in KiB.
uint64_t ProcKb(const std::string& file, const std::string& field) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, field)) continue;
    std::string digits;
    for (char c : line) {
      if (c >= '0' && c <= '9') digits += c;
    }
    uint64_t kb = 0;
    return absl::SimpleAtoi(digits, &kb) ? kb : 0;
  }
  return 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// In-process: the same library call and the same PNG encoding the browser does.
bool RenderInProcess(DocType type, const std::string& bytes) {
  absl::StatusOr<Rendering> r = Render(type, bytes, 0, kDefaultMaxPixels);
  if (!r.ok()) return false;
  if (type == DocType::kMarkdown) {
    benchmark::DoNotOptimize(r->html);
    return true;
  }
  absl::StatusOr<std::string> png = parsers::EncodePngRgba(r->width, r->height, r->rgba);
  benchmark::DoNotOptimize(png);
  return png.ok();
}

void BM_HundredTabs(benchmark::State& state) {
  constexpr int kTabs = 100, kRequests = 2000, kThreads = 4;
  for (auto _ : state) {
    uint64_t rss_before = ProcKb("/proc/self/status", "VmRSS:");
    std::vector<TabId> tabs(kTabs);
    std::vector<pid_t> pids(kTabs);
    std::atomic<bool> failed{false};
    absl::Mutex error_mu;
    std::string error;
    auto fail = [&](const std::string& why) {
      failed = true;
      absl::MutexLock lock(&error_mu);
      if (error.empty()) error = why;
    };
    absl::Time t0 = absl::Now();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < kTabs; i += kThreads) {
          absl::StatusOr<TabId> tab = browser->OpenTab(i % 5 < 3 ? "doc.md" : "pic.svg");
          if (!tab.ok()) {
            fail(absl::StrCat("open tab ", i, ": ", tab.status().ToString()));
            return;
          }
          tabs[i] = *tab;
          Page p = browser->Render(*tab, 0, false);
          if (p.kind != Page::Kind::kHtml && p.kind != Page::Kind::kPng) {
            fail(absl::StrCat("render tab ", i, ": ", p.message));
          }
          pids[i] = p.pid;
        }
      });
    }
    for (auto& th : threads) th.join();
    threads.clear();
    double open_s = absl::ToDoubleSeconds(absl::Now() - t0);
    if (failed) {
      state.SkipWithError(error.c_str());
      return;
    }
    std::vector<std::vector<double>> lat(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(t);
        for (int i = 0; i < kRequests / kThreads; ++i) {
          int k = static_cast<int>(rng() % kTabs);
          absl::Time s = absl::Now();
          Page p = browser->Render(tabs[k], 0, false);
          lat[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - s));
          if (p.kind != Page::Kind::kHtml && p.kind != Page::Kind::kPng) {
            fail(absl::StrCat("re-render tab ", k, ": ", p.message));
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    uint64_t rss_open = ProcKb("/proc/self/status", "VmRSS:");
    uint64_t pss = 0;
    for (pid_t pid : pids) pss += ProcKb(absl::StrCat("/proc/", pid, "/smaps_rollup"), "Pss:");
    for (TabId id : tabs) browser->CloseTab(id);
    if (failed) state.SkipWithError(error.c_str());
    state.counters["open_render_100_s"] = open_s;
    state.counters["p50_ms"] = all[all.size() / 2];
    state.counters["p99_ms"] = all[all.size() * 99 / 100];
    state.counters["broker_rss_before_MiB"] = rss_before / 1024.0;
    state.counters["broker_rss_100tabs_MiB"] = rss_open / 1024.0;
    state.counters["renderers_pss_MiB"] = pss / 1024.0;
  }
}
BENCHMARK(BM_HundredTabs)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

void BM_FirstRendering(benchmark::State& state) {
  const std::string name = kNames[state.range(0)];
  Browser* browser = state.range(1) ? vow::renderer::browser : cold_browser;
  DocType type = *DocTypeForName(name);
  std::string bytes = ReadAll(*dir + "/" + name);
  std::vector<double> tab_ms, inproc_ms, second_ms;
  for (auto _ : state) {
    if (!browser->WaitForSpares(2, absl::Seconds(10))) {
      state.SkipWithError("the pool did not refill");
      break;
    }
    // A spare counts as idle once spawned; give it the time to finish its warm-up.
    absl::SleepFor(absl::Seconds(3));
    absl::Time t0 = absl::Now();
    absl::StatusOr<TabId> tab = browser->OpenTab(name);
    Page p = tab.ok() ? browser->Render(*tab, 0, false) : Page();
    absl::Time t1 = absl::Now();
    bool ok = RenderInProcess(type, bytes);
    absl::Time t2 = absl::Now();
    Page again = tab.ok() ? browser->Render(*tab, 0, false) : Page();
    absl::Time t3 = absl::Now();
    if (tab.ok()) browser->CloseTab(*tab);
    ok = ok && again.kind == p.kind;
    if (!ok || (p.kind != Page::Kind::kHtml && p.kind != Page::Kind::kPng)) {
      state.SkipWithError(absl::StrCat("rendering failed: ", p.message).c_str());
      break;
    }
    tab_ms.push_back(absl::ToDoubleMilliseconds(t1 - t0));
    inproc_ms.push_back(absl::ToDoubleMilliseconds(t2 - t1));
    second_ms.push_back(absl::ToDoubleMilliseconds(t3 - t2));
    state.SetIterationTime(absl::ToDoubleSeconds(t1 - t0));
  }
  if (tab_ms.empty()) return;
  // Medians: the machine is shared, a mean would follow the other engineers' builds.
  state.counters["tab_ms"] = Median(tab_ms);
  state.counters["inproc_ms"] = Median(inproc_ms);
  state.counters["ratio"] = Median(tab_ms) / Median(inproc_ms);
  state.counters["rerender_ms"] = Median(second_ms);
  state.SetLabel(absl::StrCat(name, state.range(1) ? " warm-up" : " no warm-up"));
}
BENCHMARK(BM_FirstRendering)
    ->ArgsProduct({{0, 1, 2}, {1, 0}})
    ->Iterations(8)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vow::renderer

int main(int argc, char** argv) {
  using namespace vow::renderer;
  mallopt(M_ARENA_MAX, 2);  // as vow_view does: renderers inherit this address space
  char tmpl[] = "/tmp/vow_view_bench.XXXXXX";
  dir = new std::string(mkdtemp(tmpl));
  std::ofstream(*dir + "/doc.md") << Markdown();
  std::ofstream(*dir + "/pic.svg") << Svg();
  std::ofstream(*dir + "/doc.pdf", std::ios::binary) << Pdf();
  BrowserOptions options;
  options.dir = *dir;
  options.spares = 2;
  options.memory_bytes = 256u << 20;
  options.max_tabs = 128;
  auto b = Browser::Create(options);
  if (!b.ok()) {
    fprintf(stderr, "renderer_benchmark: %s\n", std::string(b.status().message()).c_str());
    return 1;
  }
  browser = b->get();
  options.warm_up = false;
  auto cold = Browser::Create(options);
  if (!cold.ok()) return 1;
  cold_browser = cold->get();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  b->reset();
  cold->reset();
  for (const char* name : kNames) unlink((*dir + "/" + name).c_str());
  rmdir(dir->c_str());
  return 0;
}
