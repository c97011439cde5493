// Reading and writing a worker's memory, for the path calls the broker answers. Runs in
// the broker; the addresses come from a worker's registers and are hostile: an address
// may be unmapped, a string may not end within PATH_MAX bytes or within the mapping, and
// another thread of the worker may change the bytes while they are read. None of that
// can hurt the broker: process_vm_readv/writev copy between address spaces and fail
// with EFAULT on a bad page; the broker decides on its own copy of the bytes, never on
// the worker's memory afterwards (so a string changed after the read changes nothing).
//
// After reading, the caller must check that the notification is still live
// (SECCOMP_IOCTL_NOTIF_ID_VALID): the thread may have died and its tid been reused.
#ifndef VOW_BROKER_WORKER_MEMORY_H_
#define VOW_BROKER_WORKER_MEMORY_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace vow {

// Reads the NUL-terminated string at `addr` in thread `tid` into *out (without the NUL).
// Returns 0, -EFAULT (unmapped, or the string runs into an unmapped page), or
// -ENAMETOOLONG (no NUL within `max` bytes). Reads page by page, never past the page
// that holds the NUL.
int ReadWorkerString(pid_t tid, uint64_t addr, size_t max, std::string* out);

// Copies `len` bytes from `addr` in thread `tid`. 0 or -EFAULT.
int ReadWorkerMemory(pid_t tid, uint64_t addr, void* out, size_t len);

// Copies `len` bytes to `addr` in thread `tid`. 0 or -EFAULT (also when only part of it
// could be written).
int WriteWorkerMemory(pid_t tid, uint64_t addr, const void* data, size_t len);

}  // namespace vow

#endif  // VOW_BROKER_WORKER_MEMORY_H_
