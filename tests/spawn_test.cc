// Spawn's shared empty root (PreparedPolicy::shared_root, MakeSharedRoot in
// worker/layers.h): the forked workers of one prepared policy share one read-only mount
// namespace, and nothing else; workers that keep the broker's identity never share one.
// The test process is the broker; it looks at its workers' namespaces in /proc.
#include <dirent.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "broker/broker.h"
#include "gtest/gtest.h"
#include "worker/client.h"

namespace vow {
namespace {

using Kind = WorkerResult::Kind;

// The inode of /proc/<pid>/ns/<type>, 0 if it cannot be read.
ino_t NsInode(pid_t pid, const char* type) {
  struct stat st;
  const std::string path = absl::StrCat("/proc/", pid, "/ns/", type);
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Forked workers that have finished their lock-down and wait until Release().
class Parked {
 public:
  explicit Parked(Broker& broker) : broker_(broker) {
    EXPECT_EQ(pipe2(gate_, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(ready_, O_CLOEXEC), 0);
  }
  ~Parked() {
    Release();
    close(gate_[0]);
    close(ready_[0]);
    close(ready_[1]);
  }
  // Spawns one worker of `policy` and waits until its own code runs; returns its pid.
  pid_t Spawn(std::shared_ptr<const PreparedPolicy> policy) {
    SpawnOptions options;
    options.stdin_fd = gate_[0];
    options.stdout_fd = ready_[1];
    auto id = broker_.Spawn(policy, [](Client&) {
      char c = 'r';
      (void)!write(1, &c, 1);
      (void)!read(0, &c, 1);  // EOF when the test releases it
      return 0;
    }, options);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return -1;
    ids_.push_back(*id);
    char c;
    EXPECT_EQ(read(ready_[0], &c, 1), 1);
    return broker_.pid(*id);
  }
  void Release() {
    if (gate_[1] >= 0) close(gate_[1]);
    gate_[1] = -1;
    for (WorkerId id : ids_) {
      auto result = broker_.Wait(id, absl::Seconds(30));
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(result->kind, Kind::kExited) << result->ToString();
    }
    ids_.clear();
  }

 private:
  Broker& broker_;
  int gate_[2] = {-1, -1};
  int ready_[2] = {-1, -1};
  std::vector<WorkerId> ids_;
};

// A policy whose workers may create sockets (`unix`): each worker gets a network and IPC
// namespace pair of its own (README "Spawn, round 7").
Policy SocketPolicy() {
  Policy p;
  p.promises = PromiseSet{Promise::kStdio, Promise::kUnix};
  return p;
}

class SpawnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = Broker::Create();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
  }
  std::unique_ptr<Broker> broker_;
};

// A broker created in a process whose fds 0 and 2 are closed fills them with /dev/null
// first (FillClosedStdio): none of its own fds (epoll, eventfd, socketpairs) sits there,
// where its messages to stderr and a worker given the embedder's 0-2 would reach it.
// In a child: the test process keeps its own 0-2.
TEST(BrokerCreateTest, ClosedStdioIsFilledBeforeTheBrokerOpensAnything) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(0);
    close(2);
    auto broker = Broker::Create();
    if (!broker.ok()) _exit(10);
    for (int fd : {0, 2}) {
      struct stat st;
      if (fstat(fd, &st) != 0) _exit(11);
      if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) _exit(12 + fd);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: Create failed; 11: fd closed; 12/14: fd 0/2 is not /dev/null";
}

// A stdio fd the spawn did not give is /dev/null in the worker (the broker's one open
// /dev/null, LockdownSpec::null_fd), not the broker's own: here stderr.
TEST_F(SpawnTest, AStdioFdNotGivenIsDevNull) {
  auto policy = broker_->Prepare(Policy{});
  ASSERT_TRUE(policy.ok()) << policy.status();
  Parked parked(*broker_);
  const pid_t pid = parked.Spawn(*policy);
  ASSERT_GT(pid, 0);
  char buf[256] = {};
  const std::string fd2 = absl::StrCat("/proc/", pid, "/fd/2");
  ASSERT_GT(readlink(fd2.c_str(), buf, sizeof(buf) - 1), 0);
  EXPECT_STREQ(buf, "/dev/null");
  char mine[256] = {};
  ASSERT_GT(readlink("/proc/self/fd/2", mine, sizeof(mine) - 1), 0);
  EXPECT_STRNE(mine, "/dev/null") << "the test's own stderr must differ for this to mean anything";
}

// A policy whose workers may create sockets (`unix`): they share the root and nothing
// else. (A policy without shares its network and IPC namespaces too: README "Spawn,
// round 7", WorkersOfANoSocketPolicyShareOneNetworkAndIpcNamespace.)
TEST_F(SpawnTest, WorkersOfOnePolicyShareOnlyTheRoot) {
  auto policy = broker_->Prepare(SocketPolicy());
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto other = broker_->Prepare(SocketPolicy());
  ASSERT_TRUE(other.ok()) << other.status();
  Parked parked(*broker_);
  const pid_t a = parked.Spawn(*policy);
  const pid_t b = parked.Spawn(*policy);
  const pid_t c = parked.Spawn(*other);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  ASSERT_GT(c, 0);
  const ino_t host_mnt = NsInode(getpid(), "mnt");
  ASSERT_NE(host_mnt, 0u);
  EXPECT_NE(NsInode(a, "mnt"), host_mnt);
  EXPECT_EQ(NsInode(a, "mnt"), NsInode(b, "mnt")) << "one policy, one root";
  EXPECT_NE(NsInode(a, "mnt"), NsInode(c, "mnt")) << "another policy, another root";
  // Everything else stays one per worker.
  for (const char* type : {"net", "ipc", "uts", "user"}) {
    SCOPED_TRACE(type);
    EXPECT_NE(NsInode(a, type), 0u);
    EXPECT_NE(NsInode(a, type), NsInode(b, type));
    EXPECT_NE(NsInode(a, type), NsInode(getpid(), type));
  }
  // The worker runs from the shared root: its root is not the host's "/".
  struct stat host_root, worker_root;
  ASSERT_EQ(stat("/", &host_root), 0);
  ASSERT_EQ(stat(absl::StrCat("/proc/", a, "/root/").c_str(), &worker_root), 0);
  EXPECT_FALSE(host_root.st_dev == worker_root.st_dev && host_root.st_ino == worker_root.st_ino);
}

// layers +pidns for a forked worker: each is pid 1 of a PID namespace of its own, and
// the spawning thread's namespace for children is this process's own again after each
// spawn (a worker spawned without the layer afterwards is not put in the last one).
TEST_F(SpawnTest, PidnsMakesEachForkedWorkerPidOneOfItsOwn) {
  Policy with;
  with.layers[Layer::kPidns] = LayerMode::kOn;
  auto pidns = broker_->Prepare(with);
  ASSERT_TRUE(pidns.ok()) << pidns.status();
  auto plain = broker_->Prepare(Policy{});
  ASSERT_TRUE(plain.ok()) << plain.status();
  const ino_t host_pid = NsInode(getpid(), "pid");
  ASSERT_NE(host_pid, 0u);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    auto id = broker_->Spawn(*pidns, [](Client&) { return getpid() == 1 ? 0 : 10; });
    ASSERT_TRUE(id.ok()) << id.status();
    auto result = broker_->Wait(*id, absl::Seconds(30));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->kind, Kind::kExited) << result->ToString();
    EXPECT_EQ(result->exit_code, 0) << "not pid 1";
    EXPECT_EQ(NsInode(static_cast<pid_t>(syscall(SYS_gettid)), "pid_for_children"), host_pid);
  }
  Parked parked(*broker_);
  const pid_t a = parked.Spawn(*pidns);
  const pid_t b = parked.Spawn(*pidns);
  const pid_t c = parked.Spawn(*plain);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  ASSERT_GT(c, 0);
  EXPECT_NE(NsInode(a, "pid"), host_pid);
  EXPECT_NE(NsInode(a, "pid"), NsInode(b, "pid")) << "one PID namespace per worker";
  EXPECT_EQ(NsInode(c, "pid"), host_pid) << "a worker without the layer is in the broker's";
}

