// The broker's filesystem rules (unveil-like) and the one place where it opens a file
// for a worker. Runs in the privileged broker; every path, flag and mode it is given
// comes from a worker and is hostile.
//
// How an Open(path, flags, mode, context) is decided, in this order (the first refusal
// wins). Nothing that creates, truncates or opens a device happens before step 6.
//  1. flags: only a known set of bits is accepted (see kAllowedOpenFlags in the .cc):
//     the access mode O_RDONLY/O_WRONLY/O_RDWR (3 is refused), O_CREAT, O_EXCL, O_TRUNC,
//     O_APPEND, O_NONBLOCK, O_CLOEXEC, O_NOFOLLOW, O_DIRECTORY, O_NOCTTY, the kernel's
//     O_LARGEFILE bit, O_DSYNC, O_SYNC, O_PATH (only with O_CLOEXEC, O_DIRECTORY,
//     O_NOFOLLOW and O_RDONLY) and O_TMPFILE (only with O_WRONLY or O_RDWR). Anything
//     else (O_NOATIME, O_DIRECT, O_ASYNC, unknown bits) -> EINVAL naming the bits.
//  2. path syntax: the worker's bytes must be an absolute path (else EINVAL), without a
//     NUL byte (EINVAL), shorter than PATH_MAX (4096) bytes (else ENAMETOOLONG), and
//     without a `..` component (EACCES). `//`, `.` components and a trailing slash are
//     accepted; a trailing slash still means "must be a directory".
//  3. rule, decided on the REAL location: the path is matched against the rule paths as
//     written (the longest rule path that is a prefix on component boundaries; a file
//     rule covers exactly its own path), which gives the real location (the rule's real
//     path, resolved once at Create, plus the rest of the path); the rule that decides
//     is the most specific rule by real path. So with `/lib r` (/lib -> usr/lib) the
//     path /lib/x/libc.so.6 works, and with `datalink rwc` (-> data) and `data/ro r`,
//     datalink/ro/f is decided by `data/ro`. No rule -> EACCES. Beneath a rule that is
//     the root of a proc mount, the first component is rewritten for the worker:
//     `self` -> the worker's pid (context.pid), `thread-self` -> pid/task/tid, `net` and
//     `mounts` -> pid/net, pid/mounts; a pid other than the worker's, or `self` without
//     a context, -> EACCES.
//  4. permissions of that rule: O_CREAT/O_TMPFILE need `c`; O_WRONLY/O_RDWR/O_TRUNC/
//     O_APPEND/O_TMPFILE need `w`; O_RDONLY/O_RDWR need `r`; O_PATH needs `x`.
//     Missing -> EACCES.
//  5. lookup without side effects: openat2(rule dir, rest, O_PATH,
//     RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, plus RESOLVE_NO_SYMLINKS for a file rule,
//     whose final name must not be a symlink to a sibling). `..` and absolute or
//     escaping symlinks fail with EXDEV, reported as EACCES; magic links with ELOOP; any
//     other errno is passed through. On the O_PATH fd:
//     - a directory without O_DIRECTORY -> EISDIR; O_NOFOLLOW on a symlink -> ELOOP;
//     - a file system that is a pseudo one (proc, sysfs, debugfs, tracefs, securityfs,
//       cgroup, cgroup2, bpf, configfs, pstore, efivarfs, ...) -> EACCES unless the
//       deciding rule lies on that same file system (the rule opts in);
//     - beneath a proc rule, a real path in a pid directory other than the worker's
//       (e.g. through the /proc/net symlink) -> EACCES;
//     - a character or block device -> EACCES unless the deciding rule is a file rule
//       (the rule names the device exactly);
//     - when the rule has a narrower rule nested beneath it, the real path of the fd
//       (readlink /proc/self/fd/N) is matched again and that rule must also allow the
//       request (else EACCES): a symlink inside "/data" (rw) cannot reach into
//       "/data/ro" (r) with write access.
//  6. the open: the looked-up file is reopened through /proc/self/fd/N (the same inode,
//     no second path walk) with the worker's flags; O_PATH requests get the O_PATH fd.
//     A file that does not exist with O_CREAT is created with openat2(O_CREAT|O_EXCL)
//     under the same resolve flags (plus RESOLVE_NO_SYMLINKS beneath a rule with a
//     narrower nested rule), so what is created is a new regular file; if the name
//     appeared meanwhile the lookup is retried (at most 3 times, then EEXIST); a
//     dangling symlink is never followed to create its target (EEXIST). O_TMPFILE opens
//     the looked-up directory. The broker always adds O_CLOEXEC and O_NOCTTY, and
//     O_NONBLOCK for the open itself (a FIFO must not block the broker; it is cleared
//     afterwards unless asked for). `mode` is masked with 0777 and only passed for
//     O_CREAT/O_TMPFILE; the broker's umask applies.
//     Hard links cannot be told apart: a rule grants what its tree reaches by hard link.
//  kDirect. Steps 5 and 6 in one openat2, when nothing the lookup decides can differ or
//     happen by surprise: the request has no O_CREAT, O_TMPFILE or O_PATH, and its rule
//     (decided at Create) has no narrower nested rule, lies on an ordinary file system
//     (not a pseudo one, not proc), and is a file rule (it may name a device) or a
//     directory rule on a nodev mount (the kernel refuses to open a device there). The
//     open is openat2(rule dir, rest, the worker's flags | O_CLOEXEC | O_NOCTTY |
//     O_NONBLOCK, the resolve flags of step 5 | RESOLVE_NO_XDEV): it cannot leave the
//     rule's mount, so the file system checks of step 5 hold by construction (they are
//     still run on the fd, at no syscall when st_dev is the rule's); a symlink with
//     O_NOFOLLOW fails in the kernel; a directory without O_DIRECTORY is closed and
//     refused (EISDIR; opening one has no side effect); a FIFO does not block. If the
//     openat2 fails for any reason (EXDEV: another mount on the way), nothing was
//     opened and steps 5-6 decide as above. Cost: openat2 + fstat (+ F_SETFL) instead
//     of openat2(O_PATH) + fstat + open(/proc/self/fd/N) (+ F_SETFL) + close.
//  kInline. OpenWithoutBlocking(): the decisions the broker's serving thread makes
//     itself, because nothing in them waits for another process: the string checks
//     (syntax, the covering rule, its letters: their refusals), and a read-only open (no
//     O_TRUNC, O_CREAT, O_TMPFILE, O_PATH or O_DIRECTORY) beneath a rule marked inline at
//     Create (no narrower nested rule, not proc, on ext2/3/4, tmpfs, xfs or btrfs: never
//     overlayfs, FUSE or a network file system). It walks with openat2(O_PATH, the resolve
//     flags of step 5 | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_CACHED): from the
//     dentry cache only (EAGAIN rather than read a directory or take a lookup lock; a
//     path through a symlink, whose body may be long, is left to the pool), the object
//     not opened; then statx on that fd: only a regular file that is neither fs-verity
//     nor fscrypt (whose open reads more), whose type can no longer change, is opened,
//     through /proc/self/fd. A FIFO's open (whose pipe mutex another process can hold
//     with splice) or a device's never runs here. What remains in that open: the inode's
//     ACL, read from disk the first time (bounded local I/O; a block device that never
//     answers, such as NBD, is not told apart) and an IMA policy, if the host has one.
//     Anything else is "not decided": the caller hands the request to Open() on the pool,
//     which decides from scratch, so the outcome is the same either way.
//
// Thread-safety: a FsPolicy is immutable after Create(); Open() may be called from many
// threads. It owns one O_PATH fd per rule until it is destroyed.
#ifndef VOW_BROKER_FS_POLICY_H_
#define VOW_BROKER_FS_POLICY_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
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
  // Opens each rule's path once (trusted input: symlinks in rule paths are resolved
  // here, once, and the rule is matched by its real location from then on): a directory
  // as O_PATH|O_DIRECTORY; for anything else its parent directory plus the final name.
  // A file rule that does not exist yet is accepted only with `c`. Refused (naming the
  // rule): two rules with the same real location but different letters; a rule inside
  // a process's /proc directory (/proc/self, /proc/<pid>, ...: it would be the
  // broker's; write `/proc` and the worker's `self` is rewritten). Errors
  // (InvalidArgument or the errno's code) name the rule by index and path and say why.
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
  // The proc rewriting and the pseudo file system check of Open() apply; devices are
  // not refused here (an O_PATH lookup of a device has no side effect).
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
  // The rule that decides the entry `name` of the directory `dirfd` (a LookupPath
  // result) by where that directory really is: a parent spelled through a symlink is
  // decided by the rule of the directory it led to, not by its spelling (review h71:
  // `unlink("a/lnk/f")` with a/lnk -> sub, beneath a narrower rule for a/sub). EACCES
  // when no rule covers it or its path cannot be read.
  absl::StatusOr<PathRule> RuleForEntry(int dirfd, absl::string_view name) const;
  // EACCES when a rule lies strictly beneath the entry `name` of `dirfd`: renaming it
  // would carry what that rule decides to where another, wider rule decides (review h71:
  // renaming a/b under `rwc a` moved a/b/private, denied by its own rule, out of it).
  absl::Status CheckNoRuleBeneath(int dirfd, absl::string_view name) const;
  // The reason text of a refusal because no rule covers a path.
  static const char kNoRule[];
  // True if a rule lies on a proc file system: beneath it a worker reads its own
  // /proc/<pid> (net/unix, net/sockstat, ...: what its network namespace holds). The
  // broker lets a policy's workers share a network and IPC namespace only without one
  // (README "Spawn, round 7").
  bool HasProcRule() const;

  // kInline above: Open()'s decision when it can be made without waiting (a refusal by
  // the string checks, or a cached direct open); nullopt otherwise (call Open()). When a
  // file was opened and `walk` is given, *walk receives the O_PATH fd of the walk (owned
  // by the caller, who closes it after answering); otherwise that fd is closed here.
  std::optional<absl::StatusOr<UniqueFd>> OpenWithoutBlocking(
      absl::string_view path, uint32_t flags, const OpenContext& context = {},
      UniqueFd* walk = nullptr) const;

  // True if Open(path, flags) would take the direct open (kDirect above) first. For
  // tests and measurements; Open() decides the same way.
  bool OpensDirectly(absl::string_view path, uint32_t flags,
                     const OpenContext& context = {}) const;

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
    // The file system type (statfs f_type) of the rule's real location (for a file rule
    // that does not exist yet: of its directory). A pseudo file system (proc, sysfs,
    // ...) is reachable only through a rule that lies on it.
    int64_t fs_type = 0;
    dev_t st_dev = 0;  // the device of the rule's real location (same device: same fs)
    // The rule is the root of a proc mount: its first component is a pid, `self`, ...
    bool proc_root = false;
    // Opens beneath this rule may take the direct open (kDirect in the file comment).
    bool direct_open = false;
    // ... and may do so on the serving thread (kInline in the file comment).
    bool inline_open = false;
  };

  FsPolicy() = default;

  // Syntax checks, normalization and the rule that covers `path`, or a refusal.
  struct Target {
    const Rule* rule = nullptr;
    size_t index = 0;
    std::string rest;  // beneath rule->dir ("." for the rule's own directory)
    std::string normalized;
  };
  absl::StatusOr<Target> Resolve(absl::string_view path, const OpenContext& context) const;
  // After the lookup, before anything with a side effect: the file system of `fd` must
  // be the rule's or an ordinary one; beneath a proc rule, no other process's directory.
  // `flags`: the open's (0 for a lookup). Beneath proc, a process's `mem` is never opened
  // for writing: writing it patches the process's code, which is prot_exec's (review
  // h73: a `w` rule on /proc let a program rewrite its own text).
  absl::Status CheckLanded(const Target& target, int fd, const struct stat& st,
                           const OpenContext& context, uint32_t flags = 0) const;

  // When `rule` has a narrower rule nested beneath it: the rule of the real path of `fd`
  // must allow `flags` too (any_letter: must grant any letter).
  absl::Status RecheckNested(const Rule* rule, int fd, uint32_t flags, bool any_letter) const;
  // kDirect: whether `flags` beneath `rule` may open directly, and the open itself;
  // nullopt when the openat2 failed (the lookup then decides).
  static bool DirectOpen(const Rule& rule, uint32_t flags);
  std::optional<absl::StatusOr<UniqueFd>> OpenDirect(const Target& target, uint32_t flags,
                                                     const OpenContext& context) const;
  // Clears the O_NONBLOCK the broker added, unless asked for.
  static absl::StatusOr<UniqueFd> Finish(UniqueFd fd, uint32_t flags);

  // The most specific rule for a normalized path, or nullptr.
  const Rule* Match(absl::string_view normalized) const;
  // The most specific rule by real path (for the re-check), or nullptr.
  const Rule* MatchReal(absl::string_view real) const;

  std::vector<Rule> rules_;
  // The broker's /proc/self/fd (O_PATH), through which a decided file is reopened
  // (openat(proc_fd_, "N") saves walking /proc/self on every open).
  UniqueFd proc_fd_;
};

// The open(2) flag bits FsPolicy::Open accepts (see the file comment).
uint32_t AllowedOpenFlags();

}  // namespace vow

#endif  // VOW_BROKER_FS_POLICY_H_
