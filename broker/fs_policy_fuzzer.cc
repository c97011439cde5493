// libFuzzer target for FsPolicy::Open: hostile path bytes, flags and mode against a fixed
// set of rules over a small tree (with symlinks leading in, out, and into a narrower
// nested rule) plus /proc. Runs in the broker's role. Besides "no crash, no sanitizer
// report", it checks what Open() promises, on its result and on its side effects:
//  - a refusal carries an errno from the documented set (never 0, never EXDEV, which
//    fs_policy.h turns into EACCES), EINVAL for a relative path, a NUL byte or an unknown
//    flag, and ENAMETOOLONG for a path of PATH_MAX bytes or more;
//  - an fd it returns is O_CLOEXEC, is a directory only if O_DIRECTORY was asked, is the
//    very file the path names in the fixture (same device and inode), really lies beneath
//    a rule (its /proc/self/fd path), with write access only where that rule grants `w`;
//  - side effects: the fixture tree is snapshotted (lstat of every entry, contents of
//    every file) before each input and compared after it. Nothing may appear except a
//    regular file beneath the rwc rule and outside the nested r-only rule, and only for
//    O_CREAT; a new file has no setuid/setgid/sticky bit and no mode bit the input did
//    not ask for; no file changes size or contents unless it lies beneath the rwc rule
//    (and outside the r-only rule) and the input asked for O_TRUNC (or writing); nothing
//    disappears or changes type or mode. Then the fixture is restored, so each input
//    starts from the same tree.
// Input layout: byte 0 picks a path prefix, bytes 1..4 the flags, 5..8 the mode (both
// little-endian), the rest is appended to the prefix.
// Build and run: see the `# libFuzzer` section of .bazelrc.
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <errno.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "base/syscall.h"
#include "broker/fs_policy.h"

namespace {

struct Fixture {
  std::string root;      // the tree, real path
  std::string ro;        // root/ro, an r-only rule nested in the rwc rule
  std::string file;      // root/file.txt, a file rule outside of it (see below)
  vow::FsPolicy* policy = nullptr;
};

void Die(const char* what) {
  fprintf(stderr, "fs_policy_fuzzer: %s\n", what);
  abort();
}

// Creates `path` with a few bytes in it, so that a truncation shows.
void Touch(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, "contents\n", 9) != 9) Die("setup: create");
  close(fd);
}

vow::PathRule Rule(const std::string& path, bool r, bool w, bool c) {
  vow::PathRule rule;
  rule.path = path;
  rule.read = r;
  rule.write = w;
  rule.create = c;
  rule.exec = true;
  return rule;
}

// Tree: <root>/rw/{a.txt, sub/b.txt, ro/c.txt, in -> sub/b.txt, out -> ../../secret,
// abs -> /etc/passwd, toro -> ro, fifo}, <root>/single.txt, <root>/secret.
Fixture& Get() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    const char* base = getenv("TEST_TMPDIR");  // set under `bazel test`
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/vow_fs_fuzz_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) Die("setup: mkdtemp");
    char* real = realpath(tmpl.c_str(), nullptr);
    fx->root = real;
    free(real);
    const std::string rw = fx->root + "/rw";
    fx->ro = rw + "/ro";
    fx->file = fx->root + "/single.txt";
    if (mkdir(rw.c_str(), 0755) != 0 || mkdir((rw + "/sub").c_str(), 0755) != 0 ||
        mkdir(fx->ro.c_str(), 0755) != 0) {
      Die("setup: mkdir");
    }
    Touch(rw + "/a.txt");
    Touch(rw + "/sub/b.txt");
    Touch(fx->ro + "/c.txt");
    Touch(fx->file);
    Touch(fx->root + "/secret");
    if (symlink("sub/b.txt", (rw + "/in").c_str()) != 0 ||
        symlink("../../secret", (rw + "/out").c_str()) != 0 ||
        symlink("/etc/passwd", (rw + "/abs").c_str()) != 0 ||
        symlink("ro", (rw + "/toro").c_str()) != 0 || mkfifo((rw + "/fifo").c_str(), 0644) != 0) {
      Die("setup: symlink/mkfifo");
    }
    absl::StatusOr<vow::FsPolicy> p = vow::FsPolicy::Create({
        Rule(rw, true, true, true),
        Rule(fx->ro, true, false, false),
        Rule(fx->file, true, false, false),
        Rule("/proc", true, false, false),
    });
    if (!p.ok()) Die("setup: FsPolicy::Create");
    fx->policy = new vow::FsPolicy(*std::move(p));
    return fx;
  }();
  return *f;
}

