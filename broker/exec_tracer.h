// The execpromises tracer: gives every image a worker execs (after the broker's own
// first execve of the program) the narrower filter of the policy's `execpromises`.
// Broker side (privileged). Linux cannot attach a filter to another process and
// seccomp cannot see "after exec", so a helper PROCESS forked by the broker
// PTRACE_SEIZEs the worker (before its first execve: Start() returns once it has) with
// TRACEEXEC|TRACEFORK|TRACEVFORK|TRACECLONE|EXITKILL, and at every exec of a process
// that still holds the full promises (the worker's first image, or a fork of it) makes
// the stopped image itself call seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog) with the
// execpromises program (CompileExecPromises), before its first instruction: the
// program and its sock_fprog are written below the stack pointer (past the red zone),
// a `syscall` instruction is poked at the entry point, the tracee is run to that call's
// exit, the result checked (0, and the tracee's newest filter, read back with
// PTRACE_SECCOMP_GET_FILTER, is exactly this program), the bytes and registers
// restored. The filter is inherited
// by forks and kept across later execs, so an image that is already narrow is left
// alone. Any failure kills the tracee (fail closed); the helper's death kills every
// tracee (EXITKILL), and the helper dies with the thread that spawned the worker.
//
// Why a process and not a broker thread: a tracer thread of the broker would reap the
// worker's exit itself (a tracee whose tracer is in its parent's thread group is reaped
// by the tracer's wait), taking it from the serving loop. As a separate process the
// helper reaps its tracees as tracer and the kernel passes each exit on to the real
// parent (the broker for the worker, the worker's shell for its children).
//
// The broker asks HoldsFullPromises(tid) for each path call: the helper keeps, in
// memory shared with the broker, the thread ids that still run under the worker's own
// filter (written before the tracee is resumed at its creation, removed at its exec and
// exit). Every other tid of the worker's tree gets the execpromises: unknown means
// narrow (fail closed). The helper only reads the tracees' registers and writes their
// memory at fixed places; nothing a tracee writes is interpreted but the seccomp
// return value.
#ifndef VOW_BROKER_EXEC_TRACER_H_
#define VOW_BROKER_EXEC_TRACER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "policies/promise_compiler.h"

namespace vow {

class ExecTracer {
 public:
  // Most threads of one worker's tree that can hold the full promises at once; a fork
  // or clone beyond that is killed (the table could not say it is not narrowed).
  static constexpr int kMaxFull = 1024;

  // Forks the helper, which seizes `pid` (a child of this process that has not yet
  // made its first execve) and reports back; returns when it has. `narrow` must stay
  // alive until the helper is gone (the caller keeps the PreparedPolicy). On error the
  // caller must kill `pid`. x86-64 only (Unimplemented elsewhere).
  static absl::StatusOr<std::unique_ptr<ExecTracer>> Start(pid_t pid,
                                                           const BpfProgram& narrow);

  // Kills the helper (and with it every tracee still alive) and reaps it.
  ~ExecTracer();
  ExecTracer(const ExecTracer&) = delete;
  ExecTracer& operator=(const ExecTracer&) = delete;

  // True if thread `tid` of the worker's tree still runs under the worker's own filter
  // (the first image or a fork/thread of it); false for an exec'd image, a fork of one,
  // and any tid the helper does not know.
  bool HoldsFullPromises(pid_t tid) const;

  pid_t helper_pid() const { return helper_; }

 private:
  ExecTracer(pid_t helper, std::atomic<int32_t>* table) : helper_(helper), table_(table) {}
  pid_t helper_;
  std::atomic<int32_t>* table_;  // kMaxFull entries, MAP_SHARED with the helper; 0 = free
};

}  // namespace vow

#endif  // VOW_BROKER_EXEC_TRACER_H_
