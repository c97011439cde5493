// A pool worker for tests: echoes each 4-byte job on fd 1; the job "boom" aborts it.
#ifndef VOW_TESTS_ECHO_WORKER_H_
#define VOW_TESTS_ECHO_WORKER_H_

#include <string>

#include "worker/client.h"

namespace vow::testing {

// Reads 4-byte jobs from fd 0 and writes each back to fd 1 until end of file (exit 0);
// "boom" aborts (SIGABRT).
int EchoWorker(Client& client);

// Sends the 4-byte `job` on `fd` and returns what came back ("" on end of file or error).
std::string Ask(int fd, const char* job);

}  // namespace vow::testing

#endif  // VOW_TESTS_ECHO_WORKER_H_
