#include "broker/fs_policy.h"

#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <linux/magic.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>
#include <atomic>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/syscall.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

using ::testing::HasSubstr;

PathRule Rule(const std::string& path, absl::string_view letters) {
  PathRule r;
  r.path = path;
  for (char c : letters) {
    if (c == 'r') r.read = true;
    if (c == 'w') r.write = true;
    if (c == 'x') r.exec = true;
    if (c == 'c') r.create = true;
  }
  return r;
}

void WriteFile(const std::string& path, absl::string_view content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// A tree:
//   root/allowed/file.txt         "hello"
//   root/allowed/sub/deep.txt     "deep"
//   root/allowed/link_in -> sub/deep.txt
//   root/allowed/link_out -> ../secret.txt
//   root/allowed/link_abs -> <root>/secret.txt
//   root/allowed/fifo             (a FIFO)
//   root/allowed/ro/ro.txt        "ro"
//   root/allowed/link_ro -> ro    (into a narrower nested rule)
//   root/secret.txt               "secret"
//   root/single/only.txt          "only"
//   root/single/sibling.txt       "sibling"
//   root/single/only_link -> sibling.txt
class FsPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    std::string base = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/fs_policy_XXXXXX");
    ASSERT_NE(mkdtemp(base.data()), nullptr);
    char* real = realpath(base.c_str(), nullptr);
    ASSERT_NE(real, nullptr);
    root_ = real;
    free(real);
    allowed_ = root_ + "/allowed";
    ASSERT_EQ(mkdir(allowed_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((allowed_ + "/sub").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((allowed_ + "/ro").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/single").c_str(), 0755), 0);
    WriteFile(allowed_ + "/file.txt", "hello");
    WriteFile(allowed_ + "/sub/deep.txt", "deep");
    WriteFile(allowed_ + "/ro/ro.txt", "ro");
    WriteFile(root_ + "/secret.txt", "secret");
    WriteFile(root_ + "/single/only.txt", "only");
    WriteFile(root_ + "/single/sibling.txt", "sibling");
    ASSERT_EQ(symlink("sub/deep.txt", (allowed_ + "/link_in").c_str()), 0);
    ASSERT_EQ(symlink("../secret.txt", (allowed_ + "/link_out").c_str()), 0);
    ASSERT_EQ(symlink((root_ + "/secret.txt").c_str(), (allowed_ + "/link_abs").c_str()), 0);
    ASSERT_EQ(symlink("ro", (allowed_ + "/link_ro").c_str()), 0);
    ASSERT_EQ(symlink("sibling.txt", (root_ + "/single/only_link").c_str()), 0);
    ASSERT_EQ(mkfifo((allowed_ + "/fifo").c_str(), 0644), 0);
  }

  FsPolicy Make(const std::vector<PathRule>& rules) {
    absl::StatusOr<FsPolicy> p = FsPolicy::Create(rules);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) std::abort();
    return *std::move(p);
  }

  // The errno of a refused open, or 0 if it was allowed.
  static int Err(const FsPolicy& p, absl::string_view path, uint32_t flags, uint32_t mode = 0,
                 OpenContext context = {}) {
    absl::StatusOr<UniqueFd> fd = p.Open(path, flags, mode, context);
    if (fd.ok()) return 0;
    EXPECT_NE(ErrnoOf(fd.status()), 0) << fd.status();
    return ErrnoOf(fd.status());
  }

  std::string root_;
  std::string allowed_;
};

TEST_F(FsPolicyTest, AllowedFileOpensWithCloexec) {
  FsPolicy p = Make({Rule(allowed_, "r")});
  absl::StatusOr<UniqueFd> fd = p.Open(allowed_ + "/file.txt", O_RDONLY, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0) << "O_NONBLOCK must be cleared";
  EXPECT_EQ(ReadAll(fd->get()), "hello");
}

TEST_F(FsPolicyTest, WorkerAskedNonblockIsKept) {
  FsPolicy p = Make({Rule(allowed_, "r")});
  absl::StatusOr<UniqueFd> fd = p.Open(allowed_ + "/file.txt", O_RDONLY | O_NONBLOCK, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_NE(fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST_F(FsPolicyTest, NonCanonicalSpellingsOfAnAllowedPath) {
  FsPolicy p = Make({Rule(allowed_, "r")});
  EXPECT_EQ(Err(p, allowed_ + "//sub/./deep.txt", O_RDONLY), 0);
  EXPECT_EQ(Err(p, "/" + allowed_ + "/file.txt", O_RDONLY), 0);
  // A trailing slash means "a directory".
  EXPECT_EQ(Err(p, allowed_ + "/file.txt/", O_RDONLY), ENOTDIR);
  EXPECT_EQ(Err(p, allowed_ + "/sub/", O_RDONLY | O_DIRECTORY), 0);
}

TEST_F(FsPolicyTest, SymlinkInsideTheRuleIsFollowed) {
  FsPolicy p = Make({Rule(allowed_, "r")});
  absl::StatusOr<UniqueFd> fd = p.Open(allowed_ + "/link_in", O_RDONLY, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(ReadAll(fd->get()), "deep");
}

TEST_F(FsPolicyTest, OutsideTheRulesIsEacces) {
  FsPolicy p = Make({Rule(allowed_, "r")});
  EXPECT_EQ(Err(p, root_ + "/secret.txt", O_RDONLY), EACCES);
  EXPECT_EQ(Err(p, "/etc/passwd", O_RDONLY), EACCES);
  // Same prefix, not on a component boundary.
  EXPECT_EQ(Err(p, allowed_ + "x/file.txt", O_RDONLY), EACCES);
  absl::StatusOr<UniqueFd> fd = p.Open(root_ + "/secret.txt", O_RDONLY, 0);
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("no rule covers"));
}

TEST_F(FsPolicyTest, DotDotEscapesAreRefused) {
  FsPolicy p = Make({Rule(allowed_, "r")});
  // Textual `..` is refused up front, even when it would stay inside.
  EXPECT_EQ(Err(p, allowed_ + "/../secret.txt", O_RDONLY), EACCES);
  EXPECT_EQ(Err(p, allowed_ + "/sub/../file.txt", O_RDONLY), EACCES);
  EXPECT_EQ(Err(p, allowed_ + "/..", O_RDONLY | O_DIRECTORY), EACCES);
  // Symlinks leading out (relative with `..`, or absolute) fail beneath the rule.
  EXPECT_EQ(Err(p, allowed_ + "/link_out", O_RDONLY), EACCES);
  EXPECT_EQ(Err(p, allowed_ + "/link_abs", O_RDONLY), EACCES);
  absl::StatusOr<UniqueFd> fd = p.Open(allowed_ + "/link_out", O_RDONLY, 0);
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("escapes"));
}

TEST_F(FsPolicyTest, ProcMagicLinksAreRefused) {
  FsPolicy p = Make({Rule("/proc", "r")});
  // The "worker" is this process here, so /proc/self is its own directory.
  const OpenContext self{getpid(), static_cast<pid_t>(gettid())};
  int fd = open((allowed_ + "/file.txt").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Err(p, absl::StrCat("/proc/self/fd/", fd), O_RDONLY, 0, self), ELOOP);
  EXPECT_EQ(Err(p, absl::StrCat("/proc/", getpid(), "/fd/", fd), O_RDONLY, 0, self), ELOOP);
  EXPECT_EQ(Err(p, "/proc/self/root/etc/passwd", O_RDONLY, 0, self), ELOOP);
  EXPECT_EQ(Err(p, "/proc/self/cwd", O_RDONLY | O_DIRECTORY, 0, self), ELOOP);
  EXPECT_EQ(Err(p, "/proc/self/exe", O_RDONLY, 0, self), ELOOP);
  close(fd);
  // An ordinary /proc file is fine.
  EXPECT_EQ(Err(p, "/proc/self/status", O_RDONLY, 0, self), 0);
}

TEST_F(FsPolicyTest, MalformedPaths) {
  FsPolicy p = Make({Rule("/", "r")});
  EXPECT_EQ(Err(p, "etc/passwd", O_RDONLY), EINVAL);
  EXPECT_EQ(Err(p, "", O_RDONLY), EINVAL);
  EXPECT_EQ(Err(p, absl::string_view("/etc/passwd\0/x", 14), O_RDONLY), EINVAL);
  EXPECT_EQ(Err(p, absl::string_view("/etc/passwd\0", 12), O_RDONLY), EINVAL);
  EXPECT_EQ(Err(p, "/" + std::string(4095, 'a'), O_RDONLY), ENAMETOOLONG);
  EXPECT_EQ(Err(p, "/" + std::string(1 << 20, 'a'), O_RDONLY), ENAMETOOLONG);
  // A component over NAME_MAX is the kernel's ENAMETOOLONG.
  EXPECT_EQ(Err(p, allowed_ + "/" + std::string(300, 'a'), O_RDONLY), ENAMETOOLONG);
}

TEST_F(FsPolicyTest, PermissionLetters) {
  FsPolicy p = Make({Rule(allowed_, "r"), Rule(allowed_ + "/sub", "w")});
  const std::string file = allowed_ + "/file.txt";
  EXPECT_EQ(Err(p, file, O_WRONLY), EACCES);
  EXPECT_EQ(Err(p, file, O_RDWR), EACCES);
  EXPECT_EQ(Err(p, file, O_RDONLY | O_TRUNC), EACCES);
  EXPECT_EQ(Err(p, file, O_RDONLY | O_APPEND), EACCES);
  EXPECT_EQ(Err(p, file, O_RDONLY | O_CREAT, 0644), EACCES);
  EXPECT_EQ(Err(p, file, O_PATH), EACCES) << "O_PATH needs x";
  // Under /sub only w: reading is refused, writing allowed.
  EXPECT_EQ(Err(p, allowed_ + "/sub/deep.txt", O_RDONLY), EACCES);
  EXPECT_EQ(Err(p, allowed_ + "/sub/deep.txt", O_WRONLY), 0);
  EXPECT_EQ(Err(p, allowed_ + "/sub/new.txt", O_WRONLY | O_CREAT, 0644), EACCES)
      << "O_CREAT needs c";
  absl::StatusOr<UniqueFd> fd = p.Open(file, O_WRONLY, 0);
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("needs 'w'"));
  // The file itself was not truncated by the refused O_TRUNC.
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 5);
}

TEST_F(FsPolicyTest, UnknownAndRefusedFlagBitsAreEinval) {
  FsPolicy p = Make({Rule(allowed_, "rwxc")});
  const std::string file = allowed_ + "/file.txt";
  EXPECT_EQ(Err(p, file, O_RDONLY | 0x40000000u), EINVAL);
  EXPECT_EQ(Err(p, file, O_RDONLY | O_NOATIME), EINVAL);
  EXPECT_EQ(Err(p, file, O_RDONLY | O_DIRECT), EINVAL);
  EXPECT_EQ(Err(p, file, O_RDONLY | O_ASYNC), EINVAL);
  EXPECT_EQ(Err(p, file, O_ACCMODE), EINVAL);
  EXPECT_EQ(Err(p, file, O_PATH | O_WRONLY), EINVAL);
  EXPECT_EQ(Err(p, allowed_, O_TMPFILE | O_RDONLY, 0600), EINVAL);
  absl::StatusOr<UniqueFd> fd = p.Open(file, O_RDONLY | O_NOATIME | 0x40000000u, 0);
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("O_NOATIME|0x40000000"));
  // Accepted harmless bits.
  EXPECT_EQ(Err(p, file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | 0100000), 0);
  EXPECT_EQ(Err(p, file, O_WRONLY | O_SYNC | O_APPEND), 0);
}

TEST_F(FsPolicyTest, DirectoriesOnlyWithODirectory) {
  FsPolicy p = Make({Rule(allowed_, "r")});
  EXPECT_EQ(Err(p, allowed_ + "/sub", O_RDONLY), EISDIR);
  EXPECT_EQ(Err(p, allowed_, O_RDONLY), EISDIR) << "the rule's own directory";
  EXPECT_EQ(Err(p, allowed_ + "/", O_RDONLY), EISDIR);
  absl::StatusOr<UniqueFd> fd = p.Open(allowed_ + "/sub", O_RDONLY | O_DIRECTORY, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  struct stat st;
  ASSERT_EQ(fstat(fd->get(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(Err(p, allowed_, O_RDONLY | O_DIRECTORY), 0);
  EXPECT_EQ(Err(p, allowed_ + "/file.txt", O_RDONLY | O_DIRECTORY), ENOTDIR);
}

TEST_F(FsPolicyTest, CreateWithCwMasksTheMode) {
  FsPolicy p = Make({Rule(allowed_, "rwc")});
  umask(0);
  const std::string path = allowed_ + "/created.txt";
  absl::StatusOr<UniqueFd> fd = p.Open(path, O_WRONLY | O_CREAT | O_EXCL, 06777);
  umask(022);
  ASSERT_TRUE(fd.ok()) << fd.status();
  struct stat st;
  ASSERT_EQ(fstat(fd->get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0777u) << "setuid/setgid/sticky must be masked off";
  ASSERT_EQ(write(fd->get(), "x", 1), 1);
  EXPECT_EQ(Err(p, path, O_WRONLY | O_CREAT | O_EXCL, 0600), EEXIST);
  // O_TMPFILE needs c and w.
  EXPECT_EQ(Err(p, allowed_, O_TMPFILE | O_RDWR, 0600), 0);
  FsPolicy no_c = Make({Rule(allowed_, "rw")});
  EXPECT_EQ(Err(no_c, allowed_, O_TMPFILE | O_RDWR, 0600), EACCES);
}

TEST_F(FsPolicyTest, FifoDoesNotBlockTheBroker) {
  FsPolicy p = Make({Rule(allowed_, "rw")});
  // Without a writer a blocking open for reading would wait forever.
  absl::StatusOr<UniqueFd> fd = p.Open(allowed_ + "/fifo", O_RDONLY, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);
  // With a reader now, a writer opens too.
  EXPECT_EQ(Err(p, allowed_ + "/fifo", O_WRONLY), 0);
  fd->reset();
  // Without a reader, a writer gets ENXIO instead of waiting.
  EXPECT_EQ(Err(p, allowed_ + "/fifo", O_WRONLY), ENXIO);
}

TEST_F(FsPolicyTest, RootRule) {
  FsPolicy p = Make({Rule("/", "r")});
  EXPECT_EQ(Err(p, allowed_ + "/file.txt", O_RDONLY), 0);
  EXPECT_EQ(Err(p, "/", O_RDONLY | O_DIRECTORY), 0);
  EXPECT_EQ(Err(p, "//", O_RDONLY | O_DIRECTORY), 0);
  EXPECT_EQ(Err(p, "/", O_RDONLY), EISDIR);
  // Absolute symlinks cannot be followed beneath "/" either (RESOLVE_BENEATH).
  EXPECT_EQ(Err(p, allowed_ + "/link_abs", O_RDONLY), EACCES);
}

TEST_F(FsPolicyTest, FileRule) {
  FsPolicy p = Make({Rule(root_ + "/single/only.txt", "r")});
  absl::StatusOr<UniqueFd> fd = p.Open(root_ + "/single/only.txt", O_RDONLY, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(ReadAll(fd->get()), "only");
  EXPECT_EQ(Err(p, root_ + "/single/sibling.txt", O_RDONLY), EACCES);
  EXPECT_EQ(Err(p, root_ + "/single", O_RDONLY | O_DIRECTORY), EACCES);
  EXPECT_EQ(Err(p, root_ + "/single/only.txt/", O_RDONLY), ENOTDIR);
  EXPECT_EQ(Err(p, root_ + "/single/only.txt/x", O_RDONLY), EACCES);
}

TEST_F(FsPolicyTest, FileRuleNameSwappedForASymlinkIsRefused) {
  FsPolicy p = Make({Rule(root_ + "/single/only.txt", "r")});
  // After Create, the file is replaced by a symlink to its sibling.
  ASSERT_EQ(rename((root_ + "/single/only_link").c_str(), (root_ + "/single/only.txt").c_str()),
            0);
  EXPECT_EQ(Err(p, root_ + "/single/only.txt", O_RDONLY), ELOOP);
}

TEST_F(FsPolicyTest, FileRuleThatDoesNotExistYetNeedsC) {
  const std::string out = root_ + "/single/out.log";
  EXPECT_FALSE(FsPolicy::Create({Rule(out, "w")}).ok());
  FsPolicy p = Make({Rule(out, "wc")});
  EXPECT_EQ(Err(p, out, O_WRONLY | O_CREAT, 0600), 0);
  EXPECT_EQ(access(out.c_str(), F_OK), 0);
}

TEST_F(FsPolicyTest, MostSpecificRuleWins) {
  FsPolicy p = Make({Rule(allowed_, "rwc"), Rule(allowed_ + "/ro", "r")});
  EXPECT_EQ(Err(p, allowed_ + "/file.txt", O_RDWR), 0);
  EXPECT_EQ(Err(p, allowed_ + "/ro/ro.txt", O_RDONLY), 0);
  EXPECT_EQ(Err(p, allowed_ + "/ro/ro.txt", O_RDWR), EACCES);
  EXPECT_EQ(Err(p, allowed_ + "/ro/new.txt", O_WRONLY | O_CREAT, 0600), EACCES);
}

TEST_F(FsPolicyTest, SymlinkIntoANarrowerNestedRuleIsRechecked) {
  FsPolicy p = Make({Rule(allowed_, "rwc"), Rule(allowed_ + "/ro", "r")});
  // Reading through the symlink is fine: /ro allows r too.
  EXPECT_EQ(Err(p, allowed_ + "/link_ro/ro.txt", O_RDONLY), 0);
  // Writing is not: the file lies under the r-only rule.
  EXPECT_EQ(Err(p, allowed_ + "/link_ro/ro.txt", O_WRONLY), EACCES);
  // Truncating is decided on the looked-up file, before anything is truncated; creating
  // follows no symlink there at all.
  EXPECT_EQ(Err(p, allowed_ + "/link_ro/ro.txt", O_WRONLY | O_TRUNC), EACCES);
  EXPECT_EQ(Err(p, allowed_ + "/link_ro/new.txt", O_WRONLY | O_CREAT, 0600), ELOOP);
  EXPECT_EQ(access((allowed_ + "/ro/new.txt").c_str(), F_OK), -1);
  struct stat st;
  ASSERT_EQ(stat((allowed_ + "/ro/ro.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 2) << "must not have been truncated";
  // A create that follows no symlink still works in the wide rule.
  EXPECT_EQ(Err(p, allowed_ + "/new.txt", O_WRONLY | O_CREAT, 0600), 0);
}

TEST_F(FsPolicyTest, OPathNeedsX) {
  FsPolicy p = Make({Rule(allowed_, "x")});
  absl::StatusOr<UniqueFd> fd = p.Open(allowed_ + "/file.txt", O_PATH, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(Err(p, allowed_ + "/file.txt", O_RDONLY), EACCES) << "x is never for reading";
  EXPECT_EQ(Err(p, allowed_ + "/sub", O_PATH), EISDIR);
  EXPECT_EQ(Err(p, allowed_ + "/sub", O_PATH | O_DIRECTORY), 0);
}

TEST_F(FsPolicyTest, CreateErrorsNameTheRule) {
  struct Case {
    PathRule rule;
    const char* expect;
  };
  const Case cases[] = {
      {Rule("relative/x", "r"), "not absolute"},
      {Rule("/tmp/", "r"), "trailing slash"},
      {Rule("/tmp//x", "r"), "'//'"},
      {Rule("/tmp/./x", "r"), "'.'"},
      {Rule("/tmp/../x", "r"), "'..'"},
      {Rule(std::string("/tmp\0x", 6), "r"), "NUL"},
      {Rule("/no/such/dir/vow", "r"), "does not exist"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule("/", "r"), c.rule});
    ASSERT_FALSE(p.ok()) << c.expect;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("path rule 1")) << p.status();
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(c.expect)) << p.status();
  }
  absl::StatusOr<FsPolicy> missing = FsPolicy::Create({Rule("/no/such/dir/vow", "r")});
  EXPECT_EQ(ErrnoOf(missing.status()), ENOENT) << missing.status();
  absl::StatusOr<FsPolicy> dup = FsPolicy::Create({Rule("/tmp", "r"), Rule("/tmp", "w")});
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("duplicate"));
}

// `unveil PATH none`: a rule with no letters closes its subtree, directly and through a
// symlink from the broader rule; it need not exist.
TEST(FsPolicyDenyRuleTest, DenyRuleClosesItsSubtree) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string base = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/fs_deny_XXXXXX");
  ASSERT_NE(mkdtemp(base.data()), nullptr);
  char* real = realpath(base.c_str(), nullptr);
  std::string root = real;
  free(real);
  ASSERT_EQ(mkdir((root + "/private").c_str(), 0755), 0);
  int fd = open((root + "/private/key").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  fd = open((root + "/public").c_str(), O_WRONLY | O_CREAT, 0600);
  close(fd);
  ASSERT_EQ(symlink("private/key", (root + "/via_link").c_str()), 0);
  PathRule all{root, /*read=*/true};
  PathRule deny{root + "/private"};
  PathRule missing{root + "/not/there"};
  absl::StatusOr<FsPolicy> p = FsPolicy::Create({all, deny, missing});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->Open(root + "/public", O_RDONLY, 0).ok());
  auto direct = p->Open(root + "/private/key", O_RDONLY, 0);
  EXPECT_EQ(ErrnoOf(direct.status()), EACCES) << direct.status();
  auto link = p->Open(root + "/via_link", O_RDONLY, 0);
  EXPECT_EQ(ErrnoOf(link.status()), EACCES) << link.status();
}

// ---- Item 5: a rule path through a symlink is decided on its real location. ----

class SymlinkedRuleTest : public FsPolicyTest {
 protected:
  void SetUp() override {
    FsPolicyTest::SetUp();
    data_ = root_ + "/data";
    ASSERT_EQ(mkdir(data_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((data_ + "/ro").c_str(), 0755), 0);
    WriteFile(data_ + "/ro/keep.txt", "keep me");
    WriteFile(data_ + "/free.txt", "free");
    ASSERT_EQ(symlink("data", (root_ + "/datalink").c_str()), 0);
  }
  std::string data_;
};

TEST_F(SymlinkedRuleTest, TruncateInTheReadOnlyAreaIsRefusedBeforeTruncating) {
  FsPolicy p = Make({Rule(root_ + "/datalink", "rwc"), Rule(data_ + "/ro", "r")});
  absl::StatusOr<UniqueFd> fd =
      p.Open(root_ + "/datalink/ro/keep.txt", O_WRONLY | O_TRUNC, 0);
  EXPECT_EQ(ErrnoOf(fd.status()), EACCES) << fd.status();
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("path rule 1"));
  struct stat st;
  ASSERT_EQ(stat((data_ + "/ro/keep.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 7) << "truncated although refused";
}

TEST_F(SymlinkedRuleTest, CreateInTheReadOnlyAreaIsRefused) {
  FsPolicy p = Make({Rule(root_ + "/datalink", "rwc"), Rule(data_ + "/ro", "r")});
  EXPECT_EQ(Err(p, root_ + "/datalink/ro/new.txt", O_WRONLY | O_CREAT, 0600), EACCES);
  EXPECT_EQ(access((data_ + "/ro/new.txt").c_str(), F_OK), -1) << "created although refused";
  // The wide rule still works through its symlinked path.
  EXPECT_EQ(Err(p, root_ + "/datalink/free.txt", O_RDWR | O_TRUNC), 0);
  EXPECT_EQ(Err(p, root_ + "/datalink/made.txt", O_WRONLY | O_CREAT, 0600), 0);
  EXPECT_EQ(access((data_ + "/made.txt").c_str(), F_OK), 0);
  EXPECT_EQ(Err(p, root_ + "/datalink/ro/keep.txt", O_RDONLY), 0);
}

// Like /lib -> usr/lib on Debian: worker paths that go through the symlinked rule path
// keep working.
TEST_F(SymlinkedRuleTest, PathsThroughASymlinkedRuleWork) {
  FsPolicy p = Make({Rule(root_ + "/datalink", "r")});
  EXPECT_EQ(Err(p, root_ + "/datalink/ro/keep.txt", O_RDONLY), 0);
  struct stat st;
  if (lstat("/lib", &st) == 0 && S_ISLNK(st.st_mode) &&
      access("/lib/x86_64-linux-gnu/libc.so.6", F_OK) == 0) {
    FsPolicy lib = Make({Rule("/lib", "r")});
    EXPECT_EQ(Err(lib, "/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY), 0);
  }
}

TEST_F(SymlinkedRuleTest, TwoRulesForOneLocationWithDifferentLettersAreRefused) {
  absl::StatusOr<FsPolicy> p =
      FsPolicy::Create({Rule(root_ + "/datalink", "rw"), Rule(data_, "r")});
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("path rule 1"));
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("same location"));
  EXPECT_TRUE(FsPolicy::Create({Rule(root_ + "/datalink", "r"), Rule(data_, "r")}).ok());
}

// ---- Item 3: pseudo file systems, and /proc/self is the worker. ----

// A child process standing in for the worker: paused until the destructor kills it.
class FakeWorker {
 public:
  FakeWorker() {
    pid_ = fork();
    if (pid_ == 0) {
      for (;;) pause();
    }
  }
  ~FakeWorker() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  OpenContext context() const { return OpenContext{pid_, pid_}; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

std::string FdTarget(int fd) {
  char buf[256] = {};
  ssize_t n = readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

TEST(FsPolicyPseudoTest, ProcIsRefusedUnlessARuleLiesOnIt) {
  FakeWorker worker;
  absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule("/", "r")});
  ASSERT_TRUE(p.ok()) << p.status();
  auto fd = p->Open("/proc/self/status", O_RDONLY, 0, worker.context());
  EXPECT_EQ(ErrnoOf(fd.status()), EACCES) << fd.status();
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("proc"));
  fd = p->Open("/proc/cpuinfo", O_RDONLY, 0, worker.context());
  EXPECT_EQ(ErrnoOf(fd.status()), EACCES) << fd.status();
  // An ordinary file under the same rule opens.
  EXPECT_TRUE(p->Open("/etc/hostname", O_RDONLY, 0, worker.context()).ok() ||
              access("/etc/hostname", R_OK) != 0);
}

TEST(FsPolicyPseudoTest, SysfsIsRefusedUnlessARuleLiesOnIt) {
  struct stat st;
  if (stat("/sys/kernel", &st) != 0) GTEST_SKIP() << "no sysfs";
  absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule("/", "r")});
  ASSERT_TRUE(p.ok()) << p.status();
  auto fd = p->Open("/sys/kernel", O_RDONLY | O_DIRECTORY, 0);
  EXPECT_EQ(ErrnoOf(fd.status()), EACCES) << fd.status();
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("sysfs"));
  absl::StatusOr<FsPolicy> opted = FsPolicy::Create({Rule("/sys", "r")});
  ASSERT_TRUE(opted.ok()) << opted.status();
  auto ok = opted->Open("/sys/kernel", O_RDONLY | O_DIRECTORY, 0);
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(FsPolicyPseudoTest, ProcSelfIsTheWorker) {
  FakeWorker worker;
  absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule("/proc", "rw")});
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string own = absl::StrCat("/proc/", worker.pid());
  for (const char* name : {"mem", "environ", "maps", "status"}) {
    auto fd = p->Open(absl::StrCat("/proc/self/", name), O_RDONLY, 0, worker.context());
    ASSERT_TRUE(fd.ok()) << name << ": " << fd.status();
    EXPECT_EQ(FdTarget(fd->get()), absl::StrCat(own, "/", name));
  }
  auto thread = p->Open("/proc/thread-self/status", O_RDONLY, 0, worker.context());
  ASSERT_TRUE(thread.ok()) << thread.status();
  EXPECT_EQ(FdTarget(thread->get()), absl::StrCat(own, "/task/", worker.pid(), "/status"));
  auto by_pid = p->Open(own + "/status", O_RDONLY, 0, worker.context());
  EXPECT_TRUE(by_pid.ok()) << by_pid.status();
  // /proc/net is a symlink to self/net: the worker's too.
  auto net = p->Open("/proc/net/unix", O_RDONLY, 0, worker.context());
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(FdTarget(net->get()), own + "/net/unix");
  // Files that name no process are fine.
  EXPECT_TRUE(p->Open("/proc/cpuinfo", O_RDONLY, 0, worker.context()).ok());
}

TEST(FsPolicyPseudoTest, ProcOfTheBrokerOrOthersIsRefused) {
  FakeWorker worker;
  absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule("/proc", "rw")});
  ASSERT_TRUE(p.ok()) << p.status();
  // Without a context `self` has no meaning: refused, never the broker's.
  for (const char* path : {"/proc/self/mem", "/proc/self/environ", "/proc/thread-self/maps",
                           "/proc/net/unix", "/proc/mounts"}) {
    auto fd = p->Open(path, O_RDONLY, 0);
    EXPECT_EQ(ErrnoOf(fd.status()), EACCES) << path << ": " << fd.status();
  }
  // Another process's directory (here the broker's own, and init's).
  for (pid_t other : {getpid(), static_cast<pid_t>(1)}) {
    auto fd = p->Open(absl::StrCat("/proc/", other, "/mem"), O_RDWR, 0, worker.context());
    EXPECT_EQ(ErrnoOf(fd.status()), EACCES) << other << ": " << fd.status();
  }
  // The stat side (LookupPath) follows the same rules.
  auto look = p->LookupPath("/proc/self/environ", true);
  EXPECT_EQ(ErrnoOf(look.status()), EACCES) << look.status();
  look = p->LookupPath("/proc/self/environ", true, worker.context());
  ASSERT_TRUE(look.ok()) << look.status();
  EXPECT_EQ(FdTarget(look->fd.get()), absl::StrCat("/proc/", worker.pid(), "/environ"));
}

TEST(FsPolicyPseudoTest, RuleInsideAProcessDirectoryIsRefusedAtCreate) {
  for (const std::string& path : {std::string("/proc/self"), std::string("/proc/self/fd"),
                                 std::string("/proc/1"), std::string("/proc/thread-self")}) {
    absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule("/etc", "r"), Rule(path, "r")});
    ASSERT_FALSE(p.ok()) << path;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("path rule 1")) << p.status();
  }
  EXPECT_TRUE(FsPolicy::Create({Rule("/proc/sys/kernel", "r")}).ok());
}

