// The brokered-call deadline (issue 8 item 11, issue 14 item 1): a brokered call that has
// not finished after 10 s ends its worker (kLimitExceeded, "a brokered call did not
// finish within 10s"), whether it came as a request on the channel or as a path call
// (user notification), while the pool thread stays stuck in the kernel.
//
// The stall is made deterministic: a thread of this test writes to a file from a buffer
// registered with userfaultfd and never resolved, so the write sleeps in the page fault
// while holding the file's inode lock; a worker's O_TRUNC open of that file (a `w` rule)
// then waits for the lock in the broker's openat, however the broker opens. The test
// resolves the fault at the end, which lets the write and the stuck openat finish.
//
// While the calls are stalled, each worker has more queued (a second datagram on the
// channel, a second thread's path call): the broker must not watch a worker's channel or
// listener while its call is in flight, or level-triggered epoll reports the queued one
// on every wake-up and the loop spins. Checked as the test process's CPU time during
// the stall.
//
// The test process is the broker; nothing here installs a sandbox on it. Takes ~11 s.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "worker/client.h"
#include "worker/lockdown.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

namespace vow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Kind = WorkerResult::Kind;

// A thread stuck in write(2) on `path` with the file's inode lock held, until Release().
class StuckWriter {
 public:
  explicit StuckWriter(const std::string& path) {
    // /dev/userfaultfd (root): a context that also handles faults taken by the kernel
    // (the write's copy from the buffer), which userfaultfd(2) gives only with
    // CAP_SYS_PTRACE or vm.unprivileged_userfaultfd.
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) {
      error_ = std::string("open /dev/userfaultfd: ") + strerror(errno);
      return;
    }
    uffd_ = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
    close(dev);
    if (uffd_ < 0) {
      error_ = std::string("USERFAULTFD_IOC_NEW: ") + strerror(errno);
      return;
    }
    struct uffdio_api api = {};
    api.api = UFFD_API;
    if (ioctl(uffd_, UFFDIO_API, &api) != 0) {
      error_ = std::string("UFFDIO_API: ") + strerror(errno);
      return;
    }
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    buffer_ = mmap(nullptr, page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer_ == MAP_FAILED) {
      error_ = std::string("mmap: ") + strerror(errno);
      return;
    }
    struct uffdio_register reg = {};
    reg.range.start = reinterpret_cast<uint64_t>(buffer_);
    reg.range.len = page_;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (ioctl(uffd_, UFFDIO_REGISTER, &reg) != 0) {
      error_ = std::string("UFFDIO_REGISTER: ") + strerror(errno);
      return;
    }
    file_ = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (file_ < 0) {
      error_ = std::string("open ") + path + ": " + strerror(errno);
      return;
    }
    // Every signal blocked in the writer: a thread asleep in a kernel-mode userfaultfd
    // fault that is woken for a signal retries the fault at once, in a loop, until it is
    // resolved (the signal is only taken on the way back to user space), a CPU's worth
    // that this test would count as the broker's. Blocked, the kernel never picks it for
    // a signal sent to the process.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    writer_ = std::thread([this] { write_result_ = write(file_, buffer_, page_); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    // The write is stuck once its fault has reached us.
    struct pollfd p = {uffd_, POLLIN, 0};
    struct uffd_msg msg;
    if (poll(&p, 1, 10000) != 1 || read(uffd_, &msg, sizeof(msg)) != sizeof(msg) ||
        msg.event != UFFD_EVENT_PAGEFAULT) {
      error_ = "the write did not fault on the registered buffer";
    }
  }
  ~StuckWriter() {
    Release();
    if (file_ >= 0) close(file_);
    if (uffd_ >= 0) close(uffd_);
    if (buffer_ != MAP_FAILED) munmap(buffer_, page_);
  }
  const std::string& error() const { return error_; }
  // Resolves the fault with a zero page: the write (and whatever waited for its lock)
  // finishes.
  void Release() {
    if (!writer_.joinable()) return;
    struct uffdio_zeropage zero = {};
    zero.range.start = reinterpret_cast<uint64_t>(buffer_);
    zero.range.len = page_;
    (void)ioctl(uffd_, UFFDIO_ZEROPAGE, &zero);
    writer_.join();
  }
  ssize_t write_result() const { return write_result_; }

 private:
  std::string error_;
  int uffd_ = -1;
  int file_ = -1;
  void* buffer_ = MAP_FAILED;
  size_t page_ = 0;
  std::thread writer_;
  ssize_t write_result_ = -2;
};

