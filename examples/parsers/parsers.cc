#include "examples/parsers/parsers.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "examples/parsers/wire.h"
#include "examples/parsers/worker.h"

namespace vow::parsers {
namespace {

constexpr size_t kMaxEndedReports = 256;

bool IsHangUp(const absl::Status& s) {
  if (absl::IsOutOfRange(s) || absl::IsDataLoss(s)) return true;
  int err = ErrnoOf(s);
  return err == EPIPE || err == ECONNRESET;
}

Policy WorkerPolicy(const ParserOptions& options) {
  Policy policy;  // promises: stdio; penalty: kill; no path rules
  policy.limits.memory_bytes = options.worker_memory_bytes;
  policy.clock.kind = ClockRule::Kind::kNone;
  return policy;
}

// Parses and checks an image answer. The worker is hostile: every field is bounded.
// `window`, `window_size`: the pixel window the job asked the worker to use (null and 0:
// it did not ask).
ImageResult ParseImageAnswer(absl::string_view answer, const ImageOptions& options,
                             const char* window = nullptr, size_t window_size = 0) {
  ImageResult result;
  wire::Reader r(answer);
  uint8_t status = 0;
  if (!r.U8(&status)) status = 0xff;
  if (status == wire::kRejected) {
    uint8_t code = 0;
    absl::string_view message;
    if (r.U8(&code) && r.Str(&message, 4096) && r.left() == 0) {
      result.outcome = Outcome::kRejected;
      result.error = std::string(message);
      return result;
    }
  } else if (status == wire::kOk) {
    uint8_t format = 0;
    uint32_t nwarn = 0, npix = 0;
    ImageInfo& i = result.info;
    if (r.U8(&format) && r.U32(&i.width) && r.U32(&i.height) && r.U32(&i.channels) &&
        r.U32(&i.bit_depth) && r.U32(&i.frames) && r.U32(&nwarn) && nwarn <= kMaxWarnings) {
      for (uint32_t k = 0; k < nwarn; ++k) {
        absl::string_view w;
        if (!r.Str(&w, kMaxWarningBytes)) break;
        i.warnings.emplace_back(w);
      }
      uint64_t pixels = static_cast<uint64_t>(i.width) * i.height;
      uint8_t where = 0xff;
      bool sane = r.ok() && format >= 1 && format <= 5 && i.width > 0 && i.height > 0 &&
                  pixels <= options.max_pixels && i.channels >= 1 && i.channels <= 64 &&
                  i.bit_depth >= 1 && i.bit_depth <= 64 && i.frames >= 1 && r.U8(&where) &&
                  r.U32(&npix) && (npix == 0 ? !options.keep_pixels : npix == pixels * 4);
      // Pixels in the window only if this side asked for it (no window: window_size 0),
      // and only within it (the window cannot shrink: sealed before the worker got it).
      bool placed = where == wire::kInline
                        ? npix == r.left()
                        : where == wire::kInWindow && npix > 0 && npix <= window_size &&
                              r.left() == 0;
      if (sane && placed) {
        i.format = static_cast<ImageFormat>(format);
        result.rgba = where == wire::kInline ? std::string(r.Rest()) : std::string(window, npix);
        result.outcome = Outcome::kOk;
        return result;
      }
    }
  }
  result = ImageResult();
  result.outcome = Outcome::kFailed;
  result.error = "the worker's answer is malformed or out of bounds";
  return result;
}

FontResult ParseFontAnswer(absl::string_view answer, const FontOptions& options) {
  FontResult result;
  wire::Reader r(answer);
  uint8_t status = 0xff;
  r.U8(&status);
  if (status == wire::kRejected) {
    uint8_t code = 0;
    absl::string_view message;
    if (r.U8(&code) && r.Str(&message, 4096) && r.left() == 0) {
      result.outcome = Outcome::kRejected;
      result.error = std::string(message);
      return result;
    }
  } else if (status == wire::kOk) {
    absl::string_view family, style, gray;
    uint32_t n = 0;
    RenderedText& t = result.text;
    if (r.Str(&family, 256) && r.Str(&style, 256) && r.U32(&t.width) && r.U32(&t.height) &&
        r.U32(&n) && n <= kMaxGlyphs) {
      for (uint32_t k = 0; k < n && r.ok(); ++k) {
        GlyphMetrics g;
        uint32_t adv = 0, bx = 0, by = 0;
        r.U32(&g.codepoint), r.U32(&g.glyph_index), r.U32(&adv), r.U32(&bx), r.U32(&by);
        r.U32(&g.width), r.U32(&g.height);
        g.advance = static_cast<int32_t>(adv);
        g.bearing_x = static_cast<int32_t>(bx);
        g.bearing_y = static_cast<int32_t>(by);
        t.glyphs.push_back(g);
      }
      uint64_t pixels = static_cast<uint64_t>(t.width) * t.height;
      if (r.Str(&gray, options.max_pixels) && r.left() == 0 && t.width > 0 && t.height > 0 &&
          pixels <= options.max_pixels && gray.size() == pixels) {
        t.family = std::string(family);
        t.style = std::string(style);
        t.gray = std::string(gray);
        absl::StatusOr<std::string> png = EncodePngGray(t.width, t.height, t.gray);
        if (png.ok()) {
          result.png = *std::move(png);
          result.outcome = Outcome::kOk;
          return result;
        }
      }
    }
  }
  result = FontResult();
  result.error = "the worker's answer is malformed or out of bounds";
  return result;
}

}  // namespace

std::string JsonString(absl::string_view bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
    }
  }
  out += '"';
  return out;
}

