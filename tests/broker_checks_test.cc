// One test per decision the broker and the lock-down make. Each test drives the decision
// from outside (a real worker spawned through the public Broker API, a hostile exec'd
// test worker, or raw datagrams from inside a locked worker) and asserts how the worker
// ended *and the reason*, so that removing the check makes the test fail. Audit entries
// are matched to the request that caused them (by worker id and request text), never to
// "the last open". tools/mutate.sh removes these checks one at a time and runs this test.
//
// The test process is the broker; nothing here installs a sandbox on it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/syscall.h"
#include "broker/broker.h"
#include "broker/request.h"
#include "capnp/any.h"
#include "capnp/serialize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"
#include "tests/test_util.h"
#include "worker/client.h"

namespace vow {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Kind = WorkerResult::Kind;

using testing::Runfile;
using testing::ReadFile;

class ChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = Broker::Create();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
  }

  // Spawns, waits (30 s at most) and returns the result; `*id` gets the worker's id.
  WorkerResult Run(const Policy& policy, WorkerMain main, SpawnOptions options = {},
                   WorkerId* id_out = nullptr) {
    auto id = broker_->Spawn(policy, std::move(main), options);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return WorkerResult{};
    if (id_out != nullptr) *id_out = *id;
    auto result = broker_->Wait(*id, absl::Seconds(30));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : WorkerResult{};
  }

  WorkerResult Exec(const Policy& policy, const std::string& act) {
    auto prepared = broker_->Prepare(policy);
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    if (!prepared.ok()) return WorkerResult{};
    std::string worker = Runfile("tests/test_worker");
    EXPECT_EQ(access(worker.c_str(), X_OK), 0) << worker;
    SpawnOptions options;
    options.stderr_fd = 2;
    auto id = broker_->SpawnExec(*prepared, {worker, act}, options);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return WorkerResult{};
    auto result = broker_->Wait(*id, absl::Seconds(30));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : WorkerResult{};
  }

  // The audit entries of worker `id` whose request starts with `prefix`.
  std::vector<AuditEntry> AuditOf(WorkerId id, absl::string_view prefix) {
    std::vector<AuditEntry> out;
    for (const AuditEntry& e : broker_->audit().Entries()) {
      if (e.worker_id == id && absl::StartsWith(e.request, prefix)) out.push_back(e);
    }
    return out;
  }

  std::unique_ptr<Broker> broker_;
};

// Sends `builder` on the worker's raw channel (from inside a locked worker).
void SendRaw(int channel, capnp::MessageBuilder& builder, int fd = -1) {
  Channel c{UniqueFd(channel)};
  (void)c.Send(builder, fd);
  (void)c.release();
}

// After a hostile act: wait for the broker to end us, reading (and dropping) whatever it
// sends meanwhile (the answer to the lock-down's hello may still be queued). A broker that
// lets the act through sends nothing more: after 2 quiet seconds the worker exits 0,
// which the test sees as kExited.
int AwaitEnd(int channel) {
  for (;;) {
    struct pollfd p = {channel, POLLIN, 0};
    if (poll(&p, 1, 2000) <= 0) return 0;
    char buf[256];
    if (read(channel, buf, sizeof(buf)) <= 0) return 0;
  }
}

// ---- Phases (the dispatch table in broker.h). ----

TEST_F(ChecksTest, PhaseHelloAfterHelloEndsWorker) {
  WorkerResult r = Run(Policy{}, [](Client& client) {
    MessageArena arena;
    capnp::MallocMessageBuilder b(arena.segment());
    auto req = b.initRoot<wire::Request>();
    req.setId(3);
    req.initHello().setVersion(wire::PROTOCOL_VERSION);
    SendRaw(client.channel_fd(), b);
    return AwaitEnd(client.channel_fd());
  });
  EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
  EXPECT_EQ(r.reason, "request not allowed after hello");
}

TEST_F(ChecksTest, PhaseGetFilterAfterHelloEndsWorker) {
  WorkerResult r = Run(Policy{}, [](Client& client) {
    MessageArena arena;
    capnp::MallocMessageBuilder b(arena.segment());
    auto req = b.initRoot<wire::Request>();
    req.setId(3);
    req.setGetFilter();
    SendRaw(client.channel_fd(), b);
    return AwaitEnd(client.channel_fd());
  });
  EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
  EXPECT_EQ(r.reason, "request not allowed after hello");
}

