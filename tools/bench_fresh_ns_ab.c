// A/B, interleaved in one process: a forked child that makes its own network and IPC
// namespaces (unshare) vs one that enters a fresh pair made ahead of time by a
// background thread of the parent (setns; the broker's NamespaceStock,
// broker/namespace_stock.h), each followed by exit and wait. Prints the mean time to the
// child's first instruction after the namespaces and to the reap. README, "Spawn".
// Not a test. Run as root:
//   gcc -O2 -pthread -o /tmp/fresh_ns_ab tools/bench_fresh_ns_ab.c && /tmp/fresh_ns_ab
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long Ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

#define kDepth 4
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stock[kDepth][2];
static int ready;

static void* Maker(void* arg) {
  (void)arg;
  int home_net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int home_ipc = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
  for (;;) {
    pthread_mutex_lock(&mu);
    while (ready == kDepth) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    if (unshare(CLONE_NEWNET | CLONE_NEWIPC) != 0) abort();
    int net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int ipc = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
    if (net < 0 || ipc < 0 || setns(home_net, CLONE_NEWNET) || setns(home_ipc, CLONE_NEWIPC)) abort();
    pthread_mutex_lock(&mu);
    stock[ready][0] = net;
    stock[ready][1] = ipc;
    ready++;
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, Maker, NULL);
  usleep(100000);
  long long* first = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  double to_first[2] = {0}, total[2] = {0};
  int count[2] = {0}, empty = 0;
  const int kRounds = 300;
  for (int i = 0; i < 2 * kRounds; i++) {
    int v = i & 1, net = -1, ipc = -1;
    if (v == 1) {
      pthread_mutex_lock(&mu);
      if (ready > 0) {
        ready--;
        net = stock[ready][0];
        ipc = stock[ready][1];
        pthread_cond_signal(&cv);
      } else {
        empty++;
      }
      pthread_mutex_unlock(&mu);
    }
    long long t0 = Ns();
    pid_t c = fork();
    if (c == 0) {
      int r = net >= 0 ? (setns(net, CLONE_NEWNET) || setns(ipc, CLONE_NEWIPC))
                       : unshare(CLONE_NEWNET | CLONE_NEWIPC);
      *first = Ns();
      _exit(r ? 1 : 0);
    }
    if (net >= 0) close(net);
    if (ipc >= 0) close(ipc);
    int s;
    waitpid(c, &s, 0);
    if (s != 0) return printf("child failed (variant %d)\n", v), 1;
    to_first[v] += *first - t0;
    total[v] += Ns() - t0;
    count[v]++;
  }
  printf("unshare in the child: first instruction %7.1f us, reaped %7.1f us\n",
         to_first[0] / count[0] / 1000, total[0] / count[0] / 1000);
  printf("setns into a stocked: first instruction %7.1f us, reaped %7.1f us (stock empty %d of %d)\n",
         to_first[1] / count[1] / 1000, total[1] / count[1] / 1000, empty, kRounds);
  return 0;
}
