/* See cases.h. Every check prints what went wrong on stderr before the worker exits with
 * a VOW_CASE_* code; a passing case prints nothing there (the harness checks stderr of
 * the cases that are meant to write to it). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#undef NDEBUG /* the assert case needs assert(), whatever the build mode */
#include "tests/conformance/cases.h"

#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <wchar.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <iconv.h>
#include <sys/rseq.h>
#endif

#define CHANNEL_FD 3         /* kWorkerChannelFd */
#define X32_SYSCALL_BIT 0x40000000L
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#define STATX_INO_MASK 0x100u /* STATX_INO */
#define STATX_INO_OFFSET 32   /* struct statx: stx_ino (__u64) at byte 32 */
#define STATX_MODE_OFFSET 28  /* stx_mode (__u16) */

static const char *g_case = "?";

static void report(const char *what, int line, int err) {
  fprintf(stderr, "conformance case %s, line %d: %s (errno %d: %s)\n", g_case, line, what,
          err, strerror(err));
  fflush(stderr);
}

#define CHECK(cond)                                   \
  do {                                                \
    if (!(cond)) {                                    \
      report("CHECK(" #cond ") failed", __LINE__, errno); \
      return VOW_CASE_WRONG;                          \
    }                                                 \
  } while (0)

/* ---- stdio on whatever the harness gave as fd 0/1 ------------------------------- */

static int run_printf(int argc, char **argv) {
  (void)argc, (void)argv;
  CHECK(printf("printf %s %d\n", "ok", 42) == 13);
  CHECK(fflush(stdout) == 0);
  return VOW_CASE_OK;
}

static int run_fputs(int argc, char **argv) {
  (void)argc, (void)argv;
  CHECK(fputs("fputs ok\n", stdout) >= 0);
  CHECK(fflush(stdout) == 0);
  return VOW_CASE_OK;
}

static int run_fgets(int argc, char **argv) {
  (void)argc, (void)argv;
  char line[64];
  CHECK(fgets(line, sizeof(line), stdin) != NULL);
  CHECK(strcmp(line, "fgets input\n") == 0);
  CHECK(fputs("got: ", stdout) >= 0 && fputs(line, stdout) >= 0);
  CHECK(fflush(stdout) == 0);
  return VOW_CASE_OK;
}

/* argv[2]: "1" if fds 0 and 1 are a terminal. */
static int run_isatty(int argc, char **argv) {
  if (argc < 3) return VOW_CASE_USAGE;
  const int want = atoi(argv[2]);
  for (int fd = 0; fd <= 1; ++fd) {
    errno = 0;
    const int got = isatty(fd);
    CHECK(got == want);
    if (!want) CHECK(errno == ENOTTY || errno == EINVAL);
  }
  CHECK(isatty(CHANNEL_FD) == 0);
  return VOW_CASE_OK;
}

/* The stat family on open fds (0: a file; 3: the channel socket), through every syscall
 * a libc may pick. */
static int run_fstat(int argc, char **argv) {
  (void)argc, (void)argv;
  struct stat by_libc, by_fstat, by_fstatat;
  unsigned char stx[256];
  for (int fd = 0; fd <= CHANNEL_FD; fd += CHANNEL_FD) {
    CHECK(fstat(fd, &by_libc) == 0);
    CHECK(syscall(SYS_fstat, fd, &by_fstat) == 0);
    CHECK(syscall(SYS_newfstatat, fd, "", &by_fstatat, AT_EMPTY_PATH) == 0);
    memset(stx, 0, sizeof(stx));
    CHECK(syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_INO_MASK, stx) == 0);
    uint64_t stx_ino;
    uint16_t stx_mode;
    memcpy(&stx_ino, stx + STATX_INO_OFFSET, sizeof(stx_ino));
    memcpy(&stx_mode, stx + STATX_MODE_OFFSET, sizeof(stx_mode));
    CHECK(by_libc.st_ino == by_fstat.st_ino && by_libc.st_ino == by_fstatat.st_ino &&
          by_libc.st_ino == stx_ino);
    CHECK((by_libc.st_mode & S_IFMT) == (stx_mode & S_IFMT));
    CHECK(fd == 0 ? S_ISREG(by_libc.st_mode) : S_ISSOCK(by_libc.st_mode));
  }
  /* A descriptor that is not open: EBADF, not a kill. */
  CHECK(fstat(999, &by_libc) == -1 && errno == EBADF);
  return VOW_CASE_OK;
}

/* A path, without rpath: the worker must not get past this. */
static int run_stat_path(int argc, char **argv) {
  struct stat st;
  const char *path = argc >= 3 ? argv[2] : "/";
  int rc = stat(path, &st);
  fprintf(stderr, "stat(%s) returned %d (errno %d)\n", path, rc, rc == 0 ? 0 : errno);
  return VOW_CASE_RAN;
}

