#include "worker/layers.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "base/raw_syscall.h"
#include "base/spawn_trace.h"

namespace vow {
namespace {

// Landlock's UAPI, spelled out here: Debian 12's kernel headers stop at ABI 3, the kernel
// here speaks ABI 7. Values from the kernel's include/uapi/linux/landlock.h.
constexpr uint32_t kLandlockCreateRulesetVersion = 1u << 0;
constexpr int kLandlockRulePathBeneath = 1;
constexpr uint64_t kFsExecute = 1ull << 0;
constexpr uint64_t kFsReadFile = 1ull << 2;
constexpr uint64_t kFsAbi1 = (1ull << 13) - 1;  // EXECUTE .. MAKE_SYM
constexpr uint64_t kFsRefer = 1ull << 13;       // ABI 2
constexpr uint64_t kFsTruncate = 1ull << 14;    // ABI 3
constexpr uint64_t kFsIoctlDev = 1ull << 15;    // ABI 5
constexpr uint64_t kNetBindTcp = 1ull << 0;     // ABI 4
constexpr uint64_t kNetConnectTcp = 1ull << 1;  // ABI 4
constexpr uint64_t kScopeAbstractUnixSocket = 1ull << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ull << 1;              // ABI 6

struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI >= 4
  uint64_t scoped;              // ABI >= 6
};

struct __attribute__((packed)) LandlockPathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

// The Landlock ABI of this kernel, 0 if it has none (or it is disabled at boot).
int LandlockAbi() {
  const long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, kLandlockCreateRulesetVersion);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

int Errno() { return errno != 0 ? errno : EIO; }

// Closes the fds of step 1 on every return path.
struct FdList {
  int fds[kMaxLayerFiles];
  size_t count = 0;
  ~FdList() {
    for (size_t i = 0; i < count; ++i) close(fds[i]);
  }
};

// dst = a + b, NUL-terminated; false if it does not fit.
bool Join(char* dst, size_t size, const char* a, const char* b) {
  const size_t la = strlen(a), lb = strlen(b);
  if (la + lb + 1 > size) return false;
  memcpy(dst, a, la);
  memcpy(dst + la, b, lb + 1);
  return true;
}

// mkdir -p of every parent of `path` (absolute), within a directory we just created.
int MakeParents(char* path) {
  for (char* p = path + 1; *p != '\0'; ++p) {
    if (*p != '/') continue;
    *p = '\0';
    const int r = mkdir(path, 0755);
    const int e = errno;
    *p = '/';
    if (r != 0 && e != EEXIST) return -e;
  }
  return 0;
}

// Step 2's O_PATH fds of the listed files.
int OpenListedFiles(const LayerSpec& spec, FdList* files, const char** step) {
  *step = "layers: open a listed file";
  for (size_t i = 0; i < spec.file_count; ++i) {
    if (spec.files[i] == nullptr || spec.files[i][0] != '/') return -EINVAL;
    const int fd = open(spec.files[i], O_PATH | O_CLOEXEC);
    if (fd < 0) return -Errno();
    files->fds[files->count++] = fd;
  }
  return 0;
}

// Step 3. The caller has unshared the mount namespace.
int EnterEmptyRoot(const LayerSpec& spec, const FdList& files, const char** step) {
  *step = "mountns: make every mount private";
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return -Errno();
  *step = "mountns: mount the tmpfs of the new root";
  if (mount("vow-root", spec.scratch_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "size=64k,nr_inodes=256,mode=0755") != 0) {
    return -Errno();
  }
  for (size_t i = 0; i < spec.file_count; ++i) {
    char target[PATH_MAX + 64];
    *step = "mountns: a listed file's path is too long";
    if (!Join(target, sizeof(target), spec.scratch_dir, spec.files[i])) return -ENAMETOOLONG;
    *step = "mountns: create the parent directories of a listed file";
    if (const int r = MakeParents(target); r != 0) return r;
    struct stat st;
    *step = "mountns: fstat a listed file";
    if (fstat(files.fds[i], &st) != 0) return -Errno();
    *step = "mountns: create the mount point of a listed file";
    if (S_ISDIR(st.st_mode)) {
      if (mkdir(target, 0755) != 0 && errno != EEXIST) return -Errno();
    } else {
      const int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
      if (fd < 0) return -Errno();
      close(fd);
    }
    // Bind exactly the inode opened in step 1 (the path could have changed since).
    char source[64];
    char digits[16];
    int n = files.fds[i], len = 0;
    do {
      digits[len++] = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n > 0);
    strcpy(source, "/proc/self/fd/");
    size_t at = strlen(source);
    while (len > 0) source[at++] = digits[--len];
    source[at] = '\0';
    *step = "mountns: bind-mount a listed file";
    if (mount(source, target, nullptr, MS_BIND, nullptr) != 0) return -Errno();
    *step = "mountns: make a listed file's bind mount read-only";
    if (mount(nullptr, target, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
              nullptr) != 0) {
      return -Errno();
    }
  }
  *step = "mountns: make the new root read-only";
  if (mount(nullptr, spec.scratch_dir, nullptr,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return -Errno();
  }
  *step = "mountns: chdir to the new root";
  if (chdir(spec.scratch_dir) != 0) return -Errno();
  // pivot_root(".", "."): the old root ends up stacked on the new one, and the detaching
  // unmount of "." takes it away; no directory for the old root is needed.
  *step = "mountns: pivot_root";
  if (syscall(SYS_pivot_root, ".", ".") != 0) return -Errno();
  *step = "mountns: detach the old root";
  if (umount2(".", MNT_DETACH) != 0) return -Errno();
  *step = "mountns: chdir /";
  if (chdir("/") != 0) return -Errno();
  return 0;
}

// Empties the bounding set (needs CAP_SETPCAP in the current user namespace).
// Inline system calls (base/raw_syscall.h) here and in the other prctl calls of the
// identity drop: libc's prctl and errno are each a page of code a fresh worker would fault
// in for these calls only.
int DropBoundingSet() {
  for (int cap = 0; cap < 64; ++cap) {
    const long rc = RawSyscall(SYS_prctl, PR_CAPBSET_DROP, cap);
    if (rc != 0) {
      if (rc == -EINVAL) return cap > 0 ? 0 : -EINVAL;  // past CAP_LAST_CAP
      return static_cast<int>(rc);
    }
  }
  return 0;
}

// Ambient set cleared, bounding set emptied, securebits locked so that no later execve
// or setuid can hand capabilities back. Needs CAP_SETPCAP.
int DropCapabilityInheritance(const char** step) {
  *step = "identity: clear the ambient capabilities";
  if (const long rc = RawSyscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL); rc != 0) {
    return static_cast<int>(rc);
  }
  *step = "identity: empty the capability bounding set";
  if (const int r = DropBoundingSet(); r != 0) return r;
  *step = "identity: lock the securebits";
  const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                             SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                             SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (const long rc = RawSyscall(SYS_prctl, PR_SET_SECUREBITS, static_cast<long>(bits)); rc != 0) {
    return static_cast<int>(rc);
  }
  return 0;
}

// Step 4.
int DropIdentity(const LayerSpec& spec, const char** step) {
  // With a user namespace to follow, the drop is made there only: unshare(CLONE_NEWUSER)
  // gives its creator a full bounding set, every capability, an empty ambient set and the
  // default securebits (the kernel's set_cred_user_ns), so a drop made here would be
  // undone anyway. Until then the process only sheds groups and ids (root -> the worker's
  // ids clears its permitted, effective and ambient sets). Saves ~43 prctl calls, each a
  // new set of credentials (README "Spawn, round 4").
  if (!spec.userns) {
    if (const int r = DropCapabilityInheritance(step); r != 0) return r;
  }
  VOW_TRACE(kTrLyCaps1);
  // Raw syscalls: glibc's wrappers would try to signal the broker's other threads,
  // which do not exist in this child.
  *step = "identity: setgroups(0)";
  if (syscall(SYS_setgroups, 0, nullptr) != 0) return -Errno();
  *step = "identity: setresgid";
  if (syscall(SYS_setresgid, spec.gid, spec.gid, spec.gid) != 0) return -Errno();
  *step = "identity: setresuid";
  if (syscall(SYS_setresuid, spec.uid, spec.uid, spec.uid) != 0) return -Errno();
  VOW_TRACE(kTrLyIds);
  if (spec.userns) {
    // No id is mapped in the new namespace: getuid() there reports the overflow id
    // (65534), and no id inside maps to anything outside. A 65534->65534 map would need
    // /proc/self/uid_map opened by this (non-root) identity while the process is
    // dumpable (a non-dumpable process's /proc files belong to root), i.e. a window in
    // which any other `nobody` process could ptrace it; an empty map grants strictly less.
    *step = "userns: unshare(CLONE_NEWUSER)";
    if (syscall(SYS_unshare, CLONE_NEWUSER) != 0) return -Errno();
    VOW_TRACE(kTrLyUserns);
    // The creator of a user namespace gets every capability in it and a full bounding
    // set, and the securebits are reset: take them away again.
    if (const int r = DropCapabilityInheritance(step); r != 0) return r;
    VOW_TRACE(kTrLyCaps2);
  }
  *step = "identity: capset to empty";
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) return -Errno();
  *step = "identity: check that no capability is left";
  if (syscall(SYS_capget, &header, data) != 0) return -Errno();
  for (const __user_cap_data_struct& d : data) {
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0) return -EPERM;
  }
  if (RawSyscall(SYS_prctl, PR_CAPBSET_READ, 0) != 0) return -EPERM;
  uid_t r = 0, e = 0, s = 0;
  *step = "identity: check the uid";
  if (syscall(SYS_getresuid, &r, &e, &s) != 0) return -Errno();
  // In a new user namespace without a map every id reads as the overflow id, 65534.
  const uid_t want = spec.userns ? kNobodyId : spec.uid;
  if (r != want || e != want || s != want) return -EPERM;
  VOW_TRACE(kTrLyCapCheck);
  return 0;
}

