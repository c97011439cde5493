#include "broker/path_call.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "broker/audit_log.h"
#include "broker/open_flags.h"

namespace vow {
namespace {

int Int(uint64_t reg) { return static_cast<int>(static_cast<uint32_t>(reg)); }
uint32_t U32(uint64_t reg) { return static_cast<uint32_t>(reg); }

}  // namespace

Promise PathCall::NeededPromise() const {
  switch (op) {
    case Op::kOpen:
      if ((flags & (O_CREAT | kOTmpfileBit)) != 0) return Promise::kCpath;
      if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0) return Promise::kWpath;
      return Promise::kRpath;
    case Op::kStat:
    case Op::kAccess:
    case Op::kReadlink:
    case Op::kChdir:
    case Op::kFchdir:
    case Op::kGetcwd:
      return Promise::kRpath;
    case Op::kMkdir:
    case Op::kUnlink:
    case Op::kRmdir:
    case Op::kRename:
      return Promise::kCpath;
    case Op::kExec:
      return Promise::kExec;
    case Op::kMmapExec:
      return Promise::kProtExec;
    case Op::kConnect:
      return Promise::kInet;  // kUnix for AF_UNIX: the handler decides on the family
    case Op::kXattrRead:
    case Op::kStatfs:
      return Promise::kRpath;
    case Op::kTruncate:
      return Promise::kWpath;
    case Op::kChmod:
    case Op::kUtimes:
    case Op::kFchmod:
      return Promise::kFattr;
    case Op::kFchown:
      return Promise::kChown;
    case Op::kUnsupported:
      return Promise::kCpath;
  }
  return Promise::kCpath;
}

PromiseSet PathCall::NeededPromises() const {
  PromiseSet out;
  if (op != Op::kOpen) {
    out.insert(NeededPromise());
    return out;
  }
  const uint32_t acc = flags & O_ACCMODE;
  const bool path_only = (flags & O_PATH) != 0;
  if (!path_only && (acc == O_RDONLY || acc == O_RDWR)) out.insert(Promise::kRpath);
  if (path_only) out.insert(Promise::kRpath);
  if (acc == O_WRONLY || acc == O_RDWR || (flags & (O_TRUNC | O_APPEND)) != 0) {
    out.insert(Promise::kWpath);
  }
  if ((flags & (O_CREAT | kOTmpfileBit)) != 0) out.insert(Promise::kCpath);
  return out;
}

Promise PathCall::MissingPromise(PromiseSet held) const {
  const PromiseSet needed = NeededPromises();
  for (int i = 0; i < kPromiseCount; ++i) {
    const Promise p = static_cast<Promise>(i);
    if (needed.contains(p) && !held.contains(p)) return p;
  }
  return NeededPromise();
}