// This process's CPU time while the calling thread sleeps for `d` (the broker's, when
// every other thread of the test sleeps too).
absl::Duration CpuWhileSleeping(absl::Duration d) {
  struct timespec cpu0, cpu1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
  absl::SleepFor(d);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
  return absl::DurationFromTimespec(cpu1) - absl::DurationFromTimespec(cpu0);
}

// A broker made with `options` spawns a worker and gets its exit (after another broker
// went while calls of its workers were stuck).
void ExpectANewBrokerWorks(const BrokerOptions& options) {
  auto again = Broker::Create(options);
  ASSERT_TRUE(again.ok()) << again.status();
  auto id = (*again)->Spawn(Policy{}, [](Client&) { return 3; });
  ASSERT_TRUE(id.ok()) << id.status();
  auto result = (*again)->Wait(*id, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 3) << result->ToString();
}

// Writing under `dir` (a `w` rule and wpath), with `thread` if asked.
Policy WritesUnder(const std::string& dir, bool thread) {
  Policy policy;
  policy.promises.insert(Promise::kWpath);
  if (thread) policy.promises.insert(Promise::kThread);
  PathRule rule;
  rule.path = dir;
  rule.write = true;
  policy.paths.push_back(rule);
  return policy;
}

// A worker whose open() of `file` (a path call) stalls in the broker; 300 ms later a
// second thread queues another. Exits 20 if the open succeeded, 21 if not.
WorkerMain StalledPathCallWorker(const std::string& file) {
  return [file](Client&) {
    std::thread([file] {
      usleep(300000);
      (void)open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    }).detach();
    int fd = open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    return fd >= 0 ? 20 : 21;
  };
}

TEST(CallDeadlineTest, StalledChannelRequestAndPathCallEachEndTheirWorker) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("locked", "contents");
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok()) << broker.status();

  StuckWriter stuck(file);
  ASSERT_EQ(stuck.error(), "");

  // wpath: the open() path calls; thread: the second thread.
  const Policy policy = WritesUnder(dir.path(), /*thread=*/true);
  // One worker asks on the channel, the other through a path call; both wait for the
  // inode lock in the broker's openat and never get an answer. 300 ms later each queues
  // one more: a datagram on the channel, a second thread's path call.
  const absl::Time start = absl::Now();  // before either call can have started
  auto by_request = (*broker)->Spawn(policy, [file](Client& client) {
    std::thread([] {
      usleep(300000);
      (void)!send(kWorkerChannelFd, "x", 1, MSG_NOSIGNAL);
    }).detach();
    auto fd = client.Open(file, O_WRONLY | O_TRUNC);
    return fd.ok() ? 10 : 11;
  });
  ASSERT_TRUE(by_request.ok()) << by_request.status();
  auto by_path_call = (*broker)->Spawn(policy, StalledPathCallWorker(file));
  ASSERT_TRUE(by_path_call.ok()) << by_path_call.status();

  // The broker's CPU time (this process: every other thread here sleeps) over 7 s of
  // the stall, from 1 s in.
  absl::SleepFor(absl::Seconds(1));
  const absl::Duration cpu = CpuWhileSleeping(absl::Seconds(7));

  auto request_result = (*broker)->Wait(*by_request, absl::Seconds(40));
  auto path_call_result = (*broker)->Wait(*by_path_call, absl::Seconds(40));
  const absl::Duration took = absl::Now() - start;
  stuck.Release();
  EXPECT_EQ(stuck.write_result(), static_cast<ssize_t>(sysconf(_SC_PAGESIZE)));

  ASSERT_TRUE(request_result.ok()) << "the worker whose open request stalled was not ended "
                                      "within 40 s: "
                                   << request_result.status();
  EXPECT_EQ(request_result->kind, Kind::kLimitExceeded) << request_result->reason;
  EXPECT_THAT(request_result->reason, HasSubstr("a brokered call did not finish within 10s"));
  ASSERT_TRUE(path_call_result.ok()) << "the worker whose open() path call stalled was not "
                                        "ended within 40 s: "
                                     << path_call_result.status();
  EXPECT_EQ(path_call_result->kind, Kind::kLimitExceeded) << path_call_result->reason;
  EXPECT_THAT(path_call_result->reason,
              HasSubstr("a brokered call did not finish within 10s"));
  // Not before the deadline: the calls really were stalled, not refused.
  EXPECT_GE(took, absl::Seconds(10));
  // Idle, the loop wakes every 100 ms for the deadline scan (~ms in all); a spinning
  // loop takes a CPU's share of the 7 s, seconds even on a loaded machine.
  EXPECT_LT(cpu, absl::Milliseconds(300))
      << "the broker used " << cpu << " of CPU in 7 s while two calls were stalled: it "
      << "watched a worker whose call was in flight";
}

