#include "base/unique_fd.h"

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

}  // namespace vow
