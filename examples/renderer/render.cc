#include "examples/renderer/render.h"

#include <cairo.h>
#include <cmark.h>
#include <librsvg/rsvg.h>
#include <poppler-document.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "examples/parsers/image.h"

namespace vow::renderer {
namespace {

constexpr double kPdfDpi = 96.0;

// Cairo's ARGB32 (premultiplied, native-endian words) to straight RGBA bytes.
std::string UnpremultiplyArgb32(const unsigned char* data, int stride, uint32_t width,
                                uint32_t height) {
  std::string out(static_cast<size_t>(width) * height * 4, '\0');
  for (uint32_t y = 0; y < height; ++y) {
    const uint32_t* row = reinterpret_cast<const uint32_t*>(data + static_cast<size_t>(y) * stride);
    for (uint32_t x = 0; x < width; ++x) {
      uint32_t p = row[x];
      uint32_t a = p >> 24, r = (p >> 16) & 0xff, g = (p >> 8) & 0xff, b = p & 0xff;
      if (a != 0 && a != 255) {
        r = std::min<uint32_t>(255, (r * 255 + a / 2) / a);
        g = std::min<uint32_t>(255, (g * 255 + a / 2) / a);
        b = std::min<uint32_t>(255, (b * 255 + a / 2) / a);
      }
      char* o = &out[(static_cast<size_t>(y) * width + x) * 4];
      o[0] = static_cast<char>(r), o[1] = static_cast<char>(g), o[2] = static_cast<char>(b);
      o[3] = static_cast<char>(a);
    }
  }
  return out;
}

absl::Status CheckSize(double w, double h, uint64_t max_pixels, const char* what) {
  if (!(w >= 1 && h >= 1) || w > kMaxSide || h > kMaxSide ||
      static_cast<uint64_t>(w) * static_cast<uint64_t>(h) > max_pixels) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": size ", w, "x", h,
                                                     " is outside the limit (", max_pixels,
                                                     " pixels, ", kMaxSide, " per side)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DocType> DocTypeForName(absl::string_view name) {
  size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos) return absl::NotFoundError("no extension");
  std::string ext = absl::AsciiStrToLower(name.substr(dot + 1));
  if (ext == "md" || ext == "markdown") return DocType::kMarkdown;
  if (ext == "svg") return DocType::kSvg;
  if (ext == "pdf") return DocType::kPdf;
  if (ext == "png" || ext == "jpg" || ext == "jpeg" || ext == "gif" || ext == "webp" ||
      ext == "tif" || ext == "tiff") {
    return DocType::kImage;
  }
  return absl::NotFoundError(absl::StrCat("no renderer for ." , ext, " files"));
}

const char* DocTypeName(DocType type) {
  switch (type) {
    case DocType::kMarkdown: return "markdown";
    case DocType::kSvg: return "svg";
    case DocType::kPdf: return "pdf";
    case DocType::kImage: return "image";
  }
  return "unknown";
}

absl::StatusOr<Rendering> RenderMarkdown(absl::string_view text) {
  // CMARK_OPT_SAFE: raw HTML is replaced by a comment and javascript:/vbscript:/file:/
  // data: (but images) links are emptied.
  char* html = cmark_markdown_to_html(text.data(), text.size(),
                                      CMARK_OPT_SAFE | CMARK_OPT_VALIDATE_UTF8);
  if (html == nullptr) return absl::InvalidArgumentError("cmark: out of memory");
  Rendering r;
  r.html = html;
  free(html);
  return r;
}

absl::StatusOr<Rendering> RenderSvg(absl::string_view svg, uint64_t max_pixels) {
  GError* error = nullptr;
  // No base URI: librsvg itself then refuses every reference that is not a data: URL
  // (file:, http:, xi:include); the sandbox refuses them again if it did not.
  RsvgHandle* handle = rsvg_handle_new_from_data(
      reinterpret_cast<const guint8*>(svg.data()), svg.size(), &error);
  if (handle == nullptr) {
    std::string message = error != nullptr ? error->message : "unknown error";
    if (error != nullptr) g_error_free(error);
    return absl::InvalidArgumentError(absl::StrCat("librsvg: ", message));
  }
  std::unique_ptr<RsvgHandle, void (*)(gpointer)> owner(handle, g_object_unref);
  gdouble w = 0, h = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(handle, &w, &h)) {
    RsvgRectangle ink, logical;
    if (!rsvg_handle_get_geometry_for_layer(handle, nullptr, nullptr, &ink, &logical, nullptr)) {
      w = h = 256;
    } else {
      w = logical.width, h = logical.height;
    }
  }
  w = std::ceil(w), h = std::ceil(h);
  absl::Status s = CheckSize(w, h, max_pixels, "svg");
  if (!s.ok()) return s;
  Rendering r;
  r.width = static_cast<uint32_t>(w), r.height = static_cast<uint32_t>(h);
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, r.width, r.height);
  if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(surface);
    return absl::ResourceExhaustedError("cairo: cannot allocate the surface");
  }
  cairo_t* cr = cairo_create(surface);
  RsvgRectangle viewport{0, 0, w, h};
  gboolean ok = rsvg_handle_render_document(handle, cr, &viewport, &error);
  cairo_destroy(cr);
  if (!ok) {
    std::string message = error != nullptr ? error->message : "unknown error";
    if (error != nullptr) g_error_free(error);
    cairo_surface_destroy(surface);
    return absl::InvalidArgumentError(absl::StrCat("librsvg: ", message));
  }
  cairo_surface_flush(surface);
  r.rgba = UnpremultiplyArgb32(cairo_image_surface_get_data(surface),
                               cairo_image_surface_get_stride(surface), r.width, r.height);
  cairo_surface_destroy(surface);
  return r;
}

