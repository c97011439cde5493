// The flags of `vow run` / `vow learn` and their meaning as a Policy. Runs in the broker's
// front end (trusted: the flags come from the user who starts vow, not from a worker).
//
//   -p, --promises PROMISES   the promise set, exactly (stdio is not implied), e.g.
//                             -p 'stdio rpath'; unknown names are errors with a suggestion
//   --execpromises PROMISES   what an image the program execs gets (OpenBSD's
//                             execpromises): a subset of -p, which must hold exec;
//                             enforced by the exec tracer (broker/exec_tracer.h)
//   -v, --unveil [PERM:]PATH  a filesystem rule; PERM is made of r w x c (default r), as
//                             Cosmopolitan's pledge -v; PATH is made absolute against the
//                             current directory and normalized (. and .. removed); a
//                             PATH whose own text starts with lower-case letters and a
//                             ':' must be written with its PERM (r:a:b)
//   --policy FILE             a policy file; -p must agree with its promises, -v rules are
//                             added to its unveil rules (the same path twice must agree)
//   --audit                   the audit log on stderr
//   --explain                 print layers, promises, rules and the libc set; run nothing
//   -h, --help                usage
// Every option takes `--name value` and `--name=value`. Option parsing stops at `--` or
// at the first word that is not an option (the program).
#ifndef VOW_BROKER_RUN_FLAGS_H_
#define VOW_BROKER_RUN_FLAGS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "policies/policy.h"

namespace vow {

struct RunFlags {
  std::optional<std::string> promises;  // -p, as written
  std::optional<std::string> exec_promises;  // --execpromises, as written
  std::vector<std::string> unveils;     // each -v, as written
  std::string policy_file;              // --policy; "" if none
  bool audit = false;
  bool explain = false;
  // The program is a vow worker (it calls LockDownExecWorker() and talks to the broker
  // on fd 3): keep the channel. Otherwise fd 3 is closed before execve.
  bool vow_worker = false;
  bool help = false;
  std::vector<std::string> argv;  // PROGRAM ARGS...
};

// `args` are the words after the subcommand. InvalidArgument naming the option on a
// usage error ("-p needs a value", "unknown option --polcy; did you mean --policy?").
// A missing program is not an error here (--help and --explain need none).
[[nodiscard]] absl::StatusOr<RunFlags> ParseRunFlags(const std::vector<std::string>& args);

// `-v [PERM:]PATH` as a PathRule, relative PATHs against `cwd` (absolute).
[[nodiscard]] absl::StatusOr<PathRule> ParseUnveilFlag(const std::string& value,
                                                       const std::string& cwd);

// `-p` words as a PromiseSet (at least one; each once).
[[nodiscard]] absl::StatusOr<PromiseSet> ParsePromisesFlag(const std::string& value);

// The policy the flags describe: the file's (or Policy{}), with -p and -v applied as the
// file comment says, then ValidatePolicy(). Does not touch the filesystem except to read
// --policy (rule paths are checked for existence by Broker::Prepare).
[[nodiscard]] absl::StatusOr<Policy> PolicyFromRunFlags(const RunFlags& flags,
                                                        const std::string& cwd);

// PROGRAM looked up as execvp(3) does: a name with a '/' as is (against `cwd`), else each
// directory of `path_env` (nullptr: "/usr/local/bin:/usr/bin:/bin"; an empty entry is
// `cwd`). Returns an absolute path to an executable regular file; NotFound if none exists
// (a shell's 127), PermissionDenied if one exists but cannot be executed (126).
[[nodiscard]] absl::StatusOr<std::string> FindProgram(const std::string& program,
                                                      const char* path_env,
                                                      const std::string& cwd);

// "/a/./b/../c" -> "/a/c"; relative paths joined to `cwd` first. "" if it stays relative.
std::string AbsoluteNormalized(const std::string& path, const std::string& cwd);

}  // namespace vow

#endif  // VOW_BROKER_RUN_FLAGS_H_