uint32_t Le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// One fixture entry as lstat sees it, plus a regular file's contents.
struct Entry {
  mode_t mode = 0;  // type and permission bits
  dev_t dev = 0;
  ino_t ino = 0;
  std::string contents;
  bool operator==(const Entry& o) const {
    return mode == o.mode && dev == o.dev && ino == o.ino && contents == o.contents;
  }
};
using Snapshot = std::map<std::string, Entry>;

std::string ReadSmall(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) Die("snapshot: open");
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

void Walk(const std::string& dir, Snapshot* snap) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) Die("snapshot: opendir");
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) Die("snapshot: lstat");
    Entry& entry = (*snap)[path];
    entry.mode = st.st_mode;
    entry.dev = st.st_dev;
    entry.ino = st.st_ino;
    if (S_ISREG(st.st_mode)) entry.contents = ReadSmall(path);
    if (S_ISDIR(st.st_mode)) Walk(path, snap);
  }
  closedir(d);
}

Snapshot Take(const Fixture& f) {
  Snapshot snap;
  Walk(f.root, &snap);
  return snap;
}

// Puts the tree back as `before`: removes what appeared, rewrites changed contents and
// modes. (Open() creates regular files only; it never removes anything.)
void Restore(const Snapshot& before, const Snapshot& after) {
  for (const auto& [path, entry] : after) {
    auto it = before.find(path);
    if (it == before.end()) {
      if (unlink(path.c_str()) != 0) Die("restore: unlink");
      continue;
    }
    if (S_ISREG(entry.mode) && entry.contents != it->second.contents) {
      int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd < 0 || write(fd, it->second.contents.data(), it->second.contents.size()) !=
                        static_cast<ssize_t>(it->second.contents.size())) {
        Die("restore: rewrite");
      }
      close(fd);
    }
    if (!S_ISLNK(entry.mode) && entry.mode != it->second.mode) {
      chmod(path.c_str(), it->second.mode & 07777);
    }
  }
}

bool Beneath(const std::string& path, const std::string& dir) {
  return path == dir || absl::StartsWith(path, dir + "/");
}

bool DocumentedErrno(int err) {
  switch (err) {
    case EACCES: case EINVAL: case ENAMETOOLONG: case ELOOP: case ENOENT: case ENOTDIR:
    case EISDIR: case EEXIST: case ENXIO: case EPERM: case EOPNOTSUPP: case ETXTBSY:
    case EAGAIN: case EMFILE: case ENFILE: case ENOMEM: case EFBIG: case EOVERFLOW:
    case ENODEV: case EROFS: case ENOSPC:
      return true;
    default:
      return false;
  }
}

void CheckSideEffects(const Fixture& f, const Snapshot& before, const Snapshot& after,
                      uint32_t flags, uint32_t mode) {
  const std::string rw = f.root + "/rw";
  auto writable = [&](const std::string& path) {
    return Beneath(path, rw) && !Beneath(path, f.ro);
  };
  const bool writes = (flags & O_PATH) == 0 && (flags & O_ACCMODE) != O_RDONLY;
  for (const auto& [path, entry] : after) {
    auto it = before.find(path);
    if (it == before.end()) {
      if (!writable(path) || (flags & O_CREAT) == 0 || !S_ISREG(entry.mode)) {
        fprintf(stderr, "created %s (flags 0x%x)\n", path.c_str(), flags);
        Die("an entry appeared outside a c rule or without O_CREAT");
      }
      if ((entry.mode & 07000) != 0 || (entry.mode & 0777 & ~mode) != 0) {
        fprintf(stderr, "created %s mode 0%o (asked 0%o)\n", path.c_str(), entry.mode, mode);
        Die("a created file has mode bits the request did not ask for, or 07000");
      }
      continue;
    }
    const Entry& old = it->second;
    if (entry.mode != old.mode || entry.ino != old.ino || entry.dev != old.dev) {
      fprintf(stderr, "changed %s\n", path.c_str());
      Die("an entry changed type, mode or identity");
    }
    if (entry.contents != old.contents) {
      if (!writable(path) || (!(flags & O_TRUNC) && !writes)) {
        fprintf(stderr, "contents of %s changed (flags 0x%x)\n", path.c_str(), flags);
        Die("a file was truncated or written outside a w rule");
      }
    }
  }
  for (const auto& [path, entry] : before) {
    if (after.find(path) == after.end()) {
      fprintf(stderr, "removed %s\n", path.c_str());
      Die("an entry disappeared");
    }
  }
}

