#include "broker/audit_log.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/monotonic.h"
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

AuditLog::AuditLog(int fd, size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
  if (fd < 0) return;
  struct stat st;
  const bool known = fstat(fd, &st) == 0;
  if (known && S_ISSOCK(st.st_mode)) {
    sink_ = Sink::kSocket;
    write_fd_ = fd;
  } else if (known && S_ISREG(st.st_mode)) {
    sink_ = Sink::kFd;  // a regular file does not wait for a reader
    write_fd_ = fd;
  } else {
    // A pipe, FIFO or terminal: a new open file description of our own, non-blocking,
    // so that the caller's fd (often stderr) keeps its flags.
    const std::string self = absl::StrCat("/proc/self/fd/", fd);
    int own = open(self.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (own >= 0) {
      sink_ = Sink::kOwnFd;
      own_fd_ = write_fd_ = own;
    } else {
      int fl = fcntl(fd, F_GETFL);
      if (fl >= 0) (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
      sink_ = Sink::kFd;
      write_fd_ = fd;
    }
  }
  writer_ = std::thread([this] { WriterLoop(); });
}

AuditLog::~AuditLog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (writer_.joinable()) writer_.join();
  if (own_fd_ >= 0) close(own_fd_);
}

void AuditLog::Record(AuditEntry entry) {
  if (entry.time == absl::InfinitePast()) entry.time = absl::Now();
  std::string line = sink_ != Sink::kNone ? FormatLine(entry) : std::string();
  absl::MutexLock lock(&mu_);
  if (sink_ != Sink::kNone) {
    if (queued_bytes_ + line.size() > kMaxQueuedBytes) {
      ++dropped_;
      ++unreported_drops_;
    } else {
      queued_bytes_ += line.size();
      queue_.push_back(std::move(line));
    }
  }
  ++total_;
  ring_.push_back(std::move(entry));
  while (ring_.size() > capacity_) ring_.pop_front();
}

void AuditLog::WriterLoop() {
  // Every signal is blocked here; above all SIGPIPE, which a write to a pipe without a
  // reader sends to this thread: it stays pending on it and never reaches the broker.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    std::deque<std::string> batch;
    uint64_t drops = 0;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](AuditLog* log) ABSL_EXCLUSIVE_LOCKS_REQUIRED(log->mu_) {
            return log->stop_ || !log->queue_.empty();
          },
          this));
      batch.swap(queue_);
      queued_bytes_ = 0;
      drops = unreported_drops_;
      unreported_drops_ = 0;
      stopping = stop_;
      if (batch.empty()) {
        unreported_drops_ = drops;  // reported before the next line that is written
        return;                     // (only a stop wakes us with an empty queue)
      }
      writing_ = true;
    }
    absl::Time deadline =
        stopping ? MonotonicNow() + kStopDrainTimeout : absl::InfiniteFuture();
    uint64_t unreported = 0;
    uint64_t failed = 0;
    if (drops > 0) {
      std::string line = absl::StrCat(
          absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()),
          " audit dropped=", drops, " reason=\"the log's reader was not keeping up\"\n");
      if (!WriteLine(line, deadline)) unreported += drops;
    }
    for (const std::string& line : batch) {
      if (!WriteLine(line, deadline)) ++failed;
    }
    absl::MutexLock lock(&mu_);
    dropped_ += failed;
    unreported_drops_ += unreported + failed;
    writing_ = false;
  }
}

bool AuditLog::WriteLine(const std::string& line, absl::Time deadline) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = sink_ == Sink::kSocket
                    ? send(write_fd_, p, left, MSG_DONTWAIT | MSG_NOSIGNAL)
                    : write(write_fd_, p, left);
    if (n > 0) {
      p += n;
      left -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;  // EPIPE, ...
    // Full: wait for room in slices, so that a stop is noticed.
    for (;;) {
      const absl::Time now = MonotonicNow();
      {
        absl::MutexLock lock(&mu_);
        if (stop_ && deadline == absl::InfiniteFuture()) deadline = now + kStopDrainTimeout;
      }
      if (now >= deadline) return false;
      // An infinite deadline converts to INT64_MAX milliseconds: compare before adding.
      const int64_t left_ms = absl::ToInt64Milliseconds(deadline - now);
      const int slice_ms = static_cast<int>(left_ms >= 50 ? 50 : left_ms + 1);
      pollfd pfd = {write_fd_, POLLOUT, 0};
      int r = poll(&pfd, 1, slice_ms);
      if (r > 0) break;
      if (r < 0 && errno != EINTR) return false;
    }
  }
  return true;
}

std::vector<AuditEntry> AuditLog::Entries() const {
  absl::MutexLock lock(&mu_);
  return std::vector<AuditEntry>(ring_.begin(), ring_.end());
}

uint64_t AuditLog::total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

uint64_t AuditLog::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

bool AuditLog::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](AuditLog* log) ABSL_EXCLUSIVE_LOCKS_REQUIRED(log->mu_) {
            return log->queue_.empty() && !log->writing_;
          },
          this),
      timeout);
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
