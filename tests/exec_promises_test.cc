// execpromises under `vow run` (issue 9): an image the program execs gets the narrower
// promises, in the kernel (the filter the exec tracer injects, broker/exec_tracer.h)
// and at the broker (its path calls are decided with the execpromises); the program
// itself keeps its own. And the seccomp rule this needs in stdio: adding a filter with
// flags 0 only, never a listener of the program's own.
// Runs in the test (broker-launching) process; `vow` itself is the broker.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace vow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Describe;
using testing::ReadFile;
using testing::Runfile;
using testing::RunVow;
using testing::VowRun;


class ExecPromisesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(Runfile("broker/vow").c_str(), X_OK), 0);
    file_ = dir_.WriteFile("fruit.txt", "pear\n");
  }
  std::vector<std::string> Run(const std::vector<std::string>& extra,
                               const std::string& script) {
    std::vector<std::string> args = {"run", "-p", "stdio rpath exec proc"};
    args.insert(args.end(), extra.begin(), extra.end());
    for (const std::string& a : {std::string("-v"), "r:" + dir_.path(), std::string("-v"),
                                 std::string("rx:/bin/cat"), std::string("--"),
                                 std::string("/bin/sh"), std::string("-c"), script}) {
      args.push_back(a);
    }
    return args;
  }
  testing::TempDir dir_;
  std::string file_;
};

// sh (the program) reads the file itself; the cat it forks and execs holds only stdio,
// so the broker refuses its open, and says so.
TEST_F(ExecPromisesTest, ForkedChildThatExecsGetsTheExecpromises) {
  const std::string script =
      absl::StrCat("read l < ", file_, "; echo sh:$l; /bin/cat ", file_, "; echo cat=$?; exit 3");
  // (vow names the refusals when the program fails: exit 3.)
  VowRun narrow = RunVow(Run({"--execpromises", "stdio"}, script));
  EXPECT_EQ(narrow.code(), 3) << Describe(narrow);
  EXPECT_EQ(narrow.out, "sh:pear\ncat=1\n") << Describe(narrow);
  EXPECT_THAT(narrow.err, HasSubstr(absl::StrCat("openat(\"", file_,
                                                 "\", O_RDONLY) refused (EACCES); "
                                                 "promise rpath would allow it")));
  // The same run without execpromises: cat keeps the program's promises and reads it.
  VowRun wide = RunVow(Run({}, script));
  EXPECT_EQ(wide.code(), 3) << Describe(wide);
  EXPECT_EQ(wide.out, "sh:pear\npear\ncat=0\n") << Describe(wide);
  // execpromises equal to the promises: nothing is narrowed.
  VowRun same = RunVow(Run({"--execpromises", "stdio rpath exec proc"}, script));
  EXPECT_EQ(same.out, "sh:pear\npear\ncat=0\n") << Describe(same);
}

// The program's own process execs (no fork): the new image is narrowed too.
TEST_F(ExecPromisesTest, TheProgramItselfExecs) {
  VowRun r = RunVow(Run({"--execpromises", "stdio"}, absl::StrCat("exec /bin/cat ", file_)));
  EXPECT_EQ(r.code(), 1) << Describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("openat(\"", file_, "\", O_RDONLY) refused (EACCES)")));
}

// Narrowed in the kernel, not only at the broker: an exec'd shell without `proc` cannot
// fork (its pipeline is killed with SIGSYS), while the program's own shell can.
TEST_F(ExecPromisesTest, TheKernelFilterIsNarrowed) {
  const std::string script =
      "/bin/sh -c 'echo a | /bin/cat'; echo inner=$?; echo b | /bin/cat";
  std::vector<std::string> extra = {"--execpromises", "stdio exec", "-v", "rx:/bin/sh", "-v",
                                    "rx:/usr/bin/dash"};
  VowRun r = RunVow(Run(extra, script));
  EXPECT_EQ(r.code(), 0) << Describe(r);
  EXPECT_EQ(r.out, "inner=159\nb\n") << Describe(r);  // 128 + SIGSYS
  extra[1] = "stdio exec proc";
  VowRun with_proc = RunVow(Run(extra, script));
  EXPECT_EQ(with_proc.out, "a\ninner=0\nb\n") << Describe(with_proc);
}

