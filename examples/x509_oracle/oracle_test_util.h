// Test support (testonly) for the sandboxed oracle's tests and benchmark: hostile
// requests, testdata access, unix-socket clients and an fd count. Runs in the test
// (broker) process.
#ifndef VOW_EXAMPLES_X509_ORACLE_ORACLE_TEST_UTIL_H_
#define VOW_EXAMPLES_X509_ORACLE_ORACLE_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "examples/x509_oracle/corpus.h"
#include "examples/x509_oracle/verify.h"

namespace vow::x509::testing {

// A hostile request and the substring its verdict's input_error must contain.
struct BadInput {
  std::string name;
  VerifyRequest request;
  std::string expect_input_error;
};

// Garbage PEM, truncated DER, a 10,000-certificate chain, a 50 MB chain, a NUL in the
// host name (each otherwise a valid request for `pems` at kCorpusTime).
std::vector<BadInput> MakeBadInputs(const ValidChainPems& pems);

// A request that is valid for `pems` at kCorpusTime.
VerifyRequest ValidRequest(const ValidChainPems& pems);

// The contents of examples/x509_oracle/testdata/<name> (from the test's runfiles).
std::string ReadTestdata(const std::string& name);

// A connected SOCK_STREAM socket to the unix socket `path`.
absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path);

// How many fds this process has open.
// Open fds of this process. With skip_namespaces, network and IPC namespace fds are not
// counted: a prepared policy whose workers share one pair takes it from the broker's stock
// at a spawn of its choosing and holds it for the policy's lifetime (README "Spawn, round 7
// (h51)"), so their number changes while a pool serves without anything leaking.
int CountOpenFds(bool skip_namespaces = false);

// A fresh directory for sockets (one per process, under /tmp: short enough for sun_path).
std::string SocketDir();

}  // namespace vow::x509::testing

#endif  // VOW_EXAMPLES_X509_ORACLE_ORACLE_TEST_UTIL_H_
