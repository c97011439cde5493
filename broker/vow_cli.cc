// `vow`: the command-line front end of the framework. Runs in the broker.
//
//   vow run [--policy FILE] [--audit] -- PROGRAM [ARGS...]
//       Runs PROGRAM (a vow worker: its main calls vow::LockDownExecWorker() first) under
//       the policy; stdio is passed through; prints how it ended; exits with its code.
//   vow learn [--policy FILE] -- PROGRAM [ARGS...]
//       Runs PROGRAM under the policy with penalty `log` (a refused syscall is recorded
//       and allowed, unless no promise could ever allow it), then prints the smallest
//       promise set that covers it.
//   vow check POLICY_FILE
//       Parses and validates a policy file; prints it back in canonical form.
//   vow explain [--arch=x86_64|aarch64] PROMISE...
//       Every syscall the promises allow, with argument conditions, and the BPF size.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker/broker.h"
#include "broker/learn.h"
#include "broker/policy_check.h"
#include "policies/explain.h"
#include "policies/policy_file.h"
#include "policies/promise_compiler.h"

namespace vow {
namespace {

int Usage() {
  fprintf(stderr,
          "usage: vow run [--policy FILE] [--audit] -- PROGRAM [ARGS...]\n"
          "       vow learn [--policy FILE] -- PROGRAM [ARGS...]\n"
          "       vow check POLICY_FILE\n"
          "       vow explain [--arch=x86_64|aarch64] PROMISE...\n");
  return 2;
}

struct RunArgs {
  std::string policy_file;
  bool audit = false;
  std::vector<std::string> argv;
};

bool ParseRunArgs(int argc, char** argv, RunArgs* out) {
  int i = 2;
  for (; i < argc; ++i) {
    if (strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    } else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc) {
      out->policy_file = argv[++i];
    } else if (strcmp(argv[i], "--audit") == 0) {
      out->audit = true;
    } else {
      fprintf(stderr, "vow: unknown option %s\n", argv[i]);
      return false;
    }
  }
  for (; i < argc; ++i) out->argv.push_back(argv[i]);
  if (out->argv.empty()) {
    fprintf(stderr, "vow: no program given after --\n");
    return false;
  }
  return true;
}

absl::StatusOr<Policy> PolicyFrom(const std::string& file) {
  if (file.empty()) return Policy{};
  absl::StatusOr<Policy> policy = LoadPolicyFile(file);
  if (!policy.ok()) return policy.status();
  absl::Status valid = ValidatePolicy(*policy);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", valid.message()));
  }
  return policy;
}

absl::StatusOr<WorkerResult> RunProgram(const Policy& policy, const RunArgs& args) {
  BrokerOptions options;
  options.audit_fd = args.audit ? STDERR_FILENO : -1;
  absl::StatusOr<std::unique_ptr<Broker>> broker = Broker::Create(options);
  if (!broker.ok()) return broker.status();
  auto prepared = (*broker)->Prepare(policy);
  if (!prepared.ok()) return prepared.status();
  SpawnOptions spawn;
  spawn.stdin_fd = STDIN_FILENO;
  spawn.stdout_fd = STDOUT_FILENO;
  spawn.stderr_fd = STDERR_FILENO;
  spawn.name = args.argv[0];
  auto id = (*broker)->SpawnExec(*prepared, args.argv, spawn);
  if (!id.ok()) return id.status();
  return (*broker)->Wait(*id);
}

// Prints `status` as one "vow: ..." line and returns `code`.
int Fail(const absl::Status& status, int code) {
  fprintf(stderr, "vow: %s\n", std::string(status.message()).c_str());
  return code;
}

