// The kernel layers beneath the worker's seccomp filter: namespaces (mount with an empty
// root, network, IPC, UTS; PID when the child was cloned into one), an unprivileged
// identity with no capabilities (optionally inside a fresh user namespace), and Landlock.
//
// Two sides in one file:
//  - ApplyLayers() runs in the broker's forked child, as root, BEFORE the seccomp filter is
//    loaded (the filter forbids unshare/mount; Landlock forbids mounting). It is
//    async-signal-safe and heap-free: raw syscalls and stack buffers only, no malloc, no
//    absl, no locks (the parent is a multithreaded broker). It returns 0 or -errno and, on
//    failure, names the step in `*failed_step` (a static string).
//  - ProbeLayers(), MissingLayer() and DescribeLayers() run in the broker (they allocate).
//    ProbeLayers() usually reads the kernel's configuration and forks nothing (see
//    ProbeMethod); the spawn child's own unshare() calls are the final check.
//
// Order inside ApplyLayers (each step checked, the first failure ends it):
//   1. PR_SET_NO_NEW_PRIVS;
//   2. unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) as asked (or
//      setns() into the shared root / a fresh net or IPC namespace the broker made), then
//      O_PATH fds of the listed files (host paths still resolve; a bind mount's source
//      must belong to the new mount namespace);
//      pidns: no unshare (it would only move the children), a check that this process
//      is pid 1 of a new PID namespace, i.e. the broker cloned it with
//      LayerCloneFlags(spec) (SpawnExec) or forked it after unshare(CLONE_NEWPID) (Spawn);
//   3. mount namespace: everything private, a small read-only tmpfs as the new root with
//      the listed files bind-mounted read-only at their own paths (nothing else: no /proc,
//      no /dev), pivot_root into it, the old root detached;
//   4. identity: ambient set cleared, bounding set emptied, securebits locked
//      (NOROOT, NO_CAP_AMBIENT_RAISE, KEEP_CAPS off), setgroups(0), setresgid, setresuid
//      to spec.uid:spec.gid; then, with userns, unshare(CLONE_NEWUSER) with NO id mapped
//      (see the .cc: a 65534->65534 map needs a dumpable window and /proc), and the
//      bounding set emptied again (a new user namespace refills it); finally capset() to
//      all-zero and a capget() check that every set is empty;
//   5. Landlock (the ABI the kernel reports): every filesystem right of that ABI handled
//      with no rule but EXECUTE|READ_FILE on each listed file and each listed fd;
//      TCP bind/connect handled with no rule (ABI >= 4); abstract unix sockets and
//      signals scoped to the domain (ABI >= 6); landlock_restrict_self.
// Fail closed: a layer the spec asks for that the kernel lacks is an error whose step
// names the layer (e.g. "landlock: ABI older than required"); nothing is skipped.
#ifndef VOW_WORKER_LAYERS_H_
#define VOW_WORKER_LAYERS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace vow {

inline constexpr size_t kMaxLayerFiles = 16;
inline constexpr size_t kMaxLayerFds = 8;
inline constexpr uint32_t kNobodyId = 65534;

struct LayerSpec {
  bool mountns = true;   // empty root (step 3)
  bool netns = true;     // no interfaces; host abstract unix sockets out of reach
  bool ipcns = true;
  bool utsns = true;
  bool pidns = false;    // needs the broker to clone with CLONE_NEWPID (see file comment)
  bool userns = true;    // only with drop_identity
  bool landlock = true;
  // false: stay the broker's identity (root, all capabilities). Must be asked for.
  bool drop_identity = true;
  uint32_t uid = kNobodyId;
  uint32_t gid = kNobodyId;
  // Absolute host paths of files the program needs by path at exec time (the dynamic
  // loader at its PT_INTERP path): bind-mounted read-only into the empty root at the same
  // path and granted EXECUTE|READ_FILE under Landlock. Not owned; must outlive the call.
  const char* files[kMaxLayerFiles] = {};
  size_t file_count = 0;
  // Open fds (the program, to be run with execveat(fd, "", ..., AT_EMPTY_PATH)) granted
  // EXECUTE|READ_FILE under Landlock. Not closed by ApplyLayers.
  int exec_fds[kMaxLayerFds] = {};
  size_t exec_fd_count = 0;
  // The smallest Landlock ABI accepted (tests ask for 99 to see the refusal).
  int min_landlock_abi = 1;
  // An existing host directory the new root's tmpfs is mounted on before pivot_root
  // (inside the new mount namespace only; the host's directory is untouched).
  const char* scratch_dir = "/tmp";
  // With mountns: an fd of a mount namespace made by MakeSharedRoot() for a spec with the
  // same listed files and scratch_dir, entered with setns() instead of making a new one
  // (step 3 then costs a setns, and the worker's exit tears down no mount namespace).
  // ApplyLayers closes it once entered: the worker never holds it. -1: make a new one.
  // Only with drop_identity (see MakeSharedRoot()).
  int shared_root_fd = -1;
  // With netns / ipcns: an fd of a fresh, unused network / IPC namespace made ahead of
  // time by the broker (its NamespaceStock, broker/namespace_stock.h), entered with
  // setns() instead of unshare() (step 2 then costs a setns: the ~0.4 ms of making a
  // network namespace is off the spawn path). ApplyLayers closes it once entered. Each
  // is given to exactly one worker and never reused (the broker's side of the promise),
  // except the pair a policy whose workers cannot reach into it shares (README "Spawn,
  // round 7");
  // like an unshare()d one it is owned by the broker's user namespace, where a worker that
  // dropped its identity has no capability. -1: unshare() a new one here.
  int fresh_net_fd = -1;
  int fresh_ipc_fd = -1;
};

