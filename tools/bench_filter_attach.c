// The kernel's cost of attaching a seccomp filter, by filter length and flags, each
// measured in a fresh forked child (the spawn's situation: a process with no filter yet):
// SECCOMP_FILTER_FLAG_SPEC_ALLOW or not, with TSYNC | NEW_LISTENER (what vow's loader
// passes for a penalty-kill policy, with TSYNC_ESRCH) or not. Two shapes of N instructions: a linear chain
// of syscall-number compares (every syscall walks up to N instructions when the kernel
// builds its constant-action cache) and the same compares behind an argument load (the
// cache's emulation stops at the first argument load). README, "Spawn". Not a test.
//   gcc -O2 -o /tmp/filter_attach tools/bench_filter_attach.c && /tmp/filter_attach
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long Ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static struct sock_filter prog[4096];

// n instructions: [load nr | load arg0], n-2 compares against numbers no syscall has
// (1000+i: each falls through), allow.
static unsigned Build(unsigned n, int arg_first) {
  unsigned k = 0;
  prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
      arg_first ? offsetof(struct seccomp_data, args[0]) : offsetof(struct seccomp_data, nr));
  while (k + 1 < n) {
    prog[k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1000 + k, 0, 0);
    k++;
  }
  prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  return k;
}

// Mean attach time (us) over `rounds` children.
static double Attach(unsigned len, unsigned flags, int rounds, long long* shared) {
  double sum = 0;
  for (int i = 0; i < rounds; i++) {
    pid_t c = fork();
    if (c == 0) {
      struct sock_fprog fp = {(unsigned short)len, prog};
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      long long t0 = Ns();
      long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp);
      *shared = Ns() - t0;
      _exit(r < 0 ? 1 : 0);
    }
    int s;
    waitpid(c, &s, 0);
    if (s != 0) {
      fprintf(stderr, "attach failed: len %u flags %#x\n", len, flags);
      exit(1);
    }
    sum += *shared;
  }
  return sum / rounds / 1000;
}

int main(void) {
  long long* shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  const unsigned lens[] = {2, 64, 256, 362, 1024, 4096};
  const unsigned kVow = SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_NEW_LISTENER |
                       SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  printf("%-6s %-9s %10s %12s %14s %16s\n", "len", "shape", "flags 0", "SPEC_ALLOW",
         "TSYNC|LISTENER", "+SPEC_ALLOW");
  for (int shape = 0; shape < 2; shape++) {
    for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
      unsigned len = Build(lens[i], shape);
      // Interleaved: each round of each variant in turn, 4 rounds of 50.
      double a = 0, b = 0, c = 0, d = 0;
      for (int r = 0; r < 4; r++) {
        a += Attach(len, 0, 50, shared);
        b += Attach(len, SECCOMP_FILTER_FLAG_SPEC_ALLOW, 50, shared);
        c += Attach(len, kVow, 50, shared);
        d += Attach(len, kVow | SECCOMP_FILTER_FLAG_SPEC_ALLOW, 50, shared);
      }
      printf("%-6u %-9s %10.1f %12.1f %14.1f %16.1f\n", len, shape ? "arg-first" : "nr-chain",
             a / 4, b / 4, c / 4, d / 4);
    }
  }
  return 0;
}