// A well-formed request followed by one more (zero) word: Cap'n Proto would read the
// request and ignore the rest, so only the broker's framing check (the segment table
// must account for every byte) refuses it.
TEST_F(ChecksTest, RequestWithTrailingBytesEndsWorker) {
  WorkerResult r = Run(Policy{}, [](Client& client) {
    capnp::MallocMessageBuilder b;
    auto req = b.initRoot<wire::Request>();
    req.setId(3);
    req.initClock();
    kj::Array<capnp::word> flat = capnp::messageToFlatArray(b);
    std::string bytes(reinterpret_cast<const char*>(flat.begin()),
                      flat.size() * sizeof(capnp::word));
    bytes.append(8, '\0');
    (void)!send(client.channel_fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    return AwaitEnd(client.channel_fd());
  });
  EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
  EXPECT_EQ(r.reason, "malformed message framing");
}

// An exec'd program cannot pick its own filter or say its own hello: the broker's child
// did both before execve, so whatever handshake the program attempts is out of phase.
TEST_F(ChecksTest, ExecWorkerHandshakeIsTheBrokersChild) {
  for (const char* act : {"raw_hello_first", "raw_filter_twice", "raw_hello_version",
                          "raw_hello_fake_listener"}) {
    SCOPED_TRACE(act);
    WorkerResult r = Exec(Policy{}, act);
    EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
    EXPECT_EQ(r.reason, "request not allowed after hello");
  }
}

TEST_F(ChecksTest, RequestCarryingAnFdEndsWorker) {
  WorkerResult r = Run(Policy{}, [](Client& client) {
    MessageArena arena;
    capnp::MallocMessageBuilder b(arena.segment());
    auto req = b.initRoot<wire::Request>();
    req.setId(3);
    req.initClock();
    SendRaw(client.channel_fd(), b, /*fd=*/0);
    return AwaitEnd(client.channel_fd());
  });
  EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
  EXPECT_EQ(r.reason, "a request carried file descriptors");
}

// ---- Hello: version and listener (CheckHello, the broker's hello decision). ----

DecodedRequest HelloRequest(uint32_t version, bool listener_attached) {
  DecodedRequest r;
  r.kind = DecodedRequest::Kind::kHello;
  r.version = version;
  r.listener_attached = listener_attached;
  return r;
}

TEST(CheckHelloTest, AnotherProtocolVersionIsRefused) {
  absl::Status s = CheckHello(HelloRequest(wire::PROTOCOL_VERSION + 1, false), 0, -1, false);
  EXPECT_EQ(s.message(), absl::StrCat("protocol version ", wire::PROTOCOL_VERSION + 1,
                                      ", expected ", wire::PROTOCOL_VERSION));
}

TEST(CheckHelloTest, ListenerFlagAndAttachmentMustMatch) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  const std::string want = "hello: the seccomp listener does not match the policy";
  EXPECT_EQ(CheckHello(HelloRequest(wire::PROTOCOL_VERSION, false), 0, -1, true).message(), want);
  EXPECT_EQ(CheckHello(HelloRequest(wire::PROTOCOL_VERSION, true), 0, -1, true).message(), want);
  EXPECT_EQ(CheckHello(HelloRequest(wire::PROTOCOL_VERSION, false), 1, p[0], false).message(),
            want);
  EXPECT_EQ(CheckHello(HelloRequest(wire::PROTOCOL_VERSION, true), 0, -1, false).message(), want);
  // A pipe flagged as the listener.
  EXPECT_EQ(CheckHello(HelloRequest(wire::PROTOCOL_VERSION, true), 1, p[0], true).message(),
            "hello: the attached fd is not a seccomp listener");
  // No listener expected, none given: fine.
  EXPECT_TRUE(CheckHello(HelloRequest(wire::PROTOCOL_VERSION, false), 0, -1, false).ok());
  close(p[0]);
  close(p[1]);
}

TEST_F(ChecksTest, RealExecWorkerPassesTheHandshake) {
  // The positive side of the hello checks: the real lock-down's hello is accepted.
  for (Penalty p : {Penalty::kKill, Penalty::kTrap}) {
    Policy policy;
    policy.penalty = p;
    WorkerResult r = Exec(policy, "ok");
    EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
    EXPECT_EQ(r.exit_code, 0);
  }
}

// ---- Violation reports: only from a worker in penalty trap. ----

void SendViolationReport(int channel) {
  MessageArena arena;
  capnp::MallocMessageBuilder b(arena.segment());
  auto req = b.initRoot<wire::Request>();
  req.setId(0);
  auto v = req.initViolation();
  v.setSyscall(41);  // socket on x86-64
  v.setArch(0xc000003e);
  v.initArgs(6);
  SendRaw(channel, b);
}

TEST_F(ChecksTest, ViolationReportOutsidePenaltyTrapEndsWorker) {
  for (Penalty p : {Penalty::kKill, Penalty::kErrno, Penalty::kLog}) {
    Policy policy;
    policy.penalty = p;
    WorkerResult r = Run(policy, [](Client& client) {
      SendViolationReport(client.channel_fd());
      return AwaitEnd(client.channel_fd());
    });
    EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
    EXPECT_EQ(r.reason, "a violation report outside penalty trap");
    EXPECT_TRUE(r.violations.empty()) << "a forged report must not be recorded";
  }
}

TEST_F(ChecksTest, ViolationReportInPenaltyTrapIsRecorded) {
  Policy policy;
  policy.penalty = Penalty::kTrap;
  WorkerResult r = Run(policy, [](Client& client) {
    SendViolationReport(client.channel_fd());
    // A clock round trip: the report (sent before) has been read once this returns.
    return client.Now().ok() ? 0 : 1;
  });
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_FALSE(r.violations[0].from_kernel);
}

// ---- Rate limit: a token bucket of requests_per_second, refilled over time. ----

TEST_F(ChecksTest, RateLimitOverTheLimitEndsWorker) {
  Policy policy;
  policy.limits.requests_per_second = 10;
  WorkerResult r = Run(policy, [](Client& client) {
    for (int i = 0; i < 100; ++i) {
      if (!client.Now().ok()) break;
    }
    return AwaitEnd(client.channel_fd());
  });
  EXPECT_EQ(r.kind, Kind::kLimitExceeded) << r.ToString();
  EXPECT_EQ(r.reason, "more than 10 requests per second");
}

TEST_F(ChecksTest, RateLimitUnderTheLimitWithRefillIsServed) {
  // A full bucket (exactly the limit) at once, a pause that refills it, the limit again:
  // a limiter that never refills, or refuses the last token, ends this worker.
  Policy policy;
  policy.limits.requests_per_second = 20;
  WorkerResult r = Run(policy, [](Client& client) {
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 20; ++i) {
        if (!client.Now().ok()) return 10 + round;
      }
      struct timespec ts = {1, 200 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    return 0;
  });
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0);
}

// ---- Violations kept: at most 1000, the first ones. ----

TEST_F(ChecksTest, ViolationsKeptUpToTheCap) {
  Policy policy;
  // Penalty errno: the kernel reports each one (worker reports under trap are also
  // rate-limited, see below).
  policy.penalty = Penalty::kErrno;
  for (int calls : {7, 1100}) {
    SCOPED_TRACE(calls);
    WorkerResult r = Run(policy, [calls](Client& client) {
      for (int i = 0; i < calls; ++i) {
        if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EPERM) return 1;
      }
      return client.Now().ok() ? 0 : 2;
    });
    EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.violations.size(), calls > 1000 ? 1000u : static_cast<size_t>(calls));
    for (const Violation& v : r.violations) ASSERT_EQ(v.syscall, "socket");
  }
}

// ---- Message size: the policy's `limit message_bytes`, and the hard cap. ----

