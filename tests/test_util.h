// Helpers for vow's cross-process tests. Test-only; runs in the test (broker) process.
#ifndef VOW_TESTS_TEST_UTIL_H_
#define VOW_TESTS_TEST_UTIL_H_

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

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

// The fds open in process `pid` (read from /proc/<pid>/fd). For this process (the
// broker of the tests), without its network and IPC namespace fds: the broker's
// NamespaceStock (broker/namespace_stock.h) takes and refills them at its own pace, so
// their number and slots change between two looks. That the broker keeps no namespace it
// handed out is spawn_test's FreshNamespacesFromTheStockAreNeverShared.
std::set<int> OpenFds(pid_t pid);

// The fds of this process (as OpenFds) that are not in `before`, each as "fd->target",
// once there are none or `within` has passed. For a fd-leak check right after a worker
// ended: the broker thread that answered the worker's last call (a path call or an
// open/connect request on the task pool) closes its copies of the answer's fd, of the
// channel and of the listener only after the answer is out, so the worker can end and
// Wait() return first. Those closes are owed at once; a leaked fd never closes, so a
// check that this is empty still fails on one.
std::vector<std::string> FdsBeyond(const std::set<int>& before, absl::Duration within);

// Reads everything from `fd` until EOF.
std::string ReadAll(int fd);

// A data dependency of the test, by its path in the workspace (e.g. "broker/vow").
std::string Runfile(const std::string& path);

// The whole file at `path` ("" if it cannot be read).
std::string ReadFile(const std::string& path);

// One run of the `vow` command.
struct VowRun {
  int status = -1;  // as from waitpid
  std::string out;  // the program's stdout
  std::string err;  // the program's and vow's stderr
  int code() const;  // the exit code, or 128 + the signal
};

// Runs `vow ARGS` (the //broker:vow data dependency; no shell in between), stdin from
// `stdin_file`, with $HOME set to a directory no rule names (as in a login session) and
// PATH=/usr/bin:/bin. Bit N of `closed_stdio` (0-2) starts vow with fd N closed (then
// `out` or `err` stays empty). A `stdout_file` (opened O_WRONLY|O_CREAT|O_APPEND, 0644)
// takes the place of the captured stdout (`out` stays empty).
VowRun RunVow(const std::vector<std::string>& args, const std::string& stdin_file = "/dev/null",
              int closed_stdio = 0, const std::string& stdout_file = "");

// A run's exit code, stdout and stderr, for a failure message.
std::string Describe(const VowRun& run);

// This process's stderr (fd 2) sent into a memfd from construction until Finish(), which
// puts fd 2 back and returns what was written there (the broker's stderr lines). ok()
// says whether the redirection is in place.
class StderrCapture {
 public:
  StderrCapture();
  ~StderrCapture();
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  bool ok() const { return saved_ >= 0; }
  std::string Finish();

 private:
  int mem_ = -1;
  int saved_ = -1;
};

}  // namespace vow::testing

#endif  // VOW_TESTS_TEST_UTIL_H_
