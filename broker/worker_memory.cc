#include "broker/worker_memory.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace vow {

int ReadWorkerString(pid_t tid, uint64_t addr, size_t max, std::string* out) {
  out->clear();
  if (addr == 0) return -EFAULT;
  static const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  char chunk[4096];
  uint64_t at = addr;
  while (out->size() < max) {
    // Up to the end of this page (so a read never fails because a LATER page is
    // unmapped), and at most what is still allowed.
    size_t in_page = kPage - static_cast<size_t>(at % kPage);
    size_t want = std::min<size_t>({in_page, sizeof(chunk), max - out->size()});
    struct iovec local = {chunk, want};
    struct iovec remote = {reinterpret_cast<void*>(at), want};
    ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
    if (n < 0) return errno == ESRCH ? -ESRCH : -EFAULT;
    if (n == 0) return -EFAULT;
    const void* nul = memchr(chunk, '\0', static_cast<size_t>(n));
    if (nul != nullptr) {
      out->append(chunk, static_cast<const char*>(nul) - chunk);
      return 0;
    }
    out->append(chunk, static_cast<size_t>(n));
    at += static_cast<uint64_t>(n);
  }
  return -ENAMETOOLONG;
}

int ReadWorkerMemory(pid_t tid, uint64_t addr, void* out, size_t len) {
  if (len == 0) return 0;
  struct iovec local = {out, len};
  struct iovec remote = {reinterpret_cast<void*>(addr), len};
  ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
  if (n < 0 || static_cast<size_t>(n) != len) return -EFAULT;
  return 0;
}

int WriteWorkerMemory(pid_t tid, uint64_t addr, const void* data, size_t len) {
  if (len == 0) return 0;
  struct iovec local = {const_cast<void*>(data), len};
  struct iovec remote = {reinterpret_cast<void*>(addr), len};
  ssize_t n = process_vm_writev(tid, &local, 1, &remote, 1, 0);
  if (n < 0 || static_cast<size_t>(n) != len) return -EFAULT;
  return 0;
}

}  // namespace vow
