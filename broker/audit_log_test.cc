#include "broker/audit_log.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow {
namespace {

using ::testing::HasSubstr;

TEST(AuditLogTest, EscapeBytes) {
  EXPECT_EQ(AuditLog::EscapeBytes("/etc/passwd"), "/etc/passwd");
  EXPECT_EQ(AuditLog::EscapeBytes(absl::string_view("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(AuditLog::EscapeBytes("say \"hi\"\\"), "say \\\"hi\\\"\\\\");
  EXPECT_EQ(AuditLog::EscapeBytes("line\nbreak\t\x7f\xff"), "line\\x0abreak\\x09\\x7f\\xff");
  EXPECT_EQ(AuditLog::EscapeBytes(""), "");
}

TEST(AuditLogTest, EscapeBytesTruncatesWithAMarker) {
  std::string long_path(1000, 'a');
  std::string out = AuditLog::EscapeBytes(long_path);
  EXPECT_EQ(out, std::string(256, 'a') + "\\...(+744 bytes)");
  EXPECT_EQ(AuditLog::EscapeBytes("abcdef", 3), "abc\\...(+3 bytes)");
  EXPECT_EQ(AuditLog::EscapeBytes("abc", 3), "abc");
  // Content cannot forge the marker: its backslash is doubled.
  EXPECT_EQ(AuditLog::EscapeBytes("\\...(+3 bytes)"), "\\\\...(+3 bytes)");
}

TEST(AuditLogTest, DescribeOpenFlags) {
  EXPECT_EQ(AuditLog::DescribeOpenFlags(O_RDONLY), "O_RDONLY");
  EXPECT_EQ(AuditLog::DescribeOpenFlags(O_RDONLY | O_CLOEXEC), "O_RDONLY|O_CLOEXEC");
  EXPECT_EQ(AuditLog::DescribeOpenFlags(O_RDWR | O_CREAT | 0x40000000u),
            "O_RDWR|O_CREAT|0x40000000");
  EXPECT_EQ(AuditLog::DescribeOpenFlags(O_WRONLY | O_TRUNC | O_APPEND | O_EXCL),
            "O_WRONLY|O_EXCL|O_TRUNC|O_APPEND");
  EXPECT_EQ(AuditLog::DescribeOpenFlags(O_RDWR | O_TMPFILE), "O_RDWR|O_TMPFILE");
  EXPECT_EQ(AuditLog::DescribeOpenFlags(O_WRONLY | O_SYNC), "O_WRONLY|O_SYNC");
  EXPECT_EQ(AuditLog::DescribeOpenFlags(O_WRONLY | O_DSYNC), "O_WRONLY|O_DSYNC");
  EXPECT_EQ(AuditLog::DescribeOpenFlags(O_PATH | O_DIRECTORY | O_NOFOLLOW),
            "O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_PATH");
  EXPECT_EQ(AuditLog::DescribeOpenFlags(3), "O_ACCMODE");
  // Every bit is named or shown in hex; the unknown ones come last.
  std::string all = AuditLog::DescribeOpenFlags(0xffffffffu);
  EXPECT_THAT(all, HasSubstr("O_NOATIME"));
  EXPECT_THAT(all, HasSubstr("O_LARGEFILE"));
  EXPECT_EQ(all.rfind("|0x"), all.size() - 11) << all;
}

TEST(AuditLogTest, FormatLine) {
  AuditEntry e;
  e.worker_id = 7;
  e.pid = 4242;
  e.request = absl::StrCat("open path=\"", AuditLog::EscapeBytes("/etc/x\n"), "\" flags=",
                           AuditLog::DescribeOpenFlags(O_RDONLY | O_CLOEXEC));
  e.allowed = false;
  e.reason = "no rule\ncovers \"it\"";
  EXPECT_EQ(AuditLog::FormatLine(e),
            "worker=7 pid=4242 deny open path=\"/etc/x\\x0a\" flags=O_RDONLY|O_CLOEXEC "
            "reason=\"no rule\\x0acovers \\\"it\\\"\"\n");
  e.allowed = true;
  EXPECT_THAT(AuditLog::FormatLine(e), HasSubstr(" allow open"));
  e.ended = true;
  EXPECT_THAT(AuditLog::FormatLine(e), HasSubstr(" end open"));
  // Raw control bytes that reach the request are still escaped: one line per entry.
  e.request = "evil\nworker=1 pid=1 allow x";
  std::string line = AuditLog::FormatLine(e);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  e.time = absl::FromUnixSeconds(1700000000);
  EXPECT_EQ(AuditLog::FormatLine(e).rfind("2023-11-14T22:13:20.000000Z worker=7 ", 0), 0u);
}

TEST(AuditLogTest, RingIsBoundedAndOrdered) {
  AuditLog log(-1, 3);
  for (int i = 0; i < 10; ++i) {
    AuditEntry e;
    e.worker_id = static_cast<uint64_t>(i);
    log.Record(e);
  }
  std::vector<AuditEntry> entries = log.Entries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].worker_id, 7u);
  EXPECT_EQ(entries[2].worker_id, 9u);
  EXPECT_EQ(log.total(), 10u);
  EXPECT_NE(entries[0].time, absl::InfinitePast()) << "Record() stamps the time";
}

