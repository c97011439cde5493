#include "broker/script.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/syscall.h"

namespace vow {

absl::StatusOr<std::optional<Shebang>> ReadShebang(int program_fd) {
  char buf[kMaxShebangLine];
  ssize_t n = pread(program_fd, buf, sizeof(buf), 0);
  if (n < 0) return ErrnoStatus(errno, "reading the program");
  if (n < 2 || buf[0] != '#' || buf[1] != '!') return std::nullopt;
  const std::string head(buf, static_cast<size_t>(n));
  const size_t eol = head.find('\n');
  if (eol == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "its #! line does not end within its first ", kMaxShebangLine, " bytes"));
  }
  const std::string line = head.substr(2, eol - 2);
  if (line.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("a NUL byte in its #! line");
  }
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  size_t i = 0;
  while (i < line.size() && blank(line[i])) ++i;
  size_t j = i;
  while (j < line.size() && !blank(line[j])) ++j;
  Shebang s;
  s.interpreter = line.substr(i, j - i);
  while (j < line.size() && blank(line[j])) ++j;
  size_t end = line.size();
  while (end > j && (blank(line[end - 1]) || line[end - 1] == '\r')) --end;
  if (end > j) s.arg = line.substr(j, end - j);
  if (!s.interpreter.empty() && s.interpreter.back() == '\r' && !s.arg.has_value()) {
    s.interpreter.pop_back();  // a CRLF line with no argument
  }
  if (s.interpreter.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("its #! line names no interpreter"));
  }
  if (s.interpreter[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("its #! interpreter \"", s.interpreter,
                     "\" is not an absolute path"));
  }
  s.interpreter_fd.reset(open(s.interpreter.c_str(), O_RDONLY | O_CLOEXEC));
  if (!s.interpreter_fd.valid()) {
    return ErrnoStatus(errno, absl::StrCat("its #! interpreter ", s.interpreter));
  }
  struct stat st;
  if (fstat(s.interpreter_fd.get(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("fstat of its #! interpreter ", s.interpreter));
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("its #! interpreter ", s.interpreter,
                     " is not an executable regular file"));
  }
  char magic[2];
  if (pread(s.interpreter_fd.get(), magic, sizeof(magic), 0) == 2 && magic[0] == '#' &&
      magic[1] == '!') {
    return absl::PermissionDeniedError(
        absl::StrCat("its #! interpreter ", s.interpreter,
                     " is itself a #! script (one level only)"));
  }
  return std::optional<Shebang>(std::move(s));
}

}  // namespace vow
