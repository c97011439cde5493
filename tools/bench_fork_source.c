// Where a worker should be forked from (README, "Spawn"): interleaved in one run,
//   caller:  the caller itself forks (multithreaded: a thread blocked in epoll_wait, two
//            blocked on a condition variable, one waking every 200 us as a busy broker's
//            serving thread would; `heap_mb` of touched heap),
//   zygote:  a single-threaded copy of the caller, forked from it once after its heap
//            grew (what a WorkerPool's fork server would be: it holds the worker function
//            and the compiled program), asked over a socketpair,
//   small:   a small single-threaded server forked at start-up before the heap and the
//            threads, asked over a socketpair.
// The servers clone3(CLONE_PARENT | CLONE_PIDFD): the worker is the caller's child (its
// parent-death signal and its reaping stay the caller's), and the server sends the
// pidfd back with SCM_RIGHTS; the caller waits with waitid(P_PIDFD). Each child writes
// its first instruction's clock into a shared page and exits. Not a test.
//   gcc -O2 -pthread -o /tmp/fork_source tools/bench_fork_source.c && /tmp/fork_source [heap_mb]
#define _GNU_SOURCE
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static long long Ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long* first;  // shared page: the child's first instruction

// Serves fork requests on `sock` until EOF: one byte in, one pidfd out.
static void Server(int sock) {
  char c;
  while (read(sock, &c, 1) == 1) {
    int pidfd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_PARENT | CLONE_PIDFD;
    args.pidfd = (uintptr_t)&pidfd;
    args.exit_signal = 0;  // CLONE_PARENT: the caller is the parent; no signal needed
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid == 0) {
      *first = Ns();
      _exit(0);
    }
    if (pid < 0) _exit(2);
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof(control));
    struct iovec iov = {&c, 1};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pidfd, sizeof(int));
    if (sendmsg(sock, &msg, 0) != 1) _exit(3);
    close(pidfd);
  }
  _exit(0);
}

static int StartServer(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) abort();
  if (fork() == 0) {
    close(sv[0]);
    Server(sv[1]);
  }
  close(sv[1]);
  return sv[0];
}

// One worker through a server: to first instruction and to reaped (ns).
static void ViaServer(int sock, long long* to_first, long long* to_reaped) {
  long long t0 = Ns();
  char c = 'f';
  if (write(sock, &c, 1) != 1) abort();
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {&c, 1};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) abort();
  int pidfd;
  memcpy(&pidfd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(int));
  siginfo_t info;
  if (syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | __WALL, NULL) != 0) abort();
  *to_reaped += Ns() - t0;
  *to_first += *first - t0;
  close(pidfd);
}

static void Direct(long long* to_first, long long* to_reaped) {
  long long t0 = Ns();
  pid_t c = fork();
  if (c == 0) {
    *first = Ns();
    _exit(0);
  }
  waitpid(c, NULL, 0);
  *to_reaped += Ns() - t0;
  *to_first += *first - t0;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void* Idle(void* arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  for (;;) pthread_cond_wait(&cv, &mu);
  return NULL;
}
static void* Epoll(void* arg) {
  (void)arg;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e;
  for (;;) epoll_wait(ep, &e, 1, -1);
  return NULL;
}
static void* Ticker(void* arg) {
  (void)arg;
  for (;;) usleep(200);
  return NULL;
}

int main(int argc, char** argv) {
  const int heap_mb = argc > 1 ? atoi(argv[1]) : 8;
  first = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  const int small = StartServer();
  // The caller grows: a touched heap, then its threads.
  char* heap = malloc((size_t)heap_mb << 20);
  memset(heap, 1, (size_t)heap_mb << 20);
  const int zygote = StartServer();  // single-threaded copy with the grown heap
  pthread_t t;
  pthread_create(&t, NULL, Epoll, NULL);
  pthread_create(&t, NULL, Idle, NULL);
  pthread_create(&t, NULL, Idle, NULL);
  pthread_create(&t, NULL, Ticker, NULL);
  usleep(50000);
  long long f[3] = {0}, r[3] = {0};
  const int kRounds = 300;
  for (int i = 0; i < kRounds; i++) {
    Direct(&f[0], &r[0]);
    ViaServer(zygote, &f[1], &r[1]);
    ViaServer(small, &f[2], &r[2]);
  }
  const char* names[3] = {"caller (4 threads)", "zygote (1 thread, same heap)",
                          "small server (1 thread)"};
  printf("heap %d MiB, %d rounds interleaved; means in us\n", heap_mb, kRounds);
  for (int v = 0; v < 3; v++) {
    printf("  %-30s first instruction %7.1f   reaped %7.1f\n", names[v],
           f[v] / 1000.0 / kRounds, r[v] / 1000.0 / kRounds);
  }
  return 0;
}
