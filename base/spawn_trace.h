// Spawn trace: CLOCK_MONOTONIC timestamps at each step of a spawn (broker, fork server,
// worker lock-down), for the per-step breakdown of README "Spawn, round 4". Off unless
// the build defines VOW_SPAWN_TRACE:
//   bazel build -c opt --copt=-DVOW_SPAWN_TRACE //tests:benchmarks
// then BM_SpawnToLockedForkServer prints the median of each step. Without the define
// VOW_TRACE is nothing and no page exists.
//
// With it: one page, mapped MAP_SHARED | MAP_ANONYMOUS at static initialisation, before
// any fork, so the broker, the fork server and every worker write the same page; each
// step stores the time (vDSO clock_gettime: no syscall, async-signal-safe) in its slot.
// One spawn at a time is traced: the reader clears the page before a spawn.
#ifndef VOW_BASE_SPAWN_TRACE_H_
#define VOW_BASE_SPAWN_TRACE_H_

#include <stdint.h>
#include <time.h>

namespace vow {

// The steps, in the order they happen on a fork-server spawn.
#define VOW_SPAWN_TRACE_STEPS(X)                                                   \
  X(kTrBrokerEnter, "broker: SpawnFrom entered")                                   \
  X(kTrBrokerPair, "broker: channel pair made, namespace pair taken")              \
  X(kTrBrokerSent, "broker: request sent")                                         \
  X(kTrServerReceived, "server: recvmsg returned")                                 \
  X(kTrWorkerStart, "worker: first instruction after clone3")                      \
  X(kTrServerCloned, "server: clone3 returned")                                    \
  X(kTrServerHandedOff, "server: fds sent to the pre-made worker")                 \
  X(kTrServerReplied, "server: reply sent")                                        \
  X(kTrWorkerHandoffReceived, "pre-made worker: hand-off received")                \
  X(kTrWorkerHandoffPlaced, "pre-made worker: fds placed (dup3), hand-off closed") \
  X(kTrServerPremade, "server: next pre-made worker cloned")                       \
  X(kTrWorkerFds, "worker: robust list, fds placed")                               \
  X(kTrLdStdio, "lockdown: stdio, close_range")                                    \
  X(kTrLyChecks, "layers: checks, Landlock ABI, NO_NEW_PRIVS")                     \
  X(kTrLySharedRoot, "layers: setns(shared root), close, chdir")                   \
  X(kTrLyNet, "layers: setns(net) or unshare, close")                              \
  X(kTrLyIpc, "layers: setns(ipc) or unshare, close")                              \
  X(kTrLyUts, "layers: unshare(UTS), sethostname")                                 \
  X(kTrLyFiles, "layers: open listed files")                                       \
  X(kTrLyCaps1, "identity: ambient, bounding set, securebits")                     \
  X(kTrLyIds, "identity: setgroups, setresgid, setresuid")                         \
  X(kTrLyUserns, "userns: unshare(CLONE_NEWUSER)")                                 \
  X(kTrLyCaps2, "identity: ambient, bounding set, securebits (in the userns)")     \
  X(kTrLyCapCheck, "identity: capset, capget, checks")                             \
  X(kTrLyLandlock, "landlock: ruleset, rules, restrict_self")                      \
  X(kTrLdAttrs, "lockdown: PDEATHSIG, parent check, DUMPABLE, NO_NEW_PRIVS")       \
  X(kTrLdLimits, "lockdown: rlimits")                                              \
  X(kTrLdPatched, "lockdown: patch the program")                                   \
  X(kTrLdPatch, "lockdown: SIGSYS handler")                                        \
  X(kTrLdFilter, "lockdown: filter attach")                                        \
  X(kTrLdHello, "lockdown: hello sent")                                            \
  X(kTrWorkerAccepted, "worker: the broker's go (after its check) read")           \
  X(kTrWorkerMain, "worker: calls the worker function")                            \
  X(kTrBrokerReply, "broker: reply received")                                      \
  X(kTrBrokerChecked, "broker: reply checked")                                     \
  X(kTrBrokerSlot, "broker: slot cleared")                                         \
  X(kTrBrokerRegistered, "broker: registered, SpawnFrom returns")                  \
  X(kTrWorkerExit, "worker: main returned, _exit")                                 \
  X(kTrBrokerWaitWoke, "broker: Wait's poll returned")                             \
  X(kTrBrokerReaped, "broker: waitid reaped it")                                   \
  X(kTrBrokerWaitReturns, "broker: Wait returns")

enum SpawnTraceStep : int {
#define VOW_SPAWN_TRACE_ENUM(name, text) name,
  VOW_SPAWN_TRACE_STEPS(VOW_SPAWN_TRACE_ENUM)
#undef VOW_SPAWN_TRACE_ENUM
  kTrCount
};

inline constexpr const char* kSpawnTraceNames[] = {
#define VOW_SPAWN_TRACE_NAME(name, text) text,
    VOW_SPAWN_TRACE_STEPS(VOW_SPAWN_TRACE_NAME)
#undef VOW_SPAWN_TRACE_NAME
};

#ifdef VOW_SPAWN_TRACE
// The shared page (kTrCount slots), or null if mmap failed.
extern uint64_t* const g_spawn_trace;
inline void SpawnTraceMark(int step) {
  if (g_spawn_trace == nullptr) return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  __atomic_store_n(&g_spawn_trace[step],
                   static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec,
                   __ATOMIC_RELAXED);
}
#define VOW_TRACE(step) ::vow::SpawnTraceMark(::vow::step)
#else
#define VOW_TRACE(step) ((void)0)
#endif

}  // namespace vow

#endif  // VOW_BASE_SPAWN_TRACE_H_