std::string DescribeWorkerEnd(const WorkerResult& result) {
  if (result.kind == WorkerResult::Kind::kSignaled) {
    const char* abbrev = sigabbrev_np(result.signal);
    return absl::StrCat("crashed: SIG", abbrev != nullptr ? abbrev : absl::StrCat(result.signal),
                        " in worker");
  }
  return result.ToString();
}

std::string ImageResult::ToJson() const {
  if (outcome != Outcome::kOk) return absl::StrCat("{\"error\": ", JsonString(error), "}");
  std::string warnings;
  for (const std::string& w : info.warnings) {
    absl::StrAppend(&warnings, warnings.empty() ? "" : ", ", JsonString(w));
  }
  return absl::StrCat("{\"format\": \"", ImageFormatName(info.format), "\", \"width\": ",
                      info.width, ", \"height\": ", info.height, ", \"channels\": ",
                      info.channels, ", \"bit_depth\": ", info.bit_depth, ", \"frames\": ",
                      info.frames, ", \"warnings\": [", warnings, "]}");
}

std::string FontResult::ToJson() const {
  if (outcome != Outcome::kOk) return absl::StrCat("{\"error\": ", JsonString(error), "}");
  std::string glyphs;
  for (const GlyphMetrics& g : text.glyphs) {
    absl::StrAppend(&glyphs, glyphs.empty() ? "" : ", ", "{\"codepoint\": ", g.codepoint,
                    ", \"glyph\": ", g.glyph_index, ", \"advance\": ", g.advance,
                    ", \"bearing_x\": ", g.bearing_x, ", \"bearing_y\": ", g.bearing_y,
                    ", \"width\": ", g.width, ", \"height\": ", g.height, "}");
  }
  return absl::StrCat("{\"family\": ", JsonString(text.family), ", \"style\": ",
                      JsonString(text.style), ", \"width\": ", text.width, ", \"height\": ",
                      text.height, ", \"glyphs\": [", glyphs, "]}");
}

std::string ExtractResult::ToJson() const {
  std::string refusals;
  for (const Refusal& r : refused) {
    absl::StrAppend(&refusals, refusals.empty() ? "" : ", ", "{\"name\": ", JsonString(r.name),
                    ", \"reason\": ", JsonString(r.reason), "}");
  }
  std::string out = absl::StrCat("{\"entries\": ", entries, ", \"written\": ", written,
                                 ", \"directories\": ", directories, ", \"bytes\": ", bytes,
                                 ", \"refused\": [", refusals, "]");
  if (!error.empty()) absl::StrAppend(&out, ", \"error\": ", JsonString(error));
  return out + "}";
}

