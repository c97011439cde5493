// The broker as a hard target (issue 8), items 4, 6, 11 and 12, and the refusal
// throttle (the flood benchmark): one hostile act per test, each in a real worker
// spawned through the public Broker API (forked with a WorkerMain, or
// //tests:test_worker exec'd). The test process is the broker (trusted side); what the
// workers do is the hostile side. Each test asserts the refusal or the ending, and where
// the issue was about stalls, that an innocent worker kept its latency.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/broker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "worker/client.h"

namespace vow {
namespace {

using ::testing::HasSubstr;
using Kind = WorkerResult::Kind;

using testing::Runfile;

uint64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// /proc/PID/status, read at once (one snapshot).
std::string ReadStatus(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The value of `field` ("Uid", "CapEff") in a /proc/PID/status text, or "" if absent.
std::string StatusField(const std::string& status, const std::string& field) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field + ":")) {
      std::string value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return "";
}

// Reads exactly n bytes (the test side of a worker's pipe), with a deadline.
bool ReadExactly(int fd, void* p, size_t n, int timeout_ms = 30000) {
  size_t got = 0;
  while (got < n) {
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, timeout_ms) != 1) return false;
    ssize_t r = read(fd, static_cast<char*>(p) + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

class HardTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = Broker::Create();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
  }

  WorkerResult Await(absl::StatusOr<WorkerId> id, absl::Duration timeout = absl::Seconds(30)) {
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return WorkerResult{};
    auto result = broker_->Wait(*id, timeout);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) broker_->Kill(*id);
    return result.ok() ? *result : WorkerResult{};
  }

  std::unique_ptr<Broker> broker_;
};

// ---- Item 4: one worker's stalled call does not stall the others. ----

