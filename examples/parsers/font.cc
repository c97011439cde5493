#include "examples/parsers/font.h"

#include <algorithm>
#include <memory>

#include <ft2build.h>
#include FT_FREETYPE_H

#include "absl/strings/str_cat.h"

namespace vow::parsers {
namespace {

absl::Status FtError(absl::string_view what, FT_Error err) {
  const char* msg = FT_Error_String(err);
  return absl::InvalidArgumentError(
      absl::StrCat("freetype: ", what, ": ", msg != nullptr ? msg : "error ", err));
}

std::vector<uint32_t> DecodeUtf8(absl::string_view s) {
  std::vector<uint32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      unsigned char cc = s[i + k];
      if ((cc & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (ok && (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    out.push_back(ok ? cp : 0xfffd);
    i += ok ? len : 1;
  }
  return out;
}

}  // namespace

absl::StatusOr<RenderedText> RenderTextBytes(absl::string_view font, absl::string_view text,
                                             uint32_t pixel_size, uint64_t max_pixels) {
  if (pixel_size == 0 || pixel_size > kMaxPixelSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("pixel size ", pixel_size, " is outside 1..", kMaxPixelSize));
  }
  std::vector<uint32_t> cps = DecodeUtf8(text);
  if (cps.size() > kMaxGlyphs) {
    return absl::ResourceExhaustedError(
        absl::StrCat("text of ", cps.size(), " code points exceeds ", kMaxGlyphs));
  }
  FT_Library lib = nullptr;
  FT_Error err = FT_Init_FreeType(&lib);
  if (err) return FtError("init", err);
  std::unique_ptr<FT_LibraryRec_, FT_Error (*)(FT_Library)> lib_closer(lib, FT_Done_FreeType);
  FT_Face face = nullptr;
  err = FT_New_Memory_Face(lib, reinterpret_cast<const FT_Byte*>(font.data()),
                           static_cast<FT_Long>(font.size()), 0, &face);
  if (err) return FtError("opening the font", err);
  err = FT_Set_Pixel_Sizes(face, 0, pixel_size);
  if (err) return FtError("setting the size", err);
  RenderedText out;
  out.family = face->family_name != nullptr ? face->family_name : "";
  out.style = face->style_name != nullptr ? face->style_name : "";
  // Pass 1: metrics, and the line's bounding box.
  int64_t pen = 0, min_x = 0, max_x = 0;
  int64_t ascent = std::max<int64_t>(face->size->metrics.ascender >> 6, 1);
  int64_t descent = std::max<int64_t>(-(face->size->metrics.descender >> 6), 0);
  for (uint32_t cp : cps) {
    GlyphMetrics g;
    g.codepoint = cp;
    g.glyph_index = FT_Get_Char_Index(face, cp);
    err = FT_Load_Glyph(face, g.glyph_index, FT_LOAD_DEFAULT);
    if (err) return FtError(absl::StrCat("loading the glyph of U+", absl::Hex(cp)), err);
    const FT_GlyphSlot s = face->glyph;
    g.advance = static_cast<int32_t>(s->advance.x >> 6);
    g.bearing_x = static_cast<int32_t>(s->metrics.horiBearingX >> 6);
    g.bearing_y = static_cast<int32_t>(s->metrics.horiBearingY >> 6);
    g.width = static_cast<uint32_t>(std::clamp<FT_Pos>(s->metrics.width >> 6, 0, 1 << 20));
    g.height = static_cast<uint32_t>(std::clamp<FT_Pos>(s->metrics.height >> 6, 0, 1 << 20));
    min_x = std::min<int64_t>(min_x, pen + g.bearing_x);
    max_x = std::max<int64_t>(max_x, pen + std::max<int64_t>(g.advance, g.bearing_x + g.width));
    ascent = std::max<int64_t>(ascent, g.bearing_y);
    descent = std::max<int64_t>(descent, static_cast<int64_t>(g.height) - g.bearing_y);
    pen += g.advance;
    if (pen > (1 << 24) || pen < -(1 << 24) || ascent > (1 << 20) || descent > (1 << 20)) {
      return absl::ResourceExhaustedError("text metrics out of range");
    }
    out.glyphs.push_back(g);
  }
  uint64_t w = static_cast<uint64_t>(std::max<int64_t>(max_x - min_x, 1));
  uint64_t h = static_cast<uint64_t>(ascent + descent);
  if (w * h > max_pixels) {
    return absl::ResourceExhaustedError(absl::StrCat("a canvas of ", w, "x", h,
                                                     " exceeds the limit of ", max_pixels,
                                                     " pixels"));
  }
  out.width = static_cast<uint32_t>(w);
  out.height = static_cast<uint32_t>(h);
  out.gray.assign(w * h, '\0');
  // Pass 2: render and blit (clipped to the canvas).
  pen = -min_x;
  for (const GlyphMetrics& g : out.glyphs) {
    err = FT_Load_Glyph(face, g.glyph_index, FT_LOAD_RENDER);
    if (err) return FtError(absl::StrCat("rendering U+", absl::Hex(g.codepoint)), err);
    const FT_Bitmap& bm = face->glyph->bitmap;
    int64_t x0 = pen + face->glyph->bitmap_left;
    int64_t y0 = ascent - face->glyph->bitmap_top;
    if (bm.pixel_mode == FT_PIXEL_MODE_GRAY && bm.pitch >= static_cast<int>(bm.width)) {
      for (unsigned r = 0; r < bm.rows; ++r) {
        int64_t y = y0 + r;
        if (y < 0 || y >= static_cast<int64_t>(h)) continue;
        for (unsigned c = 0; c < bm.width; ++c) {
          int64_t x = x0 + c;
          if (x < 0 || x >= static_cast<int64_t>(w)) continue;
          unsigned char v = bm.buffer[static_cast<int64_t>(r) * bm.pitch + c];
          char& dst = out.gray[y * w + x];
          dst = static_cast<char>(std::max<unsigned char>(static_cast<unsigned char>(dst), v));
        }
      }
    }
    pen += g.advance;
  }
  FT_Done_Face(face);
  return out;
}

}  // namespace vow::parsers