// A fork of a narrowed image is narrow too, at the broker (its opens) as in the kernel:
// the exec'd shell's subshell (a fork, no exec) is refused the file the program reads.
TEST_F(ExecPromisesTest, AForkOfANarrowedImageStaysNarrow) {
  const std::string script = absl::StrCat(
      "read l < ", file_, "; echo sh:$l; /bin/sh -c '(read m < ", file_,
      "; echo sub:$m)'; exit 3");
  std::vector<std::string> extra = {"--execpromises", "stdio exec proc", "-v", "rx:/bin/sh",
                                    "-v", "rx:/usr/bin/dash"};
  VowRun r = RunVow(Run(extra, script));
  EXPECT_EQ(r.code(), 3) << Describe(r);
  EXPECT_EQ(r.out, "sh:pear\nsub:\n") << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("openat(\"", file_, "\", O_RDONLY) refused (EACCES); "
                                            "promise rpath would allow it")));
  // With rpath in the execpromises the subshell reads it.
  extra[1] = "stdio rpath exec proc";
  VowRun wide = RunVow(Run(extra, script));
  EXPECT_EQ(wide.out, "sh:pear\nsub:pear\n") << Describe(wide);
}

// A filter with flags 0 narrows the program and is allowed; a listener of its own (which
// would answer its own path calls instead of the broker) and TSYNC are refused.
TEST_F(ExecPromisesTest, SeccompFlagsMustBeZero) {
  const std::string program = Runfile("tests/seccomp_program");
  VowRun listener = RunVow({"run", "-p", "stdio", "--", program, "listener"});
  EXPECT_EQ(listener.code(), 128 + SIGKILL) << Describe(listener);
  EXPECT_THAT(listener.out, Not(HasSubstr("rc=")));
  EXPECT_THAT(listener.err, HasSubstr("seccomp"));
  VowRun tsync = RunVow({"run", "-p", "stdio", "--", program, "tsync"});
  EXPECT_EQ(tsync.code(), 128 + SIGKILL) << Describe(tsync);
  EXPECT_THAT(tsync.err, HasSubstr("seccomp"));
  VowRun narrow = RunVow({"run", "-p", "stdio", "--", program, "narrow"});
  EXPECT_EQ(narrow.code(), 0) << Describe(narrow);
  EXPECT_EQ(narrow.out, "narrow: rc=0 getppid=-1 errno=Operation not permitted\n");
}

// Fail closed: when the tracer cannot add the execpromises filter (the program filled the
// kernel's per-process filter budget before exec), the new image is killed before its
// first instruction instead of running with the wider promises.
TEST_F(ExecPromisesTest, AnImageThatCannotBeNarrowedIsKilled) {
  const std::string program = Runfile("tests/seccomp_program");
  VowRun r = RunVow({"run", "-p", "stdio rpath exec", "--execpromises", "stdio", "-v",
                     "r:" + dir_.path(), "-v", "rx:/bin/cat", "--", program, "fill",
                     "/bin/cat", file_});
  EXPECT_EQ(r.code(), 128 + SIGKILL) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("fill: full after"));
  EXPECT_THAT(r.out, Not(HasSubstr("pear")));
  // Without execpromises the same program runs cat, which reads the file.
  VowRun wide = RunVow({"run", "-p", "stdio rpath exec", "-v", "r:" + dir_.path(), "-v",
                        "rx:/bin/cat", "--", program, "fill", "/bin/cat", file_});
  EXPECT_EQ(wide.code(), 0) << Describe(wide);
  EXPECT_THAT(wide.out, HasSubstr("pear"));
}

// A program that makes seccomp "succeed" without running it (ERRNO(0)) before it execs:
// the injected call returns 0 but adds nothing; the tracer reads the filter back and
// kills the image. Without execpromises the exec'd shell (holding proc) can fork.
TEST_F(ExecPromisesTest, AFakedSeccompSuccessIsCaught) {
  const std::string program = Runfile("tests/seccomp_program");
  std::vector<std::string> args = {"run", "-p", "stdio exec proc", "--execpromises",
                                   "stdio exec", "-v", "rx:/bin/sh", "-v", "rx:/usr/bin/dash",
                                   "-v", "rx:/bin/cat", "--", program, "errno0", "/bin/sh",
                                   "-c", "echo a | /bin/cat"};
  VowRun r = RunVow(args);
  EXPECT_EQ(r.code(), 128 + SIGKILL) << Describe(r);
  EXPECT_EQ(r.out, "errno0: rc=0\n") << Describe(r);
  args.erase(args.begin() + 3, args.begin() + 5);  // no --execpromises
  VowRun wide = RunVow(args);
  EXPECT_EQ(wide.code(), 0) << Describe(wide);
  EXPECT_EQ(wide.out, "errno0: rc=0\na\n") << Describe(wide);
}

}  // namespace
}  // namespace vow