static int run_statx_path(int argc, char **argv) {
  unsigned char stx[256];
  const char *path = argc >= 3 ? argv[2] : "/";
  long rc = syscall(SYS_statx, AT_FDCWD, path, 0, STATX_INO_MASK, stx);
  fprintf(stderr, "statx(%s) returned %ld (errno %d)\n", path, rc, rc == 0 ? 0 : errno);
  return VOW_CASE_RAN;
}

/* ---- time and waiting ----------------------------------------------------------- */

static double now_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_sleep(int argc, char **argv) {
  (void)argc, (void)argv;
  double start = now_monotonic();
  CHECK(sleep(1) == 0);
  struct timespec ts = {0, 2000000};
  CHECK(nanosleep(&ts, NULL) == 0);
  CHECK(usleep(2000) == 0);
  CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == 0);
  CHECK(now_monotonic() - start >= 1.006);
  return VOW_CASE_OK;
}

/* poll/select/epoll: on the channel (fd 3), which is writable; whether it is readable
 * depends on the lock-down: argv[2] is "queued" when the broker's HelloReply is still
 * waiting there (vow::LockDownExecWorker() no longer reads it; the Client skips it at
 * its first call), "empty" when the lock-down consumed it (the C lock-down). The timeout
 * path is checked on a pipe of the worker's own. */
static int channel_expectation(int argc, char **argv) {
  if (argc < 3) return -1;
  if (strcmp(argv[2], "queued") == 0) return 1;
  if (strcmp(argv[2], "empty") == 0) return 0;
  return -1;
}

/* How long to wait for the channel to become readable: the HelloReply may still be on
 * its way when the case starts, so "queued" waits up to 2 s; "empty" checks 10 ms. */
static int channel_wait_ms(int readable) { return readable ? 2000 : 10; }

static int check_queued(int want_readable) {
  char peek[256];
  ssize_t queued = recv(CHANNEL_FD, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT);
  if (want_readable) {
    /* One Response{id 0, hello{version 1}}: 8 bytes of table + 5 words. */
    CHECK(queued == 48);
  } else {
    CHECK(queued == -1 && errno == EAGAIN);
  }
  return VOW_CASE_OK;
}

static int run_poll(int argc, char **argv) {
  const int readable = channel_expectation(argc, argv);
  if (readable < 0) return VOW_CASE_USAGE;
  struct pollfd p = {CHANNEL_FD, POLLOUT, 0};
  CHECK(poll(&p, 1, 1000) == 1 && (p.revents & POLLOUT));
  p.events = POLLIN;
  p.revents = 0;
  CHECK(poll(&p, 1, channel_wait_ms(readable)) == readable && (readable ? (p.revents & POLLIN) != 0 : p.revents == 0));
  if (check_queued(readable) != VOW_CASE_OK) return VOW_CASE_WRONG;
  int fds[2];
  CHECK(pipe2(fds, O_CLOEXEC) == 0);
  struct pollfd q = {fds[0], POLLIN, 0};
  CHECK(poll(&q, 1, 10) == 0);
  CHECK(write(fds[1], "x", 1) == 1);
  CHECK(poll(&q, 1, 1000) == 1 && (q.revents & POLLIN));
  CHECK(close(fds[0]) == 0 && close(fds[1]) == 0);
  return VOW_CASE_OK;
}

static int run_select(int argc, char **argv) {
  const int readable = channel_expectation(argc, argv);
  if (readable < 0) return VOW_CASE_USAGE;
  fd_set r, w;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_SET(CHANNEL_FD, &w);
  struct timeval tv = {1, 0};
  CHECK(select(CHANNEL_FD + 1, NULL, &w, NULL, &tv) == 1 && FD_ISSET(CHANNEL_FD, &w));
  FD_SET(CHANNEL_FD, &r);
  tv.tv_sec = channel_wait_ms(readable) / 1000;
  tv.tv_usec = (channel_wait_ms(readable) % 1000) * 1000;
  CHECK(select(CHANNEL_FD + 1, &r, NULL, NULL, &tv) == readable);
  if (check_queued(readable) != VOW_CASE_OK) return VOW_CASE_WRONG;
  int fds[2];
  CHECK(pipe2(fds, O_CLOEXEC) == 0 && fds[0] < FD_SETSIZE);
  FD_ZERO(&r);
  FD_SET(fds[0], &r);
  tv.tv_sec = 0;
  tv.tv_usec = 10000;
  CHECK(select(fds[0] + 1, &r, NULL, NULL, &tv) == 0);
  CHECK(write(fds[1], "x", 1) == 1);
  FD_SET(fds[0], &r);
  tv.tv_sec = 1;
  CHECK(select(fds[0] + 1, &r, NULL, NULL, &tv) == 1 && FD_ISSET(fds[0], &r));
  CHECK(close(fds[0]) == 0 && close(fds[1]) == 0);
  return VOW_CASE_OK;
}

