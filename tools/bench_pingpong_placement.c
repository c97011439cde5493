// A one-datagram ping-pong between a process and a thread of another process, each pinned
// (sched_setaffinity): the server thread waits in recv() ("recv", as the open benchmark's
// floor does) or in epoll_wait() then recv() ("epoll", as the broker's serving loop does).
// Shows what placement alone does to a round trip on this VM. README, Performance,
// "2026-12-04, after the merges". Not a test. Usage:
//   gcc -O2 -pthread -o /tmp/pingpong tools/bench_pingpong_placement.c
//   /tmp/pingpong recv|epoll SERVER_CPU CLIENT_CPU
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static int sv[2]; static int use_epoll; static int N = 50000; static int scpu;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
static void pin(int c){cpu_set_t s; CPU_ZERO(&s); CPU_SET(c,&s); sched_setaffinity(0,sizeof s,&s);}
static void* server(void* arg){
  pin(scpu);
  int ep = epoll_create1(0); struct epoll_event e = {.events = EPOLLIN}; epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &e);
  char b[64];
  for(;;){
    if (use_epoll) { struct epoll_event ev[4]; if (epoll_wait(ep, ev, 4, -1) < 0) continue; }
    if (recv(sv[0], b, sizeof b, 0) <= 0) return 0;
    int cpu = sched_getcpu(); send(sv[0], &cpu, sizeof cpu, 0);
  }
}
int main(int argc, char** argv){
  use_epoll = !strcmp(argv[1], "epoll"); scpu = atoi(argv[2]); int ccpu = atoi(argv[3]);
  socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
  pthread_t t; pthread_create(&t, 0, server, 0);
  pid_t pid = fork();
  if (pid == 0) {
    pin(ccpu);
    double s = now();
    for (int i = 0; i < N; i++) { char c = 1; send(sv[1], &c, 1, 0); int cpu; recv(sv[1], &cpu, sizeof cpu, 0); }
    printf("%-6s server on CPU %d, client on CPU %d: %.1f us/round trip\n", use_epoll ? "epoll" : "recv", scpu, ccpu, (now() - s) / N / 1000);
    fflush(stdout); _exit(0);
  }
  waitpid(pid, 0, 0); shutdown(sv[1], SHUT_RDWR); return 0;
}
