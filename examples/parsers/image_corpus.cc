#include "examples/parsers/image_corpus.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include <gif_lib.h>
#include <jpeglib.h>
#include <tiffio.h>
#include <webp/encode.h>

#include "absl/strings/str_cat.h"

namespace vow::parsers {
namespace {

int CubeIndex(unsigned r, unsigned g, unsigned b) { return (r / 51) * 36 + (g / 51) * 6 + b / 51; }

absl::StatusOr<std::string> EncodeJpeg(uint32_t w, uint32_t h, const std::string& rgba,
                                       int quality) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* out = nullptr;
  unsigned long out_len = 0;
  jpeg_mem_dest(&c, &out, &out_len);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 4;
  c.in_color_space = JCS_EXT_RGBA;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < h) {
    JSAMPROW row = reinterpret_cast<JSAMPROW>(const_cast<char*>(&rgba[c.next_scanline * w * 4ull]));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string result(reinterpret_cast<char*>(out), out_len);
  jpeg_destroy_compress(&c);
  free(out);
  return result;
}

int GifWrite(GifFileType* gif, const GifByteType* data, int len) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data), len);
  return len;
}

absl::StatusOr<std::string> EncodeGif(uint32_t w, uint32_t h, const std::string& rgba) {
  std::string out;
  int err = 0;
  GifFileType* gif = EGifOpen(&out, GifWrite, &err);
  if (gif == nullptr) return absl::InternalError("EGifOpen failed");
  GifColorType colors[256] = {};
  for (int i = 0; i < 216; ++i) {
    colors[i].Red = (i / 36) * 51;
    colors[i].Green = ((i / 6) % 6) * 51;
    colors[i].Blue = (i % 6) * 51;
  }
  ColorMapObject* map = GifMakeMapObject(256, colors);
  EGifSetGifVersion(gif, true);
  bool ok = EGifPutScreenDesc(gif, w, h, 8, 0, map) != GIF_ERROR &&
            EGifPutImageDesc(gif, 0, 0, w, h, false, nullptr) != GIF_ERROR;
  std::vector<GifPixelType> line(w);
  for (uint32_t y = 0; ok && y < h; ++y) {
    for (uint32_t x = 0; x < w; ++x) {
      const auto* p = reinterpret_cast<const unsigned char*>(&rgba[(y * static_cast<size_t>(w) + x) * 4]);
      line[x] = CubeIndex(p[0], p[1], p[2]);
    }
    ok = EGifPutLine(gif, line.data(), w) != GIF_ERROR;
  }
  GifFreeMapObject(map);
  int close_err = 0;
  if (EGifCloseFile(gif, &close_err) == GIF_ERROR) ok = false;
  if (!ok) return absl::InternalError("gif encoding failed");
  return out;
}

absl::StatusOr<std::string> EncodeWebp(uint32_t w, uint32_t h, const std::string& rgba,
                                       int quality) {
  uint8_t* out = nullptr;
  size_t n = quality > 100
                 ? WebPEncodeLosslessRGBA(reinterpret_cast<const uint8_t*>(rgba.data()), w, h,
                                          w * 4, &out)
                 : WebPEncodeRGBA(reinterpret_cast<const uint8_t*>(rgba.data()), w, h, w * 4,
                                  quality, &out);
  if (n == 0) return absl::InternalError("webp encoding failed");
  std::string result(reinterpret_cast<char*>(out), n);
  WebPFree(out);
  return result;
}

