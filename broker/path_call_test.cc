// DecodePathCall and DescribePathCall (broker/path_call.h): per syscall, the operation,
// the directory fd, the path address and the flags taken from the right registers; a
// syscall that is not a path call gives nullopt; the text a person reads.
#include "broker/path_call.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "gtest/gtest.h"

namespace vow {
namespace {

using Op = PathCall::Op;

constexpr uint64_t kPath = 0x7f0000001000;
constexpr uint64_t kPath2 = 0x7f0000002000;
constexpr uint64_t kBuf = 0x7f0000003000;
// AT_FDCWD as the kernel sees it in a 64-bit register: the int -100 sign-extended, or
// only its low 32 bits (an int argument's upper half is garbage to the kernel).
constexpr uint64_t kCwd64 = static_cast<uint64_t>(-100);
constexpr uint64_t kCwd32 = 0xffffff9cu;

PathCall Decode(int nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                uint64_t a4 = 0, uint64_t a5 = 0) {
  const uint64_t args[6] = {a0, a1, a2, a3, a4, a5};
  std::optional<PathCall> c = DecodePathCall(Arch::kX86_64, nr, args);
  EXPECT_TRUE(c.has_value()) << "syscall " << nr << " is a path call";
  return c.value_or(PathCall{});
}

bool IsPathCall(Arch arch, int nr, uint64_t a2 = 0, uint64_t a4 = 0) {
  const uint64_t args[6] = {0, 0, a2, 0, a4, 0};
  return DecodePathCall(arch, nr, args).has_value();
}

#if defined(__x86_64__)

TEST(DecodePathCall, OpenFamily) {
  PathCall c = Decode(SYS_open, kPath, O_RDONLY | O_CLOEXEC, 0);
  EXPECT_EQ(c.op, Op::kOpen);
  EXPECT_EQ(c.syscall, "open");
  EXPECT_EQ(c.dirfd, AT_FDCWD);
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.flags, static_cast<uint32_t>(O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(c.NeededPromise(), Promise::kRpath);

  c = Decode(SYS_openat, 7, kPath, O_WRONLY | O_CREAT, 0640);
  EXPECT_EQ(c.op, Op::kOpen);
  EXPECT_EQ(c.dirfd, 7);
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.flags, static_cast<uint32_t>(O_WRONLY | O_CREAT));
  EXPECT_EQ(c.mode, 0640u);
  EXPECT_EQ(c.NeededPromise(), Promise::kCpath);

  // Only the low 32 bits of an int argument count.
  c = Decode(SYS_openat, kCwd32, kPath, (uint64_t{1} << 40) | O_RDWR, 0);
  EXPECT_EQ(c.dirfd, AT_FDCWD);
  EXPECT_EQ(c.flags, static_cast<uint32_t>(O_RDWR));
  EXPECT_EQ(c.NeededPromise(), Promise::kWpath);
  c = Decode(SYS_openat, kCwd64, kPath, O_RDONLY | O_TRUNC, 0);
  EXPECT_EQ(c.dirfd, AT_FDCWD);
  EXPECT_EQ(c.NeededPromise(), Promise::kWpath);

  c = Decode(SYS_creat, kPath, 0600);
  EXPECT_EQ(c.op, Op::kOpen);
  EXPECT_EQ(c.flags, static_cast<uint32_t>(O_CREAT | O_WRONLY | O_TRUNC));
  EXPECT_EQ(c.mode, 0600u);
  EXPECT_EQ(c.NeededPromise(), Promise::kCpath);
}

TEST(DecodePathCall, StatFamily) {
  PathCall c = Decode(SYS_stat, kPath, kBuf);
  EXPECT_EQ(c.op, Op::kStat);
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.buf, kBuf);
  EXPECT_EQ(c.at_flags, 0u);
  EXPECT_FALSE(c.path_may_be_null);

  c = Decode(SYS_lstat, kPath, kBuf);
  EXPECT_EQ(c.op, Op::kStat);
  EXPECT_EQ(c.at_flags, static_cast<uint32_t>(AT_SYMLINK_NOFOLLOW));

  c = Decode(SYS_newfstatat, kCwd64, kPath, kBuf, AT_EMPTY_PATH);
  EXPECT_EQ(c.op, Op::kStat);
  EXPECT_EQ(c.dirfd, AT_FDCWD);
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.buf, kBuf);
  EXPECT_EQ(c.at_flags, static_cast<uint32_t>(AT_EMPTY_PATH));
  EXPECT_TRUE(c.path_may_be_null);
  EXPECT_FALSE(c.statx);

  c = Decode(SYS_statx, 5, kPath, AT_SYMLINK_NOFOLLOW, 0x7ff, kBuf);
  EXPECT_EQ(c.op, Op::kStat);
  EXPECT_EQ(c.dirfd, 5);
  EXPECT_EQ(c.at_flags, static_cast<uint32_t>(AT_SYMLINK_NOFOLLOW));
  EXPECT_EQ(c.statx_mask, 0x7ffu);
  EXPECT_EQ(c.buf, kBuf);
  EXPECT_TRUE(c.statx);
  EXPECT_TRUE(c.path_may_be_null);
  EXPECT_EQ(c.NeededPromise(), Promise::kRpath);
}

