#include "base/unique_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace vow {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) ::close(fd_);
  fd_ = fd;
}

void CloseBoth(UniqueFd& a, UniqueFd& b) {
  if (a.valid() && b.valid() && (a.get() == b.get() + 1 || b.get() == a.get() + 1)) {
    const unsigned low = static_cast<unsigned>(a.get() < b.get() ? a.get() : b.get());
    if (::close_range(low, low + 1, 0) == 0) {
      (void)a.release();
      (void)b.release();
      return;
    }
  }
  a.reset();
  b.reset();
}

bool FillClosedStdio() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // The lowest free fd is this one: 0..fd-1 are open (checked or filled above).
    const int null_fd = open("/dev/null", O_RDWR);
    if (null_fd != fd) {
      if (null_fd >= 0) close(null_fd);
      return false;
    }
  }
  return true;
}

}  // namespace vow
