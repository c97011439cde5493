// The broker's filesystem rules (unveil-like) and the one place where it opens a file
// for a worker. Runs in the privileged broker; every path, flag and mode it is given
// comes from a worker and is hostile.
//
// How an Open(path, flags, mode) is decided, in this order (the first refusal wins):
//  1. flags: only a known set of bits is accepted (see kAllowedOpenFlags in the .cc):
//     the access mode O_RDONLY/O_WRONLY/O_RDWR (3 is refused), O_CREAT, O_EXCL, O_TRUNC,
//     O_APPEND, O_NONBLOCK, O_CLOEXEC, O_NOFOLLOW, O_DIRECTORY, O_NOCTTY, the kernel's
//     O_LARGEFILE bit, O_DSYNC, O_SYNC, O_PATH (only with O_CLOEXEC, O_DIRECTORY,
//     O_NOFOLLOW and O_RDONLY) and O_TMPFILE (only with O_WRONLY or O_RDWR). Anything
//     else (O_NOATIME, O_DIRECT, O_ASYNC, unknown bits) -> EINVAL naming the bits.
//  2. path syntax: the worker's bytes must be an absolute path (else EINVAL), without a
//     NUL byte (EINVAL), shorter than PATH_MAX (4096) bytes (else ENAMETOOLONG), and
//     without a `..` component (EACCES: refused up front rather than resolved textually,
//     so the rule that is chosen is always the rule of a directory the path really goes
//     through). `//`, `.` components and a trailing slash are accepted; a trailing
//     slash still means "must be a directory" (the kernel answers ENOTDIR otherwise).
//  3. rule: the most specific rule wins: the longest rule path that is a prefix of the
//     path on component boundaries ("/a" covers "/a" and "/a/b", not "/ab"). A file rule
//     covers exactly its own path. No rule -> EACCES.
//  4. permissions of that rule: O_CREAT/O_TMPFILE need `c`; O_WRONLY/O_RDWR/O_TRUNC/
//     O_APPEND/O_TMPFILE need `w`; O_RDONLY/O_RDWR need `r`; O_PATH needs `x`.
//     Missing -> EACCES.
//  5. the open itself: openat2(rule dir fd, rest, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
//     (plus RESOLVE_NO_SYMLINKS, failing with ELOOP, for a file rule, whose final name
//     must not be a symlink to a sibling, and for O_CREAT/O_TRUNC/O_TMPFILE beneath a
//     rule that has a narrower rule nested in it, see 6). `..` and absolute or escaping symlinks fail in the kernel with
//     EXDEV, reported to the worker as EACCES; /proc magic links fail with ELOOP, which
//     is passed through, as is every other errno of the open (ENOENT, ENOTDIR, ...).
//     The broker always adds O_CLOEXEC and O_NOCTTY (it must never gain a controlling
//     terminal), and O_NONBLOCK for the open itself (a FIFO or a device must not block
//     the broker; O_NONBLOCK is cleared afterwards if the worker did not ask for it, so
//     a FIFO opened for writing with no reader fails with ENXIO instead of waiting).
//     `mode` is masked with 0777 (no setuid, setgid or sticky bit) and only passed for
//     O_CREAT/O_TMPFILE; the broker's umask applies.
//  6. after the open: a directory is returned only if O_DIRECTORY was asked for
//     (else the fd is closed and EISDIR returned). When the chosen rule has a rule nested
//     beneath it that grants fewer letters, the opened file's real path (readlink of
//     /proc/self/fd/N) is matched again and the rule found for it must also allow the
//     request (else EACCES), so a symlink inside "/data" (rw) cannot reach into
//     "/data/ro" (r) with write access. Opens with a side effect (create, truncate)
//     cannot be checked after the fact, so there they follow no symlink at all (5).
//     Hard links cannot be told apart: a rule grants what its tree reaches by hard link.
//
// Thread-safety: a FsPolicy is immutable after Create(); Open() may be called from many
// threads. It owns one O_PATH fd per rule until it is destroyed.
#ifndef VOW_BROKER_FS_POLICY_H_
#define VOW_BROKER_FS_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "policies/policy.h"

