// Path calls: what a worker's syscall that the filter sent to the broker (seccomp user
// notification) asks for. Runs in the broker; the registers come from the kernel (the
// syscall number and arch are the kernel's word), but every argument value is chosen by
// the worker and hostile, and so is every byte behind a pointer.
//
// DecodePathCall() is pure: it maps (arch, nr, args) to a PathCall without touching the
// worker's memory; the strings are read later (worker_memory.h) and the call is decided
// by the broker's handler. A syscall that is not a path call gives nullopt.
#ifndef VOW_BROKER_PATH_CALL_H_
#define VOW_BROKER_PATH_CALL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "policies/promise_compiler.h"
#include "policies/promises.h"

namespace vow {

struct PathCall {
  enum class Op : uint8_t {
    kOpen,      // open/openat/creat: flags, mode
    kStat,      // stat/lstat/newfstatat/statx: buf, stat_flags, statx_mask
    kAccess,    // access/faccessat/faccessat2: mode (R_OK...), stat_flags
    kReadlink,  // readlink/readlinkat: buf, bufsize
    kMkdir,     // mode
    kUnlink,    // unlink/unlinkat without AT_REMOVEDIR
    kRmdir,     // rmdir/unlinkat with AT_REMOVEDIR
    kRename,    // path2 (renameat2 flags in `flags`)
    kChdir,     // chdir
    kFchdir,    // fchdir: dirfd is the fd
    kGetcwd,    // buf, bufsize
    kExec,      // execve/execveat
    kMmapExec,  // mmap(PROT_EXEC) of a file: fd in dirfd, prot in mode, mmap flags in flags
    kConnect,   // connect(fd = dirfd, addr = buf, addrlen = bufsize)
    kXattrRead,  // getxattr family: EOPNOTSUPP, quietly
    kTruncate,  // truncate(path, length = bufsize)
    kChmod,     // chmod/fchmodat: mode
    kUtimes,    // utimensat: buf = times (or 0), path may be NULL (the fd)
    kStatfs,    // statfs: buf
    kFchmod,    // fchmod: dirfd is the fd, mode
    kFchown,    // fchown: dirfd is the fd, args[1] the uid, args[2] the gid
    kUnsupported,  // a path call the broker does not perform (refused, fail closed)
  };
  Op op = Op::kUnsupported;
  std::string syscall;      // e.g. "openat"
  int nr = -1;
  // The directory a relative path is resolved against (AT_FDCWD = -100), or the fd of
  // fchdir/mmap. Low 32 bits of the register, as the kernel reads an int.
  int dirfd = -100;
  uint64_t path = 0;        // address of the NUL-terminated path in the worker
  int dirfd2 = -100;        // rename: the second path
  uint64_t path2 = 0;
  bool path_may_be_null = false;  // newfstatat/statx/utimensat: NULL means "the fd"
  uint32_t flags = 0;       // open flags; renameat2 flags
  uint32_t mode = 0;        // open/mkdir mode; access mode
  uint32_t at_flags = 0;    // AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, AT_REMOVEDIR, AT_EACCESS
  uint64_t buf = 0;         // stat/statx/readlink/getcwd output buffer in the worker
  uint64_t bufsize = 0;
  bool statx = false;       // the buffer is a struct statx
  uint32_t statx_mask = 0;
  uint64_t args[6] = {};

  // The promise this call needs (rpath for reading, wpath for writing an existing
  // file, cpath for creating or removing; exec for execve). kStdio: none.
  Promise NeededPromise() const;
  // Every promise the call needs (an O_RDWR|O_CREAT open: rpath, wpath and cpath, as on
  // OpenBSD); NeededPromise() is the first of them that `held` lacks, or the main one.
  PromiseSet NeededPromises() const;
  Promise MissingPromise(PromiseSet held) const;
};

// nullopt if `nr` on `arch` is not a path call.
std::optional<PathCall> DecodePathCall(Arch arch, int nr, const uint64_t args[6]);

// "openat(\"/etc/localtime\", O_RDONLY|O_CLOEXEC)": the call as a person reads it,
// with the strings the broker read (escaped) and flags by name.
std::string DescribePathCall(const PathCall& call, const std::string& path,
                             const std::string& path2 = "");

}  // namespace vow

#endif  // VOW_BROKER_PATH_CALL_H_