// Step 5.
int RestrictLandlock(int abi, const LayerSpec& spec, const FdList& files, const char** step) {
  LandlockRulesetAttr attr = {};
  attr.handled_access_fs = kFsAbi1;
  if (abi >= 2) attr.handled_access_fs |= kFsRefer;
  if (abi >= 3) attr.handled_access_fs |= kFsTruncate;
  if (abi >= 5) attr.handled_access_fs |= kFsIoctlDev;
  size_t size = sizeof(uint64_t);
  if (abi >= 4) {
    attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
    size = 2 * sizeof(uint64_t);
  }
  if (abi >= 6) {
    attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
    size = sizeof(attr);
  }
  *step = "landlock: create the ruleset";
  const long ruleset = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (ruleset < 0) return -Errno();
  const int ruleset_fd = static_cast<int>(ruleset);
  int result = 0;
  auto allow_exec = [&](int fd) {
    LandlockPathBeneathAttr rule = {kFsExecute | kFsReadFile, fd};
    if (syscall(SYS_landlock_add_rule, ruleset_fd, kLandlockRulePathBeneath, &rule, 0) != 0) {
      return -Errno();
    }
    return 0;
  };
  *step = "landlock: allow executing a listed file";
  for (size_t i = 0; result == 0 && i < files.count; ++i) result = allow_exec(files.fds[i]);
  *step = "landlock: allow executing a listed fd";
  for (size_t i = 0; result == 0 && i < spec.exec_fd_count; ++i) {
    result = allow_exec(spec.exec_fds[i]);
  }
  if (result == 0) {
    *step = "landlock: restrict_self";
    if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) != 0) result = -Errno();
  }
  close(ruleset_fd);
  VOW_TRACE(kTrLyLandlock);
  return result;
}

}  // namespace