// One worker's call stuck in the kernel takes one pool thread, not the broker: another
// worker's requests and path calls are answered meanwhile (a pool of one thread would
// queue them behind the stuck call until it finishes, here never).
TEST(CallDeadlineTest, AnotherWorkerIsServedWhileACallIsStuck) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("locked", "contents");
  const std::string other = dir.WriteFile("other", "other");
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok()) << broker.status();
  StuckWriter stuck(file);
  ASSERT_EQ(stuck.error(), "");

  Policy writer;
  PathRule w;
  w.path = file;
  w.write = true;
  writer.paths.push_back(w);
  auto stalled = (*broker)->Spawn(writer, [file](Client& client) {
    (void)client.Open(file, O_WRONLY | O_TRUNC);
    return 11;
  });
  ASSERT_TRUE(stalled.ok()) << stalled.status();
  absl::SleepFor(absl::Milliseconds(300));  // its call is stuck by now

  Policy reader;
  reader.promises.insert(Promise::kRpath);
  PathRule r;
  r.path = other;
  r.read = true;
  reader.paths.push_back(r);
  auto innocent = (*broker)->Spawn(reader, [other](Client& client) {
    for (int i = 0; i < 20; ++i) {
      if (!client.Open(other, O_RDONLY).ok()) return 1;
      int fd = open(other.c_str(), O_RDONLY | O_CLOEXEC);  // a path call
      if (fd < 0) return 2;
      close(fd);
    }
    return 0;
  });
  ASSERT_TRUE(innocent.ok()) << innocent.status();
  auto result = (*broker)->Wait(*innocent, absl::Seconds(5));
  (*broker)->Kill(*stalled);
  stuck.Release();
  (void)(*broker)->Wait(*stalled, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << "the innocent worker's 40 calls were not answered within 5 s "
                              "while another worker's call was stuck: "
                           << result.status();
  EXPECT_EQ(result->kind, Kind::kExited) << result->ToString();
  EXPECT_EQ(result->exit_code, 0);
}

