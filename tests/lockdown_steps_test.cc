// LockDown() without layers (worker/lockdown.h, steps 1-3): its own process attributes.
// The broker's spawn always passes layers, whose first step also sets NO_NEW_PRIVS, and
// its identity drop also clears "dumpable"; a caller of LockDown() without layers (the
// benchmarks, any embedder) has only the lock-down's step 2. A spec without a program
// stops the sequence at step 4 (EINVAL) with steps 1-3 done, which is what is checked
// here, in a forked child (this test process is never changed).
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "worker/lockdown.h"

namespace vow {
namespace {

TEST(LockdownStepsTest, AttributesAndLimitsWithoutLayers) {
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  const pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Before: what a fresh child of this test has (the test asserts these too, so a
    // "0 1 0" below cannot come from the test runner's own settings).
    char before[64];
    int before_len = snprintf(before, sizeof(before), "%d %d",
                              prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
                              prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    dup2(out[1], 9);
    LockdownSpec spec;
    spec.channel_fd = 9;
    spec.broker_pid = parent;
    spec.max_open_fds = 41;
    spec.layers = nullptr;
    const char* step = nullptr;
    int rc = LockDown(spec, &step);
    int pdeathsig = -1;
    prctl(PR_GET_PDEATHSIG, &pdeathsig, 0, 0, 0);
    struct rlimit nofile, core;
    getrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_CORE, &core);
    char line[256];
    int n = snprintf(line, sizeof(line),
                     "before=%.*s rc=%d nnp=%d dumpable=%d pdeathsig=%d nofile=%llu core=%llu",
                     before_len, before, rc, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
                     prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), pdeathsig,
                     static_cast<unsigned long long>(nofile.rlim_cur),
                     static_cast<unsigned long long>(core.rlim_cur));
    (void)!write(9, line, static_cast<size_t>(n));
    _exit(0);
  }
  close(out[1]);
  char buf[256];
  ssize_t n = read(out[0], buf, sizeof(buf));
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_GT(n, 0) << "the child reported nothing";
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)),
            "before=0 1 rc=" + std::to_string(-EINVAL) + " nnp=1 dumpable=0 pdeathsig=" +
                std::to_string(SIGKILL) + " nofile=41 core=0");
}

// Step 5 sends only a hello made by the spawning thread (LockdownSpec::hello): there is
// no buffer of the lock-down's own to build one in (exec children share the broker's
// memory with other threads' children). A spec without one fails at "hello" with EINVAL
// and sends nothing; with one, the bytes go out as they are.
TEST(LockdownStepsTest, StepFiveSendsOnlyAPrebuiltHello) {
  for (const bool prebuilt : {false, true}) {
    SCOPED_TRACE(prebuilt ? "prebuilt hello" : "no hello");
    // Datagrams: "nothing sent" (EAGAIN) is told apart from an empty message (0).
    int channel[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, channel), 0);
    int out[2];
    ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
    unsigned char hello[256];
    const size_t hello_len = HelloBytes(/*listener_attached=*/false, hello, sizeof(hello));
    ASSERT_GT(hello_len, 0u);
    const pid_t parent = getpid();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      dup2(channel[1], 9);
      dup2(out[1], 10);
      sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
      LockdownSpec spec;
      spec.channel_fd = 9;
      spec.keep_fd = 10;
      spec.broker_pid = parent;
      spec.program = allow;
      spec.program_len = 1;
      if (prebuilt) {
        spec.hello = hello;
        spec.hello_len = hello_len;
      }
      const char* step = nullptr;
      const int rc = LockDown(spec, &step);
      char line[128];
      const int n = snprintf(line, sizeof(line), "rc=%d step=%s", rc,
                             step != nullptr ? step : "none");
      (void)!write(10, line, static_cast<size_t>(n));
      _exit(0);
    }
    close(out[1]);
    close(channel[1]);
    char buf[128];
    const ssize_t n = read(out[0], buf, sizeof(buf));
    close(out[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_GT(n, 0) << "the child reported nothing";
    unsigned char sent[512];
    const ssize_t got = recv(channel[0], sent, sizeof(sent), MSG_DONTWAIT);
    close(channel[0]);
    if (prebuilt) {
      EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "rc=0 step=none");
      ASSERT_EQ(got, static_cast<ssize_t>(hello_len));
      EXPECT_EQ(std::string(reinterpret_cast<char*>(sent), hello_len),
                std::string(reinterpret_cast<char*>(hello), hello_len));
    } else {
      EXPECT_EQ(std::string(buf, static_cast<size_t>(n)),
                "rc=" + std::to_string(-EINVAL) + " step=hello");
      EXPECT_EQ(got, -1) << "the lock-down sent a hello it did not get from its caller";
    }
  }
}

}  // namespace
}  // namespace vow