// A worker that keeps the broker's identity (root, every capability) could remount a
// shared root under its siblings: each makes its own.
TEST_F(SpawnTest, WorkersThatKeepTheIdentityShareNothing) {
  Policy keep;
  keep.identity.kind = Identity::Kind::kKeep;
  auto policy = broker_->Prepare(keep);
  ASSERT_TRUE(policy.ok()) << policy.status();
  Parked parked(*broker_);
  const pid_t a = parked.Spawn(*policy);
  const pid_t b = parked.Spawn(*policy);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  EXPECT_NE(NsInode(a, "mnt"), NsInode(getpid(), "mnt"));
  EXPECT_NE(NsInode(a, "mnt"), NsInode(b, "mnt"));
}

// The inodes of the namespaces of `type` ("net:[...]") this process holds as fds: the
// broker's namespace stock (broker/namespace_stock.h) among them.
std::set<ino_t> HeldNamespaces(const char* type) {
  std::set<ino_t> held;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return held;
  const std::string prefix = absl::StrCat(type, ":[");
  while (struct dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const std::string link = absl::StrCat("/proc/self/fd/", e->d_name);
    char target[64] = {};
    if (readlink(link.c_str(), target, sizeof(target) - 1) <= 0) continue;
    if (std::string(target).rfind(prefix, 0) != 0) continue;
    struct stat st;
    if (stat(link.c_str(), &st) == 0) held.insert(st.st_ino);
  }
  closedir(dir);
  return held;
}

