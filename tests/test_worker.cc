// A worker that is a separate binary (fork+exec): the first statement of main is the
// lock-down. Its act is chosen by argv[1], one act per run (sandbox2's testcases style):
//   ok                print a line and exit 0
//   open_direct       open a file itself (forbidden under stdio)
//   brokered PATH     open PATH through the broker, copy it to stdout
//   learn_mix         a direct read-only open, an inet socket, then exit 0 (for `vow learn`)
//   garbage           send bytes that are not a message on the channel, then read it
//   garbage_exit      the same, then exit 13 at once (before the broker has read them)
//   throttled_garbage refused opens until the broker throttles it (its channel is not read
//                     for a while), then the same bytes and exit 13 at once: the broker
//                     reads them only when it reaps it (the drain)
// Acts that break the handshake run *before* any lock-down (a hostile program that never
// calls LockDownExecWorker): each sends its out-of-phase or forged request, then reads the
// channel once (a broker that accepts the request answers; one that refuses it kills us)
// and exits 0, so a broker that lets the request through reports "exited with code 0":
//   raw_open_first        open before getFilter
//   raw_hello_first       hello before getFilter
//   raw_filter_then_open  getFilter, then open instead of hello
//   raw_filter_twice      getFilter twice
//   raw_hello_version     getFilter, then hello with protocolVersion + 1
//   raw_hello_no_listener getFilter, then hello saying "no listener" and attaching none
//   raw_hello_flag_no_fd  getFilter, then hello saying "listener attached" and attaching none
//   raw_hello_fd_no_flag  getFilter, then hello saying "no listener" but attaching a pipe
//   raw_hello_fake_listener  getFilter, then hello saying "listener attached" with a pipe
//   lockdown_bad_channel  LockDownExecWorker() with $VOW_CHANNEL_FD naming a closed fd
//   own_filter            (issue 8 item 12) before any vow code: install an allow-all
//                         filter of its own with SECCOMP_FILTER_FLAG_NEW_LISTENER, then
//                         read /etc/shadow. Exit 10: it got a listener; 11: it read
//                         /etc/shadow; 0: both refused (errnos on stderr).
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "capnp/message.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/protocol.capnp.h"
#include "worker/client.h"
#include "worker/lockdown.h"