// A worker that exits while its channel call is in flight: the broker drains what it sent
// before it went (here a trap report from its other thread), although the channel is
// not watched while the call is in flight and the call never finishes.
TEST(CallDeadlineTest, ReportsQueuedDuringACallAreReadWhenTheWorkerExits) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("locked", "contents");
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok()) << broker.status();
  StuckWriter stuck(file);
  ASSERT_EQ(stuck.error(), "");

  Policy policy;
  policy.penalty = Penalty::kTrap;
  policy.promises.insert(Promise::kThread);
  PathRule rule;
  rule.path = dir.path();
  rule.write = true;
  policy.paths.push_back(rule);
  auto id = (*broker)->Spawn(policy, [file](Client& client) {
    std::thread([] {
      usleep(300000);  // the open below is in flight by now
      (void)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);  // refused: a trap report
      _exit(7);
    }).detach();
    (void)client.Open(file, O_WRONLY | O_TRUNC);  // stalls until the exit
    return 11;
  });
  ASSERT_TRUE(id.ok()) << id.status();
  auto result = (*broker)->Wait(*id, absl::Seconds(8));  // well before the call deadline
  stuck.Release();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, Kind::kExited) << result->ToString();
  EXPECT_EQ(result->exit_code, 7);
  ASSERT_EQ(result->violations.size(), 1u)
      << "the trap report sent before the exit was not read: " << result->ToString();
  EXPECT_EQ(result->violations[0].nr, SYS_socket);
}

// The broker destroyed while a channel request and a path call are stuck in the kernel,
// which finish afterwards: their pool tasks find the broker gone (BrokerLife) and drop
// their answers, touching none of its freed memory. Before, a task finishing during or
// after the destructor took the freed broker's mutex and worker map (heap corruption,
// "malloc(): unaligned tcache chunk detected" in CI; ASan, which runs this test in
// ./test.sh, reports the use after free).
TEST(CallDeadlineTest, TheBrokerGoesWhileCallsAreStuck) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("locked", "contents");
  StuckWriter stuck(file);  // outlives the broker
  ASSERT_EQ(stuck.error(), "");
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok()) << broker.status();
  const Policy policy = WritesUnder(dir.path(), /*thread=*/false);
  for (int i = 0; i < 2; ++i) {
    auto id = (*broker)->Spawn(policy, [file, i](Client& client) {
      if (i == 0) return client.Open(file, O_WRONLY | O_TRUNC).ok() ? 10 : 11;
      return open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC) >= 0 ? 20 : 21;
    });
    ASSERT_TRUE(id.ok()) << id.status();
  }
  absl::SleepFor(absl::Milliseconds(500));  // both calls are stuck by now
  broker->reset();                           // kills both workers; the calls stay stuck
  stuck.Release();                           // the calls finish, the broker is gone
  absl::SleepFor(absl::Milliseconds(300));   // their tasks run to the end meanwhile
  EXPECT_EQ(stuck.write_result(), static_cast<ssize_t>(sysconf(_SC_PAGESIZE)));
  // A broker made afterwards works.
  ExpectANewBrokerWorks(BrokerOptions());
}

// BrokerOptions::listener_in_place (README "Start-up, round 8"): the path call is served
// by the worker's own listener thread, and the deadline still ends the worker; its second
// thread's call, queued meanwhile, is not received (the thread is in the stuck call, not
// watching the listener), and the broker does not spin.
TEST(CallDeadlineTest, StalledPathCallServedInPlaceEndsItsWorker) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("locked", "contents");
  BrokerOptions options;
  options.listener_in_place = true;
  auto broker = Broker::Create(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  StuckWriter stuck(file);
  ASSERT_EQ(stuck.error(), "");
  const Policy policy = WritesUnder(dir.path(), /*thread=*/true);
  const absl::Time start = absl::Now();
  auto id = (*broker)->Spawn(policy, StalledPathCallWorker(file));
  ASSERT_TRUE(id.ok()) << id.status();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ((*broker)->InPlaceListenersForTesting(), 1);
  const absl::Duration cpu = CpuWhileSleeping(absl::Seconds(5));
  auto result = (*broker)->Wait(*id, absl::Seconds(40));
  const absl::Duration took = absl::Now() - start;
  stuck.Release();
  ASSERT_TRUE(result.ok()) << "the worker whose open() path call stalled in place was not "
                              "ended within 40 s: "
                           << result.status();
  EXPECT_EQ(result->kind, Kind::kLimitExceeded) << result->reason;
  EXPECT_THAT(result->reason, HasSubstr("a brokered call did not finish within 10s"));
  EXPECT_GE(took, absl::Seconds(10));
  EXPECT_LT(cpu, absl::Milliseconds(300)) << "the broker used " << cpu << " of CPU in 5 s";
}