TEST(DecodePathCall, AccessAndReadlink) {
  PathCall c = Decode(SYS_access, kPath, R_OK | W_OK);
  EXPECT_EQ(c.op, Op::kAccess);
  EXPECT_EQ(c.mode, static_cast<uint32_t>(R_OK | W_OK));
  c = Decode(SYS_faccessat, 9, kPath, X_OK);
  EXPECT_EQ(c.op, Op::kAccess);
  EXPECT_EQ(c.dirfd, 9);
  EXPECT_EQ(c.mode, static_cast<uint32_t>(X_OK));
  EXPECT_EQ(c.at_flags, 0u);  // faccessat has no flags argument: a3 is not read
  c = Decode(SYS_faccessat2, kCwd32, kPath, F_OK, AT_EACCESS);
  EXPECT_EQ(c.dirfd, AT_FDCWD);
  EXPECT_EQ(c.at_flags, static_cast<uint32_t>(AT_EACCESS));

  c = Decode(SYS_readlink, kPath, kBuf, 64);
  EXPECT_EQ(c.op, Op::kReadlink);
  EXPECT_EQ(c.buf, kBuf);
  EXPECT_EQ(c.bufsize, 64u);
  c = Decode(SYS_readlinkat, 4, kPath, kBuf, 128);
  EXPECT_EQ(c.op, Op::kReadlink);
  EXPECT_EQ(c.dirfd, 4);
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.bufsize, 128u);
}

TEST(DecodePathCall, CreateDeleteRenameCwdExec) {
  EXPECT_EQ(Decode(SYS_mkdir, kPath, 0755).op, Op::kMkdir);
  PathCall c = Decode(SYS_mkdirat, 3, kPath, 0700);
  EXPECT_EQ(c.op, Op::kMkdir);
  EXPECT_EQ(c.dirfd, 3);
  EXPECT_EQ(c.mode, 0700u);
  EXPECT_EQ(c.NeededPromise(), Promise::kCpath);
  EXPECT_EQ(Decode(SYS_unlink, kPath).op, Op::kUnlink);
  EXPECT_EQ(Decode(SYS_rmdir, kPath).op, Op::kRmdir);
  EXPECT_EQ(Decode(SYS_unlinkat, kCwd64, kPath, 0).op, Op::kUnlink);
  EXPECT_EQ(Decode(SYS_unlinkat, kCwd64, kPath, AT_REMOVEDIR).op, Op::kRmdir);

  c = Decode(SYS_rename, kPath, kPath2);
  EXPECT_EQ(c.op, Op::kRename);
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.path2, kPath2);
  EXPECT_EQ(c.dirfd2, AT_FDCWD);
  c = Decode(SYS_renameat2, 3, kPath, 4, kPath2, 1 /* RENAME_NOREPLACE */);
  EXPECT_EQ(c.dirfd, 3);
  EXPECT_EQ(c.dirfd2, 4);
  EXPECT_EQ(c.path2, kPath2);
  EXPECT_EQ(c.flags, 1u);

  EXPECT_EQ(Decode(SYS_chdir, kPath).op, Op::kChdir);
  c = Decode(SYS_fchdir, 6);
  EXPECT_EQ(c.op, Op::kFchdir);
  EXPECT_EQ(c.dirfd, 6);
  c = Decode(SYS_getcwd, kBuf, 4096);
  EXPECT_EQ(c.op, Op::kGetcwd);
  EXPECT_EQ(c.bufsize, 4096u);

  c = Decode(SYS_execve, kPath, kPath2, 0);
  EXPECT_EQ(c.op, Op::kExec);
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.NeededPromise(), Promise::kExec);
  c = Decode(SYS_execveat, 8, kPath, 0, 0, AT_EMPTY_PATH);
  EXPECT_EQ(c.op, Op::kExec);
  EXPECT_EQ(c.dirfd, 8);
  EXPECT_EQ(c.at_flags, static_cast<uint32_t>(AT_EMPTY_PATH));
  EXPECT_TRUE(c.path_may_be_null);
}

TEST(DecodePathCall, MmapIsAPathCallOnlyForAnExecutableFileMapping) {
  EXPECT_FALSE(IsPathCall(Arch::kX86_64, SYS_mmap, PROT_READ, 3));
  EXPECT_FALSE(IsPathCall(Arch::kX86_64, SYS_mmap, PROT_READ | PROT_EXEC, 0xffffffffu));
  EXPECT_FALSE(IsPathCall(Arch::kX86_64, SYS_mmap, PROT_READ | PROT_EXEC,
                          0xffffffffffffffffu));
  PathCall c = Decode(SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, 5, 0);
  EXPECT_EQ(c.op, Op::kMmapExec);
  EXPECT_EQ(c.dirfd, 5);
  EXPECT_EQ(c.NeededPromise(), Promise::kProtExec);
}

