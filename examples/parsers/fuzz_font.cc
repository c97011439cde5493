// libFuzzer target for the FreeType path: the input is the font; a fixed text.
#include <cstddef>
#include <cstdint>

#include "examples/parsers/font.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)vow::parsers::RenderTextBytes(
      absl::string_view(reinterpret_cast<const char*>(data), size), "Ag\xc3\xa9", 24, 1 << 20);
  return 0;
}
