#include "examples/parsers/image.h"

#include <csetjmp>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <memory>

#include <gif_lib.h>
#include <jpeglib.h>
#include <png.h>
#include <tiffio.h>
#include <webp/decode.h>

#include "absl/strings/str_cat.h"

namespace vow::parsers {
namespace {

void AddWarning(std::vector<std::string>* warnings, absl::string_view what) {
  if (warnings->size() >= kMaxWarnings) return;
  warnings->emplace_back(what.substr(0, kMaxWarningBytes));
}

absl::Status TooManyPixels(ImageFormat f, uint64_t w, uint64_t h, uint64_t max_pixels) {
  return absl::ResourceExhaustedError(
      absl::StrCat(ImageFormatName(f), ": ", w, "x", h, " = ", w * h,
                   " pixels exceeds the limit of ", max_pixels, " (checked from the header)"));
}

absl::Status CheckSize(ImageFormat f, uint64_t w, uint64_t h, uint64_t max_pixels) {
  if (w == 0 || h == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ImageFormatName(f), ": image has zero size (", w, "x", h, ")"));
  }
  if (w * h > max_pixels) return TooManyPixels(f, w, h, max_pixels);
  return absl::OkStatus();
}

// Where the first frame's w * h * 4 bytes of RGBA go (w * h already checked against the
// limit): the caller's buffer if they fit, zeroed first if `zero` (for a decoder that may
// leave pixels unwritten: the buffer's old bytes must not show through), else `*own`,
// zero-filled.
absl::StatusOr<char*> PixelsFor(ImageFormat f, uint64_t w, uint64_t h, PixelBuffer out,
                                bool zero, std::string* own, bool* in_buffer) {
  if (w * h > SIZE_MAX / 4) {  // a limit above what a size_t of bytes can hold
    return absl::ResourceExhaustedError(absl::StrCat(
        ImageFormatName(f), ": ", w, "x", h, " pixels do not fit in memory (checked from the header)"));
  }
  size_t n = static_cast<size_t>(w * h * 4);
  if (out.data != nullptr && n <= out.size) {
    *in_buffer = true;
    if (zero) memset(out.data, 0, n);
    return out.data;
  }
  own->assign(n, '\0');
  return own->data();
}

// ---- PNG ------------------------------------------------------------------------------

struct PngState {
  absl::string_view data;
  size_t pos = 0;
  std::vector<std::string>* warnings = nullptr;
  std::string error;
  std::string rgba;
  bool in_buffer = false;
  std::vector<png_bytep> rows;
  std::string out;  // encoder
};

void PngRead(png_structp png, png_bytep out, size_t len) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (len > s->data.size() - s->pos) png_error(png, "truncated file (read past the end)");
  memcpy(out, s->data.data() + s->pos, len);
  s->pos += len;
}

void PngError(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  s->error = msg;
  png_longjmp(png, 1);
}

void PngWarning(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  if (s->warnings != nullptr) AddWarning(s->warnings, msg);
}

absl::StatusOr<DecodedImage> DecodePng(absl::string_view bytes, uint64_t max_pixels,
                                       PixelBuffer into) {
  auto state = std::make_unique<PngState>();
  DecodedImage result;
  result.info.format = ImageFormat::kPng;
  result.info.frames = 1;
  state->data = bytes;
  state->warnings = &result.info.warnings;
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, state.get(), PngError, PngWarning);
  if (png == nullptr) return absl::ResourceExhaustedError("png: out of memory");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return absl::ResourceExhaustedError("png: out of memory");
  }
  absl::Status limit;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return absl::InvalidArgumentError(absl::StrCat("png: ", state->error));
  }
  png_set_read_fn(png, state.get(), PngRead);
  png_set_user_limits(png, 1u << 24, 1u << 24);
  png_set_chunk_malloc_max(png, 8u << 20);  // ancillary chunks (zTXt bombs)
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info);
  png_uint_32 h = png_get_image_height(png, info);
  limit = CheckSize(ImageFormat::kPng, w, h, max_pixels);
  if (!limit.ok()) {
    png_destroy_read_struct(&png, &info, nullptr);
    return limit;
  }
  result.info.width = w;
  result.info.height = h;
  result.info.channels = png_get_channels(png, info);
  result.info.bit_depth = png_get_bit_depth(png, info);
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_gray_to_rgb(png);
  png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != static_cast<size_t>(w) * 4) {
    png_error(png, "unexpected row size after the RGBA transforms");
  }
  // Every pixel is written: each belongs to one of the interlace passes.
  absl::StatusOr<char*> pixels = PixelsFor(ImageFormat::kPng, w, h, into, /*zero=*/false,
                                           &state->rgba, &state->in_buffer);
  if (!pixels.ok()) {
    png_destroy_read_struct(&png, &info, nullptr);
    return pixels.status();
  }
  state->rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) {
    state->rows[y] = reinterpret_cast<png_bytep>(*pixels + static_cast<size_t>(y) * w * 4);
  }
  png_read_image(png, state->rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  result.rgba = std::move(state->rgba);
  result.in_buffer = state->in_buffer;
  return result;
}

