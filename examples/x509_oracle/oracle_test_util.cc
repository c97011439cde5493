#include "examples/x509_oracle/oracle_test_util.h"

#include <dirent.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/syscall.h"

namespace vow::x509::testing {

VerifyRequest ValidRequest(const ValidChainPems& pems) {
  VerifyRequest r;
  r.chain = pems.leaf + pems.intermediate;
  r.trusted = pems.root;
  r.host = "www.example.com";
  r.time_unix = kCorpusTime;
  return r;
}

namespace {

std::string LeafDer(const ValidChainPems& pems) {
  std::string der;
  BIO* bio = BIO_new_mem_buf(pems.leaf.data(), static_cast<int>(pems.leaf.size()));
  X509* x = bio != nullptr ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
  unsigned char* buf = nullptr;
  int n = x != nullptr ? i2d_X509(x, &buf) : -1;
  if (n > 0) der.assign(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  X509_free(x);
  BIO_free(bio);
  if (der.empty()) abort();  // a broken test environment
  return der;
}

}  // namespace

std::vector<BadInput> MakeBadInputs(const ValidChainPems& pems) {
  std::vector<BadInput> out;
  VerifyRequest r = ValidRequest(pems);
  r.chain = "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
  out.push_back({"garbage_pem", r, "chain: bad PEM certificate #1"});

  r = ValidRequest(pems);
  r.chain = "\x01\x02garbage that is neither PEM nor DER";
  out.push_back({"garbage_bytes", r, "neither PEM nor a DER certificate"});

  std::string der = LeafDer(pems);
  r = ValidRequest(pems);
  r.chain = der.substr(0, der.size() / 2);
  r.untrusted = pems.intermediate;
  out.push_back({"truncated_der", r, "neither PEM nor a DER certificate"});

  r = ValidRequest(pems);
  std::string chain = pems.leaf;
  chain.reserve(10000 * pems.intermediate.size());
  for (int i = 1; i < 10000; ++i) chain += pems.intermediate;
  r.chain = std::move(chain);
  out.push_back({"ten_thousand_certificates", r, "chain: more than 100 certificates"});

  r = ValidRequest(pems);
  r.chain = std::string(50 << 20, 'A');
  out.push_back({"fifty_megabytes", r, "52428800 bytes (at most 16777216)"});

  r = ValidRequest(pems);
  r.host = std::string("www.example.com\0.evil.com", 25);
  out.push_back({"nul_in_hostname", r, "host contains a NUL byte (at offset 15)"});
  return out;
}

std::string ReadTestdata(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::string path = absl::StrCat(srcdir != nullptr ? srcdir : ".",
                                   "/vow/examples/x509_oracle/testdata/", name);
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  UniqueFd owned(fd);
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "connect");
  }
  return owned;
}

int CountOpenFds(bool skip_namespaces) {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (skip_namespaces) {
      char link[64];
      const ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
      const absl::string_view target(link, len > 0 ? len : 0);
      if (absl::StartsWith(target, "net:[") || absl::StartsWith(target, "ipc:[")) continue;
    }
    ++n;
  }
  closedir(d);
  return n - 1;  // the directory's own fd
}

std::string SocketDir() {
  // $TEST_TMPDIR is often too long for sun_path (108 bytes), and /tmp is shared with
  // concurrent runs: a private directory per process (left behind, it is tiny).
  static const std::string dir = [] {
    char templ[] = "/tmp/vow-x509-XXXXXX";
    if (mkdtemp(templ) == nullptr) abort();
    return std::string(templ);
  }();
  return dir;
}

}  // namespace vow::x509::testing
