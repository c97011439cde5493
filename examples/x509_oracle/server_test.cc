// `x509_oracle serve` in-process: a real Server in front of a real Oracle whose workers
// are locked, forked by the test process. Many concurrent clients, crashing and garbage
// requests mixed in, hostile frames; every good request must get the in-process verdict.
#include "examples/x509_oracle/server.h"

#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/oracle.h"
#include "examples/x509_oracle/oracle_test_util.h"
#include "examples/x509_oracle/protocol.h"
#include "examples/x509_oracle/verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::x509 {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::ConnectUnix;
using testing::CountOpenFds;

OracleOptions PoolOptions(size_t size) {
  OracleOptions o;
  o.pool_size = size;
  o.clock.kind = ClockRule::Kind::kFixed;
  o.clock.fixed = absl::FromUnixSeconds(kCorpusTime);
  o.timeout = absl::Seconds(60);
  o.crash_hook_for_testing = true;
  o.stderr_fd = 2;
  return o;
}

// "fd -> target" for every open fd, to name a leak.
std::string DescribeFds() {
  std::string out;
  for (int fd = 0; fd < 1024; ++fd) {
    char link[64], target[256];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) continue;
    target[n] = '\0';
    absl::StrAppend(&out, fd, "->", target, " ");
  }
  return out;
}

int ListenerCount() {
  std::string fds = DescribeFds();
  int n = 0;
  for (size_t at = fds.find("seccomp notify"); at != std::string::npos;
       at = fds.find("seccomp notify", at + 1)) {
    ++n;
  }
  return n;
}

std::string SocketPath(const std::string& name) {
  return absl::StrCat(testing::SocketDir(), "/", name);
}

