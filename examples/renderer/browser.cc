#include "examples/renderer/browser.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <kj/encoding.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/syscall.h"
#include "examples/parsers/image.h"
#include "examples/parsers/wire.h"

namespace vow::renderer {
namespace {

namespace wire = ::vow::parsers::wire;

constexpr size_t kMaxEndedRenderers = 256;

// Paths the graphics libraries open by themselves: fontconfig's configuration, cache and
// fonts, poppler's encoding data. Read-only; only those that exist (a rule names an
// existing path).
constexpr const char* kGraphicsReadPaths[] = {
    "/etc/fonts", "/usr/share/fonts", "/usr/share/fontconfig", "/var/cache/fontconfig",
    "/usr/share/poppler", "/usr/local/share/fonts",
};

Policy RendererPolicy(const BrowserOptions& o, bool graphics) {
  Policy policy;  // stdio, penalty kill
  if (graphics) {
    // glib (librsvg, poppler's cairo) starts threads.
    policy.promises = PromiseSet{Promise::kStdio, Promise::kRpath, Promise::kThread};
    for (const char* path : kGraphicsReadPaths) {
      struct stat st;
      if (stat(path, &st) == 0) policy.paths.push_back(PathRule{path, /*read=*/true});
    }
  }
  policy.clock.kind = ClockRule::Kind::kNone;
  policy.limits.memory_bytes = o.memory_bytes;
  policy.limits.cpu_seconds = o.cpu_seconds;
  policy.limits.wall_time = o.wall_time;
  return policy;
}

std::string DescribeEnd(const WorkerResult& result) {
  if (result.kind == WorkerResult::Kind::kSignaled) {
    const char* abbrev = sigabbrev_np(result.signal);
    return absl::StrCat("crashed: SIG", abbrev != nullptr ? abbrev : absl::StrCat(result.signal));
  }
  return result.ToString();
}

bool IsHangUp(const absl::Status& s) {
  if (absl::IsOutOfRange(s) || absl::IsDataLoss(s)) return true;
  int err = ErrnoOf(s);
  return err == EPIPE || err == ECONNRESET;
}

bool PlainName(const std::string& name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

uint64_t RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    uint64_t kb = 0;
    if (absl::StartsWith(line, "VmRSS:")) {
      std::string v = line.substr(6);
      v.erase(std::remove_if(v.begin(), v.end(), [](char c) { return c < '0' || c > '9'; }),
              v.end());
      if (absl::SimpleAtoi(v, &kb)) return kb;
    }
  }
  return 0;
}

// Checks a renderer's answer and turns it into a page. The renderer is hostile: every
// field is bounded, pixels must be exactly width*height*4 bytes.
Page ParseAnswer(absl::string_view answer, DocType type, uint64_t max_pixels, bool* healthy) {
  Page p;
  p.type = type;
  *healthy = false;
  wire::Reader r(answer);
  uint8_t status = 0xff, format = 0;
  r.U8(&status);
  if (status == wire::kRejected) {
    uint8_t code = 0;
    absl::string_view message;
    if (r.U8(&code) && r.Str(&message, 4096) && r.left() == 0) {
      p.kind = Page::Kind::kRejected;
      p.message = std::string(message);
      *healthy = true;
      return p;
    }
  } else if (status == wire::kOk && r.U8(&format)) {
    if (format == kHtml && type == DocType::kMarkdown) {
      absl::string_view html;
      if (r.Str(&html, kMaxDocumentBytes * 8) && r.left() == 0) {
        p.kind = Page::Kind::kHtml;
        p.html = std::string(html);
        *healthy = true;
        return p;
      }
    } else if (format == kRgba && type != DocType::kMarkdown) {
      uint32_t w = 0, h = 0, pages = 0;
      if (r.U32(&w) && r.U32(&h) && r.U32(&pages) && w > 0 && h > 0 && w <= kMaxSide &&
          h <= kMaxSide && static_cast<uint64_t>(w) * h <= max_pixels && pages >= 1 &&
          r.left() == static_cast<uint64_t>(w) * h * 4) {
        absl::StatusOr<std::string> png = parsers::EncodePngRgba(w, h, r.Rest());
        if (png.ok()) {
          p.kind = Page::Kind::kPng;
          p.png = *std::move(png);
          p.width = w, p.height = h, p.pages = pages;
          *healthy = true;
          return p;
        }
      }
    }
  }
  p = Page();
  p.kind = Page::Kind::kCrashed;
  p.message = "the renderer answered garbage (malformed or out of bounds); it was ended";
  return p;
}

const char* kStyle =
    "<style>body{font-family:sans-serif;margin:1em 2em}nav a{margin-right:1em}"
    "#crashed,#refused{border:2px solid #c33;padding:1em;background:#fee}"
    "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
    "img#rendering{border:1px solid #ccc;max-width:100%}</style>";

std::string Head(absl::string_view title) {
  return absl::StrCat("<!doctype html><html><head><meta charset=\"utf-8\"><title>",
                      HtmlEscape(title), "</title>", kStyle,
                      "</head><body><nav><a href=\"/\">files</a><a "
                      "href=\"/about:renderers\">renderers</a></nav>");
}

std::string UrlEscape(absl::string_view name) {
  kj::String s = kj::encodeUriComponent(kj::ArrayPtr<const char>(name.data(), name.size()));
  return std::string(s.cStr());
}

}  // namespace

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Browser>> Browser::Create(BrowserOptions options) {
  std::unique_ptr<Browser> b(new Browser(std::move(options)));
  int fd = open(b->options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", b->options_.dir));
  b->dir_fd_.reset(fd);
  BrokerOptions bo;
  bo.audit_fd = b->options_.audit_fd;
  auto broker = Broker::Create(bo);
  if (!broker.ok()) return broker.status();
  b->broker_ = *std::move(broker);
  bool hooks = b->options_.test_hooks;
  WorkerMain main = [hooks](Client& client) { return RendererMain(client, hooks); };
  for (bool graphics : {false, true}) {
    auto prepared = b->broker_->Prepare(RendererPolicy(b->options_, graphics));
    if (!prepared.ok()) return prepared.status();
    WorkerPool::Options po;
    po.size = std::max<size_t>(1, b->options_.spares);
    po.stderr_fd = b->options_.stderr_fd;
    po.name = graphics ? "renderer-graphics" : "renderer-text";
    const char* pool_name = graphics ? "graphics" : "text";
    Browser* self = b.get();
    po.on_exit = [self, pool_name](WorkerId id, const WorkerResult& r) {
      self->OnExit(pool_name, id, r);
    };
    auto pool = WorkerPool::Create(b->broker_.get(), *prepared, main, po);
    if (!pool.ok()) return pool.status();
    (graphics ? b->graphics_pool_ : b->text_pool_) = *std::move(pool);
  }
  return b;
}

Browser::~Browser() {
  // Hand every lease back, then stop the pools while the state their on_exit callback
  // uses (mu_, renderers_) still exists.
  std::map<std::string, std::shared_ptr<Tab>> tabs;
  {
    absl::MutexLock lock(&mu_);
    tabs.swap(tabs_);
  }
  for (auto& [name, tab] : tabs) {
    std::lock_guard<std::mutex> tab_lock(tab->mu);
    EndRenderer(*tab);
  }
  text_pool_.reset();
  graphics_pool_.reset();
}

std::vector<std::string> Browser::ListDocuments() const {
  std::vector<std::string> names;
  int fd = openat(dir_fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return names;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return names;
  }
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    struct stat st;
    if (!PlainName(name) ||
        fstatat(dir_fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode)) {
      continue;
    }
    names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> Browser::ReadDocument(const std::string& name) const {
  if (!PlainName(name)) return absl::InvalidArgumentError("not a file name of the directory");
  int fd = openat(dir_fd_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", name));
  UniqueFd owner(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, "fstat");
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > options_.max_document_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the document is ", st.st_size, " bytes; the limit is ", options_.max_document_bytes));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read");
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  return bytes;
}

void Browser::OnExit(const char* pool, WorkerId id, const WorkerResult& result) {
  absl::MutexLock lock(&mu_);
  RendererInfo& info = renderers_[id];
  info.id = id;
  if (info.pool.empty()) info.pool = pool;
  info.live = false;
  if (info.state.empty() || info.state == "idle" || info.state == "rendering" ||
      info.state == "spare") {
    info.state = DescribeEnd(result);
  } else if (absl::StartsWith(info.state, "reloaded")) {
    info.state = absl::StrCat("reloaded (", DescribeEnd(result), ")");
  }
  if (info.document.empty()) info.document = "(spare, never used)";
  info.violations = result.violations.size() + result.refusals.size();
  info.refusals.clear();
  for (const Violation& v : result.violations) {
    if (info.refusals.size() < 8) info.refusals.push_back(v.ToString());
  }
  for (const Refusal& r : result.refusals) {
    if (info.refusals.size() < 8) info.refusals.push_back(r.ToString());
  }
  // Keep the last kMaxEndedRenderers ended ones.
  size_t ended = 0;
  for (const auto& [k, v] : renderers_) ended += v.live ? 0 : 1;
  for (auto it = renderers_.begin(); ended > kMaxEndedRenderers && it != renderers_.end();) {
    if (!it->second.live && it->first != id) {
      it = renderers_.erase(it);
      --ended;
    } else {
      ++it;
    }
  }
}

std::string Browser::WaitForEnd(WorkerId id, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ended = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = renderers_.find(id);
    return it != renderers_.end() && !it->second.live;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ended), timeout)) {
    return "the renderer was ended (its report did not arrive in time)";
  }
  const RendererInfo& info = renderers_[id];
  std::string message = info.state;
  for (const std::string& r : info.refusals) {
    if (r != info.state && !absl::StrContains(info.state, r)) absl::StrAppend(&message, "; ", r);
  }
  return message;
}