Parsers::~Parsers() {
  pool_.reset();
  broker_.reset();
}

absl::StatusOr<std::unique_ptr<Parsers>> Parsers::Create(ParserOptions options) {
  WarmUpArchiveLibrary();  // before any worker is forked: they inherit it
  std::unique_ptr<Parsers> p(new Parsers(std::move(options)));
  BrokerOptions broker_options;
  broker_options.audit_fd = p->options_.audit_fd;
  ASSIGN_OR_RETURN(p->broker_, Broker::Create(broker_options));
  ASSIGN_OR_RETURN(p->policy_, p->broker_->Prepare(WorkerPolicy(p->options_)));
  WorkerConfig config;
  config.crash_for_testing = p->options_.crash_for_testing;
  config.hostile_for_testing = p->options_.hostile_for_testing;
  p->main_ = [config](Client& client) { return ParserWorkerMain(client, config); };
  if (p->options_.pool_size == 0) return p;  // fresh workers only (--to, extraction)
  WorkerPool::Options pool_options;
  pool_options.size = p->options_.pool_size;
  pool_options.stderr_fd = p->options_.stderr_fd;
  pool_options.name = "parsers";
  Parsers* self = p.get();
  pool_options.on_exit = [self](WorkerId id, const WorkerResult& result) {
    absl::MutexLock lock(&self->mu_);
    self->windows_.erase(id);
    self->ended_[id] = DescribeWorkerEnd(result);
    while (self->ended_.size() > kMaxEndedReports) self->ended_.erase(self->ended_.begin());
  };
  ASSIGN_OR_RETURN(p->pool_,
                   WorkerPool::Create(p->broker_.get(), p->policy_, p->main_, pool_options));
  return p;
}

uint64_t Parsers::failed_workers() const {
  absl::MutexLock lock(&mu_);
  return failed_workers_;
}

std::string Parsers::DescribeEnd(WorkerId id, absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  auto reported = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ended_.count(id) != 0;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&reported), wait)) return "ended (no report yet)";
  std::string what = std::move(ended_[id]);
  ended_.erase(id);
  return what;
}

Parsers::PixelWindow::~PixelWindow() {
  if (map != nullptr) munmap(const_cast<char*>(map), size);
}

