// Images decoded in locked workers vs the same libraries in-process, on a corpus made
// here with the libraries' own encoders; limits; hostile files; a crashing decoder.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "examples/parsers/image.h"
#include "examples/parsers/image_corpus.h"
#include "examples/parsers/parsers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::parsers {
namespace {

using ::testing::HasSubstr;

Parsers& Shared() {
  static Parsers* p = [] {
    ParserOptions options;
    options.crash_for_testing = true;
    auto created = Parsers::Create(options);
    if (!created.ok()) abort();
    return created->release();
  }();
  return *p;
}

uint32_t Crc32(absl::string_view data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

void PutBe32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

// Decodes `bytes` in a worker and in-process and expects the same answer.
ImageResult ExpectSameAsInProcess(const std::string& bytes, const std::string& what,
                                  uint64_t max_pixels = kDefaultMaxPixels) {
  ImageOptions options;
  options.max_pixels = max_pixels;
  ImageResult sandboxed = Shared().DecodeImage(bytes, options);
  absl::StatusOr<DecodedImage> local = DecodeImageBytes(bytes, max_pixels, true);
  EXPECT_NE(sandboxed.outcome, Outcome::kFailed) << what << ": " << sandboxed.error;
  if (!local.ok()) {
    EXPECT_EQ(sandboxed.outcome, Outcome::kRejected) << what;
    EXPECT_EQ(sandboxed.error, local.status().message()) << what;
    return sandboxed;
  }
  EXPECT_EQ(sandboxed.outcome, Outcome::kOk) << what << ": " << sandboxed.error;
  if (sandboxed.outcome != Outcome::kOk) return sandboxed;
  EXPECT_EQ(sandboxed.info.format, local->info.format) << what;
  EXPECT_EQ(sandboxed.info.width, local->info.width) << what;
  EXPECT_EQ(sandboxed.info.height, local->info.height) << what;
  EXPECT_EQ(sandboxed.info.channels, local->info.channels) << what;
  EXPECT_EQ(sandboxed.info.bit_depth, local->info.bit_depth) << what;
  EXPECT_EQ(sandboxed.info.frames, local->info.frames) << what;
  EXPECT_EQ(sandboxed.info.warnings, local->info.warnings) << what;
  EXPECT_TRUE(sandboxed.rgba == local->rgba) << what << ": pixels differ";
  return sandboxed;
}

struct Case {
  ImageFormat format;
  uint32_t w, h;
};

TEST(ImageTest, CorpusDecodesLikeInProcessAndLosslessFormatsGiveTheSourcePixels) {
  const Case cases[] = {
      {ImageFormat::kPng, 1, 1},      {ImageFormat::kPng, 37, 23},
      {ImageFormat::kPng, 640, 480},  {ImageFormat::kPng, 4000, 4000},
      {ImageFormat::kJpeg, 1, 1},     {ImageFormat::kJpeg, 37, 23},
      {ImageFormat::kJpeg, 640, 480}, {ImageFormat::kJpeg, 4000, 4000},
      {ImageFormat::kGif, 1, 1},      {ImageFormat::kGif, 37, 23},
      {ImageFormat::kGif, 640, 480},  {ImageFormat::kGif, 1500, 1000},
      {ImageFormat::kWebp, 1, 1},     {ImageFormat::kWebp, 37, 23},
      {ImageFormat::kWebp, 640, 480}, {ImageFormat::kWebp, 1500, 1000},
      {ImageFormat::kTiff, 1, 1},     {ImageFormat::kTiff, 37, 23},
      {ImageFormat::kTiff, 640, 480}, {ImageFormat::kTiff, 1500, 1000},
  };
  for (const Case& c : cases) {
    bool gif = c.format == ImageFormat::kGif;
    // (libtiff's RGBA reader premultiplies unassociated alpha: TIFF gets opaque pixels.)
    bool alpha = c.format == ImageFormat::kPng;
    std::string rgba = TestPattern(c.w, c.h, 16, alpha, gif);
    // WebP lossless (quality 101) for the small sizes, lossy for the big one.
    int quality = c.format == ImageFormat::kWebp && c.w < 1000 ? 101 : 85;
    absl::StatusOr<std::string> file = EncodeTestImage(c.format, c.w, c.h, rgba, quality);
    ASSERT_TRUE(file.ok()) << file.status();
    std::string what = absl::StrCat(ImageFormatName(c.format), " ", c.w, "x", c.h);
    ImageResult r = ExpectSameAsInProcess(*file, what);
    ASSERT_EQ(r.outcome, Outcome::kOk) << what << ": " << r.error;
    EXPECT_EQ(r.info.format, c.format);
    EXPECT_EQ(r.info.width, c.w);
    EXPECT_EQ(r.info.height, c.h);
    bool lossless = c.format != ImageFormat::kJpeg && quality == 101 ||
                    c.format == ImageFormat::kPng || gif || c.format == ImageFormat::kTiff;
    if (lossless) EXPECT_TRUE(r.rgba == rgba) << what << ": not the source pixels";
  }
}

// DecodeImageInto (how a worker decodes straight into its pixel window): the same pixels
// as DecodeImageBytes, every byte of them written (a buffer full of 0xA5 shows nothing
// through), not one byte past width * height * 4, and a buffer too small left untouched.
constexpr char kFill = static_cast<char>(0xA5);
constexpr size_t kGuard = 4096;

void ExpectIntoLikeBytes(const std::string& file, const std::string& what) {
  absl::StatusOr<DecodedImage> want = DecodeImageBytes(file, kDefaultMaxPixels, true);
  if (!want.ok()) {
    char probe[64] __attribute__((aligned(16)));
    absl::StatusOr<DecodedImage> got = DecodeImageInto(file, kDefaultMaxPixels, {probe, 64});
    EXPECT_EQ(got.status(), want.status()) << what;
    return;
  }
  size_t n = want->rgba.size();
  ASSERT_EQ(n, static_cast<size_t>(want->info.width) * want->info.height * 4) << what;
  for (size_t size : {n + kGuard, n, n - 1}) {
    std::unique_ptr<char, decltype(&free)> buffer(
        static_cast<char*>(aligned_alloc(kPixelBufferAlignment, (n + kGuard + 15) / 16 * 16)),
        &free);
    memset(buffer.get(), kFill, n + kGuard);
    absl::StatusOr<DecodedImage> got = DecodeImageInto(file, kDefaultMaxPixels, {buffer.get(), size});
    ASSERT_TRUE(got.ok()) << what << ": " << got.status();
    EXPECT_EQ(got->info.warnings, want->info.warnings) << what;
    absl::string_view past(buffer.get() + n, kGuard);
    EXPECT_EQ(past.find_first_not_of(kFill), absl::string_view::npos)
        << what << ", buffer of " << size << ": written past width * height * 4";
    if (size >= n) {
      EXPECT_TRUE(got->in_buffer) << what;
      EXPECT_TRUE(got->rgba.empty()) << what;
      EXPECT_TRUE(absl::string_view(buffer.get(), n) == want->rgba)
          << what << ", buffer of " << size << ": pixels differ (or old bytes show through)";
    } else {
      EXPECT_FALSE(got->in_buffer) << what;
      EXPECT_TRUE(got->rgba == want->rgba) << what;
      EXPECT_EQ(absl::string_view(buffer.get(), n).find_first_not_of(kFill),
                absl::string_view::npos)
          << what << ": a buffer too small was written";
    }
  }
}

TEST(ImageTest, DecodeIntoABufferGivesTheSamePixelsAndWritesNothingElse) {
  std::string rgba = TestPattern(200, 150, 64, false, true);
  for (ImageFormat f : {ImageFormat::kPng, ImageFormat::kJpeg, ImageFormat::kGif,
                        ImageFormat::kWebp, ImageFormat::kTiff}) {
    std::string name = ImageFormatName(f);
    ExpectIntoLikeBytes(*EncodeTestImage(f, 37, 23, TestPattern(37, 23, 16, false, true), 101),
                        name + " 37x23");
    std::string file = *EncodeTestImage(f, 200, 150, rgba, 80);
    ExpectIntoLikeBytes(file, name + " 200x150");
    for (size_t cut : {file.size() / 2, file.size() - 1}) {
      ExpectIntoLikeBytes(file.substr(0, cut), absl::StrCat(name, " cut at ", cut));
    }
    for (size_t at = 8; at < file.size(); at += file.size() / 17 + 1) {
      std::string broken = file;
      broken[at] ^= 0x5a;
      ExpectIntoLikeBytes(broken, absl::StrCat(name, " byte ", at, " flipped"));
    }
  }
  // A GIF whose logical screen is larger than its frame: the pixels no frame covers are 0.
  std::string gif = *EncodeTestImage(ImageFormat::kGif, 50, 40, TestPattern(50, 40, 8, false, true));
  gif[6] = 80;  // screen 80 x 60 (little-endian u16s)
  gif[8] = 60;
  ExpectIntoLikeBytes(gif, "gif with a larger screen");
}

TEST(ImageTest, DecodeIntoRefusesAMisalignedBuffer) {
  std::string png = *EncodeTestImage(ImageFormat::kPng, 2, 2, TestPattern(2, 2, 0, 0, 0));
  char buffer[64] __attribute__((aligned(16)));
  absl::StatusOr<DecodedImage> r = DecodeImageInto(png, kDefaultMaxPixels, {buffer + 4, 32});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("is not aligned to 16 bytes"));
}

// A TIFF claiming (2^32 - 1) x (2^30 + 1) under a limit of 2^64 pixels: width * height * 4
// bytes would wrap to about 2^34; it is refused before anything is allocated or written.
TEST(ImageTest, PixelBytesThatOverflowAreRefused) {
  std::string tiff = *EncodeTestImage(ImageFormat::kTiff, 2, 2, TestPattern(2, 2, 0, 0, 0));
  ASSERT_EQ(tiff.substr(0, 4), absl::string_view("II*\0", 4));
  auto u16 = [&](size_t at) {
    return static_cast<unsigned char>(tiff[at]) | static_cast<unsigned char>(tiff[at + 1]) << 8;
  };
  auto u32 = [&](size_t at) { return u16(at) | static_cast<uint32_t>(u16(at + 2)) << 16; };
  size_t ifd = u32(4);
  int patched = 0;
  for (int k = 0, n = u16(ifd); k < n; ++k) {
    size_t e = ifd + 2 + 12 * k;
    // ImageWidth 2^32 - 1; ImageLength and RowsPerStrip 2^30 + 1 (one strip, as before);
    // 1 bit per sample, so that libtiff's own strip size (2^61 bytes) does not overflow.
    const char wide[10] = {4, 0, 1, 0, 0, 0, -1, -1, -1, -1};  // LONG
    const char tall[10] = {4, 0, 1, 0, 0, 0, 1, 0, 0, 0x40};
    const char one_bit[10] = {3, 0, 1, 0, 0, 0, 1, 0, 0, 0};  // SHORT
    switch (u16(e)) {
      case 256: tiff.replace(e + 2, 10, wide, 10); break;
      case 257: case 278: tiff.replace(e + 2, 10, tall, 10); break;
      case 258: tiff.replace(e + 2, 10, one_bit, 10); break;
      default: continue;
    }
    ++patched;
  }
  ASSERT_EQ(patched, 4);
  char buffer[64] __attribute__((aligned(16)));
  memset(buffer, kFill, sizeof(buffer));
  for (PixelBuffer out : {PixelBuffer{}, PixelBuffer{buffer, sizeof(buffer)}}) {
    absl::StatusOr<DecodedImage> r = DecodeImageInto(tiff, UINT64_MAX, out);
    EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("4294967295x1073741825 pixels do not fit"));
  }
  EXPECT_EQ(absl::string_view(buffer, sizeof(buffer)).find_first_not_of(kFill),
            absl::string_view::npos);
}

