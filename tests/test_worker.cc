// A worker that is a separate binary (fork+exec): the first statement of main is the
// lock-down. Its act is chosen by argv[1], one act per run (sandbox2's testcases style):
//   ok                print a line and exit 0
//   open_direct       open a file itself (forbidden under stdio)
//   brokered PATH     open PATH through the broker, copy it to stdout
//   learn_mix         a direct read-only open, an inet socket, then exit 0 (for `vow learn`)
//   garbage           send bytes that are not a message on the channel
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/client.h"
#include "worker/lockdown.h"

int main(int argc, char** argv) {
  int channel = vow::LockDownExecWorker();
  if (argc < 2) return 64;
  const char* act = argv[1];
  if (strcmp(act, "ok") == 0) {
    printf("locked and running\n");
    return 0;
  }
  if (strcmp(act, "open_direct") == 0) {
    int fd = open("/etc/hostname", O_RDONLY);
    return fd >= 0 ? 10 : 11;
  }
  if (strcmp(act, "brokered") == 0 && argc >= 3) {
    vow::Client client(channel);
    auto fd = client.Open(argv[2], O_RDONLY);
    if (!fd.ok()) {
      fprintf(stderr, "%s\n", std::string(fd.status().message()).c_str());
      return 12;
    }
    char buf[4096];
    ssize_t n;
    while ((n = read(fd->get(), buf, sizeof(buf))) > 0) (void)!write(1, buf, n);
    return 0;
  }
  if (strcmp(act, "learn_mix") == 0) {
    int fd = open("/etc/hostname", O_RDONLY);
    if (fd >= 0) close(fd);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s >= 0) close(s);
    return 0;
  }
  if (strcmp(act, "garbage") == 0) {
    char junk[64];
    memset(junk, 0xab, sizeof(junk));
    (void)!write(channel, junk, sizeof(junk));
    char c;
    (void)!read(channel, &c, 1);
    return 13;
  }
  return 64;
}
