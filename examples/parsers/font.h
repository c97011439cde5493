// Text rendering with FreeType from a font in memory. Pure library code: runs INSIDE the
// locked worker (the font bytes are hostile) and in-process for the differential tests.
// Never opens a file (FT_New_Memory_Face). Thread-safe (a library instance per call).
#ifndef VOW_EXAMPLES_PARSERS_FONT_H_
#define VOW_EXAMPLES_PARSERS_FONT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vow::parsers {

inline constexpr size_t kMaxGlyphs = 4096;
inline constexpr uint32_t kMaxPixelSize = 1024;

struct GlyphMetrics {
  uint32_t codepoint = 0;
  uint32_t glyph_index = 0;  // 0: the font has no glyph for it
  int32_t advance = 0;       // pixels
  int32_t bearing_x = 0;
  int32_t bearing_y = 0;
  uint32_t width = 0;
  uint32_t height = 0;
};

struct RenderedText {
  std::string family;
  std::string style;
  std::vector<GlyphMetrics> glyphs;
  uint32_t width = 0;
  uint32_t height = 0;
  std::string gray;  // width * height, 8-bit coverage, row-major
};

// Lays `text` (UTF-8; invalid bytes become U+FFFD) out on one line at `pixel_size` and
// renders it. ResourceExhausted when the canvas would exceed `max_pixels` or the text
// has more than kMaxGlyphs code points (checked before the canvas is allocated);
// InvalidArgument "freetype: ..." for a font FreeType rejects.
absl::StatusOr<RenderedText> RenderTextBytes(absl::string_view font, absl::string_view text,
                                             uint32_t pixel_size, uint64_t max_pixels);

}  // namespace vow::parsers

#endif  // VOW_EXAMPLES_PARSERS_FONT_H_