std::optional<PathCall> DecodePathCall(Arch arch, int nr, const uint64_t args[6]) {
  const std::string name = SyscallName(arch, nr);
  PathCall c;
  c.syscall = name;
  c.nr = nr;
  for (int i = 0; i < 6; ++i) c.args[i] = args[i];
  using Op = PathCall::Op;
  if (name == "open") {
    c.op = Op::kOpen, c.path = args[0], c.flags = U32(args[1]), c.mode = U32(args[2]);
  } else if (name == "openat") {
    c.op = Op::kOpen, c.dirfd = Int(args[0]), c.path = args[1], c.flags = U32(args[2]),
    c.mode = U32(args[3]);
  } else if (name == "creat") {
    c.op = Op::kOpen, c.path = args[0], c.flags = O_CREAT | O_WRONLY | O_TRUNC,
    c.mode = U32(args[1]);
  } else if (name == "stat" || name == "lstat") {
    c.op = Op::kStat, c.path = args[0], c.buf = args[1];
    c.at_flags = name == "lstat" ? AT_SYMLINK_NOFOLLOW : 0;
  } else if (name == "newfstatat") {
    c.op = Op::kStat, c.dirfd = Int(args[0]), c.path = args[1], c.buf = args[2],
    c.at_flags = U32(args[3]), c.path_may_be_null = true;
  } else if (name == "statx") {
    c.op = Op::kStat, c.dirfd = Int(args[0]), c.path = args[1], c.at_flags = U32(args[2]),
    c.statx_mask = U32(args[3]), c.buf = args[4], c.statx = true, c.path_may_be_null = true;
  } else if (name == "access") {
    c.op = Op::kAccess, c.path = args[0], c.mode = U32(args[1]);
  } else if (name == "faccessat") {
    c.op = Op::kAccess, c.dirfd = Int(args[0]), c.path = args[1], c.mode = U32(args[2]);
  } else if (name == "faccessat2") {
    c.op = Op::kAccess, c.dirfd = Int(args[0]), c.path = args[1], c.mode = U32(args[2]),
    c.at_flags = U32(args[3]);
  } else if (name == "readlink") {
    c.op = Op::kReadlink, c.path = args[0], c.buf = args[1], c.bufsize = args[2];
  } else if (name == "readlinkat") {
    c.op = Op::kReadlink, c.dirfd = Int(args[0]), c.path = args[1], c.buf = args[2],
    c.bufsize = args[3];
  } else if (name == "mkdir") {
    c.op = Op::kMkdir, c.path = args[0], c.mode = U32(args[1]);
  } else if (name == "mkdirat") {
    c.op = Op::kMkdir, c.dirfd = Int(args[0]), c.path = args[1], c.mode = U32(args[2]);
  } else if (name == "unlink") {
    c.op = Op::kUnlink, c.path = args[0];
  } else if (name == "rmdir") {
    c.op = Op::kRmdir, c.path = args[0];
  } else if (name == "unlinkat") {
    c.dirfd = Int(args[0]), c.path = args[1], c.at_flags = U32(args[2]);
    c.op = (c.at_flags & AT_REMOVEDIR) != 0 ? Op::kRmdir : Op::kUnlink;
  } else if (name == "rename") {
    c.op = Op::kRename, c.path = args[0], c.path2 = args[1];
  } else if (name == "renameat") {
    c.op = Op::kRename, c.dirfd = Int(args[0]), c.path = args[1], c.dirfd2 = Int(args[2]),
    c.path2 = args[3];
  } else if (name == "renameat2") {
    c.op = Op::kRename, c.dirfd = Int(args[0]), c.path = args[1], c.dirfd2 = Int(args[2]),
    c.path2 = args[3], c.flags = U32(args[4]);
  } else if (name == "chdir") {
    c.op = Op::kChdir, c.path = args[0];
  } else if (name == "fchdir") {
    c.op = Op::kFchdir, c.dirfd = Int(args[0]);
  } else if (name == "getcwd") {
    c.op = Op::kGetcwd, c.buf = args[0], c.bufsize = args[1];
  } else if (name == "execve") {
    c.op = Op::kExec, c.path = args[0];
  } else if (name == "execveat") {
    c.op = Op::kExec, c.dirfd = Int(args[0]), c.path = args[1], c.at_flags = U32(args[4]);
    c.path_may_be_null = true;
  } else if (name == "getxattr" || name == "lgetxattr" || name == "listxattr" ||
             name == "llistxattr") {
    c.op = Op::kXattrRead, c.path = args[0];
  } else if (name == "truncate") {
    c.op = Op::kTruncate, c.path = args[0], c.bufsize = args[1];
  } else if (name == "chmod") {
    c.op = Op::kChmod, c.path = args[0], c.mode = U32(args[1]);
  } else if (name == "fchmodat") {
    c.op = Op::kChmod, c.dirfd = Int(args[0]), c.path = args[1], c.mode = U32(args[2]);
  } else if (name == "utimensat") {
    c.op = Op::kUtimes, c.dirfd = Int(args[0]), c.path = args[1], c.buf = args[2],
    c.at_flags = U32(args[3]), c.path_may_be_null = true;
  } else if (name == "statfs") {
    c.op = Op::kStatfs, c.path = args[0], c.buf = args[1];
  } else if (name == "fchmod") {
    c.op = Op::kFchmod, c.dirfd = Int(args[0]), c.mode = U32(args[1]);
  } else if (name == "fchown") {
    c.op = Op::kFchown, c.dirfd = Int(args[0]);
  } else if (name == "setxattr" || name == "lsetxattr" || name == "removexattr" ||
             name == "lremovexattr" || name == "utime" || name == "utimes" ||
             name == "futimesat" || name == "chown" || name == "lchown" ||
             name == "fchownat" || name == "link" || name == "linkat" || name == "symlink" ||
             name == "symlinkat" || name == "mknod" || name == "mknodat") {
    // Refused (fail closed); the path is read for the report where it is the first
    // argument.
    c.op = Op::kUnsupported;
    const bool at = name == "fchownat" || name == "linkat" || name == "symlinkat" ||
                    name == "mknodat" || name == "futimesat";
    c.dirfd = at && name != "symlinkat" ? Int(args[0]) : -100;
    c.path = name == "symlinkat" ? args[2] : at ? args[1] : args[0];
  } else if (name == "connect") {
    c.op = Op::kConnect, c.dirfd = Int(args[0]), c.buf = args[1], c.bufsize = U32(args[2]);
  } else if (name == "mmap") {
    if ((U32(args[2]) & PROT_EXEC) == 0 || U32(args[4]) == 0xffffffffu) return std::nullopt;
    c.op = Op::kMmapExec, c.dirfd = Int(args[4]), c.mode = U32(args[2]), c.flags = U32(args[3]);
  } else {
    return std::nullopt;
  }
  return c;
}