// TheBrokerGoesWhileCallsAreStuck with the path call served in place: the broker is
// destroyed while its worker's listener thread is in the stuck call; released afterwards,
// that thread finishes the call and leaves without touching the broker (ASan, in
// ./test.sh, would see a use after free).
TEST(CallDeadlineTest, TheBrokerGoesWhileAPathCallIsStuckInPlace) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("locked", "contents");
  StuckWriter stuck(file);  // outlives the broker
  ASSERT_EQ(stuck.error(), "");
  BrokerOptions options;
  options.listener_in_place = true;
  auto broker = Broker::Create(options);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const Policy policy = WritesUnder(dir.path(), /*thread=*/false);
  auto id = (*broker)->Spawn(policy, [file](Client&) {
    return open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC) >= 0 ? 20 : 21;
  });
  ASSERT_TRUE(id.ok()) << id.status();
  absl::SleepFor(absl::Milliseconds(500));  // the call is stuck by now
  EXPECT_EQ((*broker)->InPlaceListenersForTesting(), 1);
  broker->reset();
  stuck.Release();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(stuck.write_result(), static_cast<ssize_t>(sysconf(_SC_PAGESIZE)));
  ExpectANewBrokerWorks(options);
}

// ---- Review h65, L1: Shutdown and a worker that no SIGKILL ends ----

// The state letter of /proc/<pid>/stat ('\0': no such process).
char ProcState(pid_t pid) {
  const std::string stat = testing::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '\0' : stat[paren + 2];
}

