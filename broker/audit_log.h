// The broker's audit log: one line per decision on a worker's request (allowed, denied,
// or the worker ended), written to an fd and kept in a bounded in-memory ring. Runs in
// the privileged broker. Requests and reasons may carry worker bytes: they are escaped
// here so that a worker can never forge a line (no newline, no control byte, no
// unescaped quote ever reaches the output).
//
// Line format (one '\n'-terminated line per entry):
//   <RFC3339 time> worker=<id> pid=<pid> <allow|deny|end> <request> reason="<reason>"
// e.g.
//   2024-01-02T03:04:05.123456Z worker=3 pid=4242 deny open path="/etc/shadow"
//   flags=O_RDONLY|O_CLOEXEC reason="no rule covers the path: Permission denied (errno 13)"
// (on one line). The time is left out when the entry has none.
//
// Writing never holds up the broker: Record() formats the line, appends it to a bounded
// queue under a mutex (no syscall is made while it is held) and returns. One writer
// thread per log drains the queue into the fd without blocking: a socket with
// send(MSG_DONTWAIT | MSG_NOSIGNAL); a pipe, FIFO or terminal through its own
// non-blocking open file description (reopened via /proc/self/fd, so the caller's fd,
// e.g. stderr, keeps its flags; if that fails, O_NONBLOCK is set on the fd itself); a
// regular file with plain write(). When the reader does not keep up (the queue holds
// kMaxQueuedBytes) lines are dropped and counted, and the next line written says so:
//   <RFC3339 time> audit dropped=<N> reason="the log's reader was not keeping up"
// A reader that closed its end only makes lines drop: SIGPIPE is blocked in the writer
// thread (a thread-directed SIGPIPE then stays pending there and never reaches the
// broker) and sockets are written with MSG_NOSIGNAL.
//
// Thread-safety: Record(), Entries(), Flush() may be called from any thread; lines from
// concurrent Record() calls never interleave. The destructor stops the writer (after at
// most kStopDrainTimeout spent draining what is queued) and joins it.
#ifndef VOW_BROKER_AUDIT_LOG_H_
#define VOW_BROKER_AUDIT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vow {

struct AuditEntry {
  uint64_t worker_id = 0;
  int pid = 0;
  // What was asked, e.g. `open path="/etc/x" flags=O_RDONLY|O_CLOEXEC`. Worker bytes in
  // it should already be quoted with EscapeBytes(); FormatLine() escapes any byte that
  // is still a control or non-ASCII byte.
  std::string request;
  bool allowed = false;
  std::string reason;
  // Added: the verdict is "end" (the worker was ended) instead of allow/deny.
  bool ended = false;
  // Added: when it was decided. Record() fills in absl::Now() if left infinite-past.
  absl::Time time = absl::InfinitePast();
};

class AuditLog {
 public:
  static constexpr size_t kDefaultCapacity = 10000;
  // The longest reason FormatLine() writes (escaped worker bytes can be in it).
  static constexpr size_t kMaxReasonBytes = 1024;
  // Lines waiting for the writer thread, in bytes; beyond it lines are dropped.
  static constexpr size_t kMaxQueuedBytes = 1 << 20;
  static constexpr absl::Duration kStopDrainTimeout = absl::Milliseconds(200);

  // Writes lines to `fd` (not owned; it must outlive the log; -1: nowhere, and no
  // thread is started) and keeps the last `capacity` entries in memory.
  explicit AuditLog(int fd = -1, size_t capacity = kDefaultCapacity);
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  ~AuditLog();

  // Never blocks on the fd (see the file comment).
  void Record(AuditEntry entry);
  // A copy of the kept entries, oldest first.
  std::vector<AuditEntry> Entries() const;
  // How many entries were recorded in total (including those dropped from the ring).
  uint64_t total() const;
  // How many lines were dropped because the fd could not take them.
  uint64_t dropped() const;
  // Waits until every queued line has been written or dropped, at most `timeout`.
  // True when the queue is empty. (For tests and orderly shutdown.)
  bool Flush(absl::Duration timeout);

  // The line for `entry`, with its trailing '\n'.
  static std::string FormatLine(const AuditEntry& entry);
  // `bytes` for use inside double quotes: printable ASCII stays, `"` and `\` become
  // `\"` and `\\`, every other byte (NUL, control, DEL, >= 0x80) becomes `\xNN`. Only the
  // first `max` input bytes are shown; if there were more, the marker `\...(+N bytes)`
  // follows (`\.` never appears otherwise, so the marker cannot be forged).
  static std::string EscapeBytes(absl::string_view bytes, size_t max = 256);
  // open(2) flags by name: "O_RDWR|O_CREAT|0x40000000" (access mode first, then the known
  // bits, then any unknown bits in hex).
  static std::string DescribeOpenFlags(uint32_t flags);

 private:
  enum class Sink : uint8_t { kNone, kSocket, kOwnFd, kFd };

  void WriterLoop();
  // Writes `line` without blocking, waiting for POLLOUT until `deadline` (or until
  // stopping). False: the line could not be written (dropped).
  bool WriteLine(const std::string& line, absl::Time deadline);

  const size_t capacity_;
  Sink sink_ = Sink::kNone;
  int write_fd_ = -1;  // the caller's fd, or own_fd_
  int own_fd_ = -1;    // our non-blocking reopen of a pipe/FIFO/terminal, owned

  mutable absl::Mutex mu_;
  std::deque<AuditEntry> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // the writer holds lines taken off the queue
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t unreported_drops_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace vow

#endif  // VOW_BROKER_AUDIT_LOG_H_