unsigned long LayerCloneFlags(const LayerSpec& spec) { return spec.pidns ? CLONE_NEWPID : 0; }

int ApplyLayers(const LayerSpec& spec, const char** failed_step) {
  const char* unused = nullptr;
  const char** step = failed_step != nullptr ? failed_step : &unused;
  // Refuse what cannot be done before changing anything.
  *step = "layers: too many listed files or fds";
  if (spec.file_count > kMaxLayerFiles || spec.exec_fd_count > kMaxLayerFds) return -E2BIG;
  int abi = 0;
  if (spec.landlock) {
    abi = LandlockAbi();
    *step = "landlock: the kernel has no Landlock";
    if (abi == 0) return -EOPNOTSUPP;
    *step = "landlock: the kernel's ABI is older than required";
    if (abi < spec.min_landlock_abi) return -EOPNOTSUPP;
  }
  *step = "userns: needs the identity drop (identity keep stays in the broker's namespace)";
  if (spec.userns && !spec.drop_identity) return -EINVAL;
  *step = "pidns: not pid 1 of a new PID namespace (clone with LayerCloneFlags())";
  if (spec.pidns && syscall(SYS_getpid) != 1) return -EINVAL;

  // A fresh namespace's fd for a layer that is off would leave the worker in the
  // broker's namespace while holding another one: a caller's mistake, refused.
  *step = "layers: a fresh namespace's fd for a namespace that is off";
  if ((!spec.netns && spec.fresh_net_fd >= 0) || (!spec.ipcns && spec.fresh_ipc_fd >= 0)) {
    return -EINVAL;
  }

  *step = "layers: PR_SET_NO_NEW_PRIVS";
  if (const long rc = RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1); rc != 0) {
    return static_cast<int>(rc);
  }
  VOW_TRACE(kTrLyChecks);

  // 2.
  struct Namespace {
    bool wanted;
    int flag;
    const char* step;
    int fresh_fd;  // a fresh namespace of this type to setns() into; -1: unshare()
    const char* setns_step;
    const char* close_step;
  };
  const Namespace namespaces[] = {
      {spec.mountns, CLONE_NEWNS, "mountns: unshare(CLONE_NEWNS)", -1, nullptr, nullptr},
      {spec.netns, CLONE_NEWNET, "netns: unshare(CLONE_NEWNET)", spec.fresh_net_fd,
       "netns: setns(fresh namespace)", "netns: close the fresh namespace's fd"},
      {spec.ipcns, CLONE_NEWIPC, "ipcns: unshare(CLONE_NEWIPC)", spec.fresh_ipc_fd,
       "ipcns: setns(fresh namespace)", "ipcns: close the fresh namespace's fd"},
      {spec.utsns, CLONE_NEWUTS, "utsns: unshare(CLONE_NEWUTS)", -1, nullptr, nullptr},
  };
  const bool shared_root = spec.mountns && spec.shared_root_fd >= 0;
  if (shared_root) {
    // A shared root could be changed by a worker that kept the broker's capabilities.
    *step = "mountns: a shared root needs the identity drop";
    if (!spec.drop_identity) return -EINVAL;
    // setns refuses an fd that is not a mount namespace (EINVAL); it sets the root and
    // the working directory to that namespace's root, the empty one.
    *step = "mountns: setns(shared root)";
    if (syscall(SYS_setns, spec.shared_root_fd, CLONE_NEWNS) != 0) return -Errno();
    *step = "mountns: close the shared root's fd";
    if (close(spec.shared_root_fd) != 0) return -Errno();
    *step = "mountns: chdir / in the shared root";
    if (chdir("/") != 0) return -Errno();
    VOW_TRACE(kTrLySharedRoot);
  }
  for (const Namespace& ns : namespaces) {
    if (!ns.wanted || (shared_root && ns.flag == CLONE_NEWNS)) continue;
    if (ns.fresh_fd >= 0) {
      // setns refuses an fd of another namespace type (EINVAL).
      *step = ns.setns_step;
      if (syscall(SYS_setns, ns.fresh_fd, ns.flag) != 0) return -Errno();
      *step = ns.close_step;
      if (close(ns.fresh_fd) != 0) return -Errno();
    } else {
      *step = ns.step;
      if (syscall(SYS_unshare, ns.flag) != 0) return -Errno();
    }
    if (ns.flag == CLONE_NEWNET) VOW_TRACE(kTrLyNet);
    if (ns.flag == CLONE_NEWIPC) VOW_TRACE(kTrLyIpc);
  }
  if (spec.utsns) {
    *step = "utsns: sethostname";
    if (sethostname("vow", 3) != 0) return -Errno();
    VOW_TRACE(kTrLyUts);
  }
  // Opened after unshare(CLONE_NEWNS): a bind mount's source must be a mount of the
  // caller's own namespace. In a shared root they are its read-only bind mounts (the
  // same inodes), which is what Landlock's rules (step 5) are about.
  FdList files;
  if (const int r = OpenListedFiles(spec, &files, step); r != 0) return r;
  VOW_TRACE(kTrLyFiles);

  // 3.
  if (spec.mountns && !shared_root) {
    if (const int r = EnterEmptyRoot(spec, files, step); r != 0) return r;
  }
  // 4.
  if (spec.drop_identity) {
    if (const int r = DropIdentity(spec, step); r != 0) return r;
  }
  // 5.
  if (spec.landlock) {
    if (const int r = RestrictLandlock(abi, spec, files, step); r != 0) return r;
  }
  *step = nullptr;
  return 0;
}