namespace {

enum class Raw { kOpen, kHello, kGetFilter };

// Sends one request on the raw channel; `fd` >= 0 is attached.
void SendRaw(int channel, Raw kind, uint32_t version, bool listener_flag, int fd) {
  vow::MessageArena arena;
  capnp::MallocMessageBuilder builder(arena.segment());
  auto request = builder.initRoot<vow::wire::Request>();
  request.setId(9);
  switch (kind) {
    case Raw::kOpen:
      request.initOpen().setPath(kj::arrayPtr(reinterpret_cast<const kj::byte*>("/etc/hostname"),
                                              13));
      break;
    case Raw::kHello: {
      auto hello = request.initHello();
      hello.setVersion(version);
      hello.setListenerAttached(listener_flag);
      break;
    }
    case Raw::kGetFilter:
      request.setGetFilter();
      break;
  }
  vow::Channel c{vow::UniqueFd(channel)};
  (void)c.Send(builder, fd);
  (void)c.release();
}

// Reads one datagram (and closes any fd in it); returns its size, 0 at EOF, or -errno.
int ReceiveRaw(int channel) {
  static capnp::word buffer[vow::kMaxMessageWords];
  int fds[vow::kMaxFdsPerMessage];
  int nfds = 0;
  vow::Channel c{vow::UniqueFd(channel)};
  int n = c.Receive(buffer, sizeof(buffer), fds, vow::kMaxFdsPerMessage, &nfds);
  (void)c.release();
  for (int i = 0; i < nfds; ++i) close(fds[i]);
  return n;
}

// The handshake-breaking acts (see the file comment). Returns -1 for an unknown act.
int RawAct(const char* act) {
  int channel = vow::kWorkerChannelFd;
  if (const char* env = getenv(vow::kChannelFdEnv); env != nullptr) channel = atoi(env);
  const uint32_t v = vow::wire::PROTOCOL_VERSION;
  int pipefd[2] = {-1, -1};
  if (pipe(pipefd) != 0) return 70;
  if (strcmp(act, "raw_open_first") == 0) {
    SendRaw(channel, Raw::kOpen, 0, false, -1);
  } else if (strcmp(act, "raw_hello_first") == 0) {
    SendRaw(channel, Raw::kHello, v, false, -1);
  } else {
    SendRaw(channel, Raw::kGetFilter, 0, false, -1);
    if (ReceiveRaw(channel) <= 0) return 71;  // the filter
    if (strcmp(act, "raw_filter_then_open") == 0) {
      SendRaw(channel, Raw::kOpen, 0, false, -1);
    } else if (strcmp(act, "raw_filter_twice") == 0) {
      SendRaw(channel, Raw::kGetFilter, 0, false, -1);
    } else if (strcmp(act, "raw_hello_version") == 0) {
      SendRaw(channel, Raw::kHello, v + 1, false, -1);
    } else if (strcmp(act, "raw_hello_no_listener") == 0) {
      SendRaw(channel, Raw::kHello, v, false, -1);
    } else if (strcmp(act, "raw_hello_flag_no_fd") == 0) {
      SendRaw(channel, Raw::kHello, v, true, -1);
    } else if (strcmp(act, "raw_hello_fd_no_flag") == 0) {
      SendRaw(channel, Raw::kHello, v, false, pipefd[0]);
    } else if (strcmp(act, "raw_hello_fake_listener") == 0) {
      SendRaw(channel, Raw::kHello, v, true, pipefd[0]);
    } else {
      return -1;
    }
  }
  // Accepted: an answer arrives and we exit 0. Refused: SIGKILL before or during this read.
  (void)ReceiveRaw(channel);
  return 0;
}

// The own_filter act (see the file comment).
int OwnFilter() {
  struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {1, &allow};
  long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                          SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener >= 0) {
    fprintf(stderr, "own_filter: got a listener, fd %ld\n", listener);
    return 10;
  }
  fprintf(stderr, "own_filter: seccomp(NEW_LISTENER): %s\n", strerror(errno));
  int fd = open("/etc/shadow", O_RDONLY);
  char buf[64];
  if (fd >= 0 && read(fd, buf, sizeof(buf)) > 0) {
    fprintf(stderr, "own_filter: read /etc/shadow\n");
    return 11;
  }
  fprintf(stderr, "own_filter: /etc/shadow: %s\n", strerror(errno));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "own_filter") == 0) return OwnFilter();
  if (argc >= 2 && strncmp(argv[1], "raw_", 4) == 0) return RawAct(argv[1]);
  if (argc >= 2 && strcmp(argv[1], "lockdown_bad_channel") == 0) {
    setenv(vow::kChannelFdEnv, "200", 1);  // not open: asking for the filter fails
  }
  int channel = vow::LockDownExecWorker();
  if (argc < 2) return 64;
  const char* act = argv[1];
  if (strcmp(act, "ok") == 0) {
    printf("locked and running\n");
    return 0;
  }
  if (strcmp(act, "pid") == 0) {  // its pid as it sees it (1 under layers +pidns)
    printf("pid %d\n", static_cast<int>(getpid()));
    return 0;
  }
  if (strcmp(act, "pause") == 0) {  // waits until it is killed
    printf("paused\n");
    fflush(stdout);
    pause();
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
  if (strcmp(act, "throttled_garbage") == 0) {
    vow::Client client(channel);
    // Refused opens until the broker is seen throttling: three answers in a row that took
    // 20 ms or more (a throttled refusal waits 1/32 s). A fixed count is not enough: on a
    // loaded machine 140 round trips can take longer than the bucket takes to refill, and
    // the garbage was then read live. Right after a throttled answer the channel is out
    // of epoll for another 1/32 s, so the garbage below is read only by the drain.
    int slow_in_a_row = 0;
    for (int i = 0; slow_in_a_row < 3; ++i) {
      if (i == 3000) return 15;  // never throttled
      struct timespec t0, t1;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      if (client.Open("/etc/shadow", O_RDONLY).ok()) return 14;
      clock_gettime(CLOCK_MONOTONIC, &t1);
      const long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
      slow_in_a_row = ms >= 20 ? slow_in_a_row + 1 : 0;
    }
    char junk[64];
    memset(junk, 0xab, sizeof(junk));
    (void)!write(channel, junk, sizeof(junk));
    return 13;
  }
  if (strcmp(act, "garbage_exit") == 0) {
    char junk[64];
    memset(junk, 0xab, sizeof(junk));
    (void)!write(channel, junk, sizeof(junk));
    return 13;
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
