// An unmodified hostile program for //tests:real_programs_test: it has no vow code in it
// and is run under `vow run`, which must contain it. argv[1] picks one act. Untrusted side.
//
// Exit codes: 0 = the hostile act SUCCEEDED (the sandbox failed); 3 = the act was refused
// (errno printed as "refused: NAME: strerror"); 2 = usage. Killed by a signal when the
// sandbox kills it.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sched.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <string>

namespace {

int Refused(const char* what) {
  printf("refused: %s: %s\n", what, strerror(errno));
  fflush(stdout);
  return 3;
}

// Tries to read `path`; prints its first line when it could.
int TryRead(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return Refused(path);
  char buf[256];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n < 0) return Refused(path);
  buf[n] = '\0';
  char* nl = strchr(buf, '\n');
  if (nl != nullptr) *nl = '\0';
  printf("escaped: read %s: %s\n", path, buf);
  return 0;
}

int Exec() {
  char* const args[] = {const_cast<char*>("/usr/bin/true"), nullptr};
  char* const env[] = {nullptr};
  execve(args[0], args, env);
  return Refused("execve /usr/bin/true");
}

int AnonExec() {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Refused("mmap anonymous PROT_EXEC");
  printf("escaped: anonymous PROT_EXEC page at %p\n", p);
  return 0;
}

int AnonMprotectExec() {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Refused("mmap anonymous PROT_READ|PROT_WRITE");
  if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0) return Refused("mprotect PROT_EXEC");
  printf("escaped: anonymous page made PROT_EXEC at %p\n", p);
  return 0;
}

// Opens `path` (a library outside the loader set) and maps it executable.
int MapLibrary(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Refused(path);
  printf("opened %s\n", path);
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) return Refused("mmap PROT_EXEC of the opened library");
  printf("escaped: %s mapped executable at %p\n", path, p);
  return 0;
}

// Every way out of the empty root it knows; succeeds if any one of them reads a host file.
int EscapeMountNs(const char* allowed_dir) {
  const std::string dir = allowed_dir;
  const std::string via_dotdot = dir + "/../../../../../etc/passwd";
  const char* direct[] = {"/proc/1/root/etc/passwd", "/proc/self/root/etc/passwd",
                          "/proc/self/cwd/etc/passwd", via_dotdot.c_str(), "/etc/passwd"};
  bool escaped = false;
  for (const char* path : direct) escaped |= TryRead(path) == 0;
  // A symlink planted in the allowed directory (if the test made one).
  const std::string link = dir + "/passwd_link";
  escaped |= TryRead(link.c_str()) == 0;
  // chdir into the allowed directory, then climb with relative paths.
  if (chdir(allowed_dir) != 0) {
    Refused("chdir into the allowed directory");
  } else {
    escaped |= TryRead("../../../../../etc/passwd") == 0;
    for (int i = 0; i < 8; ++i) {
      if (chdir("..") != 0) Refused("chdir ..");
    }
    escaped |= TryRead("etc/passwd") == 0;
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) != nullptr) printf("cwd after climbing: %s\n", cwd);
  }
  // A directory fd of the allowed directory, then openat with "..".
  int dfd = open(allowed_dir, O_RDONLY | O_DIRECTORY);
  if (dfd < 0) {
    Refused("open of the allowed directory");
  } else {
    int fd = openat(dfd, "../../../../../etc/passwd", O_RDONLY);
    if (fd >= 0) {
      printf("escaped: openat(dirfd, ../../etc/passwd)\n");
      escaped = true;
      close(fd);
    } else {
      Refused("openat(dirfd, ../../etc/passwd)");
    }
    close(dfd);
  }
  if (escaped) return 0;
  printf("contained\n");
  return 3;
}

int AbstractSocket(const char* name) {
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0) return Refused("socket(AF_UNIX)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = strlen(name);
  if (len + 1 > sizeof(addr.sun_path)) return 2;
  memcpy(addr.sun_path + 1, name, len);  // sun_path[0] == '\0': abstract
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + len);
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    return Refused("connect to the host's abstract socket");
  }
  printf("escaped: connected to the host's abstract socket @%s\n", name);
  return 0;
}