// ---- Broker side. ----

namespace {

// What MakeSharedRoot's child answers: 0 and the namespace's fd, or -errno and its step
// (a static string: the child shares this address space, so the pointer means the same).
struct SharedRootReply {
  int rc;
  const char* step;
};

struct SharedRootArgs {
  const LayerSpec* spec;
  int sock;
};

// MakeSharedRoot's child (clone with CLONE_VM | CLONE_VFORK): it shares the broker's
// memory while the calling thread is suspended, so it touches nothing but its own stack:
// raw syscalls only, no heap, no locks; every signal stays blocked.
int SharedRootChild(void* arg) {
  const SharedRootArgs& args = *static_cast<const SharedRootArgs*>(arg);
  SharedRootReply reply = {0, nullptr};
  int ns_fd = -1;
  [&] {
    reply.step = "mountns: unshare(CLONE_NEWNS)";
    if (syscall(SYS_unshare, CLONE_NEWNS) != 0) return void(reply.rc = -Errno());
    reply.step = "mountns: open /proc/self/ns/mnt";
    ns_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) return void(reply.rc = -Errno());
    FdList files;
    if ((reply.rc = OpenListedFiles(*args.spec, &files, &reply.step)) != 0) return;
    reply.rc = EnterEmptyRoot(*args.spec, files, &reply.step);
  }();
  struct iovec iov = {&reply, sizeof(reply)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (reply.rc == 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &ns_fd, sizeof(int));
  }
  return sendmsg(args.sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(reply)) ? 0 : 1;
}