static int run_epoll(int argc, char **argv) {
  const int readable = channel_expectation(argc, argv);
  if (readable < 0) return VOW_CASE_USAGE;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  CHECK(ep >= 0);
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLOUT;
  ev.data.fd = CHANNEL_FD;
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, CHANNEL_FD, &ev) == 0);
  struct epoll_event out[2];
  CHECK(epoll_wait(ep, out, 2, 1000) == 1 && out[0].data.fd == CHANNEL_FD &&
        (out[0].events & EPOLLOUT));
  ev.events = EPOLLIN;
  CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, CHANNEL_FD, &ev) == 0);
  CHECK(epoll_wait(ep, out, 2, channel_wait_ms(readable)) == readable);
  if (check_queued(readable) != VOW_CASE_OK) return VOW_CASE_WRONG;
  int fds[2];
  CHECK(pipe2(fds, O_CLOEXEC) == 0);
  CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, CHANNEL_FD, NULL) == 0);
  ev.events = EPOLLIN;
  ev.data.fd = fds[0];
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev) == 0);
  CHECK(epoll_wait(ep, out, 2, 10) == 0);
  CHECK(write(fds[1], "x", 1) == 1);
  CHECK(epoll_wait(ep, out, 2, 1000) == 1 && out[0].data.fd == fds[0]);
  CHECK(close(ep) == 0 && close(fds[0]) == 0 && close(fds[1]) == 0);
  return VOW_CASE_OK;
}

/* ---- memory, sorting, randomness ------------------------------------------------ */

static int run_malloc(int argc, char **argv) {
  (void)argc, (void)argv;
  /* Sizes from a few bytes to 64 MiB: below and above the mmap threshold (128 KiB in
   * glibc by default; musl's mallocng maps large chunks itself). */
  enum { kCount = 28 };
  unsigned char *blocks[kCount];
  size_t sizes[kCount];
  for (int i = 0; i < kCount; ++i) {
    sizes[i] = ((size_t)1 << i) + (size_t)(i % 3) - 1 + 1;
    blocks[i] = malloc(sizes[i]);
    CHECK(blocks[i] != NULL);
    memset(blocks[i], i + 1, sizes[i]);
  }
  for (int i = 0; i < kCount; i += 2) free(blocks[i]);
  for (int i = 1; i < kCount; i += 2) {
    CHECK(blocks[i][0] == i + 1 && blocks[i][sizes[i] - 1] == i + 1);
    free(blocks[i]);
  }
  /* realloc up through the threshold to 64 MiB and back down, keeping the contents. */
  size_t size = 16;
  unsigned char *p = malloc(size);
  CHECK(p != NULL);
  memset(p, 0xab, size);
  while (size < ((size_t)64 << 20)) {
    size_t next = size * 2 + 8;
    p = realloc(p, next);
    CHECK(p != NULL);
    CHECK(p[0] == 0xab && p[size - 1] == 0xab);
    memset(p + size, 0xab, next - size);
    size = next;
  }
  while (size > 16) {
    size /= 3;
    p = realloc(p, size);
    CHECK(p != NULL && p[0] == 0xab && p[size - 1] == 0xab);
  }
  free(p);
  void *z = calloc(1 << 20, 4);
  CHECK(z != NULL && ((unsigned char *)z)[(4 << 20) - 1] == 0);
  free(z);
  return VOW_CASE_OK;
}

static int compare_ints(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* argv[2]: the array size in bytes. */
static int run_qsort(int argc, char **argv) {
  if (argc < 3) return VOW_CASE_USAGE;
  size_t n = strtoull(argv[2], NULL, 10) / sizeof(int);
  CHECK(n > 1);
  int *a = malloc(n * sizeof(int));
  CHECK(a != NULL);
  uint32_t x = 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    a[i] = (int)(x >> 1);
  }
  qsort(a, n, sizeof(int), compare_ints);
  for (size_t i = 1; i < n; ++i) CHECK(a[i - 1] <= a[i]);
  free(a);
  return VOW_CASE_OK;
}

static int all_zero(const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != 0) return 0;
  }
  return 1;
}

static int run_getrandom(int argc, char **argv) {
  (void)argc, (void)argv;
  unsigned char buf[64];
  memset(buf, 0, sizeof(buf));
  CHECK(getrandom(buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) && !all_zero(buf, sizeof(buf)));
  memset(buf, 0, sizeof(buf));
  CHECK(getrandom(buf, sizeof(buf), GRND_NONBLOCK) == (ssize_t)sizeof(buf) &&
        !all_zero(buf, sizeof(buf)));
  return VOW_CASE_OK;
}

static int run_arc4random(int argc, char **argv) {
  (void)argc, (void)argv;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 36))
  unsigned char buf[64];
  memset(buf, 0, sizeof(buf));
  arc4random_buf(buf, sizeof(buf));
  CHECK(!all_zero(buf, sizeof(buf)));
  uint32_t a = arc4random(), b = arc4random(), c = arc4random();
  CHECK(!(a == b && b == c));
  for (int i = 0; i < 1000; ++i) CHECK(arc4random_uniform(10) < 10);
  return VOW_CASE_OK;
#else
  fprintf(stderr, "arc4random: not in this libc\n");
  return VOW_CASE_UNAVAILABLE;