void PngWrite(png_structp png, png_bytep data, size_t len) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  s->out.append(reinterpret_cast<const char*>(data), len);
}
void PngFlush(png_structp) {}

absl::StatusOr<std::string> EncodePng(uint32_t w, uint32_t h, int color_type, int channels,
                                      absl::string_view pixels) {
  if (w == 0 || h == 0 || pixels.size() != static_cast<size_t>(w) * h * channels) {
    return absl::InvalidArgumentError(
        absl::StrCat("png encode: ", pixels.size(), " bytes do not make ", w, "x", h, "x",
                     channels));
  }
  auto state = std::make_unique<PngState>();
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, state.get(), PngError,
                                            PngWarning);
  if (png == nullptr) return absl::ResourceExhaustedError("png encode: out of memory");
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return absl::InternalError(absl::StrCat("png encode: ", state->error));
  }
  png_set_write_fn(png, state.get(), PngWrite, PngFlush);
  png_set_compression_level(png, 3);
  png_set_IHDR(png, info, w, h, 8, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (uint32_t y = 0; y < h; ++y) {
    png_write_row(png, reinterpret_cast<png_const_bytep>(pixels.data() +
                                                         static_cast<size_t>(y) * w * channels));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return std::move(state->out);
}

// ---- JPEG -----------------------------------------------------------------------------

struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  std::vector<std::string>* warnings;
  char message[JMSG_LENGTH_MAX];
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}

void JpegEmit(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  ++cinfo->err->num_warnings;
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  AddWarning(e->warnings, buf);
}

struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegError err;
  std::string rgba;
  bool in_buffer = false;
};

absl::StatusOr<DecodedImage> DecodeJpeg(absl::string_view bytes, uint64_t max_pixels,
                                        PixelBuffer into) {
  auto s = std::make_unique<JpegState>();
  DecodedImage result;
  result.info.format = ImageFormat::kJpeg;
  result.info.frames = 1;
  s->cinfo.err = jpeg_std_error(&s->err.mgr);
  s->err.mgr.error_exit = JpegErrorExit;
  s->err.mgr.emit_message = JpegEmit;
  s->err.warnings = &result.info.warnings;
  if (setjmp(s->err.jump)) {
    jpeg_destroy_decompress(&s->cinfo);
    return absl::InvalidArgumentError(absl::StrCat("jpeg: ", s->err.message));
  }
  jpeg_create_decompress(&s->cinfo);
  s->cinfo.mem->max_memory_to_use = 1024L << 20;
  jpeg_mem_src(&s->cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&s->cinfo, TRUE);
  absl::Status limit =
      CheckSize(ImageFormat::kJpeg, s->cinfo.image_width, s->cinfo.image_height, max_pixels);
  if (!limit.ok()) {
    jpeg_destroy_decompress(&s->cinfo);
    return limit;
  }
  uint32_t w = s->cinfo.image_width, h = s->cinfo.image_height;
  result.info.width = w;
  result.info.height = h;
  result.info.channels = s->cinfo.num_components;
  result.info.bit_depth = s->cinfo.data_precision;
  bool cmyk = s->cinfo.jpeg_color_space == JCS_CMYK || s->cinfo.jpeg_color_space == JCS_YCCK;
  s->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGBA;
  jpeg_start_decompress(&s->cinfo);
  if (s->cinfo.output_components != 4) {
    (*s->cinfo.err->error_exit)(reinterpret_cast<j_common_ptr>(&s->cinfo));
  }
  // Every row is written (a damaged or truncated stream still yields all of them, with
  // a warning: jpeg_mem_src never suspends).
  absl::StatusOr<char*> pixels =
      PixelsFor(ImageFormat::kJpeg, w, h, into, /*zero=*/false, &s->rgba, &s->in_buffer);
  if (!pixels.ok()) {
    jpeg_destroy_decompress(&s->cinfo);
    return pixels.status();
  }
  unsigned char* px = reinterpret_cast<unsigned char*>(*pixels);
  while (s->cinfo.output_scanline < h) {
    JSAMPROW row = px + static_cast<size_t>(s->cinfo.output_scanline) * w * 4;
    jpeg_read_scanlines(&s->cinfo, &row, 1);
  }
  jpeg_finish_decompress(&s->cinfo);
  jpeg_destroy_decompress(&s->cinfo);
  if (cmyk) {  // Adobe-style inverted CMYK to RGB
    for (size_t i = 0, n = static_cast<size_t>(w) * h * 4; i < n; i += 4) {
      unsigned k = px[i + 3];
      for (int c = 0; c < 3; ++c) px[i + c] = static_cast<unsigned char>(px[i + c] * k / 255);
      px[i + 3] = 0xff;
    }
  }
  result.rgba = std::move(s->rgba);
  result.in_buffer = s->in_buffer;
  return result;
}

