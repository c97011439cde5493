#include "broker/elf_headers.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace vow {

bool ProgramHeaders(int fd, std::vector<Elf64_Phdr>* out) {
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof(eh), 0) != static_cast<ssize_t>(sizeof(eh))) return false;
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256) {
    return false;
  }
  out->resize(eh.e_phnum);
  const ssize_t bytes = static_cast<ssize_t>(eh.e_phnum * sizeof(Elf64_Phdr));
  return pread(fd, out->data(), static_cast<size_t>(bytes), static_cast<off_t>(eh.e_phoff)) ==
         bytes;
}

std::string ElfInterpreter(int fd) {
  std::vector<Elf64_Phdr> headers;
  if (!ProgramHeaders(fd, &headers)) return "";
  for (const Elf64_Phdr& ph : headers) {
    if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > PATH_MAX) continue;
    std::string path(ph.p_filesz, '\0');
    if (pread(fd, path.data(), ph.p_filesz, static_cast<off_t>(ph.p_offset)) !=
        static_cast<ssize_t>(ph.p_filesz)) {
      return "";
    }
    path.resize(strnlen(path.c_str(), path.size()));
    return path.empty() || path[0] != '/' ? "" : path;
  }
  return "";
}

bool ElfWantsExecutableStack(int fd) {
  std::vector<Elf64_Phdr> headers;
  if (!ProgramHeaders(fd, &headers)) return false;
  for (const Elf64_Phdr& ph : headers) {
    if (ph.p_type == PT_GNU_STACK) return (ph.p_flags & PF_X) != 0;
  }
  return false;
}

bool ExecWantsExecutableStack(const std::string& path) {
  std::string image = path;
  for (int depth = 0; depth < 5; ++depth) {
    UniqueFd fd(open(image.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) return false;
    char line[PATH_MAX + 3] = {};
    const ssize_t n = pread(fd.get(), line, sizeof(line) - 1, 0);
    if (n < 2 || line[0] != '#' || line[1] != '!') return ElfWantsExecutableStack(fd.get());
    // "#!" [blanks] interpreter [blank arg]: the kernel runs the interpreter.
    const char* p = line + 2;
    while (*p == ' ' || *p == '\t') ++p;
    const char* end = p;
    while (*end != '\0' && *end != ' ' && *end != '\t' && *end != '\n') ++end;
    if (end == p) return false;
    image.assign(p, end);
  }
  return false;
}

}  // namespace vow