void Browser::EndRenderer(Tab& tab) {
  if (!tab.lease.has_value()) return;
  tab.pool->Release(*std::move(tab.lease), /*healthy=*/false);
  tab.lease.reset();
}

Page Browser::Open(const std::string& name, uint32_t page_index, bool reload,
                   std::optional<TestAct> test) {
  Page page;
  absl::StatusOr<std::string> bytes = ReadDocument(name);
  absl::StatusOr<DocType> type = DocTypeForName(name);
  if (!bytes.ok() || !type.ok()) {
    page.kind = Page::Kind::kError;
    page.message = std::string(!bytes.ok() ? bytes.status().message() : type.status().message());
    return page;
  }
  page.type = *type;
  std::shared_ptr<Tab> tab;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<Tab>& slot = tabs_[name];
    if (slot == nullptr) slot = std::make_shared<Tab>();
    tab = slot;
  }
  std::lock_guard<std::mutex> tab_lock(tab->mu);
  if (tab->lease.has_value() && (reload || broker_->pid(tab->lease->id()) <= 0)) {
    if (reload && broker_->pid(tab->lease->id()) > 0) {
      absl::MutexLock lock(&mu_);
      renderers_[tab->lease->id()].state = "reloaded";
    }
    EndRenderer(*tab);
  }
  if (!tab->lease.has_value()) {
    WorkerPool* pool = (*type == DocType::kSvg || *type == DocType::kPdf) ? graphics_pool_.get()
                                                                          : text_pool_.get();
    // A spare may have reached its wall time while idle: skip the ones that ended.
    for (int attempt = 0; attempt < 4 && !tab->lease.has_value(); ++attempt) {
      absl::StatusOr<WorkerPool::Lease> lease = pool->Acquire(absl::Seconds(10));
      if (!lease.ok()) {
        page.kind = Page::Kind::kError;
        page.message = absl::StrCat("no renderer available: ", lease.status().message());
        return page;
      }
      if (broker_->pid(lease->id()) <= 0) {
        pool->Release(*std::move(lease), /*healthy=*/false);
        continue;
      }
      tab->lease = *std::move(lease);
      tab->pool = pool;
    }
    if (!tab->lease.has_value()) {
      page.kind = Page::Kind::kError;
      page.message = "no live renderer available";
      return page;
    }
    absl::MutexLock lock(&mu_);
    RendererInfo& info = renderers_[tab->lease->id()];
    info.id = tab->lease->id();
    info.pid = broker_->pid(info.id);
    info.document = name;
    info.pool = tab->pool == graphics_pool_.get() ? "graphics" : "text";
  }
  WorkerId id = tab->lease->id();
  page.renderer = id;
  page.pid = broker_->pid(id);
  {
    absl::MutexLock lock(&mu_);
    RendererInfo& info = renderers_[id];
    info.state = "rendering";
    ++info.requests;
  }
  wire::Writer job;
  if (test.has_value()) {
    job.U8(kTest);
    job.U8(static_cast<uint8_t>(*test));
  } else {
    job.U8(kRender);
    job.U8(static_cast<uint8_t>(*type));
    job.U32(page_index);
    job.U64(options_.max_pixels);
    job.Raw(*bytes);
  }
  // The renderer's own wall-time limit ends a hang; this deadline only guards against a
  // broker that failed to.
  absl::Time deadline = absl::Now() + options_.wall_time + absl::Seconds(5);
  std::string answer;
  absl::Status s = wire::SendFrame(tab->lease->fd(), job.out(), deadline);
  size_t max_answer = options_.max_pixels * 4 + (1 << 20);
  if (*type == DocType::kMarkdown) max_answer = kMaxDocumentBytes * 8 + 64;
  if (s.ok()) s = wire::RecvFrame(tab->lease->fd(), max_answer, deadline, &answer);
  if (s.ok()) {
    bool healthy = false;
    Page result = ParseAnswer(answer, *type, options_.max_pixels, &healthy);
    result.renderer = id;
    result.pid = page.pid;
    if (healthy) {
      // One rendering per renderer: it is ended now, so that no renderer ever holds two
      // documents or outlives its view; the pool has already a warm spare for the next.
      {
        absl::MutexLock lock(&mu_);
        renderers_[id].state = result.kind == Page::Kind::kRejected ? "done (refused the document)"
                                                                    : "done (rendered)";
      }
      EndRenderer(*tab);
      return result;
    }
    {
      absl::MutexLock lock(&mu_);
      renderers_[id].state = "ended: answered garbage";
    }
    EndRenderer(*tab);
    return result;
  }
  if (IsHangUp(s)) {
    // Let the broker reap it first, so that its report says how it died.
    absl::Time until = absl::Now() + absl::Seconds(2);
    while (broker_->pid(id) > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(2));
  }
  EndRenderer(*tab);
  std::string end = WaitForEnd(id, absl::Seconds(5));
  page.kind = Page::Kind::kCrashed;
  page.message = IsHangUp(s) ? end : absl::StrCat("renderer failed (", s.message(), "); ", end);
  return page;
}

