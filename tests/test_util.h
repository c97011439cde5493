// Helpers for vow's cross-process tests. Test-only; runs in the test (broker) process.
#ifndef VOW_TESTS_TEST_UTIL_H_
#define VOW_TESTS_TEST_UTIL_H_

#include <sys/types.h>

#include <set>
#include <string>

#include "absl/status/statusor.h"

namespace vow::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  // Writes `contents` to path()/name (creating parent dirs) and returns the full path.
  std::string WriteFile(const std::string& name, const std::string& contents) const;
  std::string MakeDir(const std::string& name) const;

 private:
  std::string path_;
};

// The fds open in process `pid` (read from /proc/<pid>/fd).
std::set<int> OpenFds(pid_t pid);

// Reads everything from `fd` until EOF.
std::string ReadAll(int fd);

}  // namespace vow::testing

#endif  // VOW_TESTS_TEST_UTIL_H_