// Forked workers get fresh network and IPC namespaces made ahead of time by the broker:
// each worker its own (never one another worker has, never the broker's), and the broker
// keeps no fd of a namespace it handed out.
TEST_F(SpawnTest, FreshNamespacesFromTheStockAreNeverShared) {
  auto policy = broker_->Prepare(SocketPolicy());
  ASSERT_TRUE(policy.ok()) << policy.status();
  {
    Parked first(*broker_);  // starts the stock (this one makes its own)
    ASSERT_GT(first.Spawn(*policy), 0);
  }
  // Wait for the stock to fill (four pairs).
  std::set<ino_t> stocked_net, stocked_ipc;
  for (int i = 0; i < 1000; ++i) {
    stocked_net = HeldNamespaces("net");
    stocked_ipc = HeldNamespaces("ipc");
    if (stocked_net.size() >= 4 && stocked_ipc.size() >= 4) break;
    usleep(10000);
  }
  ASSERT_GE(stocked_net.size(), 4u);
  ASSERT_GE(stocked_ipc.size(), 4u);
  // More workers alive at once than the stock holds: some from the stock, some from the
  // refills or their own unshare.
  Parked parked(*broker_);
  std::vector<pid_t> pids;
  for (int i = 0; i < 7; ++i) {
    pids.push_back(parked.Spawn(*policy));
    ASSERT_GT(pids.back(), 0);
  }
  for (const char* type : {"net", "ipc"}) {
    SCOPED_TRACE(type);
    const std::set<ino_t>& stocked = std::string(type) == "net" ? stocked_net : stocked_ipc;
    const std::set<ino_t> held = HeldNamespaces(type);
    std::set<ino_t> seen;
    int from_stock = 0;
    for (pid_t pid : pids) {
      const ino_t ino = NsInode(pid, type);
      ASSERT_NE(ino, 0u);
      EXPECT_NE(ino, NsInode(getpid(), type)) << "a worker in the broker's namespace";
      EXPECT_TRUE(seen.insert(ino).second) << "two workers in one namespace";
      EXPECT_EQ(held.count(ino), 0u) << "the broker still holds a worker's namespace";
      from_stock += stocked.count(ino);
    }
    EXPECT_GE(from_stock, 1) << "no worker got a namespace from the stock";
  }
}

// ---- README "Spawn, round 7": one network + IPC namespace pair per policy whose
// promises reach nothing in it. ----

// The network and IPC namespaces this process holds as fds (the stock's pairs, a policy's
// shared pair), less its own.
std::set<ino_t> HeldOtherNamespaces(const char* type) {
  std::set<ino_t> held = HeldNamespaces(type);
  held.erase(NsInode(getpid(), type));
  return held;
}

// Starts the broker's stock (a spawn that takes a pair) and waits until it holds 4 pairs
// again, so that the spawns after it find pairs there.
void FillStock(Broker& broker, const std::set<ino_t>& not_stock = {}) {
  auto warm = broker.Prepare(SocketPolicy());
  ASSERT_TRUE(warm.ok()) << warm.status();
  {
    Parked parked(broker);
    ASSERT_GT(parked.Spawn(*warm), 0);
  }
  for (int i = 0; i < 1000; ++i) {
    size_t net = 0, ipc = 0;
    for (ino_t ino : HeldOtherNamespaces("net")) net += not_stock.count(ino) == 0;
    for (ino_t ino : HeldOtherNamespaces("ipc")) ipc += not_stock.count(ino) == 0;
    if (net >= 4 && ipc >= 4) return;
    usleep(10000);
  }
  ADD_FAILURE() << "the stock did not fill";
}

