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
// Thread-safety: Record() and Entries() may be called from any thread; lines from
// concurrent Record() calls never interleave.
#ifndef VOW_BROKER_AUDIT_LOG_H_
#define VOW_BROKER_AUDIT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
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

  // Writes lines to `fd` (not owned; it must outlive the log; -1: nowhere) and keeps the
  // last `capacity` entries in memory. A failed or short write drops (the rest of) that
  // line: logging never blocks the broker on errors and never ends it.
  explicit AuditLog(int fd = -1, size_t capacity = kDefaultCapacity);
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void Record(AuditEntry entry);
  // A copy of the kept entries, oldest first.
  std::vector<AuditEntry> Entries() const;
  // How many entries were recorded in total (including those dropped from the ring).
  uint64_t total() const;

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
  const int fd_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<AuditEntry> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vow

#endif  // VOW_BROKER_AUDIT_LOG_H_
