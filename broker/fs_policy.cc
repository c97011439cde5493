#include "broker/fs_policy.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "broker/audit_log.h"
#include "broker/open_flags.h"

namespace vow {
namespace {

constexpr uint32_t kKernelLargefile = kKernelOLargefile;
constexpr uint32_t kTmpfileBit = kOTmpfileBit;

constexpr uint32_t kAllowedOpenFlags = O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND |
                                       O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_DIRECTORY |
                                       O_NOCTTY | kKernelLargefile | O_DSYNC | O_SYNC |
                                       O_PATH | O_TMPFILE;

// With O_PATH the kernel ignores (open) or refuses (openat2) everything else.
constexpr uint32_t kPathCompatibleFlags = O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW |
                                          kKernelLargefile;

std::string RuleName(size_t index, const PathRule& rule) {
  return absl::StrCat("path rule ", index, " \"", AuditLog::EscapeBytes(rule.path), "\"");
}

std::string Letters(const PathRule& rule) {
  std::string s;
  if (rule.read) s += 'r';
  if (rule.write) s += 'w';
  if (rule.exec) s += 'x';
  if (rule.create) s += 'c';
  return s;
}

absl::Status Refuse(int err, absl::string_view why) { return ErrnoStatus(err, why); }

// Names of flag bits that are not an access mode ("O_NOATIME|0x40000000").
std::string DescribeBits(uint32_t bits) {
  std::string s = AuditLog::DescribeOpenFlags(bits & ~static_cast<uint32_t>(O_ACCMODE));
  constexpr absl::string_view kPrefix = "O_RDONLY|";
  return absl::StartsWith(s, kPrefix) ? s.substr(kPrefix.size()) : s;
}

// The flags alone (no rule yet): EINVAL for anything FsPolicy never does.
absl::Status CheckFlagSyntax(uint32_t flags) {
  uint32_t unknown = flags & ~kAllowedOpenFlags;
  if (unknown != 0) {
    return Refuse(EINVAL, absl::StrCat("open flags not supported by the broker: ",
                                       DescribeBits(unknown)));
  }
  uint32_t acc = flags & O_ACCMODE;
  if (acc == O_ACCMODE) return Refuse(EINVAL, "invalid access mode 3 in open flags");
  if ((flags & O_PATH) != 0) {
    if ((flags & ~kPathCompatibleFlags) != 0) {
      return Refuse(EINVAL, absl::StrCat("O_PATH combined with ",
                                         DescribeBits(flags & ~kPathCompatibleFlags)));
    }
  }
  if ((flags & kTmpfileBit) != 0) {
    if ((flags & O_TMPFILE) != O_TMPFILE) {
      return Refuse(EINVAL, "__O_TMPFILE without O_DIRECTORY");
    }
    if (acc == O_RDONLY) return Refuse(EINVAL, "O_TMPFILE needs O_WRONLY or O_RDWR");
  }
  return absl::OkStatus();
}

// The rule's letters against what the flags do. EACCES naming the missing letter.
absl::Status CheckPermissions(size_t index, const PathRule& rule, uint32_t flags) {
  const uint32_t acc = flags & O_ACCMODE;
  const bool path_only = (flags & O_PATH) != 0;
  const bool tmpfile = (flags & kTmpfileBit) != 0;
  struct Need {
    bool needed;
    bool granted;
    char letter;
    const char* because;
  };
  const Need needs[] = {
      {path_only, rule.exec, 'x', "O_PATH"},
      {!path_only && (acc == O_RDONLY || acc == O_RDWR), rule.read, 'r', "reading"},
      {acc == O_WRONLY || acc == O_RDWR, rule.write, 'w', "writing"},
      {(flags & O_TRUNC) != 0, rule.write, 'w', "O_TRUNC"},
      {(flags & O_APPEND) != 0, rule.write, 'w', "O_APPEND"},
      {(flags & O_CREAT) != 0, rule.create, 'c', "O_CREAT"},
      {tmpfile, rule.create, 'c', "O_TMPFILE"},
      {tmpfile, rule.write, 'w', "O_TMPFILE"},
  };
  for (const Need& n : needs) {
    if (n.needed && !n.granted) {
      return Refuse(EACCES, absl::StrCat(n.because, " needs '", std::string(1, n.letter),
                                         "', which ", RuleName(index, rule), " (",
                                         Letters(rule), ") does not grant"));
    }
  }
  return absl::OkStatus();
}

// "/a/b" is `prefix` of "/a/b" and "/a/b/c" but not of "/a/bc"; "/" is of everything.
bool IsPathPrefix(absl::string_view prefix, absl::string_view path) {
  if (prefix == "/") return absl::StartsWith(path, "/");
  if (!absl::StartsWith(path, prefix)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

// The path of an open fd, as the kernel reports it in /proc/self/fd (with " (deleted)"
// removed). Only for the nested-rule re-check.
absl::StatusOr<std::string> FdPath(int fd) {
  std::string link = absl::StrCat("/proc/self/fd/", fd);
  std::unique_ptr<char[]> buf(new char[PATH_MAX + 1]);
  ssize_t n = readlink(link.c_str(), buf.get(), PATH_MAX + 1);
  if (n < 0) return ErrnoStatus(errno, "readlink /proc/self/fd");
  if (n > PATH_MAX) return ErrnoStatus(ENAMETOOLONG, "readlink /proc/self/fd");
  std::string path(buf.get(), static_cast<size_t>(n));
  constexpr absl::string_view kDeleted = " (deleted)";
  if (absl::EndsWith(path, kDeleted)) path.resize(path.size() - kDeleted.size());
  if (path.empty() || path[0] != '/') {
    return ErrnoStatus(EACCES, "the opened file has no path in the broker's namespace");
  }
  return path;
}

absl::StatusOr<std::string> RealPath(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return ErrnoStatus(errno, "realpath");
  std::string out(real);
  free(real);
  return out;
}

}  // namespace

uint32_t AllowedOpenFlags() { return kAllowedOpenFlags; }

const char FsPolicy::kNoRule[] = "no rule covers the path";

absl::Status CheckRulePathSyntax(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("the path is empty");
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("the path contains a NUL byte");
  }
  if (path.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("the path is longer than ", PATH_MAX - 1,
                                                   " bytes"));
  }
  if (path[0] != '/') return absl::InvalidArgumentError("the path is not absolute");
  if (path == "/") return absl::OkStatus();
  if (path.back() == '/') {
    return absl::InvalidArgumentError("the path is not normalized (trailing slash)");
  }
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty()) return absl::InvalidArgumentError("the path is not normalized ('//')");
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("the path is not normalized ('", part, "' component)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<FsPolicy> FsPolicy::Create(const std::vector<PathRule>& rules) {
  FsPolicy policy;
  std::set<std::string> seen;
  for (size_t i = 0; i < rules.size(); ++i) {
    const PathRule& r = rules[i];
    absl::Status syntax = CheckRulePathSyntax(r.path);
    if (!syntax.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(RuleName(i, r), ": ", syntax.message()));
    }
    if (!seen.insert(r.path).second) {
      return absl::InvalidArgumentError(absl::StrCat(RuleName(i, r), ": duplicate rule"));
    }

    Rule rule;
    rule.rule = r;
    // Keeps the errno (ErrnoOf) of `s`, and names the rule.
    auto fail = [&](const absl::Status& s, absl::string_view why) {
      const int err = ErrnoOf(s);
      const std::string what = absl::StrCat(RuleName(i, r), ": ", why);
      return err != 0 ? ErrnoStatus(err, what)
                      : absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
    };
    struct stat st;
    absl::StatusOr<long> stat_rc = Syscall("stat", [&] { return stat(r.path.c_str(), &st); });
    std::string real;
    if (!r.read && !r.write && !r.exec && !r.create) {
      // A deny rule: nothing is ever opened beneath it (permissions are checked before any
      // open), so it holds no fd and need not exist. Where it exists, its real path is
      // what the nested-rule re-check matches against.
      absl::StatusOr<std::string> real_or =
          stat_rc.ok() ? RealPath(r.path) : absl::StatusOr<std::string>(r.path);
      rule.real_path = real_or.ok() ? *real_or : r.path;
      rule.is_dir = true;
      policy.rules_.push_back(std::move(rule));
      continue;
    }
    if (!stat_rc.ok()) {
      if (ErrnoOf(stat_rc.status()) != ENOENT || !r.create) {
        return fail(stat_rc.status(), "does not exist or cannot be reached");
      }
      // A file the worker may create. Its parent must exist.
      size_t slash = r.path.rfind('/');
      std::string parent = slash == 0 ? "/" : r.path.substr(0, slash);
      absl::StatusOr<std::string> real_parent = RealPath(parent);
      if (!real_parent.ok()) return fail(real_parent.status(), "its parent does not exist");
      real = *real_parent == "/" ? absl::StrCat("/", r.path.substr(slash + 1))
                                 : absl::StrCat(*real_parent, r.path.substr(slash));
      rule.is_dir = false;
    } else {
      absl::StatusOr<std::string> real_or = RealPath(r.path);
      if (!real_or.ok()) return fail(real_or.status(), "cannot be resolved");
      real = *std::move(real_or);
      rule.is_dir = S_ISDIR(st.st_mode);
    }
    if (rule.is_dir) {
      absl::StatusOr<long> fd = Syscall("open", [&] {
        return open(real.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      });
      if (!fd.ok()) return fail(fd.status(), "cannot be opened");
      rule.dir.reset(static_cast<int>(*fd));
    } else {
      size_t slash = real.rfind('/');
      std::string parent = slash == 0 ? "/" : real.substr(0, slash);
      rule.name = real.substr(slash + 1);
      absl::StatusOr<long> fd = Syscall("open", [&] {
        return open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      });
      if (!fd.ok()) return fail(fd.status(), "its parent directory cannot be opened");
      rule.dir.reset(static_cast<int>(*fd));
    }
    rule.real_path = std::move(real);
    policy.rules_.push_back(std::move(rule));
  }
  for (Rule& a : policy.rules_) {
    if (!a.is_dir) continue;
    for (const Rule& b : policy.rules_) {
      if (&a == &b || b.real_path == a.real_path || !IsPathPrefix(a.real_path, b.real_path)) {
        continue;
      }
      const bool superset = (b.rule.read || !a.rule.read) && (b.rule.write || !a.rule.write) &&
                            (b.rule.exec || !a.rule.exec) && (b.rule.create || !a.rule.create);
      if (!superset) a.nested_narrower = true;
    }
  }
  return policy;
}

const FsPolicy::Rule* FsPolicy::Match(absl::string_view normalized) const {
  const Rule* best = nullptr;
  for (const Rule& r : rules_) {
    const std::string& p = r.rule.path;
    bool match = r.is_dir ? IsPathPrefix(p, normalized) : normalized == p;
    if (match && (best == nullptr || p.size() > best->rule.path.size())) best = &r;
  }
  return best;
}

const FsPolicy::Rule* FsPolicy::MatchReal(absl::string_view real) const {
  const Rule* best = nullptr;
  for (const Rule& r : rules_) {
    const std::string& p = r.real_path;
    bool match = r.is_dir ? IsPathPrefix(p, real) : real == p;
    if (match && (best == nullptr || p.size() > best->real_path.size())) best = &r;
  }
  return best;
}

absl::StatusOr<FsPolicy::Target> FsPolicy::Resolve(absl::string_view path) const {
  if (path.size() >= PATH_MAX) {
    return Refuse(ENAMETOOLONG, absl::StrCat("the path is ", path.size(),
                                             " bytes long (the limit is ", PATH_MAX - 1, ")"));
  }
  if (path.find('\0') != absl::string_view::npos) {
    return Refuse(EINVAL, "the path contains a NUL byte");
  }
  if (path.empty()) return Refuse(EINVAL, "the path is empty");
  if (path[0] != '/') return Refuse(EINVAL, "the path is not absolute");

  // Normalize: drop empty and `.` components, refuse `..`.
  std::string normalized;
  normalized.reserve(path.size());
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return Refuse(EACCES, "the path has a '..' component");
    normalized += '/';
    normalized.append(part.data(), part.size());
  }
  if (normalized.empty()) normalized = "/";
  // "/a/b/" and "/a/b/." both mean "b, which must be a directory".
  const bool trailing = path.back() == '/' || absl::EndsWith(path, "/.");