TEST(DecodePathCall, OtherSyscallsAreNotPathCalls) {
  for (int nr : {SYS_read, SYS_write, SYS_close, SYS_fstat, SYS_ioctl, SYS_socket,
                 SYS_sendto, SYS_getpid, SYS_clone, SYS_exit_group}) {
    EXPECT_FALSE(IsPathCall(Arch::kX86_64, nr)) << nr;
  }
  // connect is brokered too (the worker's network namespace has no interfaces).
  PathCall c = Decode(SYS_connect, 4, 0x1000, 16, 0, 0, 0);
  EXPECT_EQ(c.op, Op::kConnect);
  EXPECT_EQ(c.dirfd, 4);
  EXPECT_EQ(c.buf, 0x1000u);
  EXPECT_EQ(c.bufsize, 16u);
  EXPECT_FALSE(IsPathCall(Arch::kX86_64, -1));
  EXPECT_FALSE(IsPathCall(Arch::kX86_64, 100000));
}

#endif  // __x86_64__

// The arch picks the table: 56 is openat on aarch64 and not a path call on x86-64
// (clone); aarch64 has no open(2).
TEST(DecodePathCall, TheArchPicksTheTable) {
  const uint64_t args[6] = {kCwd64, kPath, O_RDONLY, 0, 0, 0};
  std::optional<PathCall> c = DecodePathCall(Arch::kAarch64, 56, args);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->syscall, "openat");
  EXPECT_EQ(c->op, Op::kOpen);
  EXPECT_EQ(c->path, kPath);
  EXPECT_FALSE(DecodePathCall(Arch::kX86_64, 56, args).has_value());
}

#if defined(__x86_64__)

TEST(DescribePathCall, NamesPathsAndFlags) {
  PathCall c = Decode(SYS_openat, kCwd64, kPath, O_RDONLY | O_CLOEXEC, 0);
  EXPECT_EQ(DescribePathCall(c, "/etc/localtime"),
            "openat(\"/etc/localtime\", O_RDONLY|O_CLOEXEC)");
  c = Decode(SYS_openat, 5, kPath, O_WRONLY | O_CREAT | O_EXCL, 0640);
  const std::string created = DescribePathCall(c, "out.txt");
  EXPECT_EQ(created.rfind("openat(fd 5, \"out.txt\", ", 0), 0u) << created;
  EXPECT_NE(created.find("O_CREAT"), std::string::npos) << created;
  EXPECT_NE(created.find("O_EXCL"), std::string::npos) << created;
  EXPECT_NE(created.find(", 0640)"), std::string::npos) << created;
  // An absolute path: the dirfd does not matter and is not shown.
  EXPECT_EQ(DescribePathCall(c, "/abs").find("fd 5"), std::string::npos);

  c = Decode(SYS_newfstatat, kCwd64, kPath, kBuf, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  EXPECT_EQ(DescribePathCall(c, "/etc/shadow"),
            "newfstatat(\"/etc/shadow\", AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH)");
  c = Decode(SYS_statx, kCwd64, 0, AT_EMPTY_PATH, 0xfff, kBuf);
  EXPECT_EQ(DescribePathCall(c, ""), "statx(NULL, AT_EMPTY_PATH)");

  c = Decode(SYS_access, kPath, R_OK | X_OK);
  EXPECT_EQ(DescribePathCall(c, "/bin/sh"), "access(\"/bin/sh\", R_OK|X_OK)");
  c = Decode(SYS_access, kPath, F_OK);
  EXPECT_EQ(DescribePathCall(c, "/x"), "access(\"/x\", F_OK)");
  c = Decode(SYS_faccessat, kCwd64, kPath, 0x40 | W_OK);
  EXPECT_EQ(DescribePathCall(c, "/x"), "faccessat(\"/x\", W_OK|0x40)");

  c = Decode(SYS_rename, kPath, kPath2);
  EXPECT_EQ(DescribePathCall(c, "/a", "/b"), "rename(\"/a\", \"/b\")");
  c = Decode(SYS_mkdir, kPath, 0755);
  EXPECT_EQ(DescribePathCall(c, "/d"), "mkdir(\"/d\", 0755)");
  c = Decode(SYS_fchdir, 6);
  EXPECT_EQ(DescribePathCall(c, ""), "fchdir(fd 6)");
  c = Decode(SYS_getcwd, kBuf, 10);
  EXPECT_EQ(DescribePathCall(c, ""), "getcwd()");
  c = Decode(SYS_readlink, kPath, kBuf, 10);
  EXPECT_EQ(DescribePathCall(c, "/proc/self/exe"), "readlink(\"/proc/self/exe\")");
}

TEST(DescribePathCall, EscapesHostileBytesAndBoundsTheLength) {
  PathCall c = Decode(SYS_open, kPath, O_RDONLY, 0);
  const std::string text = DescribePathCall(c, std::string("/a\"b\n\x01\xff", 7));
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x01'), std::string::npos) << text;
  EXPECT_EQ(text.find('\xff'), std::string::npos) << text;
  EXPECT_EQ(text.rfind("open(\"/a", 0), 0u) << text;
  const std::string huge = DescribePathCall(c, std::string(100000, 'x'));
  EXPECT_LT(huge.size(), 4096u) << "a hostile path must not blow up the report";
}

#endif  // __x86_64__

}  // namespace
}  // namespace vow
