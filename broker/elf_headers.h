// What the broker reads of a program file it lets the kernel execute: its ELF program
// headers (the loader it names, the stack it asks for). Trusted files only (the caller's
// program, or an `x` rule's file opened by the broker), never worker bytes.
#ifndef VOW_BROKER_ELF_HEADERS_H_
#define VOW_BROKER_ELF_HEADERS_H_

#include <elf.h>

#include <string>
#include <vector>

namespace vow {

// The program headers of a 64-bit ELF file of this machine, or false for anything else.
bool ProgramHeaders(int fd, std::vector<Elf64_Phdr>* out);
// The dynamic loader an ELF program names (PT_INTERP), or "" for a static program or
// something that is not a 64-bit ELF file of this machine.
std::string ElfInterpreter(int fd);
// True when an ELF program's PT_GNU_STACK asks for an executable stack (PF_X), which the
// kernel grants at execve whatever the filter says (on x86-64 and aarch64 a program
// without PT_GNU_STACK gets a non-executable one).
bool ElfWantsExecutableStack(int fd);
// For a path the kernel would execute: whether the image it runs (the file, or the
// interpreter of its #! line, up to 4 deep as the kernel follows them) asks for an
// executable stack. False when a file cannot be opened (the execve then fails there).
bool ExecWantsExecutableStack(const std::string& path);

}  // namespace vow

#endif  // VOW_BROKER_ELF_HEADERS_H_
