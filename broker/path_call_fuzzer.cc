// libFuzzer target for DecodePathCall and DescribePathCall (broker/path_call.h): the arch
// choice, the syscall number, the six registers and the path strings all come from the
// input, as they come from a hostile worker. Runs in the broker's role. Besides "no
// crash, no sanitizer report" it checks what the decoder promises:
//  - a decoded call names the syscall it was given (syscall == SyscallName, nr == nr) and
//    its registers are copied unchanged;
//  - the op agrees with the syscall name (open/openat/creat -> kOpen, ...), and fields
//    that the op does not use keep their defaults (dirfd AT_FDCWD for open/stat/access/
//    readlink/mkdir/unlink/rmdir/rename/chdir/execve; no path for fchdir/getcwd/mmap);
//  - mmap decodes only with PROT_EXEC and an fd other than -1;
//  - NeededPromise() is consistent: kOpen with O_CREAT needs cpath, an O_RDONLY open
//    without O_TRUNC/O_CREAT/O_TMPFILE rpath;
//  - DescribePathCall starts with "<syscall>(", ends with ")", has no control bytes and
//    stays bounded whatever the strings.
// Input layout: byte 0 arch (bit 0), bytes 1..2 nr (little-endian, 0..1023), 3..50 six
// registers, then two NUL-separated strings (path, path2).
#include <fcntl.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "broker/path_call.h"
#include "policies/promise_table.h"
#include "policies/promise_compiler.h"

namespace {

void Fail(const char* what, const std::string& detail) {
  fprintf(stderr, "path_call_fuzzer: %s: %s\n", what, detail.c_str());
  abort();
}

bool OneOf(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (s == n) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vow::PathCall;
  using Op = PathCall::Op;
  if (size < 51) return 0;
  const vow::Arch arch = (data[0] & 1) ? vow::Arch::kAarch64 : vow::Arch::kX86_64;
  const int nr = (data[1] | (data[2] << 8)) & 1023;
  uint64_t args[6];
  memcpy(args, data + 3, sizeof(args));
  std::string rest(reinterpret_cast<const char*>(data + 51), size - 51);
  const size_t nul = rest.find('\0');
  const std::string path = rest.substr(0, nul);
  const std::string path2 = nul == std::string::npos ? "" : rest.substr(nul + 1);

  const std::string name = vow::SyscallName(arch, nr);
  std::optional<PathCall> call = vow::DecodePathCall(arch, nr, args);
  // The decoder and the table the filter is compiled from must agree: every brokered
  // syscall decodes (mmap only with PROT_EXEC of a file), nothing else does.
  bool brokered = false;
  for (const vow::BrokeredEntry& b : vow::BrokeredSyscalls()) brokered |= b.syscall == name;
  const bool mmap_code = name == "mmap" && (static_cast<uint32_t>(args[2]) & PROT_EXEC) != 0 &&
                         static_cast<uint32_t>(args[4]) != 0xffffffffu;
  if (!call.has_value()) {
    if (brokered && (name != "mmap" || mmap_code)) Fail("a path call was not decoded", name);
    return 0;
  }
  if (!brokered) Fail("decoded a syscall the filter does not send to the broker", name);
  const PathCall& c = *call;
  if (c.syscall != name || c.nr != nr) Fail("wrong syscall name", name);
  if (memcmp(c.args, args, sizeof(args)) != 0) Fail("registers changed", name);

  Op want;
  if (OneOf(name, {"open", "openat", "creat"})) {
    want = Op::kOpen;
  } else if (OneOf(name, {"stat", "lstat", "newfstatat", "statx"})) {
    want = Op::kStat;
  } else if (OneOf(name, {"access", "faccessat", "faccessat2"})) {
    want = Op::kAccess;
  } else if (OneOf(name, {"readlink", "readlinkat"})) {
    want = Op::kReadlink;
  } else if (OneOf(name, {"mkdir", "mkdirat"})) {
    want = Op::kMkdir;
  } else if (OneOf(name, {"unlink", "rmdir", "unlinkat"})) {
    want = (name == "rmdir" || (name == "unlinkat" && (c.at_flags & AT_REMOVEDIR)))
               ? Op::kRmdir
               : Op::kUnlink;
  } else if (OneOf(name, {"rename", "renameat", "renameat2"})) {
    want = Op::kRename;
  } else if (name == "chdir") {
    want = Op::kChdir;
  } else if (name == "fchdir") {
    want = Op::kFchdir;
  } else if (name == "getcwd") {
    want = Op::kGetcwd;
  } else if (OneOf(name, {"execve", "execveat"})) {
    want = Op::kExec;
  } else if (name == "mmap") {
    want = Op::kMmapExec;
    if ((static_cast<uint32_t>(args[2]) & PROT_EXEC) == 0 ||
        static_cast<uint32_t>(args[4]) == 0xffffffffu) {
      Fail("mmap without PROT_EXEC or without a file decoded", name);
    }
  } else if (name == "connect") {
    want = Op::kConnect;
  } else if (OneOf(name, {"getxattr", "lgetxattr", "listxattr", "llistxattr"})) {
    want = Op::kXattrRead;
  } else if (name == "truncate") {
    want = Op::kTruncate;
  } else if (OneOf(name, {"chmod", "fchmodat"})) {
    want = Op::kChmod;
  } else if (name == "utimensat") {
    want = Op::kUtimes;
  } else if (name == "statfs") {
    want = Op::kStatfs;
  } else if (name == "fchmod") {
    want = Op::kFchmod;
  } else if (name == "fchown") {
    want = Op::kFchown;
  } else {
    // The rest of the table is refused by the broker (fail closed).
    want = Op::kUnsupported;
  }
  if (c.op != want) Fail("op does not match the syscall", name);

  // The non-*at forms take no directory fd.
  if (OneOf(name, {"open", "creat", "stat", "lstat", "access", "readlink", "mkdir", "unlink",
                   "rmdir", "rename", "chdir", "execve"}) &&
      (c.dirfd != AT_FDCWD || c.dirfd2 != AT_FDCWD)) {
    Fail("a non-*at call got a directory fd", name);
  }
  if ((c.op == Op::kFchdir || c.op == Op::kGetcwd || c.op == Op::kMmapExec ||
       c.op == Op::kFchmod || c.op == Op::kFchown) &&
      c.path != 0) {
    Fail("a call without a path got one", name);
  }
  if (c.op != Op::kRename && c.path2 != 0) Fail("path2 outside rename", name);
  if (c.op == Op::kOpen) {
    const vow::Promise p = c.NeededPromise();
    if ((c.flags & O_CREAT) && p != vow::Promise::kCpath) Fail("O_CREAT without cpath", name);
    if ((c.flags & O_ACCMODE) == O_RDONLY && !(c.flags & (O_CREAT | O_TRUNC | __O_TMPFILE)) &&
        p != vow::Promise::kRpath) {
      Fail("a read-only open needs more than rpath", name);
    }
    if ((c.flags & O_ACCMODE) != O_RDONLY && p == vow::Promise::kRpath) {
      Fail("a writing open needs only rpath", name);
    }
  }

  const std::string text = vow::DescribePathCall(c, path, path2);
  if (text.compare(0, name.size() + 1, name + "(") != 0 || text.back() != ')') {
    Fail("description is not name(...)", text);
  }
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) Fail("control byte", text);
  }
  if (text.size() > name.size() + 2 * 4 * 512 + 256) Fail("description unbounded", text);
  return 0;
}
