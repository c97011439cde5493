#include "tests/echo_worker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

namespace vow::testing {

int EchoWorker(Client&) {
  char buf[4];
  for (;;) {
    ssize_t n = read(0, buf, sizeof(buf));
    if (n <= 0) return 0;
    if (n == 4 && memcmp(buf, "boom", 4) == 0) abort();
    if (write(1, buf, static_cast<size_t>(n)) != n) return 1;
  }
}

std::string Ask(int fd, const char* job) {
  if (write(fd, job, 4) != 4) return "";
  char buf[4];
  ssize_t n = read(fd, buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace vow::testing