constexpr size_t kSharedRootStack = 256 * 1024;

}  // namespace

int MakeSharedRoot(const LayerSpec& spec, const char** failed_step) {
  const char* unused = nullptr;
  const char** step = failed_step != nullptr ? failed_step : &unused;
  *step = "mountns: a shared root needs the identity drop";
  if (!spec.mountns || !spec.drop_identity) return -EINVAL;
  *step = "layers: too many listed files or fds";
  if (spec.file_count > kMaxLayerFiles) return -E2BIG;
  int sv[2];
  *step = "mountns: socketpair for the shared root";
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return -Errno();
  *step = "mountns: the shared root's child stack";
  void* stack = mmap(nullptr, kSharedRootStack, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    const int err = Errno();
    close(sv[0]);
    close(sv[1]);
    return -err;
  }
  // CLONE_VM | CLONE_VFORK: no copy of the broker's page tables (and no fork event for a
  // userfaultfd context or an atfork handler); the calling thread sleeps until the child
  // has exited. Its own fd table and fs (root, cwd): the pivot is the child's alone.
  // No exit signal (waited for with __WALL): this thread blocks every signal until the
  // child has gone, so a SIGCHLD would go to another thread of the broker, one the kernel
  // picks (an embedder's thread, or one asleep in a page fault on a userfaultfd range,
  // which then retries the fault in a loop until it is resolved).
  SharedRootArgs args = {&spec, sv[1]};
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = clone(SharedRootChild, static_cast<char*>(stack) + kSharedRootStack,
                          CLONE_VM | CLONE_VFORK, &args);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    munmap(stack, kSharedRootStack);
    close(sv[0]);
    close(sv[1]);
    *step = "mountns: clone the shared root's child";
    return -(clone_errno != 0 ? clone_errno : EIO);
  }
  using Reply = SharedRootReply;
  close(sv[1]);
  Reply reply = {-EPROTO, "mountns: the shared root's child sent no answer"};
  int ns_fd = -1;
  struct iovec iov = {&reply, sizeof(reply)};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); n > 0 && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int))) {
      memcpy(&ns_fd, CMSG_DATA(c), sizeof(int));
    }
  }
  close(sv[0]);
  int status = 0;
  while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
  munmap(stack, kSharedRootStack);
  if (n != static_cast<ssize_t>(sizeof(reply))) {
    reply = {-EPROTO, "mountns: the shared root's child sent no answer"};
  }
  if (reply.rc == 0 && (ns_fd < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
    reply = {-EPROTO, "mountns: the shared root's child failed"};
  }
  *step = reply.step;
  if (reply.rc != 0) {
    if (ns_fd >= 0) close(ns_fd);
    return reply.rc < 0 ? reply.rc : -EPROTO;
  }
  *step = nullptr;
  return ns_fd;
}

