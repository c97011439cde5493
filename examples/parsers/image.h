// Image decoding with Debian's libraries (libpng, libjpeg-turbo, giflib, libwebp, libtiff)
// from a memory buffer, and a clean PNG encoder. Pure library code with no vow types: it
// runs INSIDE the locked worker (every input byte is hostile) and, for the differential
// tests and benchmarks, in-process. It never opens a file: the libraries read the buffer
// through memory callbacks.
//
// Limits are checked from the header, before the library allocates the pixel buffer:
// width * height above `max_pixels` is refused (ResourceExhausted) before any row is
// decoded. Thread-safe (per-call state; libtiff's handlers are per-handle).
#ifndef VOW_EXAMPLES_PARSERS_IMAGE_H_
#define VOW_EXAMPLES_PARSERS_IMAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vow::parsers {

enum class ImageFormat : uint8_t { kPng = 1, kJpeg = 2, kGif = 3, kWebp = 4, kTiff = 5 };

// "png", "jpeg", "gif", "webp", "tiff".
const char* ImageFormatName(ImageFormat format);

// The format from the magic bytes; InvalidArgument if none matches.
absl::StatusOr<ImageFormat> SniffImageFormat(absl::string_view bytes);

inline constexpr uint64_t kDefaultMaxPixels = 64u << 20;   // 64 Mpx (8192 x 8192)
inline constexpr uint64_t kDefaultMaxImageBytes = 256u << 20;
inline constexpr size_t kMaxWarnings = 32;
inline constexpr size_t kMaxWarningBytes = 512;
inline constexpr uint32_t kMaxGifFrames = 10000;

struct ImageInfo {
  ImageFormat format = ImageFormat::kPng;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t channels = 0;   // as stored in the file (e.g. 1 gray, 3 RGB, 4 RGBA/CMYK)
  uint32_t bit_depth = 0;  // bits per channel as stored
  uint32_t frames = 0;     // images in the file (GIF frames, TIFF directories)
  // What the library reported as damaged but decodable, at most kMaxWarnings, each at
  // most kMaxWarningBytes.
  std::vector<std::string> warnings;
};

struct DecodedImage {
  ImageInfo info;
  // The first frame as 8-bit RGBA, row-major, width * height * 4 bytes (empty if the
  // pixels were not asked for, or if they went to the caller's PixelBuffer).
  std::string rgba;
  // DecodeImageInto: the pixels are the first width * height * 4 bytes of the caller's
  // buffer (and `rgba` is empty).
  bool in_buffer = false;
};

// Where the caller wants the pixels: `size` writable bytes at `data`, aligned to
// kPixelBufferAlignment. A decoder writes at most width * height * 4 bytes there, and only
// after the header's limits were checked; an image that does not fit goes to
// DecodedImage::rgba instead. Every one of those bytes is written by a successful decode
// (nothing of what the buffer held before shows through).
struct PixelBuffer {
  char* data = nullptr;
  size_t size = 0;
};
inline constexpr size_t kPixelBufferAlignment = 16;

// Decodes the whole first frame (and walks every frame of a GIF), so damage anywhere in
// the data is seen. Errors: InvalidArgument "<format>: <library message>" for a file
// the library rejects; ResourceExhausted for a limit.
absl::StatusOr<DecodedImage> DecodeImageBytes(absl::string_view bytes, uint64_t max_pixels,
                                              bool keep_pixels);
// The same, with the pixels decoded straight into `out` if they fit (in_buffer), else into
// `rgba`. InvalidArgument if out.data is not aligned to kPixelBufferAlignment.
absl::StatusOr<DecodedImage> DecodeImageInto(absl::string_view bytes, uint64_t max_pixels,
                                             PixelBuffer out);

// A PNG (8-bit RGBA, no ancillary chunks) of `rgba` (width * height * 4 bytes).
absl::StatusOr<std::string> EncodePngRgba(uint32_t width, uint32_t height,
                                          absl::string_view rgba);
// A PNG of 8-bit gray pixels (width * height bytes).
absl::StatusOr<std::string> EncodePngGray(uint32_t width, uint32_t height,
                                          absl::string_view gray);

}  // namespace vow::parsers

#endif  // VOW_EXAMPLES_PARSERS_IMAGE_H_
