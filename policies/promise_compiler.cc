#include "policies/promise_compiler.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "policies/promise_table.h"
#include "policies/self_pid.h"
#include "policies/stat_trap_abi.h"

namespace vow {
namespace {

constexpr uint32_t kX32SyscallBit = 0x40000000;
constexpr uint32_t kRetEnosys = SECCOMP_RET_ERRNO | ENOSYS;

uint32_t ScmpArch(Arch arch) {
  return arch == Arch::kX86_64 ? SCMP_ARCH_X86_64 : SCMP_ARCH_AARCH64;
}

}  // namespace

NumberSpace ScanNumberSpaceForTesting(Arch arch) { return ScanNumberSpace(ScmpArch(arch)); }

namespace {

#include "policies/number_space.inc"

template <size_t N>
NumberSpace Built(int max_known, const std::pair<int, int> (&holes)[N]) {
  NumberSpace ns;
  ns.max_known = max_known;
  for (const auto& h : holes) {
    if (h.first >= 0) ns.holes.push_back(h);
  }
  return ns;
}

}  // namespace

// From the table written at build time by //policies:number_space_gen (the same scan,
// run once by the build instead of at every process's first compile: ~0.5 ms of a `vow
// run` with the page faults of reading libseccomp's tables, README "Start-up, round 9").
const NumberSpace& NumberSpaceFor(Arch arch) {
  if (arch == Arch::kX86_64) {
    static const NumberSpace* const x86_64 = new NumberSpace(Built(kX86_64MaxKnown, kX86_64Holes));
    return *x86_64;
  }
  static const NumberSpace* const aarch64 =
      new NumberSpace(Built(kAarch64MaxKnown, kAarch64Holes));
  return *aarch64;
}

namespace {

// A tiny BPF assembler with forward labels, for the hand-written prologue.
class Asm {
 public:
  size_t size() const { return code_.size(); }
  void Stmt(uint16_t code, uint32_t k) { code_.push_back(sock_filter{code, 0, 0, k}); }
  // A conditional jump to labels `jt` / `jf` (resolved by Finish()).
  void Jump(uint16_t code, uint32_t k, int jt, int jf) {
    fixups_.push_back({code_.size(), jt, jf});
    code_.push_back(sock_filter{code, 0, 0, k});
  }
  void Always(int label) {
    fixups_.push_back({code_.size(), label, -1});
    code_.push_back(sock_filter{BPF_JMP | BPF_JA, 0, 0, 0});
  }
  int NewLabel() {
    labels_.push_back(SIZE_MAX);
    return static_cast<int>(labels_.size() - 1);
  }
  void Bind(int label) { labels_[label] = code_.size(); }
  void LoadArgLow(int arg) {
    Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args) + 8 * arg);
  }
  void LoadArgHigh(int arg) {
    Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args) + 8 * arg + 4);
  }
  // Label `end` means "the instruction after the prologue" (libseccomp's first).
  absl::StatusOr<std::vector<sock_filter>> Finish(int end) {
    labels_[end] = code_.size();
    for (const Fixup& f : fixups_) {
      auto rel = [&](int label) -> absl::StatusOr<uint32_t> {
        const size_t target = labels_[label];
        if (target == SIZE_MAX || target <= f.at) {
          return absl::InternalError("prologue: unbound or backward label");
        }
        return static_cast<uint32_t>(target - f.at - 1);
      };
      sock_filter& insn = code_[f.at];
      if (f.jf < 0) {
        ASSIGN_OR_RETURN(insn.k, rel(f.jt));
        continue;
      }
      ASSIGN_OR_RETURN(uint32_t jt, rel(f.jt));
      ASSIGN_OR_RETURN(uint32_t jf, rel(f.jf));
      if (jt > 255 || jf > 255) return absl::InternalError("prologue: jump too far");
      insn.jt = static_cast<uint8_t>(jt);
      insn.jf = static_cast<uint8_t>(jf);
    }
    return code_;
  }

 private:
  struct Fixup {
    size_t at;
    int jt, jf;
  };
  std::vector<sock_filter> code_;
  std::vector<size_t> labels_;
  std::vector<Fixup> fixups_;
};

// A run of consecutive syscall numbers that go to the same block.
struct NumberRange {
  uint32_t lo, hi;  // inclusive
  int label;
};

// Runs of consecutive numbers with the same label (`sorted`: by number), as ranges.
std::vector<NumberRange> Ranges(const std::vector<std::pair<uint32_t, int>>& sorted) {
  std::vector<NumberRange> ranges;
  for (const auto& [nr, label] : sorted) {
    if (!ranges.empty() && ranges.back().label == label && ranges.back().hi + 1 == nr) {
      ranges.back().hi = nr;
    } else {
      ranges.push_back(NumberRange{nr, nr, label});
    }
  }
  return ranges;
}

