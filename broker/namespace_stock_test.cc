// NamespaceStock: fresh namespaces, each handed out once, made by a thread that goes back
// home; fail closed (empty) before the first one is made.
#include "broker/namespace_stock.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace vow {
namespace {

ino_t Inode(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

ino_t InodeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(NamespaceStockTest, EachPairIsFreshAndHandedOutOnce) {
  const ino_t home_net = InodeOf("/proc/self/ns/net");
  const ino_t home_ipc = InodeOf("/proc/self/ns/ipc");
  ASSERT_NE(home_net, 0u);
  NamespaceStock stock(3);
  // Nothing made yet: the first spawn makes its own.
  NamespaceStock::Fresh first = stock.Take();
  EXPECT_FALSE(first.net.valid());
  EXPECT_FALSE(first.ipc.valid());
  stock.Done();
  ASSERT_EQ(stock.Ready(10000), 3u) << stock.failure();
  std::set<ino_t> seen;
  for (int i = 0; i < 9; ++i) {
    ASSERT_EQ(stock.Ready(10000), 3u) << stock.failure();
    NamespaceStock::Fresh fresh = stock.Take();
    ASSERT_TRUE(fresh.net.valid());
    ASSERT_TRUE(fresh.ipc.valid());
    // The taken pair is out of the stock, and no replacement is made before Done().
    EXPECT_EQ(stock.Ready(20), 2u);
    stock.Done();
    const ino_t net = Inode(fresh.net.get());
    const ino_t ipc = Inode(fresh.ipc.get());
    EXPECT_NE(net, home_net);
    EXPECT_NE(ipc, home_ipc);
    // Held open here, so an inode number cannot be freed and given again meanwhile.
    EXPECT_TRUE(seen.insert(net).second) << "network namespace handed out twice";
    EXPECT_TRUE(seen.insert(ipc).second) << "IPC namespace handed out twice";
    (void)fresh.net.release();  // kept open until the test ends (closed with the process)
    (void)fresh.ipc.release();
  }
}

// The maker thread goes back into the broker's namespaces after each one: no thread of
// the broker stays in a worker's namespace.
TEST(NamespaceStockTest, TheMakerThreadGoesBackHome) {
  const ino_t home_net = InodeOf("/proc/self/ns/net");
  const ino_t home_ipc = InodeOf("/proc/self/ns/ipc");
  NamespaceStock stock(2);
  (void)stock.Take();
  stock.Done();
  ASSERT_EQ(stock.Ready(10000), 2u) << stock.failure();
  DIR* tasks = opendir("/proc/self/task");
  ASSERT_NE(tasks, nullptr);
  int threads = 0;
  while (struct dirent* e = readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    ++threads;
    const std::string ns = std::string("/proc/self/task/") + e->d_name + "/ns/";
    EXPECT_EQ(InodeOf(ns + "net"), home_net) << "thread " << e->d_name;
    EXPECT_EQ(InodeOf(ns + "ipc"), home_ipc) << "thread " << e->d_name;
  }
  closedir(tasks);
  EXPECT_GE(threads, 2);  // the maker is among them
}

// Once mode: Start() makes the pairs on the calling thread (no thread), which is back in
// its own namespaces after; each pair is handed out once and never replaced.
TEST(NamespaceStockTest, OnceMakesItsPairsOnTheCallerAndNoMore) {
  const ino_t home_net = InodeOf("/proc/thread-self/ns/net");
  const ino_t home_ipc = InodeOf("/proc/thread-self/ns/ipc");
  NamespaceStock stock(2, /*once=*/true);
  ASSERT_TRUE(stock.Start().ok());
  EXPECT_EQ(stock.Ready(), 2u) << stock.failure();
  EXPECT_EQ(InodeOf("/proc/thread-self/ns/net"), home_net);
  EXPECT_EQ(InodeOf("/proc/thread-self/ns/ipc"), home_ipc);
  std::set<ino_t> seen;
  for (int i = 0; i < 2; ++i) {
    NamespaceStock::Fresh fresh = stock.Take();
    stock.Done();
    ASSERT_TRUE(fresh.net.valid());
    ASSERT_TRUE(fresh.ipc.valid());
    EXPECT_NE(Inode(fresh.net.get()), home_net);
    EXPECT_NE(Inode(fresh.ipc.get()), home_ipc);
    EXPECT_TRUE(seen.insert(Inode(fresh.net.get())).second);
    (void)fresh.net.release();  // kept open: an inode number cannot be given again meanwhile
    (void)fresh.ipc.release();
  }
  // No replacement, ever.
  EXPECT_EQ(stock.Ready(100), 0u);
  NamespaceStock::Fresh none = stock.Take();
  stock.Done();
  EXPECT_FALSE(none.net.valid());
}

// Once mode makes pairs only in Start(): a Take() without it starts no maker thread.
TEST(NamespaceStockTest, OnceWithoutStartMakesNothing) {
  NamespaceStock stock(1, /*once=*/true);
  NamespaceStock::Fresh none = stock.Take();
  stock.Done();
  EXPECT_FALSE(none.net.valid());
  EXPECT_EQ(stock.Ready(200), 0u) << "a pair was made without Start()";
}

}  // namespace
}  // namespace vow
