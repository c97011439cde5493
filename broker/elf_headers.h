// What the broker reads of a program file it lets the kernel execute: its ELF program
// headers (the loader it names, the stack it asks for). Trusted files only (the caller's
// program, or an `x` rule's file opened by the broker), never worker bytes.
#ifndef VOW_BROKER_ELF_HEADERS_H_
#define VOW_BROKER_ELF_HEADERS_H_

#include <string>

#include "absl/status/statusor.h"

namespace vow {

struct ElfInfo {
  // The dynamic loader it names (PT_INTERP), or "" for a static program or something that
  // is not a 64-bit ELF file of this machine.
  std::string interpreter;
  // Its PT_GNU_STACK asks for an executable stack (PF_X), which the kernel grants at
  // execve whatever the filter says (on x86-64 and aarch64 a program without
  // PT_GNU_STACK gets a non-executable one).
  bool executable_stack = false;
};
// One read of the program headers (positioned reads; the offset is not moved).
ElfInfo ReadElfInfo(int fd);

// For a path the kernel would execute: whether the image it runs (the file, or the
// interpreter of its #! line, read as SpawnExec reads it: ReadShebang, one level) asks
// for an executable stack. False when the file cannot be opened (the execve then fails
// there); an error when its #! line is one SpawnExec would refuse.
absl::StatusOr<bool> ExecWantsExecutableStack(const std::string& path);

}  // namespace vow

#endif  // VOW_BROKER_ELF_HEADERS_H_