// Sends the number in A to the label of its range in sorted[lo, hi), or to `miss`: a
// balanced binary search of `jge` tests over the ranges, with at most kLeaf ranges tested
// in turn at a leaf, so any number takes about log2(n) + 2 * kLeaf compares. The kernel's
// constant-action cache emulates the filter for every syscall number when the filter is
// attached, and a linear chain of n compares made that cost grow with n for each of them
// (README, "filter attach"). Every jump is forward: the right half comes after the left.
void EmitDispatch(Asm& a, const std::vector<NumberRange>& sorted, size_t lo, size_t hi,
                  int miss) {
  constexpr size_t kLeaf = 3;
  if (hi - lo <= kLeaf) {
    // The search has established nr < sorted[hi].lo; test the ranges from the top down.
    for (size_t i = hi; i-- > lo;) {
      const NumberRange& r = sorted[i];
      const int next = a.NewLabel();
      if (r.lo == r.hi) {
        a.Jump(BPF_JMP | BPF_JEQ | BPF_K, r.lo, r.label, next);
      } else {
        const int in = a.NewLabel();
        a.Jump(BPF_JMP | BPF_JGE | BPF_K, r.lo, in, next);
        a.Bind(in);
        a.Jump(BPF_JMP | BPF_JGT | BPF_K, r.hi, miss, r.label);
      }
      a.Bind(next);
    }
    a.Always(miss);
    return;
  }
  const size_t mid = lo + (hi - lo) / 2;
  const int left = a.NewLabel(), right = a.NewLabel();
  a.Jump(BPF_JMP | BPF_JGE | BPF_K, sorted[mid].lo, right, left);
  a.Bind(left);
  EmitDispatch(a, sorted, lo, mid, miss);
  a.Bind(right);
  EmitDispatch(a, sorted, mid, hi, miss);
}

// As EmitDispatch, for a search whose targets may lie anywhere after it: every
// conditional jump goes to a `ja` next to it (a conditional jump reaches 255
// instructions, a `ja` any distance), so the tree assembles at any size.
void EmitFarDispatch(Asm& a, const std::vector<NumberRange>& sorted, size_t lo, size_t hi,
                     int miss) {
  constexpr size_t kLeaf = 3;
  if (hi - lo <= kLeaf) {
    // The search has established nr < sorted[hi].lo; test the ranges from the top down.
    std::vector<std::pair<int, int>> stubs;  // local label -> far label
    auto stub = [&](int far) {
      const int local = a.NewLabel();
      stubs.emplace_back(local, far);
      return local;
    };
    const int miss_stub = stub(miss);
    for (size_t i = hi; i-- > lo;) {
      const NumberRange& r = sorted[i];
      const int next = a.NewLabel();
      const int hit = stub(r.label);
      if (r.lo == r.hi) {
        a.Jump(BPF_JMP | BPF_JEQ | BPF_K, r.lo, hit, next);
      } else {
        const int in = a.NewLabel();
        a.Jump(BPF_JMP | BPF_JGE | BPF_K, r.lo, in, next);
        a.Bind(in);
        a.Jump(BPF_JMP | BPF_JGT | BPF_K, r.hi, miss_stub, hit);
      }
      a.Bind(next);
    }
    a.Always(miss);
    for (const auto& [local, far_label] : stubs) {
      a.Bind(local);
      a.Always(far_label);
    }
    return;
  }
  const size_t mid = lo + (hi - lo) / 2;
  const int left = a.NewLabel(), right = a.NewLabel(), to_right = a.NewLabel();
  a.Jump(BPF_JMP | BPF_JGE | BPF_K, sorted[mid].lo, to_right, left);
  a.Bind(to_right);
  a.Always(right);
  a.Bind(left);
  EmitFarDispatch(a, sorted, lo, mid, miss);
  a.Bind(right);
  EmitFarDispatch(a, sorted, mid, hi, miss);
}

