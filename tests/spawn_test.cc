// Spawn's shared empty root (PreparedPolicy::shared_root, MakeSharedRoot in
// worker/layers.h): the forked workers of one prepared policy share one read-only mount
// namespace, and nothing else; workers that keep the broker's identity never share one.
// The test process is the broker; it looks at its workers' namespaces in /proc.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

class SpawnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = Broker::Create();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
  }
  std::unique_ptr<Broker> broker_;
};

TEST_F(SpawnTest, WorkersOfOnePolicyShareOnlyTheRoot) {
  auto policy = broker_->Prepare(Policy{});
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto other = broker_->Prepare(Policy{});
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

}  // namespace
}  // namespace vow
