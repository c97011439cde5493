#include "tests/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
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
    if (!absl::SimpleAtoi(e->d_name, &fd) || (pid == getpid() && fd == own)) continue;
    if (pid == getpid()) {
      char target[64] = {};
      const std::string link = absl::StrCat(dir, "/", e->d_name);
      if (readlink(link.c_str(), target, sizeof(target) - 1) > 0 &&
          (absl::StartsWith(target, "net:[") || absl::StartsWith(target, "ipc:["))) {
        continue;  // the namespace stock's
      }
    }
    fds.insert(fd);
  }
  closedir(d);
  return fds;
}

std::vector<std::string> FdsBeyond(const std::set<int>& before, absl::Duration within) {
  const absl::Time deadline = absl::Now() + within;
  std::vector<int> extra;
  for (;;) {
    extra.clear();
    for (int fd : OpenFds(getpid())) {
      if (before.count(fd) == 0) extra.push_back(fd);
    }
    if (extra.empty() || absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::vector<std::string> named;
  for (int fd : extra) {
    char target[256] = {};
    const std::string link = absl::StrCat("/proc/self/fd/", fd);
    if (readlink(link.c_str(), target, sizeof(target) - 1) < 0) snprintf(target, sizeof(target), "?");
    named.push_back(absl::StrCat(fd, "->", target));
  }
  return named;
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

std::string Runfile(const std::string& path) {
  const char* srcdir = getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/vow/", path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int VowRun::code() const {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

VowRun RunVow(const std::vector<std::string>& args, const std::string& stdin_file,
              int closed_stdio, const std::string& stdout_file) {
  TempDir io;
  const std::string out_path = io.path() + "/stdout";
  const std::string err_path = io.path() + "/stderr";
  std::vector<std::string> argv_s = {Runfile("broker/vow")};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(stdin_file.c_str(), O_RDONLY);
    int out = stdout_file.empty()
                  ? open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600)
                  : open(stdout_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) _exit(121);
    setenv("HOME", io.path().c_str(), 1);
    setenv("PATH", "/usr/bin:/bin", 1);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (int fd = 0; fd <= 2; ++fd) {
      if ((closed_stdio & (1 << fd)) != 0) close(fd);
    }
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(122);
  }
  VowRun run;
  if (pid > 0 && waitpid(pid, &run.status, 0) == pid) {
    run.out = ReadFile(out_path);
    run.err = ReadFile(err_path);
  } else {
    run.err = absl::StrCat("RunVow: fork or waitpid failed: ", strerror(errno));
  }
  return run;
}

std::string Describe(const VowRun& r) {
  return absl::StrCat("exit ", r.code(), "\n--- stdout:\n", r.out, "\n--- stderr:\n", r.err);
}

StderrCapture::StderrCapture() {
  mem_ = memfd_create("vow-test-stderr", MFD_CLOEXEC);
  if (mem_ < 0) return;
  fflush(stderr);
  saved_ = dup(2);
  if (saved_ >= 0 && dup2(mem_, 2) != 2) {
    close(saved_);
    saved_ = -1;
  }
}

StderrCapture::~StderrCapture() {
  (void)Finish();
  if (mem_ >= 0) close(mem_);
}

std::string StderrCapture::Finish() {
  if (saved_ < 0) return "";
  fflush(stderr);
  dup2(saved_, 2);
  close(saved_);
  saved_ = -1;
  std::string text;
  char buf[4096];
  off_t at = 0;
  ssize_t n;
  while ((n = pread(mem_, buf, sizeof(buf), at)) > 0) {
    text.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return text;
}

}  // namespace vow::testing
