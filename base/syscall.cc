#include "base/syscall.h"

#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vow {
namespace {
constexpr char kErrnoPayload[] = "vow/errno";

absl::StatusCode CodeFor(int err) {
  switch (err) {
    case ENOENT: return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM: return absl::StatusCode::kPermissionDenied;
    case EEXIST: return absl::StatusCode::kAlreadyExists;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
    case EXDEV: return absl::StatusCode::kInvalidArgument;
    case ENOSYS:
    case EOPNOTSUPP: return absl::StatusCode::kUnimplemented;
    case EAGAIN:
    case EMFILE:
    case ENFILE:
    case ENOMEM: return absl::StatusCode::kResourceExhausted;
    case ETIMEDOUT: return absl::StatusCode::kDeadlineExceeded;
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE: return absl::StatusCode::kUnavailable;
    default: return absl::StatusCode::kUnknown;
  }
}
}  // namespace

absl::Status ErrnoStatus(int err, absl::string_view what) {
  absl::Status status(CodeFor(err), absl::StrCat(what, ": ", std::strerror(err),
                                                 " (errno ", err, ")"));
  status.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(err)));
  return status;
}

int ErrnoOf(const absl::Status& status) {
  auto payload = status.GetPayload(kErrnoPayload);
  if (!payload.has_value()) return 0;
  int err = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &err)) return 0;
  return err;
}

int ErrnoOrDefault(const absl::Status& status, int fallback) {
  int err = ErrnoOf(status);
  return err != 0 ? err : fallback;
}

}  // namespace vow