// The hand-written prologue (see the header): foreign arch and x32 go on to libseccomp's
// program (whose bad-arch action kills), unknown numbers return ENOSYS, brokered
// syscalls go to the broker (`brokered_action`), everything else goes on to
// libseccomp's program, which starts right after the prologue. Only the number and the
// arch are read, except for the fd-only stat forms (a NULL path: the kernel decides)
// and, in an exec'd image, mmap with PROT_EXEC of a file. With `stat_trap` (forked
// workers served by a broker), a stat with a path is sent to the broker only when made at
// the worker's trampoline (instruction_pointer, patched in by the worker: see
// stat_trap_abi.h) and trapped anywhere else, so the worker's handler can answer
// fstat(fd) == newfstatat(fd, "", AT_EMPTY_PATH) without a round trip.
absl::StatusOr<std::vector<sock_filter>> Prologue(Arch arch, ProgramVariant variant,
                                                  uint32_t brokered_action, bool stat_trap) {
  const NumberSpace& ns = NumberSpaceFor(arch);
  const bool x86 = arch == Arch::kX86_64;
  Asm a;
  const int lib = a.NewLabel(), enosys = a.NewLabel(), broker = a.NewLabel(),
            allow = a.NewLabel(), stat_block = a.NewLabel(), mmap_block = a.NewLabel();
  a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  const int arch_ok = a.NewLabel();
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, AuditArch(arch), arch_ok, lib);
  a.Bind(arch_ok);
  a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  if (x86) {
    const int next = a.NewLabel();
    a.Jump(BPF_JMP | BPF_JGE | BPF_K, kX32SyscallBit, lib, next);
    a.Bind(next);
  }
  {
    const int next = a.NewLabel();
    a.Jump(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(ns.max_known), enosys, next);
    a.Bind(next);
  }
  for (const auto& [lo, hi] : ns.holes) {
    const int in = a.NewLabel(), next = a.NewLabel();
    a.Jump(BPF_JMP | BPF_JGE | BPF_K, lo, in, next);
    a.Bind(in);
    a.Jump(BPF_JMP | BPF_JGT | BPF_K, hi, next, enosys);
    a.Bind(next);
  }
  // The numbers this prologue decides, each with the block it goes to.
  std::vector<std::pair<uint32_t, int>> dispatch;
  for (const BrokeredEntry& b : BrokeredSyscalls()) {
    if (b.exec_image_only && variant != ProgramVariant::kExecImage) continue;
    const int nr = seccomp_syscall_resolve_name_arch(ScmpArch(arch), b.syscall.c_str());
    if (nr < 0) continue;  // not on this arch (open, stat, ... on aarch64)
    int target = broker;
    if (b.syscall == "newfstatat" || b.syscall == "statx") target = stat_block;
    if (b.syscall == "mmap") target = mmap_block;
    dispatch.emplace_back(static_cast<uint32_t>(nr), target);
  }
  const int probe_block = a.NewLabel();
  if (stat_trap) {
    const int nr =
        seccomp_syscall_resolve_name_arch(ScmpArch(arch), "process_vm_readv");
    if (nr < 0) return absl::InternalError("process_vm_readv is unknown on this arch");
    dispatch.emplace_back(static_cast<uint32_t>(nr), probe_block);
  }
  std::sort(dispatch.begin(), dispatch.end());
  for (size_t i = 1; i < dispatch.size(); ++i) {
    if (dispatch[i].first == dispatch[i - 1].first) {
      return absl::InternalError(absl::StrCat("prologue: syscall number ",
                                              dispatch[i].first, " listed twice"));
    }
  }
  const std::vector<NumberRange> ranges = Ranges(dispatch);
  EmitDispatch(a, ranges, 0, ranges.size(), lib);
  // The trap handler's probe of a path's first byte: process_vm_readv of the worker's
  // own memory (pid == self, flags 0), made at the trampoline, is allowed; the kernel
  // copies the byte or answers EFAULT, where a plain load could fault. Reading one's own
  // memory grants nothing. Anything else goes on to the promises (which never allow
  // process_vm_readv).
  a.Bind(probe_block);
  if (stat_trap) {
    const int ip_low = a.NewLabel(), pid = a.NewLabel(), flags_low = a.NewLabel(),
              flags_high = a.NewLabel();
    a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer));
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, kStatTrampolineLowPlaceholder, ip_low, lib);
    a.Bind(ip_low);
    a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer) + 4);
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, kStatTrampolineHighPlaceholder, pid, lib);
    a.Bind(pid);
    a.LoadArgLow(0);  // pid_t: the kernel reads the low 32 bits
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, kSelfPidPlaceholder, flags_low, lib);
    a.Bind(flags_low);
    a.LoadArgLow(5);
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0, flags_high, lib);
    a.Bind(flags_high);
    a.LoadArgHigh(5);
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0, allow, lib);
  }
  // newfstatat(fd, NULL, buf, AT_EMPTY_PATH) and statx(fd, NULL, ...): no path to read
  // (Linux >= 6.11 takes NULL as the empty path), so the kernel decides on the fd alone.
  a.Bind(stat_block);
  {
    const int low_null = a.NewLabel();
    const int with_path = stat_trap ? a.NewLabel() : broker;
    a.LoadArgLow(1);
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0, low_null, with_path);
    a.Bind(low_null);
    a.LoadArgHigh(1);
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0, allow, with_path);
    if (stat_trap) {
      // A path (maybe ""): from the trampoline -> the broker; from anywhere else -> the
      // worker's SIGSYS handler, which answers the empty path for the fd (with the NULL
      // form above) and re-issues anything else from the trampoline. A compromised worker
      // that jumps to the trampoline itself only reaches the broker, as before.
      const int trap = a.NewLabel(), low_ok = a.NewLabel();
      a.Bind(with_path);
      a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer));
      a.Jump(BPF_JMP | BPF_JEQ | BPF_K, kStatTrampolineLowPlaceholder, low_ok, trap);
      a.Bind(low_ok);
      a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer) + 4);
      a.Jump(BPF_JMP | BPF_JEQ | BPF_K, kStatTrampolineHighPlaceholder, broker, trap);
      a.Bind(trap);
      a.Stmt(BPF_RET | BPF_K, SECCOMP_RET_TRAP | kStatTrapData);
    }
  }
  // mmap in an exec'd image: PROT_EXEC of a file (fd != -1) is the loader mapping a
  // library: the broker checks the fd; anything else goes on to the promises.
  a.Bind(mmap_block);
  {
    const int exec = a.NewLabel();
    a.LoadArgLow(2);
    a.Jump(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, exec, lib);
    a.Bind(exec);
    a.LoadArgLow(4);
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, lib, broker);
  }
  a.Bind(enosys);
  a.Stmt(BPF_RET | BPF_K, kRetEnosys);
  a.Bind(broker);
  a.Stmt(BPF_RET | BPF_K, brokered_action);
  a.Bind(allow);
  a.Stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  return a.Finish(lib);
}