// ---- GIF ------------------------------------------------------------------------------

struct GifSource {
  absl::string_view data;
  size_t pos = 0;
};

int GifRead(GifFileType* gif, GifByteType* out, int len) {
  auto* s = static_cast<GifSource*>(gif->UserData);
  size_t n = std::min(static_cast<size_t>(len), s->data.size() - s->pos);
  memcpy(out, s->data.data() + s->pos, n);
  s->pos += n;
  return static_cast<int>(n);
}

absl::Status GifFail(int err) {
  const char* msg = GifErrorString(err);
  return absl::InvalidArgumentError(absl::StrCat("gif: ", msg != nullptr ? msg : "error ", err));
}

absl::StatusOr<DecodedImage> DecodeGif(absl::string_view bytes, uint64_t max_pixels,
                                       PixelBuffer into) {
  GifSource src{bytes, 0};
  int err = 0;
  GifFileType* gif = DGifOpen(&src, GifRead, &err);
  if (gif == nullptr) return GifFail(err);
  std::unique_ptr<GifFileType, void (*)(GifFileType*)> closer(gif, [](GifFileType* g) {
    int e;
    DGifCloseFile(g, &e);
  });
  DecodedImage result;
  result.info.format = ImageFormat::kGif;
  result.info.bit_depth = 8;
  result.info.channels = 3;
  uint32_t sw = gif->SWidth, sh = gif->SHeight;
  if (gif->SWidth < 0 || gif->SHeight < 0) return GifFail(D_GIF_ERR_WRONG_RECORD);
  absl::Status limit = CheckSize(ImageFormat::kGif, sw, sh, max_pixels);
  if (!limit.ok()) return limit;
  result.info.width = sw;
  result.info.height = sh;
  // Zeroed: pixels no frame covers, and transparent ones, stay 0.
  absl::StatusOr<char*> pixels = PixelsFor(ImageFormat::kGif, sw, sh, into, /*zero=*/true,
                                           &result.rgba, &result.in_buffer);
  if (!pixels.ok()) return pixels.status();
  char* canvas = *pixels;
  std::string line;
  int transparent = -1;
  uint32_t frames = 0;
  bool done = false;
  while (!done) {
    GifRecordType type;
    if (DGifGetRecordType(gif, &type) == GIF_ERROR) return GifFail(gif->Error);
    switch (type) {
      case IMAGE_DESC_RECORD_TYPE: {
        if (DGifGetImageDesc(gif) == GIF_ERROR) return GifFail(gif->Error);
        if (++frames > kMaxGifFrames) {
          return absl::ResourceExhaustedError(
              absl::StrCat("gif: more than ", kMaxGifFrames, " frames"));
        }
        const GifImageDesc& d = gif->Image;
        if (d.Width <= 0 || d.Height <= 0 || d.Left < 0 || d.Top < 0) {
          return absl::InvalidArgumentError("gif: frame has an invalid size or position");
        }
        uint64_t fw = d.Width, fh = d.Height;
        if (fw * fh > max_pixels) return TooManyPixels(ImageFormat::kGif, fw, fh, max_pixels);
        if (d.Left + fw > sw || d.Top + fh > sh) {
          AddWarning(&result.info.warnings,
                     absl::StrCat("frame ", frames, " extends beyond the logical screen"));
        }
        const ColorMapObject* map = d.ColorMap != nullptr ? d.ColorMap : gif->SColorMap;
        if (map == nullptr) return absl::InvalidArgumentError("gif: frame has no color map");
        line.resize(fw);
        // Interlaced frames come in four passes.
        static const int kStart[] = {0, 4, 2, 1}, kStep[] = {8, 8, 4, 2};
        int passes = d.Interlace ? 4 : 1;
        for (int p = 0; p < passes; ++p) {
          int start = d.Interlace ? kStart[p] : 0, step = d.Interlace ? kStep[p] : 1;
          for (uint64_t y = start; y < fh; y += step) {
            if (DGifGetLine(gif, reinterpret_cast<GifPixelType*>(line.data()),
                            static_cast<int>(fw)) == GIF_ERROR) {
              return GifFail(gif->Error);
            }
            if (frames != 1) continue;
            uint64_t cy = d.Top + y;
            if (cy >= sh) continue;
            for (uint64_t x = 0; x < fw; ++x) {
              uint64_t cx = d.Left + x;
              if (cx >= sw) break;
              int idx = static_cast<unsigned char>(line[x]);
              if (idx == transparent) continue;
              char* px = &canvas[(cy * sw + cx) * 4];
              if (idx >= map->ColorCount) {
                AddWarning(&result.info.warnings, "pixel index outside the color map");
                continue;
              }
              px[0] = static_cast<char>(map->Colors[idx].Red);
              px[1] = static_cast<char>(map->Colors[idx].Green);
              px[2] = static_cast<char>(map->Colors[idx].Blue);
              px[3] = static_cast<char>(0xff);
            }
          }
        }
        break;
      }
      case EXTENSION_RECORD_TYPE: {
        int code = 0;
        GifByteType* ext = nullptr;
        if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) return GifFail(gif->Error);
        if (code == GRAPHICS_EXT_FUNC_CODE && ext != nullptr && frames == 0) {
          GraphicsControlBlock gcb;
          if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK) {
            transparent = gcb.TransparentColor;
            if (transparent >= 0) result.info.channels = 4;
          }
        }
        while (ext != nullptr) {
          if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) return GifFail(gif->Error);
        }
        break;
      }
      case TERMINATE_RECORD_TYPE:
        done = true;
        break;
      default:
        break;
    }
  }
  if (frames == 0) return absl::InvalidArgumentError("gif: no image in the file");
  result.info.frames = frames;
  return result;
}