// A worker that no SIGKILL ends: it writes to its stdout, a file whose inode lock the
// stuck writer holds, and sleeps in the kernel uninterruptibly (state D) until the writer
// is released. Shutdown's last wait for it had no bound and held the broker's lock
// (review h65, L1): Shutdown never returned, and every other call of the broker (here
// live_workers, from another thread) waited with it. Now Shutdown waits 2 s, says on
// stderr that it left the worker, and returns; the broker answers meanwhile. Once
// released, the worker dies of the SIGKILL, and a Wait after Shutdown gets that end. A
// hang is not waited out: after 10 s the writer is released, which also ends an
// unbounded wait, and the test fails. With `no_fd_left`, every fd below RLIMIT_NOFILE is
// taken while Shutdown runs: the wait cannot duplicate the pidfds it polls and looks
// every 5 ms instead, for as long (it returned at once).
void ExpectShutdownLeavesAStuckWorker(bool no_fd_left) {
  testing::TempDir dir;
  const std::string file = dir.WriteFile("locked", "contents");
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok()) << broker.status();
  StuckWriter stuck(file);
  ASSERT_EQ(stuck.error(), "");
  const int out = open(file.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(out, 0);
  SpawnOptions options;
  options.stdout_fd = out;
  auto stuck_id = (*broker)->Spawn(
      Policy{}, [](Client&) { return write(1, "x", 1) == 1 ? 0 : 1; }, options);
  close(out);
  ASSERT_TRUE(stuck_id.ok()) << stuck_id.status();
  // An ordinary worker beside it: killed and reaped by Shutdown as before. Not with
  // `no_fd_left`: its reap closes its channel, which frees an fd.
  absl::StatusOr<WorkerId> sleeper = absl::NotFoundError("none");
  if (!no_fd_left) {
    sleeper = (*broker)->Spawn(Policy{}, [](Client&) {
      pause();
      return 0;
    });
    ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  }
  const pid_t pid = (*broker)->pid(*stuck_id);
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 1000 && ProcState(pid) != 'D'; ++i) usleep(10000);
  ASSERT_EQ(ProcState(pid), 'D') << "the worker is not asleep in its write";

  // The broker's stderr to a memfd while Shutdown runs.
  testing::StderrCapture captured;
  ASSERT_TRUE(captured.ok());
  struct rlimit saved_limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved_limit), 0);
  std::vector<int> fillers;
  if (no_fd_left) {
    struct rlimit low = saved_limit;
    low.rlim_cur = std::min<rlim_t>(saved_limit.rlim_cur, 1024);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int fd; (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
    ASSERT_EQ(errno, EMFILE);
  }
  std::atomic<bool> returned{false};
  const absl::Time start = absl::Now();
  absl::Duration took = absl::InfiniteDuration();
  std::thread shutdown([&] {
    (*broker)->Shutdown();
    took = absl::Now() - start;
    returned = true;
  });
  absl::SleepFor(absl::Milliseconds(500));
  // Another call of the broker while Shutdown waits for the worker: answered at once.
  std::atomic<bool> answered{false};
  bool returned_when_answered = true;
  size_t live = 0;
  std::thread probe([&] {
    live = (*broker)->live_workers();
    returned_when_answered = returned.load();
    answered = true;
  });
  for (int i = 0; i < 100 && !answered; ++i) usleep(10000);
  const bool answered_in_time = answered.load();
  for (int i = 0; i < 950 && !returned; ++i) usleep(10000);
  const bool returned_in_time = returned.load();
  for (int fd : fillers) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved_limit), 0);
  const bool alive_after_shutdown = ProcState(pid) == 'D';
  stuck.Release();  // the worker's write goes on, and the SIGKILL ends it
  probe.join();
  shutdown.join();
  const std::string said = captured.Finish();

  EXPECT_TRUE(answered_in_time) << "live_workers waited for Shutdown's wait (the broker's lock)";
  if (answered_in_time) {
    EXPECT_FALSE(returned_when_answered) << "Shutdown did not wait for the worker";
    EXPECT_EQ(live, 1u) << "a sleeper not reaped, or the stuck worker not counted";
  }
  ASSERT_TRUE(returned_in_time) << "Shutdown did not return within 10 s";
  EXPECT_GE(took, absl::Milliseconds(1900));
  EXPECT_LT(took, absl::Seconds(5)) << "the bound is 2 s";
  EXPECT_TRUE(alive_after_shutdown) << "the worker was not left as it was";
  EXPECT_THAT(said, HasSubstr(absl::StrCat("vow: broker: worker ", *stuck_id, " (pid ", pid,
                                           ") not dead 2000 ms after Shutdown's SIGKILL, left")));
  // A Wait after Shutdown gets each worker's real end, the left one's once it has died.
  if (sleeper.ok()) {
    EXPECT_THAT(said, Not(HasSubstr(absl::StrCat("worker ", *sleeper, " "))));
    auto sleeper_result = (*broker)->Wait(*sleeper, absl::Seconds(1));
    ASSERT_TRUE(sleeper_result.ok()) << sleeper_result.status();
    EXPECT_EQ(sleeper_result->signal, SIGKILL) << sleeper_result->ToString();
  }
  auto result = (*broker)->Wait(*stuck_id, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, Kind::kSignaled) << result->ToString();
  EXPECT_EQ(result->signal, SIGKILL) << result->ToString();
  EXPECT_EQ((*broker)->live_workers(), 0u);
  broker->reset();
}

TEST(CallDeadlineTest, ShutdownLeavesAWorkerThatNoSigkillEnds) {
  ExpectShutdownLeavesAStuckWorker(/*no_fd_left=*/false);
}

TEST(CallDeadlineTest, ShutdownWaitsForAStuckWorkerWithNoFdLeft) {
  ExpectShutdownLeavesAStuckWorker(/*no_fd_left=*/true);
}

}  // namespace
}  // namespace vow
