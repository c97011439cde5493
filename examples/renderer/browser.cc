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
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
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
    "#notice{border:1px solid #c90;padding:.5em;background:#ffd}"
    "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
    "img#rendering{border:1px solid #ccc;max-width:100%}form{display:inline}</style>";

size_t CountSubstr(absl::string_view text, absl::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != absl::string_view::npos;
       at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

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

std::vector<std::string> PdfActiveContent(absl::string_view pdf) {
  static constexpr absl::string_view kNames[] = {"/JavaScript", "/JS",        "/Launch",
                                                 "/SubmitForm", "/ImportData", "/GoToR",
                                                 "/URI"};
  // A PDF name ends at white space or a delimiter (ISO 32000-1, 7.2.2).
  auto ends_name = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\0' ||
           c == '(' || c == ')' || c == '<' || c == '>' || c == '[' || c == ']' || c == '{' ||
           c == '}' || c == '/' || c == '%';
  };
  std::vector<std::string> found;
  for (absl::string_view name : kNames) {
    for (size_t at = pdf.find(name); at != absl::string_view::npos;
         at = pdf.find(name, at + 1)) {
      const size_t end = at + name.size();
      if (end == pdf.size() || ends_name(pdf[end])) {
        found.emplace_back(name);
        break;
      }
    }
  }
  return found;
}

