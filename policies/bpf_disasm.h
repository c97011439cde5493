// A disassembler for classic seccomp-BPF programs, one instruction per line, for the
// golden files of the compiled programs (policies/bpf_golden_test.cc) and for humans.
// Trusted side, pure; any instruction it does not know is printed by its raw fields.
//
// Line format: "NNNN: <op> <operand>" with jump targets as absolute instruction indexes
// ("jeq #0xc000003e -> 0003 : 0041"), loads of seccomp_data by field name ("ld [nr]",
// "ld [args[1].hi]"), and returns by SECCOMP_RET_* action ("ret ERRNO(38)").
#ifndef VOW_POLICIES_BPF_DISASM_H_
#define VOW_POLICIES_BPF_DISASM_H_

#include <linux/filter.h>

#include <string>

#include "absl/types/span.h"

namespace vow {

// One line (without a newline) for instruction `index` of a program.
std::string DisassembleInstruction(const sock_filter& insn, size_t index);

// The whole program, one line per instruction, each ending in '\n'.
std::string DisassembleBpf(absl::Span<const sock_filter> program);

}  // namespace vow

#endif  // VOW_POLICIES_BPF_DISASM_H_
