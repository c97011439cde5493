/* The exec'd-worker side of vow's lock-down, in portable C for workers that cannot link
 * the C++ library (worker/lockdown.h), e.g. a static musl binary. Runs in the worker.
 *
 * Mirrors vow::LockDownExecWorker(): the broker's child has already locked the process
 * down before execve (fds, layers, prctls, rlimits, the filter, hello with the listener),
 * so this only
 *   1. checks that a seccomp filter is installed (PR_GET_SECCOMP == 2);
 *   2. penalty trap ($VOW_TRAP=1): installs the SIGSYS handler that reports the refused
 *      call to the broker as a `violation` request and makes it return -EPERM (exec reset
 *      the child's handlers);
 *   3. reads the broker's HelloReply to the child's hello from the channel (fd 3 or
 *      $VOW_CHANNEL_FD).
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
