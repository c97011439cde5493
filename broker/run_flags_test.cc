#include "broker/run_flags.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

RunFlags Flags(const std::vector<std::string>& args) {
  absl::StatusOr<RunFlags> f = ParseRunFlags(args);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : RunFlags{};
}

std::string FlagError(const std::vector<std::string>& args) {
  absl::StatusOr<RunFlags> f = ParseRunFlags(args);
  if (f.ok()) return "<parsed>";
  return std::string(f.status().message());
}

TEST(ParseRunFlagsTest, EveryForm) {
  RunFlags f = Flags({"-p", "stdio rpath", "-v", "r:/etc", "--unveil=rwc:/tmp/out", "--policy",
                      "x.policy", "--audit", "--", "ls", "-l", "--", "-p"});
  EXPECT_EQ(f.promises, "stdio rpath");
  EXPECT_THAT(f.unveils, ElementsAre("r:/etc", "rwc:/tmp/out"));
  EXPECT_EQ(f.policy_file, "x.policy");
  EXPECT_TRUE(f.audit);
  EXPECT_FALSE(f.explain);
  EXPECT_THAT(f.argv, ElementsAre("ls", "-l", "--", "-p"));
  f = Flags({"--promises=stdio", "--policy=a=b", "--explain", "-pstdio", "-v/x", "prog", "-v"});
  EXPECT_EQ(f.promises, "stdio");
  EXPECT_EQ(f.policy_file, "a=b");
  EXPECT_TRUE(f.explain);
  EXPECT_THAT(f.unveils, ElementsAre("/x"));
  // Options end at the program: its own -v is its argument.
  EXPECT_THAT(f.argv, ElementsAre("prog", "-v"));
  EXPECT_TRUE(Flags({"--help"}).help);
  EXPECT_TRUE(Flags({"-h"}).help);
  EXPECT_TRUE(Flags({}).argv.empty());
  EXPECT_THAT(Flags({"-", "x"}).argv, ElementsAre("-", "x"));  // "-" is a program name
}

TEST(ParseRunFlagsTest, Errors) {
  EXPECT_EQ(FlagError({"-p"}), "-p needs a value");
  EXPECT_EQ(FlagError({"--policy"}), "--policy needs a value");
  EXPECT_EQ(FlagError({"--policy="}), "--policy needs a file name");
  EXPECT_EQ(FlagError({"--policy", "a", "--policy", "b"}), "--policy is given twice");
  EXPECT_EQ(FlagError({"--polcy", "a"}), "unknown option --polcy; did you mean --policy?");
  EXPECT_EQ(FlagError({"--frobnicate"}), "unknown option --frobnicate");
  EXPECT_EQ(FlagError({"-x"}), "unknown option -x");
  EXPECT_EQ(FlagError({"-hx"}), "unknown option -hx");
  EXPECT_EQ(FlagError({"--audit=yes"}), "--audit takes no value");
}