TEST_F(ChecksTest, MessageOverThePolicyLimitEndsWorker) {
  Policy policy;
  policy.limits.max_message_bytes = 1024;
  WorkerResult r = Run(policy, [](Client& client) {
    std::string path = "/" + std::string(1500, 'a');
    (void)client.Open(path, O_RDONLY);
    return AwaitEnd(client.channel_fd());
  });
  EXPECT_EQ(r.kind, Kind::kLimitExceeded) << r.ToString();
  EXPECT_EQ(r.reason, "message larger than 1024 bytes");
}

TEST_F(ChecksTest, MessageUnderThePolicyLimitIsServed) {
  Policy policy;
  policy.limits.max_message_bytes = 1024;
  WorkerResult r = Run(policy, [](Client& client) {
    std::string path = "/" + std::string(800, 'a');
    auto fd = client.Open(path, O_RDONLY);  // answered (no rule), not fatal
    return !fd.ok() && ErrnoOf(fd.status()) == EACCES ? 0 : 1;
  });
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 0);
}

TEST_F(ChecksTest, MessageOverTheHardCapEndsWorker) {
  WorkerResult r = Run(Policy{}, [](Client& client) {
    static char big[kMaxMessageBytes + 8];
    Channel c{UniqueFd(client.channel_fd())};
    c.SendBytes(big, sizeof(big));
    (void)c.release();
    return AwaitEnd(client.channel_fd());
  });
  EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
  EXPECT_EQ(r.reason, absl::StrCat("message larger than ", kMaxMessageBytes, " bytes"));
}

// ---- Cap'n Proto reader limits. ----

// A Request{id, violation{args: List(Void) of `count` elements}}: no bytes behind the
// list, so only the traversal limit's amplification guard stops a reader from walking it.
std::vector<capnp::word> AmplifiedListMessage(uint32_t count) {
  std::vector<uint64_t> w;
  auto struct_ptr = [](uint16_t data, uint16_t ptrs) {
    return (static_cast<uint64_t>(data) << 32) | (static_cast<uint64_t>(ptrs) << 48);
  };
  w.push_back(0);                  // segment table, filled below
  w.push_back(struct_ptr(2, 1));   // root -> Request (2 data words, 1 pointer)
  w.push_back(7);                  // id
  w.push_back(4);                  // union discriminant: violation (the 5th member)
  w.push_back(struct_ptr(1, 1));   // -> Violation (1 data word, 1 pointer)
  w.push_back(41);                 // syscall, arch
  w.push_back(1ull | (static_cast<uint64_t>(count) << 35));  // args: list of Void
  w[0] = static_cast<uint64_t>(w.size() - 1) << 32;
  std::vector<capnp::word> out(w.size());
  memcpy(static_cast<void*>(out.data()), w.data(), w.size() * 8);
  return out;
}

TEST_F(ChecksTest, TraversalLimitRefusesAnAmplifiedMessage) {
  WorkerResult r = Run(Policy{}, [](Client& client) {
    auto msg = AmplifiedListMessage(1u << 24);
    Channel c{UniqueFd(client.channel_fd())};
    c.SendBytes(msg.data(), msg.size() * sizeof(capnp::word));
    (void)c.release();
    return AwaitEnd(client.channel_fd());
  });
  EXPECT_EQ(r.kind, Kind::kProtocolError) << r.ToString();
  EXPECT_THAT(r.reason, StartsWith("undecodable message: "));
  EXPECT_THAT(r.reason, HasSubstr("Exceeded message traversal limit"));
}

// The broker's decoder follows at most two pointers (Request -> Open -> path), so no
// message can reach the nesting limit through it; the limit guards any deeper reader of
// the same options. Checked on ReaderLimits() itself with a generic walk.
TEST(ReaderLimitsTest, NestingLimitRefusesADeepChain) {
  auto chain = [](int depth) {
    std::vector<uint64_t> w;
    w.push_back(0);
    for (int i = 0; i <= depth; ++i) w.push_back(1ull << 48);  // struct: 0 data, 1 pointer
    w.push_back(0);
    w[0] = static_cast<uint64_t>(w.size() - 1) << 32;
    std::vector<capnp::word> out(w.size());
    memcpy(static_cast<void*>(out.data()), w.data(), w.size() * 8);
    return out;
  };
  auto walk = [](const std::vector<capnp::word>& words) -> std::string {
    std::string error;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
      capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()),
                                           ReaderLimits());
      (void)reader.getRoot<capnp::AnyPointer>().targetSize();
    })) {
      error = e->getDescription().cStr();
    }
    return error;
  };
  EXPECT_EQ(walk(chain(8)), "");
  EXPECT_THAT(walk(chain(40)), HasSubstr("nested"));
}

// ---- Filesystem rules, each through the broker, each with its own audit entry. ----

class FsChecksTest : public ChecksTest {
 protected:
  void SetUp() override {
    ChecksTest::SetUp();
    ro_ = dir_.MakeDir("ro");        // r
    wo_ = dir_.MakeDir("wo");        // w
    rw_ = dir_.MakeDir("rw");        // rwc
    x_ = dir_.MakeDir("x");          // x
    dir_.WriteFile("ro/file", "read only");
    dir_.WriteFile("wo/file", "write only");
    dir_.WriteFile("x/file", "exec only");
    policy_.paths.push_back(PathRule{ro_, /*read=*/true});
    policy_.paths.push_back(PathRule{wo_, false, /*write=*/true});
    policy_.paths.push_back(PathRule{rw_, true, true, false, /*create=*/true});
    policy_.paths.push_back(PathRule{x_, false, false, /*exec=*/true});
  }

  struct Outcome {
    int err = -1;  // 0: an fd came back
    AuditEntry audit;
    int audit_count = 0;
  };