std::vector<std::string> SvgOutsideReferences(absl::string_view svg) {
  static constexpr absl::string_view kSchemes[] = {"file:", "http:", "https:", "ftp:"};
  bool seen[std::size(kSchemes)] = {};
  auto note = [&](absl::string_view value) {
    value = absl::StripLeadingAsciiWhitespace(value);
    for (size_t i = 0; i < std::size(kSchemes); ++i) {
      if (absl::StartsWithIgnoreCase(value, kSchemes[i])) seen[i] = true;
    }
  };
  // href="..." / href='...' (any prefix: xlink:href, xi:include's href).
  for (size_t at = svg.find("href"); at != absl::string_view::npos;
       at = svg.find("href", at + 4)) {
    size_t i = at + 4;
    while (i < svg.size() && absl::ascii_isspace(static_cast<unsigned char>(svg[i]))) ++i;
    if (i >= svg.size() || svg[i] != '=') continue;
    ++i;
    while (i < svg.size() && absl::ascii_isspace(static_cast<unsigned char>(svg[i]))) ++i;
    if (i >= svg.size() || (svg[i] != '"' && svg[i] != '\'')) continue;
    const size_t end = svg.find(svg[i], i + 1);
    note(svg.substr(i + 1, end == absl::string_view::npos ? absl::string_view::npos
                                                           : end - i - 1));
  }
  // CSS url(...), quoted or not.
  for (size_t at = svg.find("url("); at != absl::string_view::npos;
       at = svg.find("url(", at + 4)) {
    absl::string_view rest = svg.substr(at + 4);
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (!rest.empty() && (rest[0] == '"' || rest[0] == '\'')) rest.remove_prefix(1);
    note(rest.substr(0, std::min<size_t>(rest.size(), 16)));
  }
  std::vector<std::string> found;
  for (size_t i = 0; i < std::size(kSchemes); ++i) {
    if (seen[i]) found.emplace_back(kSchemes[i]);
  }
  if (svg.find("SYSTEM") != absl::string_view::npos &&
      svg.find("<!ENTITY") != absl::string_view::npos) {
    found.emplace_back("external entity");
  }
  return found;
}

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
  for (bool graphics : {false, true}) {
    std::optional<DocType> warm_up;
    if (b->options_.warm_up) warm_up = graphics ? DocType::kSvg : DocType::kMarkdown;
    WorkerMain main = [hooks, warm_up](Client& client) {
      return RendererMain(client, hooks, warm_up);
    };
    auto prepared = b->broker_->Prepare(RendererPolicy(b->options_, graphics));
    if (!prepared.ok()) return prepared.status();
    WorkerPool::Options po;
    po.size = std::max<size_t>(1, b->options_.spares);
    // Tabs hold their renderers: the spares are kept warm beside them.
    po.size_counts_idle = true;
    po.max_live = po.size + b->options_.max_tabs;
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
  std::map<TabId, std::shared_ptr<Tab>> tabs;
  {
    absl::MutexLock lock(&mu_);
    tabs.swap(tabs_);
  }
  for (auto& [id, tab] : tabs) {
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

absl::Status Browser::LeaseRenderer(Tab& tab) {
  // A spare may have reached its wall time while idle: skip the ones that ended.
  for (int attempt = 0; attempt < 4; ++attempt) {
    absl::StatusOr<WorkerPool::Lease> lease = tab.pool->Acquire(absl::Seconds(10));
    if (!lease.ok()) {
      return absl::UnavailableError(
          absl::StrCat("no renderer available: ", lease.status().message()));
    }
    pid_t pid = broker_->pid(lease->id());
    if (pid <= 0) {
      tab.pool->Release(*std::move(lease), /*healthy=*/false);
      continue;
    }
    tab.lease = *std::move(lease);
    tab.crash.clear();
    absl::MutexLock lock(&mu_);
    RendererInfo& info = renderers_[tab.lease->id()];
    info.id = tab.lease->id();
    info.tab = tab.id;
    info.pid = pid;
    info.document = tab.document;
    info.pool = tab.pool == graphics_pool_.get() ? "graphics" : "text";
    info.state = "idle";
    return absl::OkStatus();
  }
  return absl::UnavailableError("no live renderer available");
}

absl::StatusOr<TabId> Browser::OpenTab(const std::string& name) {
  absl::StatusOr<std::string> bytes = ReadDocument(name);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<DocType> type = DocTypeForName(name);
  if (!type.ok()) return type.status();
  auto tab = std::make_shared<Tab>();
  tab->document = name;
  tab->type = *type;
  tab->pool = (*type == DocType::kSvg || *type == DocType::kPdf) ? graphics_pool_.get()
                                                                 : text_pool_.get();
  {
    absl::MutexLock lock(&mu_);
    if (tabs_.size() >= options_.max_tabs) {
      return absl::ResourceExhaustedError(
          absl::StrCat(tabs_.size(), " tabs are open, the limit is ", options_.max_tabs,
                       "; close one first"));
    }
    tab->id = next_tab_++;
    tabs_[tab->id] = tab;  // counts against max_tabs while its renderer is leased
  }
  std::lock_guard<std::mutex> tab_lock(tab->mu);
  absl::Status leased = LeaseRenderer(*tab);
  if (!leased.ok()) {
    absl::MutexLock lock(&mu_);
    tabs_.erase(tab->id);
    return leased;
  }
  return tab->id;
}

bool Browser::CloseTab(TabId id) {
  std::shared_ptr<Tab> tab;
  {
    absl::MutexLock lock(&mu_);
    auto it = tabs_.find(id);
    if (it == tabs_.end()) return false;
    tab = it->second;
    tabs_.erase(it);
  }
  std::lock_guard<std::mutex> tab_lock(tab->mu);  // after a rendering in flight
  if (tab->lease.has_value()) {
    absl::MutexLock lock(&mu_);
    renderers_[tab->lease->id()].state = "ended: tab closed";
  }
  EndRenderer(*tab);
  return true;
}

std::vector<TabInfo> Browser::Tabs() {
  std::vector<std::shared_ptr<Tab>> tabs;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, tab] : tabs_) tabs.push_back(tab);
  }
  std::vector<TabInfo> out;
  for (auto& tab : tabs) {
    TabInfo info;
    info.id = tab->id;
    info.document = tab->document;
    std::unique_lock<std::mutex> tab_lock(tab->mu, std::try_to_lock);
    if (tab_lock.owns_lock()) {
      info.crashed = !tab->crash.empty();
      if (tab->lease.has_value()) info.renderer = tab->lease->id();
    } else {
      absl::MutexLock lock(&mu_);  // rendering: the renderers table knows it
      for (const auto& [rid, r] : renderers_) {
        if (r.tab == tab->id && r.live) info.renderer = rid;
      }
    }
    info.pid = info.renderer != 0 ? broker_->pid(info.renderer) : -1;
    out.push_back(info);
  }
  return out;
}