// Policy{} (stdio: no socket but an anonymous AF_UNIX pair, no System V IPC or message
// queue): its forked workers share one network and one IPC namespace, the policy's, which
// is not the broker's; another policy's workers another pair; UTS and user stay per worker.
TEST_F(SpawnTest, WorkersOfANoSocketPolicyShareOneNetworkAndIpcNamespace) {
  FillStock(*broker_);
  auto policy = broker_->Prepare(Policy{});
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto other = broker_->Prepare(Policy{});
  ASSERT_TRUE(other.ok()) << other.status();
  Parked parked(*broker_);
  const pid_t a = parked.Spawn(*policy);
  const pid_t b = parked.Spawn(*policy);
  const pid_t c = parked.Spawn(*policy);
  const pid_t d = parked.Spawn(*other);
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  ASSERT_GT(c, 0);
  ASSERT_GT(d, 0);
  for (const char* type : {"net", "ipc"}) {
    SCOPED_TRACE(type);
    const ino_t shared = NsInode(a, type);
    ASSERT_NE(shared, 0u);
    EXPECT_NE(shared, NsInode(getpid(), type)) << "a worker in the broker's namespace";
    EXPECT_EQ(NsInode(b, type), shared) << "one policy, one pair";
    EXPECT_EQ(NsInode(c, type), shared) << "one policy, one pair";
    EXPECT_NE(NsInode(d, type), shared) << "another policy, another pair";
    EXPECT_NE(NsInode(d, type), NsInode(getpid(), type));
    // The policy holds its pair (the broker's copy); the worker holds no fd of it.
    EXPECT_EQ(HeldOtherNamespaces(type).count(shared), 1u);
  }
  for (const char* type : {"uts", "user"}) {
    SCOPED_TRACE(type);
    EXPECT_NE(NsInode(a, type), NsInode(b, type));
  }
}

// A policy whose workers could reach into their network or IPC namespace gets a pair per
// worker: sockets (unix, inet, dns), penalty log (a refused call runs), the broker's
// identity kept (capabilities over the namespace), a rule on /proc (/proc/self/net/unix
// would list a sibling's sockets). The stock is full before each, so a shared pair would
// be there to take.
// A forked worker of a sharing policy says so in its result's layers; one of a policy
// that gets a pair per worker does not.
TEST_F(SpawnTest, TheResultSaysWhenThePolicysWorkersShareTheirPair) {
  for (const bool shares : {true, false}) {
    SCOPED_TRACE(shares ? "Policy{}" : "unix");
    auto policy = broker_->Prepare(shares ? Policy{} : SocketPolicy());
    ASSERT_TRUE(policy.ok()) << policy.status();
    auto id = broker_->Spawn(*policy, [](Client&) { return 0; });
    ASSERT_TRUE(id.ok()) << id.status();
    auto result = broker_->Wait(*id, absl::Seconds(30));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(absl::StrContains(result->layers, "netns/ipcns: shared by this policy's workers"),
              shares)
        << result->layers;
  }
}

