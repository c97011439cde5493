#include "broker/elf_headers.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <optional>
#include <vector>

#include "base/unique_fd.h"
#include "broker/script.h"

namespace vow {

ElfInfo ReadElfInfo(int fd) {
  ElfInfo info;
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof(eh), 0) != static_cast<ssize_t>(sizeof(eh))) return info;
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256) {
    return info;
  }
  std::vector<Elf64_Phdr> headers(eh.e_phnum);
  const ssize_t bytes = static_cast<ssize_t>(eh.e_phnum * sizeof(Elf64_Phdr));
  if (pread(fd, headers.data(), static_cast<size_t>(bytes), static_cast<off_t>(eh.e_phoff)) !=
      bytes) {
    return info;
  }
  bool seen_interp = false;  // the kernel takes the first PT_INTERP
  for (const Elf64_Phdr& ph : headers) {
    if (ph.p_type == PT_GNU_STACK) info.executable_stack = (ph.p_flags & PF_X) != 0;
    if (ph.p_type != PT_INTERP || seen_interp) continue;
    seen_interp = true;
    if (ph.p_filesz == 0 || ph.p_filesz > PATH_MAX) continue;
    std::string path(ph.p_filesz, '\0');
    if (pread(fd, path.data(), ph.p_filesz, static_cast<off_t>(ph.p_offset)) !=
        static_cast<ssize_t>(ph.p_filesz)) {
      continue;
    }
    path.resize(strnlen(path.c_str(), path.size()));
    if (!path.empty() && path[0] == '/') info.interpreter = path;
  }
  return info;
}

absl::StatusOr<bool> ExecWantsExecutableStack(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return false;
  absl::StatusOr<std::optional<Shebang>> shebang = ReadShebang(fd.get());
  if (!shebang.ok()) return shebang.status();
  return ReadElfInfo(shebang->has_value() ? (*shebang)->interpreter_fd.get() : fd.get())
      .executable_stack;
}

}  // namespace vow