std::string DescribePathCall(const PathCall& call, const std::string& path,
                             const std::string& path2) {
  using Op = PathCall::Op;
  auto quoted = [](const std::string& s) {
    return absl::StrCat("\"", AuditLog::EscapeBytes(s, 512), "\"");
  };
  std::string args;
  if (call.dirfd != AT_FDCWD && call.op != Op::kFchdir && call.op != Op::kMmapExec &&
      call.op != Op::kFchmod && call.op != Op::kFchown &&
      call.op != Op::kConnect && !path.empty() && path[0] != '/') {
    absl::StrAppend(&args, "fd ", call.dirfd, ", ");
  }
  switch (call.op) {
    case Op::kOpen:
      absl::StrAppend(&args, quoted(path), ", ", AuditLog::DescribeOpenFlags(call.flags));
      if ((call.flags & (O_CREAT | kOTmpfileBit)) != 0) {
        absl::StrAppend(&args, ", ", absl::StrFormat("%04o", call.mode & 07777));
      }
      break;
    case Op::kStat:
      absl::StrAppend(&args, path.empty() && call.path == 0 ? "NULL" : quoted(path));
      if (call.at_flags & AT_SYMLINK_NOFOLLOW) absl::StrAppend(&args, ", AT_SYMLINK_NOFOLLOW");
      if (call.at_flags & AT_EMPTY_PATH) absl::StrAppend(&args, ", AT_EMPTY_PATH");
      break;
    case Op::kAccess: {
      std::string m;
      if (call.mode == F_OK) m = "F_OK";
      if (call.mode & R_OK) absl::StrAppend(&m, m.empty() ? "" : "|", "R_OK");
      if (call.mode & W_OK) absl::StrAppend(&m, m.empty() ? "" : "|", "W_OK");
      if (call.mode & X_OK) absl::StrAppend(&m, m.empty() ? "" : "|", "X_OK");
      if (call.mode & ~7u) absl::StrAppend(&m, m.empty() ? "" : "|", "0x", absl::Hex(call.mode & ~7u));
      absl::StrAppend(&args, quoted(path), ", ", m);
      break;
    }
    case Op::kMkdir:
      absl::StrAppend(&args, quoted(path), ", ", absl::StrFormat("%04o", call.mode & 07777));
      break;
    case Op::kRename:
      absl::StrAppend(&args, quoted(path), ", ", quoted(path2));
      break;
    case Op::kFchdir:
    case Op::kMmapExec:
      absl::StrAppend(&args, "fd ", call.dirfd);
      if ((call.mode & PROT_WRITE) != 0) absl::StrAppend(&args, ", PROT_WRITE|PROT_EXEC");
      if ((call.flags & MAP_ANONYMOUS) != 0) absl::StrAppend(&args, ", MAP_ANONYMOUS");
      break;
    case Op::kFchmod:
      absl::StrAppend(&args, "fd ", call.dirfd, ", ", absl::StrFormat("%04o", call.mode & 07777));
      break;
    case Op::kFchown:
      absl::StrAppend(&args, "fd ", call.dirfd, ", ", Int(call.args[1]), ", ", Int(call.args[2]));
      break;
    case Op::kConnect:
      // `path` is the address as the handler read it (a unix path is worker bytes).
      absl::StrAppend(&args, "fd ", call.dirfd, ", ",
                      path.empty() ? "?" : AuditLog::EscapeBytes(path, 512));
      break;
    case Op::kGetcwd:
      break;
    default:
      absl::StrAppend(&args, quoted(path));
      break;
  }
  return absl::StrCat(call.syscall, "(", args, ")");
}

}  // namespace vow
