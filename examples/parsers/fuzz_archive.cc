// libFuzzer target for the archive path: libarchive reads the input with the same
// filters and formats as the extraction worker, and every entry name goes through
// CheckEntryName; data is read (into memory, never to disk).
#include <archive.h>
#include <archive_entry.h>

#include <cstddef>
#include <cstdint>

#include "examples/parsers/archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_zip(a);
  archive_read_support_format_7zip(a);
  archive_read_support_format_cpio(a);
  if (archive_read_open_memory(a, data, size) == ARCHIVE_OK) {
    archive_entry* e = nullptr;
    for (int n = 0; n < 64 && archive_read_next_header(a, &e) >= ARCHIVE_WARN; ++n) {
      const char* name = archive_entry_pathname(e);
      if (name != nullptr) (void)vow::parsers::CheckEntryName(name, 32);
      const void* buf;
      size_t len;
      la_int64_t off;
      for (int k = 0; k < 256 && archive_read_data_block(a, &buf, &len, &off) == ARCHIVE_OK; ++k) {
      }
    }
  }
  archive_read_free(a);
  return 0;
}