#endif
}

/* localtime/strftime. The harness runs it with TZ=UTC (and, for glibc, the worker warmed
 * the zone before lock-down unless the case is localtime_cold); see README.md. */
static int run_localtime(int argc, char **argv) {
  (void)argc, (void)argv;
  time_t t = 365 * 86400; /* 1971-01-01 00:00:00 UTC */
  char text[64];
  for (int round = 0; round < 2; ++round) {
    struct tm *tm = localtime(&t);
    CHECK(tm != NULL);
    CHECK(strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S %Z", tm) > 0);
    if (strcmp(text, "1971-01-01 00:00:00 UTC") != 0) {
      fprintf(stderr, "strftime gave \"%s\"\n", text);
      return VOW_CASE_WRONG;
    }
  }
  time_t now = time(NULL);
  CHECK(now > 1600000000);
  struct tm mine;
  CHECK(localtime_r(&now, &mine) != NULL && mine.tm_year >= 120);
  CHECK(gmtime_r(&now, &mine) != NULL);
  return VOW_CASE_OK;
}

/* ---- threads -------------------------------------------------------------------- */

struct sum_job {
  uint64_t from, to, sum;
};

static void *sum_thread(void *arg) {
  struct sum_job *job = arg;
  for (uint64_t i = job->from; i < job->to; ++i) job->sum += i;
  return job;
}

/* argv[2] (glibc only): "rseq_on" or "rseq_off", what __rseq_size must say. */
static int run_pthread(int argc, char **argv) {
  enum { kThreads = 4 };
  pthread_t threads[kThreads];
  struct sum_job jobs[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    jobs[i].from = (uint64_t)i * 1000000;
    jobs[i].to = (uint64_t)(i + 1) * 1000000;
    jobs[i].sum = 0;
    int rc = pthread_create(&threads[i], NULL, sum_thread, &jobs[i]);
    if (rc != 0) {
      report("pthread_create failed", __LINE__, rc);
      return VOW_CASE_WRONG;
    }
  }
  uint64_t total = 0;
  for (int i = 0; i < kThreads; ++i) {
    void *ret = NULL;
    CHECK(pthread_join(threads[i], &ret) == 0 && ret == &jobs[i]);
    total += jobs[i].sum;
  }
  const uint64_t n = (uint64_t)kThreads * 1000000;
  CHECK(total == n * (n - 1) / 2);
#ifdef __GLIBC__
  if (argc >= 3) {
    const int want_on = strcmp(argv[2], "rseq_on") == 0;
    if ((__rseq_size != 0) != want_on) {
      fprintf(stderr, "__rseq_size is %u, want %s\n", __rseq_size, argv[2]);
      return VOW_CASE_WRONG;
    }
  }
#else
  (void)argc, (void)argv;
#endif
  return VOW_CASE_OK;
}

/* Without the `thread` promise: pthread_create must not succeed. */
static int run_pthread_refused(int argc, char **argv) {
  (void)argc, (void)argv;
  pthread_t t;
  struct sum_job job = {0, 10, 0};
  int rc = pthread_create(&t, NULL, sum_thread, &job);
  fprintf(stderr, "pthread_create returned %d\n", rc);
  return rc == 0 ? VOW_CASE_RAN : VOW_CASE_WRONG;
}

/* ---- errors and ends ------------------------------------------------------------ */

static int run_perror(int argc, char **argv) {
  (void)argc, (void)argv;
  errno = ENOENT;
  perror("conformance perror");
  CHECK(strcmp(strerror(ENOENT), "No such file or directory") == 0);
  CHECK(strcmp(strerror(EPERM), "Operation not permitted") == 0);
  CHECK(strerror(123456) != NULL);
  return VOW_CASE_OK;
}

static int run_assert(int argc, char **argv) {
  (void)argv;
  assert(argc == 12345);
  return VOW_CASE_RAN;
}

static int run_abort(int argc, char **argv) {
  (void)argc, (void)argv;
  abort();
}

static void *abort_thread(void *arg) {
  (void)arg;
  abort();
}

static int run_abort_in_thread(int argc, char **argv) {
  (void)argc, (void)argv;
  pthread_t t;
  int rc = pthread_create(&t, NULL, abort_thread, NULL);
  if (rc != 0) {
    report("pthread_create failed", __LINE__, rc);
    return VOW_CASE_WRONG;
  }
  pthread_join(t, NULL);
  return VOW_CASE_RAN;
}

/* ---- paths (rpath; cpath + wpath) ----------------------------------------------- */

/* argv[2]: a file, argv[3]: its contents. */
static int run_fopen_read(int argc, char **argv) {
  if (argc < 4) return VOW_CASE_USAGE;
  FILE *f = fopen(argv[2], "r");
  CHECK(f != NULL);
  char buf[256];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  CHECK(strcmp(buf, argv[3]) == 0);
  CHECK(fclose(f) == 0);
  CHECK(fopen("/nonexistent-vow-conformance/x", "r") == NULL && errno == ENOENT);
  return VOW_CASE_OK;
}

/* argv[2]: a directory, argv[3..]: names it must list. */
static int run_opendir(int argc, char **argv) {
  if (argc < 4) return VOW_CASE_USAGE;
  DIR *d = opendir(argv[2]);
  CHECK(d != NULL);
  int found = 0, entries = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    ++entries;
    for (int i = 3; i < argc; ++i) found += strcmp(e->d_name, argv[i]) == 0;
  }
  CHECK(errno == 0);
  CHECK(found == argc - 3 && entries == argc - 3 + 2 /* . and .. */);
  CHECK(closedir(d) == 0);
  return VOW_CASE_OK;
}