TEST(ImageTest, JsonHasEveryField) {
  std::string rgba = TestPattern(3, 2, 0, false, false);
  ImageResult r = Shared().DecodeImage(*EncodeTestImage(ImageFormat::kTiff, 3, 2, rgba, 90, 3));
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.ToJson(),
            "{\"format\": \"tiff\", \"width\": 3, \"height\": 2, \"channels\": 4, "
            "\"bit_depth\": 8, \"frames\": 3, \"warnings\": []}");
}

// A header that claims 100000 x 100000: refused from the header, in every format whose
// header we can patch, with a worker memory limit far below what malloc would need.
TEST(ImageTest, HugeHeadersAreRefusedBeforeTheLibraryAllocates) {
  std::string rgba = TestPattern(8, 8, 0, false, true);
  std::string png = *EncodeTestImage(ImageFormat::kPng, 8, 8, rgba);
  PutBe32(&png, 16, 100000);  // IHDR width, height
  PutBe32(&png, 20, 100000);
  PutBe32(&png, 29, Crc32(absl::string_view(png).substr(12, 17)));
  std::string jpeg = *EncodeTestImage(ImageFormat::kJpeg, 8, 8, rgba);
  size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  jpeg[sof + 5] = jpeg[sof + 7] = static_cast<char>(0xea);  // 60000 x 60000 (libjpeg's
  jpeg[sof + 6] = jpeg[sof + 8] = static_cast<char>(0x60);  // own limit is 65500)
  std::string gif = *EncodeTestImage(ImageFormat::kGif, 8, 8, rgba);
  gif[6] = gif[7] = gif[8] = gif[9] = static_cast<char>(0xff);  // screen 65535 x 65535
  for (const std::string& file : {png, jpeg, gif}) {
    ImageResult r = Shared().DecodeImage(file);
    EXPECT_EQ(r.outcome, Outcome::kRejected) << r.error;
    EXPECT_THAT(r.error, HasSubstr("exceeds the limit of 67108864 (checked from the header)"));
    absl::StatusOr<DecodedImage> local = DecodeImageBytes(file, kDefaultMaxPixels, true);
    EXPECT_TRUE(absl::IsResourceExhausted(local.status())) << local.status();
  }
  // The decompression bomb: 4000x4000 of one color is < 300 KB of PNG, 64 MB of pixels.
  std::string flat(4000ull * 4000 * 4, '\0');
  std::string bomb = *EncodeTestImage(ImageFormat::kPng, 4000, 4000, flat);
  EXPECT_LT(bomb.size(), 300u * 1024);
  ImageOptions small;
  small.max_pixels = 1000000;
  ImageResult r = Shared().DecodeImage(bomb, small);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.error, HasSubstr("4000x4000 = 16000000 pixels exceeds the limit of 1000000"));
  ImageOptions tiny_bytes;
  tiny_bytes.max_bytes = 1000;
  r = Shared().DecodeImage(bomb, tiny_bytes);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.error, HasSubstr("exceeds the limit of 1000 bytes"));
}

