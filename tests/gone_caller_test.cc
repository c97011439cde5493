// A path call whose calling thread is gone by the time the broker has read its path is
// not carried out (broker/path_handler.cc: SECCOMP_IOCTL_NOTIF_ID_VALID after the read).
// Otherwise the broker would act on a path it read from a dead thread, or, once the tid
// is reused, from another process's memory: a mkdir, unlink or O_CREAT nobody asked for.
//
// The race is made deterministic with userfaultfd: the test process registers one page
// with UFFD_FEATURE_EVENT_FORK, so the forked worker inherits the registration under a
// context the test receives. The worker calls mkdir() with its path on that page; the
// broker's process_vm_readv of the path faults and waits for the test. The test kills
// the worker, and only then fills the page with the path: the broker reads a valid path
// of a caller that no longer exists, and must refuse it ("the calling thread is gone")
// rather than create the directory.
//
// The test process is the broker; nothing here installs a sandbox on it.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/broker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "worker/client.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

namespace vow {
namespace {

using ::testing::HasSubstr;
using Kind = WorkerResult::Kind;

// Waits up to 10 s for one message on `uffd`.
bool ReadUffd(int uffd, struct uffd_msg* msg) {
  struct pollfd p = {uffd, POLLIN, 0};
  return poll(&p, 1, 10000) == 1 && read(uffd, msg, sizeof(*msg)) == sizeof(*msg);
}

TEST(GoneCallerTest, PathReadAfterTheCallerDiedIsNotCarriedOut) {
  testing::TempDir dir;
  const std::string target = dir.path() + "/made";
  auto broker = Broker::Create();
  ASSERT_TRUE(broker.ok()) << broker.status();
  // Prepared before the page is registered: preparing forks probes of the kernel's
  // layers, and only the worker's fork may be reported to the page's context.
  Policy policy;
  policy.promises.insert(Promise::kCpath);
  PathRule rule;
  rule.path = dir.path();
  rule.read = true;
  rule.create = true;
  policy.paths.push_back(rule);
  auto prepared = (*broker)->Prepare(policy);
  ASSERT_TRUE(prepared.ok()) << prepared.status();

  // The page, registered in this process (which never touches it) and inherited by the
  // worker's fork under a new context.
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  ASSERT_GE(dev, 0) << "open /dev/userfaultfd: " << strerror(errno);
  int uffd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
  close(dev);
  ASSERT_GE(uffd, 0) << "USERFAULTFD_IOC_NEW: " << strerror(errno);
  struct uffdio_api api = {};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_EVENT_FORK;
  ASSERT_EQ(ioctl(uffd, UFFDIO_API, &api), 0) << "UFFDIO_API: " << strerror(errno);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* path_page = mmap(nullptr, page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(path_page, MAP_FAILED);
  struct uffdio_register reg = {};
  reg.range.start = reinterpret_cast<uint64_t>(path_page);
  reg.range.len = page;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  ASSERT_EQ(ioctl(uffd, UFFDIO_REGISTER, &reg), 0) << "UFFDIO_REGISTER: " << strerror(errno);

  // The fork waits until its event is read: a thread reads it while Spawn forks.
  std::atomic<int> child_uffd{-1};
  std::thread fork_events([&] {
    struct uffd_msg msg;
    if (ReadUffd(uffd, &msg) && msg.event == UFFD_EVENT_FORK) {
      child_uffd = static_cast<int>(msg.arg.fork.ufd);
    }
  });

  const char* path_arg = static_cast<const char*>(path_page);
  auto id = (*broker)->Spawn(*prepared, [path_arg](Client&) {
    return mkdir(path_arg, 0700) == 0 ? 10 : 11;  // the path lives on the missing page
  });
  fork_events.join();
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_GE(child_uffd.load(), 0) << "no UFFD_EVENT_FORK for the worker's fork";

  // The broker reads the path: its read faults on the worker's copy of the page.
  struct uffd_msg fault;
  ASSERT_TRUE(ReadUffd(child_uffd, &fault)) << "the broker never read the path";
  ASSERT_EQ(fault.event, UFFD_EVENT_PAGEFAULT);

  // The caller goes away while the broker waits for the page.
  (*broker)->Kill(*id);
  auto result = (*broker)->Wait(*id, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->kind, Kind::kSignaled);

  // Now the path arrives: a valid one, under a `c` rule.
  alignas(4096) static char contents[4096] = {};
  ASSERT_LT(target.size(), sizeof(contents));
  memcpy(contents, target.c_str(), target.size() + 1);
  struct uffdio_copy copy = {};
  copy.dst = reinterpret_cast<uint64_t>(path_page);
  copy.src = reinterpret_cast<uint64_t>(contents);
  copy.len = page;
  ASSERT_EQ(ioctl(child_uffd, UFFDIO_COPY, &copy), 0) << "UFFDIO_COPY: " << strerror(errno);

  // The broker's verdict on that call, from the audit log.
  AuditEntry entry;
  bool found = false;
  for (absl::Time end = absl::Now() + absl::Seconds(10); !found && absl::Now() < end;) {
    for (const AuditEntry& e : (*broker)->audit().Entries()) {
      if (e.worker_id == *id && absl::StrContains(e.request, "mkdir")) {
        entry = e;
        found = true;
      }
    }
    if (!found) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(found) << "no audit entry for the worker's mkdir within 10 s";
  EXPECT_FALSE(entry.allowed) << entry.request << ": " << entry.reason;
  EXPECT_THAT(entry.reason, HasSubstr("the calling thread is gone"));
  struct stat st;
  EXPECT_NE(stat(target.c_str(), &st), 0)
      << target << " was created for a caller that was already gone";

  close(child_uffd);
  close(uffd);
  munmap(path_page, page);
}

}  // namespace
}  // namespace vow
