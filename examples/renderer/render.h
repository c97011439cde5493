// Document rendering with Debian's libraries: Markdown -> sanitized HTML (cmark with
// CMARK_OPT_SAFE), SVG -> pixels (librsvg + cairo), PDF page -> pixels (poppler-cpp),
// raster images -> pixels (examples/parsers' decoders). Pure library code with no vow
// types: it runs INSIDE a locked renderer worker, where every input byte is hostile, and
// in-process for tests. It never opens a path on its own behalf; what the libraries open
// by themselves (fontconfig's configuration and fonts, poppler's data) goes through the
// broker's rules when run in a worker.
//
// Pixel limits are checked before a surface is allocated: a document whose size exceeds
// `max_pixels` is refused (ResourceExhausted).
#ifndef VOW_EXAMPLES_RENDERER_RENDER_H_
#define VOW_EXAMPLES_RENDERER_RENDER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vow::renderer {

enum class DocType : uint8_t { kMarkdown = 1, kSvg = 2, kPdf = 3, kImage = 4 };

// From the file name's extension (.md .markdown; .svg; .pdf; .png .jpg .jpeg .gif .webp
// .tif .tiff); NotFound for anything else.
absl::StatusOr<DocType> DocTypeForName(absl::string_view name);
const char* DocTypeName(DocType type);  // "markdown", "svg", "pdf", "image"

inline constexpr uint64_t kDefaultMaxPixels = 16u << 20;  // 16 Mpx
inline constexpr uint32_t kMaxSide = 8192;

struct Rendering {
  // Markdown: the sanitized HTML fragment. Otherwise empty.
  std::string html;
  // SVG, PDF, images: straight (non-premultiplied) 8-bit RGBA, width * height * 4 bytes.
  uint32_t width = 0;
  uint32_t height = 0;
  std::string rgba;
  uint32_t pages = 1;  // PDF: the document's page count
};

// Errors: InvalidArgument "<library>: <message>" for a document the library rejects;
// ResourceExhausted for a limit (pixels, page number out of range is InvalidArgument).
absl::StatusOr<Rendering> RenderMarkdown(absl::string_view text);
absl::StatusOr<Rendering> RenderSvg(absl::string_view svg, uint64_t max_pixels);
absl::StatusOr<Rendering> RenderPdf(absl::string_view pdf, uint32_t page, uint64_t max_pixels);
absl::StatusOr<Rendering> RenderImage(absl::string_view bytes, uint64_t max_pixels);
absl::StatusOr<Rendering> Render(DocType type, absl::string_view bytes, uint32_t page,
                                 uint64_t max_pixels);

}  // namespace vow::renderer

#endif  // VOW_EXAMPLES_RENDERER_RENDER_H_
