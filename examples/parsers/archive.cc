#include "examples/parsers/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <clocale>
#include <cstdlib>
#include <locale.h>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "examples/parsers/wire.h"

namespace vow::parsers {

absl::Status CheckEntryName(absl::string_view name, uint32_t max_depth) {
  if (name.empty()) return absl::InvalidArgumentError("empty name");
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("name of ", name.size(), " bytes is longer than ", kMaxNameBytes));
  }
  if (name[0] == '/') return absl::InvalidArgumentError("absolute path");
  // UTF-8 without control characters.
  for (size_t i = 0; i < name.size();) {
    unsigned char c = name[i];
    if (c < 0x20 || c == 0x7f) return absl::InvalidArgumentError("control character in name");
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > name.size()) return absl::InvalidArgumentError("name is not UTF-8");
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = name[i + k];
      if ((cc & 0xc0) != 0x80) return absl::InvalidArgumentError("name is not UTF-8");
      cp = (cp << 6) | (cc & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return absl::InvalidArgumentError("name is not UTF-8");
    }
    i += len;
  }
  absl::string_view trimmed = name;
  while (!trimmed.empty() && trimmed.back() == '/') trimmed.remove_suffix(1);
  uint32_t depth = 0;
  for (absl::string_view part : absl::StrSplit(trimmed, '/')) {
    if (part.empty()) return absl::InvalidArgumentError("empty path component (`//`)");
    if (part == "..") return absl::InvalidArgumentError("`..` component");
    if (part == ".") return absl::InvalidArgumentError("`.` component");
    if (part.size() > kMaxComponentBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("component longer than ", kMaxComponentBytes, " bytes"));
    }
    ++depth;
  }
  if (depth > max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat("path of ", depth, " components is deeper than ", max_depth));
  }
  return absl::OkStatus();
}

namespace {

struct Job {
  uint64_t max_entries = 0, max_file_bytes = 0, max_total_bytes = 0;
  uint32_t max_depth = 0;
  bool unchecked = false;
  std::string unchecked_data;  // test only: what it also sends past the quotas
  std::string dir;
};

class Extractor {
 public:
  explicit Extractor(Job job) : job_(std::move(job)) {}

  bool Refuse(absl::string_view name, absl::string_view reason) {
    wire::Writer w;
    w.U8(kRefused);
    w.Str(name.substr(0, 4096));
    w.Str(reason.substr(0, 1024));
    return wire::WriteFrameBlocking(1, w.out());
  }

  // Asks the caller to create directory `name`; false with *why on refusal.
  bool Mkdir(const std::string& name, std::string* why) {
    if (made_.count(name)) return true;
    if (!job_.unchecked && ++created_ > job_.max_entries) {
      *why = absl::StrCat("quota: more than ", job_.max_entries, " entries");
      return false;
    }
    wire::Writer w;
    w.U8(kMkdir);
    w.Str(name);
    std::string reason;
    switch (AskCaller(w, &reason)) {
      case Answer::kNone:
        *why = "the caller did not answer";
        return false;
      case Answer::kMalformed:
        *why = "malformed answer from the caller";
        return false;
      case Answer::kRefused:
        *why = std::move(reason);
        return false;
      case Answer::kDone:
        break;
    }
    made_.insert(name);
    return true;
  }

  // Sends the request in `w` and reads the caller's answer (its errno byte and reason).
  enum class Answer { kDone, kRefused, kNone, kMalformed };
  Answer AskCaller(wire::Writer& w, std::string* reason) {
    std::string answer;
    bool eof = false;
    if (!wire::WriteFrameBlocking(1, w.out()) ||
        !wire::ReadFrameBlocking(1, 8192, &answer, &eof)) {
      return Answer::kNone;
    }
    wire::Reader r(answer);
    uint8_t err = 1;
    absl::string_view text;
    if (!r.U8(&err) || !r.Str(&text, 4096)) return Answer::kMalformed;
    if (err == 0) return Answer::kDone;
    *reason = std::string(text);
    return Answer::kRefused;
  }