namespace {

constexpr int kProbeUserns = 1 << 0;
constexpr int kProbeMountns = 1 << 1;
constexpr int kProbeNetns = 1 << 2;
constexpr int kProbeIpcns = 1 << 3;
constexpr int kProbeUtsns = 1 << 4;
constexpr int kProbePidns = 1 << 5;

// Runs in the forked probe child: raw syscalls only.
[[noreturn]] void ProbeChild() {
  int bits = 0;
  if (syscall(SYS_unshare, CLONE_NEWNS) == 0) bits |= kProbeMountns;
  if (syscall(SYS_unshare, CLONE_NEWNET) == 0) bits |= kProbeNetns;
  if (syscall(SYS_unshare, CLONE_NEWIPC) == 0) bits |= kProbeIpcns;
  if (syscall(SYS_unshare, CLONE_NEWUTS) == 0) bits |= kProbeUtsns;
  if (syscall(SYS_unshare, CLONE_NEWPID) == 0) bits |= kProbePidns;
  // A user namespace is made after the identity drop: probe it as `nobody`.
  if (syscall(SYS_setgroups, 0, nullptr) == 0 &&
      syscall(SYS_setresgid, kNobodyId, kNobodyId, kNobodyId) == 0 &&
      syscall(SYS_setresuid, kNobodyId, kNobodyId, kNobodyId) == 0 &&
      syscall(SYS_unshare, CLONE_NEWUSER) == 0) {
    bits |= kProbeUserns;
  }
  _exit(bits);
}

// The first line of a small /proc file, "" if it cannot be read.
std::string ReadSmallFile(const char* path) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[4096];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof(buf) - 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// A non-negative integer sysctl, -1 if it is absent or unreadable.
long ReadSysctl(const char* path) {
  const std::string text = ReadSmallFile(path);
  if (text.empty() || text[0] < '0' || text[0] > '9') return -1;
  return strtol(text.c_str(), nullptr, 10);
}

// The value of "Seccomp:" in /proc/self/status (0: no filter, 2: filtered), -1 if absent.
int SeccompMode() {
  const std::string status = ReadSmallFile("/proc/self/status");
  const size_t at = status.find("\nSeccomp:");
  if (at == std::string::npos) return -1;
  size_t i = at + 9;
  while (i < status.size() && (status[i] == ' ' || status[i] == '\t')) ++i;
  if (i >= status.size() || status[i] < '0' || status[i] > '9') return -1;
  return status[i] - '0';
}

bool HasEffectiveCap(int cap) {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

bool Exists(const char* path) { return access(path, F_OK) == 0; }

LayerSupport ProbeByFork() {
  LayerSupport s;
  s.landlock_abi = LandlockAbi();
  s.is_root = geteuid() == 0;
  const pid_t pid = fork();
  if (pid == 0) ProbeChild();
  if (pid < 0) return s;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status)) return s;
  const int bits = WEXITSTATUS(status);
  s.userns = (bits & kProbeUserns) != 0;
  s.mountns = (bits & kProbeMountns) != 0;
  s.netns = (bits & kProbeNetns) != 0;
  s.ipcns = (bits & kProbeIpcns) != 0;
  s.utsns = (bits & kProbeUtsns) != 0;
  s.pidns = (bits & kProbePidns) != 0;
  return s;
}

