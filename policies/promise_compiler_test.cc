// Compiler tests without installing anything: golden listings of what promise sets
// resolve to on x86-64 and aarch64, program shape, the cache, and a measurement.
//
// Golden files: policies/testdata/explain_<arch>_<promises joined by '_'>.txt, the
// ExplainPromises(kStable) output. After an intended change to the table, regenerate:
//   VOW_UPDATE_GOLDEN=$PWD/policies/testdata bazel run //policies:promise_compiler_test
// then review the diff (git diff policies/testdata) before committing.
#include "policies/promise_compiler.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <array>
#include <map>
#include <set>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <optional>
#include <cstddef>
#include <vector>

#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "policies/explain.h"
#include "policies/promise_table.h"
#include "policies/self_pid.h"

namespace vow {
namespace {

std::string GoldenName(Arch arch, PromiseSet set) {
  return absl::StrCat("explain_", ArchName(arch), "_",
                      absl::StrReplaceAll(set.ToString(), {{" ", "_"}}), ".txt");
}

TEST(PromiseCompilerTest, GoldenListings) {
  const PromiseSet sets[] = {
      {Promise::kStdio},
      {Promise::kStdio, Promise::kRpath, Promise::kThread},
      {Promise::kStdio, Promise::kInet, Promise::kUnix, Promise::kDns, Promise::kTty,
       Promise::kProc},
  };
  const char* update = std::getenv("VOW_UPDATE_GOLDEN");
  for (Arch arch : {Arch::kX86_64, Arch::kAarch64}) {
    for (const PromiseSet& set : sets) {
      auto text = ExplainPromises(set, arch, ExplainDetail::kStable);
      ASSERT_TRUE(text.ok()) << text.status();
      const std::string name = GoldenName(arch, set);
      if (update != nullptr) {
        std::ofstream(std::string(update) + "/" + name) << *text;
        continue;
      }
      std::ifstream in("policies/testdata/" + name);
      ASSERT_TRUE(in.good()) << "missing golden file " << name;
      std::stringstream want;
      want << in.rdbuf();
      EXPECT_EQ(*text, want.str()) << name << " differs; see this file's comment";
    }
  }
}

TEST(PromiseCompilerTest, ArchSpecificResolution) {
  // aarch64 has no open/poll; x86-64 has both. Numbers come from each arch's table.
  EXPECT_FALSE(SyscallNumber(Arch::kAarch64, "open").has_value());
  EXPECT_FALSE(SyscallNumber(Arch::kAarch64, "poll").has_value());
  EXPECT_EQ(SyscallNumber(Arch::kAarch64, "read"), 63);
  EXPECT_EQ(SyscallNumber(Arch::kX86_64, "read"), 0);
  EXPECT_EQ(SyscallName(Arch::kX86_64, 257), "openat");
  EXPECT_EQ(SyscallName(Arch::kAarch64, 56), "openat");
  EXPECT_EQ(SyscallName(Arch::kX86_64, 999), "syscall_999");
}

// The prologue's table of known numbers is written at build time; it must be what the
// linked libseccomp knows (a table from another libseccomp would send real syscalls to
// ENOSYS, or leave holes unguarded).
TEST(PromiseCompilerTest, BuildTimeNumberSpaceIsTheLinkedLibseccomps) {
  for (Arch arch : {Arch::kX86_64, Arch::kAarch64}) {
    const NumberSpace& built = NumberSpaceFor(arch);
    const NumberSpace scanned = ScanNumberSpaceForTesting(arch);
    EXPECT_GT(built.max_known, 400);
    EXPECT_EQ(built.max_known, scanned.max_known);
    EXPECT_EQ(built.holes, scanned.holes);
  }
}

// Checks the prologue the compiler prepends and the first instructions libseccomp
// emits for the program's arch.
void ExpectShape(const BpfProgram& p, Arch arch) {
  ASSERT_GT(p.code.size(), 8u);
  EXPECT_EQ(p.code[0].code, BPF_LD | BPF_W | BPF_ABS);
  EXPECT_EQ(p.code[0].k, 4u);  // seccomp_data.arch
  EXPECT_EQ(p.code[1].code, BPF_JMP | BPF_JEQ | BPF_K);
  EXPECT_EQ(p.code[1].k, AuditArch(arch));
  // libseccomp's own program also checks the arch and kills on a foreign one.
  bool kill_process = false, enosys = false;
  for (const sock_filter& f : p.code) {
    if (f.code != (BPF_RET | BPF_K)) continue;
    kill_process |= f.k == SECCOMP_RET_KILL_PROCESS;
    enosys |= f.k == (SECCOMP_RET_ERRNO | ENOSYS);
  }
  EXPECT_TRUE(kill_process);
  EXPECT_TRUE(enosys);
  EXPECT_LE(p.code.size(), static_cast<size_t>(BPF_MAXINSNS));
}

TEST(PromiseCompilerTest, PenaltiesMapToActions) {
  for (Arch arch : {Arch::kX86_64, Arch::kAarch64}) {
    for (Penalty penalty : {Penalty::kKill, Penalty::kErrno, Penalty::kLog}) {
      auto p = CompilePromises({Promise::kStdio}, penalty, arch);
      ASSERT_TRUE(p.ok()) << p.status();
      EXPECT_EQ(p->violation_action, SECCOMP_RET_USER_NOTIF);
      EXPECT_TRUE(p->needs_listener());
      EXPECT_EQ(p->penalty, penalty);
      ExpectShape(*p, arch);
    }
    auto trap = CompilePromises({Promise::kStdio}, Penalty::kTrap, arch);
    ASSERT_TRUE(trap.ok()) << trap.status();
    EXPECT_EQ(trap->violation_action, SECCOMP_RET_TRAP);
    EXPECT_EQ(trap->brokered_action, SECCOMP_RET_USER_NOTIF);
    EXPECT_TRUE(trap->needs_listener());  // path calls go to the broker in every mode
    ExpectShape(*trap, arch);
  }
  EXPECT_FALSE(CompilePromisesWithAction({Promise::kStdio}, SCMP_ACT_ALLOW).ok());
  EXPECT_FALSE(CompilePromisesWithAction({Promise::kStdio}, SCMP_ACT_ERRNO(ENOSYS)).ok());
}

TEST(PromiseCompilerTest, EveryPromiseCompilesAloneAndTogether) {
  for (Arch arch : {Arch::kX86_64, Arch::kAarch64}) {
    for (int i = 0; i < kPromiseCount; ++i) {
      const Promise p = static_cast<Promise>(i);
      auto program = CompilePromises(PromiseSet{p}, Penalty::kKill, arch);
      EXPECT_TRUE(program.ok()) << PromiseName(p) << ": " << program.status();
    }
    auto all = CompilePromises(PromiseSet::FromBits(~0u), Penalty::kKill, arch);
    ASSERT_TRUE(all.ok()) << all.status();
    std::printf("[%s] all promises: %zu instructions\n", std::string(ArchName(arch)).c_str(),
                all->code.size());
  }
}

TEST(PromiseCompilerTest, MeasureStdio) {
  constexpr int kRounds = 50;
  size_t size = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) {
    auto p = CompilePromises({Promise::kStdio}, Penalty::kKill);
    ASSERT_TRUE(p.ok());
    size = p->code.size();
  }
  const double us = std::chrono::duration<double, std::micro>(
                        std::chrono::steady_clock::now() - start).count() / kRounds;
  std::printf("stdio (%s): %zu BPF instructions, compiled in %.0f us on average\n",
              std::string(ArchName(NativeArch())).c_str(), size, us);
  EXPECT_LT(size, 400u);  // loose: catches an accidental blow-up, not a tweak
}

// Runs `code` (the classic BPF instructions the compiler emits: loads of seccomp_data,
// JA/JEQ/JGE/JGT/JSET with constants, ALU AND, RET with a constant) on `data`, counting
// the instructions executed in `steps`, and of them those in code[0, prologue_size) in
// `prologue_steps`. nullopt: an instruction it does not know, a jump off the end, a load
// outside seccomp_data, or (`constant_only`, the kernel's cache emulation) a load of
// anything but `nr` and `arch`.
std::optional<uint32_t> RunFilter(const std::vector<sock_filter>& code,
                                  const struct seccomp_data& data, int* steps,
                                  bool constant_only = false, size_t prologue_size = 0,
                                  int* prologue_steps = nullptr) {
  uint32_t reg = 0;
  *steps = 0;
  if (prologue_steps != nullptr) *prologue_steps = 0;
  for (size_t pc = 0; pc < code.size(); ++pc) {
    const sock_filter& insn = code[pc];
    ++*steps;
    if (prologue_steps != nullptr && pc < prologue_size) ++*prologue_steps;
    switch (insn.code) {
      case BPF_LD | BPF_W | BPF_ABS: {
        const bool constant = insn.k == offsetof(struct seccomp_data, nr) ||
                              insn.k == offsetof(struct seccomp_data, arch);
        if (constant_only && !constant) return std::nullopt;
        if (insn.k % 4 != 0 || insn.k + 4 > sizeof(data)) return std::nullopt;
        std::memcpy(&reg, reinterpret_cast<const char*>(&data) + insn.k, 4);
        break;
      }
      case BPF_RET | BPF_K:
        return insn.k;
      case BPF_JMP | BPF_JA:
        pc += insn.k;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
      case BPF_JMP | BPF_JGE | BPF_K:
      case BPF_JMP | BPF_JGT | BPF_K:
      case BPF_JMP | BPF_JSET | BPF_K: {
        bool taken = false;
        switch (BPF_OP(insn.code)) {
          case BPF_JEQ: taken = reg == insn.k; break;
          case BPF_JGE: taken = reg >= insn.k; break;
          case BPF_JGT: taken = reg > insn.k; break;
          case BPF_JSET: taken = (reg & insn.k) != 0; break;
        }
        pc += taken ? insn.jt : insn.jf;
        break;
      }
      case BPF_ALU | BPF_AND | BPF_K:
        reg &= insn.k;
        break;
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;  // ran off the end
}

// The kernel's constant-action cache (kernel/seccomp.c, seccomp_cache_prepare_bitmap,
// since 5.11): when a filter is attached, the kernel runs it once per syscall number of
// the native arch with an emulator that knows only loads of `nr` and `arch`, ALU AND,
// JA/JEQ/JGE/JGT/JSET with constants and RET with a constant. A number whose path
// reaches RET_ALLOW that way is marked, and later calls with it skip the filter. A load
// of an argument or of the instruction pointer on that path, or any other instruction,
// means "not cached": the whole program runs on every such call. This is the same
// emulation (seccomp_is_const_allow), so the test fails when the program's structure
// puts an argument or IP check in front of the number dispatch.
bool KernelCachesAllow(const std::vector<sock_filter>& code, uint32_t audit_arch, int nr) {
  struct seccomp_data data = {};
  data.nr = nr;
  data.arch = audit_arch;
  int steps = 0;
  return RunFilter(code, data, &steps, /*constant_only=*/true) == SECCOMP_RET_ALLOW;
}

TEST(PromiseCompilerTest, KernelCacheCoversEveryUnconditionalStdioSyscall) {
  // The emulator itself: a 1-instruction allow-all is cached, an argument load is not.
  const std::vector<sock_filter> allow_all = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  const std::vector<sock_filter> arg_first = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  ASSERT_TRUE(KernelCachesAllow(allow_all, AUDIT_ARCH_X86_64, 110));
  ASSERT_FALSE(KernelCachesAllow(arg_first, AUDIT_ARCH_X86_64, 110));

  const PromiseEntry& stdio = PromiseTableEntry(Promise::kStdio);
  for (Arch arch : {Arch::kX86_64, Arch::kAarch64}) {
    for (ProgramVariant variant : {ProgramVariant::kForkedWorker, ProgramVariant::kExecImage}) {
      for (Penalty penalty : {Penalty::kKill, Penalty::kTrap}) {
        auto program = CompilePromises({Promise::kStdio}, penalty, arch, variant);
        ASSERT_TRUE(program.ok()) << program.status();
        int cached = 0, conditional = 0;
        for (const SyscallRule& rule : stdio.rules) {
          std::optional<int> nr = SyscallNumber(arch, rule.syscall);
          if (!nr.has_value()) continue;  // not on this arch
          bool unconditional = false;
          for (const SyscallRule& other : stdio.rules) {
            if (other.syscall == rule.syscall && other.conditions.empty()) unconditional = true;
          }
          const bool is_cached = KernelCachesAllow(program->code, AuditArch(arch), *nr);
          if (unconditional) {
            EXPECT_TRUE(is_cached) << ArchName(arch) << " variant "
                                   << static_cast<int>(variant) << ": " << rule.syscall
                                   << " (allowed with any arguments) is not in the "
                                      "kernel's constant-action cache";
            cached += is_cached;
          } else {
            // Checked per call (argument filters): never wrongly cached as ALLOW.
            EXPECT_FALSE(is_cached) << ArchName(arch) << ": " << rule.syscall;
            ++conditional;
          }
        }
        EXPECT_GT(cached, 40) << ArchName(arch);
        EXPECT_GT(conditional, 0) << ArchName(arch);
        // A foreign arch never reaches ALLOW through the cache.
        EXPECT_FALSE(KernelCachesAllow(program->code, 0x40000003 /* i386 */, 20));
      }
    }
  }
}

// The prologue's number dispatch, run on the whole program for every number of the
// arch: each path call goes to the broker (or to its stat/mmap block), no other number
// reaches the broker's action, and no number takes more than a handful of compares to be
// dispatched. The last part is what the kernel pays at every attach (its constant-action
// cache runs the filter once per number): a linear chain of ~50 `jeq`s walked by every
// number cost ~90 us per spawn (README, "filter attach").
TEST(PromiseCompilerTest, PrologueDispatchesEveryNumberInFewCompares) {
  for (Arch arch : {Arch::kX86_64, Arch::kAarch64}) {
    for (ProgramVariant variant : {ProgramVariant::kForkedWorker, ProgramVariant::kExecImage}) {
      // kTrap: violations TRAP, path calls USER_NOTIF, so the two can be told apart.
      auto program = CompilePromises(PromiseSet::FromBits(~0u), Penalty::kTrap, arch, variant);
      ASSERT_TRUE(program.ok()) << program.status();
      ASSERT_EQ(program->brokered_action, SECCOMP_RET_USER_NOTIF);
      std::set<int> plain_brokered;
      for (const BrokeredEntry& b : BrokeredSyscalls()) {
        if (b.exec_image_only && variant != ProgramVariant::kExecImage) continue;
        // mmap without PROT_EXEC (the arguments below) is the promises' to decide; a stat
        // with a path traps to the worker's handler where the program has the trampoline.
        if (b.syscall == "mmap") continue;
        if ((b.syscall == "newfstatat" || b.syscall == "statx") && program->stat_trap) continue;
        std::optional<int> nr = SyscallNumber(arch, b.syscall);
        if (nr.has_value()) plain_brokered.insert(*nr);
      }
      ASSERT_GT(plain_brokered.size(), 20u);
      ASSERT_GT(program->prologue_size, 0u);
      int worst = 0, worst_prologue = 0;
      long total = 0;
      for (int nr = 0; nr < 1024; ++nr) {
        struct seccomp_data data = {};
        data.nr = nr;
        data.arch = AuditArch(arch);
        // Arguments that pass no argument filter by accident.
        for (int i = 0; i < 6; ++i) data.args[i] = 0x5a5a5a5a5a5a5a5aull;
        int steps = 0, prologue_steps = 0;
        std::optional<uint32_t> action =
            RunFilter(program->code, data, &steps, /*constant_only=*/false,
                      program->prologue_size, &prologue_steps);
        ASSERT_TRUE(action.has_value()) << ArchName(arch) << " nr " << nr;
        const bool to_broker = (*action & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF;
        EXPECT_EQ(to_broker, plain_brokered.count(nr) != 0)
            << ArchName(arch) << " variant " << static_cast<int>(variant) << ": "
            << SyscallName(arch, nr) << " (" << nr << ")";
        worst = std::max(worst, steps);
        worst_prologue = std::max(worst_prologue, prologue_steps);
        total += steps;
      }
      std::printf("[%s variant %d] whole program: worst path %d instructions, mean %.1f; "
                  "prologue (%zu instructions): worst path %d\n",
                  std::string(ArchName(arch)).c_str(), static_cast<int>(variant), worst,
                  static_cast<double>(total) / 1024, program->prologue_size, worst_prologue);
      // The prologue's worst path: the arch and range tests, log2 of ~25 ranges, a leaf of
      // three ranges (two compares each) and the stat/mmap block's argument tests: 15-17.
      // A linear chain of the ranges walks 29-33 (of the numbers, before: ~55).
      EXPECT_LE(worst_prologue, 22) << ArchName(arch);
      // A balanced dispatch: log2(~60) + a leaf of 3 + the arch and range tests, then
      // libseccomp's own tree and one rule's argument checks.
      // Before the balanced dispatch: 28.7 (x86-64) and 19.4 (aarch64); after: 13.8, 11.7.
      EXPECT_LE(static_cast<double>(total) / 1024, 17.0) << ArchName(arch);
    }
  }
}

TEST(FilterCacheTest, CompilesEachPolicyOnce) {
  FilterCache cache;
  auto a = cache.Get({Promise::kStdio}, Penalty::kKill);
  auto b = cache.Get({Promise::kStdio}, Penalty::kKill);
  auto c = cache.Get({Promise::kStdio}, Penalty::kTrap);
  auto d = cache.Get({Promise::kStdio}, Penalty::kKill, Arch::kAarch64);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), c->get());
  EXPECT_NE(a->get(), d->get());

  std::vector<std::thread> threads;
  std::vector<const BpfProgram*> seen(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto p = cache.Get({Promise::kStdio, Promise::kRpath}, Penalty::kErrno);
      seen[i] = p.ok() ? p->get() : nullptr;
    });
  }
  for (auto& t : threads) t.join();
  for (const BpfProgram* p : seen) {
    EXPECT_NE(p, nullptr);
    EXPECT_EQ(p, seen[0]);
  }
}

}  // namespace
}  // namespace vow