  bool MkdirParents(const std::string& name, std::string* why) {
    for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 1)) {
      if (!Mkdir(name.substr(0, pos), why)) return false;
    }
    return true;
  }

  // Returns false only when the data socket is gone.
  bool Entry(archive* a, archive_entry* e) {
    // The UTF-8 form (libarchive converts from the archive's charset); the locale's
    // form only if there is none.
    const char* raw = archive_entry_pathname_utf8(e);
    if (raw == nullptr) raw = archive_entry_pathname(e);
    std::string name = raw != nullptr ? raw : "";
    mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    const char* symlink = archive_entry_symlink(e);
    if (job_.unchecked) return Unchecked(a, e, name, type, hardlink, symlink);
    // "./a" is "a"; "." itself (tar's entry for the archive's root) is skipped.
    while (name.compare(0, 2, "./") == 0) name.erase(0, 2);
    while (!name.empty() && name.back() == '/') name.pop_back();
    if (name == "." || (name.empty() && raw != nullptr && raw[0] == '.')) return true;
    absl::Status ok = CheckEntryName(name, job_.max_depth);
    if (!ok.ok()) return Refuse(raw != nullptr ? raw : "", ok.message());
    for (const std::string& link : refused_links_) {
      if (name.compare(0, link.size() + 1, link + "/") == 0) {
        return Refuse(name, "beneath a refused link");
      }
    }
    if (hardlink != nullptr) return Refuse(name, "hard link (links are not extracted)");
    if (type == AE_IFLNK) {
      refused_links_.push_back(name);
      return Refuse(name, "symbolic link (links are not extracted)");
    }
    if (type == AE_IFCHR || type == AE_IFBLK) return Refuse(name, "device node");
    if (type == AE_IFIFO) return Refuse(name, "FIFO");
    if (type == AE_IFSOCK) return Refuse(name, "socket");
    if (type != AE_IFDIR && type != AE_IFREG) return Refuse(name, "unknown entry type");
    std::string why;
    if (!MkdirParents(name, &why)) return Refuse(name, absl::StrCat("parent directory: ", why));
    if (type == AE_IFDIR) {
      if (!Mkdir(name, &why)) return Refuse(name, why);
      return true;
    }
    if (++created_ > job_.max_entries) {
      return Refuse(name, absl::StrCat("quota: more than ", job_.max_entries, " entries"));
    }
    mode_t mode = archive_entry_perm(e);
    if (mode & 07000) {
      if (!Refuse(name, "setuid/setgid/sticky bits dropped")) return false;
    }
    return WriteFile(a, name, (mode & 0777) | 0600);
  }

  // Asks the caller to create file `name`; then streams its data (kData). The caller
  // creates it beneath DIR and writes only what the quotas allow.
  bool WriteFile(archive* a, const std::string& name, mode_t mode) {
    wire::Writer w;
    w.U8(kFile);
    w.Str(name);
    w.U32(static_cast<uint32_t>(mode));
    std::string reason;
    const Answer answer = AskCaller(w, &reason);
    if (answer == Answer::kRefused) return Refuse(name, reason);
    if (answer != Answer::kDone) return false;
    bool warned = false;
    for (;;) {
      const void* buf = nullptr;
      size_t len = 0;
      la_int64_t offset = 0;
      int rc = archive_read_data_block(a, &buf, &len, &offset);
      if (rc == ARCHIVE_EOF) break;
      if (rc == ARCHIVE_WARN && !warned) {  // e.g. a bad CRC: the data is damaged
        warned = true;
        const char* msg = archive_error_string(a);
        if (!Refuse(name, absl::StrCat("damaged: ", msg != nullptr ? msg : "warning"))) {
          return false;
        }
      }
      if (rc < ARCHIVE_WARN) {
        return Refuse(name, absl::StrCat("data: ", archive_error_string(a) != nullptr
                                                       ? archive_error_string(a)
                                                       : "read error"));
      }
      if (job_.unchecked) {
        // a compromised worker ignores the quotas; the caller does not
      } else if (offset < 0 || static_cast<uint64_t>(offset) + len > job_.max_file_bytes) {
        return Refuse(name, absl::StrCat("quota: file larger than ", job_.max_file_bytes,
                                         " bytes (truncated)"));
      } else if (total_ + len > job_.max_total_bytes) {
        return Refuse(name, absl::StrCat("quota: archive larger than ", job_.max_total_bytes,
                                         " bytes in total (truncated)"));
      }
      const char* p = static_cast<const char*>(buf);
      for (size_t done = 0; done < len;) {
        size_t n = std::min(len - done, kMaxDataBytes);
        wire::Writer d;
        d.U8(kData);
        d.U64(static_cast<uint64_t>(offset) + done);
        d.Raw(absl::string_view(p + done, n));
        if (!wire::WriteFrameBlocking(1, d.out())) return false;
        done += n;
      }
      total_ += len;
    }
    return true;
  }

  // Test only: what a compromised worker would do. Raw names go to the caller; links
  // and nodes are attempted with the raw syscalls (seccomp ends the worker).
  bool Unchecked(archive* a, archive_entry* e, const std::string& name, mode_t type,
                 const char* hardlink, const char* symlink_target) {
    std::string path = absl::StrCat(job_.dir, "/", name);
    if (hardlink != nullptr) {
      (void)!link(absl::StrCat(job_.dir, "/", hardlink).c_str(), path.c_str());
      return Refuse(name, absl::StrCat("link: errno ", errno));
    }
    if (type == AE_IFLNK) {
      (void)!symlink(symlink_target != nullptr ? symlink_target : "", path.c_str());
      return Refuse(name, absl::StrCat("symlink: errno ", errno));
    }
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO) {
      (void)!mknod(path.c_str(), type | 0666, archive_entry_rdev(e));
      return Refuse(name, absl::StrCat("mknod: errno ", errno));
    }
    if (type == AE_IFDIR) {
      std::string why;
      if (!Mkdir(name, &why)) return Refuse(name, why);
      return true;
    }
    if (!job_.unchecked_data.empty()) {  // and, past every quota, data of its own
      if (!WriteFile(a, name, archive_entry_perm(e))) return false;
      for (uint64_t at : {job_.max_file_bytes - 1, job_.max_file_bytes * 3}) {
        wire::Writer d;
        d.U8(kData);
        d.U64(at);
        d.Raw(job_.unchecked_data);
        if (!wire::WriteFrameBlocking(1, d.out())) return false;
      }
      return true;
    }
    return WriteFile(a, name, archive_entry_perm(e));
  }

  uint64_t entries = 0;

 private:
  Job job_;
  std::set<std::string> made_;
  std::vector<std::string> refused_links_;
  uint64_t created_ = 0;
  uint64_t total_ = 0;
};

}  // namespace