// The kernel's configuration, read without creating anything; false when it cannot
// decide (the caller then probes in a child). It decides only when nothing but the
// kernel's configuration and this process's capabilities stands between the spawn child
// and its unshare() calls: no seccomp filter on this process (a filter could refuse
// unshare), /proc and the namespace sysctls readable, and no AppArmor restriction of
// unprivileged user namespaces.
bool ProbeByConfig(LayerSupport* out) {
  if (SeccompMode() != 0) return false;
  if (ReadSysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") > 0) return false;
  struct Kind {
    const char* ns;      // /proc/self/ns/<ns>: the kernel was built with it
    const char* sysctl;  // its limit; 0 forbids it
    bool LayerSupport::*field;
  };
  static constexpr Kind kKinds[] = {
      {"/proc/self/ns/mnt", "/proc/sys/user/max_mnt_namespaces", &LayerSupport::mountns},
      {"/proc/self/ns/net", "/proc/sys/user/max_net_namespaces", &LayerSupport::netns},
      {"/proc/self/ns/ipc", "/proc/sys/user/max_ipc_namespaces", &LayerSupport::ipcns},
      {"/proc/self/ns/uts", "/proc/sys/user/max_uts_namespaces", &LayerSupport::utsns},
      {"/proc/self/ns/pid", "/proc/sys/user/max_pid_namespaces", &LayerSupport::pidns},
      {"/proc/self/ns/user", "/proc/sys/user/max_user_namespaces", &LayerSupport::userns},
  };
  LayerSupport s;
  s.landlock_abi = LandlockAbi();
  s.is_root = geteuid() == 0;
  // unshare() of these needs CAP_SYS_ADMIN; the user namespace is made as `nobody`
  // after setresuid, which needs CAP_SETUID and CAP_SETGID.
  const bool admin = HasEffectiveCap(CAP_SYS_ADMIN);
  const bool can_drop = HasEffectiveCap(CAP_SETUID) && HasEffectiveCap(CAP_SETGID);
  for (const Kind& k : kKinds) {
    const long limit = ReadSysctl(k.sysctl);
    if (limit < 0) return false;
    const bool user = k.field == &LayerSupport::userns;
    s.*k.field = Exists(k.ns) && limit > 0 && (user ? can_drop : admin);
  }
  // Debian's switch for unprivileged user namespaces (absent upstream: allowed).
  if (ReadSysctl("/proc/sys/kernel/unprivileged_userns_clone") == 0) s.userns = false;
  *out = s;
  return true;
}

const char* OnOff(bool wanted, bool have) {
  if (wanted) return "on";
  return have ? "off" : "off (not available here)";
}

}  // namespace

