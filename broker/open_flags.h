// open(2) flag constants the broker needs beyond what glibc names. Privileged side (the
// broker decides on these bits; the worker sends them raw).
#ifndef VOW_BROKER_OPEN_FLAGS_H_
#define VOW_BROKER_OPEN_FLAGS_H_

#include <fcntl.h>

#include <cstdint>

namespace vow {

// The kernel's O_LARGEFILE bit. glibc defines O_LARGEFILE as 0 on 64-bit targets, but a
// worker that forwards raw open(2) flags (from a SIGSYS handler, say) or a 32-bit libc
// may send the real bit.
#if defined(__x86_64__) || defined(__i386__)
inline constexpr uint32_t kKernelOLargefile = 0100000;
#elif defined(__aarch64__)
inline constexpr uint32_t kKernelOLargefile = 0400000;
#else
#error "define the kernel's O_LARGEFILE bit for this architecture"
#endif

// O_TMPFILE is this bit together with O_DIRECTORY.
inline constexpr uint32_t kOTmpfileBit = O_TMPFILE & ~O_DIRECTORY;
// O_SYNC is this bit together with O_DSYNC.
inline constexpr uint32_t kOSyncBit = O_SYNC & ~O_DSYNC;

}  // namespace vow

#endif  // VOW_BROKER_OPEN_FLAGS_H_