  // One open in its own worker; the audit entry is the one of this worker's open.
  Outcome OpenOnce(const std::string& path, int flags, mode_t mode = 0644) {
    WorkerId id = 0;
    WorkerResult r = Run(policy_, [&](Client& client) {
      int fd = client.OpenRaw(path.data(), path.size(), flags, mode);
      return fd < 0 ? -fd : 0;
    }, {}, &id);
    EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
    Outcome out;
    out.err = r.exit_code;
    auto entries = AuditOf(id, "open ");
    out.audit_count = static_cast<int>(entries.size());
    if (!entries.empty()) out.audit = entries[0];
    return out;
  }

  testing::TempDir dir_;
  std::string ro_, wo_, rw_, x_;
  Policy policy_;
};

TEST_F(FsChecksTest, EachFlagAndPermissionRuleRefusesAndAuditsThatRequest) {
  struct Case {
    const char* name;
    std::string path;
    int flags;
    int expected_errno;
    const char* reason;  // in the audit entry of this very request
  };
  const std::vector<Case> cases = {
      {"O_CREAT needs c", ro_ + "/new", O_RDONLY | O_CREAT, EACCES, "O_CREAT needs 'c'"},
      {"O_CREAT needs c (w rule)", wo_ + "/new", O_WRONLY | O_CREAT, EACCES,
       "O_CREAT needs 'c'"},
      {"O_TRUNC needs w", ro_ + "/file", O_RDONLY | O_TRUNC, EACCES, "O_TRUNC needs 'w'"},
      {"O_APPEND needs w", ro_ + "/file", O_RDONLY | O_APPEND, EACCES, "O_APPEND needs 'w'"},
      {"O_WRONLY needs w", ro_ + "/file", O_WRONLY, EACCES, "writing needs 'w'"},
      {"O_RDWR needs w", ro_ + "/file", O_RDWR, EACCES, "writing needs 'w'"},
      {"O_RDONLY needs r", wo_ + "/file", O_RDONLY, EACCES, "reading needs 'r'"},
      {"O_RDWR needs r", wo_ + "/file", O_RDWR, EACCES, "reading needs 'r'"},
      {"O_PATH needs x", ro_ + "/file", O_PATH | O_CLOEXEC, EACCES, "O_PATH needs 'x'"},
      {"reading an x rule", x_ + "/file", O_RDONLY, EACCES, "reading needs 'r'"},
      {"O_TMPFILE needs c", wo_, O_TMPFILE | O_WRONLY, EACCES, "O_TMPFILE needs 'c'"},
      {"unknown flag", ro_ + "/file", O_RDONLY | 0x40000000, EINVAL,
       "open flags not supported by the broker"},
      {"O_NOATIME", ro_ + "/file", O_RDONLY | O_NOATIME, EINVAL,
       "open flags not supported by the broker"},
      {"access mode 3", ro_ + "/file", 3, EINVAL, "invalid access mode 3"},
      {"O_PATH with O_TRUNC", x_ + "/file", O_PATH | O_TRUNC, EINVAL, "O_PATH combined with"},
      {"O_TMPFILE read-only", rw_, O_TMPFILE | O_RDONLY, EINVAL, "O_TMPFILE needs O_WRONLY"},
      {"relative", "ro/file", O_RDONLY, EINVAL, "the path is not absolute"},
      {"dotdot", ro_ + "/../wo/file", O_RDONLY, EACCES, "'..' component"},
      {"no rule", dir_.path() + "/elsewhere", O_RDONLY, EACCES, "no rule covers the path"},
      {"directory without O_DIRECTORY", ro_, O_RDONLY, EISDIR, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Outcome o = OpenOnce(c.path, c.flags);
    EXPECT_EQ(o.err, c.expected_errno) << strerror(o.err);
    ASSERT_EQ(o.audit_count, 1) << "one audit entry for this open";
    EXPECT_FALSE(o.audit.allowed);
    EXPECT_THAT(o.audit.request, HasSubstr(absl::StrCat("path=\"", c.path, "\"")));
    EXPECT_THAT(o.audit.reason, HasSubstr(c.reason));
  }
  // No side effect of any refused open.
  EXPECT_NE(access((ro_ + "/new").c_str(), F_OK), 0);
  EXPECT_NE(access((wo_ + "/new").c_str(), F_OK), 0);
  EXPECT_EQ(ReadFile(ro_ + "/file"), "read only");
  EXPECT_EQ(ReadFile(wo_ + "/file"), "write only");
}

TEST_F(FsChecksTest, AllowedOpensAreAuditedAsAllowedAndModesMasked) {
  struct Case {
    const char* name;
    std::string path;
    int flags;
  };
  const std::vector<Case> cases = {
      {"read", ro_ + "/file", O_RDONLY},
      {"write", wo_ + "/file", O_WRONLY | O_APPEND},
      {"create", rw_ + "/made", O_RDWR | O_CREAT | O_EXCL},
      {"path", x_ + "/file", O_PATH | O_CLOEXEC},
      {"directory", ro_, O_RDONLY | O_DIRECTORY},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Outcome o = OpenOnce(c.path, c.flags, 06777);
    EXPECT_EQ(o.err, 0) << strerror(o.err);
    ASSERT_EQ(o.audit_count, 1);
    EXPECT_TRUE(o.audit.allowed);
    EXPECT_THAT(o.audit.request, HasSubstr(absl::StrCat("path=\"", c.path, "\"")));
  }
  struct stat st;
  ASSERT_EQ(stat((rw_ + "/made").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07000, 0u) << "setuid/setgid/sticky must be masked";
}

TEST_F(FsChecksTest, RefusedTruncateLeavesTheFileAlone) {
  // r only: O_WRONLY|O_TRUNC and O_RDONLY|O_TRUNC must not empty the file.
  EXPECT_EQ(OpenOnce(ro_ + "/file", O_WRONLY | O_TRUNC).err, EACCES);
  EXPECT_EQ(OpenOnce(ro_ + "/file", O_RDONLY | O_TRUNC).err, EACCES);
  EXPECT_EQ(ReadFile(ro_ + "/file"), "read only");
}

// ---- The broker keeps none of the fds it hands out. ----

class TcpListener {
 public:
  explicit TcpListener(bool v6 = false) {
    fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss = {};
    socklen_t len;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    }
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
    EXPECT_EQ(listen(fd_, 128), 0);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  ~TcpListener() { close(fd_); }
  uint16_t port() const { return port_; }
  int fd() const { return fd_; }
  // Accepts one connection and returns what it sent (up to 64 bytes), or "" on failure.
  std::string AcceptAndRead() {
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return "";
    char buf[64];
    ssize_t n = read(c, buf, sizeof(buf));
    close(c);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  int fd_;
  uint16_t port_ = 0;
};

ConnectRule TcpRule(const std::string& address, int prefix, uint16_t port,
                    ConnectRule::Transport t = ConnectRule::Transport::kTcp) {
  ConnectRule rule;
  rule.transport = t;
  rule.address = address;
  rule.prefix_len = prefix;
  rule.port_min = rule.port_max = port;
  return rule;
}

const std::string kLoopback4("\x7f\x00\x00\x01", 4);
const std::string kLoopback6(std::string(15, '\0') + "\x01");

TEST_F(ChecksTest, BrokerKeepsNoFdOfSuccessfulOpensAndConnects) {
  testing::TempDir dir;
  std::string file = dir.WriteFile("f", "x");
  TcpListener server;
  Policy policy;
  policy.paths.push_back(PathRule{dir.path(), /*read=*/true});
  policy.connects.push_back(TcpRule(kLoopback4, 32, server.port()));
  auto prepared = broker_->Prepare(policy);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  constexpr int kEach = 40;
  // The policy's first forked worker makes its shared root, one fd that the policy keeps
  // for its lifetime (PreparedPolicy::shared_root): counted in `before`.
  auto first = broker_->Spawn(*prepared, [](Client&) { return 0; });
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(broker_->Wait(*first, absl::Seconds(30)).ok());
  std::set<int> before = testing::OpenFds(getpid());
  uint16_t port = server.port();
  auto id = broker_->Spawn(*prepared, [&](Client& client) {
    for (int i = 0; i < kEach; ++i) {
      auto fd = client.Open(file, O_RDONLY);
      if (!fd.ok()) return 1;
      auto sock = client.ConnectTcp("127.0.0.1", port);
      if (!sock.ok()) return 2;
    }
    return 0;
  });
  ASSERT_TRUE(id.ok()) << id.status();
  auto r = broker_->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, Kind::kExited) << r->ToString();
  EXPECT_EQ(r->exit_code, 0);
  // The pool thread that answered the last connect closes its copy of the socket and its
  // dup of the channel after the answer is out: the worker may end, and Wait return,
  // before it does (testing::FdsBeyond waits up to 2 s for those owed closes).
  std::vector<std::string> kept = testing::FdsBeyond(before, absl::Seconds(2));
  EXPECT_TRUE(kept.empty()) << "the broker kept " << kept.size() << " fds after " << kEach
                            << " opens and " << kEach << " connects: "
                            << absl::StrJoin(kept, " ");
}

// ---- Connect rules: tcp, udp, unix, IPv6; each allowed and refused, each audited. ----

class ConnectChecksTest : public ChecksTest {
 protected:
  // One connect in its own worker, which writes `payload` on success. Returns the errno
  // (0: connected) and sets *audit to this worker's one connect entry.
  int ConnectOnce(const Policy& policy, ConnectRule::Transport t, const std::string& address,
                  uint16_t port, AuditEntry* audit) {
    WorkerId id = 0;
    WorkerResult r = Run(policy, [&](Client& client) {
      absl::StatusOr<UniqueFd> fd =
          t == ConnectRule::Transport::kUnix ? client.ConnectUnix(address)
          : t == ConnectRule::Transport::kUdp ? client.ConnectUdp(address, port)
                                              : client.ConnectTcp(address, port);
      if (!fd.ok()) return ErrnoOf(fd.status());
      return write(fd->get(), "vow!", 4) == 4 ? 0 : 200;
    }, {}, &id);
    EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
    auto entries = AuditOf(id, "connect ");
    EXPECT_EQ(entries.size(), 1u);
    if (!entries.empty()) *audit = entries[0];
    return r.exit_code;
  }
};

TEST_F(ConnectChecksTest, Tcp) {
  TcpListener server, other;
  Policy policy;
  policy.connects.push_back(TcpRule(kLoopback4, 32, server.port()));
  AuditEntry a;
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.0.0.1", server.port(), &a), 0);
  EXPECT_TRUE(a.allowed);
  EXPECT_THAT(a.request, HasSubstr(absl::StrCat("connect tcp ")));
  EXPECT_THAT(a.request, HasSubstr(absl::StrCat("port=", server.port())));
  EXPECT_EQ(server.AcceptAndRead(), "vow!");
  // Another port, another address, another transport: refused.
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.0.0.1", other.port(), &a),
            EACCES);
  EXPECT_FALSE(a.allowed);
  EXPECT_THAT(a.request, HasSubstr(absl::StrCat("port=", other.port())));
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.0.0.2", server.port(), &a),
            EACCES);
  EXPECT_FALSE(a.allowed);
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kUdp, "127.0.0.1", server.port(), &a),
            EACCES);
  EXPECT_FALSE(a.allowed);
  EXPECT_THAT(a.request, HasSubstr("connect udp "));
}

