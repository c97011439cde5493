/* See vow_lockdown.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/conformance/musl/vow_lockdown.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "tests/conformance/musl/vow_wire.h"

/* Kernel ABI values (musl ships no linux/ headers). From linux/seccomp.h, filter.h. */
#define VOW_SECCOMP_SET_MODE_FILTER 1
#define VOW_SECCOMP_FILTER_FLAG_TSYNC (1u << 0)
#define VOW_SECCOMP_FILTER_FLAG_NEW_LISTENER (1u << 3)
#define VOW_SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1u << 4)
#define VOW_BPF_JMP 0x05
#define VOW_BPF_JEQ 0x10
#define VOW_BPF_K 0x00
#define VOW_BPF_MAXINSNS 4096
#define VOW_SELF_PID_PLACEHOLDER 0x7ff0f00du /* policies/self_pid.h */
#define VOW_CHANNEL_FD 3                     /* kWorkerChannelFd */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

struct vow_sock_filter {
  uint16_t code;
  uint8_t jt;
  uint8_t jf;
  uint32_t k;
};
struct vow_sock_fprog {
  unsigned short len;
  struct vow_sock_filter *filter;
};

static uint64_t g_buffer[VOW_WIRE_MAX_BYTES / 8];
static uint64_t g_trap_buffer[32];
static volatile int g_trap_channel = -1;
static volatile sig_atomic_t g_trap_busy = 0;

static void fail(const char *step, int err) {
  char line[200];
  size_t len = 0;
  const char *parts[4] = {"vow (musl): worker lock-down failed at ", step, ": ",
                          strerror(err)};
  for (int i = 0; i < 4; ++i) {
    for (const char *s = parts[i]; *s != '\0' && len < sizeof(line) - 1; ++s) line[len++] = *s;
  }
  line[len++] = '\n';
  (void)!write(2, line, len);
  _exit(VOW_LOCKDOWN_FAILED_EXIT);
}

/* One datagram out, with `fd` attached when >= 0. Returns 0 or -errno. */
static int send_message(int channel, const void *data, size_t len, int fd) {
  struct iovec iov = {(void *)data, len};
  struct msghdr msg;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    memset(&control, 0, sizeof(control));
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    ssize_t n = sendmsg(channel, &msg, MSG_NOSIGNAL);
    if (n == (ssize_t)len) return 0;
    if (n >= 0) return -EMSGSIZE;
    if (errno != EINTR) return -errno;
  }
}

/* One datagram in. The broker never attaches an fd to the answers read here: any fd that
 * arrives is closed and the answer refused. Returns the byte count or -errno. */
static long receive_message(int channel) {
  struct iovec iov = {g_buffer, sizeof(g_buffer)};
  struct msghdr msg;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(4 * sizeof(int))];
  } control;
  for (;;) {
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    ssize_t n = recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    int got_fd = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
          c->cmsg_len >= CMSG_LEN(0)) {
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          close(fd);
        }
      }
      got_fd = 1;
    }
    if (n == 0) return -ECONNRESET;
    if (got_fd || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) return -EPROTO;
    return n;
  }
}

/* Penalty trap: report the refused call, then make it fail with EPERM. Uses sendmsg
 * only (stdio allows it). */
static void sigsys_reporter(int sig, siginfo_t *info, void *context) {
  (void)sig;
  int saved_errno = errno;
  ucontext_t *uc = (ucontext_t *)context;
#if defined(__x86_64__)
  const greg_t *r = uc->uc_mcontext.gregs;
  uint64_t args[6] = {(uint64_t)r[REG_RDI], (uint64_t)r[REG_RSI], (uint64_t)r[REG_RDX],
                      (uint64_t)r[REG_R10], (uint64_t)r[REG_R8],  (uint64_t)r[REG_R9]};
#elif defined(__aarch64__)
  uint64_t args[6];
  for (int i = 0; i < 6; ++i) args[i] = uc->uc_mcontext.regs[i];
#else
#error "x86-64 and aarch64 only"
#endif
  if (g_trap_channel >= 0 && !g_trap_busy) {
    g_trap_busy = 1;
    long len = vow_wire_encode_violation(g_trap_buffer, sizeof(g_trap_buffer), 0,
                                         info->si_syscall, info->si_arch, args);
    int rc = len > 0 ? send_message(g_trap_channel, g_trap_buffer, (size_t)len, -1) : -EMSGSIZE;
    if (rc != 0) {
      static const char kMsg[] = "vow (musl): the violation report could not be sent\n";
      (void)!write(2, kMsg, sizeof(kMsg) - 1);
    }
    g_trap_busy = 0;
  }
#if defined(__x86_64__)
  uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#else
  uc->uc_mcontext.regs[0] = (uint64_t)(int64_t)-EPERM;
#endif
  errno = saved_errno;
}

int vow_lockdown_exec_worker(void) {
  int channel = VOW_CHANNEL_FD;
  const char *env = getenv("VOW_CHANNEL_FD");
  if (env != NULL) channel = atoi(env);
  pid_t broker = 0;
  env = getenv("VOW_BROKER_PID");
  if (env != NULL) broker = (pid_t)atoi(env);
  if (broker == 0) broker = getppid();
  if (channel < 3) fail("channel fd", EBADF);

  /* The broker's child locked this process down before execve (the program cannot
   * choose its own filter): check that it did, then read the broker's answer to the
   * hello that child sent. */
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2) fail("check (no seccomp filter)", EPERM);
  env = getenv("VOW_TRAP");
  if (env != NULL && strcmp(env, "1") == 0) {
    /* Penalty trap: exec reset the handler; install the reporter here. */
    g_trap_channel = channel;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sigsys_reporter;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) != 0) fail("SIGSYS reporter", errno);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    if (sigprocmask(SIG_UNBLOCK, &set, NULL) != 0) fail("SIGSYS reporter", errno);
  }
  (void)broker;
  long len;
  len = receive_message(channel);
  if (len < 0) fail("hello", (int)-len);
  struct vow_wire_response reply;
  if (vow_wire_decode_response(g_buffer, (size_t)len, &reply) != 0) fail("hello", EPROTO);
  if (reply.kind == VOW_RESPONSE_ERROR) {
    fail("hello", reply.error_errno > 0 && reply.error_errno < 4096 ? reply.error_errno : EPROTO);
  }
  if (reply.kind != VOW_RESPONSE_HELLO || reply.hello_version != VOW_WIRE_PROTOCOL_VERSION) {
    fail("hello", EPROTO);
  }
  return channel;
}