std::vector<RendererInfo> Browser::Renderers() {
  std::vector<RendererInfo> out;
  absl::MutexLock lock(&mu_);
  for (auto& [id, info] : renderers_) {
    if (info.live) {
      pid_t pid = broker_->pid(id);
      if (pid <= 0 && info.state == "idle") info.state = "ended while idle (reported on next use)";
      info.rss_kb = pid > 0 ? RssKb(pid) : 0;
    } else {
      info.rss_kb = 0;
    }
    out.push_back(info);
  }
  return out;
}

std::string Browser::FileListHtml() const {
  std::string html = absl::StrCat(Head("vow_view"), "<h1>Documents</h1><ul id=\"files\">");
  for (const std::string& name : ListDocuments()) {
    absl::StatusOr<DocType> type = DocTypeForName(name);
    absl::StrAppend(&html, "<li><a target=\"_blank\" href=\"/view/", HtmlEscape(UrlEscape(name)),
                    "\">", HtmlEscape(name), "</a> <small>",
                    type.ok() ? DocTypeName(*type) : "no renderer", "</small></li>");
  }
  return html + "</ul></body></html>";
}

std::string Browser::TabHtml(const std::string& name, uint32_t page_index, const Page& p) const {
  std::string html = absl::StrCat(Head(absl::StrCat(name, " - vow_view")), "<h1 id=\"title\">",
                                  HtmlEscape(name), "</h1>");
  std::string url = absl::StrCat("/view/", HtmlEscape(UrlEscape(name)));
  if (p.pid > 0) {
    absl::StrAppend(&html, "<p id=\"renderer\"><small>renderer pid ", p.pid, " (",
                    DocTypeName(p.type), ")</small></p>");
  }
  switch (p.kind) {
    case Page::Kind::kHtml:
      absl::StrAppend(&html, "<article id=\"document\">", p.html, "</article>");
      break;
    case Page::Kind::kPng: {
      kj::String b64 = kj::encodeBase64(
          kj::ArrayPtr<const kj::byte>(reinterpret_cast<const kj::byte*>(p.png.data()), p.png.size()));
      absl::StrAppend(&html, "<img id=\"rendering\" alt=\"", HtmlEscape(name), "\" width=\"",
                      p.width, "\" height=\"", p.height, "\" src=\"data:image/png;base64,",
                      b64.cStr(), "\">");
      if (p.pages > 1) {
        absl::StrAppend(&html, "<p id=\"pages\">page ", page_index + 1, " of ", p.pages);
        if (page_index > 0) {
          absl::StrAppend(&html, " <a href=\"", url, "?page=", page_index, "\">previous</a>");
        }
        if (page_index + 1 < p.pages) {
          absl::StrAppend(&html, " <a href=\"", url, "?page=", page_index + 2, "\">next</a>");
        }
        html += "</p>";
      }
      break;
    }
    case Page::Kind::kRejected:
      absl::StrAppend(&html,
                      "<div id=\"refused\"><h2>This document could not be rendered</h2>"
                      "<p id=\"reason\">",
                      HtmlEscape(p.message), "</p></div>");
      break;
    case Page::Kind::kCrashed:
      absl::StrAppend(&html,
                      "<div id=\"crashed\"><h2>This document crashed</h2><p>Its renderer "
                      "ended: <span id=\"reason\">",
                      HtmlEscape(p.message), "</span></p><p><a id=\"reload\" href=\"", url,
                      "?reload=1\">Reload</a> (starts a fresh renderer)</p></div>");
      break;
    case Page::Kind::kError:
      absl::StrAppend(&html, "<div id=\"refused\"><h2>Cannot open this document</h2><p id=\"reason\">",
                      HtmlEscape(p.message), "</p></div>");
      break;
  }
  return html + "</body></html>";
}