TEST_F(SpawnTest, WorkersOfAPolicyThatReachesTheNamespacesGetAPairEach) {
  struct Variant {
    const char* name;
    Policy policy;
    bool shares = false;
  };
  std::vector<Variant> variants;
  variants.push_back({"unix", SocketPolicy()});
  Policy inet;
  inet.promises = PromiseSet{Promise::kStdio, Promise::kInet};
  variants.push_back({"inet", inet});
  Policy dns;
  dns.promises = PromiseSet{Promise::kStdio, Promise::kDns};
  variants.push_back({"dns", dns});
  Policy log;
  log.penalty = Penalty::kLog;
  variants.push_back({"penalty log", log});
  Policy keep;
  keep.identity.kind = Identity::Kind::kKeep;
  variants.push_back({"identity keep", keep});
  Policy proc;
  proc.promises = PromiseSet{Promise::kStdio, Promise::kRpath};
  PathRule rule;
  rule.path = "/proc";
  rule.read = true;
  proc.paths.push_back(rule);
  variants.push_back({"a /proc rule", proc});
  // A layer asked for by name is one namespace per worker (review h60, M1).
  Policy plus_netns;
  plus_netns.layers[Layer::kNetns] = LayerMode::kOn;
  variants.push_back({"+netns", plus_netns});
  Policy plus_ipcns;
  plus_ipcns.layers[Layer::kIpcns] = LayerMode::kOn;
  variants.push_back({"+ipcns", plus_ipcns});
  // The same without the rule on /proc shares (so the rule is what decides).
  Policy rpath;
  rpath.promises = PromiseSet{Promise::kStdio, Promise::kRpath};
  PathRule etc;
  etc.path = "/etc";
  etc.read = true;
  rpath.paths.push_back(etc);
  variants.push_back({"rpath with a rule on /etc", rpath, /*shares=*/true});
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    FillStock(*broker_);
    auto policy = broker_->Prepare(v.policy);
    ASSERT_TRUE(policy.ok()) << policy.status();
    Parked parked(*broker_);
    const pid_t a = parked.Spawn(*policy);
    const pid_t b = parked.Spawn(*policy);
    ASSERT_GT(a, 0);
    ASSERT_GT(b, 0);
    for (const char* type : {"net", "ipc"}) {
      SCOPED_TRACE(type);
      EXPECT_EQ(NsInode(a, type) == NsInode(b, type), v.shares);
      EXPECT_NE(NsInode(a, type), NsInode(getpid(), type));
    }
  }
}

// Hostile: a worker of a policy whose workers share a network and IPC namespace tries to
// make something there that a sibling could find: every socket, an anonymous pair then an
// abstract address, SO_PASSCRED (which would autobind one), listen, connect, a datagram
// sent to an abstract address, System V message queues, shared memory, semaphores and a
// POSIX message queue. Each is refused
// (penalty errno, so it carries on and says so); its sibling's /proc/<pid>/net/unix (read
// by the test, outside) lists no socket with an address.
TEST_F(SpawnTest, AWorkerOfASharedPairCreatesNothingASiblingCouldReach) {
  FillStock(*broker_);
  Policy errno_policy;
  errno_policy.penalty = Penalty::kErrno;
  auto policy = broker_->Prepare(errno_policy);
  ASSERT_TRUE(policy.ok()) << policy.status();
  Parked parked(*broker_);
  const pid_t sibling = parked.Spawn(*policy);
  ASSERT_GT(sibling, 0);
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  int hold[2];
  ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdin_fd = hold[0];
  options.stdout_fd = out[1];
  auto id = broker_->Spawn(*policy, [](Client&) {
    uint32_t made = 0;  // bit i: attempt i succeeded
    auto attempt = [&made](int bit, long rc) {
      if (rc >= 0) made |= 1u << bit;
    };
    attempt(0, syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
    attempt(1, syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0));
    attempt(2, syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0));
    attempt(3, syscall(SYS_socket, AF_INET6, SOCK_STREAM, 0));
    attempt(4, syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0));
    int dgram[2];
    attempt(5, syscall(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, dgram));
    int sv[2];
    // stdio's anonymous pair: allowed (bit 6 says it was NOT made, so that the address
    // attempts below are on a real socket).
    if (syscall(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) {
      made |= 1u << 6;
      sv[0] = sv[1] = -1;
    }
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, "\0vow-h51-abstract", 18);
    const socklen_t len = offsetof(struct sockaddr_un, sun_path) + 18;
    attempt(7, syscall(SYS_bind, sv[0], &addr, len));
    const int one = 1;
    attempt(8, syscall(SYS_setsockopt, sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)));
    attempt(9, syscall(SYS_listen, sv[0], 1));
    attempt(10, syscall(SYS_connect, sv[1], &addr, len));
    attempt(11, syscall(SYS_msgget, IPC_PRIVATE, IPC_CREAT | 0600));
    attempt(12, syscall(SYS_shmget, IPC_PRIVATE, 4096, IPC_CREAT | 0600));
    attempt(13, syscall(SYS_semget, IPC_PRIVATE, 1, IPC_CREAT | 0600));
    attempt(14, syscall(SYS_mq_open, "vow-h51", O_RDWR | O_CREAT, 0600, nullptr));
    // A datagram to an abstract address (review h60, L3): refused by the filter (a
    // destination needs unix/inet). The kernel would send it to the pair's peer (a
    // SOCK_SEQPACKET ignores the address), so the refusal is checked in the result too.
    attempt(15, syscall(SYS_sendto, sv[1], "x", 1, 0, &addr, len));
    (void)!write(1, &made, sizeof(made));
    char c;
    (void)!read(0, &c, 1);  // EOF when the test lets it go
    return 0;
  }, options);
  close(out[1]);
  close(hold[0]);
  ASSERT_TRUE(id.ok()) << id.status();
  uint32_t made = ~0u;
  ASSERT_EQ(read(out[0], &made, sizeof(made)), static_cast<ssize_t>(sizeof(made)));
  EXPECT_EQ(made, 0u) << "bit i: attempt i succeeded (bit 6: stdio's pair was refused)";
  const pid_t pid = broker_->pid(*id);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(NsInode(pid, "net"), NsInode(sibling, "net")) << "not in the shared namespace";
  EXPECT_EQ(NsInode(pid, "ipc"), NsInode(sibling, "ipc")) << "not in the shared namespace";
  EXPECT_NE(NsInode(pid, "net"), NsInode(getpid(), "net"));
  // What the shared namespace holds: no unix socket with an address (the pair is there,
  // unnamed: a line with no path).
  std::string unix_sockets;
  {
    FILE* f = fopen(absl::StrCat("/proc/", sibling, "/net/unix").c_str(), "r");
    ASSERT_NE(f, nullptr);
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof(line), f) != nullptr) {
      if (lines++ == 0) continue;  // the header
      unix_sockets += line;
      // Num RefCount Protocol Flags Type St Inode [Path]: 7 fields without an address.
      int fields = 0;
      bool in_field = false;
      for (const char* p = line; *p != '\0'; ++p) {
        const bool space = *p == ' ' || *p == '\n';
        if (!space && !in_field) ++fields;
        in_field = !space;
      }
      EXPECT_EQ(fields, 7) << "a socket with an address: " << line;
    }
    fclose(f);
  }
  close(hold[1]);
  auto result = broker_->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, Kind::kExited) << result->ToString();
  bool sendto_refused = false;
  for (const Violation& v : result->violations) sendto_refused |= v.syscall == "sendto";
  EXPECT_TRUE(sendto_refused) << "the sendto with an address was not refused by the filter: "
                              << result->ToString();
  close(out[0]);
}