TEST_F(ConnectChecksTest, TcpNetworkPrefix) {
  TcpListener server;
  Policy policy;
  // 127.0.0.0/8 covers 127.0.0.1; 127.0.0.0/32 does not.
  policy.connects.push_back(TcpRule(std::string("\x7f\x00\x00\x00", 4), 8, server.port()));
  AuditEntry a;
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.0.0.1", server.port(), &a), 0);
  EXPECT_TRUE(a.allowed);
  EXPECT_EQ(server.AcceptAndRead(), "vow!");
  policy.connects[0].prefix_len = 32;
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.0.0.1", server.port(), &a),
            EACCES);
  EXPECT_FALSE(a.allowed);
  // A prefix that ends inside a byte: 127.0.0.0/9 covers 127.0.0.1 but not 127.128.0.1
  // (the same first byte; the second differs in its top bit only).
  policy.connects[0].prefix_len = 9;
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.0.0.1", server.port(), &a), 0);
  EXPECT_TRUE(a.allowed);
  EXPECT_EQ(server.AcceptAndRead(), "vow!");
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.128.0.1", server.port(), &a),
            EACCES);
  EXPECT_FALSE(a.allowed);
  EXPECT_THAT(a.reason, HasSubstr("no connect rule"));
}

TEST_F(ConnectChecksTest, Udp) {
  int receiver = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(receiver, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(receiver, reinterpret_cast<sockaddr*>(&addr), &len);
  uint16_t port = ntohs(addr.sin_port);
  Policy policy;
  policy.connects.push_back(TcpRule(kLoopback4, 32, port, ConnectRule::Transport::kUdp));
  AuditEntry a;
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kUdp, "127.0.0.1", port, &a), 0);
  EXPECT_TRUE(a.allowed);
  EXPECT_THAT(a.request, HasSubstr("connect udp "));
  char buf[8];
  EXPECT_EQ(recv(receiver, buf, sizeof(buf), MSG_DONTWAIT), 4);
  EXPECT_EQ(std::string(buf, 4), "vow!");
  // A udp rule does not allow tcp to the same place, nor udp to another port.
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.0.0.1", port, &a), EACCES);
  EXPECT_FALSE(a.allowed);
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kUdp, "127.0.0.1", port + 1, &a),
            EACCES);
  EXPECT_FALSE(a.allowed);
  close(receiver);
}

