#include "broker/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "broker/open_flags.h"

namespace vow {
namespace {

// Escapes what is not printable ASCII as \xNN, leaving quotes and backslashes alone (the
// request is assembled by the broker from already-escaped pieces; this is the last line
// of defence against a newline or a terminal escape reaching the log).
std::string ScrubLine(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

AuditLog::AuditLog(int fd, size_t capacity) : fd_(fd), capacity_(capacity == 0 ? 1 : capacity) {}

void AuditLog::Record(AuditEntry entry) {
  if (entry.time == absl::InfinitePast()) entry.time = absl::Now();
  std::string line = fd_ >= 0 ? FormatLine(entry) : std::string();
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) {
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      ssize_t n = write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // dropped: the log never blocks or ends the broker
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  ++total_;
  ring_.push_back(std::move(entry));
  while (ring_.size() > capacity_) ring_.pop_front();
}

std::vector<AuditEntry> AuditLog::Entries() const {
  absl::MutexLock lock(&mu_);
  return std::vector<AuditEntry>(ring_.begin(), ring_.end());
}

uint64_t AuditLog::total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

std::string AuditLog::FormatLine(const AuditEntry& entry) {
  std::string line;
  if (entry.time != absl::InfinitePast() && entry.time != absl::InfiniteFuture()) {
    absl::StrAppend(&line,
                    absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", entry.time, absl::UTCTimeZone()),
                    " ");
  }
  const char* verdict = entry.ended ? "end" : entry.allowed ? "allow" : "deny";
  absl::StrAppend(&line, "worker=", entry.worker_id, " pid=", entry.pid, " ", verdict, " ",
                  ScrubLine(entry.request), " reason=\"",
                  EscapeBytes(entry.reason, kMaxReasonBytes), "\"\n");
  return line;
}

std::string AuditLog::EscapeBytes(absl::string_view bytes, size_t max) {
  const size_t shown = bytes.size() < max ? bytes.size() : max;
  std::string out;
  out.reserve(shown + 16);
  for (size_t i = 0; i < shown; ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < bytes.size()) absl::StrAppend(&out, "\\...(+", bytes.size() - shown, " bytes)");
  return out;
}

std::string AuditLog::DescribeOpenFlags(uint32_t flags) {
  std::string out;
  switch (flags & O_ACCMODE) {
    case O_RDONLY: out = "O_RDONLY"; break;
    case O_WRONLY: out = "O_WRONLY"; break;
    case O_RDWR: out = "O_RDWR"; break;
    default: out = "O_ACCMODE"; break;  // 3: not a valid access mode
  }
  uint32_t rest = flags & ~static_cast<uint32_t>(O_ACCMODE);
  struct Name {
    uint32_t bits;
    const char* name;
  };
  // Composite names first, so that they take both of their bits.
  static constexpr Name kNames[] = {
      {O_TMPFILE, "O_TMPFILE"},
      {O_SYNC, "O_SYNC"},
      {O_CREAT, "O_CREAT"},
      {O_EXCL, "O_EXCL"},
      {O_NOCTTY, "O_NOCTTY"},
      {O_TRUNC, "O_TRUNC"},
      {O_APPEND, "O_APPEND"},
      {O_NONBLOCK, "O_NONBLOCK"},
      {O_DSYNC, "O_DSYNC"},
      {O_ASYNC, "O_ASYNC"},
      {O_DIRECT, "O_DIRECT"},
      {kKernelOLargefile, "O_LARGEFILE"},
      {O_DIRECTORY, "O_DIRECTORY"},
      {O_NOFOLLOW, "O_NOFOLLOW"},
      {O_NOATIME, "O_NOATIME"},
      {O_CLOEXEC, "O_CLOEXEC"},
      {kOSyncBit, "__O_SYNC"},
      {O_PATH, "O_PATH"},
      {kOTmpfileBit, "__O_TMPFILE"},
  };
  for (const Name& n : kNames) {
    if ((rest & n.bits) == n.bits) {
      absl::StrAppend(&out, "|", n.name);
      rest &= ~n.bits;
    }
  }
  if (rest != 0) absl::StrAppendFormat(&out, "|0x%x", rest);
  return out;
}

}  // namespace vow
