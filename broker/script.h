// Broker side (trusted input only): the `#!` line of a program the broker is about to
// run. Reads the program file the broker's caller chose (never worker bytes) and the
// interpreter it names, so that the broker can run the interpreter by fd itself instead
// of letting the kernel's binfmt_script look the interpreter up in the worker's empty
// root (where it does not exist) and hand it "/dev/fd/N" (an fd that is close-on-exec).
//
// Rules, stricter than the kernel's: the `#!` line must end within the first
// kMaxShebangLine bytes; the interpreter must be an absolute path naming a regular file
// with an execute bit, and must not itself be a `#!` script (one level only); at most
// one argument follows it (the rest of the line, trimmed, as the kernel does).
#ifndef VOW_BROKER_SCRIPT_H_
#define VOW_BROKER_SCRIPT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace vow {

// The kernel's BINPRM_BUF_SIZE: how much of a script it reads for the `#!` line.
inline constexpr size_t kMaxShebangLine = 256;

struct Shebang {
  std::string interpreter;        // absolute path, as written on the line
  std::optional<std::string> arg; // the optional single argument
  UniqueFd interpreter_fd;        // O_RDONLY|O_CLOEXEC, a checked regular executable file
};

// Reads the start of `program_fd` (positioned reads; the offset is not moved). Returns
// nullopt when the file does not start with "#!" (an ELF program or anything else the
// kernel will judge), the resolved interpreter when it does, and an error saying what is
// wrong with the `#!` line or its interpreter otherwise ("its #! interpreter ...": the
// caller names the program).
absl::StatusOr<std::optional<Shebang>> ReadShebang(int program_fd);

}  // namespace vow

#endif  // VOW_BROKER_SCRIPT_H_