TEST(ImageTest, DamagedFilesGetTheLibrarysVerdictInTheWorkerToo) {
  std::string rgba = TestPattern(200, 150, 64, false, true);
  for (ImageFormat f : {ImageFormat::kPng, ImageFormat::kJpeg, ImageFormat::kGif,
                        ImageFormat::kWebp, ImageFormat::kTiff}) {
    std::string file = *EncodeTestImage(f, 200, 150, rgba, 80);
    std::string name = ImageFormatName(f);
    for (size_t cut : {file.size() / 2, file.size() - 1, size_t{20}, size_t{3}}) {
      ExpectSameAsInProcess(file.substr(0, cut), absl::StrCat(name, " cut at ", cut));
    }
    // Flipped bytes across the file (broken lengths, CRCs, codes).
    for (size_t at = 8; at < file.size(); at += file.size() / 17 + 1) {
      std::string broken = file;
      broken[at] ^= 0x5a;
      ExpectSameAsInProcess(broken, absl::StrCat(name, " byte ", at, " flipped"));
    }
  }
  // A broken IDAT CRC is an error libpng names.
  std::string png = *EncodeTestImage(ImageFormat::kPng, 200, 150, rgba);
  size_t idat = png.find("IDAT");
  uint32_t len = (static_cast<unsigned char>(png[idat - 4]) << 24) |
                 (static_cast<unsigned char>(png[idat - 3]) << 16) |
                 (static_cast<unsigned char>(png[idat - 2]) << 8) |
                 static_cast<unsigned char>(png[idat - 1]);
  png[idat + 4 + len] ^= 1;
  ImageResult r = Shared().DecodeImage(png);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.error, HasSubstr("CRC error"));
  // A truncated JPEG decodes with the library's warning.
  std::string jpeg = *EncodeTestImage(ImageFormat::kJpeg, 200, 150, rgba, 80);
  r = Shared().DecodeImage(jpeg.substr(0, jpeg.size() / 2));
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_THAT(r.info.warnings, ::testing::Contains(HasSubstr("Premature end of JPEG file")));
  r = Shared().DecodeImage("not an image at all");
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.error, HasSubstr("no known signature"));
}