absl::StatusOr<std::shared_ptr<Parsers::PixelWindow>> Parsers::WindowFor(WorkerId id,
                                                                          bool* fresh) {
  *fresh = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = windows_.find(id);
    if (it != windows_.end()) return it->second;
  }
  auto window = std::make_shared<PixelWindow>();
  window->fd = UniqueFd(memfd_create("vow-parsers-pixels", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!window->fd) return ErrnoStatus(errno, "memfd_create for a pixel window");
  window->size = static_cast<size_t>(options_.window_bytes);
  if (ftruncate(window->fd.get(), static_cast<off_t>(window->size)) != 0) {
    return ErrnoStatus(errno, "ftruncate of a pixel window");
  }
  // Sealed before the worker sees it: it cannot shrink the window under this side's
  // mapping (a read past the end would be SIGBUS here), grow it, or lift the seals.
  if (fcntl(window->fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return ErrnoStatus(errno, "sealing a pixel window");
  }
  void* m = mmap(nullptr, window->size, PROT_READ, MAP_SHARED, window->fd.get(), 0);
  if (m == MAP_FAILED) return ErrnoStatus(errno, "mapping a pixel window");
  window->map = static_cast<const char*>(m);
  *fresh = true;
  return window;
}

bool Parsers::PoolExchange(const std::string& job, size_t max_answer, std::string* answer,
                           std::string* error) {
  return PoolExchange(
      job, max_answer, /*with_window=*/false,
      [answer](absl::string_view got, const PixelWindow*) {
        *answer = std::string(got);
        return true;
      },
      error);
}

bool Parsers::PoolExchange(const std::string& job, size_t max_answer, bool with_window,
                           const std::function<bool(absl::string_view, const PixelWindow*)>& take,
                           std::string* error) {
  if (pool_ == nullptr) {
    *error = "this Parsers has no pool (pool_size 0)";
    return false;
  }
  absl::Time deadline = absl::Now() + options_.timeout;
  absl::StatusOr<WorkerPool::Lease> lease = pool_->Acquire(options_.timeout);
  if (!lease.ok()) {
    *error = absl::StrCat("no worker available: ", lease.status().message());
    return false;
  }
  std::shared_ptr<PixelWindow> window;
  bool fresh = false;
  if (with_window) {
    absl::StatusOr<std::shared_ptr<PixelWindow>> w = WindowFor(lease->id(), &fresh);
    if (!w.ok()) {
      pool_->Release(*std::move(lease), /*healthy=*/true);
      *error = std::string(w.status().message());
      return false;
    }
    window = *std::move(w);
  }
  std::string got;
  absl::Status s = wire::SendFrame(lease->fd(), job, deadline, fresh ? window->fd.get() : -1);
  if (s.ok()) s = wire::RecvFrame(lease->fd(), max_answer, deadline, &got);
  if (s.ok() && fresh) {
    absl::MutexLock lock(&mu_);
    windows_[lease->id()] = window;
  }
  // The pixels are taken out of the window before the worker can get another job.
  if (s.ok() && take(got, window.get())) {
    pool_->Release(*std::move(lease), /*healthy=*/true);
    return true;
  }
  if (s.ok()) {  // a malformed answer: this worker is not trusted with another job
    pool_->Release(*std::move(lease), /*healthy=*/false);
    return true;
  }
  WorkerId id = lease->id();
  bool hang_up = IsHangUp(s);
  if (hang_up) {
    // Let the broker reap it first, so its report says how it died.
    absl::Time until = absl::Now() + absl::Milliseconds(500);
    while (broker_->pid(id) > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(1));
  }
  pool_->Release(*std::move(lease), /*healthy=*/false);
  {
    absl::MutexLock lock(&mu_);
    ++failed_workers_;
  }
  std::string end = DescribeEnd(id, absl::Seconds(2));
  if (hang_up) {
    *error = end;
  } else if (absl::IsDeadlineExceeded(s)) {
    *error = absl::StrCat("worker timed out after ", absl::FormatDuration(options_.timeout),
                          "; ", end);
  } else {
    *error = absl::StrCat("worker failed: ", s.message(), "; ", end);
  }
  return false;
}

namespace {

std::string ImageJob(absl::string_view bytes, const ImageOptions& options, bool write_png,
                     const std::string& out_png) {
  wire::Writer w;
  w.U8(wire::kImage);
  w.U64(options.max_pixels);
  // Pooled jobs (not write_png: a fresh worker, no window) may use the pixel window.
  w.U8((options.keep_pixels ? wire::kKeepPixels : 0) | (write_png ? wire::kWritePng : 0) |
       (options.keep_pixels && !write_png ? wire::kPixelsInWindow : 0));
  w.Str(out_png);
  w.Raw(bytes);
  return std::move(w.out());
}

size_t MaxImageAnswer(const ImageOptions& options) {
  uint64_t pixels = options.keep_pixels ? std::min<uint64_t>(options.max_pixels, 1ull << 32) * 4 : 0;
  return static_cast<size_t>(std::min<uint64_t>(pixels + (1 << 20), 0xffffffffu));
}

ImageResult TooBig(absl::string_view bytes, uint64_t max_bytes) {
  ImageResult result;
  result.outcome = Outcome::kRejected;
  result.error = absl::StrCat("input of ", bytes.size(), " bytes exceeds the limit of ",
                              max_bytes, " bytes");
  return result;
}

}  // namespace

ImageResult Parsers::DecodeImage(absl::string_view bytes, const ImageOptions& options) {
  if (bytes.size() > options.max_bytes || bytes.size() > kMaxJobBytes - 4096) {
    return TooBig(bytes, std::min<uint64_t>(options.max_bytes, kMaxJobBytes - 4096));
  }
  std::string job = ImageJob(bytes, options, false, "");
  bool with_window = options.keep_pixels && options_.window_bytes > 0;
  if (!with_window) job[9] &= ~wire::kPixelsInWindow;  // kind, u64 max_pixels, then flags
  return PooledImage(job, options, with_window);
}

ImageResult Parsers::PooledImage(const std::string& job, const ImageOptions& options,
                                 bool with_window) {
  ImageResult result;
  std::string error;
  auto take = [&](absl::string_view answer, const PixelWindow* window) {
    result = ParseImageAnswer(answer, options, window != nullptr ? window->map : nullptr,
                              window != nullptr ? window->size : 0);
    return result.outcome != Outcome::kFailed;
  };
  if (!PoolExchange(job, MaxImageAnswer(options), with_window, take, &error)) {
    result = ImageResult();
    result.error = error;
  }
  return result;
}

ImageResult Parsers::HostileDecodeForTesting(uint8_t mode, absl::string_view bytes,
                                             const ImageOptions& options) {
  std::string job = ImageJob(bytes, options, false, "");
  bool with_window = mode != 3;
  if (!with_window) job[9] &= ~wire::kPixelsInWindow;  // kind, u64 max_pixels, then flags
  job.insert(job.begin(), static_cast<char>(wire::kHostile));
  job[1] = static_cast<char>(mode);
  return PooledImage(job, options, with_window);
}

ImageResult Parsers::CrashWorkerForTesting() {
  std::string answer, error;
  ImageResult result;
  if (PoolExchange(std::string(1, static_cast<char>(wire::kCrash)), 1 << 20, &answer, &error)) {
    return ParseImageAnswer(answer, ImageOptions());
  }
  result.error = error;
  return result;
}

// A fresh worker per call, spawned here, with `out_png` (c, w) as its only rule.
ImageResult Parsers::DecodeImageToPng(absl::string_view bytes, const ImageOptions& options,
                                      const std::string& out_png) {
  ImageResult result;
  if (bytes.size() > options.max_bytes || bytes.size() > kMaxJobBytes - 4096) {
    return TooBig(bytes, std::min<uint64_t>(options.max_bytes, kMaxJobBytes - 4096));
  }
  Policy policy = WorkerPolicy(options_);
  policy.paths.push_back(PathRule{out_png, /*read=*/false, /*write=*/true, /*exec=*/false,
                                  /*create=*/true});
  absl::StatusOr<std::shared_ptr<const PreparedPolicy>> prepared = broker_->Prepare(policy);
  if (!prepared.ok()) {
    result.outcome = Outcome::kRejected;
    result.error = absl::StrCat("output ", out_png, ": ", prepared.status().message());
    return result;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    result.error = absl::StrCat("socketpair: errno ", errno);
    return result;
  }
  UniqueFd ours(sv[0]);
  SpawnOptions spawn;
  spawn.stdin_fd = sv[1];
  spawn.stdout_fd = sv[1];
  spawn.stderr_fd = options_.stderr_fd;
  spawn.name = "parsers-to-png";
  absl::StatusOr<WorkerId> id = broker_->Spawn(*prepared, main_, spawn);
  close(sv[1]);
  if (!id.ok()) {
    result.error = absl::StrCat("spawning a worker: ", id.status().message());
    return result;
  }
  absl::Time deadline = absl::Now() + options_.timeout;
  std::string answer;
  absl::Status s = wire::SendFrame(ours.get(), ImageJob(bytes, options, true, out_png), deadline);
  if (s.ok()) s = wire::RecvFrame(ours.get(), MaxImageAnswer(options), deadline, &answer);
  ours.reset();  // EOF: the worker exits
  if (!s.ok() && !IsHangUp(s)) broker_->Kill(*id);
  absl::StatusOr<WorkerResult> end = broker_->Wait(*id, absl::Seconds(5));
  if (!end.ok()) {
    broker_->Kill(*id);
    end = broker_->Wait(*id);
  }
  if (!s.ok()) {
    result.error = end.ok() ? DescribeWorkerEnd(*end) : std::string(s.message());
    return result;
  }
  return ParseImageAnswer(answer, options);
}

FontResult Parsers::RenderText(absl::string_view font, absl::string_view text,
                               const FontOptions& options) {
  FontResult result;
  if (font.size() > options.max_bytes || font.size() > kMaxJobBytes - (1 << 20) ||
      text.size() > 64 * 1024) {
    result.outcome = Outcome::kRejected;
    result.error = absl::StrCat("font of ", font.size(), " bytes or text of ", text.size(),
                                " bytes exceeds the limits (", options.max_bytes, ", 65536)");
    return result;
  }
  wire::Writer w;
  w.U8(wire::kFont);
  w.U32(options.pixel_size);
  w.U64(options.max_pixels);
  w.Str(text);
  w.Raw(font);
  std::string answer, error;
  size_t max_answer = static_cast<size_t>(
      std::min<uint64_t>(options.max_pixels + kMaxGlyphs * 28 + 4096, 0xffffffffu));
  if (!PoolExchange(w.out(), max_answer, &answer, &error)) {
    result.error = error;
    return result;
  }
  return ParseFontAnswer(answer, options);
}

// ---------------------------------------------------------------------------------------
// Extraction: the trusted side.
// ---------------------------------------------------------------------------------------
namespace {

struct Scan {
  uint64_t files = 0, dirs = 0, bytes = 0, largest = 0;
  std::vector<Refusal> odd;  // anything that is neither a file nor a directory, or setuid
};

// Walks the tree beneath `dir_fd` without following symlinks.
void ScanTree(int dir_fd, const std::string& prefix, int depth, Scan* scan) {
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return;
  }
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string name = prefix.empty() ? e->d_name : absl::StrCat(prefix, "/", e->d_name);
    if (S_ISREG(st.st_mode)) {
      ++scan->files;
      scan->bytes += st.st_size;
      scan->largest = std::max<uint64_t>(scan->largest, st.st_size);
      if (st.st_mode & 07000) scan->odd.push_back({name, "file has setuid/setgid/sticky bits"});
      if (st.st_nlink > 1) scan->odd.push_back({name, "file has more than one link"});
    } else if (S_ISDIR(st.st_mode)) {
      ++scan->dirs;
      if (depth < 256) {
        int sub = openat(dirfd(d), e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
          ScanTree(sub, name, depth + 1, scan);
          close(sub);
        }
      }
    } else {
      scan->odd.push_back({name, "not a regular file or directory (found after extraction)"});
    }
  }
  closedir(d);
}

