// Text rendered by FreeType in a locked worker vs in-process; hostile fonts and limits.
#include <fstream>
#include <iterator>
#include <string>

#include "examples/parsers/font.h"
#include "examples/parsers/image.h"
#include "examples/parsers/parsers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::parsers {
namespace {

using ::testing::HasSubstr;

constexpr char kFont[] = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";  // fonts-dejavu-core

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Parsers& Shared() {
  static Parsers* p = [] {
    auto created = Parsers::Create(ParserOptions{.pool_size = 1});
    if (!created.ok()) abort();
    return created->release();
  }();
  return *p;
}

TEST(FontTest, MetricsAndPixelsMatchInProcess) {
  std::string font = ReadAll(kFont);
  ASSERT_FALSE(font.empty());
  const std::string text = "Hello, vow! \xc3\xa9\xe2\x82\xac";  // é €
  FontResult r = Shared().RenderText(font, text, {.pixel_size = 40});
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  absl::StatusOr<RenderedText> local = RenderTextBytes(font, text, 40, 16u << 20);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(r.text.family, "DejaVu Sans");
  EXPECT_EQ(r.text.width, local->width);
  EXPECT_EQ(r.text.height, local->height);
  ASSERT_EQ(r.text.glyphs.size(), 14u);
  for (size_t i = 0; i < r.text.glyphs.size(); ++i) {
    const GlyphMetrics &a = r.text.glyphs[i], &b = local->glyphs[i];
    EXPECT_EQ(a.codepoint, b.codepoint);
    EXPECT_EQ(a.glyph_index, b.glyph_index);
    EXPECT_NE(a.glyph_index, 0u) << "U+" << std::hex << a.codepoint;
    EXPECT_EQ(a.advance, b.advance);
    EXPECT_EQ(a.bearing_x, b.bearing_x);
    EXPECT_EQ(a.bearing_y, b.bearing_y);
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.height, b.height);
  }
  EXPECT_EQ(r.text.glyphs.back().codepoint, 0x20acu);
  EXPECT_TRUE(r.text.gray == local->gray);
  EXPECT_NE(r.text.gray.find_first_not_of('\0'), std::string::npos) << "nothing was drawn";
  // The PNG holds exactly those pixels.
  absl::StatusOr<DecodedImage> png = DecodeImageBytes(r.png, kDefaultMaxPixels, true);
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->info.width, r.text.width);
  EXPECT_EQ(png->rgba[4 * 0], r.text.gray[0]);
  EXPECT_THAT(r.ToJson(), HasSubstr("\"family\": \"DejaVu Sans\""));
}

TEST(FontTest, HostileFontsAndLimits) {
  std::string font = ReadAll(kFont);
  for (size_t cut : {size_t{0}, size_t{12}, font.size() / 3}) {
    FontResult r = Shared().RenderText(font.substr(0, cut), "abc");
    EXPECT_EQ(r.outcome, Outcome::kRejected) << cut;
    EXPECT_THAT(r.error, HasSubstr("freetype: "));
  }
  for (size_t at = 0; at < 2000; at += 97) {  // broken table directory and headers
    std::string broken = font;
    broken[at] ^= 0xff;
    FontResult r = Shared().RenderText(broken, "Wg");
    EXPECT_NE(r.outcome, Outcome::kFailed) << at << ": " << r.error;
    absl::StatusOr<RenderedText> local = RenderTextBytes(broken, "Wg", 32, 16u << 20);
    EXPECT_EQ(r.outcome == Outcome::kOk, local.ok()) << at;
  }
  FontResult big = Shared().RenderText(font, std::string(200, 'W'),
                                       {.pixel_size = 1000, .max_pixels = 1 << 20});
  EXPECT_EQ(big.outcome, Outcome::kRejected);
  EXPECT_THAT(big.error, HasSubstr("exceeds the limit of 1048576 pixels"));
  FontResult many = Shared().RenderText(font, std::string(5000, 'x'));
  EXPECT_EQ(many.outcome, Outcome::kRejected);
  EXPECT_THAT(many.error, HasSubstr("exceeds 4096"));
}

}  // namespace
}  // namespace vow::parsers