// Looks at fds 0-2 for an fd of the broker's (vow run gives the program vow's own 0-2):
// a socket or an anonymous inode (epoll, eventfd, pidfd) there is one; an epoll fd would
// even take the program's own fds into the broker's event loop.
int StdioFds() {
  bool escaped = false;
  for (int fd = 0; fd <= 2; ++fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
      printf("fd %d: %s\n", fd, strerror(errno));
      continue;
    }
    const unsigned type = st.st_mode & S_IFMT;
    if (type == S_IFSOCK || type == 0) {
      escaped = true;
      printf("escaped: fd %d is %s\n", fd, type == 0 ? "an anonymous inode" : "a socket");
      // A readable pipe of its own, with data the broker's loop would take for a pointer.
      int p[2];
      if (pipe(p) == 0 && write(p[1], "x", 1) == 1) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = 0x4141414141414141ull;
        if (epoll_ctl(fd, EPOLL_CTL_ADD, p[0], &ev) == 0) {
          printf("escaped: a pipe of its own added to the epoll instance at fd %d\n", fd);
        }
      }
    } else {
      printf("fd %d: file type %o\n", fd, type >> 12);
    }
  }
  if (escaped) return 0;
  printf("contained\n");
  return 3;
}

// fchmod and fchown, which the broker answers for an fd whose file is under a `w` rule
// and open for writing (README "Files the broker creates"). `path` is such a file. Each
// attempt that does more than the broker allows prints "escaped".
int FileAttributes(const char* path) {
  bool escaped = false;
  auto mode_of = [](int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? static_cast<unsigned>(st.st_mode & 07777) : 07777u;
  };
  int rw = open(path, O_RDWR);
  if (rw < 0) return Refused(path);
  // Allowed, without the setuid/setgid/sticky bits (the broker is root: a setuid file of
  // the worker's making would be a way out for anyone).
  if (fchmod(rw, 06755 | S_ISVTX) != 0) return Refused("fchmod of its own file");
  printf("mode after fchmod 07755: %04o\n", mode_of(rw));
  if ((mode_of(rw) & 07000) != 0) escaped = true, printf("escaped: a setuid/setgid/sticky bit\n");
  // The same file read-only: refused.
  const int ro = open(path, O_RDONLY);
  if (ro < 0) return Refused(path);
  if (fchmod(ro, 0666) == 0) escaped = true, printf("escaped: fchmod of a read-only fd\n");
  else printf("refused: fchmod of a read-only fd: %s\n", strerror(errno));
  // Its stdout, a file it was given outside its rules (open for writing): refused, and
  // its mode stays as it was.
  const unsigned before = mode_of(1);
  if (fchmod(1, 0666) == 0) escaped = true, printf("escaped: fchmod of stdout\n");
  else printf("refused: fchmod of stdout: %s\n", strerror(errno));
  if (mode_of(1) != before) escaped = true, printf("escaped: stdout's mode changed\n");
  // A pipe: no file.
  int p[2];
  if (pipe(p) == 0) {
    if (fchmod(p[1], 0777) == 0) escaped = true, printf("escaped: fchmod of a pipe\n");
    else printf("refused: fchmod of a pipe: %s\n", strerror(errno));
  }
  // A file it no longer names: `path` unlinked while held, and a new file made with the
  // name the kernel then gives the held one ("PATH (deleted)"): refused, for the broker
  // would check the rules for the new file and change the held one. Needs cpath.
  const int gone = open(path, O_RDWR);
  const std::string decoy = std::string(path) + " (deleted)";
  if (gone < 0 || unlink(path) != 0) return Refused("unlink of its own file");
  const int made = open(decoy.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (made < 0) return Refused("create the decoy");
  if (fchmod(gone, 0644) == 0) {
    escaped = true, printf("escaped: fchmod of a file its name no longer names\n");
  } else {
    printf("refused: fchmod of a file its name no longer names: %s\n", strerror(errno));
  }
  // Put `path` back (the test checks its mode from outside): a new file with rw's mode.
  const int back = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (back < 0 || fchmod(back, mode_of(rw)) != 0) return Refused("recreate the file");
  rw = back;
  // fchown: to what the file has, nothing to do (allowed); to anyone else, refused.
  struct stat st;
  if (fstat(rw, &st) != 0) return Refused("fstat");
  if (fchown(rw, st.st_uid, st.st_gid) != 0) return Refused("fchown to its own owner");
  printf("fchown to its own owner and group: ok\n");
  if (fchown(rw, st.st_uid + 1000, static_cast<gid_t>(-1)) == 0) {
    escaped = true, printf("escaped: fchown to another owner\n");
  } else {
    printf("refused: fchown to another owner: %s\n", strerror(errno));
  }
  if (fchown(rw, static_cast<uid_t>(-1), st.st_gid + 1000) == 0) {
    escaped = true, printf("escaped: fchown to another group\n");
  } else {
    printf("refused: fchown to another group: %s\n", strerror(errno));
  }
  if (escaped) return 0;
  printf("contained\n");
  return 3;
}

// Renames FROM to TO (an ancestor of a narrower rule's path, allowed by a wider rule),
// then reads FILE and appends to it under its new path (review h71).
int RenameThenUse(const char* from, const char* to, const char* file) {
  if (rename(from, to) != 0) return Refused("rename of the ancestor");
  int rc = 3;
  if (TryRead(file) == 0) rc = 0;
  const int fd = open(file, O_WRONLY | O_APPEND);
  if (fd >= 0 && write(fd, "PWNED\n", 6) == 6) {
    printf("escaped: appended to %s\n", file);
    rc = 0;
  } else {
    Refused("append after the rename");
  }
  if (fd >= 0) close(fd);
  (void)rename(to, from);
  return rc;
}

// Unlinks FILE and makes DIR, both spelled through a symlink in a wider rule that leads
// into a narrower one (review h71). 0 if either succeeded.
int ThroughSymlink(const char* file, const char* dir) {
  int rc = 3;
  if (unlink(file) == 0) printf("escaped: unlinked %s\n", file), rc = 0;
  else Refused("unlink through the symlink");
  if (mkdir(dir, 0755) == 0) printf("escaped: made %s\n", dir), rc = 0;
  else Refused("mkdir through the symlink");
  return rc;
}

// Executable memory through a loader-set fd the kernel ignores (MAP_ANONYMOUS), and a
// writable and executable private mapping of the library itself (review h71).
int ExecMemoryThroughAnFd(const char* lib) {
  const int fd = open(lib, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Refused(lib);
  int rc = 3;
  void* anon = mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS, fd, 0);
  if (anon != MAP_FAILED) {
    static const unsigned char kRet42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};  // mov eax,42; ret
    memcpy(anon, kRet42, sizeof(kRet42));
    printf("escaped: ran anonymous code: %d\n", reinterpret_cast<int (*)()>(anon)());
    rc = 0;
  } else {
    Refused("mmap(PROT_WRITE|PROT_EXEC, MAP_ANONYMOUS) with a library's fd");
  }
  // Read-only and executable: no code of its own in it, but still anonymous memory the
  // kernel would make executable (the MAP_ANONYMOUS check alone refuses it).
  void* rx = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, fd, 0);
  if (rx != MAP_FAILED) {
    printf("escaped: anonymous executable memory\n");
    rc = 0;
  } else {
    Refused("mmap(PROT_EXEC, MAP_ANONYMOUS) with a library's fd");
  }
  void* wx = mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE, fd, 0);
  if (wx != MAP_FAILED) {
    printf("escaped: a writable executable mapping of %s\n", lib);
    rc = 0;
  } else {
    Refused("mmap(PROT_WRITE|PROT_EXEC) of a library");
  }
  close(fd);
  return rc;
}