  Target target;
  target.normalized = normalized;
  target.rule = Match(normalized);
  if (target.rule == nullptr) return Refuse(EACCES, kNoRule);
  target.index = static_cast<size_t>(target.rule - rules_.data());
  if (target.rule->is_dir) {
    const std::string& p = target.rule->rule.path;
    size_t skip = p == "/" ? 1 : p.size() + 1;
    target.rest = normalized.size() > skip ? normalized.substr(skip) : std::string(".");
  } else {
    target.rest = target.rule->name;
  }
  if (trailing && target.rest != ".") target.rest += '/';
  return target;
}

bool FsPolicy::Covers(absl::string_view path) const {
  absl::StatusOr<Target> target = Resolve(path);
  // A refusal other than "no rule" ('..', a NUL, too long) is the rules' to give.
  return target.ok() || !absl::StartsWith(target.status().message(), kNoRule);
}

absl::StatusOr<PathRule> FsPolicy::RuleFor(absl::string_view path) const {
  ASSIGN_OR_RETURN(Target target, Resolve(path));
  return target.rule->rule;
}

absl::StatusOr<FsPolicy::Lookup> FsPolicy::LookupPath(absl::string_view path,
                                                      bool follow_final,
                                                      const OpenContext& context) const {
  (void)context;
  ASSIGN_OR_RETURN(Target target, Resolve(path));
  const Rule* rule = target.rule;
  const PathRule& r = rule->rule;
  if (!r.read && !r.write && !r.exec && !r.create) {
    return Refuse(EACCES, absl::StrCat(RuleName(target.index, r), " denies the path"));
  }
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC | (follow_final ? 0 : O_NOFOLLOW);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  if (!rule->is_dir) how.resolve |= RESOLVE_NO_SYMLINKS;
  absl::StatusOr<long> rc = Syscall("openat2", [&] {
    return syscall(SYS_openat2, rule->dir.get(), target.rest.c_str(), &how, sizeof(how));
  });
  if (!rc.ok()) {
    int err = ErrnoOf(rc.status());
    if (err == EXDEV) {
      return Refuse(EACCES, absl::StrCat("the path escapes ", RuleName(target.index, r),
                                         " ('..' or a symlink leading out; openat2: EXDEV)"));
    }
    return Refuse(err, absl::StrCat("openat2(O_PATH) beneath ", RuleName(target.index, r)));
  }
  Lookup out;
  out.fd.reset(static_cast<int>(*rc));
  out.rule = r;
  if (rule->nested_narrower) {
    absl::StatusOr<std::string> real = FdPath(out.fd.get());
    if (!real.ok()) {
      return Refuse(EACCES, absl::StrCat("cannot verify where the path led: ",
                                         real.status().message()));
    }
    const Rule* landed = MatchReal(*real);
    if (landed == nullptr) return Refuse(EACCES, "the path led to a file that no rule covers");
    const PathRule& lr = landed->rule;
    if (!lr.read && !lr.write && !lr.exec && !lr.create) {
      return Refuse(EACCES,
                    absl::StrCat("the path led beneath ",
                                 RuleName(static_cast<size_t>(landed - rules_.data()), lr),
                                 ", which denies it"));
    }
    out.rule = lr;
  }
  return out;
}