TEST(ParseUnveilFlagTest, PermissionsAndPaths) {
  absl::StatusOr<PathRule> r = ParseUnveilFlag("/etc", "/home/u");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/etc");
  EXPECT_TRUE(r->read && !r->write && !r->exec && !r->create);  // default r
  r = ParseUnveilFlag("rwc:/tmp/out/", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/tmp/out");
  EXPECT_TRUE(r->read && r->write && !r->exec && r->create);
  r = ParseUnveilFlag("x:bin/../lib/./x", "/home/u");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/home/u/lib/x");
  EXPECT_TRUE(!r->read && r->exec);
  r = ParseUnveilFlag("data", "/srv");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/srv/data");
  r = ParseUnveilFlag("/a:b", "/");  // a colon after a slash is part of the path
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/a:b");
  EXPECT_TRUE(r->read);
  r = ParseUnveilFlag("r:a:b", "/x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/x/a:b");
  r = ParseUnveilFlag("/../..", "/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->path, "/");

  EXPECT_EQ(ParseUnveilFlag("rz:/tmp", "/").status().message(),
            "-v rz:/tmp: unknown permission 'z'; use r, w, x and c");
  EXPECT_EQ(ParseUnveilFlag("rr:/tmp", "/").status().message(),
            "-v rr:/tmp: permission 'r' is given twice");
  EXPECT_EQ(ParseUnveilFlag("rw:", "/").status().message(), "-v rw:: no path");
  EXPECT_EQ(ParseUnveilFlag("", "/").status().message(), "-v : no path");
  EXPECT_THAT(std::string(ParseUnveilFlag("tmp", "").status().message()),
              HasSubstr("cannot make the path absolute"));
}

TEST(ParsePromisesFlagTest, ExactSetAndTypos) {
  absl::StatusOr<PromiseSet> p = ParsePromisesFlag("stdio rpath");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p == PromiseSet{Promise::kStdio, Promise::kRpath}));
  p = ParsePromisesFlag("rpath");  // stdio is not implied
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p == PromiseSet{Promise::kRpath}));
  EXPECT_EQ(ParsePromisesFlag("stdio rpat").status().message(),
            "-p: unknown promise \"rpat\"; did you mean \"rpath\"?");
  EXPECT_EQ(ParsePromisesFlag("xyzzy").status().message(), "-p: unknown promise \"xyzzy\"");
  EXPECT_EQ(ParsePromisesFlag("stdio stdio").status().message(),
            "-p: promise \"stdio\" is given twice");
  EXPECT_EQ(ParsePromisesFlag("  ").status().message(),
            "-p: no promise given (e.g. -p 'stdio rpath')");
}

class PolicyFromRunFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp");
  }
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(PolicyFromRunFlagsTest, FlagsAlone) {
  RunFlags f;
  absl::StatusOr<Policy> p = PolicyFromRunFlags(f, "/");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->promises == PromiseSet{Promise::kStdio});
  EXPECT_TRUE(p->paths.empty());
  f.promises = "stdio rpath";
  f.unveils = {"r:/etc", "rwc:out", "r:/etc/"};  // the third is the first again
  p = PolicyFromRunFlags(f, "/tmp");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((p->promises == PromiseSet{Promise::kStdio, Promise::kRpath}));
  ASSERT_EQ(p->paths.size(), 2u);
  EXPECT_EQ(p->paths[0].path, "/etc");
  EXPECT_EQ(p->paths[1].path, "/tmp/out");
  EXPECT_TRUE(p->paths[1].create);
  // Validation runs: -p without stdio is refused as the broker would.
  f.promises = "rpath";
  EXPECT_EQ(PolicyFromRunFlags(f, "/").status().message(),
            "the flags: promises: \"rpath\" does not include stdio");
  f.promises = "stdio";
  f.unveils = {"r:/etc", "w:/etc"};
  EXPECT_EQ(PolicyFromRunFlags(f, "/").status().message(),
            "-v w:/etc conflicts with the rule \"/etc r\" of an earlier -v for the same path");
}

TEST_F(PolicyFromRunFlagsTest, ExecPromises) {
  RunFlags f = Flags({"-p", "stdio rpath exec proc", "--execpromises=stdio", "sh"});
  EXPECT_EQ(f.exec_promises, "stdio");
  absl::StatusOr<Policy> p = PolicyFromRunFlags(f, "/");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->exec_promises.has_value());
  EXPECT_TRUE(*p->exec_promises == PromiseSet{Promise::kStdio});
  EXPECT_EQ(FlagError({"--execpromises", "stdio", "--execpromises", "stdio"}),
            "--execpromises is given twice");
  f.exec_promises = "stdio rpat";
  EXPECT_EQ(PolicyFromRunFlags(f, "/").status().message(),
            "--execpromises: unknown promise \"rpat\"; did you mean \"rpath\"?");
  // Validated as the broker does: a subset of the promises, which must hold exec.
  f.exec_promises = "stdio inet";
  EXPECT_THAT(std::string(PolicyFromRunFlags(f, "/").status().message()),
              HasSubstr("which the promises do not hold"));
  f.promises = "stdio rpath";
  f.exec_promises = "stdio";
  EXPECT_THAT(std::string(PolicyFromRunFlags(f, "/").status().message()),
              HasSubstr("need the exec promise"));
  f = RunFlags{};
  f.policy_file = WriteFile("e.policy", "promises stdio exec\nexecpromises stdio exec\n");
  f.exec_promises = "stdio";
  EXPECT_EQ(PolicyFromRunFlags(f, "/").status().message(),
            "--execpromises \"stdio\" conflicts with " + f.policy_file +
                ", whose execpromises are \"stdio exec\"; set them in one place");
}