// execv of PATH with PATH and the remaining arguments as its argv: the new image's exit
// code if it ran, 3 (the errno printed) if the execv was refused.
int ExecPath(int argc, char** argv) {
  execv(argv[2], argv + 2);
  return Refused("execv");
}

// Under umask 077, then 022: DIR/private and DIR/privdir, then DIR/public and
// DIR/pubdir, each asked for with 0666/0777 (the test reads their modes).
int UmaskCreate(const std::string& dir) {
  umask(077);
  int fd = open((dir + "/private").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0666);
  if (fd < 0 || mkdir((dir + "/privdir").c_str(), 0777) != 0) return Refused("create under 077");
  close(fd);
  umask(022);
  fd = open((dir + "/public").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0666);
  if (fd < 0 || mkdir((dir + "/pubdir").c_str(), 0777) != 0) return Refused("create under 022");
  close(fd);
  printf("made\n");
  return 0;
}

// Under `proc`: its own RLIMIT_NOFILE may change (pid 0); then another process's
// (PID: a process of the same uid outside the sandbox), and its priority (review h71).
// `how`: "prlimit" or "nice" (the default penalty kills at the first refusal).
int LimitOther(pid_t pid, const std::string& how) {
  struct rlimit own = {64, 64};
  if (prlimit(0, RLIMIT_NOFILE, &own, nullptr) != 0) return Refused("prlimit of itself");
  if (setpriority(PRIO_PROCESS, 0, 1) != 0) return Refused("setpriority of itself");
  printf("own limit and priority set\n");
  if (how == "prlimit") {
    struct rlimit one = {1, 1};
    if (prlimit(pid, RLIMIT_NOFILE, &one, nullptr) != 0) return Refused("prlimit of another");
    printf("escaped: set RLIMIT_NOFILE of %d\n", pid);
    return 0;
  }
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(pid), 19) != 0) {
    return Refused("setpriority of another");
  }
  printf("escaped: reniced %d\n", pid);
  return 0;
}

