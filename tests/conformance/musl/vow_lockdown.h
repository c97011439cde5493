/* The exec'd-worker side of vow's lock-down, in portable C for workers that cannot link
 * the C++ library (worker/lockdown.h), e.g. a static musl binary. Runs in the worker.
 *
 * Mirrors vow::LockDownExecWorker() step by step:
 *   0. getFilter on the channel (fd 3 or $VOW_CHANNEL_FD); the broker answers with the
 *      seccomp program it compiled and the limits (vow_wire.h decodes it);
 *   1. close every fd but 0-2 and the channel (close_range; one by one if ENOSYS);
 *   2. PR_SET_PDEATHSIG(SIGKILL) and a check that the parent is still the broker
 *      ($VOW_BROKER_PID), PR_SET_DUMPABLE 0, PR_SET_NO_NEW_PRIVS 1;
 *   3. RLIMIT_CORE 0, and RLIMIT_NOFILE/CPU/AS when the broker sent them;
 *   4. penalty trap: a SIGSYS handler that reports the refused call to the broker as a
 *      `violation` request and makes it return -EPERM; then the program, with the self-pid
 *      placeholder (0x7ff0f00d in `jeq #k` instructions) patched to getpid(), loaded with
 *      SECCOMP_FILTER_FLAG_TSYNC (plus NEW_LISTENER and TSYNC_ESRCH when the broker asks
 *      for a listener);
 *   5. hello (with the listener attached as SCM_RIGHTS), and the broker's HelloReply.
 * Any failure writes one line to stderr and _exit(121) (kLockdownFailedExit): a worker
 * never runs unlocked. No heap: static buffers, raw syscalls. */
#ifndef VOW_TESTS_CONFORMANCE_MUSL_VOW_LOCKDOWN_H_
#define VOW_TESTS_CONFORMANCE_MUSL_VOW_LOCKDOWN_H_

#ifdef __cplusplus
extern "C" {
#endif

#define VOW_LOCKDOWN_FAILED_EXIT 121

/* The first call of main. Returns the channel fd, or does not return. */
int vow_lockdown_exec_worker(void);

#ifdef __cplusplus
}
#endif

#endif /* VOW_TESTS_CONFORMANCE_MUSL_VOW_LOCKDOWN_H_ */