/* argv[2]: a readable file. */
static int run_access(int argc, char **argv) {
  if (argc < 3) return VOW_CASE_USAGE;
  CHECK(access(argv[2], R_OK) == 0);
  CHECK(access(argv[2], F_OK) == 0);
  CHECK(access("/nonexistent-vow-conformance", F_OK) == -1 && errno == ENOENT);
  struct stat st;
  CHECK(stat(argv[2], &st) == 0 && S_ISREG(st.st_mode));
  return VOW_CASE_OK;
}

/* argv[2]: an empty directory; it is empty again afterwards. */
static int run_files(int argc, char **argv) {
  if (argc < 3) return VOW_CASE_USAGE;
  char a[512], b[512];
  snprintf(a, sizeof(a), "%s/created", argv[2]);
  snprintf(b, sizeof(b), "%s/renamed", argv[2]);
  int fd = open(a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  CHECK(write(fd, "data", 4) == 4);
  CHECK(close(fd) == 0);
  FILE *f = fopen(a, "a"); /* O_WRONLY|O_CREAT|O_APPEND */
  CHECK(f != NULL && fputs("+more", f) >= 0 && fclose(f) == 0);
  CHECK(rename(a, b) == 0);
  fd = open(b, O_RDWR | O_CLOEXEC); /* rpath+wpath: an existing file, no O_CREAT */
  CHECK(fd >= 0);
  char buf[16] = {0};
  CHECK(read(fd, buf, sizeof(buf)) == 9 && memcmp(buf, "data+more", 9) == 0);
  CHECK(close(fd) == 0);
  CHECK(unlink(b) == 0);
  CHECK(open(b, O_RDWR | O_CLOEXEC) == -1 && errno == ENOENT);
  return VOW_CASE_OK;
}

/* ---- sockets (inet; unix) ------------------------------------------------------- */

static int ping_pong(int fd) {
  CHECK(write(fd, "ping", 4) == 4);
  char buf[8] = {0};
  size_t got = 0;
  while (got < 4) {
    ssize_t n = read(fd, buf + got, 4 - got);
    CHECK(n > 0);
    got += (size_t)n;
  }
  CHECK(memcmp(buf, "pong", 4) == 0);
  CHECK(close(fd) == 0);
  return VOW_CASE_OK;
}

/* argv[2]: a port on 127.0.0.1 where the harness answers "ping" with "pong". */
static int run_tcp(int argc, char **argv) {
  if (argc < 3) return VOW_CASE_USAGE;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(argv[2]));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
  struct sockaddr_in local;
  socklen_t len = sizeof(local);
  CHECK(getsockname(fd, (struct sockaddr *)&local, &len) == 0 && local.sin_family == AF_INET);
  return ping_pong(fd);
}

/* argv[2]: the path of a listening AF_UNIX stream socket, same exchange. */
static int run_unix(int argc, char **argv) {
  if (argc < 3) return VOW_CASE_USAGE;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  CHECK(strlen(argv[2]) < sizeof(addr.sun_path));
  strcpy(addr.sun_path, argv[2]);
  CHECK(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
  return ping_pong(fd);
}

/* ---- denied acts ---------------------------------------------------------------- */
/* Each makes one call that no promise allows. argv[2] names the errno it must fail with
 * when the penalty lets the worker live ("EPERM", or "ENOSYS" for the ENOSYS list); under
 * penalty kill the worker never returns from the call. */

static int want_errno(int argc, char **argv) {
  if (argc < 3) return -1;
  if (strcmp(argv[2], "EPERM") == 0) return EPERM;
  if (strcmp(argv[2], "ENOSYS") == 0) return ENOSYS;
  return -1;
}

static int refused(const char *what, long rc, int argc, char **argv) {
  const int want = want_errno(argc, argv);
  if (want < 0) return VOW_CASE_USAGE;
  if (rc == -1 && errno == want) return VOW_CASE_OK;
  if (rc == -1) {
    fprintf(stderr, "%s failed with errno %d (%s), want %s\n", what, errno, strerror(errno),
            argv[2]);
    return VOW_CASE_WRONG;
  }
  fprintf(stderr, "%s RAN: returned %ld\n", what, rc);
  return VOW_CASE_RAN;
}

static int run_tiocsti(int argc, char **argv) {
  char c = '!';
  return refused("ioctl(0, TIOCSTI)", ioctl(0, TIOCSTI, &c), argc, argv);
}

static int run_tiocsti_high(int argc, char **argv) {
  /* The kernel's ioctl takes an unsigned int command: the high bits are dropped, so
   * this is TIOCSTI. (musl's ioctl() takes an int: go through syscall().) */
  char c = '!';
  long cmd = (long)((1UL << 32) | TIOCSTI);
  return refused("ioctl(0, 1<<32 | TIOCSTI)", syscall(SYS_ioctl, 0, cmd, &c), argc, argv);
}

static int run_io_uring_setup(int argc, char **argv) {
  unsigned char params[120]; /* struct io_uring_params */
  memset(params, 0, sizeof(params));
  long rc = syscall(SYS_io_uring_setup, 4, params);
  int r = refused("io_uring_setup", rc, argc, argv);
  if (rc >= 0) close((int)rc);
  return r;
}

static int run_ptrace(int argc, char **argv) {
  return refused("ptrace(PTRACE_TRACEME)", syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0),
                 argc, argv);
}

