#include "broker/fs_policy.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
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

// File systems whose files are views of the kernel or of processes rather than stored
// data; reachable only through a rule that lies on the same file system.
struct PseudoFs {
  int64_t magic;
  const char* name;
};
constexpr PseudoFs kPseudoFs[] = {
    {PROC_SUPER_MAGIC, "proc"},
    {SYSFS_MAGIC, "sysfs"},
    {DEBUGFS_MAGIC, "debugfs"},
    {TRACEFS_MAGIC, "tracefs"},
    {SECURITYFS_MAGIC, "securityfs"},
    {CGROUP_SUPER_MAGIC, "cgroup"},
    {CGROUP2_SUPER_MAGIC, "cgroup2"},
    {BPF_FS_MAGIC, "bpf"},
    {0x62656570, "configfs"},
    {PSTOREFS_MAGIC, "pstore"},
    {EFIVARFS_MAGIC, "efivarfs"},
    {SELINUX_MAGIC, "selinuxfs"},
    {SMACK_MAGIC, "smackfs"},
    {0x42494e4d, "binfmt_misc"},
    {0x65735543, "fusectl"},
    {NSFS_MAGIC, "nsfs"},
    {0x19800202, "mqueue"},
};

const char* PseudoFsName(int64_t magic) {
  for (const PseudoFs& fs : kPseudoFs) {
    if (fs.magic == magic) return fs.name;
  }
  return nullptr;
}

bool IsNumber(absl::string_view s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Beneath the root of a proc mount: rewrites the first component of `rest` so that it
// names the worker, or refuses. `rest` is relative ("." for /proc itself).
absl::Status RewriteProcRest(std::string& rest, const OpenContext& context) {
  const size_t slash = rest.find('/');
  const std::string first = rest.substr(0, slash);
  const std::string tail = slash == std::string::npos ? "" : rest.substr(slash);
  const bool names_self = first == "self" || first == "thread-self" || first == "net" ||
                          first == "mounts" || IsNumber(first);
  if (!names_self) return absl::OkStatus();
  if (context.pid <= 0) {
    return Refuse(EACCES, absl::StrCat("/proc/", first,
                                       " names a process, and the broker was not told which "
                                       "worker asks"));
  }
  if (first == "self" || first == "net" || first == "mounts") {
    rest = absl::StrCat(context.pid, first == "self" ? "" : "/" + first, tail);
  } else if (first == "thread-self") {
    if (context.tid <= 0) {
      return Refuse(EACCES, "/proc/thread-self: the broker was not told the worker's thread");
    }
    rest = absl::StrCat(context.pid, "/task/", context.tid, tail);
  } else if (first != absl::StrCat(context.pid)) {
    return Refuse(EACCES, absl::StrCat("/proc/", first, " is not the worker's own process"));
  }
  return absl::OkStatus();
}

// "/proc/<digits>..." of another process than `pid` (for the real path of what a proc
// lookup reached).
bool InOtherProcessDir(absl::string_view real, absl::string_view proc_root, pid_t pid) {
  if (!IsPathPrefix(proc_root, real)) return false;
  absl::string_view rest = real.substr(proc_root == "/" ? 1 : proc_root.size());
  if (!rest.empty() && rest[0] == '/') rest.remove_prefix(1);
  absl::string_view first = rest.substr(0, rest.find('/'));
  return IsNumber(first) && first != absl::StrCat(pid);
}

}  // namespace

uint32_t AllowedOpenFlags() { return kAllowedOpenFlags; }

const char FsPolicy::kNoRule[] = "no rule covers the path";

