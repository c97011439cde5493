// libFuzzer target for one image decode path (the format is fixed at build time by
// VOW_FUZZ_FORMAT): the bytes get that format's signature and are decoded as in a pooled
// worker, straight into a pixel buffer (DecodeImageInto; images too large for it go to a
// string); a byte written past width * height * 4 aborts. Built with --config=fuzz (see
// README).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "examples/parsers/image.h"

namespace {
const char* Signature() {
  switch (VOW_FUZZ_FORMAT) {
    case 1: return "\x89PNG\r\n\x1a\n";
    case 2: return "\xff\xd8\xff";
    case 3: return "GIF89a";
    case 4: return "RIFF";
    default: return "II*";  // + NUL: the terminator
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string sig = Signature();
  if (VOW_FUZZ_FORMAT == 5) sig.push_back('\0');
  std::string bytes = sig + std::string(reinterpret_cast<const char*>(data), size);
  if (VOW_FUZZ_FORMAT == 4 && bytes.size() >= 12) bytes.replace(8, 4, "WEBP");
  // 1 Mpx: keep runs fast. The buffer (a heap block of exactly kBuffer bytes, so ASan sees
  // writes past it) holds 256 Kpx; what lies past the pixels must stay as it was.
  constexpr size_t kBuffer = 1 << 20;
  static char* buffer =
      static_cast<char*>(aligned_alloc(vow::parsers::kPixelBufferAlignment, kBuffer));
  memset(buffer, 0xA5, kBuffer);
  auto image = vow::parsers::DecodeImageInto(bytes, 1 << 20, {buffer, kBuffer});
  if (image.ok() && image->in_buffer) {
    for (size_t i = static_cast<size_t>(image->info.width) * image->info.height * 4; i < kBuffer;
         ++i) {
      if (buffer[i] != static_cast<char>(0xA5)) abort();
    }
  }
  return 0;
}
