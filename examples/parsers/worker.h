// The parser workers' code. Runs INSIDE a locked worker (promises: stdio; the broker's
// process is on the other end of fd 0/1, the data socket). Every job byte is hostile.
#ifndef VOW_EXAMPLES_PARSERS_WORKER_H_
#define VOW_EXAMPLES_PARSERS_WORKER_H_

#include <cstddef>

#include "worker/client.h"

namespace vow::parsers {

inline constexpr size_t kMaxJobBytes = 512u << 20;

struct WorkerConfig {
  // Test only: a kCrash job makes the worker dereference a bad pointer (SIGSEGV). Off,
  // a kCrash job is refused like any unknown job.
  bool crash_for_testing = false;
  // Test only: a kHostile job makes the worker misbehave with its pixel window (shrink
  // it, claim pixels past its end, answer "in the window" unasked). Off, it is refused.
  bool hostile_for_testing = false;
};

// Serves image and font jobs (wire.h) from fd 0, answering on fd 1, until EOF. A job may
// bring the caller's pixel window (a sealed memfd); large pixels are then written there. For a
// kWritePng image job the worker asks the broker (client.Open, O_WRONLY|O_CREAT|O_EXCL)
// for the output file and writes the clean PNG into the fd it gets.
int ParserWorkerMain(Client& client, const WorkerConfig& config);

}  // namespace vow::parsers

#endif  // VOW_EXAMPLES_PARSERS_WORKER_H_