namespace {

void ReadAllInProcess(const std::string& bytes) {
  archive* a = archive_read_new();
  archive_read_support_format_all(a);
  if (archive_read_open_memory(a, bytes.data(), bytes.size()) == ARCHIVE_OK) {
    archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      (void)archive_entry_pathname(e);
      (void)archive_entry_pathname_utf8(e);
    }
  }
  archive_read_free(a);
}

std::string WriteInProcess(int format, const char* name) {
  std::string out(64 * 1024, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format(a, format);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, 1);
  archive_entry_set_mtime(e, 1700000000, 0);
  archive_write_header(a, e);
  archive_write_data(a, "x", 1);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

}  // namespace

// C.UTF-8, loaded by the caller (newlocale reads /usr/lib/locale) and used by the
// worker's thread (uselocale reads nothing): libarchive then converts every name (UTF-16
// in 7z, CP437 or UTF-8 in zip, pax UTF-8) to UTF-8 instead of failing on non-ASCII.
locale_t g_utf8 = nullptr;

void WarmUpArchiveLibrary() {
  static bool done = [] {
    tzset();
    // LC_CTYPE only: with LC_MESSAGES not "C", strerror() would look for a catalog file.
    g_utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", nullptr);
    locale_t previous = g_utf8 != nullptr ? uselocale(g_utf8) : nullptr;
    for (int format : {ARCHIVE_FORMAT_7ZIP, ARCHIVE_FORMAT_ZIP, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED,
                       ARCHIVE_FORMAT_CPIO_SVR4_NOCRC}) {
      ReadAllInProcess(WriteInProcess(format, "warm\xc3\xa9"));
    }
    ReadAllInProcess(WriteInProcess(ARCHIVE_FORMAT_ZIP, "warm\x82"));
    if (previous != nullptr) uselocale(previous);
    return true;
  }();
  (void)done;
}

int ExtractWorkerMain(Client& client) {
  // glibc's mktime re-reads /etc/localtime on every call while TZ is unset; with TZ equal
  // to what the caller's tzset() already loaded (WarmUpArchiveLibrary) it reads nothing.
  if (getenv("TZ") == nullptr) setenv("TZ", "/etc/localtime", 1);
  if (g_utf8 != nullptr) uselocale(g_utf8);
  std::string frame;
  bool eof = false;
  if (!wire::ReadFrameBlocking(1, 64 * 1024, &frame, &eof)) return eof ? 0 : 1;
  wire::Reader r(frame);
  Job job;
  uint8_t flags = 0;
  absl::string_view dir;
  if (!r.U64(&job.max_entries) || !r.U64(&job.max_file_bytes) || !r.U64(&job.max_total_bytes) ||
      !r.U32(&job.max_depth) || !r.U8(&flags) || !r.Str(&dir, 4096)) {
    return 1;
  }
  job.unchecked = (flags & 1) != 0;
  if (job.unchecked && (flags & 2) != 0) job.unchecked_data = std::string(1 << 20, 'H');
  job.dir = std::string(dir);
  Extractor x(std::move(job));

  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_lzma(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_lz4(a);
  archive_read_support_filter_compress(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  archive_read_support_format_zip(a);
  archive_read_support_format_7zip(a);
  archive_read_support_format_cpio(a);
  std::string error;
  uint64_t entries = 0;
  if (archive_read_open_fd(a, 0, 64 * 1024) != ARCHIVE_OK) {
    error = archive_error_string(a) != nullptr ? archive_error_string(a) : "cannot open";
  } else {
    for (;;) {
      archive_entry* e = nullptr;
      int rc = archive_read_next_header(a, &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) {
        error = archive_error_string(a) != nullptr ? archive_error_string(a) : "read error";
        break;
      }
      ++entries;
      if (!x.Entry(a, e)) {
        archive_read_free(a);
        return 1;
      }
    }
  }
  archive_read_free(a);
  wire::Writer w;
  w.U8(kFinished);
  w.U64(entries);
  w.Str(error.substr(0, 4096));
  return wire::WriteFrameBlocking(1, w.out()) ? 0 : 1;
}

}  // namespace vow::parsers