namespace vow {

// Checks the syntax of a rule path (absolute, normalized: no `.`/`..` components, no
// `//`, no trailing slash except "/" itself, no NUL, shorter than PATH_MAX). Pure; the
// message says what is wrong without naming the rule (callers prefix it).
absl::Status CheckRulePathSyntax(absl::string_view path);

// Who an open is for. The broker fills it in from the worker it serves, so that paths
// that name "the calling process" (/proc/self, /proc/thread-self) mean the worker,
// never the broker. 0: unknown (such paths are then refused).
struct OpenContext {
  pid_t pid = 0;  // the worker's pid (thread-group id)
  pid_t tid = 0;  // the calling thread
};

class FsPolicy {
 public:
  // Opens each rule's path once (trusted input: symlinks in rule paths are followed
  // here, once): a directory as O_PATH|O_DIRECTORY; for anything else its parent
  // directory plus the final name. A file rule that does not exist yet is accepted only
  // with `c`. Errors (InvalidArgument or the errno's code) name the rule by index and
  // path and say why.
  static absl::StatusOr<FsPolicy> Create(const std::vector<PathRule>& rules);

  FsPolicy(FsPolicy&&) = default;
  FsPolicy& operator=(FsPolicy&&) = default;

  // Validates and performs an open for a worker (see the file comment). `path` is raw
  // worker bytes. On success a new fd, O_CLOEXEC, owned by the caller. On failure a
  // Status from ErrnoStatus(): ErrnoOf() gives the errno the worker should see, and the
  // message states the reason (for the audit log; it may quote the path, escaped).
  absl::StatusOr<UniqueFd> Open(absl::string_view path, uint32_t flags, uint32_t mode,
                                const OpenContext& context = {}) const;

  // For the stat family, access(2) and readlink(2) made by a worker: resolves `path` as
  // Open() does (same syntax checks, the most specific rule, openat2 beneath it) but
  // opens it O_PATH (no side effect, nothing read), following the final symlink only if
  // `follow_final`. Allowed when the deciding rule grants any letter (a deny rule refuses
  // with EACCES). The result says which letters the rule of the real location grants.
  struct Lookup {
    UniqueFd fd;      // O_PATH | O_CLOEXEC, owned by the caller
    PathRule rule;    // the rule that decided (its letters, for access(2))
  };
  absl::StatusOr<Lookup> LookupPath(absl::string_view path, bool follow_final,
                                    const OpenContext& context = {}) const;

  // True if a rule (a deny rule included) decides `path` (raw worker bytes; false also
  // for bytes that are not a path a rule could cover).
  bool Covers(absl::string_view path) const;
  // The rule that decides `path` (its letters), or the refusal Open() would give.
  absl::StatusOr<PathRule> RuleFor(absl::string_view path) const;
  // The reason text of a refusal because no rule covers a path.
  static const char kNoRule[];

  // The number of rules (for tests and the audit log).
  size_t size() const { return rules_.size(); }

 private:
  struct Rule {
    PathRule rule;           // as given
    bool is_dir = false;     // a directory rule (else a file rule)
    UniqueFd dir;            // the directory, or the file's parent directory (O_PATH)
    std::string name;        // file rules: the final name beneath `dir`
    std::string real_path;   // where the rule really is (symlinks resolved at Create)
    // Another rule whose real path lies strictly beneath this one grants less.
    bool nested_narrower = false;
  };

  FsPolicy() = default;

  // Syntax checks, normalization and the rule that covers `path`, or a refusal.
  struct Target {
    const Rule* rule = nullptr;
    size_t index = 0;
    std::string rest;  // beneath rule->dir ("." for the rule's own directory)
    std::string normalized;
  };
  absl::StatusOr<Target> Resolve(absl::string_view path) const;

  // The most specific rule for a normalized path, or nullptr.
  const Rule* Match(absl::string_view normalized) const;
  // The most specific rule by real path (for the re-check), or nullptr.
  const Rule* MatchReal(absl::string_view real) const;

  std::vector<Rule> rules_;
};

// The open(2) flag bits FsPolicy::Open accepts (see the file comment).
uint32_t AllowedOpenFlags();

}  // namespace vow

#endif  // VOW_BROKER_FS_POLICY_H_