// What Open() returned (before the tree is restored: the fd's file may be a new one).
void CheckResult(const Fixture& f, const std::string& path, uint32_t flags,
                 const absl::StatusOr<vow::UniqueFd>& fd) {
  if (!fd.ok()) {
    const int err = vow::ErrnoOf(fd.status());
    if (!DocumentedErrno(err)) {
      fprintf(stderr, "errno %d: %s\n", err, std::string(fd.status().message()).c_str());
      Die("a refusal with an errno fs_policy.h does not document");
    }
    const bool unknown_flags = (flags & ~vow::AllowedOpenFlags()) != 0;
    if (unknown_flags && err != EINVAL) Die("unknown flags not refused with EINVAL");
    if (!unknown_flags && path.size() >= PATH_MAX && err != ENAMETOOLONG &&
        err != EINVAL) {
      Die("an over-long path not refused with ENAMETOOLONG");
    }
    if (!unknown_flags && path.size() < PATH_MAX && !path.empty() &&
        path.find('\0') == std::string::npos && path[0] != '/' && err != EINVAL) {
      Die("a relative path not refused with EINVAL");
    }
    return;
  }
  if (!fd->valid()) Die("an ok result without an fd");
  if ((flags & ~vow::AllowedOpenFlags()) != 0) Die("unknown flags accepted");
  if (path.find('\0') != std::string::npos) Die("a path with a NUL byte accepted");
  if ((fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) == 0) Die("fd without FD_CLOEXEC");
  struct stat st;
  if (fstat(fd->get(), &st) != 0) Die("fstat");
  if (S_ISDIR(st.st_mode) && (flags & O_DIRECTORY) == 0) Die("a directory without O_DIRECTORY");
  // The fd is the file the path names (inside the fixture; /proc objects are per-process).
  if (Beneath(path, f.root) && (flags & O_TMPFILE) != O_TMPFILE) {
    struct stat named;
    const bool no_follow = (flags & O_NOFOLLOW) != 0;
    if ((no_follow ? lstat(path.c_str(), &named) : stat(path.c_str(), &named)) != 0 ||
        named.st_dev != st.st_dev || named.st_ino != st.st_ino) {
      fprintf(stderr, "path %s\n", path.c_str());
      Die("the fd is not the file the path names");
    }
  }

  char buf[PATH_MAX + 1];
  std::string link = "/proc/self/fd/" + std::to_string(fd->get());
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) Die("readlink");
  std::string real(buf, static_cast<size_t>(n));
  if (absl::EndsWith(real, " (deleted)")) real.resize(real.size() - 10);
  const bool in_rw = absl::StartsWith(real, f.root + "/rw/") || real == f.root + "/rw";
  const bool in_ro = absl::StartsWith(real, f.ro + "/") || real == f.ro;
  const bool in_proc = absl::StartsWith(real, "/proc/") || real == "/proc";
  const bool is_file = real == f.file;
  // /proc paths of other objects (pipe:[..], anon_inode:..) never come from Open.
  if (!in_rw && !in_proc && !is_file) {
    fprintf(stderr, "opened %s\n", real.c_str());
    Die("an fd outside every rule");
  }
  const bool writes = (flags & O_PATH) == 0 && ((flags & O_ACCMODE) != O_RDONLY);
  if (writes && (in_ro || in_proc || is_file)) {
    fprintf(stderr, "opened %s for writing\n", real.c_str());
    Die("write access where the rule has no w");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  if (size < 9) return 0;
  const std::string prefixes[] = {f.root + "/rw/", f.ro + "/", "/proc/self/", f.file, "/", ""};
  std::string path = prefixes[data[0] % (sizeof(prefixes) / sizeof(prefixes[0]))];
  uint32_t flags = Le32(data + 1);
  uint32_t mode = Le32(data + 5);
  path.append(reinterpret_cast<const char*>(data + 9), size - 9);

  const Snapshot before = Take(f);
  absl::StatusOr<vow::UniqueFd> fd = f.policy->Open(path, flags, mode);
  const Snapshot after = Take(f);
  CheckSideEffects(f, before, after, flags, mode);
  CheckResult(f, path, flags, fd);
  // Each input starts from the same tree.
  if (!(before == after)) Restore(before, after);
  return 0;
}