static int run_process_vm_writev(int argc, char **argv) {
  return refused("process_vm_writev",
                 syscall(SYS_process_vm_writev, getpid(), NULL, 0, NULL, 0, 0), argc, argv);
}

static int run_bpf(int argc, char **argv) {
  return refused("bpf(BPF_MAP_CREATE, NULL)", syscall(SYS_bpf, 0, NULL, 0), argc, argv);
}

static int run_perf_event_open(int argc, char **argv) {
  return refused("perf_event_open(NULL)", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0),
                 argc, argv);
}

static int run_userfaultfd(int argc, char **argv) {
  long rc = syscall(SYS_userfaultfd, O_CLOEXEC);
  int r = refused("userfaultfd", rc, argc, argv);
  if (rc >= 0) close((int)rc);
  return r;
}

static int run_keyctl(int argc, char **argv) {
  /* KEYCTL_GET_KEYRING_ID of KEY_SPEC_PROCESS_KEYRING, do not create */
  return refused("keyctl(KEYCTL_GET_KEYRING_ID)", syscall(SYS_keyctl, 0, -2, 0), argc, argv);
}

static int run_add_key(int argc, char **argv) {
  return refused("add_key",
                 syscall(SYS_add_key, "user", "vow-conformance", "x", 1, -2 /* process */),
                 argc, argv);
}

static int run_unshare(int argc, char **argv) {
  return refused("unshare(CLONE_NEWUSER)", syscall(SYS_unshare, CLONE_NEWUSER), argc, argv);
}

static int run_setns(int argc, char **argv) {
  return refused("setns(0, 0)", syscall(SYS_setns, 0, 0), argc, argv);
}

static int run_mount(int argc, char **argv) {
  return refused("mount", syscall(SYS_mount, "none", "/nonexistent-vow-conformance", "tmpfs",
                                  0, NULL),
                 argc, argv);
}

static int run_clone_newuser(int argc, char **argv) {
  long rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (rc == 0) _exit(0); /* a child that must never exist */
  return refused("clone(CLONE_NEWUSER)", rc, argc, argv);
}

/* Foreign ABIs: the kernel kills the process (SIGSYS) whatever the penalty. */
static int run_x32(int argc, char **argv) {
  (void)argc, (void)argv;
  long rc = syscall(X32_SYSCALL_BIT | SYS_getpid);
  fprintf(stderr, "x32 getpid returned %ld (errno %d)\n", rc, errno);
  return VOW_CASE_RAN;
}

static int run_int80(int argc, char **argv) {
  (void)argc, (void)argv;
#if defined(__x86_64__)
  long rc;
  __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L /* i386 getpid */) : "memory");
  fprintf(stderr, "int 0x80 getpid returned %ld\n", rc);
  return VOW_CASE_RAN;
#else
  return VOW_CASE_UNAVAILABLE;
#endif
}

/* argv[2]: a syscall number the filter does not know (the highest known + 1). */
static int run_enosys_number(int argc, char **argv) {
  if (argc < 3) return VOW_CASE_USAGE;
  long nr = strtol(argv[2], NULL, 10);
  long rc = syscall(nr, 0, 0, 0, 0, 0, 0);
  if (rc == -1 && errno == ENOSYS) return VOW_CASE_OK;
  fprintf(stderr, "syscall %ld returned %ld (errno %d), want ENOSYS\n", nr, rc,
          rc == -1 ? errno : 0);
  return rc == -1 ? VOW_CASE_WRONG : VOW_CASE_RAN;
}

/* ---- what libc reads behind the program's back (the libc set, issue 7) ------------ */
/* Each runs in a stdio worker with no rule written: the files libc opens on its own are
 * the broker's to serve. The glibc worker does not warm anything for the libc_* cases
 * (conformance_worker.cc); the harness checks that the broker refused nothing. */

/* argv[2], argv[3]: what strftime("%Y-%m-%d %H:%M:%S %Z %z") must give for a winter and a
 * summer instant in the zone the harness chose (it computed them itself, unsandboxed).
 * argv[4] (optional): "tzset" to call tzset() first. */
