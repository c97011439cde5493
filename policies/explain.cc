#include "policies/explain.h"

#include <seccomp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "policies/promise_table.h"

namespace vow {
namespace {

std::string Line(absl::string_view name, std::optional<int> nr, absl::string_view what) {
  return absl::StrFormat("  %-24s %5s  %s\n", name,
                         nr.has_value() ? absl::StrCat(*nr) : std::string("-"), what);
}

}  // namespace

absl::StatusOr<std::string> ExplainPromises(PromiseSet promises, Arch arch,
                                            ExplainDetail detail) {
  std::string out = absl::StrCat("# promises: ", promises.ToString(), "\n# arch: ",
                                 ArchName(arch), "\n");
  if (detail == ExplainDetail::kWithBpf) {
    const scmp_version* v = seccomp_version();
    absl::StrAppend(&out, "# libseccomp: ", v->major, ".", v->minor, ".", v->micro, "\n");
  }
  for (int i = 0; i < kPromiseCount; ++i) {
    const Promise p = static_cast<Promise>(i);
    if (!promises.contains(p)) continue;
    const PromiseEntry& entry = PromiseTableEntry(p);
    absl::StrAppend(&out, "\n[", PromiseName(p), "] ", entry.summary, "\n");
    if (entry.rules.empty()) absl::StrAppend(&out, "  (no syscalls)\n");
    for (const SyscallRule& rule : entry.rules) {
      const std::optional<int> nr = SyscallNumber(arch, rule.syscall);
      absl::StrAppend(&out, Line(rule.syscall, nr,
                                 nr.has_value() ? rule.ConditionText()
                                                : absl::StrCat("(not on ", ArchName(arch),
                                                               ")")));
    }
  }
  absl::StrAppend(&out,
                  "\n[ENOSYS] probed by libc: ERRNO(ENOSYS) under every promise set and "
                  "penalty\n");
  for (const EnosysEntry& e : EnosysSyscalls()) {
    const std::optional<int> nr = SyscallNumber(arch, e.syscall);
    bool held = false;
    for (int i = 0; i < kPromiseCount; ++i) {
      if (!promises.contains(static_cast<Promise>(i))) continue;
      for (const SyscallRule& rule : PromiseTableEntry(static_cast<Promise>(i)).rules) {
        held |= rule.syscall == e.syscall;
      }
    }
    if (held) {
      absl::StrAppend(&out, Line(e.syscall, nr, "(not here: a held promise allows it)"));
      continue;
    }
    absl::StrAppend(&out, Line(e.syscall, nr,
                               nr.has_value() ? e.reason
                                              : absl::StrCat("(unknown to libseccomp on ",
                                                             ArchName(arch),
                                                             ": ENOSYS as unknown)")));
  }
  absl::StrAppend(&out,
                  "\n[EOPNOTSUPP] ioctls answered EOPNOTSUPP under every promise set "
                  "(reflinks and dedupes; cp copies by read/write instead)\n");
  for (const UnsupportedIoctl& u : UnsupportedIoctls()) {
    absl::StrAppend(&out, Line("ioctl", SyscallNumber(arch, "ioctl"),
                               absl::StrCat("cmd == ", u.name)));
  }
  absl::StrAppend(&out,
                  "\n[unknown numbers] any number libseccomp cannot name on this arch: "
                  "ERRNO(ENOSYS)\n");
  absl::StrAppend(&out, "[foreign ABIs] any other audit arch",
                  arch == Arch::kX86_64 ? " (i386 int 0x80) and x32 numbers" : "",
                  ": KILL_PROCESS\n");
  absl::StrAppend(&out,
                  "[everything else] the penalty: USER_NOTIF (kill, errno, log) or TRAP\n");
  if (detail == ExplainDetail::kWithBpf) {
    auto program = CompilePromises(promises, Penalty::kKill, arch);
    if (!program.ok()) return program.status();
    absl::StrAppend(&out, "\nBPF: ", program->code.size(), " instructions\n");
  }
  return out;
}

}  // namespace vow
