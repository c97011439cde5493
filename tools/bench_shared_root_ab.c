// A/B, interleaved in one process: a forked child that makes its own empty root (unshare,
// mounts, pivot_root, detach) vs one that enters a root made once (setns), each followed
// by exit and wait; with an argument, also net/IPC/UTS namespaces and the user namespace.
// README, Performance, "Spawn (2026-12-04)". Not a test. Run as root:
//   gcc -O2 -o /tmp/shared_root_ab tools/bench_shared_root_ab.c && /tmp/shared_root_ab [all]
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/syscall.h>
static long long ns(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000LL+t.tv_nsec;}
static int own_root(void){
  return syscall(SYS_unshare,CLONE_NEWNS)||mount(0,"/",0,MS_REC|MS_PRIVATE,0)||
    mount("vow-root","/tmp","tmpfs",MS_NOSUID|MS_NODEV|MS_NOEXEC,"size=64k,nr_inodes=256,mode=0755")||
    mount(0,"/tmp",0,MS_REMOUNT|MS_BIND|MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC,0)||chdir("/tmp")||
    syscall(SYS_pivot_root,".",".")||umount2(".",MNT_DETACH)||chdir("/");
}
static int rest(void){
  return syscall(SYS_unshare,CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS)||
    syscall(SYS_setresgid,65534,65534,65534)||syscall(SYS_setresuid,65534,65534,65534)||syscall(SYS_unshare,CLONE_NEWUSER);
}
int main(int argc,char**argv){
  int withrest = argc>1;
  /* the shared root, made once */
  int sv[2]; pipe(sv);
  pid_t h=fork(); if(!h){ if(own_root()) _exit(1); pause(); _exit(0);} 
  usleep(200000);
  char p[64]; snprintf(p,64,"/proc/%d/ns/mnt",h); int root=open(p,O_RDONLY|O_CLOEXEC); kill(h,9); waitpid(h,0,0);
  if(root<0){perror("root");return 1;}
  double sum[2]={0}; int cnt[2]={0}; int R=300;
  for(int i=0;i<2*R;i++){
    int v=i&1; long long t0=ns();
    pid_t c=fork();
    if(!c){ int r = v==0 ? own_root() : (syscall(SYS_setns,root,CLONE_NEWNS)||close(root)||chdir("/"));
      if(!r && withrest) r=rest();
      _exit(r?1:0);}
    int s; waitpid(c,&s,0); if(s){printf("fail v%d\n",v);return 1;}
    sum[v]+=ns()-t0; cnt[v]++;
  }
  printf("%s own root: %7.1f us   shared root (setns): %7.1f us   (fork+layers+exit+wait, interleaved, %d each)\n",
    withrest?"with net/ipc/uts/user:":"mount only:", sum[0]/cnt[0]/1000, sum[1]/cnt[1]/1000, R);
}