// Creates `name` (already checked) beneath `root_fd`, one component at a time, never
// following a symlink. Returns 0 or an errno.
int MkdirBeneath(int root_fd, absl::string_view name) {
  UniqueFd cur(dup(root_fd));
  if (!cur) return errno;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    std::string p(part);
    if (mkdirat(cur.get(), p.c_str(), 0755) != 0 && errno != EEXIST) return errno;
    int next = openat(cur.get(), p.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return errno;
    cur = UniqueFd(next);
  }
  return 0;
}

// Creates file `name` (already checked) beneath `root_fd`: openat2 with RESOLVE_BENEATH
// and RESOLVE_NO_SYMLINKS, so neither `..` nor a symlink anywhere on the way can lead out.
absl::StatusOr<UniqueFd> CreateBeneath(int root_fd, const std::string& name, mode_t mode) {
  open_how how{};
  how.flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  how.mode = mode & 0777;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  long fd = syscall(SYS_openat2, root_fd, name.c_str(), &how, sizeof(how));
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("creating ", name, " beneath DIR"));
  return UniqueFd(static_cast<int>(fd));
}

}  // namespace

ExtractResult Parsers::ExtractArchive(int archive_fd, const std::string& dir,
                                      const ExtractOptions& options) {
  namespace fs = std::filesystem;
  ExtractResult result;
  std::error_code ec;
  if (dir.empty() || dir[0] != '/') {
    result.error = absl::StrCat("--into ", dir, ": must be an absolute path");
    return result;
  }
  fs::create_directories(dir, ec);
  std::string canonical = fs::canonical(dir, ec).string();
  if (ec || !fs::is_directory(canonical) || !fs::is_empty(canonical, ec)) {
    result.error = absl::StrCat("--into ", dir, ": must be an empty directory (or not exist)");
    return result;
  }
  UniqueFd root(open(canonical.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    result.error = absl::StrCat("--into ", dir, ": ", strerror(errno));
    return result;
  }
  // No path rule: the worker opens nothing; every file is created and written here.
  absl::StatusOr<std::shared_ptr<const PreparedPolicy>> prepared =
      broker_->Prepare(WorkerPolicy(options_));
  if (!prepared.ok()) {
    result.error = std::string(prepared.status().message());
    return result;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    result.error = absl::StrCat("socketpair: errno ", errno);
    return result;
  }
  UniqueFd ours(sv[0]);
  SpawnOptions spawn;
  spawn.stdin_fd = archive_fd;
  spawn.stdout_fd = sv[1];
  spawn.stderr_fd = options_.stderr_fd;
  spawn.name = "parsers-extract";
  absl::StatusOr<WorkerId> id =
      broker_->Spawn(*prepared, [](Client& client) { return ExtractWorkerMain(client); }, spawn);
  close(sv[1]);
  if (!id.ok()) {
    result.error = absl::StrCat("spawning a worker: ", id.status().message());
    return result;
  }
  absl::Time deadline = absl::Now() + options.timeout;
  wire::Writer job;
  job.U64(options.max_entries);
  job.U64(options.max_file_bytes);
  job.U64(options.max_total_bytes);
  job.U32(options.max_depth);
  job.U8((options.skip_worker_checks_for_testing ? 1 : 0) |
         (options.write_past_quotas_for_testing ? 2 : 0));
  job.Str(canonical);
  absl::Status s = wire::SendFrame(ours.get(), job.out(), deadline);
  bool finished = false;
  std::string failure;
  uint64_t entries_made = 0;  // files and directories created here
  uint64_t total = 0;         // sum of the files' sizes (highest offset written)
  UniqueFd file;              // the current file (kFile), written by kData
  std::string file_name;
  uint64_t file_size = 0;
  auto refuse = [&result](absl::string_view name, absl::string_view reason) {
    if (result.refused.size() < kMaxRefusals) {
      result.refused.push_back({std::string(name), std::string(reason)});
    }
  };
  auto over_quota = [&](const Scan& scan) -> std::string {
    if (scan.bytes > options.max_total_bytes) {
      return absl::StrCat("quota: ", scan.bytes, " bytes written, more than ",
                          options.max_total_bytes);
    }
    if (scan.files + scan.dirs > options.max_entries) {
      return absl::StrCat("quota: ", scan.files + scan.dirs, " entries, more than ",
                          options.max_entries);
    }
    if (scan.largest > options.max_file_bytes) {
      return absl::StrCat("quota: a file of ", scan.largest, " bytes, more than ",
                          options.max_file_bytes);
    }
    return "";
  };
  // Writes [offset, offset + data.size()) of the current file, cut to what the per-file
  // and total quotas leave; whatever is cut refuses the file (once).
  auto write_data = [&](uint64_t offset, absl::string_view data) {
    if (!file) return;  // refused, or no file: nothing reaches the disk
    uint64_t end = offset + data.size();
    std::string why;
    uint64_t limit = options.max_file_bytes;
    if (end > limit || end < offset) {
      why = absl::StrCat("quota: file larger than ", options.max_file_bytes,
                         " bytes (stopped by the caller)");
      end = limit;
    }
    // The total grows by what the file grows: the most it may reach is file_size plus
    // what is left of the total.
    uint64_t left = options.max_total_bytes - std::min(total, options.max_total_bytes);
    if (end > file_size && end - file_size > left) {
      why = absl::StrCat("quota: archive larger than ", options.max_total_bytes,
                         " bytes in total (stopped by the caller)");
      end = file_size + left;
    }
    const char* p = data.data();
    for (uint64_t at = offset; at < end;) {
      ssize_t n = pwrite(file.get(), p, static_cast<size_t>(end - at), static_cast<off_t>(at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        why = absl::StrCat("write: ", strerror(n < 0 ? errno : EIO));
        break;
      }
      p += n;
      at += static_cast<uint64_t>(n);
      if (at > file_size) {
        total += at - file_size;
        file_size = at;
      }
    }
    if (!why.empty()) {
      refuse(file_name, why);
      file.reset();
    }
  };
  while (s.ok() && !finished) {
    std::string frame;
    s = wire::RecvFrame(ours.get(), kMaxDataBytes + 64, deadline, &frame);
    if (!s.ok()) break;
    wire::Reader r(frame);
    uint8_t kind = 0;
    absl::string_view a, b;
    uint64_t entries = 0, offset = 0;
    uint32_t mode = 0;
    r.U8(&kind);
    if (kind == kData && r.U64(&offset)) {
      write_data(offset, r.Rest());
    } else if ((kind == kMkdir && r.Str(&a, 4096) && r.left() == 0) ||
               (kind == kFile && r.Str(&a, 4096) && r.U32(&mode) && r.left() == 0)) {
      file.reset();
      std::string name(a);
      absl::Status check = CheckEntryName(name, options.max_depth);
      int err = 0;
      std::string why;
      if (!check.ok()) {
        err = EINVAL;
        why = absl::StrCat("refused by the caller: ", check.message());
      } else if (entries_made >= options.max_entries) {
        err = EDQUOT;
        why = absl::StrCat("quota: more than ", options.max_entries, " entries");
      } else if (kind == kMkdir) {
        ++entries_made;
        if ((err = MkdirBeneath(root.get(), name)) != 0) why = absl::StrCat("mkdir: ", strerror(err));
      } else {
        absl::StatusOr<UniqueFd> fd = CreateBeneath(root.get(), name, mode & 0777);
        if (fd.ok()) {
          ++entries_made;
          file = *std::move(fd);
          file_name = name;
          file_size = 0;
        } else {
          err = ErrnoOf(fd.status());
          if (err == 0) err = EIO;
          why = absl::StrCat("refused by the caller: ", fd.status().message());
        }
      }
      wire::Writer w;
      w.U8(static_cast<uint8_t>(std::min(err, 255)));
      w.Str(why);
      s = wire::SendFrame(ours.get(), w.out(), deadline);
    } else if (kind == kRefused && r.Str(&a, 4096) && r.Str(&b, 1024) && r.left() == 0) {
      refuse(a, b);
    } else if (kind == kFinished && r.U64(&entries) && r.Str(&b, 4096) && r.left() == 0) {
      result.entries = entries;
      result.error = std::string(b);
      finished = true;
    } else {
      failure = "the worker sent a malformed message; it was killed";
      broker_->Kill(*id);
      break;
    }
  }
  ours.reset();
  if (!finished && failure.empty() && absl::IsDeadlineExceeded(s)) {
    failure = absl::StrCat("timed out after ", absl::FormatDuration(options.timeout));
  }
  if (!finished) broker_->Kill(*id);
  absl::StatusOr<WorkerResult> end = broker_->Wait(*id, absl::Seconds(5));
  if (!end.ok()) {
    broker_->Kill(*id);
    end = broker_->Wait(*id);
  }
  if (!finished && failure.empty()) {
    failure = !s.ok() && !IsHangUp(s) ? std::string(s.message())
                                      : (end.ok() ? DescribeWorkerEnd(*end) : "worker lost");
  }
  // The figures come from the disk, not from the worker.
  Scan scan;
  ScanTree(root.get(), "", 0, &scan);
  result.written = scan.files;
  result.directories = scan.dirs;
  result.bytes = scan.bytes;
  for (const Refusal& odd : scan.odd) refuse(odd.name, odd.reason);
  std::string quota = over_quota(scan);
  if (!quota.empty()) refuse("", quota);
  if (!failure.empty()) {
    result.outcome = 2;
    result.error = failure;
  } else {
    result.outcome = result.refused.empty() && result.error.empty() ? 0 : 1;
  }
  return result;
}

}  // namespace vow::parsers
