#include <fcntl.h>
#include <unistd.h>

#include "base/status_macros.h"
#include "base/syscall.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

absl::StatusOr<int> OpenForTest(const char* path) {
  ASSIGN_OR_RETURN(long fd, Syscall("open", [&] { return ::open(path, O_RDONLY | O_CLOEXEC); }));
  return static_cast<int>(fd);
}

absl::Status Chain(const char* path) {
  ASSIGN_OR_RETURN(int fd, OpenForTest(path));
  ::close(fd);
  return absl::OkStatus();
}

TEST(SyscallTest, CarriesErrnoAndName) {
  auto status = Chain("/nonexistent/vow");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(ErrnoOf(status), ENOENT);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("open"), absl::string_view::npos);
  EXPECT_TRUE(Chain("/dev/null").ok());
}

TEST(UniqueFdTest, ClosesOnDestruction) {
  int raw;
  {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    raw = fd.get();
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST(UniqueFdTest, ReleaseKeepsOpen) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = fd.release();
  EXPECT_FALSE(fd.valid());
  EXPECT_NE(::fcntl(raw, F_GETFD), -1);
  ::close(raw);
}

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// Three fds at fixed, consecutive numbers (high, so nothing else of the test is there).
void OpenThree(UniqueFd out[3]) {
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(null.valid());
  for (int i = 0; i < 3; ++i) {
    out[i].reset(::dup3(null.get(), 900 + i, O_CLOEXEC));
    ASSERT_EQ(out[i].get(), 900 + i);
  }
}

TEST(CloseBothTest, AdjacentPairClosesExactlyThoseTwo) {
  UniqueFd fds[3];
  ASSERT_NO_FATAL_FAILURE(OpenThree(fds));
  CloseBoth(fds[1], fds[0]);  // 901, 900: either order
  EXPECT_FALSE(fds[0].valid());
  EXPECT_FALSE(fds[1].valid());
  EXPECT_FALSE(IsOpen(900));
  EXPECT_FALSE(IsOpen(901));
  EXPECT_TRUE(IsOpen(902));
}

// The one-call close must never sweep an fd that lies between the two (another thread's).
TEST(CloseBothTest, NonAdjacentPairLeavesTheFdBetweenOpen) {
  UniqueFd fds[3];
  ASSERT_NO_FATAL_FAILURE(OpenThree(fds));
  CloseBoth(fds[0], fds[2]);  // 900, 902
  EXPECT_FALSE(IsOpen(900));
  EXPECT_FALSE(IsOpen(902));
  EXPECT_TRUE(IsOpen(901));
  EXPECT_FALSE(fds[0].valid());
  EXPECT_FALSE(fds[2].valid());
}

TEST(CloseBothTest, OneInvalid) {
  UniqueFd fds[3];
  ASSERT_NO_FATAL_FAILURE(OpenThree(fds));
  UniqueFd none;
  CloseBoth(none, fds[1]);
  EXPECT_FALSE(IsOpen(901));
  EXPECT_TRUE(IsOpen(900));
  EXPECT_TRUE(IsOpen(902));
}

}  // namespace
}  // namespace vow