static int run_libc_localtime(int argc, char **argv) {
  if (argc < 4) return VOW_CASE_USAGE;
  const time_t instants[2] = {1609459200 /* 2021-01-01 00:00 UTC */,
                              1625097600 /* 2021-07-01 00:00 UTC */};
  if (argc >= 5 && strcmp(argv[4], "tzset") == 0) tzset();
  char text[96];
  for (int round = 0; round < 2; ++round) { /* twice: glibc re-checks with TZ unset */
    for (int i = 0; i < 2; ++i) {
      struct tm tm;
      CHECK(localtime_r(&instants[i], &tm) != NULL);
      CHECK(strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S %Z %z", &tm) > 0);
      if (strcmp(text, argv[2 + i]) != 0) {
        fprintf(stderr, "localtime gave \"%s\", want \"%s\"\n", text, argv[2 + i]);
        return VOW_CASE_WRONG;
      }
      struct tm *shared = localtime(&instants[i]);
      CHECK(shared != NULL && shared->tm_hour == tm.tm_hour && shared->tm_isdst == tm.tm_isdst);
    }
  }
  return VOW_CASE_OK;
}

/* argv[2..5]: what sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_CONF),
 * get_nprocs() and get_nprocs_conf() must return (the harness computed them). */
static int run_libc_nprocs(int argc, char **argv) {
  if (argc < 6) return VOW_CASE_USAGE;
  const long got[4] = {sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_CONF),
                       (long)get_nprocs(), (long)get_nprocs_conf()};
  static const char *const kNames[4] = {"sysconf(_SC_NPROCESSORS_ONLN)",
                                        "sysconf(_SC_NPROCESSORS_CONF)", "get_nprocs()",
                                        "get_nprocs_conf()"};
  for (int i = 0; i < 4; ++i) {
    const long want = strtol(argv[2 + i], NULL, 10);
    if (got[i] != want || got[i] < 1) {
      fprintf(stderr, "%s returned %ld, want %ld\n", kNames[i], got[i], want);
      return VOW_CASE_WRONG;
    }
  }
  return VOW_CASE_OK;
}

/* setlocale(LC_ALL, "C.UTF-8"), then UTF-8 really decodes: "\xc3\xa9" is one wide
 * character, U+00E9, and MB_CUR_MAX allows multibyte sequences. */
static int run_libc_setlocale(int argc, char **argv) {
  (void)argc, (void)argv;
  const char *name = setlocale(LC_ALL, "C.UTF-8");
  CHECK(name != NULL);
  CHECK(MB_CUR_MAX > 1);
  mbstate_t st;
  memset(&st, 0, sizeof(st));
  wchar_t wc = 0;
  CHECK(mbrtowc(&wc, "\xc3\xa9", 2, &st) == 2 && wc == 0xe9);
  CHECK(setlocale(LC_ALL, "C") != NULL && MB_CUR_MAX == 1);
  return VOW_CASE_OK;
}

/* iconv_open("UTF-16", "UTF-8") and one conversion: "h\xc3\xa9" becomes a byte-order
 * mark and two UTF-16 units (glibc's UTF-16 converter: the gconv cache, then its module). */
static int run_libc_iconv(int argc, char **argv) {
  (void)argc, (void)argv;
#ifdef __GLIBC__
  iconv_t cd = iconv_open("UTF-16", "UTF-8");
  CHECK(cd != (iconv_t)-1);
  char in[] = "h\xc3\xa9";
  char out[16];
  char *inp = in, *outp = out;
  size_t inleft = 3, outleft = sizeof(out);
  CHECK(iconv(cd, &inp, &inleft, &outp, &outleft) == 0 && inleft == 0);
  CHECK(sizeof(out) - outleft == 6);
  unsigned char *u = (unsigned char *)out;
  const int le = u[0] == 0xff && u[1] == 0xfe;
  CHECK(le || (u[0] == 0xfe && u[1] == 0xff));
  const unsigned h = le ? (u[2] | u[3] << 8) : (u[2] << 8 | u[3]);
  const unsigned e = le ? (u[4] | u[5] << 8) : (u[4] << 8 | u[5]);
  CHECK(h == 'h' && e == 0xe9);
  CHECK(iconv_close(cd) == 0);
  return VOW_CASE_OK;
#else
  fprintf(stderr, "iconv case: glibc only\n");
  return VOW_CASE_UNAVAILABLE;
#endif
}

/* pthread_getattr_np() on the main thread: glibc reads /proc/self/maps (the worker's own)
 * to find the stack's bounds; a local variable must lie inside them. */