int Run(int argc, char** argv) {
  RunArgs args;
  if (!ParseRunArgs(argc, argv, &args)) return Usage();
  absl::StatusOr<Policy> policy = PolicyFrom(args.policy_file);
  if (!policy.ok()) return Fail(policy.status(), 2);
  absl::StatusOr<WorkerResult> result = RunProgram(*policy, args);
  if (!result.ok()) return Fail(result.status(), 1);
  if (result->kind == WorkerResult::Kind::kExited && result->violations.empty() &&
      (result->exit_code == 0 || result->refusals.empty())) {
    return result->exit_code;
  }
  fprintf(stderr, "vow: %s %s\n", args.argv[0].c_str(), result->ToString().c_str());
  for (const Violation& v : result->violations) {
    fprintf(stderr, "vow:   %s\n", v.ToString().c_str());
  }
  for (const Refusal& r : result->refusals) {
    fprintf(stderr, "vow:   %s\n", r.ToString().c_str());
  }
  if (result->kind == WorkerResult::Kind::kExited) return result->exit_code;
  if (result->kind == WorkerResult::Kind::kSignaled) return 128 + result->signal;
  return 125;
}

int Learn(int argc, char** argv) {
  RunArgs args;
  if (!ParseRunArgs(argc, argv, &args)) return Usage();
  absl::StatusOr<Policy> policy = PolicyFrom(args.policy_file);
  if (!policy.ok()) return Fail(policy.status(), 2);
  PromiseSet held = policy->promises;
  policy->penalty = Penalty::kLog;
  fprintf(stderr, "vow: learning mode: refused syscalls are recorded and ALLOWED "
                  "(except those no promise allows)\n");
  absl::StatusOr<WorkerResult> result = RunProgram(*policy, args);
  if (!result.ok()) return Fail(result.status(), 1);
  fprintf(stderr, "vow: %s %s\n", args.argv[0].c_str(), result->ToString().c_str());
  absl::StatusOr<LearnedPromises> learned = LearnPromises(*result, held);
  if (!learned.ok()) return Fail(learned.status(), 1);
  fputs(learned->report.c_str(), stderr);
  printf("promises %s\n", learned->promises.ToString().c_str());
  for (const PathRule& r : learned->rules) {
    printf("unveil %s %s%s%s\n", r.path.c_str(), r.read ? "r" : "", r.write ? "w" : "",
           r.create ? "c" : "");
  }
  return 0;
}

int Check(int argc, char** argv) {
  if (argc != 3) return Usage();
  absl::StatusOr<Policy> policy = PolicyFrom(argv[2]);
  if (!policy.ok()) {
    fprintf(stderr, "%s\n", std::string(policy.status().message()).c_str());
    return 1;
  }
  fputs(FormatPolicy(*policy).c_str(), stdout);
  return 0;
}

int Explain(int argc, char** argv) {
  Arch arch = NativeArch();
  PromiseSet promises;
  for (int i = 2; i < argc; ++i) {
    if (strncmp(argv[i], "--arch=", 7) == 0) {
      std::optional<Arch> a = ArchFromName(argv[i] + 7);
      if (!a.has_value()) {
        fprintf(stderr, "vow: unknown architecture %s (x86_64, aarch64)\n", argv[i] + 7);
        return 2;
      }
      arch = *a;
      continue;
    }
    std::optional<Promise> p = PromiseFromName(argv[i]);
    if (!p.has_value()) {
      std::optional<std::string> near = NearestPromiseName(argv[i]);
      fprintf(stderr, "vow: unknown promise \"%s\"%s%s%s\n", argv[i],
              near.has_value() ? "; did you mean \"" : "", near.has_value() ? near->c_str() : "",
              near.has_value() ? "\"?" : "");
      return 2;
    }
    promises.insert(*p);
  }
  absl::StatusOr<std::string> text = ExplainPromises(promises, arch, ExplainDetail::kWithBpf);
  if (!text.ok()) return Fail(text.status(), 1);
  fputs(text->c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace vow

int main(int argc, char** argv) {
  if (argc < 2) return vow::Usage();
  std::string command = argv[1];
  if (command == "run") return vow::Run(argc, argv);
  if (command == "learn") return vow::Learn(argc, argv);
  if (command == "check") return vow::Check(argc, argv);
  if (command == "explain") return vow::Explain(argc, argv);
  return vow::Usage();
}