struct TiffSink {
  std::string data;
  uint64_t pos = 0;
};
tmsize_t SinkRead(thandle_t h, void* buf, tmsize_t len) {
  auto* s = static_cast<TiffSink*>(h);
  if (s->pos >= s->data.size()) return 0;
  size_t n = std::min<uint64_t>(len, s->data.size() - s->pos);
  memcpy(buf, s->data.data() + s->pos, n);
  s->pos += n;
  return n;
}
tmsize_t SinkWrite(thandle_t h, void* buf, tmsize_t len) {
  auto* s = static_cast<TiffSink*>(h);
  if (s->pos + len > s->data.size()) s->data.resize(s->pos + len);
  memcpy(&s->data[s->pos], buf, len);
  s->pos += len;
  return len;
}
toff_t SinkSeek(thandle_t h, toff_t off, int whence) {
  auto* s = static_cast<TiffSink*>(h);
  s->pos = (whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : s->data.size()) + off;
  return s->pos;
}
int SinkClose(thandle_t) { return 0; }
toff_t SinkSize(thandle_t h) { return static_cast<TiffSink*>(h)->data.size(); }
int SinkMap(thandle_t, void**, toff_t*) { return 0; }
void SinkUnmap(thandle_t, void*, toff_t) {}

absl::StatusOr<std::string> EncodeTiff(uint32_t w, uint32_t h, const std::string& rgba,
                                       int frames) {
  TiffSink sink;
  TIFF* tif = TIFFClientOpen("mem", "w", &sink, SinkRead, SinkWrite, SinkSeek, SinkClose,
                             SinkSize, SinkMap, SinkUnmap);
  if (tif == nullptr) return absl::InternalError("TIFFClientOpen for writing failed");
  bool ok = true;
  for (int f = 0; ok && f < frames; ++f) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 4);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    uint16_t extra = EXTRASAMPLE_UNASSALPHA;
    TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &extra);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 16);
    for (uint32_t y = 0; ok && y < h; ++y) {
      ok = TIFFWriteScanline(tif, const_cast<char*>(&rgba[y * static_cast<size_t>(w) * 4]), y, 0) == 1;
    }
    if (ok) ok = TIFFWriteDirectory(tif) == 1;
  }
  TIFFClose(tif);
  if (!ok) return absl::InternalError("tiff encoding failed");
  return sink.data;
}

}  // namespace

std::string TestPattern(uint32_t w, uint32_t h, int noise, bool alpha, bool gif_palette) {
  std::string out(static_cast<size_t>(w) * h * 4, '\0');
  uint32_t state = 12345u + w * 31 + h;
  for (uint32_t y = 0; y < h; ++y) {
    for (uint32_t x = 0; x < w; ++x) {
      state = state * 1664525u + 1013904223u;
      int n = noise == 0 ? 0 : static_cast<int>((state >> 24) % (noise + 1)) - noise / 2;
      auto clamp = [](int v) { return v < 0 ? 0 : v > 255 ? 255 : v; };
      int r = clamp(static_cast<int>(x * 255 / std::max(1u, w - 1)) + n);
      int g = clamp(static_cast<int>(y * 255 / std::max(1u, h - 1)) - n);
      int b = clamp(static_cast<int>(((x ^ y) & 0xff)) + n / 2);
      if (gif_palette) {
        r = r / 51 * 51;
        g = g / 51 * 51;
        b = b / 51 * 51;
      }
      char* p = &out[(static_cast<size_t>(y) * w + x) * 4];
      p[0] = static_cast<char>(r);
      p[1] = static_cast<char>(g);
      p[2] = static_cast<char>(b);
      p[3] = static_cast<char>(alpha ? (x + y) & 0xff : 0xff);
    }
  }
  return out;
}

absl::StatusOr<std::string> EncodeTestImage(ImageFormat format, uint32_t w, uint32_t h,
                                            const std::string& rgba, int quality, int frames) {
  switch (format) {
    case ImageFormat::kPng: return EncodePngRgba(w, h, rgba);
    case ImageFormat::kJpeg: return EncodeJpeg(w, h, rgba, quality);
    case ImageFormat::kGif: return EncodeGif(w, h, rgba);
    case ImageFormat::kWebp: return EncodeWebp(w, h, rgba, quality);
    case ImageFormat::kTiff: return EncodeTiff(w, h, rgba, frames);
  }
  return absl::InvalidArgumentError("unknown format");
}

}  // namespace vow::parsers