TEST_F(ConnectChecksTest, Unix) {
  // sun_path holds 107 bytes: a short directory, not $TEST_TMPDIR.
  char templ[] = "/tmp/vowsock.XXXXXX";
  ASSERT_NE(mkdtemp(templ), nullptr);
  std::string dir = templ;
  std::string path = dir + "/sock";
  std::string other = dir + "/other";
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(server, 8), 0);
  Policy policy;
  ConnectRule rule;
  rule.transport = ConnectRule::Transport::kUnix;
  rule.unix_path = path;
  policy.connects.push_back(rule);
  AuditEntry a;
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kUnix, path, 0, &a), 0);
  EXPECT_TRUE(a.allowed);
  EXPECT_THAT(a.request, HasSubstr(absl::StrCat("connect unix path=\"", path, "\"")));
  int c = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(c, 0);
  char buf[8];
  EXPECT_EQ(read(c, buf, sizeof(buf)), 4);
  close(c);
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kUnix, other, 0, &a), EACCES);
  EXPECT_FALSE(a.allowed);
  EXPECT_THAT(a.request, HasSubstr(absl::StrCat("connect unix path=\"", other, "\"")));
  // A path that only starts like the rule's is another socket.
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kUnix, path + "x", 0, &a), EACCES);
  close(server);
  unlink(path.c_str());
  rmdir(dir.c_str());
}

TEST_F(ConnectChecksTest, Ipv6) {
  TcpListener server(/*v6=*/true);
  Policy policy;
  policy.connects.push_back(TcpRule(kLoopback6, 128, server.port()));
  AuditEntry a;
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "::1", server.port(), &a), 0);
  EXPECT_TRUE(a.allowed);
  EXPECT_EQ(server.AcceptAndRead(), "vow!");
  // The IPv6 rule allows neither IPv4 loopback nor another IPv6 address.
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "127.0.0.1", server.port(), &a),
            EACCES);
  EXPECT_FALSE(a.allowed);
  EXPECT_EQ(ConnectOnce(policy, ConnectRule::Transport::kTcp, "::2", server.port(), &a), EACCES);
  EXPECT_FALSE(a.allowed);
  // An IPv4-mapped address is IPv4: only an IPv4 rule allows it.
  EXPECT_EQ(
      ConnectOnce(policy, ConnectRule::Transport::kTcp, "::ffff:127.0.0.1", server.port(), &a),
      EACCES);
  EXPECT_FALSE(a.allowed);
}

// ---- Lock-down, seen from outside and from inside the worker. ----