// libseccomp's rule API takes a NATIVE syscall number (a negative pseudo-number when
// the host lacks the syscall) and translates it by name for each arch of the filter;
// seccomp_rule_add_exact() on a foreign-arch filter would misread e.g. aarch64's 63
// (read) as x86-64's 63 (uname). So rules are always added by native number.
int RuleNumber(const std::string& name) { return seccomp_syscall_resolve_name(name.c_str()); }

using ScmpCtx = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

absl::Status ScmpError(int rc, absl::string_view what) {
  return absl::InternalError(absl::StrCat("libseccomp ", what, ": error ", rc));
}

absl::StatusOr<std::vector<sock_filter>> ExportBpf(scmp_filter_ctx ctx) {
  UniqueFd fd(memfd_create("vow-seccomp-bpf", MFD_CLOEXEC));
  if (!fd) return absl::InternalError(absl::StrCat("memfd_create: errno ", errno));
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc != 0) return ScmpError(rc, "seccomp_export_bpf");
  const off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0) {
    return absl::InternalError("exported BPF has an odd size");
  }
  std::vector<sock_filter> code(size / sizeof(sock_filter));
  size_t done = 0;
  char* buf = reinterpret_cast<char*>(code.data());
  while (done < static_cast<size_t>(size)) {
    ssize_t got = pread(fd.get(), buf + done, size - done, done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return absl::InternalError("reading back the exported BPF failed");
    done += got;
  }
  return code;
}

bool HeldPromiseLists(PromiseSet promises, const std::string& name) {
  for (int i = 0; i < kPromiseCount; ++i) {
    if (!promises.contains(static_cast<Promise>(i))) continue;
    for (const SyscallRule& rule : PromiseTableEntry(static_cast<Promise>(i)).rules) {
      if (rule.syscall == name) return true;
    }
  }
  return false;
}

// One rule of the body (the part after the prologue): `action` when every condition holds
// (64-bit masked equality on one argument each). A syscall's rules are alternatives,
// tried in order.
struct BodyRule {
  std::string syscall;
  int nr = -1;  // on the program's arch
  std::vector<std::pair<int, std::pair<uint64_t, uint64_t>>> conditions;  // arg, {mask, value}
  uint32_t action = SECCOMP_RET_ALLOW;
  bool a0_32 = false;  // the socket(AF_UNIX) rule: added to libseccomp as SCMP_A0_32
};

// What the body decides, in the order both back ends add it: the held promises' rules
// (path calls excluded: the prologue sends them to the broker), socket(AF_UNIX) -> EACCES
// without `unix`, an exec'd image's start-up calls, the ENOSYS probes. Syscalls this arch
// lacks are left out.
std::vector<BodyRule> BodyRules(PromiseSet promises, Arch arch, ProgramVariant variant) {
  std::set<std::string> brokered;
  for (const BrokeredEntry& b : BrokeredSyscalls()) {
    if (!b.exec_image_only) brokered.insert(b.syscall);
  }
  const uint32_t token = ScmpArch(arch);
  std::vector<BodyRule> rules;
  auto add = [&](const std::string& name) -> BodyRule* {
    const int nr = seccomp_syscall_resolve_name_arch(token, name.c_str());
    if (nr < 0) return nullptr;  // not on this arch (e.g. `open` on aarch64)
    rules.push_back(BodyRule{name, nr, {}, SECCOMP_RET_ALLOW, false});
    return &rules.back();
  };
  for (int i = 0; i < kPromiseCount; ++i) {
    const Promise p = static_cast<Promise>(i);
    if (!promises.contains(p)) continue;
    for (const SyscallRule& rule : PromiseTableEntry(p).rules) {
      if (brokered.count(rule.syscall) != 0) continue;
      BodyRule* r = add(rule.syscall);
      if (r == nullptr) continue;
      for (const ArgCondition& c : rule.conditions) {
        const uint64_t value = c.self_pid ? kSelfPidPlaceholder : c.value;
        r->conditions.push_back({c.arg, {c.mask, value}});
      }
    }
  }
  if (!promises.contains(Promise::kUnix)) {
    if (BodyRule* r = add("socket"); r != nullptr) {
      // SCMP_A0_32 is a 64-bit compare with a 32-bit value: the high half must be 0.
      r->conditions.push_back({0, {~0ull, static_cast<uint64_t>(AF_UNIX)}});
      r->action = SECCOMP_RET_ERRNO | EACCES;
      r->a0_32 = true;
    }
  }
  // After the held promises' ioctl rules (alternatives are tried in order), so a held
  // cmd is never shadowed; these cmds are in no promise.
  for (const UnsupportedIoctl& u : UnsupportedIoctls()) {
    if (BodyRule* r = add("ioctl"); r != nullptr) {
      r->conditions.push_back({1, {0xffffffffu, u.cmd}});
      r->action = SECCOMP_RET_ERRNO | EOPNOTSUPP;
    }
  }
  if (variant == ProgramVariant::kExecImage) {
    for (const std::string& name : ExecStartupSyscalls()) (void)add(name);
  }
  for (const EnosysEntry& e : EnosysSyscalls()) {
    if (HeldPromiseLists(promises, e.syscall)) continue;  // e.g. rseq under `thread`
    if (brokered.count(e.syscall) != 0) continue;
    if (BodyRule* r = add(e.syscall); r != nullptr) r->action = kRetEnosys;
  }
  return rules;
}

