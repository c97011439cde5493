// The renderer app's "browser": the privileged process that owns the files, the renderer
// workers and the pages shown to the user. Runs in the broker's process; every byte a
// renderer returns is hostile and is checked here before it reaches a page (HTML comes
// only from cmark's safe mode inside the renderer AND is served under a CSP without
// scripts; pixels are re-encoded to PNG here, so the user's browser never decodes bytes a
// renderer chose).
//
// One renderer per document view ("tab"), taken from a pool of spares that are already
// forked and locked to `stdio` (WorkerPool); it renders that one document and is ended,
// so no renderer ever sees two documents, and the pool refills its spares. Two pools, two policies: "text" (Markdown,
// raster images: `stdio`, no path at all) and "graphics" (SVG, PDF: `stdio rpath` with
// read rules for fontconfig's configuration, the fonts and poppler's data only). A
// renderer's wall-time limit counts from its spawn (so it includes its time as a
// spare; a spare that expired idle is skipped). Renderers never see a path of the user's files: the
// browser reads the document and sends its bytes.
//
// Thread-safe.
#ifndef VOW_EXAMPLES_RENDERER_BROWSER_H_
#define VOW_EXAMPLES_RENDERER_BROWSER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "broker/broker.h"
#include "broker/worker_pool.h"
#include "examples/renderer/render.h"
#include "examples/renderer/renderer_worker.h"

namespace vow::renderer {

struct BrowserOptions {
  std::string dir;                                 // the documents
  size_t spares = 2;                               // warm renderers per pool
  absl::Duration wall_time = absl::Seconds(30);    // a renderer's life, from spawn
  uint64_t memory_bytes = 1ull << 30;              // RLIMIT_AS per renderer
  uint32_t cpu_seconds = 10;                       // RLIMIT_CPU per renderer
  uint64_t max_pixels = kDefaultMaxPixels;
  uint64_t max_document_bytes = 32u << 20;
  bool test_hooks = false;  // tests only: TestAct jobs are honoured (?test=...)
  int audit_fd = -1;        // the broker's audit log; -1: in memory
  int stderr_fd = -1;       // the renderers' fd 2; -1: /dev/null
};

// What a tab shows.
struct Page {
  enum class Kind {
    kHtml,      // `html`: a sanitized fragment rendered by cmark in the renderer
    kPng,       // `png`: encoded here from the renderer's pixels
    kRejected,  // the library refused the document or a limit was hit: `message`
    kCrashed,   // the renderer died: `message` says how (signal, violation, wall time)
    kError,     // the browser could not even start: no such file, unknown type, ...
  };
  Kind kind = Kind::kError;
  std::string html;
  std::string png;
  uint32_t width = 0, height = 0, pages = 1;
  std::string message;
  DocType type = DocType::kMarkdown;
  WorkerId renderer = 0;
  pid_t pid = -1;
};

struct RendererInfo {
  WorkerId id = 0;
  pid_t pid = -1;
  std::string document;
  std::string pool;   // "text" or "graphics"
  std::string state;  // "rendering", "idle", or how it ended
  bool live = true;
  uint64_t requests = 0;
  size_t violations = 0;  // refused syscalls and refused path calls (known once ended)
  std::vector<std::string> refusals;  // their descriptions (at most 8)
  uint64_t rss_kb = 0;    // VmRSS while live
};

class Browser {
 public:
  static absl::StatusOr<std::unique_ptr<Browser>> Create(BrowserOptions options);
  ~Browser();

  // Regular files directly in the directory, sorted; names only.
  std::vector<std::string> ListDocuments() const;
  // Renders page `page` (0-based; PDF) of document `name` in its renderer. `reload`: end
  // the document's renderer first and start a fresh one. `test`: test hooks only.
  Page Open(const std::string& name, uint32_t page, bool reload,
            std::optional<TestAct> test = std::nullopt);
  // Every renderer this browser started (the ended ones: the last 256), oldest first.
  std::vector<RendererInfo> Renderers();

  // The HTML pages of the UI.
  std::string FileListHtml() const;
  std::string TabHtml(const std::string& name, uint32_t page, const Page& p) const;
  std::string AboutHtml();

  Broker& broker() { return *broker_; }

 private:
  struct Tab {
    std::mutex mu;  // one request at a time per document
    std::optional<WorkerPool::Lease> lease;
    WorkerPool* pool = nullptr;
  };
  explicit Browser(BrowserOptions options) : options_(std::move(options)) {}
  absl::StatusOr<std::string> ReadDocument(const std::string& name) const;
  void EndRenderer(Tab& tab);  // releases the tab's renderer as unhealthy (killed)
  void OnExit(const char* pool, WorkerId id, const WorkerResult& result);
  std::string WaitForEnd(WorkerId id, absl::Duration timeout);

  BrowserOptions options_;
  UniqueFd dir_fd_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<WorkerPool> text_pool_;
  std::unique_ptr<WorkerPool> graphics_pool_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Tab>> tabs_ ABSL_GUARDED_BY(mu_);
  std::map<WorkerId, RendererInfo> renderers_ ABSL_GUARDED_BY(mu_);
};

// HTML-escapes text (& < > " ').
std::string HtmlEscape(absl::string_view text);

}  // namespace vow::renderer

#endif  // VOW_EXAMPLES_RENDERER_BROWSER_H_
