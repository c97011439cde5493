// Every test that applies layers does it in a forked child; the child reports with its
// exit code (0: every check held; otherwise the number of the failed check, with a line
// on stderr) and never runs gtest code.
#include "worker/layers.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/securebits.h>

#include <net/if.h>
#include <sys/ioctl.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace vow {
namespace {

// Runs `body` in a forked child and returns its exit code (or 1000 + signal).
int InChild(const std::function<int()>& body) {
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  EXPECT_GT(pid, 0);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// In the child: reports a failed check on stderr and returns its number.
int Fail(int code, const char* what) {
  dprintf(2, "check %d failed: %s (errno %d: %s)\n", code, what, errno, strerror(errno));
  return code;
}

int Apply(const LayerSpec& spec) {
  const char* step = nullptr;
  const int r = ApplyLayers(spec, &step);
  if (r != 0) {
    dprintf(2, "ApplyLayers: %s: %s\n", step ? step : "?", strerror(-r));
    return 90;
  }
  return 0;
}

// The errno of open(path), 0 if it opened.
int OpenErrno(const char* path) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno;
}

LayerSpec Only() {
  LayerSpec s;
  s.mountns = s.netns = s.ipcns = s.utsns = s.pidns = s.userns = s.landlock = false;
  s.drop_identity = false;
  return s;
}

TEST(LayersTest, EmptyRootHidesEveryHostPath) {
  ASSERT_EQ(OpenErrno("/etc/passwd"), 0);
  EXPECT_EQ(InChild([] {
              if (int r = Apply(LayerSpec{}); r != 0) return r;
              if (OpenErrno("/etc/passwd") != ENOENT) return Fail(1, "/etc/passwd not ENOENT");
              if (OpenErrno("/proc/self/status") != ENOENT) return Fail(2, "/proc is there");
              if (OpenErrno("/tmp") != ENOENT) return Fail(3, "/tmp is there");
              return 0;
            }),
            0);
}

TEST(LayersTest, MountNamespaceAloneGivesEnoent) {
  EXPECT_EQ(InChild([] {
              LayerSpec spec = Only();
              spec.mountns = true;
              if (int r = Apply(spec); r != 0) return r;
              if (OpenErrno("/etc/passwd") != ENOENT) return Fail(1, "/etc/passwd not ENOENT");
              // The new root is read-only: nothing can be created in it.
              if (mkdir("/x", 0700) == 0 || errno != EROFS) return Fail(2, "mkdir not EROFS");
              return 0;
            }),
            0);
  // The host's view is untouched.
  EXPECT_EQ(OpenErrno("/etc/passwd"), 0);
}

TEST(LayersTest, LandlockAloneGivesEacces) {
  EXPECT_EQ(InChild([] {
              LayerSpec spec = Only();
              spec.landlock = true;
              if (int r = Apply(spec); r != 0) return r;
              if (OpenErrno("/etc/passwd") != EACCES) return Fail(1, "/etc/passwd not EACCES");
              if (mkdir("/tmp/vow-layers-test-never", 0700) == 0 || errno != EACCES) {
                return Fail(2, "mkdir not EACCES");
              }
              return 0;
            }),
            0);
}

// A listening abstract unix socket of the parent, and the address to reach it.
struct AbstractListener {
  int fd = -1;
  sockaddr_un addr = {};
  socklen_t len = 0;
  AbstractListener() {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sun_family = AF_UNIX;
    const std::string name = "vow-layers-test-" + std::to_string(getpid());
    memcpy(addr.sun_path + 1, name.data(), name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0) << strerror(errno);
    EXPECT_EQ(listen(fd, 8), 0);
  }
  ~AbstractListener() { close(fd); }
  // The errno of a connect from the calling process, 0 if it connected.
  int ConnectErrno() const {
    const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    const int r = connect(s, reinterpret_cast<const sockaddr*>(&addr), len);
    const int e = errno;
    close(s);
    return r == 0 ? 0 : e;
  }
};

TEST(LayersTest, HostAbstractSocketIsOutOfReach) {
  AbstractListener listener;
  ASSERT_EQ(listener.ConnectErrno(), 0);  // reachable without layers
  // The network namespace: another abstract namespace, where the name does not exist.
  EXPECT_EQ(InChild([&] {
              LayerSpec spec = Only();
              spec.netns = true;
              if (int r = Apply(spec); r != 0) return r;
              if (listener.ConnectErrno() != ECONNREFUSED) return Fail(1, "netns: connected");
              return 0;
            }),
            0);
  // Landlock's abstract-socket scope, in the host's network namespace.
  EXPECT_EQ(InChild([&] {
              LayerSpec spec = Only();
              spec.landlock = true;
              if (int r = Apply(spec); r != 0) return r;
              if (listener.ConnectErrno() != EPERM) return Fail(1, "landlock: not EPERM");
              return 0;
            }),
            0);
  EXPECT_EQ(InChild([&] {
              if (int r = Apply(LayerSpec{}); r != 0) return r;
              if (listener.ConnectErrno() == 0) return Fail(1, "all layers: connected");
              return 0;
            }),
            0);
}

// Parses "Name:\tvalue" out of /proc/self/status text.
std::string Field(const std::string& status, const std::string& name) {
  const size_t at = status.find("\n" + name + ":\t");
  if (at == std::string::npos) return "<missing>";
  const size_t start = at + name.size() + 3;
  std::string value = status.substr(start, status.find('\n', start) - start);
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

// /proc/self/status of a child after `spec`, read through an fd opened before.
std::string StatusAfter(const LayerSpec& spec) {
  int pipe_fds[2];
  EXPECT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  const int code = InChild([&] {
    const int status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (status_fd < 0) return Fail(1, "open /proc/self/status");
    if (int r = Apply(spec); r != 0) return r;
    char buf[8192];
    const ssize_t n = pread(status_fd, buf, sizeof(buf), 0);
    if (n <= 0) return Fail(2, "read status");
    if (write(pipe_fds[1], buf, n) != n) return Fail(3, "write");
    return 0;
  });
  close(pipe_fds[1]);
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) out.append(buf, n);
  close(pipe_fds[0]);
  EXPECT_EQ(code, 0);
  return "\n" + out;
}

TEST(LayersTest, IdentityIsNobodyWithoutCapabilities) {
  for (bool userns : {false, true}) {
    SCOPED_TRACE(userns ? "with userns" : "without userns");
    LayerSpec spec = Only();
    spec.drop_identity = true;
    spec.userns = userns;
    const std::string status = StatusAfter(spec);
    EXPECT_EQ(Field(status, "Uid"), "65534\t65534\t65534\t65534");
    EXPECT_EQ(Field(status, "Gid"), "65534\t65534\t65534\t65534");
    EXPECT_EQ(Field(status, "Groups"), "");
    EXPECT_EQ(Field(status, "CapInh"), "0000000000000000");
    EXPECT_EQ(Field(status, "CapPrm"), "0000000000000000");
    EXPECT_EQ(Field(status, "CapEff"), "0000000000000000");
    EXPECT_EQ(Field(status, "CapBnd"), "0000000000000000");
    EXPECT_EQ(Field(status, "CapAmb"), "0000000000000000");
    EXPECT_EQ(Field(status, "NoNewPrivs"), "1");
  }
  // Every layer at once, and another identity.
  LayerSpec spec;
  spec.uid = 4242;
  spec.gid = 4343;
  spec.userns = false;
  const std::string status = StatusAfter(spec);
  EXPECT_EQ(Field(status, "Uid"), "4242\t4242\t4242\t4242");
  EXPECT_EQ(Field(status, "Gid"), "4343\t4343\t4343\t4343");
  EXPECT_EQ(Field(status, "CapBnd"), "0000000000000000");
  EXPECT_EQ(Field(status, "CapEff"), "0000000000000000");
}

// The securebits that keep capabilities from coming back (no root fix-up, no ambient
// raise, each locked) are set in the namespace the worker ends up in: with a user
// namespace, the drop is made after its unshare (which resets the securebits).
TEST(LayersTest, SecurebitsAreLockedWithAndWithoutUserNamespace) {
  for (bool userns : {false, true}) {
    SCOPED_TRACE(userns ? "with userns" : "without userns");
    LayerSpec spec = Only();
    spec.drop_identity = true;
    spec.userns = userns;
    const int want = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                     SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    EXPECT_EQ(InChild([&] {
                if (int r = Apply(spec); r != 0) return r;
                const int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
                if (bits < 0) return Fail(1, "PR_GET_SECUREBITS");
                if ((bits & want) != want) return Fail(2, "securebits not locked");
                return 0;
              }),
              0);
  }
}

TEST(LayersTest, UserNamespaceChangesTheNamespace) {
  LayerSpec spec = Only();
  spec.drop_identity = true;
  spec.userns = true;
  EXPECT_EQ(InChild([&] {
              char before[64] = {}, after[64] = {};
              if (readlink("/proc/self/ns/user", before, sizeof(before) - 1) <= 0) {
                return Fail(1, "readlink before");
              }
              const int proc = open("/proc/self/ns", O_PATH | O_DIRECTORY | O_CLOEXEC);
              if (int r = Apply(spec); r != 0) return r;
              if (readlinkat(proc, "user", after, sizeof(after) - 1) <= 0) {
                return Fail(2, "readlink after");
              }
              if (strcmp(before, after) == 0) return Fail(3, "same user namespace");
              // Unmapped in its own namespace: it cannot become anyone else.
              if (syscall(SYS_setresuid, 0, 0, 0) == 0) return Fail(4, "setresuid(0) worked");
              return 0;
            }),
            0);
}

TEST(LayersTest, CannotSignalTheParent) {
  const pid_t parent = getpid();
  // Landlock's signal scope (still root, no id change).
  EXPECT_EQ(InChild([&] {
              LayerSpec spec = Only();
              spec.landlock = true;
              if (int r = Apply(spec); r != 0) return r;
              if (kill(parent, 0) == 0 || errno != EPERM) return Fail(1, "landlock: kill worked");
              return 0;
            }),
            0);
  // The identity drop alone.
  EXPECT_EQ(InChild([&] {
              LayerSpec spec = Only();
              spec.drop_identity = true;
              if (int r = Apply(spec); r != 0) return r;
              if (kill(parent, 0) == 0 || errno != EPERM) return Fail(1, "nobody: kill worked");
              return 0;
            }),
            0);
}

TEST(LayersTest, UtsAndIpcNamespaces) {
  const int queue = msgget(IPC_PRIVATE + 0x766f77, IPC_CREAT | 0600);
  ASSERT_GE(queue, 0) << strerror(errno);
  EXPECT_EQ(InChild([] {
              LayerSpec spec = Only();
              spec.utsns = spec.ipcns = true;
              if (int r = Apply(spec); r != 0) return r;
              char name[64] = {};
              if (gethostname(name, sizeof(name)) != 0 || strcmp(name, "vow") != 0) {
                return Fail(1, "hostname is not vow");
              }
              if (msgget(IPC_PRIVATE + 0x766f77, 0) >= 0 || errno != ENOENT) {
                return Fail(2, "the host's message queue is visible");
              }
              return 0;
            }),
            0);
  // The same child without ipcns sees the queue (the check above can fail).
  EXPECT_EQ(InChild([] { return msgget(IPC_PRIVATE + 0x766f77, 0) >= 0 ? 0 : Fail(1, "no queue"); }),
            0);
  msgctl(queue, IPC_RMID, nullptr);
}

TEST(LayersTest, ListedProgramRunsUnlistedDoesNot) {
  // /bin/true is dynamic: the kernel needs the loader at its PT_INTERP path in the new
  // root, and the loader needs libc (granted here by listing it; the broker brokers
  // these opens for real programs).
  for (bool mountns : {true, false}) {
    SCOPED_TRACE(mountns ? "empty root" : "host root");
    EXPECT_EQ(InChild([&] {
                const int listed = open("/bin/true", O_PATH | O_CLOEXEC);
                const int unlisted = open("/bin/echo", O_PATH | O_CLOEXEC);
                if (listed < 0 || unlisted < 0) return Fail(1, "open programs");
                LayerSpec spec;
                spec.mountns = mountns;
                spec.files[0] = "/lib64/ld-linux-x86-64.so.2";
                spec.files[1] = "/lib/x86_64-linux-gnu/libc.so.6";
                spec.file_count = 2;
                spec.exec_fds[0] = listed;
                spec.exec_fd_count = 1;
                if (int r = Apply(spec); r != 0) return r;
                const char* argv[] = {"echo", "unlisted program ran", nullptr};
                const char* envp[] = {nullptr};
                syscall(SYS_execveat, unlisted, "", argv, envp, AT_EMPTY_PATH);
                if (errno != EACCES) return Fail(2, "unlisted program: not EACCES");
                argv[0] = "true";
                argv[1] = nullptr;
                syscall(SYS_execveat, listed, "", argv, envp, AT_EMPTY_PATH);
                return Fail(3, "execveat of the listed program");
              }),
              0);
  }
}

TEST(LayersTest, PidNamespaceNeedsTheCloneFlag) {
  // A plain fork is not pid 1: refused, naming the layer.
  EXPECT_EQ(InChild([] {
              LayerSpec spec = Only();
              spec.pidns = true;
              const char* step = nullptr;
              const int r = ApplyLayers(spec, &step);
              if (r != -EINVAL || step == nullptr || strncmp(step, "pidns:", 6) != 0) {
                return Fail(1, "not refused as pidns");
              }
              return 0;
            }),
            0);
  EXPECT_EQ(LayerCloneFlags(LayerSpec{}), 0u);
  LayerSpec with_pid;
  with_pid.pidns = true;
  ASSERT_EQ(LayerCloneFlags(with_pid), static_cast<unsigned long>(CLONE_NEWPID));
  // Cloned into a new PID namespace (unshare + fork stands in for clone here): the
  // parent is not even there to signal.
  const pid_t parent = getpid();
  EXPECT_EQ(InChild([&] {
              if (syscall(SYS_unshare, LayerCloneFlags(with_pid)) != 0) return Fail(1, "unshare");
              return InChild([&] {
                LayerSpec spec = Only();
                spec.pidns = true;
                if (int r = Apply(spec); r != 0) return r;
                if (getpid() != 1) return Fail(2, "not pid 1");
                if (kill(parent, 0) == 0 || errno != ESRCH) return Fail(3, "parent is visible");
                return 0;
              });
            }),
            0);
}

TEST(LayersTest, MissingLayerIsRefusedBeforeAnythingChanges) {
  EXPECT_EQ(InChild([] {
              LayerSpec spec;
              spec.min_landlock_abi = 99;  // no kernel has it
              const char* step = nullptr;
              const int r = ApplyLayers(spec, &step);
              if (r != -EOPNOTSUPP) return Fail(1, "not EOPNOTSUPP");
              if (step == nullptr || strncmp(step, "landlock:", 9) != 0) {
                return Fail(2, "the step does not name landlock");
              }
              // Refused up front: still the host's root and root's identity.
              if (OpenErrno("/etc/passwd") != 0) return Fail(3, "a layer was applied");
              if (geteuid() != 0) return Fail(4, "the identity changed");
              return 0;
            }),
            0);
  LayerSpec spec;
  spec.min_landlock_abi = 99;
  EXPECT_NE(MissingLayer(spec, ProbeLayers()).find("landlock: the kernel has ABI"),
            std::string::npos);
}

TEST(LayersTest, MissingLayerNamesEachLayer) {
  LayerSupport all;
  all.landlock_abi = 7;
  all.userns = all.mountns = all.netns = all.ipcns = all.utsns = all.pidns = all.is_root = true;
  LayerSpec spec;
  spec.pidns = true;
  EXPECT_EQ(MissingLayer(spec, all), "");
  struct Case {
    bool LayerSupport::*field;
    const char* prefix;
  };
  for (const Case& c : {Case{&LayerSupport::userns, "userns:"}, Case{&LayerSupport::mountns, "mountns:"},
                        Case{&LayerSupport::netns, "netns:"}, Case{&LayerSupport::ipcns, "ipcns:"},
                        Case{&LayerSupport::utsns, "utsns:"}, Case{&LayerSupport::pidns, "pidns:"},
                        Case{&LayerSupport::is_root, "identity:"}}) {
    LayerSupport s = all;
    s.*c.field = false;
    EXPECT_EQ(MissingLayer(spec, s).rfind(c.prefix, 0), 0u) << c.prefix;
  }
  LayerSupport no_landlock = all;
  no_landlock.landlock_abi = 0;
  EXPECT_EQ(MissingLayer(spec, no_landlock), "landlock: the kernel has no Landlock");
  spec.landlock = false;
  EXPECT_EQ(MissingLayer(spec, no_landlock), "");
  spec.drop_identity = false;  // userns without the drop
  EXPECT_EQ(MissingLayer(spec, all).rfind("userns:", 0), 0u);
}

TEST(LayersTest, Describe) {
  LayerSupport s;
  s.landlock_abi = 7;
  s.userns = s.mountns = s.netns = s.ipcns = s.utsns = s.is_root = true;
  EXPECT_EQ(DescribeLayers(LayerSpec{}, s),
            "landlock ABI 7: on; userns: on; mountns: on; netns: on; ipcns: on; utsns: on; "
            "pidns: off (not available here); identity: 65534:65534, no capabilities");
  LayerSpec spec = Only();
  EXPECT_EQ(DescribeLayers(spec, LayerSupport{}),
            "landlock: off (not available here); userns: off (not available here); mountns: off "
            "(not available here); netns: off (not available here); ipcns: off (not available "
            "here); utsns: off (not available here); pidns: off (not available here); identity: "
            "kept (the broker's uid and capabilities)");
}

TEST(LayersTest, ProbeFindsWhatApplyUses) {
  const LayerSupport& s = ProbeLayers();
  // This machine (root, kernel 6.18) has all of them; the test documents it, and a
  // machine without one of them must see ApplyLayers refuse (MissingLayer).
  EXPECT_EQ(s.landlock_abi, static_cast<int>(syscall(SYS_landlock_create_ruleset, nullptr, 0, 1)));
  if (s.is_root && s.mountns && s.netns && s.ipcns && s.utsns && s.userns && s.landlock_abi > 0) {
    EXPECT_EQ(MissingLayer(LayerSpec{}, s), "");
    EXPECT_EQ(InChild([] { return Apply(LayerSpec{}); }), 0);
  } else {
    EXPECT_NE(MissingLayer(LayerSpec{}, s), "");
  }
}

// In the child: a seccomp filter that makes unshare() fail with EPERM, for every flag or
// only when the flags are exactly `only_flag` (0: every unshare).
bool RefuseUnshare(unsigned long only_flag) {
  struct sock_filter all[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_filter one[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(only_flag), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog;
  if (only_flag == 0) {
    prog = {static_cast<unsigned short>(sizeof(all) / sizeof(all[0])), all};
  } else {
    prog = {static_cast<unsigned short>(sizeof(one) / sizeof(one[0])), one};
  }
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

bool SameSupport(const LayerSupport& a, const LayerSupport& b) {
  return a.landlock_abi == b.landlock_abi && a.userns == b.userns && a.mountns == b.mountns &&
         a.netns == b.netns && a.ipcns == b.ipcns && a.utsns == b.utsns && a.pidns == b.pidns &&
         a.is_root == b.is_root;
}

// The probe that forks nothing sees what the forked child sees (this test process has
// no seccomp filter, so it must take the fork-free way).
TEST(LayersTest, ProbeByConfigAgreesWithTheForkedChild) {
  ProbeMethod method = ProbeMethod::kForkedChild;
  const LayerSupport fast = ProbeLayersUncached(&method);
  EXPECT_EQ(method, ProbeMethod::kKernelConfig);
  const LayerSupport forked = ProbeLayersByFork();
  EXPECT_TRUE(SameSupport(fast, forked))
      << "config: " << DescribeLayers(LayerSpec{}, fast)
      << "\nforked: " << DescribeLayers(LayerSpec{}, forked);
}

// Under a seccomp filter (a container's), the configuration cannot tell whether unshare()
// works: the probe forks, and its child finds every namespace refused.
TEST(LayersTest, UnderASeccompFilterTheProbeForks) {
  EXPECT_EQ(InChild([] {
              if (!RefuseUnshare(0)) return Fail(1, "install the filter");
              ProbeMethod method = ProbeMethod::kKernelConfig;
              const LayerSupport s = ProbeLayersUncached(&method);
              if (method != ProbeMethod::kForkedChild) return Fail(2, "did not fork");
              if (s.mountns || s.netns || s.ipcns || s.utsns || s.pidns || s.userns) {
                return Fail(3, "a refused namespace was reported available");
              }
              if (MissingLayer(LayerSpec{}, s).empty()) return Fail(4, "nothing missing");
              return 0;
            }),
            0);
}

// What the fork-free probe cannot see is caught by the spawn child: its unshare() fails
// and ApplyLayers names the layer; nothing is skipped.
TEST(LayersTest, RefusedUnshareFailsTheChildNamingTheLayer) {
  EXPECT_EQ(InChild([] {
              if (!RefuseUnshare(CLONE_NEWNET)) return Fail(1, "install the filter");
              LayerSpec spec = Only();
              spec.netns = true;
              const char* step = nullptr;
              const int r = ApplyLayers(spec, &step);
              if (r != -EPERM) return Fail(2, "ApplyLayers did not fail with EPERM");
              if (step == nullptr || strcmp(step, "netns: unshare(CLONE_NEWNET)") != 0) {
                return Fail(3, "the failed step does not name netns");
              }
              return 0;
            }),
            0);
}

// ---- The shared root (MakeSharedRoot): made once, entered by many workers. ----

// The inode of the namespace an fd (or a path) names.
ino_t NsInode(int dirfd, const char* path) {
  struct stat st;
  if (fstatat(dirfd, path, &st, path[0] == '\0' ? AT_EMPTY_PATH : 0) != 0) return 0;
  return st.st_ino;
}

TEST(LayersTest, SharedRootIsTheEmptyRootAndTheWorkerDropsItsFd) {
  const char* step = nullptr;
  const int root = MakeSharedRoot(LayerSpec{}, &step);
  ASSERT_GE(root, 0) << (step ? step : "?") << ": " << strerror(-root);
  const ino_t root_ino = NsInode(root, "");
  ASSERT_NE(root_ino, 0u);
  ASSERT_NE(root_ino, NsInode(AT_FDCWD, "/proc/self/ns/mnt"));
  // Two workers in turn: each enters the same namespace, sees nothing of the host and
  // cannot write to the root.
  for (int worker = 0; worker < 2; ++worker) {
    EXPECT_EQ(InChild([&] {
                const int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (self < 0) return Fail(1, "open /proc/self");
                LayerSpec spec;
                spec.shared_root_fd = root;
                if (int r = Apply(spec); r != 0) return r;
                if (NsInode(self, "ns/mnt") != root_ino) return Fail(2, "not in the shared root");
                if (OpenErrno("/etc/passwd") != ENOENT) return Fail(3, "/etc/passwd not ENOENT");
                if (OpenErrno("/tmp") != ENOENT) return Fail(4, "/tmp is there");
                if (mkdir("/x", 0700) == 0 || errno != EROFS) return Fail(5, "mkdir not EROFS");
                char cwd[64];
                if (getcwd(cwd, sizeof(cwd)) == nullptr || strcmp(cwd, "/") != 0) {
                  return Fail(6, "cwd is not the root");
                }
                // The namespace's fd is closed once entered: the worker never holds it.
                if (fcntl(root, F_GETFD) != -1 || errno != EBADF) return Fail(7, "fd still open");
                return 0;
              }),
              0);
  }
  // Without the shared root each worker has its own namespace.
  EXPECT_EQ(InChild([&] {
              const int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
              if (int r = Apply(LayerSpec{}); r != 0) return r;
              const ino_t ino = NsInode(self, "ns/mnt");
              return ino != 0 && ino != root_ino ? 0 : Fail(1, "shares the namespace");
            }),
            0);
  close(root);
}

TEST(LayersTest, SharedRootWithListedFilesBindsThem) {
  LayerSpec spec;
  spec.files[0] = "/bin/true";
  spec.file_count = 1;
  const char* step = nullptr;
  const int root = MakeSharedRoot(spec, &step);
  ASSERT_GE(root, 0) << (step ? step : "?") << ": " << strerror(-root);
  EXPECT_EQ(InChild([&] {
              LayerSpec in = spec;
              in.shared_root_fd = root;
              if (int r = Apply(in); r != 0) return r;
              if (access("/bin/true", X_OK) != 0) return Fail(1, "the listed file is not there");
              if (OpenErrno("/bin/false") != ENOENT) return Fail(2, "an unlisted file is there");
              return 0;
            }),
            0);
  close(root);
}

std::atomic<int> g_sigchld_count{0};
void CountSigchld(int) { g_sigchld_count.fetch_add(1); }

// The shared root's child ends without a signal. Its caller blocks every signal until the
// child has gone, so a SIGCHLD was queued for the process and the kernel woke another
// thread for it: with a thread asleep in a kernel-mode userfaultfd fault (a write from a
// registered buffer) that thread retried the fault in a loop, a CPU's worth, until the
// fault was resolved (call_deadline_test blamed the broker's loop for it). Counted here
// with a handler: this is the only thread, so a SIGCHLD is taken before MakeSharedRoot
// returns, as its signal mask is restored. (Every earlier test here reaps its children.)
TEST(LayersTest, SharedRootsChildEndsWithoutASignal) {
  struct sigaction count = {};
  count.sa_handler = CountSigchld;
  sigemptyset(&count.sa_mask);
  count.sa_flags = SA_RESTART;
  struct sigaction old;
  ASSERT_EQ(sigaction(SIGCHLD, &count, &old), 0);
  g_sigchld_count = 0;
  const char* step = nullptr;
  const int root = MakeSharedRoot(LayerSpec{}, &step);
  const int signals = g_sigchld_count.load();
  sigaction(SIGCHLD, &old, nullptr);
  ASSERT_GE(root, 0) << (step ? step : "?") << ": " << strerror(-root);
  close(root);
  EXPECT_EQ(signals, 0) << "MakeSharedRoot's child sent SIGCHLD when it ended";
  // And it was waited for (a child without an exit signal needs __WALL): no zombie left.
  errno = 0;
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG | __WALL), -1) << "a child of MakeSharedRoot is left";
  EXPECT_EQ(errno, ECHILD);
}

// A worker that keeps the broker's identity (every capability) could remount a shared
// root under its siblings: neither side accepts it.
TEST(LayersTest, SharedRootNeedsTheIdentityDrop) {
  LayerSpec keep;
  keep.userns = false;
  keep.drop_identity = false;
  const char* step = nullptr;
  EXPECT_EQ(MakeSharedRoot(keep, &step), -EINVAL);
  const int root = MakeSharedRoot(LayerSpec{}, &step);
  ASSERT_GE(root, 0) << (step ? step : "?") << ": " << strerror(-root);
  EXPECT_EQ(InChild([&] {
              LayerSpec spec = keep;
              spec.shared_root_fd = root;
              const char* failed = nullptr;
              if (ApplyLayers(spec, &failed) != -EINVAL) return Fail(1, "not refused");
              if (failed == nullptr || strstr(failed, "identity drop") == nullptr) {
                return Fail(2, "the step does not say why");
              }
              return 0;
            }),
            0);
  close(root);
}

// An fd that is not a mount namespace is refused by setns: the worker does not start.
TEST(LayersTest, SharedRootThatIsNoMountNamespaceFails) {
  const int net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(net, 0);
  EXPECT_EQ(InChild([&] {
              LayerSpec spec;
              spec.shared_root_fd = net;
              const char* failed = nullptr;
              if (ApplyLayers(spec, &failed) != -EINVAL) return Fail(1, "not refused");
              if (failed == nullptr || strstr(failed, "setns") == nullptr) {
                return Fail(2, "the step does not name setns");
              }
              return 0;
            }),
            0);
  close(net);
}

// A fresh network + IPC namespace made as the broker's NamespaceStock makes it: by a
// thread of this (root) process, held as fds. `*net` and `*ipc` get them.
void MakeFresh(int* net, int* ipc) {
  *net = *ipc = -1;
  std::thread maker([&] {
    if (unshare(CLONE_NEWNET | CLONE_NEWIPC) != 0) return;
    *net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    *ipc = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
  });
  maker.join();  // the thread ends; the fds keep the namespaces
}

// Brings up `lo` in the current network namespace: 0 or errno. Needs CAP_NET_ADMIN over
// the namespace.
int BringUpLoopback() {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  struct ifreq ifr = {};
  strcpy(ifr.ifr_name, "lo");
  int err = 0;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    err = errno;
  } else {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) err = errno;
  }
  close(s);
  return err;
}