// ---- WebP -----------------------------------------------------------------------------

const char* Vp8StatusName(VP8StatusCode c) {
  switch (c) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "user abort";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data (truncated)";
    default: return "error";
  }
}

absl::StatusOr<DecodedImage> DecodeWebp(absl::string_view bytes, uint64_t max_pixels,
                                        PixelBuffer into) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures f;
  VP8StatusCode st = WebPGetFeatures(data, bytes.size(), &f);
  if (st != VP8_STATUS_OK) return absl::InvalidArgumentError(absl::StrCat("webp: ", Vp8StatusName(st)));
  absl::Status limit = CheckSize(ImageFormat::kWebp, f.width, f.height, max_pixels);
  if (!limit.ok()) return limit;
  if (f.has_animation) {
    return absl::InvalidArgumentError("webp: animated WebP is not supported (no demuxer)");
  }
  DecodedImage result;
  result.info.format = ImageFormat::kWebp;
  result.info.width = f.width;
  result.info.height = f.height;
  result.info.channels = f.has_alpha ? 4 : 3;
  result.info.bit_depth = 8;
  result.info.frames = 1;
  // A successful decode writes every pixel (a failed one is not used).
  absl::StatusOr<char*> pixels = PixelsFor(ImageFormat::kWebp, f.width, f.height, into,
                                           /*zero=*/false, &result.rgba, &result.in_buffer);
  if (!pixels.ok()) return pixels.status();
  size_t n = static_cast<size_t>(f.width) * f.height * 4;
  if (WebPDecodeRGBAInto(data, bytes.size(), reinterpret_cast<uint8_t*>(*pixels), n,
                         f.width * 4) == nullptr) {
    // Decode again incrementally only to learn why; the one-shot call says nothing.
    WebPDecoderConfig config;
    WebPInitDecoderConfig(&config);
    st = WebPDecode(data, bytes.size(), &config);
    WebPFreeDecBuffer(&config.output);
    return absl::InvalidArgumentError(
        absl::StrCat("webp: ", Vp8StatusName(st == VP8_STATUS_OK ? VP8_STATUS_BITSTREAM_ERROR : st)));
  }
  return result;
}