// A FIFO with no writer: an open for reading blocks until a writer comes, unless
// O_NONBLOCK. The broker opens with O_NONBLOCK, so the answer comes at once (the worker
// gets the FIFO without O_NONBLOCK, as it asked). Asked on the channel.
TEST_F(HardTargetTest, FifoWithoutAWriterOpensAtOnceByRequest) {
  testing::TempDir dir;
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << strerror(errno);
  Policy policy;
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  WorkerResult r = Await(broker_->Spawn(policy, [&](Client& client) {
    uint64_t t0 = MonotonicNs();
    auto fd = client.Open(fifo, O_RDONLY);
    uint64_t took = MonotonicNs() - t0;
    if (!fd.ok()) return 1;
    if (took > 2'000'000'000ull) return 2;
    int fl = fcntl(fd->get(), F_GETFL);
    return (fl & O_NONBLOCK) == 0 ? 0 : 3;
  }));
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
}

// The same FIFO opened by the worker's own open() (a seccomp path call, served on the pool).
TEST_F(HardTargetTest, FifoWithoutAWriterOpensAtOnceByPathCall) {
  testing::TempDir dir;
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << strerror(errno);
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  WorkerResult r = Await(broker_->Spawn(policy, [&](Client&) {
    uint64_t t0 = MonotonicNs();
    int fd = open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
    uint64_t took = MonotonicNs() - t0;
    if (fd < 0) return 1;
    return took > 2'000'000'000ull ? 2 : 0;
  }));
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
}

// Latencies (ns) of `n` brokered opens of `path`, sorted.
std::vector<uint64_t> TimeOpens(Client& client, const std::string& path, int n) {
  std::vector<uint64_t> out;
  for (int i = 0; i < n; ++i) {
    uint64_t t0 = MonotonicNs();
    auto fd = client.Open(path, O_RDONLY);
    uint64_t t = MonotonicNs() - t0;
    if (!fd.ok()) return {};
    out.push_back(t);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A busy worker with only a write rule keeps pwrites of 128 MiB going on one thread
// while its main thread asks the broker for O_TRUNC opens of the same file, which wait
// in the kernel behind each pwrite (the inode lock; ~1 s each on this class of machine,
// where the single 1 GiB pwrite takes 6-10 s and would run into the 10 s call
// deadline): the broker nearly always has a stalled call of this worker. An innocent worker's 200 opens, timed before and during that, in the
// same test: its worst open stays under max(300 ms, 100 x its quiet p50) (with
// opens served on the one serving thread, or one pool thread, it waits out a pwrite:
// hundreds of ms). Then Kill of the busy worker returns at once.
TEST_F(HardTargetTest, StalledCallDoesNotStallAnotherWorkerAndKillIsPrompt) {
  testing::TempDir dir;
  std::string small = dir.WriteFile("ro/small", "x");
  std::string big = dir.WriteFile("rw/big", "");
  constexpr int kOpens = 200;

  // The innocent worker: 200 quiet opens, a report, then waits for the go, 200 more.
  int innocent_out[2], innocent_go[2];
  ASSERT_EQ(pipe2(innocent_out, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(innocent_go, O_CLOEXEC), 0);
  Policy innocent_policy;
  innocent_policy.paths.push_back(PathRule{dir.path() + "/ro", /*read=*/true});
  SpawnOptions innocent_options;
  innocent_options.stdin_fd = innocent_go[0];
  innocent_options.stdout_fd = innocent_out[1];
  auto innocent = broker_->Spawn(innocent_policy, [&](Client& client) {
    std::vector<uint64_t> quiet = TimeOpens(client, small, kOpens);
    if (quiet.empty()) return 1;
    uint64_t q[2] = {quiet[kOpens / 2], quiet.back()};
    if (write(1, q, sizeof(q)) != sizeof(q)) return 2;
    char go;
    if (read(0, &go, 1) != 1) return 3;
    std::vector<uint64_t> loaded = TimeOpens(client, small, kOpens);
    if (loaded.empty()) return 4;
    uint64_t l[2] = {loaded[kOpens / 2], loaded.back()};
    return write(1, l, sizeof(l)) == sizeof(l) ? 0 : 5;
  }, innocent_options);
  ASSERT_TRUE(innocent.ok()) << innocent.status();
  close(innocent_go[0]);
  close(innocent_out[1]);
  uint64_t quiet[2] = {0, 0};
  ASSERT_TRUE(ReadExactly(innocent_out[0], quiet, sizeof(quiet)));

  // The busy worker.
  int busy_out[2];
  ASSERT_EQ(pipe2(busy_out, O_CLOEXEC), 0);
  Policy busy_policy;
  busy_policy.promises.insert(Promise::kThread);
  PathRule write_rule;
  write_rule.path = dir.path() + "/rw";
  write_rule.write = true;
  busy_policy.paths.push_back(write_rule);
  SpawnOptions busy_options;
  busy_options.stdout_fd = busy_out[1];
  auto busy = broker_->Spawn(busy_policy, [&](Client& client) {
    auto fd = client.Open(big, O_WRONLY);
    if (!fd.ok()) return 1;
    constexpr size_t kChunk = size_t{128} << 20;
    void* zeros = mmap(nullptr, kChunk, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
    if (zeros == MAP_FAILED) return 2;
    const int out = fd->get();
    std::atomic<uint64_t> rounds{0};
    std::thread writer([&] {
      for (;;) {
        if (pwrite(out, zeros, kChunk, 0) < 0) _exit(3);
        ++rounds;
      }
    });
    writer.detach();
    // One O_TRUNC open through, then tell the test: from here on one of this worker's
    // calls is nearly always waiting behind a pwrite.
    if (!client.Open(big, O_WRONLY | O_TRUNC).ok()) return 4;
    if (write(1, "b", 1) != 1) return 5;
    for (;;) {
      auto t = client.Open(big, O_WRONLY | O_TRUNC);
      if (!t.ok()) return 6;
    }
  }, busy_options);
  ASSERT_TRUE(busy.ok()) << busy.status();
  close(busy_out[1]);
  char started;
  if (!ReadExactly(busy_out[0], &started, 1)) {
    broker_->Kill(*busy);
    broker_->Kill(*innocent);
    FAIL() << "the busy worker did not start: " << Await(busy).ToString();
  }
  absl::SleepFor(absl::Milliseconds(100));

  ASSERT_EQ(write(innocent_go[1], "g", 1), 1);
  uint64_t loaded[2] = {0, 0};
  const bool got = ReadExactly(innocent_out[0], loaded, sizeof(loaded));

  uint64_t t0 = MonotonicNs();
  broker_->Kill(*busy);
  const uint64_t kill_ns = MonotonicNs() - t0;
  WorkerResult busy_result = Await(busy, absl::Seconds(10));
  const uint64_t reaped_ns = MonotonicNs() - t0;
  WorkerResult innocent_result = Await(innocent);

  ASSERT_TRUE(got) << "the innocent worker did not report its loaded latencies";
  EXPECT_EQ(innocent_result.kind, Kind::kExited) << innocent_result.ToString();
  EXPECT_EQ(innocent_result.exit_code, 0) << innocent_result.ToString();
  const uint64_t bound = std::max<uint64_t>(300'000'000, 100 * quiet[0]);
  printf("innocent opens: quiet p50 %lu us, max %lu us; beside a stalled worker p50 %lu us, "
         "max %lu us; Kill %lu us, reaped after %lu ms\n",
         quiet[0] / 1000, quiet[1] / 1000, loaded[0] / 1000, loaded[1] / 1000, kill_ns / 1000,
         reaped_ns / 1000000);
  EXPECT_LT(loaded[1], bound) << "quiet p50 " << quiet[0] / 1000 << " us, max "
                              << quiet[1] / 1000 << " us; with a stalled worker p50 "
                              << loaded[0] / 1000 << " us, max " << loaded[1] / 1000 << " us";
  EXPECT_LT(kill_ns, 100'000'000u) << "Kill took " << kill_ns / 1000 << " us";
  EXPECT_EQ(busy_result.kind, Kind::kSignaled) << busy_result.ToString();
  EXPECT_EQ(busy_result.reason, "killed by the broker") << busy_result.ToString();
  EXPECT_LT(reaped_ns, 5'000'000'000u) << "the killed worker was reaped after "
                                       << reaped_ns / 1000000 << " ms";
  close(innocent_go[1]);
  close(innocent_out[0]);
  close(busy_out[0]);
}

// ---- Item 6: the worker is nobody. ----

// Read from outside (the broker's view of the worker, while it runs).
TEST_F(HardTargetTest, WorkerIsUid65534WithNoCapabilities) {
  int go[2], ready[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdin_fd = go[0];
  options.stdout_fd = ready[1];
  auto id = broker_->Spawn(Policy{}, [](Client&) {
    // Locked (WorkerMain runs after the lock-down): say so, then wait.
    if (write(1, "r", 1) != 1) return 2;
    char c;
    return read(0, &c, 1) == 1 ? 0 : 1;
  }, options);
  ASSERT_TRUE(id.ok()) << id.status();
  close(go[0]);
  close(ready[1]);
  pid_t pid = broker_->pid(*id);
  ASSERT_GT(pid, 0);
  char c;
  ASSERT_TRUE(ReadExactly(ready[0], &c, 1)) << "the worker did not start";
  close(ready[0]);
  const std::string status = ReadStatus(pid);
  const std::string uid = StatusField(status, "Uid");
  const std::string cap_eff = StatusField(status, "CapEff");
  const std::string cap_prm = StatusField(status, "CapPrm");
  const std::string cap_bnd = StatusField(status, "CapBnd");
  ASSERT_EQ(write(go[1], "g", 1), 1);
  close(go[1]);
  WorkerResult r = Await(id);
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(uid, "65534\t65534\t65534\t65534") << r.layers << "\n" << status;
  EXPECT_EQ(cap_eff, "0000000000000000");
  EXPECT_EQ(cap_prm, "0000000000000000");
  EXPECT_EQ(cap_bnd, "0000000000000000");
}

// Through a brokered unix connection the worker claims pid 1 / uid 0 in SCM_CREDENTIALS:
// the kernel refuses the send; and what the service reads (SO_PASSCRED) is the worker's
// real pid and uid 65534.
// The worker of the next test, as its spawn forked it (SetForkChildHookForTesting).
std::atomic<pid_t> g_forged_creds_worker{-1};

TEST_F(HardTargetTest, ForgedCredentialsOverABrokeredUnixConnectionAreRefused) {
  char templ[] = "/tmp/vowcred.XXXXXX";  // sun_path holds 107 bytes
  ASSERT_NE(mkdtemp(templ), nullptr);
  const std::string dir = templ;
  const std::string path = dir + "/sock";
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(server, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // On the listening socket, before the worker can send: the accepted socket inherits it.
  // Set only after accept(), a byte the worker sent in between carried no credentials,
  // and its pid read as 0 (CI, 2026-12-05 12:20: the kernel attaches them at the send, for
  // a receiver that asked by then or was not yet accepted).
  int passcred = 1;
  ASSERT_EQ(setsockopt(server, SOL_SOCKET, SO_PASSCRED, &passcred, sizeof(passcred)), 0);
  ASSERT_EQ(listen(server, 4), 0);
  Policy policy;
  policy.promises.insert(Promise::kUnix);
  ConnectRule rule;
  rule.transport = ConnectRule::Transport::kUnix;
  rule.unix_path = path;
  policy.connects.push_back(rule);
  g_forged_creds_worker.store(-1);
  SetForkChildHookForTesting([](pid_t p) { g_forged_creds_worker.store(p); });
  auto id = broker_->Spawn(policy, [&](Client& client) {
    auto fd = client.ConnectUnix(path);
    if (!fd.ok()) return 1;
    char byte = 'f';
    struct iovec iov = {&byte, 1};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred))] = {};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred forged = {1, 0, 0};
    memcpy(CMSG_DATA(c), &forged, sizeof(forged));
    if (sendmsg(fd->get(), &msg, MSG_NOSIGNAL) != -1) return 2;  // sent: forged creds
    const int err = errno;
    // A plain byte: the service reads who really sent it.
    byte = 'p';
    if (write(fd->get(), &byte, 1) != 1) return 3;
    return 100 + err;
  });
  SetForkChildHookForTesting(nullptr);
  ASSERT_TRUE(id.ok()) << id.status();
  // The pid from the spawn itself: broker_->pid() says -1 once the worker is reaped, which
  // under load can happen before this thread runs again (seen once, h52).
  const pid_t pid = g_forged_creds_worker.load();
  struct pollfd pf = {server, POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 30000), 1) << "the worker never connected";
  int conn = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  int one = 1;
  ASSERT_EQ(setsockopt(conn, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
  WorkerResult r = Await(id);
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  // The kernel refuses the claim (scm_check_creds): uid 0 is not mapped in the worker's
  // own user namespace (EINVAL), or, without that layer, the worker has neither the
  // uid nor CAP_SETUID / CAP_SYS_ADMIN (EPERM).
  const int expected = absl::StrContains(r.layers, "userns: on") ? EINVAL : EPERM;
  EXPECT_EQ(r.exit_code, 100 + expected)
      << r.ToString() << " (exit 100+errno of the forged send; 2: it was sent); layers: "
      << r.layers;
  // Read everything the worker sent, each byte with its credentials.
  std::string bytes;
  std::vector<struct ucred> creds;
  for (;;) {
    char byte;
    struct iovec iov = {&byte, 1};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred))] = {};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(conn, &msg, MSG_DONTWAIT);
    if (n <= 0) break;
    bytes.push_back(byte);
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        struct ucred u;
        memcpy(&u, CMSG_DATA(c), sizeof(u));
        creds.push_back(u);
      }
    }
  }
  EXPECT_EQ(bytes, "p") << "the byte sent with forged credentials arrived";
  ASSERT_EQ(creds.size(), 1u);
  EXPECT_EQ(creds[0].pid, pid);
  EXPECT_EQ(creds[0].uid, 65534u);
  EXPECT_EQ(creds[0].gid, 65534u);
  close(conn);
  close(server);
  unlink(path.c_str());
  rmdir(dir.c_str());
}

// ---- Item 11: an empty datagram ends the worker. ----

TEST_F(HardTargetTest, EmptyDatagramEndsTheWorker) {
  WorkerResult r = Await(broker_->Spawn(Policy{}, [](Client& client) {
    const int channel = client.channel_fd();
    if (send(channel, "", 0, MSG_NOSIGNAL) != 0) return 1;
    // A broker that took it for EOF stops reading and never ends us: after 2 quiet
    // seconds exit 0 (seen as kExited). Whatever it still sends is dropped.
    for (;;) {
      struct pollfd p = {channel, POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0) return 0;
      char buf[256];
      if (read(channel, buf, sizeof(buf)) <= 0) return 0;
    }
  }));
  EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
  EXPECT_EQ(r.reason, "an empty datagram");
}

// ---- Item 12: an exec'd program cannot install a filter (and listener) of its own. ----

// The broker's child installed the filter before execve: the program's own
// seccomp(SET_MODE_FILTER, NEW_LISTENER) is refused (recorded as a violation), and it
// cannot read /etc/shadow (its open is a path call the broker refuses).
TEST_F(HardTargetTest, ExecdProgramCannotInstallAFilterOfItsOwn) {
  Policy policy;
  policy.penalty = Penalty::kErrno;
  auto prepared = broker_->Prepare(policy);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  std::string worker = Runfile("tests/test_worker");
  ASSERT_EQ(access(worker.c_str(), X_OK), 0) << worker;
  SpawnOptions options;
  options.stderr_fd = 2;
  WorkerResult r = Await(broker_->SpawnExec(*prepared, {worker, "own_filter"}, options));
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString() << " (10: it got a listener; 11: it read "
                            << "/etc/shadow)";
  bool seccomp_refused = false;
  for (const Violation& v : r.violations) seccomp_refused |= v.syscall == "seccomp";
  EXPECT_TRUE(seccomp_refused) << r.ToString();
  bool shadow_refused = false;
  for (const Refusal& f : r.refusals) shadow_refused |= absl::StrContains(f.call, "/etc/shadow");
  EXPECT_TRUE(shadow_refused) << r.ToString();
}

// ---- A worker that is still exiting costs the serving loop nothing. ----

// The kernel reports EPOLLHUP on a seccomp listener once no task uses the filter, which
// can be long before the worker's pidfd says it has ended (its address space is still
// being torn down). A worker that touched 1 GiB exits; the broker's CPU time (this
// process: the test thread sleeps in Wait) from the worker's last act to its reported end
// must stay small. Watching the hung-up listener spun the loop: 62-85 ms of CPU in three
// runs of this test over an exit of 200-300 ms (with `perf stat` under `vow run` of the
// same act, ~15,700 epoll_wait calls for one exit); dropping it: 0.8-0.9 ms (~70 calls).
TEST_F(HardTargetTest, ExitingWorkerDoesNotSpinTheLoop) {
  int ready[2], go[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdin_fd = go[0];
  options.stdout_fd = ready[1];
  constexpr size_t kBytes = size_t{1} << 30;
  auto id = broker_->Spawn(Policy{}, [](Client&) {
    void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 10;
    memset(p, 1, kBytes);
    char c = 'r';
    if (write(1, &c, 1) != 1) return 11;
    if (read(0, &c, 1) != 1) return 12;
    return 0;  // its exit tears 1 GiB down
  }, options);
  close(go[0]);
  close(ready[1]);
  char c;
  ASSERT_TRUE(ReadExactly(ready[0], &c, 1)) << "the worker did not touch its memory";
  struct timespec cpu0, cpu1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  const uint64_t start = MonotonicNs();
  WorkerResult r = Await(id);
  const uint64_t took_ns = MonotonicNs() - start;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
  close(go[1]);
  close(ready[0]);
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  const absl::Duration cpu = absl::DurationFromTimespec(cpu1) - absl::DurationFromTimespec(cpu0);
  EXPECT_LT(cpu, absl::Milliseconds(20))
      << "the broker used " << cpu << " of CPU while the worker took "
      << absl::Nanoseconds(took_ns) << " to end";
}

// ---- Path calls leave no fd behind in the broker. ----

// 100 open() path calls answered with an fd (SECCOMP_IOCTL_NOTIF_ADDFD): the broker's fd
// table is the same afterwards.
TEST_F(HardTargetTest, PathCallOpensLeaveNoFdInTheBroker) {
  testing::TempDir dir;
  std::string file = dir.WriteFile("f", "x");
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  auto prepared = broker_->Prepare(policy);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  // The policy's first forked worker makes its shared root, one fd that the policy keeps
  // for its lifetime (PreparedPolicy::shared_root): counted in `before`.
  EXPECT_EQ(Await(broker_->Spawn(*prepared, [](Client&) { return 0; })).kind, Kind::kExited);
  std::set<int> before = testing::OpenFds(getpid());
  WorkerResult r = Await(broker_->Spawn(*prepared, [&](Client&) {
    for (int i = 0; i < 100; ++i) {
      int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return 1;
      close(fd);
    }
    return 0;
  }));
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  // The worker's end is seen (Await) by another broker thread than the one that answers
  // its path calls, which may still be closing its copy of the last open's fd and the
  // worker's listener (and so may `before` hold the first worker's listener):
  // testing::FdsBeyond waits up to 2 s for those owed closes. A leaked fd never closes,
  // so the check still fails on one. (OpenFds leaves out the namespace stock's pairs,
  // made by its thread whenever it gets to run.)
  std::vector<std::string> kept = testing::FdsBeyond(before, absl::Seconds(2));
  EXPECT_TRUE(kept.empty()) << "the broker kept " << kept.size()
                            << " fds after 100 path-call opens: " << absl::StrJoin(kept, " ");
}

// ---- The libc set serves reads only. ----

// /etc/localtime is in the libc set (read by any worker without a rule); a write open of
// it is answered as if no rule covered it, never by the libc set.
TEST_F(HardTargetTest, LibcSetServesNoWriteOpens) {
  if (access("/etc/localtime", R_OK) != 0) GTEST_SKIP() << "no /etc/localtime here";
  WorkerResult r = Await(broker_->Spawn(Policy{}, [](Client&) {
    int ro = open("/etc/localtime", O_RDONLY | O_CLOEXEC);
    if (ro < 0) return 1;
    close(ro);
    int rw = open("/etc/localtime", O_WRONLY | O_CLOEXEC);
    if (rw >= 0) return 2;
    return errno == ENOENT ? 0 : 100 + errno;
  }));
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  ASSERT_EQ(r.refusals.size(), 1u) << r.ToString();
  EXPECT_THAT(r.refusals[0].ToString(), HasSubstr("the policy has no filesystem rules"));
}

// ---- Floods of refused calls: the refusal throttle (issue 8, the flood benchmark). ----

// The broker's refusal bucket (broker.cc, kRefusalBurst / kRefusalsPerSecond).
constexpr double kRefusalBurst = 128;
constexpr double kRefusalsPerSecond = 32;
constexpr double kGlobalRefusalBurst = 256;
constexpr double kRefusalBurstUnderPressure = 8;

// Audit entries "throttle" seen for each worker, gathered by polling the audit ring
// (a flood can push an entry out of the ring later).
class ThrottleWatch {
 public:
  explicit ThrottleWatch(Broker& broker) : broker_(broker) {}
  void Poll() {
    for (const AuditEntry& e : broker_.audit().Entries()) {
      if (e.request == "throttle") {
        seen_.insert({e.worker_id, absl::ToUnixNanos(e.time)});
      }
    }
  }
  int Episodes(WorkerId id) const {
    int n = 0;
    for (const auto& [worker, time] : seen_) n += worker == id ? 1 : 0;
    return n;
  }

 private:
  Broker& broker_;
  std::set<std::pair<uint64_t, int64_t>> seen_;
};

// A worker started by a byte on its stdin, reporting {count, elapsed ns} on its stdout.
struct Counted {
  absl::StatusOr<WorkerId> id = absl::UnknownError("not spawned");
  int go = -1, out = -1;
};

Counted SpawnCounted(Broker& broker, const Policy& policy, const WorkerMain& main) {
  int go[2], out[2];
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) abort();
  SpawnOptions options;
  options.stdin_fd = go[0];
  options.stdout_fd = out[1];
  Counted c;
  c.id = broker.Spawn(policy, main, options);
  close(go[0]);
  close(out[1]);
  c.go = go[1];
  c.out = out[0];
  return c;
}

constexpr uint64_t kFloodWindowNs = 2'000'000'000ull;

// 50 flooders in the benchmark; here two (one by request, one by path call) in tight
// loops of refused opens for 2 s, beside an innocent worker opening an allowed file. The
// flooders are throttled (each gets at most the burst plus the rate for the time it ran,
// once audited), the innocent worker is not and is served many times more.
TEST_F(HardTargetTest, FloodOfRefusalsIsThrottledAndAnInnocentWorkerIsNot) {
  testing::TempDir dir;
  const std::string allowed = dir.WriteFile("allowed", "x");
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  auto window = [](Client& client, auto&& one) {
    char c;
    if (read(0, &c, 1) != 1) return 1;
    const uint64_t t0 = MonotonicNs();
    uint64_t count = 0;
    while (MonotonicNs() - t0 < kFloodWindowNs) {
      if (!one(client)) return 2;
      ++count;
    }
    uint64_t out[2] = {count, MonotonicNs() - t0};
    return write(1, out, sizeof(out)) == sizeof(out) ? 0 : 3;
  };
  // Every other request names a symlink leading out of the rule: refused on a pool
  // thread (the inline open takes no symlink), the others on the serving thread; both
  // count against the throttle.
  const std::string escape = dir.path() + "/escape";
  ASSERT_EQ(symlink("/etc/shadow", escape.c_str()), 0);
  Counted by_request = SpawnCounted(*broker_, policy, [&](Client& client) {
    uint64_t n = 0;
    return window(client, [&n, &escape](Client& c) {
      auto fd = c.Open(n++ % 2 == 0 ? std::string("/etc/shadow") : escape, O_RDONLY);
      return !fd.ok() && absl::IsPermissionDenied(fd.status());
    });
  });
  Counted by_path_call = SpawnCounted(*broker_, policy, [&](Client& client) {
    return window(client, [](Client&) {
      return open("/etc/shadow", O_RDONLY | O_CLOEXEC) < 0 && errno == ENOENT;
    });
  });
  Counted innocent = SpawnCounted(*broker_, policy, [&](Client& client) {
    return window(client, [&allowed](Client& c) {
      int fd = c.OpenRaw(allowed.c_str(), allowed.size(), O_RDONLY, 0);
      if (fd < 0) return false;
      close(fd);
      return true;
    });
  });
  for (const Counted* c : {&by_request, &by_path_call, &innocent}) {
    ASSERT_TRUE(c->id.ok()) << c->id.status();
  }
  for (const Counted* c : {&by_request, &by_path_call, &innocent}) {
    ASSERT_EQ(write(c->go, "g", 1), 1);
  }
  ThrottleWatch watch(*broker_);
  const uint64_t start = MonotonicNs();
  while (MonotonicNs() - start < kFloodWindowNs + 500'000'000ull) {
    watch.Poll();
    usleep(20'000);
  }
  uint64_t got[3][2] = {};
  const Counted* all[3] = {&by_request, &by_path_call, &innocent};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ReadExactly(all[i]->out, got[i], sizeof(got[i])));
  watch.Poll();
  WorkerResult results[3];
  for (int i = 0; i < 3; ++i) {
    results[i] = Await(all[i]->id);
    EXPECT_EQ(results[i].kind, Kind::kExited) << results[i].ToString();
    EXPECT_EQ(results[i].exit_code, 0) << results[i].ToString();
    close(all[i]->go);
    close(all[i]->out);
  }
  for (int i = 0; i < 2; ++i) {
    const double seconds = static_cast<double>(got[i][1]) / 1e9;
    const double bound = kRefusalBurst + kRefusalsPerSecond * seconds + 2;
    EXPECT_LE(static_cast<double>(got[i][0]), bound)
        << (i == 0 ? "by request" : "by path call") << ": " << got[i][0]
        << " refusals in " << seconds << " s: not throttled";
    // Two flooders together empty the broker-wide bucket: each gets at least the burst
    // under pressure.
    EXPECT_GE(got[i][0], static_cast<uint64_t>(kRefusalBurstUnderPressure))
        << "the burst was not served";
    EXPECT_EQ(watch.Episodes(*all[i]->id), 1) << "one throttle episode, audited once";
  }
  // The broker counted the path-call refusals the worker counted.
  EXPECT_EQ(results[1].refusals.size(), std::min<uint64_t>(got[1][0], 1000));
  // The innocent worker: never throttled, served many times more than both flooders.
  EXPECT_EQ(watch.Episodes(*innocent.id), 0);
  EXPECT_EQ(results[2].refusals.size(), 0u);
  EXPECT_GT(got[2][0], 4 * (got[0][0] + got[1][0]))
      << "innocent " << got[2][0] << " opens beside " << got[0][0] << " + " << got[1][0]
      << " refusals";
}

// A program's start-up is refused a handful of times (python3 7, sh 7, perl 4: README);
// a burst of 100 refusals is not throttled. The same worker refused 60 more times is
// (so the check above can tell).
TEST_F(HardTargetTest, BurstOfHundredRefusalsIsNotThrottled) {
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  Counted w = SpawnCounted(*broker_, policy, [](Client&) {
    auto refused = [](int n) {
      for (int i = 0; i < n; ++i) {
        if (open("/etc/shadow", O_RDONLY | O_CLOEXEC) >= 0 || errno != ENOENT) return false;
      }
      return true;
    };
    if (!refused(100)) return 1;
    if (write(1, "1", 1) != 1) return 2;
    char c;
    if (read(0, &c, 1) != 1) return 3;
    const uint64_t t0 = MonotonicNs();
    if (!refused(60)) return 4;
    const uint64_t took = MonotonicNs() - t0;
    return write(1, &took, sizeof(took)) == sizeof(took) ? 0 : 5;
  });
  ASSERT_TRUE(w.id.ok()) << w.id.status();
  ThrottleWatch watch(*broker_);
  char c;
  ASSERT_TRUE(ReadExactly(w.out, &c, 1));
  watch.Poll();
  EXPECT_EQ(watch.Episodes(*w.id), 0) << "100 refusals in a burst were throttled";
  ASSERT_EQ(write(w.go, "g", 1), 1);
  uint64_t took = 0;
  EXPECT_TRUE(ReadExactly(w.out, &took, sizeof(took)));
  WorkerResult r = Await(w.id);
  close(w.go);
  close(w.out);
  watch.Poll();
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(r.refusals.size(), 160u);
  EXPECT_EQ(watch.Episodes(*w.id), 1) << "160 refusals in a burst were not throttled";
  // Throttled, it is still served at the rate, not stalled: the 60 took the ~32 past the
  // bucket at 32/s (1 s).
  EXPECT_LT(took, 2'000'000'000ull)
      << "60 refusals took " << took / 1e9 << " s: the throttled worker was served slower "
      << "than 16 a second";
}

// Many workers at once: twelve workers each refused 100 times in a burst (each alone
// would not be throttled, as above) empty the broker-wide bucket (1200 > 256), so some of
// them are throttled; every refusal is still answered.
TEST_F(HardTargetTest, ManyWorkersRefusedAtOnceAreThrottledTogether) {
  constexpr int kWorkers = 12;
  static_assert(kWorkers * 100 > 2 * kGlobalRefusalBurst, "must empty the shared bucket");
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  int go[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdin_fd = go[0];
  std::vector<absl::StatusOr<WorkerId>> ids;
  for (int i = 0; i < kWorkers; ++i) {
    ids.push_back(broker_->Spawn(policy, [](Client&) {
      char c;
      if (read(0, &c, 1) != 1) return 1;
      for (int i = 0; i < 100; ++i) {
        if (open("/etc/shadow", O_RDONLY | O_CLOEXEC) >= 0 || errno != ENOENT) return 2;
      }
      return 0;
    }, options));
    ASSERT_TRUE(ids.back().ok()) << ids.back().status();
  }
  close(go[0]);
  ASSERT_EQ(write(go[1], std::string(kWorkers, 'g').data(), kWorkers), kWorkers);
  close(go[1]);
  ThrottleWatch watch(*broker_);
  int episodes = 0;
  for (auto& id : ids) {
    WorkerResult r = Await(id);
    EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
    EXPECT_EQ(r.exit_code, 0) << r.ToString();
    EXPECT_EQ(r.refusals.size(), 100u);
  }
  watch.Poll();
  for (auto& id : ids) episodes += watch.Episodes(*id);
  EXPECT_GE(episodes, 1) << "1200 refusals at once from 12 workers: none throttled";

  // Once the flood is over the shared bucket refills (256 at 512/s: 0.5 s): a worker
  // refused 100 times alone gets its whole burst again.
  usleep(700'000);
  WorkerResult alone = Await(broker_->Spawn(policy, [](Client&) {
    for (int i = 0; i < 100; ++i) {
      if (open("/etc/shadow", O_RDONLY | O_CLOEXEC) >= 0 || errno != ENOENT) return 2;
    }
    return 0;
  }));
  EXPECT_EQ(alone.kind, Kind::kExited) << alone.ToString();
  EXPECT_EQ(alone.exit_code, 0) << alone.ToString();
  EXPECT_EQ(alone.refusals.size(), 100u);
  watch.Poll();
  int all_episodes = 0;
  for (const AuditEntry& e : broker_->audit().Entries()) {
    if (e.request == "throttle") ++all_episodes;
  }
  EXPECT_EQ(all_episodes, episodes)
      << "100 refusals of a lone worker after the flood were throttled: the shared bucket "
         "did not refill";
}

// An episode ends when the worker has calmed down (its bucket is full again, 128 at
// 32/s: 4 s): a second flood is throttled and audited again. Each flood is 160 refusals
// (as above: 32 past the burst, so a slow machine still empties the bucket).
TEST_F(HardTargetTest, ThrottleEpisodeEndsWhenTheWorkerCalmsDown) {
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  auto refused = [](int n) {
    for (int i = 0; i < n; ++i) {
      if (open("/etc/shadow", O_RDONLY | O_CLOEXEC) >= 0 || errno != ENOENT) return false;
    }
    return true;
  };
  Counted w = SpawnCounted(*broker_, policy, [&refused](Client&) {
    if (!refused(160)) return 1;
    if (write(1, "1", 1) != 1) return 2;
    usleep(4'400'000);
    return refused(160) ? 0 : 3;
  });
  ASSERT_TRUE(w.id.ok()) << w.id.status();
  ThrottleWatch watch(*broker_);
  char c;
  ASSERT_TRUE(ReadExactly(w.out, &c, 1));
  watch.Poll();
  EXPECT_EQ(watch.Episodes(*w.id), 1) << "160 refusals in a burst were not throttled";
  WorkerResult r = Await(w.id);
  close(w.go);
  close(w.out);
  watch.Poll();
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(r.refusals.size(), 320u);
  EXPECT_EQ(watch.Episodes(*w.id), 2) << "the second flood, after 4.4 s of calm, was not "
                                         "throttled and audited as a new episode";
}

// The bucket holds at most the burst: a worker refused once and then idle for 1.5 s
// (127 + 48 tokens without the cap) is throttled by 160 refusals in a burst.
TEST_F(HardTargetTest, IdleTimeDoesNotBuyMoreThanTheBurst) {
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  ThrottleWatch watch(*broker_);
  absl::StatusOr<WorkerId> id = broker_->Spawn(policy, [](Client&) {
    auto refused = [](int n) {
      for (int i = 0; i < n; ++i) {
        if (open("/etc/shadow", O_RDONLY | O_CLOEXEC) >= 0 || errno != ENOENT) return false;
      }
      return true;
    };
    if (!refused(1)) return 1;
    usleep(1'500'000);
    return refused(160) ? 0 : 2;
  });
  ASSERT_TRUE(id.ok()) << id.status();
  WorkerResult r = Await(id);
  watch.Poll();
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(r.refusals.size(), 161u);
  EXPECT_EQ(watch.Episodes(*id), 1) << "160 refusals after 1.5 s idle were not throttled: "
                                       "the bucket filled past its burst";
}

// Only the broker's refusals count: an allowed directory's missing files (ENOENT from the
// file system, by request and by path call) are answers, not refusals.
TEST_F(HardTargetTest, MissingFilesUnderARuleAreNotRefusals) {
  testing::TempDir dir;
  const std::string missing = dir.path() + "/missing";
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  ThrottleWatch watch(*broker_);
  absl::StatusOr<WorkerId> id = broker_->Spawn(policy, [&missing](Client& client) {
    for (int i = 0; i < 200; ++i) {
      if (client.OpenRaw(missing.data(), missing.size(), O_RDONLY, 0) != -ENOENT) return 1;
      if (open(missing.c_str(), O_RDONLY | O_CLOEXEC) >= 0 || errno != ENOENT) return 2;
    }
    return 0;
  });
  ASSERT_TRUE(id.ok()) << id.status();
  WorkerResult r = Await(id);
  watch.Poll();
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(r.refusals.size(), 0u);
  EXPECT_EQ(watch.Episodes(*id), 0) << "400 answers ENOENT were counted as refusals";
}

// Learning mode (penalty log) is not throttled: its refusals are what it is there to
// record.
TEST_F(HardTargetTest, LearningModeIsNotThrottled) {
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  policy.penalty = Penalty::kLog;
  ThrottleWatch watch(*broker_);
  absl::StatusOr<WorkerId> id = broker_->Spawn(policy, [](Client& client) {
    for (int i = 0; i < 200; ++i) {
      auto fd = client.Open("/etc/shadow", O_RDONLY);
      if (fd.ok() || !absl::IsPermissionDenied(fd.status())) return 1;
    }
    return 0;
  });
  ASSERT_TRUE(id.ok()) << id.status();
  WorkerResult r = Await(id);
  watch.Poll();
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  EXPECT_EQ(watch.Episodes(*id), 0) << "200 refusals in learning mode were throttled";
}

// ---- BrokerOptions::listener_in_place (README "Start-up, round 8") ----

// The broker's cap (broker_internal.h, kMaxInPlaceListeners).
constexpr int kMaxInPlaceListeners = 4;

// A broker whose workers' listeners are each served by a pool thread of their own.
class InPlaceListenerTest : public HardTargetTest {
 protected:
  void SetUp() override {
    BrokerOptions options;
    options.listener_in_place = true;
    auto broker = Broker::Create(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
  }

  // Waits up to 5 s for the broker's count of in-place listeners to be `want`.
  int AwaitInPlace(int want) {
    const uint64_t start = MonotonicNs();
    int n = broker_->InPlaceListenersForTesting();
    while (n != want && MonotonicNs() - start < 5'000'000'000ull) {
      usleep(2000);
      n = broker_->InPlaceListenersForTesting();
    }
    return n;
  }
};

// Latencies (ns) of `n` open()s of `path` (path calls), sorted; empty on a failure.
std::vector<uint64_t> TimePathCallOpens(const std::string& path, int n) {
  std::vector<uint64_t> out;
  for (int i = 0; i < n; ++i) {
    uint64_t t0 = MonotonicNs();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    uint64_t t = MonotonicNs() - t0;
    if (fd < 0) return {};
    close(fd);
    out.push_back(t);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// StalledCallDoesNotStallAnotherWorkerAndKillIsPrompt with path calls served in place: the
// busy worker's O_TRUNC open()s wait behind its other thread's 128 MiB pwrites on its own
// listener's thread, and the innocent worker's open()s, on theirs, keep their latency
// (worst under max(300 ms, 100 x quiet p50)). Both are served in place.
TEST_F(InPlaceListenerTest, AStalledPathCallHoldsOnlyItsOwnWorker) {
  testing::TempDir dir;
  std::string small = dir.WriteFile("ro/small", "x");
  std::string big = dir.WriteFile("rw/big", "");
  constexpr int kOpens = 200;
  Policy innocent_policy;
  innocent_policy.promises.insert(Promise::kRpath);
  innocent_policy.paths.push_back(PathRule{dir.path() + "/ro", /*read=*/true});
  Counted innocent = SpawnCounted(*broker_, innocent_policy, [&](Client&) {
    std::vector<uint64_t> quiet = TimePathCallOpens(small, kOpens);
    if (quiet.empty()) return 1;
    uint64_t q[2] = {quiet[kOpens / 2], quiet.back()};
    if (write(1, q, sizeof(q)) != sizeof(q)) return 2;
    char go;
    if (read(0, &go, 1) != 1) return 3;
    std::vector<uint64_t> loaded = TimePathCallOpens(small, kOpens);
    if (loaded.empty()) return 4;
    uint64_t l[2] = {loaded[kOpens / 2], loaded.back()};
    return write(1, l, sizeof(l)) == sizeof(l) ? 0 : 5;
  });
  ASSERT_TRUE(innocent.id.ok()) << innocent.id.status();
  uint64_t quiet[2] = {0, 0};
  ASSERT_TRUE(ReadExactly(innocent.out, quiet, sizeof(quiet)));

  Policy busy_policy;
  busy_policy.promises.insert(Promise::kThread);
  busy_policy.promises.insert(Promise::kWpath);
  PathRule write_rule;
  write_rule.path = dir.path() + "/rw";
  write_rule.write = true;
  busy_policy.paths.push_back(write_rule);
  Counted busy = SpawnCounted(*broker_, busy_policy, [&](Client&) {
    int out = open(big.c_str(), O_WRONLY | O_CLOEXEC);
    if (out < 0) return 1;
    constexpr size_t kChunk = size_t{128} << 20;
    void* zeros = mmap(nullptr, kChunk, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
    if (zeros == MAP_FAILED) return 2;
    std::thread writer([&] {
      for (;;) {
        if (pwrite(out, zeros, kChunk, 0) < 0) _exit(3);
      }
    });
    writer.detach();
    int first = open(big.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (first < 0) return 4;
    close(first);
    if (write(1, "b", 1) != 1) return 5;
    for (;;) {
      int t = open(big.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (t < 0) return 6;
      close(t);
    }
  });
  ASSERT_TRUE(busy.id.ok()) << busy.id.status();
  char started;
  if (!ReadExactly(busy.out, &started, 1)) {
    broker_->Kill(*busy.id);
    broker_->Kill(*innocent.id);
    FAIL() << "the busy worker did not start: " << Await(busy.id).ToString();
  }
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(broker_->InPlaceListenersForTesting(), 2);

  ASSERT_EQ(write(innocent.go, "g", 1), 1);
  uint64_t loaded[2] = {0, 0};
  const bool got = ReadExactly(innocent.out, loaded, sizeof(loaded));
  broker_->Kill(*busy.id);
  WorkerResult busy_result = Await(busy.id, absl::Seconds(10));
  WorkerResult innocent_result = Await(innocent.id);
  ASSERT_TRUE(got) << "the innocent worker did not report its loaded latencies";
  EXPECT_EQ(innocent_result.kind, Kind::kExited) << innocent_result.ToString();
  EXPECT_EQ(innocent_result.exit_code, 0) << innocent_result.ToString();
  EXPECT_EQ(busy_result.kind, Kind::kSignaled) << busy_result.ToString();
  const uint64_t bound = std::max<uint64_t>(300'000'000, 100 * quiet[0]);
  printf("innocent open()s in place: quiet p50 %lu us, max %lu us; beside a stalled worker "
         "p50 %lu us, max %lu us\n",
         quiet[0] / 1000, quiet[1] / 1000, loaded[0] / 1000, loaded[1] / 1000);
  EXPECT_LT(loaded[1], bound) << "quiet p50 " << quiet[0] / 1000 << " us; with a stalled "
                              << "worker p50 " << loaded[0] / 1000 << " us, max "
                              << loaded[1] / 1000 << " us";
  for (const Counted* c : {&busy, &innocent}) {
    close(c->go);
    close(c->out);
  }
}

// At most kMaxInPlaceListeners workers hold a pool thread at once; the others are served
// by the loop (their calls are answered all the same). A worker's thread is given back
// when it ends, so the next worker is served in place again.
TEST_F(InPlaceListenerTest, AtMostFourWorkersAreServedInPlaceAndTheirThreadsComeBack) {
  testing::TempDir dir;
  const std::string small = dir.WriteFile("small", "x");
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  auto main = [&](Client&) {
    char c;
    if (read(0, &c, 1) != 1) return 1;
    return access(small.c_str(), R_OK) == 0 ? 0 : 2;
  };
  std::vector<Counted> workers;
  for (int i = 0; i < 6; ++i) {
    workers.push_back(SpawnCounted(*broker_, policy, main));
    ASSERT_TRUE(workers.back().id.ok()) << workers.back().id.status();
  }
  EXPECT_EQ(AwaitInPlace(kMaxInPlaceListeners), kMaxInPlaceListeners);
  absl::SleepFor(absl::Milliseconds(200));  // every hello is in by now
  EXPECT_EQ(broker_->InPlaceListenersForTesting(), kMaxInPlaceListeners);
  for (Counted& c : workers) ASSERT_EQ(write(c.go, "g", 1), 1);
  for (Counted& c : workers) {
    WorkerResult r = Await(c.id);
    EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
    EXPECT_EQ(r.exit_code, 0) << r.ToString();
    close(c.go);
    close(c.out);
  }
  EXPECT_EQ(AwaitInPlace(0), 0) << "the ended workers' threads were not given back";
  Counted next = SpawnCounted(*broker_, policy, main);
  ASSERT_TRUE(next.id.ok()) << next.id.status();
  EXPECT_EQ(AwaitInPlace(1), 1);
  ASSERT_EQ(write(next.go, "g", 1), 1);
  WorkerResult r = Await(next.id);
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  close(next.go);
  close(next.out);
}

// The refusal throttle holds for a worker served in place: a flood of refused open()s
// for 1.5 s gets at most the burst plus the rate, in one audited episode.
TEST_F(InPlaceListenerTest, AFloodOfRefusalsServedInPlaceIsThrottled) {
  Policy policy;
  policy.promises.insert(Promise::kRpath);
  constexpr uint64_t kWindowNs = 1'500'000'000ull;
  Counted flooder = SpawnCounted(*broker_, policy, [&](Client&) {
    char c;
    if (read(0, &c, 1) != 1) return 1;
    const uint64_t t0 = MonotonicNs();
    uint64_t count = 0;
    while (MonotonicNs() - t0 < kWindowNs) {
      if (open("/etc/shadow", O_RDONLY | O_CLOEXEC) >= 0 || errno != ENOENT) return 2;
      ++count;
    }
    uint64_t out[2] = {count, MonotonicNs() - t0};
    return write(1, out, sizeof(out)) == sizeof(out) ? 0 : 3;
  });
  ASSERT_TRUE(flooder.id.ok()) << flooder.id.status();
  EXPECT_EQ(AwaitInPlace(1), 1);
  ASSERT_EQ(write(flooder.go, "g", 1), 1);
  ThrottleWatch watch(*broker_);
  uint64_t got[2] = {0, 0};
  ASSERT_TRUE(ReadExactly(flooder.out, got, sizeof(got)));
  WorkerResult r = Await(flooder.id);
  EXPECT_EQ(r.exit_code, 0) << r.ToString();
  watch.Poll();
  const double seconds = static_cast<double>(got[1]) / 1e9;
  EXPECT_LE(static_cast<double>(got[0]), kRefusalBurst + kRefusalsPerSecond * seconds + 2)
      << got[0] << " refusals in " << seconds << " s: not throttled";
  EXPECT_GE(got[0], static_cast<uint64_t>(kRefusalBurst)) << "the burst was not served";
  EXPECT_EQ(watch.Episodes(*flooder.id), 1) << "one throttle episode, audited once";
  close(flooder.go);
  close(flooder.out);
}

}  // namespace
}  // namespace vow