// Steps 1-5 of the file comment. 0 or -errno; `*failed_step` names the failed step.
// Async-signal-safe, heap-free. Only in a single-threaded process (a forked child):
// the id changes are raw syscalls that affect the calling thread only.
int ApplyLayers(const LayerSpec& spec, const char** failed_step);

// Makes step 3's mount namespace once (an empty read-only root with spec's listed files
// bind-mounted, exactly as ApplyLayers makes it) in a short-lived child, and returns an
// fd of it (O_CLOEXEC) for LayerSpec::shared_root_fd, or -errno with `*failed_step`
// naming the step. Runs in the broker. The child is a clone with CLONE_VM | CLONE_VFORK
// (no copy of the broker's page tables; raw syscalls on its own stack, signals blocked);
// the calling thread sleeps until it has exited.
//
// What sharing the root gives up, and why it is nothing: the workers that enter it see
// the same read-only tmpfs, in a mount namespace owned by the broker's user namespace.
// Changing a mount there needs CAP_SYS_ADMIN in that user namespace, which a worker that
// dropped its identity (no capabilities, then its own user namespace) never has, and the
// tmpfs and every bind mount are read-only: no worker can change what another sees, or
// leave anything in it. A spec that keeps the broker's identity (root, every capability)
// could remount it, so it is refused here (-EINVAL). The other namespaces (UTS, user,
// PID) stay one per worker; net and IPC too, unless the broker decided that the policy's
// workers cannot reach into them (README "Spawn, round 7": then they share one pair,
// given to ApplyLayers as fresh_net_fd / fresh_ipc_fd).
int MakeSharedRoot(const LayerSpec& spec, const char** failed_step);

// Clone flags the broker must pass when it creates the child for `spec` (CLONE_NEWPID
// for pidns), so that the program is pid 1 of its own PID namespace without a second
// fork. Async-signal-safe.
unsigned long LayerCloneFlags(const LayerSpec& spec);

// ---- Broker side (allocates; not for the forked child). ----

// What this kernel offers for the spawn child (see ProbeLayers()).
struct LayerSupport {
  int landlock_abi = 0;  // 0: no Landlock
  bool userns = false;
  bool mountns = false;
  bool netns = false;
  bool ipcns = false;
  bool utsns = false;
  bool pidns = false;
  bool is_root = false;  // the namespaces above (but userns) and the id drop need root
};

// How ProbeLayersUncached() decided.
enum class ProbeMethod {
  // Read from the kernel's configuration, no process created: /proc/self/ns/<type> (the
  // kernel has the type), /proc/sys/user/max_<type>_namespaces > 0, the capabilities
  // unshare() and the identity drop need, Debian's kernel.unprivileged_userns_clone.
  // Used only when this process has no seccomp filter (/proc/self/status "Seccomp: 0")
  // and no AppArmor restriction of unprivileged user namespaces is on. What it cannot
  // see (another LSM refusing a namespace, a chroot, a namespace count at its limit) is
  // caught by the spawn child itself: its unshare() fails, ApplyLayers names the layer
  // ("netns: unshare(CLONE_NEWNET)") and the spawn fails. Closed, never a silent skip.
  kKernelConfig,
  // A short-lived forked child tried each unshare(): when the above cannot decide, e.g.
  // under a container's seccomp filter. It costs a fork, six namespaces created and torn
  // down (the network one most of it) and a wait: 4-10 ms of wall time per `vow run` on
  // the busy 2-vCPU VM, against ~0.2 ms for the configuration read.
  kForkedChild,
};

// Probes on the first call and caches the answer (thread-safe).
const LayerSupport& ProbeLayers();

// For tests: the same probe, uncached; `*method` (if not null) says which way it went.
LayerSupport ProbeLayersUncached(ProbeMethod* method);
// For tests: always the forked child.
LayerSupport ProbeLayersByFork();

// The first layer `spec` asks for that `support` lacks, as a message naming it
// ("landlock: the kernel has no Landlock"), or "" if every one is there.
std::string MissingLayer(const LayerSpec& spec, const LayerSupport& support);

// One line, e.g. "landlock ABI 7: on; userns: on; mountns: on; netns: on; ipcns: on;
// utsns: on; pidns: off; identity: 65534:65534, no capabilities".
std::string DescribeLayers(const LayerSpec& spec, const LayerSupport& support);

}  // namespace vow

#endif  // VOW_WORKER_LAYERS_H_
