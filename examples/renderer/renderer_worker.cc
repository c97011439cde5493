#include "examples/renderer/renderer_worker.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "examples/parsers/wire.h"
#include "examples/renderer/render.h"

namespace vow::renderer {
namespace {

namespace wire = ::vow::parsers::wire;

std::string Rejected(const absl::Status& status) {
  wire::Writer w;
  w.U8(wire::kRejected);
  w.U8(absl::IsResourceExhausted(status) ? wire::kLimit : wire::kInvalid);
  w.Str(status.message().substr(0, 4096));
  return std::move(w.out());
}

[[noreturn]] void DoTestAct(TestAct act) {
  switch (act) {
    case TestAct::kSegv: {
      volatile int* p = nullptr;
      *p = 1;
      break;
    }
    case TestAct::kOpen:
      if (open("/etc/passwd", O_RDONLY) < 0) abort();
      break;
    case TestAct::kSocket:
      (void)!socket(AF_INET, SOCK_STREAM, 0);
      break;
    case TestAct::kHang:
      for (;;) pause();
    case TestAct::kMemory: {
      std::vector<void*> blocks;
      for (;;) {
        void* b = malloc(16 << 20);
        if (b == nullptr) abort();
        memset(b, 1, 16 << 20);
        blocks.push_back(b);
      }
    }
    case TestAct::kSpin: {
      volatile uint64_t x = 0;
      for (;;) x = x + 1;
    }
  }
  _exit(3);
}

}  // namespace

int RendererMain(Client&, bool test_hooks, std::optional<DocType> warm_up) {
  // glibc gives each thread that meets contention an arena of its own, reserving 64 MiB of
  // address space each: with glib's threads (pango's font sorting, ...) a few of those
  // would exhaust a small RLIMIT_AS, and pthread_create fails (GLib-ERROR: "Error creating
  // thread", SIGTRAP) at random. Two arenas keep the limit a limit on memory actually used.
  mallopt(M_ARENA_MAX, 2);
  if (warm_up.has_value()) {
    // Our own constant documents; the result is not used (a failure shows on a real job).
    static constexpr char kWarmSvg[] =
        R"(<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">)"
        R"(<text x="0" y="8" font-family="sans-serif" font-size="8">a</text></svg>)";
    (void)Render(*warm_up, *warm_up == DocType::kMarkdown ? "# a\n\n*b*\n" : kWarmSvg, 0,
                 kDefaultMaxPixels);
  }
  for (;;) {
    std::string job;
    bool eof = false;
    if (!wire::ReadFrameBlocking(0, kMaxDocumentBytes + 64, &job, &eof)) return eof ? 0 : 1;
    wire::Reader r(job);
    uint8_t kind = 0;
    r.U8(&kind);
    if (kind == kTest) {
      uint8_t act = 0;
      if (!test_hooks || !r.U8(&act)) return 2;
      DoTestAct(static_cast<TestAct>(act));
    }
    uint8_t type = 0;
    uint32_t page = 0;
    uint64_t max_pixels = 0;
    if (kind != kRender || !r.U8(&type) || !r.U32(&page) || !r.U64(&max_pixels) || type < 1 ||
        type > 4) {
      return 2;
    }
    absl::StatusOr<Rendering> rendering =
        Render(static_cast<DocType>(type), r.Rest(), page, max_pixels);
    std::string answer;
    if (!rendering.ok()) {
      answer = Rejected(rendering.status());
    } else {
      wire::Writer w;
      w.U8(wire::kOk);
      if (static_cast<DocType>(type) == DocType::kMarkdown) {
        w.U8(kHtml);
        w.Str(rendering->html);
      } else {
        w.U8(kRgba);
        w.U32(rendering->width);
        w.U32(rendering->height);
        w.U32(rendering->pages);
        w.Raw(rendering->rgba);
      }
      answer = std::move(w.out());
    }
    if (!wire::WriteFrameBlocking(1, answer)) return 1;
  }
}

}  // namespace vow::renderer