// Opens its own /proc/self/mem for writing (a `w` rule on /proc): writing there patches
// its own code (review h73).
int WriteOwnMem() {
  const int fd = open("/proc/self/mem", O_RDWR);
  if (fd < 0) return Refused("/proc/self/mem for writing");
  printf("escaped: /proc/self/mem open for writing\n");
  close(fd);
  return 0;
}

// Maps a loader-set library PROT_EXEC while single-threaded (allowed: the loader's own
// way), then again with a second thread alive (refused: that thread could swap the fd
// number between the broker's check and the kernel's lookup; review h73).
int MapLibraryThreaded(const char* lib) {
  const int fd = open(lib, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Refused(lib);
  void* one = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  if (one == MAP_FAILED) return Refused("mmap PROT_EXEC single-threaded");
  printf("mapped single-threaded\n");
  pthread_t t;
  if (pthread_create(&t, nullptr, [](void*) -> void* { pause(); return nullptr; }, nullptr) !=
      0) {
    return Refused("pthread_create");
  }
  void* two = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
  if (two != MAP_FAILED) {
    printf("escaped: mapped with a second thread alive\n");
    return 0;
  }
  return Refused("mmap PROT_EXEC with a second thread alive");
}

// A process sharing its fd table (clone with CLONE_FILES, no CLONE_THREAD) under `proc`:
// it could swap an fd between the broker's check of a mapping and the kernel's lookup
// (review h73). 0 if the clone was made.
int CloneFiles() {
  const long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, nullptr, nullptr, 0);
  if (pid < 0) return Refused("clone(CLONE_FILES)");
  if (pid == 0) _exit(0);
  waitpid(static_cast<pid_t>(pid), nullptr, 0);
  printf("escaped: a process sharing the fd table\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IONBF, 0);
  if (argc < 2) return 2;
  const std::string act = argv[1];
  if (act == "exec") return Exec();
  if (act == "anon_exec") return AnonExec();
  if (act == "anon_mprotect_exec") return AnonMprotectExec();
  if (act == "map_library" && argc == 3) return MapLibrary(argv[2]);
  if (act == "escape_mountns" && argc == 3) return EscapeMountNs(argv[2]);
  if (act == "abstract_socket" && argc == 3) return AbstractSocket(argv[2]);
  if (act == "read" && argc == 3) return TryRead(argv[2]) == 0 ? 0 : 3;
  if (act == "stdio_fds") return StdioFds();
  if (act == "fattr" && argc == 3) return FileAttributes(argv[2]);
  if (act == "rename_then_use" && argc == 5) return RenameThenUse(argv[2], argv[3], argv[4]);
  if (act == "through_symlink" && argc == 4) return ThroughSymlink(argv[2], argv[3]);
  if (act == "exec_memory_through_fd" && argc == 3) return ExecMemoryThroughAnFd(argv[2]);
  if (act == "exec_path" && argc >= 3) return ExecPath(argc, argv);
  if (act == "umask_create" && argc == 3) return UmaskCreate(argv[2]);
  if (act == "write_own_mem") return WriteOwnMem();
  if (act == "map_library_threaded" && argc == 3) return MapLibraryThreaded(argv[2]);
  if (act == "clone_files") return CloneFiles();
  if (act == "limit_other" && argc == 4) return LimitOther(static_cast<pid_t>(atoi(argv[2])), argv[3]);
  fprintf(stderr, "usage: %s exec|anon_exec|anon_mprotect_exec|map_library LIB|"
                  "escape_mountns DIR|abstract_socket NAME|read FILE|stdio_fds|fattr FILE|"
                  "rename_then_use FROM TO FILE|through_symlink FILE DIR|"
                  "exec_memory_through_fd LIB|exec_path PATH [ARGS]|umask_create DIR|limit_other PID prlimit|nice|write_own_mem|map_library_threaded LIB|clone_files\n",
          argv[0]);
  return 2;
}
