// File descriptors in flight: a broker that is not root (no CAP_SYS_RESOURCE, no
// CAP_SYS_ADMIN) has at most RLIMIT_NOFILE fds in flight (sent, not yet read) on all its
// unix sockets together; past that the kernel refuses every fd it sends (ETOOMANYREFS).
// One worker that asks for fds and never reads them must not take that from the others
// (kMaxUnreadAnswerBytes, broker_internal.h), and an ETOOMANYREFS fails only the answer
// it hit. Each test runs in a child process that takes a uid of its own, drops both
// capabilities from its effective and permitted sets and sets a low RLIMIT_NOFILE; that
// child is the broker (trusted side).
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "broker/broker.h"
#include "capnp/message.h"
#include "gtest/gtest.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"
#include "tests/test_util.h"
#include "worker/client.h"

namespace vow {
namespace {

using Kind = WorkerResult::Kind;

// Low enough that one worker's unread answers pass it (a socket holds ~278 of them before
// its buffer is full), high enough for the broker's own fds.
constexpr rlim_t kNofile = 128;
// Opens a hostile worker asks for and never reads.
constexpr int kFlood = 200;

// Drops CAP_SYS_RESOURCE and CAP_SYS_ADMIN from the effective, permitted and inheritable
// sets of this process; "" or what failed.
std::string DropInflightCapabilities() {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return absl::StrCat("capget: ", strerror(errno));
  // setresuid cleared the effective set: it is the permitted set without the two.
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  for (int cap : {CAP_SYS_RESOURCE, CAP_SYS_ADMIN}) {
    const uint32_t bit = 1u << (cap % 32);
    data[cap / 32].effective &= ~bit;
    data[cap / 32].permitted &= ~bit;
    data[cap / 32].inheritable &= ~bit;
  }
  if (syscall(SYS_capset, &header, data) != 0) return absl::StrCat("capset: ", strerror(errno));
  return "";
}

// Runs `body` in a child without the two capabilities and with RLIMIT_NOFILE kNofile;
// returns what the child reported ("" when all went well).
std::string InLimitedChild(const std::function<std::string()>& body) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return "pipe2";
  pid_t pid = fork();
  if (pid < 0) return "fork";
  if (pid == 0) {
    close(report[0]);
    // The kernel counts fds in flight per user: an identity of its own keeps other root
    // processes' fds (other tests running at the same time) out of this child's count.
    // Its capabilities are kept (PR_SET_KEEPCAPS) but for the two dropped below.
    std::string failure;
    // Random, not the pid: parallel runs in pid namespaces of their own share pids.
    uint32_t bits = 0;
    if (getrandom(&bits, sizeof(bits), 0) != sizeof(bits)) bits = static_cast<uint32_t>(getpid());
    const uid_t uid = 0x40000000u + (bits & 0x0fffffffu);
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setresgid(uid, uid, uid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
      failure = absl::StrCat("a uid of its own: ", strerror(errno));
    }
    if (failure.empty()) failure = DropInflightCapabilities();
    struct rlimit limit = {kNofile, kNofile};
    if (failure.empty() && setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      failure = absl::StrCat("setrlimit: ", strerror(errno));
    }
    if (failure.empty()) failure = body();
    (void)!write(report[1], failure.data(), failure.size());
    _exit(0);
  }
  close(report[1]);
  std::string failure = testing::ReadAll(report[0]);
  close(report[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    failure += absl::StrCat(" (the child ended with status ", status, ")");
  }
  return failure;
}

// Reads one byte from `fd` within 30 s.
bool ReadByte(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  char c;
  return poll(&p, 1, 10000) == 1 && read(fd, &c, 1) == 1;
}

std::string NotStarted(Broker& broker, WorkerId id) {
  broker.Kill(id);
  auto result = broker.Wait(id, absl::Seconds(30));
  return absl::StrCat("the worker did not start: ",
                      result.ok() ? result->ToString() : result.status().ToString());
}

struct Pipes {
  int go[2] = {-1, -1};
  int out[2] = {-1, -1};
};

// A worker that signals "ready" on stdout, waits for a byte on stdin, then opens `path`
// 20 times and checks each fd reads "x". Exit 0: every open succeeded.
WorkerMain Innocent(const std::string& path) {
  return [path](Client& client) {
    if (write(1, "r", 1) != 1) return 10;
    char c;
    if (read(0, &c, 1) != 1) return 11;
    for (int i = 0; i < 20; ++i) {
      int fd = client.OpenRaw(path.data(), path.size(), O_RDONLY, 0);
      if (fd < 0) return 100 + (-fd % 100);  // 100 + errno
      char b = 0;
      const bool read_ok = pread(fd, &b, 1, 0) == 1 && b == 'x';
      close(fd);
      if (!read_ok) return 12;
    }
    return 0;
  };
}

// A worker policy for InLimitedChild's broker: read beneath `dir`, fds below the hard
// limit (the child has no CAP_SYS_RESOURCE), and the child's own uid (the drop to 65534 is
// for a root broker); the other layers are unchanged.
Policy LimitedChildPolicy(const testing::TempDir& dir) {
  Policy policy;
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  policy.limits.max_open_fds = 64;
  policy.identity.kind = Identity::Kind::kKeep;
  return policy;
}

// One worker asks for kFlood opens of `path` (an allowed file of `dir`) and reads
// none of the answers; an innocent worker's opens afterwards still succeed. Without the
// bound the hostile worker's kFlood fds stay in flight (> RLIMIT_NOFILE) and the innocent
// worker's open fails (ETOOMANYREFS). "" or what went wrong.
// `from_server`: the hostile worker is made by a fork server (WorkerPool's way) instead of
// Spawn: its channel must carry the same bound.
std::string FloodWithoutReading(const testing::TempDir& dir, const std::string& path,
                                bool from_server = false) {
  const std::string file = dir.path() + "/allowed";
  return InLimitedChild([&]() -> std::string {
    auto broker = Broker::Create();
    if (!broker.ok()) return absl::StrCat("Broker::Create: ", broker.status().ToString());
    const Policy policy = LimitedChildPolicy(dir);
    Pipes innocent_pipes;
    if (pipe2(innocent_pipes.go, O_CLOEXEC) != 0 || pipe2(innocent_pipes.out, O_CLOEXEC) != 0) {
      return "pipe2";
    }
    SpawnOptions options;
    options.stdin_fd = innocent_pipes.go[0];
    options.stdout_fd = innocent_pipes.out[1];
    options.stderr_fd = 2;
    // Spawned (and past its hello, which carries an fd) before the flood.
    auto innocent = (*broker)->Spawn(policy, Innocent(file), options);
    if (!innocent.ok()) return absl::StrCat("spawn innocent: ", innocent.status().ToString());
    if (!ReadByte(innocent_pipes.out[0])) return NotStarted(**broker, *innocent);

    int flooded[2];
    if (pipe2(flooded, O_CLOEXEC) != 0) return "pipe2";
    SpawnOptions hostile_options;
    hostile_options.stdout_fd = flooded[1];
    WorkerMain flood = [&path](Client& client) {
      MessageArena arena;
      Channel channel{UniqueFd(client.channel_fd())};
      int sent = 0;
      for (int i = 0; i < kFlood; ++i) {
        arena.Reset();
        capnp::MallocMessageBuilder builder(arena.segment());
        auto request = builder.initRoot<wire::Request>();
        request.setId(100 + i);
        auto open = request.initOpen();
        open.setPath(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(path.data()),
                                         path.size()));
        open.setFlags(O_RDONLY);
        if (channel.Send(builder) != 0) break;
        arena.MarkUsed(builder);
        ++sent;
      }
      (void)channel.release();
      (void)!write(1, "f", 1);
      pause();  // never reads: its answers (and their fds) stay in flight
      return sent;
    };
    std::unique_ptr<ForkServer> server;
    absl::StatusOr<WorkerId> hostile = absl::UnknownError("not spawned");
    if (from_server) {
      auto prepared = (*broker)->Prepare(policy);
      if (!prepared.ok()) return absl::StrCat("Prepare: ", prepared.status().ToString());
      auto started = (*broker)->StartForkServer(*prepared, flood, hostile_options);
      if (!started.ok()) return absl::StrCat("StartForkServer: ", started.status().ToString());
      server = *std::move(started);
      hostile = (*broker)->SpawnFrom(*server, hostile_options);
    } else {
      hostile = (*broker)->Spawn(policy, flood, hostile_options);
    }
    close(flooded[1]);
    if (!hostile.ok()) return absl::StrCat("spawn hostile: ", hostile.status().ToString());
    // "f" once it has sent them all, or end of file when it was ended before.
    (void)ReadByte(flooded[0]);
    close(flooded[0]);
    // Ended as soon as it holds too many unread answers; without the bound it lives on,
    // with every answer sent (the broker answers these opens in a few ms).
    auto bad = (*broker)->Wait(*hostile, absl::Seconds(2));
    std::string report;
    if (!bad.ok() || bad->kind != Kind::kLimitExceeded ||
        !absl::StrContains(bad->reason, "does not read its answers")) {
      report += absl::StrCat("the hostile worker was not ended for its unread answers: ",
                             bad.ok() ? bad->ToString() : bad.status().ToString(), "; ");
    }

    if (write(innocent_pipes.go[1], "g", 1) != 1) return "write";
    auto good = (*broker)->Wait(*innocent, absl::Seconds(30));
    if (!good.ok() || good->kind != Kind::kExited || good->exit_code != 0) {
      report += absl::StrCat("the innocent worker's opens failed: ",
                             good.ok() ? good->ToString() : good.status().ToString(),
                             " (exit 100 + errno: ETOOMANYREFS is ", ETOOMANYREFS, ", ENFILE ",
                             ENFILE, ")");
    }
    (*broker)->Kill(*hostile);
    (void)(*broker)->Wait(*hostile, absl::Seconds(30));
    return report;
  });
}

// Answered on the serving thread (a regular file in the dentry cache: the inline open).
TEST(UnreadAnswersTest, AWorkerThatDoesNotReadItsFdsIsEndedAndOthersGetTheirs) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("allowed", "x");
  EXPECT_EQ(FloodWithoutReading(dir, file), "");
}

