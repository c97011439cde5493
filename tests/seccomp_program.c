// A program with no vow code in it that adds seccomp filters of its own, run under
// `vow run` by exec_promises_test.cc. Modes:
//   listener  seccomp(SET_MODE_FILTER, NEW_LISTENER) of a filter sending openat to
//             USER_NOTIF: with its own listener it could answer its own path calls with
//             CONTINUE and bypass the broker. Must be refused.
//   tsync     seccomp(SET_MODE_FILTER, TSYNC): flags other than 0 are refused.
//   narrow    seccomp(SET_MODE_FILTER, 0) of a filter making getppid fail with EPERM:
//             allowed (it only narrows); prints what getppid then returns.
//   errno0 PROGRAM ARGS...  adds a filter answering seccomp with ERRNO(0) (success,
//             without running it), then execs PROGRAM: the tracer's injected seccomp
//             returns 0 there, and it must see that no filter was added.
//   fill PROGRAM ARGS...  adds filters (flags 0) until the kernel's limit on a process's
//             filter instructions refuses another, then execs PROGRAM: the execpromises
//             tracer cannot add its filter to that image and must kill it.
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long Seccomp(unsigned flags, struct sock_filter* code, unsigned short len) {
  struct sock_fprog prog = {len, code};
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  struct sock_filter notify_openat[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  if (strcmp(argv[1], "listener") == 0 || strcmp(argv[1], "tsync") == 0) {
    const unsigned flags = argv[1][0] == 'l' ? SECCOMP_FILTER_FLAG_NEW_LISTENER
                                             : SECCOMP_FILTER_FLAG_TSYNC;
    long rc = Seccomp(flags, notify_openat, 4);
    printf("%s: rc=%ld errno=%s\n", argv[1], rc, rc < 0 ? strerror(errno) : "-");
    return rc < 0 ? 1 : 0;
  }
  if (strcmp(argv[1], "narrow") == 0) {
    struct sock_filter deny_getppid[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    long rc = Seccomp(0, deny_getppid, 4);
    long ppid = syscall(SYS_getppid);
    printf("narrow: rc=%ld getppid=%ld errno=%s\n", rc, ppid, ppid < 0 ? strerror(errno) : "-");
    return rc == 0 ? 0 : 1;
  }
  if (strcmp(argv[1], "errno0") == 0 && argc >= 3) {
    // seccomp now "succeeds" without doing anything; then exec PROGRAM.
    struct sock_filter fake_seccomp[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_seccomp, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    long rc = Seccomp(0, fake_seccomp, 4);
    printf("errno0: rc=%ld\n", rc);
    fflush(stdout);
    execv(argv[2], argv + 2);
    printf("errno0: execv: %s\n", strerror(errno));
    return 1;
  }
  if (strcmp(argv[1], "fill") == 0 && argc >= 3) {
    static struct sock_filter big[BPF_MAXINSNS];
    for (int i = 0; i < BPF_MAXINSNS; ++i) {
      big[i] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    }
    int added = 0;
    // Big filters first, then ever smaller ones, until not even one instruction fits.
    for (unsigned short len = BPF_MAXINSNS; len >= 1; len /= 2) {
      while (Seccomp(0, big, len) == 0) ++added;
      if (errno != ENOMEM) {
        printf("fill: %s after %d filters\n", strerror(errno), added);
        return 1;
      }
    }
    printf("fill: full after %d filters\n", added);
    fflush(stdout);
    execv(argv[2], argv + 2);
    printf("fill: execv: %s\n", strerror(errno));
    return 1;
  }
  return 2;
}