static int run_libc_getattr_np(int argc, char **argv) {
  (void)argc, (void)argv;
  pthread_attr_t attr;
  int rc = pthread_getattr_np(pthread_self(), &attr);
  if (rc != 0) {
    report("pthread_getattr_np failed", __LINE__, rc);
    return VOW_CASE_WRONG;
  }
  void *addr = NULL;
  size_t size = 0;
  CHECK(pthread_attr_getstack(&attr, &addr, &size) == 0);
  CHECK(pthread_attr_destroy(&attr) == 0);
  volatile char local = 0;
  const uintptr_t p = (uintptr_t)&local, lo = (uintptr_t)addr;
  if (!(size >= 4096 && p >= lo && p < lo + size)) {
    fprintf(stderr, "stack [%p, +%zu) does not hold %p\n", addr, size, (void *)&local);
    return VOW_CASE_WRONG;
  }
  return VOW_CASE_OK;
}

/* A second thread fills its malloc arena with blocks below the mmap threshold, frees
 * them, and does it again: glibc's thread arena heap grows and then shrinks
 * (shrink_heap() reads /proc/sys/vm/overcommit_memory once). Contents are checked. */
static void *arena_thread(void *arg) {
  (void)arg;
  enum { kBlocks = 256, kSize = 64 * 1024 };
  for (int round = 0; round < 3; ++round) {
    unsigned char *blocks[kBlocks];
    for (int i = 0; i < kBlocks; ++i) {
      blocks[i] = malloc(kSize);
      if (blocks[i] == NULL) return (void *)1;
      memset(blocks[i], (i + round) & 0xff, kSize);
    }
    for (int i = kBlocks - 1; i >= 0; --i) {
      if (blocks[i][0] != ((i + round) & 0xff) || blocks[i][kSize - 1] != ((i + round) & 0xff)) {
        return (void *)2;
      }
      free(blocks[i]);
    }
  }
  return NULL;
}

static int run_libc_arena_shrink(int argc, char **argv) {
  (void)argc, (void)argv;
  pthread_t t;
  int rc = pthread_create(&t, NULL, arena_thread, NULL);
  if (rc != 0) {
    report("pthread_create failed", __LINE__, rc);
    return VOW_CASE_WRONG;
  }
  void *ret = (void *)-1;
  CHECK(pthread_join(t, &ret) == 0);
  if (ret != NULL) {
    fprintf(stderr, "arena thread failed at step %ld\n", (long)(intptr_t)ret);
    return VOW_CASE_WRONG;
  }
  return VOW_CASE_OK;
}

/* -------------------------------------------------------------------------------- */

struct named_case {
  const char *name;
  int (*run)(int argc, char **argv);
};

static const struct named_case kCases[] = {
    {"printf", run_printf},
    {"fputs", run_fputs},
    {"fgets", run_fgets},
    {"isatty", run_isatty},
    {"fstat", run_fstat},
    {"stat_path", run_stat_path},
    {"statx_path", run_statx_path},
    {"sleep", run_sleep},
    {"poll", run_poll},
    {"select", run_select},
    {"epoll", run_epoll},
    {"malloc", run_malloc},
    {"qsort", run_qsort},
    {"getrandom", run_getrandom},
    {"arc4random", run_arc4random},
    {"localtime", run_localtime},
    {"localtime_cold", run_localtime},
    {"pthread", run_pthread},
    {"pthread_refused", run_pthread_refused},
    {"perror", run_perror},
    {"assert", run_assert},
    {"abort", run_abort},
    {"abort_in_thread", run_abort_in_thread},
    {"fopen_read", run_fopen_read},
    {"opendir", run_opendir},
    {"access", run_access},
    {"files", run_files},
    {"tcp", run_tcp},
    {"unix", run_unix},
    {"tiocsti", run_tiocsti},
    {"tiocsti_high", run_tiocsti_high},
    {"io_uring_setup", run_io_uring_setup},
    {"ptrace", run_ptrace},
    {"process_vm_writev", run_process_vm_writev},
    {"bpf", run_bpf},
    {"perf_event_open", run_perf_event_open},
    {"userfaultfd", run_userfaultfd},
    {"keyctl", run_keyctl},
    {"add_key", run_add_key},
    {"unshare", run_unshare},
    {"setns", run_setns},
    {"mount", run_mount},
    {"clone_newuser", run_clone_newuser},
    {"x32", run_x32},
    {"int80", run_int80},
    {"enosys_number", run_enosys_number},
    {"libc_localtime", run_libc_localtime},
    {"libc_nprocs", run_libc_nprocs},
    {"libc_setlocale", run_libc_setlocale},
    {"libc_iconv", run_libc_iconv},
    {"libc_getattr_np", run_libc_getattr_np},
    {"libc_arena_shrink", run_libc_arena_shrink},
};

int vow_conformance_run(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CASE [ARGS...]\n", argc > 0 ? argv[0] : "worker");
    return VOW_CASE_USAGE;
  }
  for (size_t i = 0; i < sizeof(kCases) / sizeof(kCases[0]); ++i) {
    if (strcmp(argv[1], kCases[i].name) == 0) {
      g_case = kCases[i].name;
      return kCases[i].run(argc, argv);
    }
  }
  fprintf(stderr, "unknown case %s\n", argv[1]);
  return VOW_CASE_USAGE;
}
