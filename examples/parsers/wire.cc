#include "examples/parsers/wire.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/syscall.h"

namespace vow::parsers::wire {

bool Reader::Take(size_t n, absl::string_view* out) {
  if (!ok_ || n > in_.size()) {
    ok_ = false;
    return false;
  }
  *out = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}

bool Reader::U8(uint8_t* v) {
  absl::string_view b;
  if (!Take(1, &b)) return false;
  *v = static_cast<uint8_t>(b[0]);
  return true;
}

bool Reader::U32(uint32_t* v) {
  absl::string_view b;
  if (!Take(4, &b)) return false;
  *v = 0;
  for (int i = 3; i >= 0; --i) *v = (*v << 8) | static_cast<uint8_t>(b[i]);
  return true;
}

bool Reader::U64(uint64_t* v) {
  absl::string_view b;
  if (!Take(8, &b)) return false;
  *v = 0;
  for (int i = 7; i >= 0; --i) *v = (*v << 8) | static_cast<uint8_t>(b[i]);
  return true;
}

bool Reader::Str(absl::string_view* s, size_t max) {
  uint32_t n = 0;
  if (!U32(&n)) return false;
  if (n > max) {
    ok_ = false;
    return false;
  }
  return Take(n, s);
}

namespace {

absl::Status WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("worker timed out");
    pollfd p{fd, events, 0};
    int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
    int rc = poll(&p, 1, ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return ErrnoStatus(errno, "poll");
    if (rc > 0) return absl::OkStatus();
  }
}

// Reads exactly `len` bytes; *got counts what arrived.
absl::Status RecvAll(int fd, char* buf, size_t len, absl::Time deadline, size_t* got) {
  *got = 0;
  while (*got < len) {
    ssize_t n = recv(fd, buf + *got, len - *got, MSG_DONTWAIT);
    if (n > 0) {
      *got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return absl::DataLossError("the worker hung up");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return ErrnoStatus(errno, "recv from worker");
    absl::Status s = WaitFor(fd, POLLIN, deadline);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// recvmsg that takes an fd sent with the bytes into *received (the first one; any other
// is closed), so that no fd is left queued or lost.
ssize_t RecvTakingFds(int fd, char* buf, size_t len, UniqueFd* received) {
  iovec iov{buf, len};
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int passed = -1;
      memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (!*received) {
        *received = UniqueFd(passed);
      } else {
        close(passed);
      }
    }
  }
  return n;
}

}  // namespace

absl::Status SendFrame(int fd, absl::string_view payload, absl::Time deadline, int pass_fd) {
  Writer w;
  w.U32(static_cast<uint32_t>(payload.size()));
  std::string header = std::move(w.out());
  while (pass_fd >= 0) {  // the fd rides on the header's first byte
    iovec iov{header.data(), 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return ErrnoStatus(errno, "sendmsg to worker");
    absl::Status s = WaitFor(fd, POLLOUT, deadline);
    if (!s.ok()) return s;
  }
  if (pass_fd >= 0) header.erase(0, 1);
  for (absl::string_view part : {absl::string_view(header), payload}) {
    size_t done = 0;
    while (done < part.size()) {
      ssize_t n = send(fd, part.data() + done, part.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return ErrnoStatus(errno, "send to worker");
      absl::Status s = WaitFor(fd, POLLOUT, deadline);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status RecvFrame(int fd, size_t max_bytes, absl::Time deadline, std::string* payload) {
  char header[4];
  size_t got = 0;
  absl::Status s = RecvAll(fd, header, 4, deadline, &got);
  if (!s.ok()) {
    if (absl::IsDataLoss(s) && got == 0) return absl::OutOfRangeError("the worker hung up");
    return s;
  }
  uint32_t len = 0;
  Reader(absl::string_view(header, 4)).U32(&len);
  if (len > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the worker announced a frame of ", len, " bytes; the limit is ", max_bytes));
  }
  payload->resize(len);
  return RecvAll(fd, payload->data(), len, deadline, &got);
}

bool ReadFrameBlocking(int fd, size_t max_bytes, std::string* payload, bool* eof,
                       UniqueFd* received) {
  *eof = false;
  auto read_full = [fd, received](char* buf, size_t len) {
    size_t got = 0;
    while (got < len) {
      ssize_t n = received != nullptr ? RecvTakingFds(fd, buf + got, len - got, received)
                                      : read(fd, buf + got, len - got);
      if (n > 0) {
        got += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break;
      }
    }
    return got;
  };
  char header[4];
  size_t got = read_full(header, 4);
  if (got == 0) {
    *eof = true;
    return false;
  }
  if (got < 4) return false;
  uint32_t len = 0;
  Reader(absl::string_view(header, 4)).U32(&len);
  if (len > max_bytes) return false;
  payload->resize(len);
  return read_full(payload->data(), len) == len;
}

bool WriteFrameBlocking(int fd, absl::string_view payload) {
  Writer w;
  w.U32(static_cast<uint32_t>(payload.size()));
  for (absl::string_view part : {absl::string_view(w.out()), payload}) {
    size_t done = 0;
    while (done < part.size()) {
      ssize_t n = write(fd, part.data() + done, part.size() - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return false;
      }
    }
  }
  return true;
}

}  // namespace vow::parsers::wire