TEST(ImageTest, ToPngIsCreatedByTheBrokerAndHoldsTheDecodedPixels) {
  std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/topng");
  std::filesystem::create_directories(dir);
  std::string out = dir + "/out.png";
  std::string rgba = TestPattern(50, 40, 8, false, true);
  std::string gif = *EncodeTestImage(ImageFormat::kGif, 50, 40, rgba);
  ImageOptions options;
  ImageResult r = Shared().DecodeImageToPng(gif, options, out);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  std::ifstream in(out, std::ios::binary);
  std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  absl::StatusOr<DecodedImage> back = DecodeImageBytes(written, kDefaultMaxPixels, true);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->info.format, ImageFormat::kPng);
  EXPECT_TRUE(back->rgba == rgba);
  // The broker refuses to overwrite (O_EXCL), and the audit log shows who created it.
  r = Shared().DecodeImageToPng(gif, options, out);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.error, HasSubstr("the broker refused to create"));
  bool audited = false;
  for (const AuditEntry& e : Shared().broker().audit().Entries()) {
    if (e.allowed && e.request.find(out) != std::string::npos &&
        e.request.find("O_CREAT") != std::string::npos) {
      audited = true;
    }
  }
  EXPECT_TRUE(audited);
}

TEST(ImageTest, ACrashingDecoderIsAResultAndTheNextCallGetsAFreshWorker) {
  Parsers& p = Shared();
  uint64_t failed = p.failed_workers();
  ImageResult crash = p.CrashWorkerForTesting();
  EXPECT_EQ(crash.outcome, Outcome::kFailed);
  EXPECT_EQ(crash.error, "crashed: SIGSEGV in worker");
  EXPECT_EQ(p.failed_workers(), failed + 1);
  std::string rgba = TestPattern(5, 5, 0, false, false);
  for (int i = 0; i < 4; ++i) {
    ImageResult r = p.DecodeImage(*EncodeTestImage(ImageFormat::kPng, 5, 5, rgba));
    EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  }
}