std::string Browser::AboutHtml() {
  std::string html = absl::StrCat(
      Head("renderers - vow_view"),
      "<h1>Renderers</h1><table id=\"renderers\"><tr><th>id</th><th>pid</th><th>document</th>"
      "<th>pool</th><th>state</th><th>memory (KiB)</th><th>requests</th><th>violations</th>"
      "</tr>");
  for (const RendererInfo& r : Renderers()) {
    std::string refusals;
    for (const std::string& v : r.refusals) absl::StrAppend(&refusals, "<br><small>", HtmlEscape(v), "</small>");
    absl::StrAppend(&html, "<tr class=\"", r.live ? "live" : "ended", "\"><td>", r.id,
                    "</td><td>", r.pid > 0 ? absl::StrCat(r.pid) : "-", "</td><td>",
                    HtmlEscape(r.document), "</td><td>", r.pool, "</td><td>",
                    HtmlEscape(r.state), "</td><td>", r.live ? absl::StrCat(r.rss_kb) : "-",
                    "</td><td>", r.requests, "</td><td>", r.violations, refusals, "</td></tr>");
  }
  absl::StrAppend(&html, "</table><p>live workers: ", broker_->live_workers(),
                  " (including warm spares)</p></body></html>");
  return html;
}

}  // namespace vow::renderer