// The body through libseccomp (its rule database and its BPF generator).
absl::StatusOr<std::vector<sock_filter>> LibseccompBody(const std::vector<BodyRule>& rules,
                                                        uint32_t violation_action,
                                                        Arch arch) {
  ScmpCtx ctx(seccomp_init(violation_action), seccomp_release);
  if (ctx == nullptr) return absl::InternalError("seccomp_init failed");
  const uint32_t token = ScmpArch(arch);
  if (token != seccomp_arch_native()) {
    int rc = seccomp_arch_add(ctx.get(), token);
    if (rc != 0) return ScmpError(rc, "seccomp_arch_add");
    rc = seccomp_arch_remove(ctx.get(), SCMP_ARCH_NATIVE);
    if (rc != 0) return ScmpError(rc, "seccomp_arch_remove");
  }
  struct {
    scmp_filter_attr attr;
    uint32_t value;
    bool required;
  } const attrs[] = {
      {SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS, true},
      {SCMP_FLTATR_CTL_NNP, 0, true},    // the worker's lock-down sets NO_NEW_PRIVS
      {SCMP_FLTATR_CTL_TSYNC, 0, true},  // the loader passes its own flags
      {SCMP_FLTATR_CTL_OPTIMIZE, 2, false},  // binary tree, when supported
  };
  for (const auto& a : attrs) {
    int rc = seccomp_attr_set(ctx.get(), a.attr, a.value);
    if (rc != 0 && a.required) return ScmpError(rc, "seccomp_attr_set");
  }
  for (const BodyRule& rule : rules) {
    // By native number: see RuleNumber.
    const int nr = RuleNumber(rule.syscall);
    int rc = 0;
    if (rule.a0_32) {
      rc = seccomp_rule_add(ctx.get(), rule.action, nr, 1,
                            SCMP_A0_32(SCMP_CMP_EQ, rule.conditions[0].second.second));
    } else {
      std::vector<scmp_arg_cmp> cmps;
      for (const auto& [arg, mv] : rule.conditions) {
        cmps.push_back(SCMP_CMP64(static_cast<unsigned>(arg), SCMP_CMP_MASKED_EQ, mv.first,
                                  mv.second));
      }
      rc = seccomp_rule_add_array(ctx.get(), rule.action, nr, cmps.size(), cmps.data());
    }
    // EEXIST: the same rule twice (two promises list it), except for an ENOSYS probe.
    if (rc != 0 && (rc != -EEXIST || rule.action == kRetEnosys)) {
      return ScmpError(rc, absl::StrCat("rule for ", rule.syscall));
    }
  }
  return ExportBpf(ctx.get());
}