TEST(AuditLogTest, DefaultRingKeepsTenThousand) {
  AuditLog log;
  for (int i = 0; i < 10005; ++i) log.Record(AuditEntry{});
  EXPECT_EQ(log.Entries().size(), AuditLog::kDefaultCapacity);
  EXPECT_EQ(AuditLog::kDefaultCapacity, 10000u);
}

TEST(AuditLogTest, WritesOneLinePerEntryFromManyThreads) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  {
    AuditLog log(fds[1]);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kEach; ++i) {
          AuditEntry e;
          e.worker_id = static_cast<uint64_t>(t);
          e.pid = i;
          e.request = std::string(100, static_cast<char>('a' + t));
          e.reason = "r";
          log.Record(e);
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(log.Entries().size(), static_cast<size_t>(kThreads * kEach));
    EXPECT_TRUE(log.Flush(absl::Seconds(10)));
  }
  close(fds[1]);
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) all.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  std::vector<std::string> lines = absl::StrSplit(all, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kEach));
  for (const std::string& line : lines) {
    // Each line carries exactly one thread's request, unbroken.
    size_t worker = line.find("worker=");
    ASSERT_NE(worker, std::string::npos) << line;
    char c = static_cast<char>('a' + (line[worker + 7] - '0'));
    EXPECT_THAT(line, HasSubstr(std::string(100, c))) << line;
  }
}

AuditEntry Sample(int i) {
  AuditEntry e;
  e.worker_id = 1;
  e.pid = i;
  e.request = std::string(200, 'q');
  e.reason = "r";
  return e;
}

// Drains `fd` (non-blocking) into `out` until EOF, or until `done` and nothing more came
// for a while.
void Drain(int fd, std::string* out) {
  char buf[65536];
  for (;;) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 300) <= 0) return;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    out->append(buf, static_cast<size_t>(n));
  }
}

// A reader that stopped reading: Record() still returns at once, lines beyond the queue
// are dropped and counted, and once the reader reads again a line says how many.
TEST(AuditLogTest, PausedReaderNeitherStallsNorLosesCount) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  ASSERT_GT(fcntl(fds[1], F_SETPIPE_SZ, 4096), 0);
  constexpr int kLines = 8000;  // ~1.8 MB of lines: more than the pipe and the queue
  std::string out;
  uint64_t dropped = 0;
  {
    AuditLog log(fds[1]);
    std::atomic<bool> done{false};
    std::thread recorder([&] {
      for (int i = 0; i < kLines; ++i) log.Record(Sample(i));
      done = true;
    });
    absl::Time until = absl::Now() + absl::Seconds(10);
    while (!done && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
    EXPECT_TRUE(done) << "Record() waited for a reader that does not read";
    // Unblock (old code) and read everything; then one more line after the pause.
    std::thread reader([&] { Drain(fds[0], &out); });
    recorder.join();
    EXPECT_TRUE(log.Flush(absl::Seconds(10)));
    log.Record(Sample(kLines));
    EXPECT_TRUE(log.Flush(absl::Seconds(10)));
    reader.join();
    Drain(fds[0], &out);
    dropped = log.dropped();
    EXPECT_EQ(log.total(), static_cast<uint64_t>(kLines + 1));
  }
  close(fds[1]);
  close(fds[0]);
  EXPECT_GT(dropped, 0u);
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  uint64_t written = 0;
  uint64_t reported = 0;
  for (const std::string& line : lines) {
    size_t at = line.find(" audit dropped=");
    if (at != std::string::npos) {
      reported += std::stoull(line.substr(at + 15));
      continue;
    }
    ASSERT_THAT(line, HasSubstr(std::string(200, 'q'))) << "a broken line: " << line;
    ++written;
  }
  EXPECT_EQ(written + dropped, static_cast<uint64_t>(kLines + 1));
  EXPECT_EQ(reported, dropped) << "every drop is reported once the reader is back";
}

// A reader that closed its end: lines are dropped and counted, and SIGPIPE (default
// action: end the process) never reaches the broker.
TEST(AuditLogTest, ClosedPipeReaderDoesNotKill) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  AuditLog log(fds[1]);
  close(fds[0]);
  signal(SIGPIPE, SIG_DFL);
  for (int i = 0; i < 100; ++i) log.Record(Sample(i));
  EXPECT_TRUE(log.Flush(absl::Seconds(10)));
  EXPECT_EQ(log.dropped(), 100u);
  EXPECT_EQ(log.Entries().size(), 100u);
  close(fds[1]);
}

TEST(AuditLogTest, ClosedSocketReaderDoesNotKill) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  AuditLog log(sv[0]);
  close(sv[1]);
  signal(SIGPIPE, SIG_DFL);
  for (int i = 0; i < 100; ++i) log.Record(Sample(i));
  EXPECT_TRUE(log.Flush(absl::Seconds(10)));
  EXPECT_EQ(log.dropped(), 100u);
  close(sv[0]);
}

// The caller's fd keeps its flags (the log writes through its own open of the pipe).
TEST(AuditLogTest, CallersFdStaysBlocking) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  {
    AuditLog log(fds[1]);
    log.Record(Sample(0));
    EXPECT_TRUE(log.Flush(absl::Seconds(10)));
  }
  EXPECT_EQ(fcntl(fds[1], F_GETFL) & O_NONBLOCK, 0);
  close(fds[1]);
  std::string out;
  Drain(fds[0], &out);
  EXPECT_THAT(out, HasSubstr(std::string(200, 'q')));
  close(fds[0]);
}

}  // namespace
}  // namespace vow