// One request on a fresh connection.
absl::StatusOr<std::string> Ask(const std::string& path, const std::string& payload) {
  absl::StatusOr<UniqueFd> fd = ConnectUnix(path);
  if (!fd.ok()) return fd.status();
  return RoundTrip(fd->get(), payload, absl::Now() + absl::Seconds(120));
}

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout) {
  absl::Time until = absl::Now() + timeout;
  while (!cond()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

struct Good {
  std::string name;
  std::string payload;
  std::string json;  // the in-process verdict
};

std::vector<Good> GoodRequests() {
  EXPECT_TRUE(WarmUpOpenSsl());
  std::vector<Good> out;
  for (const CorpusEntry& e : MakeCorpus()) {
    out.push_back({e.name, EncodeJob(e.request, true), VerdictToJson(Verify(e.request))});
  }
  return out;
}

TEST(ServerTest, ConcurrentClientsWithCrashesAndGarbage) {
  // Everything in-process is computed before the first worker is forked.
  std::vector<Good> good = GoodRequests();
  ValidChainPems pems = MakeValidChain();
  VerifyRequest crash_request = testing::ValidRequest(pems);
  crash_request.chain += kCrashMagic;
  const std::string crash = EncodeJob(crash_request, true);
  const int fds_before = CountOpenFds();
  {
    absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(PoolOptions(2));
    ASSERT_TRUE(oracle.ok()) << oracle.status();
    ServerOptions so;
    so.socket_path = SocketPath("concurrent.sock");
    so.max_connections = 16;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(oracle->get(), so);
    ASSERT_TRUE(server.ok()) << server.status();
    // Two idle workers that have both finished their hello (the broker holds each one's
    // channel, data socket, pidfd and, after the hello, seccomp listener).
    auto settled = [&] {
      return (*oracle)->idle_workers() == 2 && (*oracle)->broker().live_workers() == 2 &&
             ListenerCount() == 2;
    };
    ASSERT_TRUE(WaitFor(settled, absl::Seconds(10)));
    const int fds_serving = CountOpenFds(/*skip_namespaces=*/true);
    const std::string fds_serving_list = DescribeFds();

    constexpr int kThreads = 8, kRequests = 25;
    std::atomic<int> good_ok{0}, crash_ok{0}, garbage_ok{0}, sent_crashes{0};
    absl::Mutex mu;
    std::vector<std::string> failures;
    auto fail = [&](std::string what) {
      absl::MutexLock lock(&mu);
      failures.push_back(std::move(what));
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(t);
        // Even threads keep one connection for all their requests, odd ones connect
        // for each.
        UniqueFd conn;
        for (int j = 0; j < kRequests; ++j) {
          int n = t * kRequests + j;
          int kind = n % 5;  // 0..2 good, 3 crash, 4 garbage
          std::string payload;
          const Good* g = nullptr;
          if (kind <= 2) {
            g = &good[n % good.size()];
            payload = g->payload;
          } else if (kind == 3) {
            payload = crash;
            ++sent_crashes;
          } else {
            payload.resize(1 + rng() % 200);
            for (char& c : payload) c = static_cast<char>(rng());
            payload[0] = static_cast<char>(kJobVersion + 1 + rng() % 200);
          }
          absl::StatusOr<std::string> json;
          if (t % 2 == 0) {
            if (!conn) {
              absl::StatusOr<UniqueFd> fd = ConnectUnix(so.socket_path);
              if (!fd.ok()) {
                fail(absl::StrCat("connect: ", fd.status().message()));
                continue;
              }
              conn = *std::move(fd);
            }
            json = RoundTrip(conn.get(), payload, absl::Now() + absl::Seconds(120));
          } else {
            json = Ask(so.socket_path, payload);
          }
          if (!json.ok()) {
            fail(absl::StrCat("request ", n, ": ", json.status().message()));
            continue;
          }
          if (kind <= 2) {
            if (*json == g->json) {
              ++good_ok;
            } else {
              fail(absl::StrCat(g->name, ": got ", *json, " want ", g->json));
            }
            continue;
          }
          absl::StatusOr<Verdict> v = VerdictFromJson(*json);
          if (!v.ok() || v->valid) {
            fail(absl::StrCat("request ", n, ": not an error verdict: ", *json));
          } else if (kind == 3 && absl::StartsWith(v->internal_error, "worker crashed: ")) {
            ++crash_ok;
          } else if (kind == 4 && absl::StartsWith(v->input_error, "bad request frame: ")) {
            ++garbage_ok;
          } else {
            fail(absl::StrCat("request ", n, " (kind ", kind, "): ", *json));
          }
        }
      });
    }
    for (std::thread& th : threads) th.join();
    EXPECT_THAT(failures, ::testing::IsEmpty());
    EXPECT_EQ(good_ok + crash_ok + garbage_ok, kThreads * kRequests);
    EXPECT_EQ(crash_ok, sent_crashes);
    EXPECT_EQ(sent_crashes, kThreads * kRequests / 5);
    // Every crash cost exactly one worker; garbage none.
    EXPECT_EQ((*oracle)->failed_workers(), static_cast<uint64_t>(sent_crashes.load()));
    // The pool recovers: two idle workers, no leftovers.
    EXPECT_TRUE(WaitFor(settled, absl::Seconds(10)));
    absl::StatusOr<std::string> last = Ask(so.socket_path, good[0].payload);
    ASSERT_TRUE(last.ok()) << last.status();
    EXPECT_EQ(*last, good[0].json);
    // No fd leaked while serving (connections, replaced workers' sockets and pidfds); the
    // policy's shared namespace pair may be taken meanwhile, and is counted at the end.
    EXPECT_TRUE(WaitFor([&] { return CountOpenFds(true) == fds_serving; }, absl::Seconds(10)))
        << CountOpenFds(true) << " fds open, " << fds_serving << " when serving started\n now: "
        << DescribeFds() << "\n then: " << fds_serving_list;
    EXPECT_GE((*server)->connections_served(), 4u + 4u * kRequests);
    (*server)->Stop();
  }
  EXPECT_EQ(CountOpenFds(), fds_before);
}

