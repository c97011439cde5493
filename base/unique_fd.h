// An owning file descriptor. Both sides. Closing never retries on EINTR (Linux releases
// the descriptor even when close() reports EINTR).
#ifndef VOW_BASE_UNIQUE_FD_H_
#define VOW_BASE_UNIQUE_FD_H_

namespace vow {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Gives up ownership; the caller closes the fd.
  [[nodiscard]] int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the held fd (if any) and takes `fd`. Async-signal-safe.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Closes both (either may be invalid), in one close_range when their numbers are
// adjacent: then the range holds exactly these two, so no other fd (another thread's) is
// touched; otherwise, or if close_range fails (nothing closed then), one close each.
// Both are invalid afterwards. Async-signal-safe.
void CloseBoth(UniqueFd& a, UniqueFd& b);

// Opens /dev/null onto each of fds 0, 1 and 2 that is closed. Run before a process opens
// anything else: otherwise its first fds (a broker's epoll, eventfd, socketpairs) land on
// 0-2, where writes meant for stderr and a worker's inherited stdio would reach them.
// False when one could not be filled (then the caller must not go on).
bool FillClosedStdio();

}  // namespace vow

#endif  // VOW_BASE_UNIQUE_FD_H_