// ---- TIFF -----------------------------------------------------------------------------

struct TiffState {
  absl::string_view data;
  uint64_t pos = 0;
  std::vector<std::string>* warnings = nullptr;
  std::string error;
};

tmsize_t TiffRead(thandle_t h, void* buf, tmsize_t len) {
  auto* s = static_cast<TiffState*>(h);
  if (len < 0 || s->pos > s->data.size()) return 0;
  size_t n = std::min(static_cast<uint64_t>(len), s->data.size() - s->pos);
  memcpy(buf, s->data.data() + s->pos, n);
  s->pos += n;
  return static_cast<tmsize_t>(n);
}
tmsize_t TiffWriteNone(thandle_t, void*, tmsize_t) { return 0; }
toff_t TiffSeek(thandle_t h, toff_t off, int whence) {
  auto* s = static_cast<TiffState*>(h);
  uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : s->data.size();
  if (off > UINT64_MAX / 2 || base + off > (1ull << 40)) return static_cast<toff_t>(-1);
  s->pos = base + off;
  return s->pos;
}
int TiffClose(thandle_t) { return 0; }
toff_t TiffSize(thandle_t h) { return static_cast<TiffState*>(h)->data.size(); }
int TiffMap(thandle_t, void**, toff_t*) { return 0; }
void TiffUnmap(thandle_t, void*, toff_t) {}

int TiffErrorExt(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* s = static_cast<TiffState*>(user);
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  if (s->error.empty()) s->error = absl::StrCat(module != nullptr ? module : "", ": ", buf);
  return 1;
}
int TiffWarningExt(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* s = static_cast<TiffState*>(user);
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  if (s->warnings != nullptr) {
    AddWarning(s->warnings, absl::StrCat(module != nullptr ? module : "", ": ", buf));
  }
  return 1;
}

absl::StatusOr<DecodedImage> DecodeTiff(absl::string_view bytes, uint64_t max_pixels,
                                        PixelBuffer into) {
  DecodedImage result;
  result.info.format = ImageFormat::kTiff;
  TiffState s;
  s.data = bytes;
  s.warnings = &result.info.warnings;
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts, 256 << 20);
  TIFFOpenOptionsSetErrorHandlerExtR(opts, TiffErrorExt, &s);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, TiffWarningExt, &s);
  TIFF* tif = TIFFClientOpenExt("input", "rm", &s, TiffRead, TiffWriteNone, TiffSeek,
                                TiffClose, TiffSize, TiffMap, TiffUnmap, opts);
  TIFFOpenOptionsFree(opts);
  auto fail = [&s](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("tiff: ", s.error.empty() ? std::string(what) : s.error));
  };
  if (tif == nullptr) return fail("not a readable TIFF");
  std::unique_ptr<TIFF, void (*)(TIFF*)> closer(tif, TIFFClose);
  uint32_t w = 0, h = 0;
  uint16_t spp = 1, bps = 1;
  if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h)) {
    return fail("no image width or length");
  }
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
  absl::Status limit = CheckSize(ImageFormat::kTiff, w, h, max_pixels);
  if (!limit.ok()) return limit;
  result.info.width = w;
  result.info.height = h;
  result.info.channels = spp;
  result.info.bit_depth = bps;
  // libtiff's raster (one uint32 per pixel, R in the low byte) is decoded in place and
  // turned into RGBA bytes below. Zeroed first, as a precaution: in every damaged file
  // tried (image_test) libtiff wrote every row (a strip it cannot read repeats the last
  // one), but with stop_on_error 0 that is its behaviour, not its promise.
  absl::StatusOr<char*> pixels = PixelsFor(ImageFormat::kTiff, w, h, into, /*zero=*/true,
                                           &result.rgba, &result.in_buffer);
  if (!pixels.ok()) return pixels.status();
  uint32_t* raster = reinterpret_cast<uint32_t*>(*pixels);  // aligned (kPixelBufferAlignment)
  if (!TIFFReadRGBAImageOriented(tif, w, h, raster, ORIENTATION_TOPLEFT, 0)) {
    return fail("the image data could not be read");
  }
  // Count the directories (libtiff refuses IFD loops), then report errors seen so far.
  uint32_t frames = 1;
  while (TIFFReadDirectory(tif)) {
    if (++frames > kMaxGifFrames) break;
  }
  result.info.frames = frames;
  // In place: pixel i's four bytes are read as one uint32 before they are rewritten.
  unsigned char* px = reinterpret_cast<unsigned char*>(*pixels);
  for (size_t i = 0, n = static_cast<size_t>(w) * h; i < n; ++i) {
    uint32_t v = raster[i];
    px[4 * i] = static_cast<unsigned char>(TIFFGetR(v));
    px[4 * i + 1] = static_cast<unsigned char>(TIFFGetG(v));
    px[4 * i + 2] = static_cast<unsigned char>(TIFFGetB(v));
    px[4 * i + 3] = static_cast<unsigned char>(TIFFGetA(v));
  }
  if (!s.error.empty()) AddWarning(&result.info.warnings, s.error);
  return result;
}

}  // namespace