TEST(ServerTest, HostileInputGetsErrorVerdictsAndTheServerKeepsServing) {
  ASSERT_TRUE(WarmUpOpenSsl());
  ValidChainPems pems = MakeValidChain();
  std::vector<testing::BadInput> bad = testing::MakeBadInputs(pems);
  const std::string good = EncodeJob(testing::ValidRequest(pems), true);
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(PoolOptions(2));
  ASSERT_TRUE(oracle.ok()) << oracle.status();
  ServerOptions so;
  so.socket_path = SocketPath("hostile.sock");
  // Each whole frame within this (the 50 MB one too, on a loaded machine).
  so.io_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(oracle->get(), so);
  ASSERT_TRUE(server.ok()) << server.status();

  for (const testing::BadInput& b : bad) {
    absl::StatusOr<std::string> json = Ask(so.socket_path, EncodeJob(b.request, true));
    ASSERT_TRUE(json.ok()) << b.name << ": " << json.status();
    absl::StatusOr<Verdict> v = VerdictFromJson(*json);
    ASSERT_TRUE(v.ok()) << *json;
    EXPECT_FALSE(v->valid) << b.name;
    EXPECT_THAT(v->input_error, HasSubstr(b.expect_input_error)) << b.name;
    absl::StatusOr<std::string> after = Ask(so.socket_path, good);
    ASSERT_TRUE(after.ok());
    EXPECT_THAT(*after, StartsWith("{\"valid\":true")) << "after " << b.name;
  }

  // A frame announcing more than kMaxJobBytes: an error verdict, without the server
  // reading (or the client sending) the payload; then the connection is closed.
  {
    absl::StatusOr<UniqueFd> fd = ConnectUnix(so.socket_path);
    ASSERT_TRUE(fd.ok());
    const uint32_t len = kMaxJobBytes + 1;
    std::string header(4, '\0');
    for (int i = 0; i < 4; ++i) header[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    ASSERT_TRUE(SendAll(fd->get(), header, absl::Now() + absl::Seconds(5)).ok());
    std::string json;
    ASSERT_TRUE(RecvFrame(fd->get(), kMaxVerdictBytes, absl::Now() + absl::Seconds(10), &json)
                    .ok());
    EXPECT_THAT(json, HasSubstr("request frame of 67108865 bytes exceeds the limit"));
    EXPECT_TRUE(absl::IsOutOfRange(
        RecvFrame(fd->get(), kMaxVerdictBytes, absl::Now() + absl::Seconds(10), &json)));
  }
  // A frame cut short, and a client that sends half a header and goes silent: dropped
  // without an answer, nothing else affected.
  {
    absl::StatusOr<UniqueFd> fd = ConnectUnix(so.socket_path);
    ASSERT_TRUE(fd.ok());
    std::string framed = Frame(good);
    ASSERT_TRUE(SendAll(fd->get(), framed.substr(0, framed.size() / 2),
                        absl::Now() + absl::Seconds(5)).ok());
    shutdown(fd->get(), SHUT_WR);
    std::string json;
    EXPECT_FALSE(
        RecvFrame(fd->get(), kMaxVerdictBytes, absl::Now() + absl::Seconds(10), &json).ok());
  }
  {
    absl::StatusOr<UniqueFd> silent = ConnectUnix(so.socket_path);
    ASSERT_TRUE(silent.ok());
    ASSERT_TRUE(SendAll(silent->get(), "\x10\x00", absl::Now() + absl::Seconds(5)).ok());
    absl::StatusOr<std::string> meanwhile = Ask(so.socket_path, good);
    ASSERT_TRUE(meanwhile.ok());
    EXPECT_THAT(*meanwhile, StartsWith("{\"valid\":true"));
    std::string json;  // the server gives up on it after io_timeout (5 s)
    absl::Status s =
        RecvFrame(silent->get(), kMaxVerdictBytes, absl::Now() + absl::Seconds(10), &json);
    EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  }
  EXPECT_EQ((*oracle)->failed_workers(), 0u);
  absl::StatusOr<std::string> last = Ask(so.socket_path, good);
  ASSERT_TRUE(last.ok());
  EXPECT_THAT(*last, StartsWith("{\"valid\":true"));
}

TEST(ServerTest, FreshWorkerPerRequest) {
  std::vector<Good> good = GoodRequests();
  ValidChainPems pems = MakeValidChain();
  VerifyRequest crash_request = testing::ValidRequest(pems);
  crash_request.chain += kCrashMagic;
  const std::string crash = EncodeJob(crash_request, true);
  OracleOptions o = PoolOptions(0);
  o.workers = OracleOptions::Workers::kFresh;
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(o);
  ASSERT_TRUE(oracle.ok()) << oracle.status();
  ServerOptions so;
  so.socket_path = SocketPath("fresh.sock");
  so.verifiers = 4;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(oracle->get(), so);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < 6; ++j) {
        int n = t * 6 + j;
        bool crashing = n % 3 == 2;
        absl::StatusOr<std::string> json =
            Ask(so.socket_path, crashing ? crash : good[n % good.size()].payload);
        if (!json.ok()) {
          ADD_FAILURE() << json.status();
          continue;
        }
        if (crashing) {
          EXPECT_THAT(*json, HasSubstr("\"internal_error\":\"worker crashed: killed by signal 6"));
        } else {
          EXPECT_EQ(*json, good[n % good.size()].json);
        }
        ++ok;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(ok, 24);
  EXPECT_EQ((*oracle)->failed_workers(), 8u);
  EXPECT_EQ((*oracle)->broker().live_workers(), 0u);
}

// The latency of one good request on a fresh connection.
absl::Duration TimedAsk(const std::string& path, const Good& g) {
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> json = Ask(path, g.payload);
  absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(json.ok()) << json.status();
  if (json.ok()) {
    EXPECT_EQ(*json, g.json);
  }
  return took;
}

absl::Duration Median(std::vector<absl::Duration> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(ServerTest, IdleAndSlowlorisClientsDoNotDelayARealClient) {
  std::vector<Good> good = GoodRequests();
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(PoolOptions(2));
  ASSERT_TRUE(oracle.ok()) << oracle.status();
  ServerOptions so;  // the defaults (the CLI's), except the socket
  so.socket_path = SocketPath("idle.sock");
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(oracle->get(), so);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(WaitFor([&] { return (*oracle)->idle_workers() == 2; }, absl::Seconds(10)));

  constexpr int kRounds = 7;
  std::vector<absl::Duration> alone, crowded;
  for (int i = 0; i < kRounds; ++i) alone.push_back(TimedAsk(so.socket_path, good[i]));

  // 64 connections that send nothing, and 4 that send a request one byte a second.
  constexpr int kIdle = 64, kSlow = 4;
  std::vector<UniqueFd> idle;
  for (int i = 0; i < kIdle; ++i) {
    absl::StatusOr<UniqueFd> fd = ConnectUnix(so.socket_path);
    ASSERT_TRUE(fd.ok()) << fd.status();
    idle.push_back(*std::move(fd));
  }
  std::atomic<bool> quit{false};
  std::atomic<int> slow_dropped{0};
  std::vector<std::thread> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back([&] {
      absl::StatusOr<UniqueFd> fd = ConnectUnix(so.socket_path);
      if (!fd.ok()) {
        ADD_FAILURE() << fd.status();
        return;
      }
      const std::string frame = Frame(good[0].payload);
      for (size_t at = 0; at < frame.size() && !quit; ++at) {
        if (!SendAll(fd->get(), frame.substr(at, 1), absl::Now() + absl::Seconds(5)).ok()) {
          ++slow_dropped;  // the server hung up
          return;
        }
        absl::SleepFor(absl::Seconds(1));
      }
    });
  }
  // Every one of them accepted and open while the real client is measured.
  ASSERT_TRUE(WaitFor([&] { return (*server)->connections_served() >= kRounds + kIdle + kSlow; },
                      absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(1500));  // the slow ones have sent a byte or two
  for (int i = 0; i < kRounds; ++i) crowded.push_back(TimedAsk(so.socket_path, good[i]));
  EXPECT_EQ((*server)->connections_timed_out(), 0u) << "the crowd left before the measurement";
  EXPECT_EQ((*server)->connections_refused(), 0u);

  const absl::Duration a = Median(alone), c = Median(crowded);
  std::cerr << "median latency: alone " << a << ", crowded " << c << "\n";
  EXPECT_LT(c, 2 * a + absl::Milliseconds(200))
      << "median latency alone " << a << ", with " << kIdle << " idle and " << kSlow
      << " slowloris connections " << c;

  // The crowd is dropped at its deadline (io_timeout from its connect), without an answer.
  for (UniqueFd& fd : idle) {
    std::string json;
    absl::Status s = RecvFrame(fd.get(), kMaxVerdictBytes,
                               absl::Now() + so.io_timeout + absl::Seconds(10), &json);
    EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
  }
  EXPECT_TRUE(WaitFor([&] { return slow_dropped == kSlow; }, absl::Seconds(10)))
      << slow_dropped << " of " << kSlow << " slowloris clients dropped";
  quit = true;
  for (std::thread& t : slow) t.join();
  EXPECT_EQ((*server)->connections_timed_out(), static_cast<uint64_t>(kIdle + kSlow));
  EXPECT_EQ((*oracle)->failed_workers(), 0u);
}

TEST(ServerTest, ConnectionsBeyondTheLimitAreRefusedAtOnce) {
  std::vector<Good> good = GoodRequests();
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(PoolOptions(1));
  ASSERT_TRUE(oracle.ok()) << oracle.status();
  ServerOptions so;
  so.socket_path = SocketPath("limit.sock");
  so.max_connections = 4;
  so.io_timeout = absl::Seconds(60);  // waiting for a slot would take this long
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(oracle->get(), so);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<UniqueFd> fd = ConnectUnix(so.socket_path);
    ASSERT_TRUE(fd.ok()) << fd.status();
    idle.push_back(*std::move(fd));
  }
  ASSERT_TRUE(WaitFor([&] { return (*server)->connections_served() == 4; }, absl::Seconds(10)));

  absl::StatusOr<UniqueFd> fifth = ConnectUnix(so.socket_path);
  ASSERT_TRUE(fifth.ok()) << fifth.status();
  absl::StatusOr<std::string> json =
      RoundTrip(fifth->get(), good[0].payload, absl::Now() + absl::Seconds(20));
  ASSERT_TRUE(json.ok()) << json.status();
  absl::StatusOr<Verdict> v = VerdictFromJson(*json);
  ASSERT_TRUE(v.ok()) << *json;
  EXPECT_FALSE(v->valid);
  EXPECT_THAT(v->internal_error, StartsWith("server busy: 4 connections open"));
  EXPECT_EQ((*server)->connections_refused(), 1u);

  // A slot freed by a client leaving is a slot for the next one.
  idle.pop_back();
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> j = Ask(so.socket_path, good[1].payload);
        return j.ok() && *j == good[1].json;
      },
      absl::Seconds(10)));
}