LayerSupport ProbeLayersUncached(ProbeMethod* method) {
  LayerSupport s;
  if (ProbeByConfig(&s)) {
    if (method != nullptr) *method = ProbeMethod::kKernelConfig;
    return s;
  }
  if (method != nullptr) *method = ProbeMethod::kForkedChild;
  return ProbeByFork();
}

LayerSupport ProbeLayersByFork() { return ProbeByFork(); }

const LayerSupport& ProbeLayers() {
  static std::once_flag once;
  static LayerSupport support;
  std::call_once(once, [] { support = ProbeLayersUncached(nullptr); });
  return support;
}

std::string MissingLayer(const LayerSpec& spec, const LayerSupport& s) {
  if (spec.landlock && s.landlock_abi == 0) return "landlock: the kernel has no Landlock";
  if (spec.landlock && s.landlock_abi < spec.min_landlock_abi) {
    return "landlock: the kernel has ABI " + std::to_string(s.landlock_abi) +
           ", the policy needs " + std::to_string(spec.min_landlock_abi);
  }
  if (spec.userns && !spec.drop_identity) {
    return "userns: needs the identity drop (identity keep cannot have a user namespace)";
  }
  if (spec.userns && !s.userns) return "userns: an unprivileged user namespace is not allowed here";
  if (spec.mountns && !s.mountns) return "mountns: unshare(CLONE_NEWNS) is not allowed here";
  if (spec.netns && !s.netns) return "netns: unshare(CLONE_NEWNET) is not allowed here";
  if (spec.ipcns && !s.ipcns) return "ipcns: unshare(CLONE_NEWIPC) is not allowed here";
  if (spec.utsns && !s.utsns) return "utsns: unshare(CLONE_NEWUTS) is not allowed here";
  if (spec.pidns && !s.pidns) return "pidns: a new PID namespace is not allowed here";
  const bool needs_root =
      spec.mountns || spec.netns || spec.ipcns || spec.utsns || spec.pidns || spec.drop_identity;
  if (needs_root && !s.is_root) return "identity: the namespaces and the id drop need root";
  return "";
}

std::string DescribeLayers(const LayerSpec& spec, const LayerSupport& s) {
  std::string out;
  if (s.landlock_abi > 0) {
    out = "landlock ABI " + std::to_string(s.landlock_abi) + ": ";
  } else {
    out = "landlock: ";
  }
  out += OnOff(spec.landlock, s.landlock_abi > 0);
  out += std::string("; userns: ") + OnOff(spec.userns, s.userns);
  out += std::string("; mountns: ") + OnOff(spec.mountns, s.mountns);
  out += std::string("; netns: ") + OnOff(spec.netns, s.netns);
  out += std::string("; ipcns: ") + OnOff(spec.ipcns, s.ipcns);
  out += std::string("; utsns: ") + OnOff(spec.utsns, s.utsns);
  out += std::string("; pidns: ") + OnOff(spec.pidns, s.pidns);
  if (spec.drop_identity) {
    out += "; identity: " + std::to_string(spec.uid) + ":" + std::to_string(spec.gid) +
           ", no capabilities";
  } else {
    out += "; identity: kept (the broker's uid and capabilities)";
  }
  return out;
}

}  // namespace vow