namespace vow {
namespace {

// The body vow writes itself (kNative, exec'd images) against libseccomp's (kLibseccomp)
// for the same policy: the whole programs are run on every syscall number of the arch,
// the x32 and out-of-range numbers, a foreign arch, and argument values on and around
// every condition the promise table has for that syscall (the exact value, one bit of
// the mask flipped, every bit outside the mask set, the high half changed), and must give
// the same action each time.
TEST(PromiseCompilerTest, NativeBodyAgreesWithLibseccompOnEveryNumberAndArgument) {
  std::vector<PromiseSet> sets = {PromiseSet::FromBits(~0u), PromiseSet::FromBits(0)};
  for (int i = 0; i < kPromiseCount; ++i) {
    sets.push_back(PromiseSet::FromBits(1u << i));
    sets.push_back(PromiseSet::FromBits((1u << i) | 1u));  // with the first (stdio)
  }
  std::vector<uint32_t> numbers;
  for (uint32_t nr = 0; nr < 1024; ++nr) numbers.push_back(nr);
  for (uint32_t nr : {0x3fffffffu, 0x40000000u, 0x40000001u, 0x40000000u + 59, 0x7fffffffu,
                      0x80000000u, 0xfffffffeu, 0xffffffffu}) {
    numbers.push_back(nr);
  }
  long compared = 0;
  for (Arch arch : {Arch::kX86_64, Arch::kAarch64}) {
    // Every condition the table has, by syscall name.
    std::map<std::string, std::vector<std::vector<ArgCondition>>> conditions;
    for (int i = 0; i < kPromiseCount; ++i) {
      for (const SyscallRule& rule : PromiseTableEntry(static_cast<Promise>(i)).rules) {
        conditions[rule.syscall].push_back(rule.conditions);
      }
    }
    ArgCondition unix_domain;
    unix_domain.arg = 0;
    unix_domain.mask = 0xffffffffull;
    unix_domain.value = AF_UNIX;
    conditions["socket"].push_back({unix_domain});
    const uint32_t other_arch = AuditArch(arch == Arch::kX86_64 ? Arch::kAarch64 : Arch::kX86_64);
    for (ProgramVariant variant : {ProgramVariant::kForkedWorker, ProgramVariant::kExecImage}) {
      for (Penalty penalty : {Penalty::kKill, Penalty::kTrap}) {
        for (PromiseSet set : sets) {
          auto native = CompilePromisesWithBodyForTesting(set, penalty, arch, variant,
                                                          BodyBackend::kNative);
          auto lib = CompilePromisesWithBodyForTesting(set, penalty, arch, variant,
                                                       BodyBackend::kLibseccomp);
          ASSERT_TRUE(native.ok()) << native.status();
          ASSERT_TRUE(lib.ok()) << lib.status();
          ASSERT_EQ(native->prologue_size, lib->prologue_size);
          for (uint32_t nr : numbers) {
            std::vector<std::array<uint64_t, 6>> arg_sets;
            arg_sets.push_back({});
            arg_sets.push_back({~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull});
            std::array<uint64_t, 6> pattern;
            pattern.fill(0x5a5a5a5a5a5a5a5aull);
            arg_sets.push_back(pattern);
            const std::string name = nr < 1024 ? SyscallName(arch, static_cast<int>(nr)) : "";
            auto it = conditions.find(name);
            if (it != conditions.end()) {
              for (const std::vector<ArgCondition>& rule : it->second) {
                std::array<uint64_t, 6> base = {};
                for (const ArgCondition& c : rule) {
                  base[c.arg] = c.self_pid ? kSelfPidPlaceholder : c.value;
                }
                arg_sets.push_back(base);
                for (const ArgCondition& c : rule) {
                  const uint64_t v = base[c.arg];
                  const uint64_t low_bit = c.mask & -c.mask;
                  const uint64_t high_bit = c.mask == 0 ? 0 : 1ull << (63 - __builtin_clzll(c.mask));
                  for (uint64_t changed : std::initializer_list<uint64_t>{v ^ low_bit, v ^ high_bit, v | ~c.mask,
                                           v ^ 0xffffffff00000000ull, v + (1ull << 32),
                                           v ^ 1, v + 1}) {
                    std::array<uint64_t, 6> args = base;
                    args[c.arg] = changed;
                    arg_sets.push_back(args);
                  }
                }
              }
            }
            for (uint32_t audit_arch : {AuditArch(arch), other_arch, 0u}) {
              for (const auto& args : arg_sets) {
                struct seccomp_data data = {};
                data.nr = static_cast<int>(nr);
                data.arch = audit_arch;
                for (int i = 0; i < 6; ++i) data.args[i] = args[i];
                int steps = 0;
                std::optional<uint32_t> a = RunFilter(native->code, data, &steps);
                std::optional<uint32_t> b = RunFilter(lib->code, data, &steps);
                ASSERT_TRUE(a.has_value()) << "native body: " << name << " (" << nr << ")";
                ASSERT_TRUE(b.has_value()) << "libseccomp body: " << name << " (" << nr << ")";
                ASSERT_EQ(*a, *b) << ArchName(arch) << " variant " << static_cast<int>(variant)
                                  << " promises 0x" << std::hex << set.bits() << std::dec
                                  << ": " << name << " (" << nr << ") arch 0x" << std::hex
                                  << audit_arch << " args " << args[0] << " " << args[1]
                                  << " " << args[2] << " " << args[3] << " " << args[4]
                                  << " " << args[5];
                ++compared;
              }
            }
          }
        }
      }
    }
  }
  std::printf("native vs libseccomp body: %ld runs compared\n", compared);
  EXPECT_GT(compared, 100000);
}

// An exec'd image's program is written without libseccomp's generator: nothing after the
// prologue is what libseccomp would write (so the default really is the native body).
TEST(PromiseCompilerTest, ExecImageProgramsUseTheNativeBody) {
  const PromiseSet stdio = PromiseSet::FromBits(1u);
  auto dflt = CompilePromises(stdio, Penalty::kKill, NativeArch(), ProgramVariant::kExecImage);
  auto native = CompilePromisesWithBodyForTesting(stdio, Penalty::kKill, NativeArch(),
                                                  ProgramVariant::kExecImage,
                                                  BodyBackend::kNative);
  ASSERT_TRUE(dflt.ok() && native.ok());
  ASSERT_EQ(dflt->code.size(), native->code.size());
  EXPECT_EQ(0, memcmp(dflt->code.data(), native->code.data(),
                      dflt->code.size() * sizeof(sock_filter)));
}

}  // namespace
}  // namespace vow