const char* ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return "png";
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kGif: return "gif";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kTiff: return "tiff";
  }
  return "unknown";
}

absl::StatusOr<ImageFormat> SniffImageFormat(absl::string_view b) {
  if (b.size() >= 8 && b.substr(0, 8) == absl::string_view("\x89PNG\r\n\x1a\n", 8)) {
    return ImageFormat::kPng;
  }
  if (b.size() >= 3 && b.substr(0, 3) == "\xff\xd8\xff") return ImageFormat::kJpeg;
  if (b.size() >= 6 && (b.substr(0, 6) == "GIF87a" || b.substr(0, 6) == "GIF89a")) {
    return ImageFormat::kGif;
  }
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") {
    return ImageFormat::kWebp;
  }
  if (b.size() >= 4 && (b.substr(0, 4) == absl::string_view("II*\0", 4) ||
                        b.substr(0, 4) == absl::string_view("MM\0*", 4) ||
                        b.substr(0, 4) == absl::string_view("II+\0", 4) ||
                        b.substr(0, 4) == absl::string_view("MM\0+", 4))) {
    return ImageFormat::kTiff;
  }
  return absl::InvalidArgumentError(
      "not a PNG, JPEG, GIF, WebP or TIFF file (no known signature)");
}

absl::StatusOr<DecodedImage> DecodeImageInto(absl::string_view bytes, uint64_t max_pixels,
                                             PixelBuffer out) {
  if (reinterpret_cast<uintptr_t>(out.data) % kPixelBufferAlignment != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pixel buffer at ", reinterpret_cast<uintptr_t>(out.data), " is not aligned to ",
        kPixelBufferAlignment, " bytes"));
  }
  absl::StatusOr<ImageFormat> format = SniffImageFormat(bytes);
  if (!format.ok()) return format.status();
  switch (*format) {
    case ImageFormat::kPng: return DecodePng(bytes, max_pixels, out);
    case ImageFormat::kJpeg: return DecodeJpeg(bytes, max_pixels, out);
    case ImageFormat::kGif: return DecodeGif(bytes, max_pixels, out);
    case ImageFormat::kWebp: return DecodeWebp(bytes, max_pixels, out);
    case ImageFormat::kTiff: return DecodeTiff(bytes, max_pixels, out);
  }
  return absl::InvalidArgumentError("unknown format");
}

absl::StatusOr<DecodedImage> DecodeImageBytes(absl::string_view bytes, uint64_t max_pixels,
                                              bool keep_pixels) {
  absl::StatusOr<DecodedImage> image = DecodeImageInto(bytes, max_pixels, PixelBuffer());
  if (image.ok() && !keep_pixels) image->rgba = std::string();
  return image;
}

absl::StatusOr<std::string> EncodePngRgba(uint32_t width, uint32_t height,
                                          absl::string_view rgba) {
  return EncodePng(width, height, PNG_COLOR_TYPE_RGBA, 4, rgba);
}

absl::StatusOr<std::string> EncodePngGray(uint32_t width, uint32_t height,
                                          absl::string_view gray) {
  return EncodePng(width, height, PNG_COLOR_TYPE_GRAY, 1, gray);
}

}  // namespace vow::parsers