absl::StatusOr<UniqueFd> FsPolicy::Open(absl::string_view path, uint32_t flags, uint32_t mode,
                                        const OpenContext& context) const {
  (void)context;
  RETURN_IF_ERROR(CheckFlagSyntax(flags));
  ASSIGN_OR_RETURN(Target target, Resolve(path));
  const Rule* rule = target.rule;
  const size_t index = target.index;
  RETURN_IF_ERROR(CheckPermissions(index, rule->rule, flags));
  const std::string& rest = target.rest;

  const bool path_only = (flags & O_PATH) != 0;
  const bool creating = (flags & (O_CREAT | kTmpfileBit)) != 0;
  struct open_how how = {};
  how.flags = path_only ? (flags & ~kKernelLargefile) | O_CLOEXEC
                        : flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.mode = creating ? (mode & 0777) : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  // A file rule's name must not be a symlink to a sibling. Beneath a rule with a narrower
  // rule nested in it, an open with a side effect (create, truncate) may not follow any
  // symlink, since the re-check below comes after the side effect: without symlinks
  // (and `..`) the textual match above already found the rule of the real location.
  if (!rule->is_dir || (rule->nested_narrower && (flags & (O_CREAT | O_TRUNC | kTmpfileBit)))) {
    how.resolve |= RESOLVE_NO_SYMLINKS;
  }

  absl::StatusOr<long> rc = Syscall("openat2", [&] {
    return syscall(SYS_openat2, rule->dir.get(), rest.c_str(), &how, sizeof(how));
  });
  if (!rc.ok()) {
    int err = ErrnoOf(rc.status());
    if (err == EXDEV) {
      return Refuse(EACCES, absl::StrCat("the path escapes ", RuleName(index, rule->rule),
                                         " ('..' or a symlink leading out; openat2: EXDEV)"));
    }
    if (err == ELOOP && (how.resolve & RESOLVE_NO_SYMLINKS) != 0) {
      return Refuse(ELOOP, absl::StrCat("openat2 beneath ", RuleName(index, rule->rule),
                                        " without following symlinks (a file rule, or a "
                                        "create/truncate beneath a narrower nested rule)"));
    }
    return Refuse(err, absl::StrCat("openat2 beneath ", RuleName(index, rule->rule)));
  }
  UniqueFd fd(static_cast<int>(*rc));

  struct stat st;
  RETURN_IF_ERROR(Syscall("fstat", [&] { return fstat(fd.get(), &st); }).status());
  if (S_ISDIR(st.st_mode) && (flags & O_DIRECTORY) == 0) {
    return Refuse(EISDIR, "the path is a directory and O_DIRECTORY was not asked for");
  }

  if (rule->nested_narrower) {
    absl::StatusOr<std::string> real = FdPath(fd.get());
    if (!real.ok()) {
      return Refuse(EACCES, absl::StrCat("cannot verify where the path led: ",
                                         real.status().message()));
    }
    const Rule* landed = MatchReal(*real);
    if (landed == nullptr) {
      return Refuse(EACCES, "the path led to a file that no rule covers");
    }
    if (landed != rule) {
      absl::Status again = CheckPermissions(static_cast<size_t>(landed - rules_.data()),
                                            landed->rule, flags);
      if (!again.ok()) {
        return Refuse(EACCES, absl::StrCat("the path led beneath a more specific rule: ",
                                           again.message()));
      }
    }
  }

  if (!path_only && (flags & O_NONBLOCK) == 0) {
    // F_SETFL changes only O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT and O_NOATIME (the last
    // three are refused above), so one call restores what the worker asked for: its
    // O_APPEND, and no O_NONBLOCK. (Saves an F_GETFL on every open.)
    RETURN_IF_ERROR(Syscall("fcntl(F_SETFL)", [&] {
                      return fcntl(fd.get(), F_SETFL, static_cast<int>(flags & O_APPEND));
                    }).status());
  }
  return fd;
}

}  // namespace vow