// Answered on a pool thread (a symlink inside the rule: the inline open takes none).
// The same worker made by a fork server (as WorkerPool's are): the bound is set on every
// worker's channel, whichever way it was made (found by review: the server's workers had
// the kernel's default send buffer, ~278 unread fds).
TEST(UnreadAnswersTest, AForkServerWorkerThatDoesNotReadItsFdsIsEndedToo) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("allowed", "x");
  EXPECT_EQ(FloodWithoutReading(dir, file, /*from_server=*/true), "");
}

TEST(UnreadAnswersTest, AWorkerThatDoesNotReadItsFdsIsEndedOnThePoolPathToo) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("allowed", "x");
  const std::string link = dir.path() + "/link";
  ASSERT_EQ(symlink("allowed", link.c_str()), 0) << strerror(errno);
  EXPECT_EQ(FloodWithoutReading(dir, link), "");
}

// With more fds in flight than RLIMIT_NOFILE (this test process puts them there, on a
// socket pair of its own), the kernel refuses the fd of a worker's open of `file`: that
// worker gets ENFILE and the broker goes on serving it; once the fds are read, its opens
// succeed again. The audit log says what the worker got: a `deny` line naming
// ETOOMANYREFS and ENFILE; on the serving thread (`on_pool` false) the only line of that
// open, on a pool thread after the `allow` decision. "" or what went wrong.
std::string TooManyFdsInFlight(const testing::TempDir& dir, const std::string& file,
                               bool on_pool) {
  return InLimitedChild([&]() -> std::string {
    auto broker = Broker::Create();
    if (!broker.ok()) return absl::StrCat("Broker::Create: ", broker.status().ToString());
    const Policy policy = LimitedChildPolicy(dir);
    Pipes pipes;
    if (pipe2(pipes.go, O_CLOEXEC) != 0 || pipe2(pipes.out, O_CLOEXEC) != 0) return "pipe2";
    SpawnOptions options;
    options.stdin_fd = pipes.go[0];
    options.stdout_fd = pipes.out[1];
    auto worker = (*broker)->Spawn(policy, [&file](Client& client) {
      // Answered only once the broker has read the hello, whose fd (the seccomp
      // listener) is in flight until then and counts for this user too.
      if (!client.Now().ok()) return 9;
      if (write(1, "r", 1) != 1) return 10;
      char c;
      if (read(0, &c, 1) != 1) return 11;
      int fd = client.OpenRaw(file.data(), file.size(), O_RDONLY, 0);
      if (fd >= 0) return 12;  // the fd came although none could be in flight
      if (fd != -ENFILE) return 100 + (-fd % 100);
      auto now = client.Now();  // still served
      if (!now.ok()) return 13;
      if (write(1, "e", 1) != 1) return 14;
      if (read(0, &c, 1) != 1) return 15;
      fd = client.OpenRaw(file.data(), file.size(), O_RDONLY, 0);
      if (fd < 0) return 200 + (-fd % 50);
      close(fd);
      return 0;
    }, options);
    if (!worker.ok()) return absl::StrCat("spawn: ", worker.status().ToString());
    if (!ReadByte(pipes.out[0])) return NotStarted(**broker, *worker);

    // Fill the user's fds in flight past RLIMIT_NOFILE.
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
      return "socketpair";
    }
    Channel stuffed{UniqueFd(pair[0])};
    // Not a socket: a socket sent into its own queue would be freed only by the garbage
    // collector of unix sockets, later.
    UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int null_fd = null.get();
    int in_flight = 0;
    char byte = 0;
    int rc = 0;
    while (in_flight <= static_cast<int>(kNofile) + 8) {
      rc = stuffed.SendBytes(&byte, 1, &null_fd, 1);
      if (rc != 0) break;
      ++in_flight;
    }
    if (rc != -ETOOMANYREFS) {
      return absl::StrCat("stuffing: ", in_flight, " fds in flight, then ", strerror(-rc));
    }
    std::string report;
    if (write(pipes.go[1], "g", 1) != 1) return "write";
    if (!ReadByte(pipes.out[0])) report += "the worker did not get ENFILE and go on; ";
    close(pair[1]);
    stuffed = Channel();  // closes pair[0]: its queued fds are no longer in flight
    if (write(pipes.go[1], "g", 1) != 1) return "write";
    auto result = (*broker)->Wait(*worker, absl::Seconds(30));
    if (!result.ok() || result->kind != Kind::kExited || result->exit_code != 0) {
      report += absl::StrCat("the worker: ",
                             result.ok() ? result->ToString() : result.status().ToString());
    }
    // The two opens of `file`, as audited, in order.
    std::string lines;
    for (const AuditEntry& e : (*broker)->audit().Entries()) {
      if (!absl::StartsWith(e.request, absl::StrCat("open path=\"", file, "\""))) continue;
      absl::StrAppend(&lines, e.allowed ? "allow" : absl::StrCat("deny: ", e.reason), "; ");
    }
    const std::string refused = absl::StrCat(
        "deny: allowed by rule, but not sent: the broker has too many file descriptors in "
        "flight to workers (sendmsg: ETOOMANYREFS): ", strerror(ENFILE), " (errno ", ENFILE,
        "); ");
    const std::string expected =
        absl::StrCat(on_pool ? "allow; " : "", refused, "allow; ");
    if (lines != expected) {
      report += absl::StrCat("audit lines of the opens: ", lines, " expected: ", expected);
    }
    return report;
  });
}

// Answered on the serving thread (a regular file: the inline open).
TEST(UnreadAnswersTest, TooManyFdsInFlightFailsThatAnswerOnly) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("allowed", "x");
  EXPECT_EQ(TooManyFdsInFlight(dir, file, /*on_pool=*/false), "");
}

// Answered on a pool thread (a symlink inside the rule: the inline open takes none).
TEST(UnreadAnswersTest, TooManyFdsInFlightFailsThatAnswerOnlyOnThePoolPathToo) {
  testing::TempDir dir;
  dir.WriteFile("allowed", "x");
  const std::string link = dir.path() + "/link";
  if (symlink("allowed", link.c_str()) != 0) FAIL() << strerror(errno);
  EXPECT_EQ(TooManyFdsInFlight(dir, link, /*on_pool=*/true), "");
}

}  // namespace
}  // namespace vow