bool Browser::WaitForSpares(size_t n, absl::Duration timeout) {
  absl::Time until = absl::Now() + timeout;
  while (text_pool_->idle() < n || graphics_pool_->idle() < n) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

Page Browser::Render(TabId tab_id, uint32_t page_index, bool reload,
                     std::optional<TestAct> test) {
  Page page;
  page.tab = tab_id;
  std::shared_ptr<Tab> tab;
  {
    absl::MutexLock lock(&mu_);
    auto it = tabs_.find(tab_id);
    if (it != tabs_.end()) tab = it->second;
  }
  if (tab == nullptr) {
    page.kind = Page::Kind::kError;
    page.message = absl::StrCat("there is no tab ", tab_id, " (closed, or never opened)");
    return page;
  }
  page.type = tab->type;
  std::lock_guard<std::mutex> tab_lock(tab->mu);
  if (tab->lease.has_value() && broker_->pid(tab->lease->id()) <= 0) {
    // It died between two requests (a limit while idle, or killed from outside).
    WorkerId id = tab->lease->id();
    EndRenderer(*tab);
    tab->crash = WaitForEnd(id, absl::Seconds(5));
  }
  if (!tab->lease.has_value()) {
    if (!reload) {
      page.kind = Page::Kind::kCrashed;
      page.message = tab->crash.empty() ? "the renderer ended" : tab->crash;
      return page;
    }
    absl::Status leased = LeaseRenderer(*tab);
    if (!leased.ok()) {
      page.kind = Page::Kind::kError;
      page.message = std::string(leased.message());
      return page;
    }
  }
  absl::StatusOr<std::string> bytes = ReadDocument(tab->document);
  if (!bytes.ok()) {
    page.kind = Page::Kind::kError;
    page.message = std::string(bytes.status().message());
    return page;
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
    job.U8(static_cast<uint8_t>(tab->type));
    job.U32(page_index);
    job.U64(options_.max_pixels);
    job.Raw(*bytes);
  }
  absl::Time deadline = absl::Now() + options_.render_timeout;
  std::string answer;
  absl::Status s = wire::SendFrame(tab->lease->fd(), job.out(), deadline);
  size_t max_answer = options_.max_pixels * 4 + (1 << 20);
  if (tab->type == DocType::kMarkdown) max_answer = kMaxDocumentBytes * 8 + 64;
  if (s.ok()) s = wire::RecvFrame(tab->lease->fd(), max_answer, deadline, &answer);
  if (s.ok()) {
    bool healthy = false;
    Page result = ParseAnswer(answer, tab->type, options_.max_pixels, &healthy);
    if (tab->type == DocType::kSvg && healthy) {
      std::vector<std::string> outside = SvgOutsideReferences(*bytes);
      if (!outside.empty()) {
        result.notice = absl::StrCat(
            "This SVG refers to outside resources (", absl::StrJoin(outside, ", "),
            "). None was loaded: its renderer may read only fonts and their configuration "
            "and has no network; what is drawn is the document without them.");
      }
    }
    if (tab->type == DocType::kMarkdown && healthy) {
      const size_t removed = CountSubstr(result.html, "<!-- raw HTML omitted -->");
      if (removed != 0) {
        result.notice = absl::StrCat(
            "Raw HTML was removed from this document ", removed,
            removed == 1 ? " time" : " times",
            " (it could carry scripts or event handlers); links to javascript:, vbscript:, "
            "file: and data: other than images are emptied.");
      }
    }
    if (tab->type == DocType::kPdf && healthy) {
      std::vector<std::string> active = PdfActiveContent(*bytes);
      if (!active.empty()) {
        result.notice = absl::StrCat(
            "This PDF contains active content (", absl::StrJoin(active, ", "),
            "). vow_view never runs it: the renderer only draws the page, locked to stdio "
            "(no files, no network, no programs). What is hidden in compressed object "
            "streams is not listed here, and is not run either.");
      }
    }
    result.renderer = id;
    result.pid = page.pid;
    result.tab = tab_id;
    {
      absl::MutexLock lock(&mu_);
      // A healthy renderer stays with its tab for the next request.
      renderers_[id].state = healthy ? "idle" : "ended: answered garbage";
    }
    if (!healthy) {
      tab->crash = result.message;
      EndRenderer(*tab);
    }
    return result;
  }
  bool hang_up = IsHangUp(s);
  if (hang_up) {
    // Let the broker reap it first, so that its report says how it died.
    absl::Time until = absl::Now() + absl::Seconds(2);
    while (broker_->pid(id) > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(2));
  } else if (absl::IsDeadlineExceeded(s) && broker_->pid(id) > 0) {
    absl::MutexLock lock(&mu_);
    renderers_[id].state =
        absl::StrCat("ended: no answer within the render time limit (",
                     absl::FormatDuration(options_.render_timeout), ")");
  }
  EndRenderer(*tab);
  std::string end = WaitForEnd(id, absl::Seconds(5));
  page.kind = Page::Kind::kCrashed;
  page.message = hang_up || absl::IsDeadlineExceeded(s)
                     ? end
                     : absl::StrCat("renderer failed (", s.message(), "); ", end);
  tab->crash = page.message;
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
    // Opening a tab starts a renderer: a POST (vow_view serves GET only for what changes
    // nothing).
    absl::StrAppend(&html, "<li><form method=\"post\" target=\"_blank\" action=\"/view/",
                    HtmlEscape(UrlEscape(name)), "\"><button>", HtmlEscape(name),
                    "</button></form> <small>",
                    type.ok() ? DocTypeName(*type) : "no renderer", "</small></li>");
  }
  return html + "</ul></body></html>";
}

