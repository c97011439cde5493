/* The conformance cases: one libc behaviour (or one forbidden act) per case, chosen by
 * argv[1], run by a locked exec'd worker (sandbox2's testcases/ style). Plain C, compiled
 * twice: into the glibc worker (conformance_worker.cc, Bazel) and into the static musl
 * worker (musl/main.c, musl-gcc). Runs in the locked worker, after lock-down.
 *
 * The case list, with what each expects, is in README.md; conformance_test.cc is the
 * harness that sets up stdio, policy and environment for each case and checks how the
 * worker ended. */
#ifndef VOW_TESTS_CONFORMANCE_CASES_H_
#define VOW_TESTS_CONFORMANCE_CASES_H_

#ifdef __cplusplus
extern "C" {
#endif

/* Exit codes of the worker. */
#define VOW_CASE_OK 0          /* libc behaved as expected */
#define VOW_CASE_WRONG 2       /* a call failed or returned something unexpected */
#define VOW_CASE_RAN 3         /* a call that must be refused ran (or returned) */
#define VOW_CASE_USAGE 4       /* unknown case or bad arguments */
#define VOW_CASE_UNAVAILABLE 5 /* the case does not exist in this libc */

/* Runs the case named by argv[1] with its arguments argv[2..]; returns the exit code
 * (or does not return: a case may be killed, abort, or exit through the libc). */
int vow_conformance_run(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* VOW_TESTS_CONFORMANCE_CASES_H_ */
