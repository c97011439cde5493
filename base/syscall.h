// The one helper through which vow runs syscalls outside signal handlers. Both sides.
//
// `Syscall("open", [&] { return ::open(p, f); })` retries on EINTR and turns -1 into an
// absl::Status whose message names the call and errno, and whose errno can be read back
// with ErrnoOf(). Not async-signal-safe (a failing call builds a string).
#ifndef VOW_BASE_SYSCALL_H_
#define VOW_BASE_SYSCALL_H_

#include <cerrno>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vow {

// A Status for a failed call: the code follows errno (ENOENT -> NotFound, EACCES/EPERM
// -> PermissionDenied, ...), the message is "<what>: <strerror> (errno N)", and the errno
// itself is kept as a payload for ErrnoOf().
absl::Status ErrnoStatus(int err, absl::string_view what);

// The errno a Status from ErrnoStatus() carries, or 0 if it has none.
int ErrnoOf(const absl::Status& status);

// The errno a status should map to on the wire when it does not carry one.
int ErrnoOrDefault(const absl::Status& status, int fallback);

template <typename F>
[[nodiscard]] absl::StatusOr<long> Syscall(absl::string_view what, F&& call) {
  for (;;) {
    long rc = static_cast<long>(call());
    if (rc != -1) return rc;
    if (errno == EINTR) continue;
    return ErrnoStatus(errno, what);
  }
}

}  // namespace vow

#endif  // VOW_BASE_SYSCALL_H_