std::string Browser::TabHtml(TabId tab, const std::string& name, uint32_t page_index,
                             const Page& p) const {
  std::string html = absl::StrCat(Head(absl::StrCat(name, " - vow_view")), "<h1 id=\"title\">",
                                  HtmlEscape(name), "</h1>");
  std::string url = absl::StrCat("/tab/", tab);
  absl::StrAppend(&html, "<p><small><span id=\"tab\">tab ", tab, "</span>");
  if (p.pid > 0) {
    absl::StrAppend(&html, ", renderer pid <span id=\"pid\">", p.pid, "</span> (",
                    DocTypeName(p.type), ")");
  }
  absl::StrAppend(&html, " <form method=\"post\" action=\"", url,
                  "/close\"><button id=\"close\">close tab</button></form></small></p>");
  switch (p.kind) {
    case Page::Kind::kHtml:
      if (!p.notice.empty()) {
        absl::StrAppend(&html, "<p id=\"notice\">", HtmlEscape(p.notice), "</p>");
      }
      absl::StrAppend(&html, "<article id=\"document\">", p.html, "</article>");
      break;
    case Page::Kind::kPng: {
      kj::String b64 = kj::encodeBase64(
          kj::ArrayPtr<const kj::byte>(reinterpret_cast<const kj::byte*>(p.png.data()), p.png.size()));
      absl::StrAppend(&html, "<img id=\"rendering\" alt=\"", HtmlEscape(name), "\" width=\"",
                      p.width, "\" height=\"", p.height, "\" src=\"data:image/png;base64,",
                      b64.cStr(), "\">");
      if (!p.notice.empty()) {
        absl::StrAppend(&html, "<p id=\"notice\">", HtmlEscape(p.notice), "</p>");
      }
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
                      HtmlEscape(p.message), "</span></p><form method=\"post\" action=\"", url,
                      "?reload=1\"><button id=\"reload\">Reload</button> (starts a fresh "
                      "renderer in this tab)</form></div>");
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
      "<h1>Renderers</h1><table id=\"renderers\"><tr><th>id</th><th>tab</th><th>pid</th>"
      "<th>document</th>"
      "<th>pool</th><th>state</th><th>memory (KiB)</th><th>requests</th><th>violations</th>"
      "</tr>");
  for (const RendererInfo& r : Renderers()) {
    std::string refusals;
    for (const std::string& v : r.refusals) absl::StrAppend(&refusals, "<br><small>", HtmlEscape(v), "</small>");
    absl::StrAppend(&html, "<tr class=\"", r.live ? "live" : "ended", "\"><td>", r.id,
                    "</td><td>", r.tab > 0 ? absl::StrCat(r.tab) : "-", "</td><td>",
                    r.pid > 0 ? absl::StrCat(r.pid) : "-", "</td><td>",
                    HtmlEscape(r.document), "</td><td>", r.pool, "</td><td>",
                    HtmlEscape(r.state), "</td><td>", r.live ? absl::StrCat(r.rss_kb) : "-",
                    "</td><td>", r.requests, "</td><td>", r.violations, refusals, "</td></tr>");
  }
  size_t tabs = 0;
  {
    absl::MutexLock lock(&mu_);
    tabs = tabs_.size();
  }
  absl::StrAppend(&html, "</table><p>open tabs: <span id=\"tabs\">", tabs,
                  "</span>; live workers: <span id=\"live\">", broker_->live_workers(),
                  "</span> (including warm spares)</p></body></html>");
  return html;
}

}  // namespace vow::renderer
