#include "policies/bpf_disasm.h"

#include <linux/seccomp.h>
#include <stddef.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vow {
namespace {

// The name of a 32-bit word of struct seccomp_data at offset `k`.
std::string DataField(uint32_t k) {
  if (k == offsetof(seccomp_data, nr)) return "nr";
  if (k == offsetof(seccomp_data, arch)) return "arch";
  if (k == offsetof(seccomp_data, instruction_pointer)) return "ip.lo";
  if (k == offsetof(seccomp_data, instruction_pointer) + 4) return "ip.hi";
  const uint32_t args = offsetof(seccomp_data, args);
  if (k >= args && k < args + 6 * 8 && (k - args) % 4 == 0) {
    // Little-endian word order (x86-64 and aarch64 alike).
    return absl::StrCat("args[", (k - args) / 8, "].", (k - args) % 8 == 0 ? "lo" : "hi");
  }
  return absl::StrFormat("0x%x", k);
}

std::string RetAction(uint32_t k) {
  const uint32_t data = k & SECCOMP_RET_DATA;
  switch (k & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_KILL_PROCESS: return "KILL_PROCESS";
    case SECCOMP_RET_KILL_THREAD: return "KILL_THREAD";
    case SECCOMP_RET_TRAP: return absl::StrCat("TRAP(", data, ")");
    case SECCOMP_RET_ERRNO: return absl::StrCat("ERRNO(", data, ")");
    case SECCOMP_RET_USER_NOTIF: return "USER_NOTIF";
    case SECCOMP_RET_TRACE: return absl::StrCat("TRACE(", data, ")");
    case SECCOMP_RET_LOG: return "LOG";
    case SECCOMP_RET_ALLOW: return "ALLOW";
  }
  return absl::StrFormat("#0x%08x", k);
}

std::string Target(size_t index, uint32_t offset) {
  return absl::StrFormat("%04d", index + 1 + offset);
}

}  // namespace

std::string DisassembleInstruction(const sock_filter& insn, size_t index) {
  const uint16_t code = insn.code;
  const uint32_t k = insn.k;
  std::string op;
  switch (BPF_CLASS(code)) {
    case BPF_LD:
      if (BPF_MODE(code) == BPF_ABS && BPF_SIZE(code) == BPF_W) {
        op = absl::StrCat("ld [", DataField(k), "]");
      } else if (BPF_MODE(code) == BPF_IMM) {
        op = absl::StrFormat("ld #0x%x", k);
      } else if (BPF_MODE(code) == BPF_MEM) {
        op = absl::StrCat("ld M[", k, "]");
      } else if (BPF_MODE(code) == BPF_LEN) {
        op = "ld #len";
      }
      break;
    case BPF_LDX:
      if (BPF_MODE(code) == BPF_MEM) op = absl::StrCat("ldx M[", k, "]");
      if (BPF_MODE(code) == BPF_IMM) op = absl::StrFormat("ldx #0x%x", k);
      break;
    case BPF_ST:
      op = absl::StrCat("st M[", k, "]");
      break;
    case BPF_STX:
      op = absl::StrCat("stx M[", k, "]");
      break;
    case BPF_ALU: {
      const char* name = nullptr;
      switch (BPF_OP(code)) {
        case BPF_ADD: name = "add"; break;
        case BPF_SUB: name = "sub"; break;
        case BPF_MUL: name = "mul"; break;
        case BPF_DIV: name = "div"; break;
        case BPF_OR: name = "or"; break;
        case BPF_AND: name = "and"; break;
        case BPF_LSH: name = "lsh"; break;
        case BPF_RSH: name = "rsh"; break;
        case BPF_NEG: name = "neg"; break;
        case BPF_MOD: name = "mod"; break;
        case BPF_XOR: name = "xor"; break;
      }
      if (name != nullptr) {
        op = BPF_OP(code) == BPF_NEG ? std::string(name)
             : BPF_SRC(code) == BPF_X ? absl::StrCat(name, " x")
                                      : absl::StrFormat("%s #0x%x", name, k);
      }
      break;
    }
    case BPF_JMP: {
      if (BPF_OP(code) == BPF_JA) {
        op = absl::StrCat("ja ", Target(index, k));
        break;
      }
      const char* name = nullptr;
      switch (BPF_OP(code)) {
        case BPF_JEQ: name = "jeq"; break;
        case BPF_JGT: name = "jgt"; break;
        case BPF_JGE: name = "jge"; break;
        case BPF_JSET: name = "jset"; break;
      }
      if (name != nullptr) {
        std::string operand = BPF_SRC(code) == BPF_X ? "x" : absl::StrFormat("#0x%x", k);
        op = absl::StrCat(name, " ", operand, " -> ", Target(index, insn.jt), " : ",
                          Target(index, insn.jf));
      }
      break;
    }
    case BPF_RET:
      op = BPF_RVAL(code) == BPF_K ? absl::StrCat("ret ", RetAction(k))
           : BPF_RVAL(code) == BPF_A ? std::string("ret a")
                                     : std::string("ret x");
      break;
    case BPF_MISC:
      op = BPF_MISCOP(code) == BPF_TAX ? "tax" : "txa";
      break;
  }
  if (op.empty()) {
    op = absl::StrFormat("code=0x%04x jt=%d jf=%d k=0x%x", code, insn.jt, insn.jf, k);
  }
  return absl::StrFormat("%04d: %s", index, op);
}

std::string DisassembleBpf(absl::Span<const sock_filter> program) {
  std::string out;
  for (size_t i = 0; i < program.size(); ++i) {
    absl::StrAppend(&out, DisassembleInstruction(program[i], i), "\n");
  }
  return out;
}

}  // namespace vow