TEST_F(PolicyFromRunFlagsTest, WithAPolicyFile) {
  RunFlags f;
  f.policy_file = WriteFile("a.policy", "promises stdio rpath\nunveil /etc r\nlayers -netns\n");
  f.unveils = {"rw:/tmp", "r:/etc"};
  absl::StatusOr<Policy> p = PolicyFromRunFlags(f, "/");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((p->promises == PromiseSet{Promise::kStdio, Promise::kRpath}));
  ASSERT_EQ(p->paths.size(), 2u);
  EXPECT_EQ(p->paths[1].path, "/tmp");
  EXPECT_EQ(p->layers[Layer::kNetns], LayerMode::kOff);  // the file's other settings stay
  f.promises = "stdio rpath";  // agrees: fine
  EXPECT_TRUE(PolicyFromRunFlags(f, "/").ok());
  f.promises = "stdio";
  EXPECT_EQ(PolicyFromRunFlags(f, "/").status().message(),
            "-p \"stdio\" conflicts with " + f.policy_file +
                ", whose promises are \"stdio rpath\" (without a promises line a file has "
                "\"stdio\"); set them in one place");
  f.promises.reset();
  f.unveils = {"w:/etc"};
  EXPECT_EQ(PolicyFromRunFlags(f, "/").status().message(),
            "-v w:/etc conflicts with the rule \"/etc r\" of " + f.policy_file +
                " for the same path");
  f.unveils.clear();
  f.policy_file = WriteFile("bad.policy", "promises stdio rpat\n");
  EXPECT_EQ(PolicyFromRunFlags(f, "/").status().message(),
            f.policy_file + ":1:16: unknown promise \"rpat\"; did you mean \"rpath\"?");
  f.policy_file = dir_ + "/missing.policy";
  EXPECT_FALSE(PolicyFromRunFlags(f, "/").ok());
}

TEST(AbsoluteNormalizedTest, Cases) {
  EXPECT_EQ(AbsoluteNormalized("/a/./b/../c//", "/x"), "/a/c");
  EXPECT_EQ(AbsoluteNormalized("b", "/x/y"), "/x/y/b");
  EXPECT_EQ(AbsoluteNormalized("..", "/"), "/");
  EXPECT_EQ(AbsoluteNormalized("b", ""), "");
}

TEST_F(PolicyFromRunFlagsTest, FindProgram) {
  absl::StatusOr<std::string> p = FindProgram("true", "/nonexistent:/bin", "/");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, "/bin/true");
  p = FindProgram("/bin/true", "", "/");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "/bin/true");
  p = FindProgram("bin/true", nullptr, "/");  // with a slash: against cwd, no PATH search
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "/bin/true");
  EXPECT_EQ(FindProgram("true", "/nonexistent", "/").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FindProgram("vow-no-such-program", nullptr, "/").status().message(),
            "vow-no-such-program: not found");
  // Present but not executable: 126, even when a later PATH entry has nothing.
  const std::string data = WriteFile("notexec", "#!/bin/sh\n");
  chmod(data.c_str(), 0644);
  p = FindProgram("notexec", (dir_ + ":/nonexistent").c_str(), "/");
  // (root too: execve needs at least one x bit.)
  EXPECT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied) << p.status();
  EXPECT_EQ(FindProgram(dir_, nullptr, "/").status().code(),  // a directory
            absl::StatusCode::kPermissionDenied);
  // An empty PATH entry is the current directory.
  const std::string exe = WriteFile("myexe", "#!/bin/sh\n");
  chmod(exe.c_str(), 0755);
  p = FindProgram("myexe", "/nonexistent:", dir_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, exe);
}

}  // namespace
}  // namespace vow