// An exec'd worker (vow run's) takes its network and IPC namespaces from the stock too: a
// broker that makes its one pair at Create (namespace_stock_once) gives it to the spawn,
// whose program runs in it, holds no fd of it, and is the only one left holding it (the
// broker neither keeps it nor makes a replacement).
TEST(ExecSpawnStockTest, ExecWorkerRunsInTheStockedNamespaces) {
  BrokerOptions options;
  options.namespace_stock = 1;
  options.namespace_stock_once = true;
  auto broker = Broker::Create(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  // The stock's thread also holds the broker's own namespaces (to go back to) while it
  // works: those are not the stocked ones.
  auto stocked = [](const char* type) {
    std::set<ino_t> held = HeldNamespaces(type);
    held.erase(NsInode(getpid(), type));
    return held;
  };
  std::set<ino_t> stocked_net, stocked_ipc;
  for (int i = 0; i < 1000; ++i) {
    stocked_net = stocked("net");
    stocked_ipc = stocked("ipc");
    if (!stocked_net.empty() && !stocked_ipc.empty()) break;
    usleep(10000);
  }
  ASSERT_EQ(stocked_net.size(), 1u);
  ASSERT_EQ(stocked_ipc.size(), 1u);
  auto policy = (*broker)->Prepare(Policy{});
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto id = (*broker)->SpawnExec(*policy, {"/bin/sleep", "30"});
  ASSERT_TRUE(id.ok()) << id.status();
  const pid_t pid = (*broker)->pid(*id);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(NsInode(pid, "net"), *stocked_net.begin());
  EXPECT_EQ(NsInode(pid, "ipc"), *stocked_ipc.begin());
  EXPECT_NE(NsInode(pid, "net"), NsInode(getpid(), "net"));
  // The program holds no namespace fd (ApplyLayers closed the ones it entered).
  const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* dir = opendir(fd_dir.c_str());
  ASSERT_NE(dir, nullptr);
  while (struct dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char target[64] = {};
    ASSERT_GT(readlink(absl::StrCat(fd_dir, "/", e->d_name).c_str(), target, sizeof(target) - 1),
              0);
    EXPECT_TRUE(absl::string_view(target).substr(0, 5) != "net:[" &&
                absl::string_view(target).substr(0, 5) != "ipc:[")
        << "the program holds fd " << e->d_name << ": " << target;
  }
  closedir(dir);
  usleep(50000);  // a replacement, if one were made, would be held by now
  EXPECT_TRUE(stocked("net").empty()) << "the broker still holds a network namespace";
  EXPECT_TRUE(stocked("ipc").empty()) << "the broker still holds an IPC namespace";
  (*broker)->Kill(*id);
  auto result = (*broker)->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, WorkerResult::Kind::kSignaled) << result->ToString();
}