bool FsPolicy::HasProcRule() const {
  for (const Rule& rule : rules_) {
    if (rule.fs_type == PROC_SUPER_MAGIC) return true;
  }
  return false;
}

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
  {
    absl::StatusOr<long> proc = Syscall("open(/proc/self/fd)", [] {
      return open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    });
    if (!proc.ok()) {
      return absl::Status(proc.status().code(),
                          absl::StrCat("the broker needs /proc mounted to reopen decided files: ",
                                       proc.status().message()));
    }
    policy.proc_fd_.reset(static_cast<int>(*proc));
  }
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
    // Which file system the rule lies on (a file rule's own file, if it exists).
    struct statfs sfs;
    int sfs_rc = rule.is_dir ? fstatfs(rule.dir.get(), &sfs) : statfs(rule.real_path.c_str(), &sfs);
    if (sfs_rc != 0 && !rule.is_dir) sfs_rc = fstatfs(rule.dir.get(), &sfs);
    if (sfs_rc != 0) return fail(ErrnoStatus(errno, "statfs"), "statfs failed");
    rule.fs_type = static_cast<int64_t>(sfs.f_type);
    struct stat rst;
    if (fstat(rule.dir.get(), &rst) != 0) return fail(ErrnoStatus(errno, "fstat"), "fstat failed");
    rule.st_dev = rst.st_dev;
    if (rule.fs_type == PROC_SUPER_MAGIC) {
      struct stat pst;
      rule.proc_root = rule.is_dir && fstat(rule.dir.get(), &pst) == 0 && pst.st_ino == 1;
      if (!rule.proc_root && InOtherProcessDir(rule.real_path, "/proc", 0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            RuleName(i, r), ": lies in a process's /proc directory (", rule.real_path,
            "), which would be the broker's; write a rule for /proc and the worker's "
            "/proc/self is its own"));
      }
    }
    policy.rules_.push_back(std::move(rule));
  }
  for (size_t a = 0; a < policy.rules_.size(); ++a) {
    for (size_t b = a + 1; b < policy.rules_.size(); ++b) {
      const Rule& ra = policy.rules_[a];
      const Rule& rb = policy.rules_[b];
      if (ra.real_path == rb.real_path && ra.is_dir == rb.is_dir &&
          Letters(ra.rule) != Letters(rb.rule)) {
        return absl::InvalidArgumentError(absl::StrCat(
            RuleName(b, rb.rule), " (", Letters(rb.rule), ") is the same location (",
            ra.real_path, ") as ", RuleName(a, ra.rule), " (", Letters(ra.rule),
            "): which letters hold there is ambiguous"));
      }
    }
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
  // Which rules may open directly (see kDirect in the header): the rule's own mount, an
  // ordinary file system, and no device can be opened through it by surprise.
  for (Rule& rule : policy.rules_) {
    struct statfs dir_fs;
    if (fstatfs(rule.dir.get(), &dir_fs) != 0) continue;  // the lookup path, always
    const int64_t type = static_cast<int64_t>(dir_fs.f_type);
    const bool nodev = (dir_fs.f_flags & ST_NODEV) != 0;
    rule.direct_open = !rule.nested_narrower && !rule.proc_root &&
                       PseudoFsName(type) == nullptr && type != PROC_SUPER_MAGIC &&
                       (!rule.is_dir || nodev);
    // kInline: local file systems whose open of a regular file does not wait on anyone.
    const bool local = type == EXT4_SUPER_MAGIC || type == TMPFS_MAGIC ||
                       type == XFS_SUPER_MAGIC || type == BTRFS_SUPER_MAGIC;
    rule.inline_open = !rule.nested_narrower && !rule.proc_root && local;
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

absl::StatusOr<FsPolicy::Target> FsPolicy::Resolve(absl::string_view path,
                                                   const OpenContext& context) const {
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

  // The rule as written gives the real location; the rule of the real location decides.
  const Rule* written = Match(normalized);
  if (written == nullptr) return Refuse(EACCES, kNoRule);
  std::string real;
  if (written->is_dir) {
    const std::string& p = written->rule.path;
    const size_t skip = p == "/" ? 1 : p.size() + 1;
    const std::string rest = normalized.size() > skip ? normalized.substr(skip) : "";
    real = rest.empty() ? written->real_path
           : written->real_path == "/" ? absl::StrCat("/", rest)
                                       : absl::StrCat(written->real_path, "/", rest);
  } else {
    real = written->real_path;
  }
  Target target;
  target.normalized = std::move(normalized);
  target.rule = MatchReal(real);
  if (target.rule == nullptr) target.rule = written;  // a deny rule that does not exist
  target.index = static_cast<size_t>(target.rule - rules_.data());
  if (target.rule->is_dir) {
    const std::string& p = target.rule->real_path;
    const size_t skip = p == "/" ? 1 : p.size() + 1;
    target.rest = real.size() > skip ? real.substr(skip) : std::string(".");
  } else {
    target.rest = target.rule->name;
  }
  if (target.rule->proc_root) RETURN_IF_ERROR(RewriteProcRest(target.rest, context));
  if (trailing && target.rest != ".") target.rest += '/';
  return target;
}

bool FsPolicy::Covers(absl::string_view path) const {
  absl::StatusOr<Target> target = Resolve(path, OpenContext{});
  // A refusal other than "no rule" ('..', a NUL, too long) is the rules' to give.
  return target.ok() || !absl::StartsWith(target.status().message(), kNoRule);
}

absl::StatusOr<PathRule> FsPolicy::RuleFor(absl::string_view path) const {
  ASSIGN_OR_RETURN(Target target, Resolve(path, OpenContext{}));
  return target.rule->rule;
}

namespace {

// The real path of the entry `name` of `dirfd`.
absl::StatusOr<std::string> EntryPath(int dirfd, absl::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != absl::string_view::npos) {
    return ErrnoStatus(EINVAL, "not a final name");
  }
  absl::StatusOr<std::string> dir = FdPath(dirfd);
  if (!dir.ok()) {
    return ErrnoStatus(EACCES, absl::StrCat("cannot verify where the path led: ",
                                            dir.status().message()));
  }
  return absl::StrCat(*dir == "/" ? "" : *dir, "/", name);
}

}  // namespace

absl::StatusOr<PathRule> FsPolicy::RuleForEntry(int dirfd, absl::string_view name) const {
  ASSIGN_OR_RETURN(std::string entry, EntryPath(dirfd, name));
  const Rule* landed = MatchReal(entry);
  if (landed == nullptr) return Refuse(EACCES, "the path led to a file that no rule covers");
  return landed->rule;
}

absl::Status FsPolicy::CheckNoRuleBeneath(int dirfd, absl::string_view name) const {
  ASSIGN_OR_RETURN(std::string entry, EntryPath(dirfd, name));
  for (size_t i = 0; i < rules_.size(); ++i) {
    const std::string& p = rules_[i].real_path;
    if (p.size() > entry.size() && IsPathPrefix(entry, p)) {
      return Refuse(EACCES, absl::StrCat(RuleName(i, rules_[i].rule), " lies beneath it: "
                                         "renaming it would move what that rule decides"));
    }
  }
  return absl::OkStatus();
}

absl::Status FsPolicy::CheckLanded(const Target& target, int fd, const struct stat& st,
                                   const OpenContext& context, uint32_t flags) const {
  const Rule* rule = target.rule;
  int64_t fs_type = rule->fs_type;
  if (st.st_dev != rule->st_dev) {  // another file system than the rule's: which one?
    struct statfs sfs;
    RETURN_IF_ERROR(Syscall("fstatfs", [&] { return fstatfs(fd, &sfs); }).status());
    fs_type = static_cast<int64_t>(sfs.f_type);
  }
  if (fs_type != rule->fs_type) {
    if (const char* name = PseudoFsName(fs_type)) {
      return Refuse(EACCES, absl::StrCat("the path is on ", name, ", a pseudo file system that ",
                                         RuleName(target.index, rule->rule),
                                         " does not lie on (a rule on it must opt in)"));
    }
  }
  if (fs_type == PROC_SUPER_MAGIC) {
    // Whatever symlink led here (/proc/net -> self/net, /proc/mounts), never another
    // process's directory.
    absl::StatusOr<std::string> real = FdPath(fd);
    if (!real.ok()) {
      return Refuse(EACCES, absl::StrCat("cannot verify where a /proc path led: ",
                                         real.status().message()));
    }
    const bool other = InOtherProcessDir(*real, "/proc", context.pid) ||
                       (rule->proc_root && InOtherProcessDir(*real, rule->real_path,
                                                             context.pid));
    if (other) {
      return Refuse(EACCES, absl::StrCat("the path led into ", AuditLog::EscapeBytes(*real),
                                         ", a /proc directory of another process than the "
                                         "worker"));
    }
    if ((flags & O_ACCMODE) != O_RDONLY && absl::EndsWith(*real, "/mem")) {
      return Refuse(EACCES, "writing a process's memory file (/proc/PID/mem) would change its "
                            "code: refused under every rule");
    }
  }
  return absl::OkStatus();
}

namespace {

// The errno of a failed openat2 beneath `rule`, as the worker should see it.
absl::Status OpenError(int err, uint64_t resolve, const std::string& rule_name,
                       absl::string_view what) {
  if (err == EXDEV) {
    return Refuse(EACCES, absl::StrCat("the path escapes ", rule_name,
                                       " ('..' or a symlink leading out; openat2: EXDEV)"));
  }
  if (err == ELOOP && (resolve & RESOLVE_NO_SYMLINKS) != 0) {
    return Refuse(ELOOP, absl::StrCat(what, " beneath ", rule_name,
                                      " without following symlinks (a file rule, or a create "
                                      "beneath a narrower nested rule)"));
  }
  return Refuse(err, absl::StrCat(what, " beneath ", rule_name));
}

}  // namespace

absl::Status FsPolicy::RecheckNested(const Rule* rule, int fd, uint32_t flags,
                                     bool any_letter) const {
  if (!rule->nested_narrower) return absl::OkStatus();
  absl::StatusOr<std::string> real = FdPath(fd);
  if (!real.ok()) {
    return Refuse(EACCES, absl::StrCat("cannot verify where the path led: ",
                                       real.status().message()));
  }
  const Rule* landed = MatchReal(*real);
  if (landed == nullptr) return Refuse(EACCES, "the path led to a file that no rule covers");
  if (landed == rule) return absl::OkStatus();
  const size_t index = static_cast<size_t>(landed - rules_.data());
  const PathRule& lr = landed->rule;
  if (any_letter) {
    if (!lr.read && !lr.write && !lr.exec && !lr.create) {
      return Refuse(EACCES, absl::StrCat("the path led beneath ", RuleName(index, lr),
                                         ", which denies it"));
    }
    return absl::OkStatus();
  }
  absl::Status again = CheckPermissions(index, lr, flags);
  if (!again.ok()) {
    return Refuse(EACCES, absl::StrCat("the path led beneath a more specific rule: ",
                                       again.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<FsPolicy::Lookup> FsPolicy::LookupPath(absl::string_view path,
                                                      bool follow_final,
                                                      const OpenContext& context) const {
  ASSIGN_OR_RETURN(Target target, Resolve(path, context));
  const Rule* rule = target.rule;
  const PathRule& r = rule->rule;
  const std::string rule_name = RuleName(target.index, r);
  if (!r.read && !r.write && !r.exec && !r.create) {
    return Refuse(EACCES, absl::StrCat(rule_name, " denies the path"));
  }
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC | (follow_final ? 0 : O_NOFOLLOW);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  if (!rule->is_dir) how.resolve |= RESOLVE_NO_SYMLINKS;
  absl::StatusOr<long> rc = Syscall("openat2", [&] {
    return syscall(SYS_openat2, rule->dir.get(), target.rest.c_str(), &how, sizeof(how));
  });
  if (!rc.ok()) return OpenError(ErrnoOf(rc.status()), how.resolve, rule_name, "openat2(O_PATH)");
  Lookup out;
  out.fd.reset(static_cast<int>(*rc));
  out.rule = r;
  struct stat st;
  RETURN_IF_ERROR(Syscall("fstat", [&] { return fstat(out.fd.get(), &st); }).status());
  RETURN_IF_ERROR(CheckLanded(target, out.fd.get(), st, context));
  RETURN_IF_ERROR(RecheckNested(rule, out.fd.get(), 0, /*any_letter=*/true));
  if (rule->nested_narrower) {
    absl::StatusOr<std::string> real = FdPath(out.fd.get());
    if (real.ok()) {
      if (const Rule* landed = MatchReal(*real)) out.rule = landed->rule;
    }
  }
  return out;
}

bool FsPolicy::DirectOpen(const Rule& rule, uint32_t flags) {
  return rule.direct_open && (flags & (O_CREAT | O_PATH | kTmpfileBit)) == 0;
}

bool FsPolicy::OpensDirectly(absl::string_view path, uint32_t flags,
                             const OpenContext& context) const {
  absl::StatusOr<Target> target = Resolve(path, context);
  return target.ok() && CheckFlagSyntax(flags).ok() && DirectOpen(*target->rule, flags);
}

std::optional<absl::StatusOr<UniqueFd>> FsPolicy::OpenWithoutBlocking(
    absl::string_view path, uint32_t flags, const OpenContext& context, UniqueFd* walk) const {
  // The kernel has RESOLVE_CACHED since 5.12; without it nothing is decided here.
  static const bool cached_resolve = [] {
    struct open_how probe = {};
    probe.flags = O_PATH | O_CLOEXEC;
    probe.resolve = RESOLVE_CACHED;
    long fd = syscall(SYS_openat2, AT_FDCWD, "/", &probe, sizeof(probe));
    if (fd >= 0) close(static_cast<int>(fd));
    return fd >= 0 || errno == EAGAIN;
  }();
  using Decided = std::optional<absl::StatusOr<UniqueFd>>;
  if (absl::Status syntax = CheckFlagSyntax(flags); !syntax.ok()) {
    return Decided(absl::StatusOr<UniqueFd>(syntax));
  }
  absl::StatusOr<Target> target = Resolve(path, context);
  if (!target.ok()) return Decided(absl::StatusOr<UniqueFd>(target.status()));
  const Rule* rule = target->rule;
  if (absl::Status letters = CheckPermissions(target->index, rule->rule, flags); !letters.ok()) {
    return Decided(absl::StatusOr<UniqueFd>(letters));
  }
  // Read-only opens of a regular file only: no O_TRUNC (the inode lock), no create, no
  // directory, no write (quota, journal).
  if (!cached_resolve || !rule->inline_open || (flags & O_ACCMODE) != O_RDONLY ||
      (flags & (O_CREAT | O_PATH | kTmpfileBit | O_TRUNC | O_DIRECTORY)) != 0) {
    return std::nullopt;
  }
  // 1. The walk, O_PATH (the object is not opened: a FIFO's or device's open never runs),
  //    from the dentry cache only, through no symlink, on the rule's own mount.
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC | (flags & O_NOFOLLOW);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV |
                RESOLVE_NO_SYMLINKS | RESOLVE_CACHED;
  const long walked =
      syscall(SYS_openat2, rule->dir.get(), target->rest.c_str(), &how, sizeof(how));
  if (walked < 0) return std::nullopt;
  UniqueFd path_fd(static_cast<int>(walked));
  // 2. What it is: a regular file (its type can no longer change) whose open reads
  //    nothing more (not fs-verity, not fscrypt).
  struct statx sx;
  if (statx(path_fd.get(), "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO,
            &sx) != 0 ||
      !S_ISREG(sx.stx_mode) ||
      (sx.stx_attributes & (STATX_ATTR_VERITY | STATX_ATTR_ENCRYPTED)) != 0) {
    return std::nullopt;
  }
  struct stat st = {};
  st.st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
  st.st_ino = sx.stx_ino;
  st.st_mode = sx.stx_mode;
  if (!CheckLanded(*target, path_fd.get(), st, context, flags).ok()) return std::nullopt;
  // 3. That inode opened, through /proc/self/fd.
  const std::string number = absl::StrCat(path_fd.get());
  const int fd = openat(proc_fd_.get(), number.c_str(),
                        static_cast<int>((flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) &
                                         ~static_cast<uint32_t>(O_NOFOLLOW)));
  if (fd < 0) return std::nullopt;
  absl::StatusOr<UniqueFd> opened = Finish(UniqueFd(fd), flags);
  if (walk != nullptr && opened.ok()) *walk = std::move(path_fd);
  return Decided(std::move(opened));
}

std::optional<absl::StatusOr<UniqueFd>> FsPolicy::OpenDirect(const Target& target,
                                                              uint32_t flags,
                                                              const OpenContext& context) const {
  const Rule* rule = target.rule;
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV |
                (rule->is_dir ? 0 : RESOLVE_NO_SYMLINKS);
  absl::StatusOr<long> rc = Syscall("openat2", [&] {
    return syscall(SYS_openat2, rule->dir.get(), target.rest.c_str(), &how, sizeof(how));
  });
  if (!rc.ok()) return std::nullopt;
  UniqueFd fd(static_cast<int>(*rc));
  struct stat st;
  absl::StatusOr<long> stat_rc = Syscall("fstat", [&] { return fstat(fd.get(), &st); });
  if (!stat_rc.ok()) return absl::StatusOr<UniqueFd>(stat_rc.status());
  if (S_ISDIR(st.st_mode) && (flags & O_DIRECTORY) == 0) {
    // Opening a directory has no side effect; it is closed here.
    return absl::StatusOr<UniqueFd>(
        Refuse(EISDIR, "the path is a directory and O_DIRECTORY was not asked for"));
  }
  if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && rule->is_dir) {
    // The rule's mount is nodev, so the kernel refused this open: never reached.
    return absl::StatusOr<UniqueFd>(Refuse(
        EACCES, absl::StrCat("the path is a device beneath ", RuleName(target.index, rule->rule),
                             ", a directory rule on a nodev mount that opened it anyway")));
  }
  // On the rule's own mount (RESOLVE_NO_XDEV), an ordinary file system: passes unless
  // st_dev says otherwise (then it asks fstatfs, as the lookup does).
  absl::Status landed = CheckLanded(target, fd.get(), st, context, flags);
  if (!landed.ok()) return absl::StatusOr<UniqueFd>(landed);
  return Finish(std::move(fd), flags);
}

absl::StatusOr<UniqueFd> FsPolicy::Open(absl::string_view path, uint32_t flags, uint32_t mode,
                                        const OpenContext& context) const {
  RETURN_IF_ERROR(CheckFlagSyntax(flags));
  ASSIGN_OR_RETURN(Target target, Resolve(path, context));
  const Rule* rule = target.rule;
  // Built only for a refusal (it escapes the rule's path: not for every open).
  auto rule_name = [&] { return RuleName(target.index, rule->rule); };
  RETURN_IF_ERROR(CheckPermissions(target.index, rule->rule, flags));
  const std::string& rest = target.rest;
  if (DirectOpen(*rule, flags)) {
    std::optional<absl::StatusOr<UniqueFd>> direct = OpenDirect(target, flags, context);
    if (direct.has_value()) return *std::move(direct);
    // The openat2 failed (nothing was opened, so nothing happened): the lookup below
    // decides again and gives the reason.
  }

  const bool path_only = (flags & O_PATH) != 0;
  const bool tmpfile = (flags & kTmpfileBit) != 0;
  const bool create = (flags & O_CREAT) != 0;
  const uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
                           (rule->is_dir ? 0 : RESOLVE_NO_SYMLINKS);
  // What the worker's open does once the file is decided (O_NONBLOCK for the open itself,
  // so that a FIFO cannot block the broker; cleared below unless asked for).
  const uint32_t open_flags = flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

  UniqueFd looked_up;
  for (int attempt = 0; attempt < 3 && !looked_up.valid(); ++attempt) {
    if (!(create && (flags & O_EXCL) != 0)) {
      // 5. The lookup: O_PATH, no side effect.
      struct open_how how = {};
      how.flags = O_PATH | O_CLOEXEC | (flags & (O_NOFOLLOW | O_DIRECTORY));
      how.resolve = resolve;
      absl::StatusOr<long> rc = Syscall("openat2", [&] {
        return syscall(SYS_openat2, rule->dir.get(), rest.c_str(), &how, sizeof(how));
      });
      if (rc.ok()) {
        looked_up.reset(static_cast<int>(*rc));
        break;
      }
      const int err = ErrnoOf(rc.status());
      if (err != ENOENT || !create) return OpenError(err, how.resolve, rule_name(), "openat2");
    }
    // Not there and O_CREAT: create a new regular file (O_EXCL), never through a
    // symlink into a narrower nested rule.
    struct open_how how = {};
    how.flags = open_flags | O_EXCL;
    how.mode = mode & 0777;
    how.resolve = resolve | (rule->nested_narrower ? RESOLVE_NO_SYMLINKS : 0);
    absl::StatusOr<long> rc = Syscall("openat2", [&] {
      return syscall(SYS_openat2, rule->dir.get(), rest.c_str(), &how, sizeof(how));
    });
    if (!rc.ok()) {
      const int err = ErrnoOf(rc.status());
      if (err == EEXIST && (flags & O_EXCL) == 0) continue;  // appeared meanwhile: look up
      return OpenError(err, how.resolve, rule_name(), "openat2(O_CREAT|O_EXCL)");
    }
    UniqueFd fd(static_cast<int>(*rc));
    struct stat st;
    RETURN_IF_ERROR(Syscall("fstat", [&] { return fstat(fd.get(), &st); }).status());
    RETURN_IF_ERROR(CheckLanded(target, fd.get(), st, context, flags));
    RETURN_IF_ERROR(RecheckNested(rule, fd.get(), flags, /*any_letter=*/false));
    return Finish(std::move(fd), flags);
  }
  if (!looked_up.valid()) {
    return Refuse(EEXIST, absl::StrCat("O_CREAT beneath ", rule_name(),
                                       ": the name exists but does not lead to a file (a "
                                       "dangling symlink is not followed to create its "
                                       "target), or it kept changing"));
  }

  // The decision, on the looked-up file.
  struct stat st;
  RETURN_IF_ERROR(Syscall("fstat", [&] { return fstat(looked_up.get(), &st); }).status());
  if (S_ISLNK(st.st_mode) && !path_only) {
    return Refuse(ELOOP, "O_NOFOLLOW and the path names a symlink");
  }
  if (S_ISDIR(st.st_mode) && (flags & O_DIRECTORY) == 0) {
    return Refuse(EISDIR, "the path is a directory and O_DIRECTORY was not asked for");
  }
  if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && rule->is_dir) {
    return Refuse(EACCES, absl::StrCat("the path is a ",
                                       S_ISCHR(st.st_mode) ? "character" : "block",
                                       " device, opened only through a rule that names it "
                                       "exactly, and ", rule_name(), " is a directory rule"));
  }
  RETURN_IF_ERROR(CheckLanded(target, looked_up.get(), st, context, flags));
  RETURN_IF_ERROR(RecheckNested(rule, looked_up.get(), flags, /*any_letter=*/false));
  if (path_only) return looked_up;

  // 6. The open, of exactly the inode that was decided on.
  absl::StatusOr<long> rc;
  if (tmpfile) {
    rc = Syscall("openat(O_TMPFILE)", [&] {
      return openat(looked_up.get(), ".", static_cast<int>(open_flags), mode & 0777);
    });
  } else {
    const std::string number = absl::StrCat(looked_up.get());
    rc = Syscall("open(/proc/self/fd)", [&] {
      return openat(proc_fd_.get(), number.c_str(),
                    static_cast<int>(open_flags & ~(O_CREAT | O_NOFOLLOW)));
    });
  }
  if (!rc.ok()) return Refuse(ErrnoOf(rc.status()), absl::StrCat("open beneath ", rule_name()));
  return Finish(UniqueFd(static_cast<int>(*rc)), flags);
}

absl::StatusOr<UniqueFd> FsPolicy::Finish(UniqueFd fd, uint32_t flags) {
  if ((flags & O_NONBLOCK) == 0) {
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