// ---- Item 9: devices only through a rule that names them. ----

TEST(FsPolicyDeviceTest, DirectoryRuleDoesNotOpenDevices) {
  absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule("/dev", "rw")});
  ASSERT_TRUE(p.ok()) << p.status();
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/kmsg", "/dev/console", "/dev/loop0",
                          "/dev/tty"}) {
    if (access(dev, F_OK) != 0) continue;
    auto fd = p->Open(dev, O_RDONLY, 0);
    EXPECT_EQ(ErrnoOf(fd.status()), EACCES) << dev << ": " << fd.status();
    EXPECT_THAT(std::string(fd.status().message()), HasSubstr("device")) << fd.status();
  }
}

TEST(FsPolicyDeviceTest, FileRuleNamingTheDeviceOpensIt) {
  absl::StatusOr<FsPolicy> p =
      FsPolicy::Create({Rule("/dev", "r"), Rule("/dev/null", "rw")});
  ASSERT_TRUE(p.ok()) << p.status();
  auto fd = p->Open("/dev/null", O_WRONLY, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(write(fd->get(), "x", 1), 1);
  EXPECT_EQ(ErrnoOf(p->Open("/dev/zero", O_RDONLY, 0).status()), EACCES);
}


// ---- kDirect: one openat2 with the worker's flags, only where nothing can surprise ----

// Watches a file for IN_OPEN: an O_PATH lookup does not count, a real open (a device's
// driver running) does.
class OpenWatch {
 public:
  explicit OpenWatch(const std::string& path) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ >= 0 && inotify_add_watch(fd_, path.c_str(), IN_OPEN) < 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~OpenWatch() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  bool Opened() {
    alignas(struct inotify_event) char buf[4096];
    return read(fd_, buf, sizeof(buf)) > 0;
  }

 private:
  int fd_ = -1;
};

bool IsNodev(const std::string& path) {
  struct statfs sfs;
  return statfs(path.c_str(), &sfs) == 0 && (sfs.f_flags & ST_NODEV) != 0;
}

TEST_F(FsPolicyTest, DirectOpenOnlyWhereNothingCanSurprise) {
  FsPolicy file_rule = Make({Rule(root_ + "/single/only.txt", "rwx")});
  const std::string only = root_ + "/single/only.txt";
  EXPECT_TRUE(file_rule.OpensDirectly(only, O_RDONLY));
  EXPECT_TRUE(file_rule.OpensDirectly(only, O_RDWR | O_TRUNC | O_APPEND));
  EXPECT_FALSE(file_rule.OpensDirectly(only, O_RDWR | O_CREAT)) << "creates: the lookup";
  EXPECT_FALSE(file_rule.OpensDirectly(only, O_PATH | O_CLOEXEC));
  absl::StatusOr<UniqueFd> fd = file_rule.Open(only, O_RDONLY, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0) << "O_NONBLOCK must be cleared";
  EXPECT_EQ(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(ReadAll(fd->get()), "only");

  // A directory rule where a device node could be opened by surprise: the lookup first.
  if (!IsNodev(allowed_)) {
    FsPolicy dir_rule = Make({Rule(allowed_, "rw")});
    EXPECT_FALSE(dir_rule.OpensDirectly(allowed_ + "/file.txt", O_RDONLY));
  }
  // Pseudo file systems and proc: the lookup first.
  FsPolicy proc = Make({Rule("/proc", "r")});
  EXPECT_FALSE(proc.OpensDirectly("/proc/self/status", O_RDONLY, OpenContext{getpid(), getpid()}));
  FsPolicy proc_file = Make({Rule("/proc/cpuinfo", "r")});
  EXPECT_FALSE(proc_file.OpensDirectly("/proc/cpuinfo", O_RDONLY));
}

TEST_F(FsPolicyTest, FileRuleOpensDirectlyAndStillRefusesWhatTheLookupRefuses) {
  FsPolicy p = Make({Rule(allowed_ + "/fifo", "rw"), Rule(allowed_ + "/sub", "r"),
                     Rule(root_ + "/single/only.txt", "r")});
  ASSERT_TRUE(p.OpensDirectly(allowed_ + "/fifo", O_RDONLY));
  // A FIFO without a writer does not block; O_NONBLOCK is cleared afterwards.
  absl::StatusOr<UniqueFd> fd = p.Open(allowed_ + "/fifo", O_RDONLY, 0);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fcntl(fd->get(), F_GETFL) & O_NONBLOCK, 0);
  fd->reset();
  EXPECT_EQ(Err(p, allowed_ + "/fifo", O_WRONLY), ENXIO) << "no reader: ENXIO, not a wait";
  // The file rule's name swapped for a directory: EISDIR, as through the lookup.
  ASSERT_EQ(rename((root_ + "/single/only.txt").c_str(), (root_ + "/single/was.txt").c_str()),
            0);
  ASSERT_EQ(mkdir((root_ + "/single/only.txt").c_str(), 0755), 0);
  EXPECT_EQ(Err(p, root_ + "/single/only.txt", O_RDONLY), EISDIR);
  ASSERT_EQ(rmdir((root_ + "/single/only.txt").c_str()), 0);
  // ... or for a symlink: ELOOP.
  ASSERT_EQ(symlink("sibling.txt", (root_ + "/single/only.txt").c_str()), 0);
  EXPECT_EQ(Err(p, root_ + "/single/only.txt", O_RDONLY), ELOOP);
}

TEST_F(FsPolicyTest, DeviceBeneathADirectoryRuleIsNeverOpened) {
  // A device node beneath a directory rule on a mount without nodev: refused, and its
  // driver never ran (no IN_OPEN), so it cannot have been opened to be looked at.
  const std::string dev = allowed_ + "/null";
  if (mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    GTEST_SKIP() << "mknod: " << strerror(errno);
  }
  if (IsNodev(allowed_)) GTEST_SKIP() << "the test directory is on a nodev mount";
  FsPolicy p = Make({Rule(allowed_, "rw")});
  OpenWatch watch(dev);
  ASSERT_TRUE(watch.ok());
  EXPECT_EQ(Err(p, dev, O_RDONLY), EACCES);
  EXPECT_EQ(Err(p, dev, O_WRONLY | O_TRUNC), EACCES);
  EXPECT_FALSE(watch.Opened()) << "the device was opened before the decision";
  // The watch sees a real open.
  int real = open(dev.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(real, 0);
  close(real);
  EXPECT_TRUE(watch.Opened());
}

// Runs `body` in a forked child with its own mount namespace (mounts stay private to
// it). The child's answer: "" for success, "skip: ..." or a failure text.
std::string InMountNamespace(const std::function<std::string()>& body) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    std::string out;
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE,
                                           nullptr) != 0) {
      out = absl::StrCat("skip: no private mount namespace: ", strerror(errno));
    } else {
      out = body();
    }
    (void)!write(pipefd[1], out.data(), out.size());
    _exit(0);
  }
  close(pipefd[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return absl::StrCat("child died: status ", status);
  return out;
}

TEST_F(FsPolicyTest, DirectoryRuleOnANodevMountOpensDirectly) {
  const std::string top = root_ + "/nodev";
  ASSERT_EQ(mkdir(top.c_str(), 0755), 0);
  std::string result = InMountNamespace([&]() -> std::string {
    if (mount("tmpfs", top.c_str(), "tmpfs", MS_NODEV, "mode=0755") != 0) {
      return absl::StrCat("skip: mount tmpfs nodev: ", strerror(errno));
    }
    // top/file.txt, top/null (a device, on the nodev mount), top/ro/ro.txt (a narrower
    // rule), top/link_ro -> ro, top/sub: another tmpfs WITHOUT nodev holding a device.
    for (const char* d : {"/ro", "/dir", "/sub"}) mkdir((top + d).c_str(), 0755);
    int fd = open((top + "/file.txt").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "hello", 5) != 5) return "cannot write file.txt";
    close(fd);
    fd = open((top + "/ro/ro.txt").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "ro", 2) != 2) return "cannot write ro.txt";
    close(fd);
    if (symlink("ro", (top + "/link_ro").c_str()) != 0) return "symlink failed";
    if (mknod((top + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
      return absl::StrCat("skip: mknod: ", strerror(errno));
    }
    if (mount("tmpfs", (top + "/sub").c_str(), "tmpfs", 0, "mode=0755") != 0) {
      return absl::StrCat("cannot mount the submount: ", strerror(errno));
    }
    const std::string sub_dev = top + "/sub/null";
    if (mknod(sub_dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) return "mknod in sub";

    absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule(top, "rw")});
    if (!p.ok()) return std::string(p.status().message());
    std::string errors;
    auto expect = [&](bool ok, absl::string_view what) {
      if (!ok) absl::StrAppend(&errors, what, "; ");
    };
    expect(p->OpensDirectly(top + "/file.txt", O_RDONLY), "file.txt is not opened directly");
    absl::StatusOr<UniqueFd> f = p->Open(top + "/file.txt", O_RDWR, 0);
    expect(f.ok() && ReadAll(f->get()) == "hello", "file.txt does not open");
    expect(f.ok() && (fcntl(f->get(), F_GETFL) & O_NONBLOCK) == 0, "O_NONBLOCK left set");
    expect(ErrnoOf(p->Open(top + "/dir", O_RDONLY, 0).status()) == EISDIR,
           "a directory without O_DIRECTORY");
    expect(p->Open(top + "/dir", O_RDONLY | O_DIRECTORY, 0).ok(), "O_DIRECTORY refused");
    {
      OpenWatch watch(top + "/null");
      expect(ErrnoOf(p->Open(top + "/null", O_RDONLY, 0).status()) == EACCES,
             "a device on the nodev mount is not EACCES");
      expect(!watch.Opened(), "the device on the nodev mount was opened");
    }
    {
      // Through the submount (no nodev): the direct open may not cross into it, the
      // lookup refuses the device without opening it.
      OpenWatch watch(sub_dev);
      expect(watch.ok(), "no inotify watch");
      absl::StatusOr<UniqueFd> d = p->Open(sub_dev, O_RDONLY, 0);
      expect(ErrnoOf(d.status()) == EACCES, "the device in the submount is not EACCES");
      expect(!watch.Opened(), "the device in the submount was opened (RESOLVE_NO_XDEV?)");
    }
    // A narrower nested rule: the lookup decides, before anything is truncated.
    absl::StatusOr<FsPolicy> nested = FsPolicy::Create({Rule(top, "rw"), Rule(top + "/ro", "r")});
    if (!nested.ok()) return std::string(nested.status().message());
    expect(!nested->OpensDirectly(top + "/link_ro/ro.txt", O_WRONLY | O_TRUNC),
           "a rule with a narrower nested rule opens directly");
    expect(ErrnoOf(nested->Open(top + "/link_ro/ro.txt", O_WRONLY | O_TRUNC, 0).status()) ==
               EACCES,
           "writing into the nested r rule through a symlink");
    struct stat st;
    expect(stat((top + "/ro/ro.txt").c_str(), &st) == 0 && st.st_size == 2,
           "ro.txt was truncated");
    return errors;
  });
  if (absl::StartsWith(result, "skip: ")) GTEST_SKIP() << result;
  EXPECT_EQ(result, "");
}

}  // namespace
}  // namespace vow

