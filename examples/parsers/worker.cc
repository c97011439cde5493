#include "examples/parsers/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "examples/parsers/font.h"
#include "examples/parsers/image.h"
#include "examples/parsers/wire.h"

namespace vow::parsers {
namespace {

std::string Rejected(const absl::Status& s) {
  wire::Writer w;
  w.U8(wire::kRejected);
  w.U8(absl::IsResourceExhausted(s) ? wire::kLimit : wire::kInvalid);
  w.Str(absl::string_view(s.message()).substr(0, 4096));
  return std::move(w.out());
}

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// The caller's pixel window (wire.h): a memfd the caller sealed against shrinking and
// growing, mapped here shared and writable for the worker's life.
struct Window {
  UniqueFd fd;
  char* map = nullptr;
  size_t size = 0;

  void Reset(UniqueFd new_fd) {
    if (map != nullptr) munmap(map, size);
    map = nullptr;
    size = 0;
    fd = std::move(new_fd);
    struct stat st;
    if (!fd || fstat(fd.get(), &st) != 0 || st.st_size <= 0) return;
    void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED,
                   fd.get(), 0);
    if (m == MAP_FAILED) return;
    map = static_cast<char*>(m);
    size = static_cast<size_t>(st.st_size);
  }
};

// Test only (hostile_for_testing): how a kHostile job misbehaves.
enum HostileMode : uint8_t {
  kNone = 0,
  kShrinkWindow = 1,   // ftruncate the window to 0 before answering "in the window"
  kOverclaim = 2,      // claim pixels in the window beyond its end
  kWindowUnasked = 3,  // answer "in the window" to a job that did not ask for it
};

std::string ImageJob(Client& client, wire::Reader& r, Window& window, uint8_t hostile) {
  uint64_t max_pixels = 0;
  uint8_t flags = 0;
  absl::string_view out_path;
  if (!r.U64(&max_pixels) || !r.U8(&flags) || !r.Str(&out_path, 4096)) {
    return Rejected(absl::InvalidArgumentError("malformed image job"));
  }
  bool write_png = (flags & wire::kWritePng) != 0;
  bool keep = (flags & wire::kKeepPixels) != 0;
  // Pixels that fit in the window are decoded straight into it (no copy here); the
  // decoder writes width * height * 4 bytes there only after the limits were checked.
  PixelBuffer into;
  if ((flags & wire::kPixelsInWindow) != 0 && keep && window.map != nullptr) {
    into = PixelBuffer{window.map, window.size};
  }
  absl::StatusOr<DecodedImage> image = DecodeImageInto(r.Rest(), max_pixels, into);
  if (!image.ok()) return Rejected(image.status());
  size_t npix = static_cast<size_t>(image->info.width) * image->info.height * 4;
  absl::string_view pixels =
      image->in_buffer ? absl::string_view(window.map, npix) : absl::string_view(image->rgba);
  if (!keep && !write_png) pixels = {};
  if (write_png) {
    absl::StatusOr<std::string> png =
        EncodePngRgba(image->info.width, image->info.height, pixels);
    if (!png.ok()) return Rejected(png.status());
    absl::StatusOr<UniqueFd> fd = client.Open(out_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (!fd.ok()) {
      return Rejected(absl::InvalidArgumentError(
          absl::StrCat("the broker refused to create ", out_path, ": ", fd.status().message())));
    }
    if (!WriteAll(fd->get(), *png)) {
      return Rejected(absl::InvalidArgumentError(
          absl::StrCat("writing ", out_path, " failed, errno ", errno)));
    }
    if (!keep) pixels = {};
  }
  wire::Writer w;
  const ImageInfo& i = image->info;
  w.U8(wire::kOk);
  w.U8(static_cast<uint8_t>(i.format));
  w.U32(i.width);
  w.U32(i.height);
  w.U32(i.channels);
  w.U32(i.bit_depth);
  w.U32(i.frames);
  w.U32(static_cast<uint32_t>(i.warnings.size()));
  for (const std::string& warning : i.warnings) w.Str(warning);
  bool in_window = image->in_buffer && !pixels.empty();
  if (hostile == kShrinkWindow) {
    (void)!ftruncate(window.fd.get(), 0);  // sealed by the caller: fails with EPERM
  }
  if (hostile == kOverclaim && window.map != nullptr) {
    // width * 4 bytes, 1 row, past the window's end
    std::string out = std::move(w.out());
    uint32_t width = static_cast<uint32_t>(window.size / 4 + 1024);
    memcpy(&out[2], &width, 4);  // after kOk and the format byte (little-endian hosts)
    uint32_t one = 1;
    memcpy(&out[6], &one, 4);
    wire::Writer tail;
    tail.U8(wire::kInWindow);
    tail.U32(width * 4);
    return out + tail.out();
  }
  if (hostile == kWindowUnasked) {
    if (window.map != nullptr && pixels.size() <= window.size) {
      memcpy(window.map, pixels.data(), pixels.size());
    }
    in_window = true;
  }
  if (in_window) {
    w.U8(wire::kInWindow);
    w.U32(static_cast<uint32_t>(pixels.size()));
    return std::move(w.out());
  }
  w.U8(wire::kInline);
  w.U32(static_cast<uint32_t>(pixels.size()));
  std::string out = std::move(w.out());
  out.append(pixels.data(), pixels.size());
  return out;
}

std::string FontJob(wire::Reader& r) {
  uint32_t pixel_size = 0;
  uint64_t max_pixels = 0;
  absl::string_view text;
  if (!r.U32(&pixel_size) || !r.U64(&max_pixels) || !r.Str(&text, 64 * 1024)) {
    return Rejected(absl::InvalidArgumentError("malformed font job"));
  }
  absl::StatusOr<RenderedText> t = RenderTextBytes(r.Rest(), text, pixel_size, max_pixels);
  if (!t.ok()) return Rejected(t.status());
  wire::Writer w;
  w.U8(wire::kOk);
  w.Str(t->family.substr(0, 256));
  w.Str(t->style.substr(0, 256));
  w.U32(t->width);
  w.U32(t->height);
  w.U32(static_cast<uint32_t>(t->glyphs.size()));
  for (const GlyphMetrics& g : t->glyphs) {
    w.U32(g.codepoint);
    w.U32(g.glyph_index);
    w.U32(static_cast<uint32_t>(g.advance));
    w.U32(static_cast<uint32_t>(g.bearing_x));
    w.U32(static_cast<uint32_t>(g.bearing_y));
    w.U32(g.width);
    w.U32(g.height);
  }
  w.Str(t->gray);
  return std::move(w.out());
}

}  // namespace

int ParserWorkerMain(Client& client, const WorkerConfig& config) {
  std::string job;
  Window window;
  for (;;) {
    bool eof = false;
    UniqueFd passed;
    if (!wire::ReadFrameBlocking(0, kMaxJobBytes, &job, &eof, &passed)) return eof ? 0 : 1;
    if (passed) window.Reset(std::move(passed));
    wire::Reader r(job);
    uint8_t kind = 0;
    r.U8(&kind);
    std::string answer;
    uint8_t hostile = kNone;
    if (kind == wire::kHostile && config.hostile_for_testing && r.U8(&hostile)) {
      kind = wire::kImage;
    }
    if (kind == wire::kImage) {
      answer = ImageJob(client, r, window, hostile);
    } else if (kind == wire::kFont) {
      answer = FontJob(r);
    } else if (kind == wire::kCrash && config.crash_for_testing) {
      volatile int* bad = reinterpret_cast<volatile int*>(16);
      *bad = 1;  // SIGSEGV, on purpose
    } else {
      answer = Rejected(absl::InvalidArgumentError(absl::StrCat("unknown job kind ", kind)));
    }
    if (!wire::WriteFrameBlocking(1, answer)) return 1;
  }
}

}  // namespace vow::parsers
