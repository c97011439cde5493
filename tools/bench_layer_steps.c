// Step by step, what the layers of a spawn cost in a forked child (README, Performance,
// "Spawn (2026-12-04)"): fork, each mount-namespace step of the empty root, the other
// namespaces, exit to reaped; 200 spawns, means. Not a test. Run as root:
//   gcc -O2 -o /tmp/layer_steps tools/bench_layer_steps.c && /tmp/layer_steps
// Uses /tmp as the scratch directory inside the child's own mount namespace only.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/syscall.h>
static long long ns(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000LL+t.tv_nsec;}
enum {FORK, NEWNS, PRIV, TMPFS, RO, PIVOT, DETACH, NET, IPC, UTS, USER, EXITED, N};
const char* names[N]={"fork->child","unshare(NS)","mount private","tmpfs","remount ro","chdir+pivot","umount detach","unshare(NET)","unshare(IPC)","unshare(UTS)","setresuid+unshare(USER)","exit->reaped"};
int main(){
  long long* st=mmap(0,4096,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0);
  double sum[N]={0}; int R=200;
  for(int r=0;r<R;r++){
    long long t0=ns();
    pid_t p=fork();
    if(!p){ long long t=ns(); st[FORK]=t-t0;
#define STEP(i,expr) do{ if((expr)!=0){perror(#expr);_exit(1);} long long u=ns(); st[i]=u-t; t=u;}while(0)
      STEP(NEWNS, syscall(SYS_unshare,CLONE_NEWNS));
      STEP(PRIV, mount(0,"/",0,MS_REC|MS_PRIVATE,0));
      STEP(TMPFS, mount("vow-root","/tmp","tmpfs",MS_NOSUID|MS_NODEV|MS_NOEXEC,"size=64k,nr_inodes=256,mode=0755"));
      STEP(RO, mount(0,"/tmp",0,MS_REMOUNT|MS_BIND|MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC,0));
      STEP(PIVOT, (chdir("/tmp")||syscall(SYS_pivot_root,".",".")));
      STEP(DETACH, (umount2(".",MNT_DETACH)||chdir("/")));
      STEP(NET, syscall(SYS_unshare,CLONE_NEWNET));
      STEP(IPC, syscall(SYS_unshare,CLONE_NEWIPC));
      STEP(UTS, syscall(SYS_unshare,CLONE_NEWUTS));
      STEP(USER, (syscall(SYS_setresgid,65534,65534,65534)||syscall(SYS_setresuid,65534,65534,65534)||syscall(SYS_unshare,CLONE_NEWUSER)));
      st[EXITED]=ns(); _exit(0);}
    int s; waitpid(p,&s,0); if(s){printf("child failed\n");return 1;}
    st[EXITED]=ns()-st[EXITED];
    for(int i=0;i<N;i++) sum[i]+=st[i];
  }
  double tot=0; for(int i=0;i<N;i++){printf("%-26s %8.1f us\n",names[i],sum[i]/R/1000); tot+=sum[i];}
  printf("%-26s %8.1f us\n","total",tot/R/1000);
}
