// The renderer app's "browser": the privileged process that owns the files, the renderer
// workers and the pages shown to the user. Runs in the broker's process; every byte a
// renderer returns is hostile and is checked here before it reaches a page (HTML comes
// only from cmark's safe mode inside the renderer AND is served under a CSP without
// scripts; pixels are re-encoded to PNG here, so the user's browser never decodes bytes a
// renderer chose).
//
// A tab owns its renderer, like a Chromium tab its renderer process. OpenTab(name) makes a
// tab for one document and leases it a renderer from a pool of spares that are already
// forked and locked to `stdio` (WorkerPool, refilled in the background); every Render() in
// that tab (a page, a re-render, a reload) goes to that same renderer, until it dies or
// the tab is closed. A renderer only ever sees the one document of its tab. When it dies
// (crash, violation, limit, or it stops answering within `render_timeout`) the tab shows
// the crash page with the reason until a reload, which leases a fresh renderer. Closing a
// tab ends its renderer. Two pools, two policies: "text" (Markdown, raster images:
// `stdio`, no path at all) and "graphics" (SVG, PDF: `stdio rpath` with read rules for
// fontconfig's configuration, the fonts and poppler's data only). A renderer's
// `wall_time` counts from its spawn and bounds its whole life (a spare that expired idle
// is skipped). Renderers never see a path of the user's files: the browser reads the
// document and sends its bytes.
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
  absl::Duration wall_time = absl::Minutes(30);    // a renderer's whole life, from spawn
  absl::Duration render_timeout = absl::Seconds(30);  // one rendering; then it is killed
  size_t max_tabs = 128;                           // open tabs (renderers held) at most
  uint64_t memory_bytes = 1ull << 30;              // RLIMIT_AS per renderer
  uint32_t cpu_seconds = 10;                       // RLIMIT_CPU per renderer
  uint64_t max_pixels = kDefaultMaxPixels;
  uint64_t max_document_bytes = 32u << 20;
  bool warm_up = true;  // spares initialize their libraries before their first document
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
  // PDF: the active content the broker saw in the file (PdfActiveContent), said on the
  // page; never run.
  std::string notice;
  DocType type = DocType::kMarkdown;
  WorkerId renderer = 0;
  pid_t pid = -1;
  uint64_t tab = 0;
};

using TabId = uint64_t;

struct TabInfo {
  TabId id = 0;
  std::string document;
  WorkerId renderer = 0;  // 0: none (crashed, not yet reloaded)
  pid_t pid = -1;
  bool crashed = false;
};

struct RendererInfo {
  WorkerId id = 0;
  TabId tab = 0;      // the tab it was leased to
  pid_t pid = -1;
  std::string document;
  std::string pool;   // "text" or "graphics"
  std::string state;  // "rendering", "idle", or how it ended ("tab closed", a crash, ...)
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
  // Opens a tab for document `name` and leases it a warm renderer (nothing is rendered
  // yet). Fails for a name that is not a readable document of the directory with a type
  // we render, when `max_tabs` tabs are open, or when no renderer can be had.
  absl::StatusOr<TabId> OpenTab(const std::string& name);
  // Renders page `page` (0-based; PDF) of the tab's document in the tab's renderer (the
  // document is read again). A tab whose renderer died shows the crash page again unless
  // `reload`, which leases a fresh renderer; `reload` on a live tab keeps its renderer.
  // `test`: test hooks only. An unknown tab gives a kError page.
  Page Render(TabId tab, uint32_t page, bool reload, std::optional<TestAct> test = std::nullopt);
  // Ends the tab's renderer and forgets the tab. False if there was no such tab.
  bool CloseTab(TabId tab);
  // The open tabs, by id.
  std::vector<TabInfo> Tabs();
  // Waits until both pools have at least `n` warm spares (benchmarks, tests).
  bool WaitForSpares(size_t n, absl::Duration timeout);
  // Every renderer leased to a tab (the ended ones: the last 256) and every spare that
  // ended unused, oldest first.
  std::vector<RendererInfo> Renderers();

  // The HTML pages of the UI.
  std::string FileListHtml() const;
  std::string TabHtml(TabId tab, const std::string& name, uint32_t page, const Page& p) const;
  std::string AboutHtml();

  Broker& broker() { return *broker_; }

 private:
  struct Tab {
    TabId id = 0;
    std::string document;
    DocType type = DocType::kMarkdown;
    WorkerPool* pool = nullptr;
    std::mutex mu;  // one request at a time per tab; guards the fields below
    std::optional<WorkerPool::Lease> lease;  // empty: crashed (or closed)
    std::string crash;                       // why its renderer died, until a reload
  };
  explicit Browser(BrowserOptions options) : options_(std::move(options)) {}
  absl::StatusOr<std::string> ReadDocument(const std::string& name) const;
  void EndRenderer(Tab& tab);  // releases the tab's renderer as unhealthy (killed)
  // Leases a live renderer from the tab's pool to the tab; an error message otherwise.
  absl::Status LeaseRenderer(Tab& tab);
  void OnExit(const char* pool, WorkerId id, const WorkerResult& result);
  std::string WaitForEnd(WorkerId id, absl::Duration timeout);

  BrowserOptions options_;
  UniqueFd dir_fd_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<WorkerPool> text_pool_;
  std::unique_ptr<WorkerPool> graphics_pool_;
  absl::Mutex mu_;
  std::map<TabId, std::shared_ptr<Tab>> tabs_ ABSL_GUARDED_BY(mu_);
  TabId next_tab_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<WorkerId, RendererInfo> renderers_ ABSL_GUARDED_BY(mu_);
};

// HTML-escapes text (& < > " ').
std::string HtmlEscape(absl::string_view text);

// The PDF names of active content (/JavaScript, /JS, /Launch, /SubmitForm, /ImportData,
// /GoToR, /URI) that appear in `pdf`'s bytes, in that order, each once. A byte scan of the
// file as it is (the broker does not parse worker-bound documents): what sits in
// compressed object streams is not seen. Nothing in vow_view runs any of them.
std::vector<std::string> PdfActiveContent(absl::string_view pdf);

// The outside resources an SVG names, by scheme ("file:", "http:", "https:", "ftp:", and
// "external entity" for a DOCTYPE's SYSTEM or PUBLIC identifier), in that order, each once:
// the values of href attributes (href, xlink:href, xi:include's href) and of CSS url(...).
// A byte scan (namespace declarations are not references); never loaded.
std::vector<std::string> SvgOutsideReferences(absl::string_view svg);

}  // namespace vow::renderer

#endif  // VOW_EXAMPLES_RENDERER_BROWSER_H_