// The program's fds that are namespaces ("mnt:[...]" and the like).
std::vector<std::string> HeldByProgram(pid_t pid) {
  std::vector<std::string> held;
  const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* dir = opendir(fd_dir.c_str());
  if (dir == nullptr) return {"(no fd directory)"};
  while (struct dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char target[64] = {};
    if (readlink(absl::StrCat(fd_dir, "/", e->d_name).c_str(), target, sizeof(target) - 1) <= 0) {
      continue;
    }
    const absl::string_view t(target);
    if (t.substr(0, 5) == "mnt:[" || t.substr(0, 5) == "net:[" || t.substr(0, 5) == "ipc:[") {
      held.push_back(std::string(t));
    }
  }
  closedir(dir);
  return held;
}

// `vow run`'s empty root made ahead of time (ExecRoots, PrepareExecRoot): an exec'd
// worker whose root binds exactly the prepared files enters that mount namespace (and
// holds no fd of it); the broker keeps it for the next spawn.
TEST(ExecRootsTest, ExecWorkerEntersThePreparedRoot) {
  auto roots = std::make_shared<ExecRoots>();
  ASSERT_TRUE(HeldNamespaces("mnt").empty());
  absl::Status made = PrepareExecRoot(*roots, Policy{}, "/bin/sleep");
  ASSERT_TRUE(made.ok()) << made;
  ASSERT_EQ(roots->size(), 1u);
  // A second program with the same loader, and a #! script whose interpreter has it: the
  // same root, none more.
  made = PrepareExecRoot(*roots, Policy{}, "/bin/true");
  ASSERT_TRUE(made.ok()) << made;
  ASSERT_EQ(roots->size(), 1u);
  const char* tmp = getenv("TEST_TMPDIR");
  const std::string script = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/exec_root_script");
  {
    FILE* f = fopen(script.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("#!/bin/sh\nexit 0\n", f);
    fclose(f);
  }
  made = PrepareExecRoot(*roots, Policy{}, script);
  ASSERT_TRUE(made.ok()) << made;
  ASSERT_EQ(roots->size(), 1u);
  const std::set<ino_t> prepared = HeldNamespaces("mnt");
  ASSERT_EQ(prepared.size(), 1u);
  const ino_t root = *prepared.begin();
  ASSERT_NE(root, NsInode(getpid(), "mnt"));
  BrokerOptions options;
  options.namespace_stock = 0;
  options.exec_roots = roots;
  auto broker = Broker::Create(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  auto policy = (*broker)->Prepare(Policy{});
  ASSERT_TRUE(policy.ok()) << policy.status();
  for (int i = 0; i < 2; ++i) {
    auto id = (*broker)->SpawnExec(*policy, {"/bin/sleep", "30"});
    ASSERT_TRUE(id.ok()) << id.status();
    const pid_t pid = (*broker)->pid(*id);
    ASSERT_GT(pid, 0);
    EXPECT_EQ(NsInode(pid, "mnt"), root) << "spawn " << i;
    EXPECT_TRUE(HeldByProgram(pid).empty()) << "the program holds " << HeldByProgram(pid)[0];
    EXPECT_EQ(HeldNamespaces("mnt"), prepared) << "the broker's fd of the root";
    (*broker)->Kill(*id);
    auto result = (*broker)->Wait(*id, absl::Seconds(30));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->kind, Kind::kSignaled) << result->ToString();
  }
}

// A broker (no namespace stock) given `roots`, in which one root was prepared first for
// Policy{} and `program`; *prepared is the set of that root's mount namespace.
absl::StatusOr<std::unique_ptr<Broker>> BrokerWithOneRoot(
    const std::shared_ptr<ExecRoots>& roots, const std::string& program,
    std::set<ino_t>* prepared) {
  RETURN_IF_ERROR(PrepareExecRoot(*roots, Policy{}, program));
  *prepared = HeldNamespaces("mnt");
  if (prepared->size() != 1) {
    return absl::InternalError(absl::StrCat(prepared->size(), " mount namespaces held"));
  }
  BrokerOptions options;
  options.namespace_stock = 0;
  options.exec_roots = roots;
  return Broker::Create(options);
}

// A prepared root is only entered by a worker whose root would bind the same files: with
// an `x` rule the worker's root binds one more, so it builds its own (and the program
// runs: the x file is there).
TEST(ExecRootsTest, AWorkerWhoseFilesDifferBuildsItsOwnRoot) {
  auto roots = std::make_shared<ExecRoots>();
  std::set<ino_t> prepared;
  auto broker = BrokerWithOneRoot(roots, "/bin/sh", &prepared);
  ASSERT_TRUE(broker.ok()) << broker.status();
  Policy with_x;
  with_x.promises = PromiseSet{Promise::kStdio, Promise::kExec};
  with_x.paths.push_back(PathRule{"/bin/sleep", false, false, true, false});
  auto policy = (*broker)->Prepare(with_x);
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto id = (*broker)->SpawnExec(*policy, {"/bin/sh", "-c", "/bin/sleep 30"});
  ASSERT_TRUE(id.ok()) << id.status();
  const pid_t pid = (*broker)->pid(*id);
  ASSERT_GT(pid, 0);
  const ino_t mnt = NsInode(pid, "mnt");
  EXPECT_NE(mnt, 0u);
  EXPECT_NE(mnt, *prepared.begin());
  EXPECT_NE(mnt, NsInode(getpid(), "mnt"));
  (*broker)->Kill(*id);
  auto result = (*broker)->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  // Prepared for that policy (the loader and the x file), the root is entered.
  absl::Status made = PrepareExecRoot(*roots, with_x, "/bin/sh");
  ASSERT_TRUE(made.ok()) << made;
  ASSERT_EQ(roots->size(), 2u);
  std::set<ino_t> both = HeldNamespaces("mnt");
  ASSERT_EQ(both.size(), 2u);
  both.erase(*prepared.begin());
  id = (*broker)->SpawnExec(*policy, {"/bin/sh", "-c", "/bin/sleep 30"});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(NsInode((*broker)->pid(*id), "mnt"), *both.begin());
  (*broker)->Kill(*id);
  result = (*broker)->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
}

// A worker that keeps the broker's identity never enters a shared root (it could
// remount it; ApplyLayers refuses one): it builds its own, with the same files.
TEST(ExecRootsTest, AWorkerThatKeepsTheIdentityBuildsItsOwnRoot) {
  auto roots = std::make_shared<ExecRoots>();
  std::set<ino_t> prepared;
  auto broker = BrokerWithOneRoot(roots, "/bin/sleep", &prepared);
  ASSERT_TRUE(broker.ok()) << broker.status();
  Policy keep;
  keep.identity.kind = Identity::Kind::kKeep;
  keep.layers[Layer::kUserns] = LayerMode::kOff;
  auto policy = (*broker)->Prepare(keep);
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto id = (*broker)->SpawnExec(*policy, {"/bin/sleep", "30"});
  ASSERT_TRUE(id.ok()) << id.status();
  const pid_t pid = (*broker)->pid(*id);
  ASSERT_GT(pid, 0);
  const ino_t mnt = NsInode(pid, "mnt");
  EXPECT_NE(mnt, *prepared.begin());
  EXPECT_NE(mnt, NsInode(getpid(), "mnt"));
  (*broker)->Kill(*id);
  auto result = (*broker)->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, Kind::kSignaled) << result->ToString();
}

// No root is made for a policy whose workers have none (`layers -mountns`).
TEST(ExecRootsTest, PrepareExecRootMakesNothingForAPolicyWithoutAnEmptyRoot) {
  ExecRoots roots;
  Policy no_root;
  no_root.layers[Layer::kMountns] = LayerMode::kOff;
  absl::Status made = PrepareExecRoot(roots, no_root, "/bin/sleep");
  EXPECT_TRUE(made.ok()) << made;
  EXPECT_EQ(roots.size(), 0u);
  EXPECT_TRUE(HeldNamespaces("mnt").empty());
}

}  // namespace
}  // namespace vow
