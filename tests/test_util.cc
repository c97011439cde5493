#include "tests/test_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vow::testing {

TempDir::TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base != nullptr ? base : "/tmp", "/vow.XXXXXX");
  char* made = mkdtemp(templ.data());
  if (made == nullptr) {
    perror("mkdtemp");
    abort();
  }
  // Resolve symlinks so that policy paths are canonical.
  path_ = std::filesystem::canonical(made).string();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::WriteFile(const std::string& name, const std::string& contents) const {
  std::filesystem::path full = std::filesystem::path(path_) / name;
  std::filesystem::create_directories(full.parent_path());
  std::ofstream out(full, std::ios::binary);
  out << contents;
  return full.string();
}

std::string TempDir::MakeDir(const std::string& name) const {
  std::filesystem::path full = std::filesystem::path(path_) / name;
  std::filesystem::create_directories(full);
  return full.string();
}

std::set<int> OpenFds(pid_t pid) {
  std::set<int> fds;
  std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return fds;
  int own = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    int fd;
    if (absl::SimpleAtoi(e->d_name, &fd) && !(pid == getpid() && fd == own)) fds.insert(fd);
  }
  closedir(d);
  return fds;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace vow::testing