// A worker enters the fresh namespaces the broker made (setns, fd closed) and has no
// capability over them: it cannot bring up lo, rename the interface or set the host name.
TEST(LayersTest, FreshNamespacesGiveTheWorkerNoCapability) {
  int net = -1, ipc = -1;
  MakeFresh(&net, &ipc);
  ASSERT_GE(net, 0);
  ASSERT_GE(ipc, 0);
  const ino_t net_ino = NsInode(net, "");
  const ino_t ipc_ino = NsInode(ipc, "");
  ASSERT_NE(net_ino, NsInode(AT_FDCWD, "/proc/self/ns/net"));
  EXPECT_EQ(InChild([&] {
              const int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
              if (self < 0) return Fail(1, "open /proc/self");
              LayerSpec spec;
              spec.fresh_net_fd = net;
              spec.fresh_ipc_fd = ipc;
              if (int r = Apply(spec); r != 0) return r;
              if (NsInode(self, "ns/net") != net_ino) return Fail(2, "not in the fresh netns");
              if (NsInode(self, "ns/ipc") != ipc_ino) return Fail(3, "not in the fresh ipcns");
              if (fcntl(net, F_GETFD) != -1 || errno != EBADF) return Fail(4, "net fd open");
              if (fcntl(ipc, F_GETFD) != -1 || errno != EBADF) return Fail(5, "ipc fd open");
              if (BringUpLoopback() != EPERM) return Fail(6, "lo came up (or not EPERM)");
              if (sethostname("x", 1) == 0 || errno != EPERM) return Fail(7, "sethostname");
              return 0;
            }),
            0);
  close(net);
  close(ipc);
  // The same namespace entered by a worker that keeps the broker's identity: it can (the
  // check above can fail; the identity drop and the user namespace are what forbid it).
  MakeFresh(&net, &ipc);
  ASSERT_GE(net, 0);
  EXPECT_EQ(InChild([&] {
              LayerSpec spec = Only();
              spec.netns = true;
              spec.fresh_net_fd = net;
              if (int r = Apply(spec); r != 0) return r;
              return BringUpLoopback() == 0 ? 0 : Fail(1, "root could not bring lo up");
            }),
            0);
  close(net);
  close(ipc);
}