absl::StatusOr<Rendering> RenderPdf(absl::string_view pdf, uint32_t page_index,
                                    uint64_t max_pixels) {
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(pdf.data(), static_cast<int>(pdf.size())));
  if (doc == nullptr) return absl::InvalidArgumentError("poppler: not a PDF it can read");
  if (doc->is_locked()) return absl::InvalidArgumentError("poppler: the PDF is encrypted");
  int pages = doc->pages();
  if (pages <= 0 || page_index >= static_cast<uint32_t>(pages)) {
    return absl::InvalidArgumentError(
        absl::StrCat("poppler: page ", page_index + 1, " of ", pages, " does not exist"));
  }
  std::unique_ptr<poppler::page> page(doc->create_page(static_cast<int>(page_index)));
  if (page == nullptr) return absl::InvalidArgumentError("poppler: cannot read the page");
  poppler::rectf rect = page->page_rect();
  double w = std::ceil(rect.width() * kPdfDpi / 72), h = std::ceil(rect.height() * kPdfDpi / 72);
  absl::Status s = CheckSize(w, h, max_pixels, "pdf");
  if (!s.ok()) return s;
  poppler::page_renderer renderer;
  renderer.set_render_hint(poppler::page_renderer::antialiasing, true);
  renderer.set_render_hint(poppler::page_renderer::text_antialiasing, true);
  poppler::image img = renderer.render_page(page.get(), kPdfDpi, kPdfDpi);
  if (!img.is_valid() || img.format() != poppler::image::format_argb32 || img.width() <= 0 ||
      img.height() <= 0 || img.width() > kMaxSide || img.height() > kMaxSide) {
    return absl::InvalidArgumentError("poppler: the page did not render");
  }
  Rendering r;
  r.pages = static_cast<uint32_t>(pages);
  r.width = static_cast<uint32_t>(img.width());
  r.height = static_cast<uint32_t>(img.height());
  r.rgba = UnpremultiplyArgb32(reinterpret_cast<const unsigned char*>(img.const_data()),
                               img.bytes_per_row(), r.width, r.height);
  return r;
}

absl::StatusOr<Rendering> RenderImage(absl::string_view bytes, uint64_t max_pixels) {
  absl::StatusOr<parsers::DecodedImage> image =
      parsers::DecodeImageBytes(bytes, max_pixels, /*keep_pixels=*/true);
  if (!image.ok()) return image.status();
  Rendering r;
  r.width = image->info.width;
  r.height = image->info.height;
  r.rgba = std::move(image->rgba);
  return r;
}

absl::StatusOr<Rendering> Render(DocType type, absl::string_view bytes, uint32_t page,
                                 uint64_t max_pixels) {
  switch (type) {
    case DocType::kMarkdown: return RenderMarkdown(bytes);
    case DocType::kSvg: return RenderSvg(bytes, max_pixels);
    case DocType::kPdf: return RenderPdf(bytes, page, max_pixels);
    case DocType::kImage: return RenderImage(bytes, max_pixels);
  }
  return absl::InvalidArgumentError("unknown document type");
}

}  // namespace vow::renderer