TEST(ImageTest, TheCrashJobIsRefusedByWorkersWithoutTheTestHook) {
  auto p = Parsers::Create(ParserOptions{.pool_size = 1});
  ASSERT_TRUE(p.ok()) << p.status();
  ImageResult r = (*p)->CrashWorkerForTesting();
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.error, HasSubstr("unknown job kind 238"));
}

// The pixel window: pixels that fit come back through it, larger ones inline, and a
// hostile worker can neither shrink it under the caller (sealed) nor make the caller read
// past it or read a window it did not ask for.
std::unique_ptr<Parsers> HostilePool(uint64_t window_bytes) {
  ParserOptions options;
  options.pool_size = 1;
  options.window_bytes = window_bytes;
  options.hostile_for_testing = true;
  auto p = Parsers::Create(options);
  if (!p.ok()) abort();
  return *std::move(p);
}

TEST(ImageTest, PixelsComeThroughTheWindowOrInlineWhenLarger) {
  std::unique_ptr<Parsers> p = HostilePool(1 << 20);
  for (uint32_t side : {16u, 400u, 700u}) {  // 1 KiB and 625 KiB fit; 1.9 MiB does not
    std::string rgba = TestPattern(side, side, 64, true, false);
    std::string png = *EncodeTestImage(ImageFormat::kPng, side, side, rgba);
    for (int i = 0; i < 2; ++i) {  // the second time the worker already holds the window
      ImageResult r = p->DecodeImage(png);
      ASSERT_EQ(r.outcome, Outcome::kOk) << side << ": " << r.error;
      EXPECT_TRUE(r.rgba == rgba) << side << ": pixels differ";
    }
  }
}

