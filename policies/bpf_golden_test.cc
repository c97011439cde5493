// Golden files of the *compiled* seccomp programs (not of the promise table): each file
// holds the disassembly (bpf_disasm.h) of CompilePromises(set, penalty, arch) for x86-64
// and aarch64, so any change in the compiler, the promise table or libseccomp's output
// shows up as a diff of instructions, on both architectures.
//
// Files: policies/testdata/bpf_<arch>_<promises joined by '_'>_<penalty>.txt.
// Regenerate (then review the diff):
//   VOW_UPDATE_GOLDEN=$PWD/policies/testdata bazel run //policies:bpf_golden_test
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include <linux/seccomp.h>

#include "policies/bpf_disasm.h"
#include "policies/promise_compiler.h"

namespace vow {
namespace {

const char* PenaltyName(Penalty p) {
  switch (p) {
    case Penalty::kKill: return "kill";
    case Penalty::kErrno: return "errno";
    case Penalty::kTrap: return "trap";
    case Penalty::kLog: return "log";
  }
  return "?";
}

TEST(BpfGoldenTest, CompiledProgramsMatchTheirGoldenDisassembly) {
  struct Case {
    PromiseSet set;
    Penalty penalty;
  };
  const Case cases[] = {
      {{Promise::kStdio}, Penalty::kKill},
      {{Promise::kStdio}, Penalty::kTrap},
      {{Promise::kStdio, Promise::kRpath, Promise::kThread}, Penalty::kKill},
      {{Promise::kStdio, Promise::kInet, Promise::kUnix, Promise::kDns, Promise::kTty,
        Promise::kProc},
       Penalty::kKill},
  };
  const char* update = std::getenv("VOW_UPDATE_GOLDEN");
  for (Arch arch : {Arch::kX86_64, Arch::kAarch64}) {
    for (const Case& c : cases) {
      absl::StatusOr<BpfProgram> program = CompilePromises(c.set, c.penalty, arch);
      ASSERT_TRUE(program.ok()) << program.status();
      const std::string text = DisassembleBpf(program->code);
      const std::string name =
          absl::StrCat("bpf_", ArchName(arch), "_",
                       absl::StrReplaceAll(c.set.ToString(), {{" ", "_"}}), "_",
                       PenaltyName(c.penalty), ".txt");
      if (update != nullptr) {
        std::ofstream(std::string(update) + "/" + name) << text;
        continue;
      }
      std::ifstream in("policies/testdata/" + name);
      ASSERT_TRUE(in.good()) << "missing golden file " << name
                             << " (regenerate: see this file's comment)";
      std::stringstream want;
      want << in.rdbuf();
      EXPECT_EQ(text, want.str()) << name << " differs; see this file's comment";
    }
  }
}

TEST(BpfDisasmTest, NamesFieldsTargetsAndActions) {
  const sock_filter program[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4),                        // arch
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xc000003e, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),                        // nr
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16 + 8 + 4),               // args[1] high word
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 38),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  EXPECT_EQ(DisassembleBpf(program),
            "0000: ld [arch]\n"
            "0001: jeq #0xc000003e -> 0002 : 0005\n"
            "0002: ld [nr]\n"
            "0003: ld [args[1].hi]\n"
            "0004: ret ERRNO(38)\n"
            "0005: ret KILL_PROCESS\n");
}

}  // namespace
}  // namespace vow