// Spawns a worker under `policy` (limits set here) and checks what the lock-down set, from
// inside the worker and from /proc/PID.
// This process's VmSize in bytes.
uint64_t VmSizeBytes() {
  std::string statm = ReadFile("/proc/self/statm");
  return strtoull(statm.c_str(), nullptr, 10) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// A forked worker's memory limit counts from the address space it starts with: forked
// from a caller that has reserved 512 MiB (PROT_NONE, as thread stacks and malloc arenas
// are), a worker limited to 64 MiB can still allocate 32 MiB, and not 128 MiB. (Under an
// absolute RLIMIT_AS it could allocate nothing: vow_view's renderers died of SIGSEGV in
// their libraries when forked from a grown browser.)
TEST_F(ChecksTest, AForkedWorkersMemoryLimitIsOnTopOfWhatItStartsWith) {
  void* reserved = mmap(nullptr, 512ull << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
                        MAP_NORESERVE, -1, 0);
  ASSERT_NE(reserved, MAP_FAILED);
  Policy policy;
  policy.limits.memory_bytes = 64ull << 20;
  auto id = broker_->Spawn(policy, [](Client&) {
    void* small = mmap(nullptr, 32ull << 20, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (small == MAP_FAILED) return 1;
    memset(small, 1, 32ull << 20);
    void* big = mmap(nullptr, 128ull << 20, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return big == MAP_FAILED ? 0 : 2;
  });
  munmap(reserved, 512ull << 20);
  ASSERT_TRUE(id.ok()) << id.status();
  auto r = broker_->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, Kind::kExited) << r->ToString();
  EXPECT_EQ(r->exit_code, 0) << (r->exit_code == 1 ? "32 MiB could not be mapped"
                                 : r->exit_code == 2 ? "128 MiB could be mapped: no limit"
                                                     : r->ToString());
}

void ExpectLockdownAttributes(Broker& broker, Policy policy) {
  policy.limits.max_open_fds = 37;
  policy.limits.cpu_seconds = 11;
  policy.limits.memory_bytes = 1ull << 30;
  int gate[2], out[2];
  ASSERT_EQ(pipe2(gate, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdin_fd = gate[0];
  options.stdout_fd = out[1];
  auto id = broker.Spawn(policy, [](Client&) {
    struct rlimit nofile, cpu, as, core;
    getrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_CPU, &cpu);
    getrlimit(RLIMIT_AS, &as);
    getrlimit(RLIMIT_CORE, &core);
    int pdeathsig = -1;
    prctl(PR_GET_PDEATHSIG, &pdeathsig, 0, 0, 0);
    char line[256];
    int n = snprintf(line, sizeof(line), "dumpable=%d pdeathsig=%d nnp=%d nofile=%llu cpu=%llu "
                     "as=%llu core=%llu\n",
                     prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), pdeathsig,
                     prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
                     static_cast<unsigned long long>(nofile.rlim_cur),
                     static_cast<unsigned long long>(cpu.rlim_cur),
                     static_cast<unsigned long long>(as.rlim_cur),
                     static_cast<unsigned long long>(core.rlim_cur));
    (void)!write(1, line, static_cast<size_t>(n));
    char c;
    (void)!read(0, &c, 1);  // held here while the test reads /proc
    return 0;
  }, options);
  ASSERT_TRUE(id.ok()) << id.status();
  close(gate[0]);
  close(out[1]);
  char buf[256];
  ssize_t n = read(out[0], buf, sizeof(buf));
  ASSERT_GT(n, 0);
  std::string inside(buf, static_cast<size_t>(n));
  pid_t pid = broker.pid(*id);
  ASSERT_GT(pid, 0);
  std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  std::string limits = ReadFile(absl::StrCat("/proc/", pid, "/limits"));
  close(gate[1]);
  auto r = broker.Wait(*id, absl::Seconds(30));
  close(out[0]);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, Kind::kExited) << r->ToString();

  // RLIMIT_AS: 1 GiB on top of the address space the forked worker started with (this
  // process's, at the spawn: within 64 MiB of what it is now).
  unsigned long long as = 0;
  ASSERT_EQ(sscanf(inside.c_str(), "%*s %*s %*s %*s %*s as=%llu", &as), 1) << inside;
  const uint64_t vm = VmSizeBytes();
  EXPECT_GE(as, (1ull << 30) + vm - (64ull << 20)) << inside << " VmSize " << vm;
  EXPECT_LE(as, (1ull << 30) + vm + (64ull << 20)) << inside << " VmSize " << vm;
  EXPECT_EQ(inside, absl::StrCat("dumpable=0 pdeathsig=", SIGKILL, " nnp=1 nofile=37 cpu=11 as=",
                                 as, " core=0\n"));
  EXPECT_THAT(status, HasSubstr("NoNewPrivs:\t1\n"));
  EXPECT_THAT(status, HasSubstr("Seccomp:\t2\n"));
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max open files +37 +37"));
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max cpu time +11 +11"));
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max core file size +0 +0"));
}

TEST_F(ChecksTest, LockdownAttributesAndRlimitsInTheWorker) {
  ExpectLockdownAttributes(*broker_, Policy{});
}

// The same without the layers and with the broker's identity kept: the identity change
// clears "dumpable" and the layers set NO_NEW_PRIVS on their own, so only here are the
// lock-down's own PR_SET_DUMPABLE and PR_SET_NO_NEW_PRIVS the only ones.
TEST_F(ChecksTest, LockdownAttributesWithoutLayersOrIdentityChange) {
  Policy policy;
  for (LayerMode& mode : policy.layers.modes) mode = LayerMode::kOff;
  policy.identity.kind = Identity::Kind::kKeep;
  ExpectLockdownAttributes(*broker_, policy);
}

TEST_F(ChecksTest, StdioNotGivenBecomesDevNull) {
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdout_fd = out[1];  // stdin and stderr not given
  std::string targets[3];
  auto id = broker_->Spawn(Policy{}, [](Client&) {
    // Report fds 0..2 by device number: /dev/null is char device 1:3.
    struct stat st[3];
    for (int i = 0; i < 3; ++i) fstat(i, &st[i]);
    char line[64];
    int n = snprintf(line, sizeof(line), "%d%d%d\n", S_ISCHR(st[0].st_mode) && st[0].st_rdev ==
                     makedev(1, 3), S_ISCHR(st[1].st_mode) && st[1].st_rdev == makedev(1, 3),
                     S_ISCHR(st[2].st_mode) && st[2].st_rdev == makedev(1, 3));
    (void)!write(1, line, static_cast<size_t>(n));
    for (;;) pause();
    return 0;
  }, options);
  ASSERT_TRUE(id.ok());
  close(out[1]);
  char buf[16];
  ssize_t n = read(out[0], buf, sizeof(buf));
  ASSERT_GT(n, 0);
  pid_t pid = broker_->pid(*id);
  for (int i = 0; i < 3; ++i) {
    char link[256];
    ssize_t len = readlink(absl::StrCat("/proc/", pid, "/fd/", i).c_str(), link, sizeof(link));
    targets[i] = len > 0 ? std::string(link, static_cast<size_t>(len)) : "";
  }
  broker_->Kill(*id);
  ASSERT_TRUE(broker_->Wait(*id, absl::Seconds(30)).ok());
  close(out[0]);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "101\n");
  EXPECT_EQ(targets[0], "/dev/null");
  EXPECT_THAT(targets[1], StartsWith("pipe:"));
  EXPECT_EQ(targets[2], "/dev/null");
}

