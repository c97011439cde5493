// libFuzzer target for one image decode path (the format is fixed at build time by
// VOW_FUZZ_FORMAT): the bytes get that format's signature and go through
// DecodeImageBytes, as they would in a worker. Built with --config=fuzz (see README).
#include <cstddef>
#include <cstdint>
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
  (void)vow::parsers::DecodeImageBytes(bytes, 1 << 20, true);  // 1 Mpx: keep runs fast
  return 0;
}
