#include "examples/parsers/worker.h"

#include <errno.h>
#include <fcntl.h>
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

std::string ImageJob(Client& client, wire::Reader& r) {
  uint64_t max_pixels = 0;
  uint8_t flags = 0;
  absl::string_view out_path;
  if (!r.U64(&max_pixels) || !r.U8(&flags) || !r.Str(&out_path, 4096)) {
    return Rejected(absl::InvalidArgumentError("malformed image job"));
  }
  bool write_png = (flags & wire::kWritePng) != 0;
  absl::StatusOr<DecodedImage> image =
      DecodeImageBytes(r.Rest(), max_pixels, write_png || (flags & wire::kKeepPixels) != 0);
  if (!image.ok()) return Rejected(image.status());
  if (write_png) {
    absl::StatusOr<std::string> png =
        EncodePngRgba(image->info.width, image->info.height, image->rgba);
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
    if ((flags & wire::kKeepPixels) == 0) image->rgba.clear();
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
  w.U32(static_cast<uint32_t>(image->rgba.size()));
  std::string out = std::move(w.out());
  out += image->rgba;
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
  for (;;) {
    bool eof = false;
    if (!wire::ReadFrameBlocking(0, kMaxJobBytes, &job, &eof)) return eof ? 0 : 1;
    wire::Reader r(job);
    uint8_t kind = 0;
    r.U8(&kind);
    std::string answer;
    if (kind == wire::kImage) {
      answer = ImageJob(client, r);
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