// The same body without libseccomp (exec'd images: `vow run` compiles one at every start,
// and libseccomp's rule database and generator were most of that compile): the arch and
// x32 checks as libseccomp writes them (a foreign arch and an x32 number kill; nr -1 goes
// on to the default), then a balanced search over the numbers, then per syscall its rules
// in order, each an AND of masked compares of both halves of an argument, the first that
// holds giving its action; no rule: `violation_action`. Conditional jumps stay short (the
// tree's far edges and every jump to a syscall's block are `ja`s), so any size assembles.
// body_test in promise_compiler_test runs both bodies on every number and on argument
// values around every condition and requires the same action.
absl::StatusOr<std::vector<sock_filter>> NativeBody(const std::vector<BodyRule>& rules,
                                                    uint32_t violation_action, Arch arch) {
  Asm a;
  const int tree = a.NewLabel(), violation = a.NewLabel();
  a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  {
    const int ok = a.NewLabel(), kill = a.NewLabel();
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, AuditArch(arch), ok, kill);
    a.Bind(kill);
    a.Stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    a.Bind(ok);
  }
  a.Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  if (arch == Arch::kX86_64) {
    const int high = a.NewLabel(), kill = a.NewLabel();
    a.Jump(BPF_JMP | BPF_JGE | BPF_K, kX32SyscallBit, high, tree);
    a.Bind(high);
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, tree, kill);
    a.Bind(kill);
    a.Stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  }
  a.Bind(tree);
  // Per number, its rules in the order given; a number whose first rule has no condition
  // takes that rule's action at once (the rest can never be reached).
  std::map<uint32_t, std::vector<const BodyRule*>> by_nr;
  for (const BodyRule& r : rules) by_nr[static_cast<uint32_t>(r.nr)].push_back(&r);
  std::map<uint32_t, int> ret_label;  // one `ret` per unconditional action
  auto ret_for = [&](uint32_t action) {
    auto it = ret_label.find(action);
    if (it == ret_label.end()) it = ret_label.emplace(action, a.NewLabel()).first;
    return it->second;
  };
  std::vector<std::pair<uint32_t, int>> dispatch;  // number -> label
  std::vector<std::pair<int, std::vector<const BodyRule*>>> blocks;
  for (const auto& [nr, list] : by_nr) {
    if (list.front()->conditions.empty()) {
      dispatch.emplace_back(nr, ret_for(list.front()->action));
      continue;
    }
    const int block = a.NewLabel();
    blocks.emplace_back(block, list);
    dispatch.emplace_back(nr, block);
  }
  const std::vector<NumberRange> ranges = Ranges(dispatch);
  EmitFarDispatch(a, ranges, 0, ranges.size(), violation);
  for (const auto& [block, list] : blocks) {
    a.Bind(block);
    for (const BodyRule* r : list) {
      const int next = a.NewLabel();
      for (const auto& [arg, mv] : r->conditions) {
        const uint32_t mask_hi = static_cast<uint32_t>(mv.first >> 32);
        const uint32_t mask_lo = static_cast<uint32_t>(mv.first);
        const uint32_t value_hi = static_cast<uint32_t>(mv.second >> 32);
        const uint32_t value_lo = static_cast<uint32_t>(mv.second);
        for (int half = 1; half >= 0; --half) {
          const uint32_t mask = half == 1 ? mask_hi : mask_lo;
          const uint32_t value = half == 1 ? value_hi : value_lo;
          if (mask == 0 && value == 0) continue;  // always holds
          if ((value & ~mask) != 0) {             // never holds
            a.Always(next);
            break;
          }
          if (half == 1) {
            a.LoadArgHigh(arg);
          } else {
            a.LoadArgLow(arg);
          }
          if (mask != 0xffffffffu) a.Stmt(BPF_ALU | BPF_AND | BPF_K, mask);
          const int ok = a.NewLabel();
          a.Jump(BPF_JMP | BPF_JEQ | BPF_K, value, ok, next);
          a.Bind(ok);
        }
      }
      a.Stmt(BPF_RET | BPF_K, r->action);
      a.Bind(next);
    }
    a.Always(violation);
  }
  for (const auto& [action, label] : ret_label) {
    a.Bind(label);
    a.Stmt(BPF_RET | BPF_K, action);
  }
  a.Bind(violation);
  a.Stmt(BPF_RET | BPF_K, violation_action);
  const int end = a.NewLabel();
  return a.Finish(end);
}

absl::StatusOr<BpfProgram> Compile(PromiseSet promises, Penalty penalty,
                                   uint32_t violation_action, Arch arch,
                                   ProgramVariant variant, uint32_t brokered_action,
                                   BodyBackend backend) {
  const std::vector<BodyRule> rules = BodyRules(promises, arch, variant);
  if (backend == BodyBackend::kDefault) {
    backend = variant == ProgramVariant::kExecImage ? BodyBackend::kNative
                                                    : BodyBackend::kLibseccomp;
  }
  auto lib = backend == BodyBackend::kNative ? NativeBody(rules, violation_action, arch)
                                             : LibseccompBody(rules, violation_action, arch);
  if (!lib.ok()) return lib.status();
  BpfProgram program;
  program.penalty = penalty;
  program.violation_action = violation_action;
  // The stat fast path needs a broker behind the trampoline and a worker that runs vow's
  // handler before its first instruction: forked workers only (an exec'd image's loader
  // stats libraries before any handler could exist).
  const bool stat_trap = variant == ProgramVariant::kForkedWorker &&
                         brokered_action == SECCOMP_RET_USER_NOTIF;
  ASSIGN_OR_RETURN(program.code, Prologue(arch, variant, brokered_action, stat_trap));
  program.prologue_size = program.code.size();
  program.variant = variant;
  program.stat_trap = stat_trap;
  program.code.insert(program.code.end(), lib->begin(), lib->end());
  if (stat_trap) {
    // The worker patches by value: each placeholder must be the k of exactly the jeqs
    // written above (the stat block's and the probe's), and of nothing else.
    for (uint32_t placeholder :
         {kStatTrampolineLowPlaceholder, kStatTrampolineHighPlaceholder}) {
      size_t seen = 0;
      for (const sock_filter& insn : program.code) {
        if (insn.k == placeholder) ++seen;
      }
      if (seen != kStatTrampolinePatchSites / 2) {
        return absl::InternalError(absl::StrCat(
            "the trampoline placeholder 0x", absl::Hex(placeholder), " occurs ", seen,
            " times in the program (want ", kStatTrampolinePatchSites / 2, ")"));
      }
    }
  }
  if (program.code.size() > BPF_MAXINSNS) {
    return absl::ResourceExhaustedError(
        absl::StrCat("BPF program too long: ", program.code.size(), " instructions"));
  }
  return program;
}

}  // namespace