namespace vow {
namespace {

// kInline (fs_policy.h): what the serving thread may decide itself.
class InlineOpenTest : public FsPolicyTest {
 protected:
  // The test's tree is on a local file system kInline takes (ext4 or tmpfs here).
  bool LocalTree() {
    struct statfs fs;
    if (statfs(root_.c_str(), &fs) != 0) return false;
    return fs.f_type == EXT4_SUPER_MAGIC || fs.f_type == TMPFS_MAGIC;
  }
};

TEST_F(InlineOpenTest, StringRefusalsAreDecidedWithoutTheFileSystem) {
  FsPolicy p = Make({Rule(allowed_ + "/file.txt", "r")});
  auto outside = p.OpenWithoutBlocking(root_ + "/secret.txt", O_RDONLY);
  ASSERT_TRUE(outside.has_value());
  ASSERT_FALSE(outside->ok());
  EXPECT_EQ(ErrnoOf(outside->status()), EACCES);
  auto dotdot = p.OpenWithoutBlocking(allowed_ + "/../secret.txt", O_RDONLY);
  ASSERT_TRUE(dotdot.has_value());
  EXPECT_EQ(ErrnoOf(dotdot->status()), EACCES);
  // The letters: a write open under an `r` rule.
  auto write = p.OpenWithoutBlocking(allowed_ + "/file.txt", O_WRONLY);
  ASSERT_TRUE(write.has_value());
  EXPECT_EQ(ErrnoOf(write->status()), EACCES);
}

TEST_F(InlineOpenTest, ACachedRegularFileUnderAFileRuleOpensInline) {
  if (!LocalTree()) GTEST_SKIP() << root_ << " is not on ext4 or tmpfs";
  FsPolicy p = Make({Rule(allowed_ + "/file.txt", "rw")});
  ASSERT_EQ(Err(p, allowed_ + "/file.txt", O_RDONLY), 0);  // the dentries are cached now
  auto fd = p.OpenWithoutBlocking(allowed_ + "/file.txt", O_RDONLY);
  ASSERT_TRUE(fd.has_value()) << "a cached file under a file rule was not decided inline";
  ASSERT_TRUE(fd->ok()) << fd->status();
  EXPECT_EQ(ReadAll((*fd)->get()), "hello");
  EXPECT_EQ(fcntl((*fd)->get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl((*fd)->get(), F_GETFL) & O_NONBLOCK, 0);  // the broker's O_NONBLOCK cleared
  // O_TRUNC (the inode lock, which another writer may hold) is never inline.
  EXPECT_FALSE(p.OpenWithoutBlocking(allowed_ + "/file.txt", O_WRONLY | O_TRUNC).has_value());
  EXPECT_EQ(ReadAll(open((allowed_ + "/file.txt").c_str(), O_RDONLY | O_CLOEXEC)), "hello");
}

TEST_F(InlineOpenTest, TheWalksFdIsHandedOutOnlyWithAnOpenedFile) {
  if (!LocalTree()) GTEST_SKIP() << root_ << " is not on ext4 or tmpfs";
  FsPolicy p = Make({Rule(allowed_ + "/file.txt", "r")});
  ASSERT_EQ(Err(p, allowed_ + "/file.txt", O_RDONLY), 0);  // the dentries are cached now
  UniqueFd walk;
  auto fd = p.OpenWithoutBlocking(allowed_ + "/file.txt", O_RDONLY, {}, &walk);
  ASSERT_TRUE(fd.has_value() && fd->ok());
  ASSERT_TRUE(walk.valid());
  // The O_PATH fd of the same inode the answer opened.
  EXPECT_EQ(fcntl(walk.get(), F_GETFL) & O_PATH, O_PATH);
  struct stat a, b;
  ASSERT_EQ(fstat(walk.get(), &a), 0);
  ASSERT_EQ(fstat((*fd)->get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
  // A refusal hands out nothing.
  UniqueFd none;
  auto refused = p.OpenWithoutBlocking(allowed_ + "/file.txt", O_WRONLY, {}, &none);
  ASSERT_TRUE(refused.has_value());
  EXPECT_FALSE(refused->ok());
  EXPECT_FALSE(none.valid());
}

TEST_F(InlineOpenTest, DevicesFifosAndDirectoryRulesOfDeviceMountsAreNotInline) {
  // A file rule that names a device: its open may wait on a driver.
  FsPolicy dev = Make({Rule("/dev/null", "rw")});
  EXPECT_FALSE(dev.OpenWithoutBlocking("/dev/null", O_RDONLY).has_value());
  EXPECT_EQ(Err(dev, "/dev/null", O_RDONLY), 0);  // the pool's Open() serves it
  // A file rule that names a FIFO.
  FsPolicy fifo = Make({Rule(allowed_ + "/fifo", "rw")});
  EXPECT_FALSE(fifo.OpenWithoutBlocking(allowed_ + "/fifo", O_RDONLY).has_value());
  // Beneath a directory rule: the FIFO (its open never runs here: another process can
  // hold its pipe mutex), a path through a symlink, a directory, a write open.
  FsPolicy dir = Make({Rule(allowed_, "rwc")});
  EXPECT_FALSE(dir.OpenWithoutBlocking(allowed_ + "/fifo", O_RDONLY).has_value());
  ASSERT_EQ(Err(dir, allowed_ + "/link_in", O_RDONLY), 0);
  EXPECT_FALSE(dir.OpenWithoutBlocking(allowed_ + "/link_in", O_RDONLY).has_value());
  EXPECT_FALSE(dir.OpenWithoutBlocking(allowed_ + "/sub", O_RDONLY | O_DIRECTORY).has_value());
  EXPECT_FALSE(dir.OpenWithoutBlocking(allowed_ + "/file.txt", O_WRONLY).has_value());
  EXPECT_FALSE(dir.OpenWithoutBlocking(allowed_ + "/file.txt", O_RDWR).has_value());
}

// A file system not on the list (ramfs here, standing for FUSE, NFS, overlayfs, whose
// opens may wait on another process or the network): the pool decides.
TEST_F(InlineOpenTest, OnlyListedFileSystemsAreInline) {
  const std::string top = root_ + "/ramfs";
  ASSERT_EQ(mkdir(top.c_str(), 0755), 0);
  std::string result = InMountNamespace([&]() -> std::string {
    if (mount("ramfs", top.c_str(), "ramfs", 0, "mode=0755") != 0) {
      return absl::StrCat("skip: mount ramfs: ", strerror(errno));
    }
    int fd = open((top + "/f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "r", 1) != 1) return "cannot write f";
    close(fd);
    absl::StatusOr<FsPolicy> p = FsPolicy::Create({Rule(top, "r")});
    if (!p.ok()) return std::string(p.status().message());
    if (!p->Open(top + "/f", O_RDONLY, 0).ok()) return "Open() refused the ramfs file";
    if (p->OpenWithoutBlocking(top + "/f", O_RDONLY).has_value()) {
      return "a file on ramfs was opened inline";
    }
    return "";
  });
  if (absl::StartsWith(result, "skip:")) GTEST_SKIP() << result;
  EXPECT_EQ(result, "");
}

TEST_F(InlineOpenTest, AFileBeneathADirectoryRuleOpensInline) {
  if (!LocalTree()) GTEST_SKIP() << root_ << " is not on ext4 or tmpfs";
  FsPolicy dir = Make({Rule(allowed_, "r")});
  ASSERT_EQ(Err(dir, allowed_ + "/sub/deep.txt", O_RDONLY), 0);
  auto fd = dir.OpenWithoutBlocking(allowed_ + "/sub/deep.txt", O_RDONLY);
  ASSERT_TRUE(fd.has_value());
  ASSERT_TRUE(fd->ok()) << fd->status();
  EXPECT_EQ(ReadAll((*fd)->get()), "deep");
}

// The reviewer's hang: a process holding a FIFO's pipe mutex (splice from an idle socket
// into it waits for data with the mutex held) makes any open of that FIFO wait in
// fifo_open, uninterruptibly. Beneath a directory rule, the inline path must not open it.
TEST_F(InlineOpenTest, AFifoWhosePipeMutexIsHeldIsNotWaitedFor) {
  if (!LocalTree()) GTEST_SKIP() << root_ << " is not on ext4 or tmpfs";
  const std::string path = allowed_ + "/held";
  ASSERT_EQ(mkfifo(path.c_str(), 0644), 0);
  FsPolicy p = Make({Rule(allowed_, "r")});
  int fifo = open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fifo, 0);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread splicer([&] { (void)splice(sv[0], nullptr, fifo, nullptr, 4096, 0); });
  absl::SleepFor(absl::Milliseconds(200));  // the splice holds the pipe mutex by now
  ASSERT_EQ(access(path.c_str(), F_OK), 0);
  std::atomic<bool> done{false};
  std::optional<absl::StatusOr<UniqueFd>> got;
  std::thread opener([&] {
    got = p.OpenWithoutBlocking(path, O_RDONLY);
    done = true;
  });
  const absl::Time until = absl::Now() + absl::Seconds(3);
  while (!done && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  const bool answered = done;
  ASSERT_EQ(write(sv[1], "x", 1), 1);  // the splice ends, and so would a waiting open
  splicer.join();
  opener.join();
  close(sv[0]);
  close(sv[1]);
  close(fifo);
  EXPECT_TRUE(answered) << "the inline open waited for the FIFO's pipe mutex";
  EXPECT_FALSE(got.has_value() && got->ok());
}

// A path whose dentries are not in the cache (dropped here: root, vm.drop_caches) is
// not decided inline: walking it may read the disk.
TEST_F(InlineOpenTest, AnUncachedPathIsLeftToThePool) {
  if (!LocalTree()) GTEST_SKIP() << root_ << " is not on ext4 or tmpfs";
  struct statfs fs;
  ASSERT_EQ(statfs(root_.c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) GTEST_SKIP() << "tmpfs keeps every dentry";
  const std::string path = allowed_ + "/cold.txt";
  WriteFile(path, "cold");
  FsPolicy p = Make({Rule(path, "r")});
  int drop = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (drop < 0) GTEST_SKIP() << "/proc/sys/vm/drop_caches: " << strerror(errno);
  sync();
  bool uncached = false;
  for (int i = 0; i < 5 && !uncached; ++i) {
    ASSERT_EQ(write(drop, "2", 1), 1);
    auto fd = p.OpenWithoutBlocking(path, O_RDONLY);
    uncached = !fd.has_value();
  }
  close(drop);
  EXPECT_TRUE(uncached) << "a path whose dentry was dropped was still opened inline";
  EXPECT_EQ(Err(p, path, O_RDONLY), 0);  // Open() (the pool's) serves it
}

// A regular file under a file rule that became a FIFO after Create: not opened inline.
TEST_F(InlineOpenTest, AFifoSwappedInIsNotOpenedInline) {
  if (!LocalTree()) GTEST_SKIP() << root_ << " is not on ext4 or tmpfs";
  const std::string path = allowed_ + "/swapped";
  WriteFile(path, "x");
  FsPolicy p = Make({Rule(path, "rw")});
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(mkfifo(path.c_str(), 0644), 0);
  ASSERT_EQ(access(path.c_str(), F_OK), 0);  // cached
  // A reader with no writer and a writer with no reader would each block without
  // O_NONBLOCK (this test would time out).
  EXPECT_FALSE(p.OpenWithoutBlocking(path, O_RDONLY).has_value());
  EXPECT_FALSE(p.OpenWithoutBlocking(path, O_WRONLY).has_value());
}

// A file with a write lease held by another process's open: opening it must break the
// lease, which waits up to /proc/sys/fs/lease-break-time (45 s) for the holder. Inline,
// the broker's O_NONBLOCK makes the kernel say EWOULDBLOCK instead: not decided here (the
// pool waits, bounded by the call deadline).
TEST_F(InlineOpenTest, ALeasedFileIsNotWaitedFor) {
  if (!LocalTree()) GTEST_SKIP() << root_ << " is not on ext4 or tmpfs";
  const std::string path = allowed_ + "/leased";
  WriteFile(path, "leased");
  FsPolicy p = Make({Rule(path, "rw")});
  int holder = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(holder, 0);
  if (fcntl(holder, F_SETLEASE, F_WRLCK) != 0) {
    close(holder);
    GTEST_SKIP() << "F_SETLEASE: " << strerror(errno);
  }
  signal(SIGIO, SIG_IGN);  // the lease-break notice
  const absl::Time start = absl::Now();
  auto fd = p.OpenWithoutBlocking(path, O_RDONLY);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(fd.has_value() && fd->ok()) << "opened a leased file inline";
  fcntl(holder, F_SETLEASE, F_UNLCK);
  close(holder);
}

}  // namespace
}  // namespace vow
