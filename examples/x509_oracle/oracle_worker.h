// The oracle's worker main: runs INSIDE the locked worker (stdio promise), after the
// broker process called WarmUpOpenSsl() before forking (fork copies the warmed OpenSSL
// state, so nothing in Verify() needs a file or a syscall the worker lacks).
//
// Reads job frames (protocol.h) from fd 0 until EOF, answers each with one binary verdict
// frame (protocol.h) on fd 1. Every byte on fd 0 is treated as hostile: a malformed job gets an error
// verdict and the loop goes on (the frame boundary is still known); a frame whose length
// is above kMaxJobBytes, a cut frame or a failed write end the worker (exit code 1),
// because the stream can no longer be trusted to be in step.
//
// What it asks the broker for (and nothing else):
//  - the trust store, only when a job has no `trusted` certificates: Open(bundle_path,
//    O_RDONLY) once; the bytes are cached for the worker's life;
//  - the time, only when a job names none: Client::Now() (the policy's clock rule).
#ifndef VOW_EXAMPLES_X509_ORACLE_ORACLE_WORKER_H_
#define VOW_EXAMPLES_X509_ORACLE_ORACLE_WORKER_H_

#include <string>

namespace vow {
class Client;
}

namespace vow::x509 {

struct WorkerConfig {
  // Absolute path, opened through the broker (the policy must allow reading it).
  std::string bundle_path;
  // Test only (OracleOptions::crash_hook_for_testing): a job whose chain contains
  // kGarbageMagic is answered with kGarbageVerdictForTesting instead of its verdict, as a
  // compromised worker might answer. Never set by production code.
  bool garbage_hook_for_testing = false;
};

inline constexpr char kGarbageMagic[] = "VOW-TEST-GARBAGE-51c2";
// Not a verdict: the version byte is 7.
inline constexpr char kGarbageVerdictForTesting[] = "\x07garbage";

// Returns the worker's exit code: 0 on EOF between frames, 1 when the stream broke.
int OracleWorkerMain(Client& client, const WorkerConfig& config);

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_ORACLE_WORKER_H_