Arch NativeArch() {
#if defined(__x86_64__)
  return Arch::kX86_64;
#elif defined(__aarch64__)
  return Arch::kAarch64;
#else
#error "vow supports x86-64 and aarch64 only"
#endif
}

absl::string_view ArchName(Arch arch) {
  return arch == Arch::kX86_64 ? "x86_64" : "aarch64";
}

std::optional<Arch> ArchFromName(absl::string_view name) {
  if (name == "x86_64" || name == "x86-64" || name == "amd64") return Arch::kX86_64;
  if (name == "aarch64" || name == "arm64") return Arch::kAarch64;
  return std::nullopt;
}

uint32_t AuditArch(Arch arch) {
  return arch == Arch::kX86_64 ? AUDIT_ARCH_X86_64 : AUDIT_ARCH_AARCH64;
}

bool BpfProgram::needs_listener() const {
  return brokered_action == SECCOMP_RET_USER_NOTIF || violation_action == SECCOMP_RET_USER_NOTIF;
}

absl::StatusOr<BpfProgram> CompilePromises(PromiseSet promises, Penalty penalty,
                                           Arch arch, ProgramVariant variant) {
  const uint32_t action = penalty == Penalty::kTrap ? SCMP_ACT_TRAP : SCMP_ACT_NOTIFY;
  auto program = Compile(promises, penalty, action, arch, variant, SECCOMP_RET_USER_NOTIF,
                         BodyBackend::kDefault);
  if (program.ok()) program->brokered_action = SECCOMP_RET_USER_NOTIF;
  return program;
}

absl::StatusOr<BpfProgram> CompilePromisesWithBodyForTesting(PromiseSet promises,
                                                             Penalty penalty, Arch arch,
                                                             ProgramVariant variant,
                                                             BodyBackend backend) {
  const uint32_t action = penalty == Penalty::kTrap ? SCMP_ACT_TRAP : SCMP_ACT_NOTIFY;
  auto program = Compile(promises, penalty, action, arch, variant, SECCOMP_RET_USER_NOTIF,
                         backend);
  if (program.ok()) program->brokered_action = SECCOMP_RET_USER_NOTIF;
  return program;
}

absl::StatusOr<BpfProgram> CompilePromisesWithAction(PromiseSet promises,
                                                     uint32_t violation_action,
                                                     Arch arch) {
  if (violation_action == SCMP_ACT_ALLOW || violation_action == SCMP_ACT_ERRNO(ENOSYS)) {
    return absl::InvalidArgumentError(
        "a violation action must differ from ALLOW and ERRNO(ENOSYS)");
  }
  // No broker: path calls get the violation action too.
  auto program = Compile(promises, Penalty::kErrno, violation_action, arch,
                         ProgramVariant::kForkedWorker, violation_action, BodyBackend::kDefault);
  if (program.ok()) program->brokered_action = violation_action;
  return program;
}

absl::StatusOr<BpfProgram> CompileExecPromises(PromiseSet exec_promises, Penalty penalty,
                                               Arch arch) {
  // A violation of the narrower set alone (the worker's own filter allows the call):
  // nothing listens on this filter, so the kernel acts by itself.
  uint32_t action = SCMP_ACT_KILL_PROCESS;
  if (penalty == Penalty::kErrno || penalty == Penalty::kTrap) action = SCMP_ACT_ERRNO(EPERM);
  if (penalty == Penalty::kLog) action = SCMP_ACT_LOG;
  // Path calls: ALLOW here, so the worker's own filter decides them (USER_NOTIF to the
  // broker, which applies the caller's promises: broker/exec_tracer.h).
  auto program = Compile(exec_promises, penalty, action, arch, ProgramVariant::kExecImage,
                         SECCOMP_RET_ALLOW, BodyBackend::kDefault);
  if (program.ok()) program->brokered_action = SECCOMP_RET_ALLOW;
  return program;
}

absl::StatusOr<std::shared_ptr<const BpfProgram>> FilterCache::Get(PromiseSet promises,
                                                                   Penalty penalty,
                                                                   Arch arch,
                                                                   ProgramVariant variant) {
  const Key key{promises.bits(), penalty, arch, variant};
  absl::MutexLock lock(&mu_);
  auto it = programs_.find(key);
  if (it != programs_.end()) return it->second;
  // Compiled under the lock: concurrent first requests for one policy compile it once.
  auto program = CompilePromises(promises, penalty, arch, variant);
  if (!program.ok()) return program.status();
  auto shared = std::make_shared<const BpfProgram>(*std::move(program));
  programs_.emplace(key, shared);
  return shared;
}