TEST(ImageTest, AWorkerCannotShrinkThePixelWindowUnderTheCaller) {
  std::unique_ptr<Parsers> p = HostilePool(1 << 20);
  std::string rgba = TestPattern(200, 150, 64, true, false);
  std::string png = *EncodeTestImage(ImageFormat::kPng, 200, 150, rgba);
  // Without the seal the worker's ftruncate(0) would make the caller's copy a SIGBUS.
  ImageResult r = p->HostileDecodeForTesting(1, png);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_TRUE(r.rgba == rgba);
}

TEST(ImageTest, PixelsClaimedPastTheWindowOrInAWindowNotAskedForAreRefused) {
  std::unique_ptr<Parsers> p = HostilePool(1 << 20);
  std::string png = *EncodeTestImage(ImageFormat::kPng, 20, 10, TestPattern(20, 10, 0, 0, 0));
  ImageOptions options;
  options.max_pixels = 1ull << 30;  // so that only the window's size stands in the way
  uint64_t failed = p->failed_workers();
  ImageResult past = p->HostileDecodeForTesting(2, png, options);
  EXPECT_EQ(past.outcome, Outcome::kFailed);
  EXPECT_THAT(past.error, HasSubstr("malformed or out of bounds"));
  ImageResult unasked = p->HostileDecodeForTesting(3, png, options);
  EXPECT_EQ(unasked.outcome, Outcome::kFailed);
  EXPECT_THAT(unasked.error, HasSubstr("malformed or out of bounds"));
  EXPECT_EQ(p->failed_workers(), failed) << "not a crash: a bad answer";
  // The worker that answered so is replaced; the next call works.
  ImageResult next = p->DecodeImage(png);
  EXPECT_EQ(next.outcome, Outcome::kOk) << next.error;
}

TEST(ImageTest, TheHostileJobIsRefusedByWorkersWithoutTheTestHook) {
  auto p = Parsers::Create(ParserOptions{.pool_size = 1});
  ASSERT_TRUE(p.ok()) << p.status();
  std::string png = *EncodeTestImage(ImageFormat::kPng, 2, 2, TestPattern(2, 2, 0, 0, 0));
  ImageResult r = (*p)->HostileDecodeForTesting(1, png);
  EXPECT_EQ(r.outcome, Outcome::kRejected);
  EXPECT_THAT(r.error, HasSubstr("unknown job kind 237"));
}

}  // namespace
}  // namespace vow::parsers
