// A/B, interleaved in one process (README "Spawn, round 7"): a forked child that enters a
// fresh network + IPC namespace pair (made for it, as the broker's stock does) vs one that
// enters the same pair as every other child (a policy's shared pair); each child does
// only the two setns calls and exits. Prints, per child, the children's CPU
// (RUSAGE_CHILDREN), the time from fork to reaped, and the CPU this process spent making
// the fresh pairs (RUSAGE_THREAD of the making thread), and the whole machine's busy time
// per child from /proc/stat (kernel workers' cleanup_net included; other load too).
// Not a test. Run as root:
//   gcc -O2 -o /tmp/shared_ns_ab tools/bench_shared_ns_ab.c && chrt -f 10 /tmp/shared_ns_ab
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long Ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}
static long long Us(struct timeval a) { return a.tv_sec * 1000000LL + a.tv_usec; }
static long long ChildrenUs(void) {
  struct rusage r;
  getrusage(RUSAGE_CHILDREN, &r);
  return Us(r.ru_utime) + Us(r.ru_stime);
}
static long long ThreadUs(void) {
  struct rusage r;
  getrusage(RUSAGE_THREAD, &r);
  return Us(r.ru_utime) + Us(r.ru_stime);
}
// Busy jiffies of the whole machine (user+nice+system+irq+softirq+steal).
static long long BusyTicks(void) {
  FILE* f = fopen("/proc/stat", "r");
  long long v[10] = {0};
  if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
             &v[4], &v[5], &v[6], &v[7]) != 8) abort();
  fclose(f);
  return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

static int home_net, home_ipc;
static void MakePair(int* net, int* ipc) {
  if (unshare(CLONE_NEWNET | CLONE_NEWIPC) != 0) abort();
  *net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  *ipc = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
  if (setns(home_net, CLONE_NEWNET) != 0 || setns(home_ipc, CLONE_NEWIPC) != 0) abort();
}

static long long Child(int net, int ipc) {
  const long long t0 = Ns();
  const pid_t pid = fork();
  if (pid == 0) {
    if (syscall(SYS_setns, net, CLONE_NEWNET) != 0 || syscall(SYS_setns, ipc, CLONE_NEWIPC) != 0)
      _exit(1);
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) abort();
  return Ns() - t0;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 300;
  home_net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  home_ipc = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
  int shared_net, shared_ipc;
  MakePair(&shared_net, &shared_ipc);
  long long wall[2] = {0}, kids[2] = {0}, making = 0, busy[2] = {0};
  for (int i = 0; i < n; ++i) {
    for (int v = 0; v < 2; ++v) {
      const long long b0 = BusyTicks();
      const long long c0 = ChildrenUs();
      if (v == 0) {
        int net, ipc;
        const long long m0 = ThreadUs();
        MakePair(&net, &ipc);
        making += ThreadUs() - m0;
        wall[0] += Child(net, ipc);
        close(net);
        close(ipc);
        usleep(2000);  // lets a kernel worker tear the namespace down (counted in busy)
      } else {
        wall[1] += Child(shared_net, shared_ipc);
        usleep(2000);
      }
      kids[v] += ChildrenUs() - c0;
      busy[v] += BusyTicks() - b0;
    }
  }
  const long long tick_us = 1000000 / sysconf(_SC_CLK_TCK);
  printf("fresh pair per child: fork to reaped %lld us, child CPU %lld us, making the pair %lld us, "
         "machine busy %lld us per child\n",
         wall[0] / n / 1000, kids[0] / n, making / n, busy[0] * tick_us / n);
  printf("shared pair:          fork to reaped %lld us, child CPU %lld us, making the pair 0 us, "
         "machine busy %lld us per child\n",
         wall[1] / n / 1000, kids[1] / n, busy[1] * tick_us / n);
  return 0;
}
