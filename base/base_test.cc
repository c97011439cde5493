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

}  // namespace
}  // namespace vow