TEST_F(ChecksTest, WorkerDiesWithTheThreadThatSpawnedIt) {
  // PR_SET_PDEATHSIG: a worker whose spawning thread ends is killed by the kernel.
  // The thread ends only once the worker runs its own code (lock-down is over).
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdout_fd = out[1];
  absl::StatusOr<WorkerId> id;
  std::thread spawner([&] {
    id = broker_->Spawn(Policy{}, [](Client&) {
      (void)!write(1, "L", 1);
      for (;;) pause();
      return 0;
    }, options);
    char c;
    (void)!read(out[0], &c, 1);
  });
  spawner.join();
  close(out[0]);
  close(out[1]);
  ASSERT_TRUE(id.ok()) << id.status();
  auto r = broker_->Wait(*id, absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status() << ": the worker outlived the thread that spawned it";
  EXPECT_EQ(r->kind, Kind::kSignaled) << r->ToString();
  EXPECT_EQ(r->signal, SIGKILL);
}

// ---- Wait, Kill, the destructor. ----

TEST_F(ChecksTest, WaitTimesOutOnALiveWorkerThenKillEndsIt) {
  auto id = broker_->Spawn(Policy{}, [](Client&) {
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(id.ok());
  absl::Time start = absl::Now();
  auto early = broker_->Wait(*id, absl::Milliseconds(200));
  absl::Duration waited = absl::Now() - start;
  EXPECT_EQ(early.status().code(), absl::StatusCode::kDeadlineExceeded) << early.status();
  EXPECT_GE(waited, absl::Milliseconds(190));
  EXPECT_LT(waited, absl::Seconds(5));
  pid_t pid = broker_->pid(*id);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0) << "still running after the timeout";
  broker_->Kill(*id);
  auto r = broker_->Wait(*id, absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, Kind::kSignaled) << r->ToString();
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_EQ(r->reason, "killed by the broker");
  EXPECT_EQ(broker_->pid(*id), -1);
}

TEST_F(ChecksTest, KillOfAnExitedWorkerKeepsItsResult) {
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnOptions options;
  options.stdout_fd = out[1];
  auto id = broker_->Spawn(Policy{}, [](Client&) { return 3; }, options);
  ASSERT_TRUE(id.ok());
  close(out[1]);
  EXPECT_EQ(testing::ReadAll(out[0]), "");  // EOF: the worker is exiting
  close(out[0]);
  // Wait until it has really ended (a zombie, or already reaped by the serving thread):
  // pipe EOF comes before the exit status is set.
  pid_t pid = broker_->pid(*id);
  for (int i = 0; i < 5000 && pid > 0; ++i) {
    std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
    size_t paren = stat.rfind(')');
    if (stat.empty() || (paren != std::string::npos && stat.substr(paren + 2, 1) == "Z")) break;
    usleep(1000);
  }
  broker_->Kill(*id);
  auto r = broker_->Wait(*id, absl::Seconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, Kind::kExited) << r->ToString();
  EXPECT_EQ(r->exit_code, 3);
  broker_->Kill(*id);  // forgotten already: no effect, no crash
}

TEST(BrokerLifetimeTest, DestructorKillsAndReapsLiveWorkers) {
  pid_t pids[3];
  {
    auto broker = Broker::Create();
    ASSERT_TRUE(broker.ok());
    for (pid_t& pid : pids) {
      auto id = (*broker)->Spawn(Policy{}, [](Client&) {
        for (;;) pause();
        return 0;
      });
      ASSERT_TRUE(id.ok());
      pid = (*broker)->pid(*id);
      ASSERT_GT(pid, 0);
    }
  }
  // Reaped, not merely killed: a zombie would still answer kill(pid, 0).
  for (pid_t pid : pids) {
    EXPECT_EQ(kill(pid, 0), -1) << "worker " << pid << " was not reaped";
    EXPECT_EQ(errno, ESRCH);
  }
}

// ---- Lock-down failures and a failed execve are reported as such. ----

// Trap reports are the worker's word: more than 100 a second end it.
TEST_F(ChecksTest, ViolationReportsAreRateLimited) {
  Policy policy;
  policy.penalty = Penalty::kTrap;
  for (int calls : {50, 400}) {
    SCOPED_TRACE(calls);
    WorkerResult r = Run(policy, [calls](Client& client) {
      for (int i = 0; i < calls; ++i) (void)!socket(AF_INET, SOCK_STREAM, 0);
      return client.Now().ok() ? 0 : 2;
    });
    if (calls <= 100) {
      EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
      EXPECT_EQ(r.violations.size(), static_cast<size_t>(calls));
    } else {
      EXPECT_EQ(r.kind, Kind::kLimitExceeded) << r.ToString();
      EXPECT_EQ(r.reason, "more than 100 violation reports per second");
    }
  }
}

// The broker's child fails its lock-down (here: the stdout it was given is not an open
// fd, so moving it into place fails before hello): the program never runs, and the result
// says so.
TEST_F(ChecksTest, LockdownFailureIsReported) {
  auto prepared = broker_->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  SpawnOptions options;
  options.stdout_fd = 1000;  // not open in this process
  ASSERT_EQ(fcntl(1000, F_GETFD), -1);
  auto id = broker_->SpawnExec(*prepared, {Runfile("tests/test_worker"), "ok"}, options);
  ASSERT_TRUE(id.ok()) << id.status();
  auto r = broker_->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, Kind::kLockdownFailed) << r->ToString();
  EXPECT_EQ(r->reason, "the worker exited during lock-down (see its stderr)");
}

TEST_F(ChecksTest, FailedExecveIsReported) {
  auto prepared = broker_->Prepare(Policy{});
  ASSERT_TRUE(prepared.ok());
  testing::TempDir dir;
  auto id = broker_->SpawnExec(*prepared, {dir.path() + "/no-such-program"});
  if (!id.ok()) {
    // A broker may also refuse up front; then it must say why.
    EXPECT_THAT(std::string(id.status().message()), HasSubstr("no-such-program"));
    return;
  }
  auto r = broker_->Wait(*id, absl::Seconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, Kind::kLockdownFailed) << r->ToString();
  EXPECT_FALSE(r->reason.empty());
}

TEST_F(ChecksTest, ExitCode121AfterHelloIsAnOrdinaryExit) {
  // The lock-down exit code means "lock-down failed" only before hello.
  WorkerResult r = Run(Policy{}, [](Client&) { return 121; });
  EXPECT_EQ(r.kind, Kind::kExited) << r.ToString();
  EXPECT_EQ(r.exit_code, 121);
}

}  // namespace
}  // namespace vow
