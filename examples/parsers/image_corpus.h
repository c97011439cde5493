// Test and benchmark images made with the libraries' own encoders (nothing checked in).
// Trusted, test-only code: runs in the test or benchmark process, never in a worker.
#ifndef VOW_EXAMPLES_PARSERS_IMAGE_CORPUS_H_
#define VOW_EXAMPLES_PARSERS_IMAGE_CORPUS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "examples/parsers/image.h"

namespace vow::parsers {

// A deterministic RGBA test picture: gradients plus `noise` (0-255) pseudo-random bits
// (more noise, bigger files). Alpha is 255 unless `alpha`. For GIF the colors are
// snapped to a 6x6x6 cube so the palette holds them exactly.
std::string TestPattern(uint32_t w, uint32_t h, int noise, bool alpha, bool gif_palette);

// Encodes `rgba` (w*h*4) as `format`. JPEG and lossy WebP use `quality`; the others are
// lossless (PNG and TIFF keep alpha; GIF keeps the cube colors; WebP lossless if quality
// is 101). TIFF gets `frames` directories (copies of the picture).
absl::StatusOr<std::string> EncodeTestImage(ImageFormat format, uint32_t w, uint32_t h,
                                            const std::string& rgba, int quality = 90,
                                            int frames = 1);

}  // namespace vow::parsers

#endif  // VOW_EXAMPLES_PARSERS_IMAGE_CORPUS_H_
