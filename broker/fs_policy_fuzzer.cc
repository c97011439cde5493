// libFuzzer target for FsPolicy::Open: hostile path bytes, flags and mode against a fixed
// set of rules over a small tree (with symlinks leading in, out, and into a narrower
// nested rule) plus /proc. Runs in the broker's role. Besides "no crash, no sanitizer
// report", it checks what Open() promises:
//  - a refusal always carries an errno (ErrnoOf != 0);
//  - an fd it returns is O_CLOEXEC, is a directory only if O_DIRECTORY was asked, and
//    really lies beneath a rule (its /proc/self/fd path), with write access only where
//    that rule grants `w`.
// Input layout: byte 0 picks a path prefix, bytes 1..4 the flags, 5..8 the mode (both
// little-endian), the rest is appended to the prefix.
// Build and run: see the `# libFuzzer` section of .bazelrc.
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
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

void Touch(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) Die("setup: create");
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
    char tmpl[] = "/tmp/vow_fs_fuzz_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die("setup: mkdtemp");
    char* real = realpath(tmpl, nullptr);
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  if (size < 9) return 0;
  const std::string prefixes[] = {f.root + "/rw/", f.ro + "/", "/proc/self/", f.file, "/", ""};
  std::string path = prefixes[data[0] % (sizeof(prefixes) / sizeof(prefixes[0]))];
  uint32_t flags = Le32(data + 1);
  uint32_t mode = Le32(data + 5);
  path.append(reinterpret_cast<const char*>(data + 9), size - 9);

  absl::StatusOr<vow::UniqueFd> fd = f.policy->Open(path, flags, mode);
  if (!fd.ok()) {
    if (vow::ErrnoOf(fd.status()) == 0) Die("a refusal without an errno");
    return 0;
  }
  if (!fd->valid()) Die("an ok result without an fd");
  if ((fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) == 0) Die("fd without FD_CLOEXEC");
  struct stat st;
  if (fstat(fd->get(), &st) != 0) Die("fstat");
  if (S_ISDIR(st.st_mode) && (flags & O_DIRECTORY) == 0) Die("a directory without O_DIRECTORY");

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
  return 0;
}