// An fd of another namespace type is refused by setns; an fd for a layer that is off is
// refused before anything changes.
TEST(LayersTest, FreshNamespaceOfTheWrongKindFails) {
  int net = -1, ipc = -1;
  MakeFresh(&net, &ipc);
  ASSERT_GE(net, 0);
  ASSERT_GE(ipc, 0);
  EXPECT_EQ(InChild([&] {
              LayerSpec spec;
              spec.fresh_net_fd = ipc;  // swapped
              spec.fresh_ipc_fd = net;
              const char* failed = nullptr;
              if (ApplyLayers(spec, &failed) != -EINVAL) return Fail(1, "not refused");
              if (failed == nullptr || strcmp(failed, "netns: setns(fresh namespace)") != 0) {
                return Fail(2, "the step does not name the setns");
              }
              return 0;
            }),
            0);
  EXPECT_EQ(InChild([&] {
              LayerSpec spec;
              spec.netns = false;
              spec.fresh_net_fd = net;
              const char* failed = nullptr;
              if (ApplyLayers(spec, &failed) != -EINVAL) return Fail(1, "not refused");
              if (failed == nullptr || strstr(failed, "namespace that is off") == nullptr) {
                return Fail(2, "the step does not say why");
              }
              return 0;
            }),
            0);
  close(net);
  close(ipc);
}

}  // namespace
}  // namespace vow