size_t FilterCache::size() {
  absl::MutexLock lock(&mu_);
  return programs_.size();
}

std::string SyscallName(Arch arch, int nr) {
  char* name = seccomp_syscall_resolve_num_arch(ScmpArch(arch), nr);
  if (name == nullptr) return absl::StrCat("syscall_", nr);
  std::string out(name);
  free(name);
  return out;
}

std::optional<int> SyscallNumber(Arch arch, absl::string_view name) {
  const std::string n(name);
  const int nr = seccomp_syscall_resolve_name_arch(ScmpArch(arch), n.c_str());
  if (nr < 0) return std::nullopt;
  return nr;
}

bool IsEnosysSyscall(absl::string_view name) {
  for (const EnosysEntry& e : EnosysSyscalls()) {
    if (e.syscall == name) return true;
  }
  return false;
}

PromiseSet PromisesAllowing(const SyscallEvent& event) {
  PromiseSet out;
  std::optional<Arch> arch;
  if (event.audit_arch == AUDIT_ARCH_X86_64) arch = Arch::kX86_64;
  if (event.audit_arch == AUDIT_ARCH_AARCH64) arch = Arch::kAarch64;
  if (!arch.has_value() || event.nr < 0) return out;
  if (*arch == Arch::kX86_64 && (static_cast<uint32_t>(event.nr) & kX32SyscallBit)) {
    return out;
  }
  char* raw = seccomp_syscall_resolve_num_arch(ScmpArch(*arch), event.nr);
  if (raw == nullptr) return out;
  const std::string name(raw);
  free(raw);
  for (const PromiseEntry& entry : PromiseTable()) {
    for (const SyscallRule& rule : entry.rules) {
      if (rule.syscall == name && rule.Matches(event.args, event.pid)) {
        out.insert(entry.promise);
        break;
      }
    }
  }
  return out;
}

std::optional<Promise> PromiseAllowing(const SyscallEvent& event) {
  const uint32_t bits = PromisesAllowing(event).bits();
  if (bits == 0) return std::nullopt;
  return static_cast<Promise>(std::countr_zero(bits));
}

namespace {
std::string DescribeEvent(const SyscallEvent& e) {
  std::optional<Arch> arch;
  if (e.audit_arch == AUDIT_ARCH_X86_64) arch = Arch::kX86_64;
  if (e.audit_arch == AUDIT_ARCH_AARCH64) arch = Arch::kAarch64;
  const std::string name = arch.has_value() ? SyscallName(*arch, e.nr)
                                            : absl::StrCat("syscall_", e.nr);
  return absl::StrCat(name, "(", absl::StrJoin(e.args, ", ", [](std::string* out, uint64_t a) {
                        absl::StrAppend(out, "0x", absl::Hex(a));
                      }),
                      ") audit_arch 0x", absl::Hex(e.audit_arch));
}

// True if set `a` is preferable to `b` (same size): it holds the earliest promise in
// which they differ.
bool EarlierInVocabulary(uint32_t a, uint32_t b) {
  const uint32_t diff = a ^ b;
  return diff != 0 && (a & (diff & -diff)) != 0;
}
}  // namespace

absl::StatusOr<PromiseSet> MinimalPromises(absl::Span<const SyscallEvent> events) {
  std::vector<uint32_t> needs;  // one mask of acceptable promises per event
  for (const SyscallEvent& e : events) {
    if (e.nr >= 0 && (e.audit_arch == AUDIT_ARCH_X86_64 || e.audit_arch == AUDIT_ARCH_AARCH64)) {
      const Arch arch = e.audit_arch == AUDIT_ARCH_X86_64 ? Arch::kX86_64 : Arch::kAarch64;
      if (IsEnosysSyscall(SyscallName(arch, e.nr))) continue;
    }
    const uint32_t mask = PromisesAllowing(e).bits();
    if (mask == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("no promise allows ", DescribeEvent(e)));
    }
    needs.push_back(mask);
  }
  // Events with a single acceptable promise force it.
  uint32_t forced = 0;
  for (uint32_t m : needs) {
    if (std::has_single_bit(m)) forced |= m;
  }
  std::vector<uint32_t> open;
  uint32_t relevant = 0;
  for (uint32_t m : needs) {
    if ((m & forced) != 0) continue;
    bool dup = false;
    for (uint32_t o : open) dup |= (o == m);
    if (!dup) open.push_back(m);
    relevant |= m;
  }
  // Exact search over the subsets of the promises that still matter.
  uint32_t best = relevant;
  for (uint32_t sub = relevant;; sub = (sub - 1) & relevant) {
    bool covers = true;
    for (uint32_t m : open) {
      if ((m & sub) == 0) {
        covers = false;
        break;
      }
    }
    if (covers) {
      const int n = std::popcount(sub), best_n = std::popcount(best);
      if (n < best_n || (n == best_n && EarlierInVocabulary(sub, best))) best = sub;
    }
    if (sub == 0) break;
  }
  return PromiseSet::FromBits(forced | best);
}

}  // namespace vow