// The DER size of the PEM certificate `pem` (its base64 body: 3 bytes per 4 characters).
size_t PemDerBytes(const std::string& pem) {
  size_t chars = 0, pad = 0;
  bool in_body = false;
  for (absl::string_view line : absl::StrSplit(pem, '\n')) {
    if (absl::StartsWith(line, "-----BEGIN")) {
      in_body = true;
    } else if (absl::StartsWith(line, "-----END")) {
      break;
    } else if (in_body) {
      chars += line.size();
      pad += static_cast<size_t>(std::count(line.begin(), line.end(), '='));
    }
  }
  return chars / 4 * 3 - pad;
}

// `x509_oracle serve` as the CLI starts it (pooled workers, its defaults), fresh for each
// leaf size: a valid chain whose leaf is 64 KiB, 1 MiB and 10 MiB must be verified on the
// first request and on every one after (issue 7: pooled workers were killed on ordinary
// 64 KiB certificates by glibc malloc's read of /proc/sys/vm/overcommit_memory).
TEST(ServerTest, LargeLeavesOnAFreshServerEveryRequest) {
  ASSERT_TRUE(WarmUpOpenSsl());
  constexpr int kRequests = 20;
  for (size_t size : {size_t{64} << 10, size_t{1} << 20, size_t{10} << 20}) {
    SCOPED_TRACE(absl::StrCat("leaf of ", size, " bytes"));
    absl::Time start = absl::Now();
    ValidChainPems pems = MakeValidChainWithLargeLeaf(size);
    ASSERT_GE(PemDerBytes(pems.leaf), size);
    ASSERT_LT(PemDerBytes(pems.leaf), size + 4096);
    const VerifyRequest request = testing::ValidRequest(pems);
    const Verdict in_process = Verify(request);
    ASSERT_TRUE(in_process.valid) << VerdictToJson(in_process);
    const std::string expected = VerdictToJson(in_process);
    const std::string payload = EncodeJob(request, true);

    OracleOptions o;  // the CLI's defaults: a pool of 2, the real clock (the job has a time)
    absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(o);
    ASSERT_TRUE(oracle.ok()) << oracle.status();
    ServerOptions so;
    so.socket_path = SocketPath(absl::StrCat("large-", size, ".sock"));
    so.verifiers = o.pool_size;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(oracle->get(), so);
    ASSERT_TRUE(server.ok()) << server.status();
    int valid = 0;
    for (int i = 0; i < kRequests; ++i) {
      absl::StatusOr<std::string> json = Ask(so.socket_path, payload);
      ASSERT_TRUE(json.ok()) << "request " << i << ": " << json.status();
      EXPECT_EQ(*json, expected) << "request " << i;
      if (*json == expected) ++valid;
    }
    EXPECT_EQ(valid, kRequests);
    EXPECT_EQ((*oracle)->failed_workers(), 0u);
    (*server)->Stop();
    std::cerr << "leaf of " << PemDerBytes(pems.leaf) << " bytes: " << kRequests
              << " requests on a fresh server in " << absl::FormatDuration(absl::Now() - start)
              << " (with generating the chain)\n";
  }
}

TEST(ServerTest, RefusesToReplaceAFileThatIsNotASocket) {
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(PoolOptions(1));
  ASSERT_TRUE(oracle.ok());
  std::string path = SocketPath("not_a_socket");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  ServerOptions so;
  so.socket_path = path;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(oracle->get(), so);
  EXPECT_FALSE(server.ok());
  EXPECT_EQ(access(path.c_str(), F_OK), 0);  // still there
}

}  // namespace
}  // namespace vow::x509
