// x509_oracle: the X.509 validation oracle's front end (the broker). Every certificate
// byte is parsed only by a worker locked to the `stdio` promise (see oracle.h); this
// process reads the files it is given, ships their bytes, and prints the verdicts.
// `x509_oracle SUBCOMMAND --help` describes each subcommand.
//
// Exit codes (every subcommand):
//   0  verify/query: the chain is valid; limbo: every judged case matched; serve: stopped
//      by SIGINT/SIGTERM
//   1  verify/query: the chain is not valid; limbo: some case MISMATCHed
//   2  bad input: usage errors, unreadable or malformed files, a request the worker
//      refused as unusable (the verdict's input_error)
//   3  internal error: the oracle could not start, a worker crashed or timed out (the
//      verdict's internal_error), the server could not be reached
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "examples/x509_oracle/limbo.h"
#include "examples/x509_oracle/oracle.h"
#include "examples/x509_oracle/protocol.h"
#include "examples/x509_oracle/server.h"
#include "examples/x509_oracle/verify.h"

namespace vow::x509 {
namespace {

constexpr int kExitValid = 0;
constexpr int kExitNotValid = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInternal = 3;

constexpr char kExitCodes[] =
    "exit codes: 0 valid (limbo: all judged cases match), 1 not valid (limbo: a MISMATCH),\n"
    "            2 bad input (usage, unreadable file, unusable request), 3 internal error\n";

constexpr char kMainUsage[] =
    "usage: x509_oracle SUBCOMMAND [FLAGS]   (x509_oracle SUBCOMMAND --help for details)\n"
    "  verify   one chain, in a fresh sandboxed worker\n"
    "  limbo    an x509-limbo testcase or suite file, in a pool of sandboxed workers\n"
    "  serve    a unix-socket server in front of a pool of sandboxed workers\n"
    "  query    a client of `serve`\n";

// The request flags verify and query share.
constexpr char kRequestFlags[] =
    "  --chain FILE       PEM (leaf first; more certificates are untrusted intermediates)\n"
    "                     or one DER certificate\n"
    "  --untrusted FILE   more intermediates (PEM)\n"
    "  --trusted FILE     trust anchors (PEM); default: the system bundle\n"
    "                     (/etc/ssl/certs/ca-certificates.crt), opened by the worker\n"
    "  --crls FILE        CRLs (PEM): revocation is checked for the whole chain\n"
    "  --host NAME        DNS name or IP literal to match\n"
    "  --email ADDR       RFC 822 address to match (instead of --host)\n"
    "  --no-name          no name check (neither --host nor --email)\n"
    "  --time T           validation time: RFC 3339 (2030-01-01T00:00:00Z) or Unix seconds;\n"
    "                     default: the broker's clock\n"
    "  --purpose NAME     OpenSSL purpose (default sslserver): ";

constexpr char kVerifyUsage[] =
    "usage: x509_oracle verify --chain FILE (--host NAME | --email ADDR | --no-name)\n"
    "                          [--untrusted FILE] [--trusted FILE] [--crls FILE]\n"
    "                          [--time T] [--purpose NAME | --client] [--max-depth N]\n"
    "                          [--audit]\n"
    "Verifies one chain in a fresh worker locked to `stdio` and prints the verdict (JSON):\n"
    "valid, error_code/error_string/error_depth (OpenSSL's), the chain built (subject,\n"
    "issuer, validity, SHA-256 per certificate), validation_time, openssl (version),\n"
    "input_error, internal_error.\n";

constexpr char kQueryUsage[] =
    "usage: x509_oracle query --socket PATH --chain FILE (--host NAME | --email ADDR |\n"
    "                         --no-name) [--untrusted FILE] [--trusted FILE] [--crls FILE]\n"
    "                         [--time T] [--purpose NAME | --client] [--max-depth N]\n"
    "                         [--timeout SECONDS]\n"
    "Sends one job to an `x509_oracle serve` socket and prints the verdict (JSON).\n";

constexpr char kLimboUsage[] =
    "usage: x509_oracle limbo FILE.json [--workers N] [--results OUT.json] [--audit]\n"
    "Judges every case of an x509-limbo suite (or one testcase object) the way limbo's\n"
    "OpenSSL harness does, in N pooled sandboxed workers at once (default 1). Prints one\n"
    "line per case and a summary on stdout, the throughput on stderr.\n"
    "  --results OUT.json   limbo's harness results format ({\"version\": 1, \"harness\",\n"
    "                       \"results\": [{\"id\", \"actual_result\", \"context\"}]})\n"
    "  A null validation_time is the broker's current time.\n";

constexpr char kServeUsage[] =
    "usage: x509_oracle serve --socket PATH [--workers N] [--fresh] [--max-connections N]\n"
    "                         [--timeout SECONDS] [--read-timeout SECONDS] [--audit]\n"
    "A unix-socket server (protocol.h) with a pool of persistent locked workers. One event\n"
    "loop reads every connection; a request takes a worker only once it has fully arrived,\n"
    "so idle and slow clients hold no worker and delay nobody.\n"
    "  --workers N          pool size, and requests verified at once (default 2)\n"
    "  --fresh              a new locked worker per request instead of the pool\n"
    "  --max-connections N  open connections at most (default 256); one more gets an\n"
    "                       internal_error verdict \"server busy: ...\" and is closed\n"
    "  --timeout S          per request in the oracle: waiting for a worker and verifying\n"
    "                       (default 30)\n"
    "  --read-timeout S     for a client to send each whole request, from its connect or\n"
    "                       its previous verdict, and to take each verdict; a client that\n"
    "                       sends nothing or too slowly is dropped (default 10)\n";

int Help(const char* usage) {
  fputs(usage, stdout);
  if (usage == kVerifyUsage || usage == kQueryUsage) {
    printf("%s%s\n  --client           same as --purpose sslclient\n"
           "  --max-depth N      X509_VERIFY_PARAM_set_depth\n",
           kRequestFlags, PurposeNames().c_str());
  }
  fputs(kExitCodes, stdout);
  return kExitValid;
}

int Usage(const char* usage, const std::string& message) {
  fprintf(stderr, "x509_oracle: %s\n%s", Sanitize(message).c_str(), usage);
  return kExitBadInput;
}

// Parsed command line: flags (with or without a value) and positional arguments.
struct Args {
  std::map<std::string, std::string> values;
  std::set<std::string> switches;
  std::vector<std::string> positional;
};

// `with_value`: flags that take a value; `switches`: flags that do not. Anything else
// that starts with "--" is an error.
std::optional<Args> ParseArgs(int argc, char** argv, const std::set<std::string>& with_value,
                              const std::set<std::string>& switches, std::string* error) {
  Args args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      args.positional.push_back(a);
      continue;
    }
    std::string name = a, value;
    bool has_value = false;
    size_t eq = a.find('=');
    if (eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (switches.count(name) != 0) {
      if (has_value) {
        *error = absl::StrCat(name, " takes no value");
        return std::nullopt;
      }
      args.switches.insert(name);
    } else if (with_value.count(name) != 0) {
      if (!has_value) {
        if (i + 1 >= argc) {
          *error = absl::StrCat(name, " needs a value");
          return std::nullopt;
        }
        value = argv[++i];
      }
      if (args.values.count(name) != 0) {
        *error = absl::StrCat(name, " given twice");
        return std::nullopt;
      }
      args.values[name] = value;
    } else {
      *error = absl::StrCat("unknown flag ", name);
      return std::nullopt;
    }
  }
  return args;
}

// Reads a whole file, at most `max` bytes (+1 to tell that it is larger).
bool ReadFile(const std::string& path, size_t max, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = absl::StrCat(path, ": ", strerror(errno));
    return false;
  }
  out->clear();
  char buf[65536];
  while (in && out->size() <= max) {
    in.read(buf, sizeof(buf));
    out->append(buf, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) {
    *error = absl::StrCat(path, ": read error");
    return false;
  }
  return true;
}

bool ParseCount(const Args& args, const std::string& flag, size_t lo, size_t hi, size_t* out,
                std::string* error) {
  auto it = args.values.find(flag);
  if (it == args.values.end()) return true;
  uint64_t n = 0;
  if (!absl::SimpleAtoi(it->second, &n) || n < lo || n > hi) {
    *error = absl::StrCat(flag, " must be a number in ", lo, "..", hi);
    return false;
  }
  *out = n;
  return true;
}

// --time: RFC 3339 or (optionally negative) Unix seconds.
absl::StatusOr<int64_t> ParseTimeFlag(const std::string& value) {
  int64_t t = 0;
  if (!value.empty() && value.find_first_not_of("-0123456789") == std::string::npos) {
    if (!absl::SimpleAtoi(value, &t)) return absl::InvalidArgumentError("not a number");
    return t;
  }
  return ParseRfc3339(value);
}

// The request flags of verify and query -> a request. Returns an exit code on error.
std::optional<int> BuildRequest(const char* usage, Args& args, VerifyRequest* req,
                                bool* has_time, TrustSource* trust) {
  std::string error;
  if (!args.positional.empty()) return Usage(usage, "unexpected argument " + args.positional[0]);
  if (args.values.count("--chain") == 0) return Usage(usage, "--chain FILE is required");
  int names = static_cast<int>(args.values.count("--host") + args.values.count("--email") +
                               args.switches.count("--no-name"));
  if (names != 1) return Usage(usage, "give exactly one of --host, --email, --no-name");
  if (args.values.count("--host") != 0) {
    req->host = args.values["--host"];
    if (req->host.empty()) return Usage(usage, "--host must not be empty");
  } else if (args.values.count("--email") != 0) {
    req->host = args.values["--email"];
    req->host_kind = VerifyRequest::HostKind::kEmail;
    if (req->host.empty()) return Usage(usage, "--email must not be empty");
  }
  if (args.switches.count("--client") != 0 && args.values.count("--purpose") != 0) {
    return Usage(usage, "--client and --purpose are exclusive");
  }
  if (args.switches.count("--client") != 0) req->purpose = kPurposeSslClient;
  if (args.values.count("--purpose") != 0) {
    std::optional<int> p = PurposeByName(args.values["--purpose"]);
    if (!p.has_value()) {
      return Usage(usage, absl::StrCat("--purpose ", args.values["--purpose"],
                                       ": unknown; one of ", PurposeNames()));
    }
    req->purpose = *p;
  }
  if (args.values.count("--max-depth") != 0) {
    int depth = 0;
    if (!absl::SimpleAtoi(args.values["--max-depth"], &depth) || depth < 0 ||
        depth > kMaxDepth) {
      return Usage(usage, absl::StrCat("--max-depth must be a number in 0..", kMaxDepth));
    }
    req->max_depth = depth;
  }
  *has_time = false;
  if (args.values.count("--time") != 0) {
    absl::StatusOr<int64_t> t = ParseTimeFlag(args.values["--time"]);
    if (!t.ok()) {
      return Usage(usage, absl::StrCat("--time ", args.values["--time"], ": ",
                                       t.status().message()));
    }
    req->time_unix = *t;
    *has_time = true;
  }
  *trust = args.values.count("--trusted") != 0 ? TrustSource::kRequest : TrustSource::kSystem;
  // The front end only reads the bytes; the worker parses them.
  size_t total = 0;
  for (auto [flag, field] : {std::pair<const char*, std::string*>{"--chain", &req->chain},
                             {"--untrusted", &req->untrusted},
                             {"--trusted", &req->trusted},
                             {"--crls", &req->crls}}) {
    auto it = args.values.find(flag);
    if (it == args.values.end()) continue;
    if (!ReadFile(it->second, kMaxJobBytes, field, &error)) {
      fprintf(stderr, "x509_oracle: %s %s\n", flag, Sanitize(error).c_str());
      return kExitBadInput;
    }
    if (field->empty()) {
      fprintf(stderr, "x509_oracle: %s %s: empty file\n", flag, Sanitize(it->second).c_str());
      return kExitBadInput;
    }
    total += field->size();
  }
  if (total + req->host.size() + kJobHeaderBytes > kMaxJobBytes) {
    fprintf(stderr, "x509_oracle: input of %zu bytes exceeds the limit of %u\n", total,
            kMaxJobBytes);
    return kExitBadInput;
  }
  return std::nullopt;
}

// Prints the verdict JSON and maps it to the exit code.
int Report(const std::string& json) {
  printf("%s\n", json.c_str());
  absl::StatusOr<Verdict> verdict = VerdictFromJson(json);
  if (!verdict.ok()) {
    fprintf(stderr, "x509_oracle: not a verdict: %s\n",
            Sanitize(verdict.status().message()).c_str());
    return kExitInternal;
  }
  if (verdict->valid) return kExitValid;
  if (!verdict->internal_error.empty()) return kExitInternal;
  if (!verdict->input_error.empty()) return kExitBadInput;
  return kExitNotValid;
}

const std::set<std::string> kRequestValueFlags = {"--chain", "--untrusted", "--trusted",
                                                  "--crls", "--host", "--email", "--time",
                                                  "--purpose", "--max-depth"};

int RunVerify(int argc, char** argv) {
  std::string error;
  std::optional<Args> args = ParseArgs(argc, argv, kRequestValueFlags,
                                       {"--client", "--no-name", "--audit", "--help"}, &error);
  if (!args.has_value()) return Usage(kVerifyUsage, error);
  if (args->switches.count("--help") != 0) return Help(kVerifyUsage);
  VerifyRequest req;
  bool has_time = false;
  TrustSource trust = TrustSource::kSystem;
  if (std::optional<int> rc = BuildRequest(kVerifyUsage, *args, &req, &has_time, &trust)) {
    return *rc;
  }
  OracleOptions options;
  options.workers = OracleOptions::Workers::kFresh;
  options.stderr_fd = STDERR_FILENO;
  options.audit_fd = args->switches.count("--audit") != 0 ? STDERR_FILENO : -1;
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(options);
  if (!oracle.ok()) {
    fprintf(stderr, "x509_oracle: %s\n", Sanitize(oracle.status().message()).c_str());
    return kExitInternal;
  }
  return Report((*oracle)->VerifyPayload(EncodeJob(req, has_time, trust)));
}

int RunQuery(int argc, char** argv) {
  std::string error;
  std::set<std::string> value_flags = kRequestValueFlags;
  value_flags.insert("--socket");
  value_flags.insert("--timeout");
  std::optional<Args> args =
      ParseArgs(argc, argv, value_flags, {"--client", "--no-name", "--help"}, &error);
  if (!args.has_value()) return Usage(kQueryUsage, error);
  if (args->switches.count("--help") != 0) return Help(kQueryUsage);
  if (args->values.count("--socket") == 0) return Usage(kQueryUsage, "--socket PATH is required");
  size_t timeout_s = 60;
  if (!ParseCount(*args, "--timeout", 1, 3600, &timeout_s, &error)) {
    return Usage(kQueryUsage, error);
  }
  std::string socket_path = args->values["--socket"];
  args->values.erase("--socket");
  args->values.erase("--timeout");
  VerifyRequest req;
  bool has_time = false;
  TrustSource trust = TrustSource::kSystem;
  if (std::optional<int> rc = BuildRequest(kQueryUsage, *args, &req, &has_time, &trust)) {
    return *rc;
  }
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return Usage(kQueryUsage, "--socket path is too long");
  }
  memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    fprintf(stderr, "x509_oracle: cannot connect to %s: %s\n", Sanitize(socket_path).c_str(),
            strerror(errno));
    return kExitInternal;
  }
  absl::StatusOr<std::string> json =
      RoundTrip(fd.get(), EncodeJob(req, has_time, trust),
                absl::Now() + absl::Seconds(static_cast<int64_t>(timeout_s)));
  if (!json.ok()) {
    fprintf(stderr, "x509_oracle: %s: %s\n", Sanitize(socket_path).c_str(),
            Sanitize(json.status().message()).c_str());
    return kExitInternal;
  }
  return Report(*json);
}

int RunLimboCommand(int argc, char** argv) {
  std::string error;
  std::optional<Args> args =
      ParseArgs(argc, argv, {"--workers", "--results"}, {"--audit", "--help"}, &error);
  if (!args.has_value()) return Usage(kLimboUsage, error);
  if (args->switches.count("--help") != 0) return Help(kLimboUsage);
  if (args->positional.size() != 1) return Usage(kLimboUsage, "limbo needs exactly one FILE.json");
  size_t workers = 1;
  if (!ParseCount(*args, "--workers", 1, 64, &workers, &error)) return Usage(kLimboUsage, error);
  std::string json;
  constexpr size_t kMaxLimboBytes = size_t{1} << 30;
  const std::string& path = args->positional[0];
  if (!ReadFile(path, kMaxLimboBytes, &json, &error)) {
    fprintf(stderr, "x509_oracle: %s\n", Sanitize(error).c_str());
    return kExitBadInput;
  }
  if (json.size() > kMaxLimboBytes) {
    fprintf(stderr, "x509_oracle: %s: larger than 1 GiB\n", Sanitize(path).c_str());
    return kExitBadInput;
  }
  // A null validation_time means "now": the broker's real clock (limbo.h says why this is
  // what the harness does too).
  absl::StatusOr<std::vector<LimboCase>> cases =
      ParseLimbo(json, absl::ToUnixSeconds(absl::Now()));
  if (!cases.ok()) {
    fprintf(stderr, "x509_oracle: %s: %s\n", Sanitize(path).c_str(),
            Sanitize(cases.status().message()).c_str());
    return kExitBadInput;
  }
  OracleOptions options;
  options.pool_size = workers;
  options.stderr_fd = STDERR_FILENO;
  options.audit_fd = args->switches.count("--audit") != 0 ? STDERR_FILENO : -1;
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(options);
  if (!oracle.ok()) {
    fprintf(stderr, "x509_oracle: %s\n", Sanitize(oracle.status().message()).c_str());
    return kExitInternal;
  }
  Oracle* o = oracle->get();
  std::atomic<int> internal_errors{0};
  absl::Time start = absl::Now();
  LimboReport report = RunLimbo(
      *cases,
      [o, &internal_errors](const VerifyRequest& req) {
        Verdict v = o->Verify(req);
        if (!v.internal_error.empty()) internal_errors.fetch_add(1);
        return v;
      },
      static_cast<int>(workers));
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (const std::string& line : report.lines) printf("%s\n", line.c_str());
  printf("%s\n", report.summary.c_str());
  int judged = report.total - report.skipped;
  fprintf(stderr, "x509_oracle: %d cases judged in %.3f s: %.0f cases/s (%zu workers)\n",
          judged, seconds, seconds > 0 ? judged / seconds : 0.0, workers);
  if (args->values.count("--results") != 0) {
    const std::string& out_path = args->values["--results"];
    std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
    out << LimboResultsJson(report,
                            absl::StrCat("vow-openssl-", OpenSSL_version(OPENSSL_VERSION_STRING)));
    out.close();
    if (!out) {
      fprintf(stderr, "x509_oracle: --results %s: cannot write\n", Sanitize(out_path).c_str());
      return kExitInternal;
    }
  }
  if (internal_errors.load() > 0) {
    fprintf(stderr, "x509_oracle: %d cases hit an internal error\n", internal_errors.load());
    return kExitInternal;
  }
  return report.mismatched == 0 ? kExitValid : kExitNotValid;
}

int RunServe(int argc, char** argv) {
  std::string error;
  std::optional<Args> args =
      ParseArgs(argc, argv,
                {"--socket", "--workers", "--max-connections", "--timeout", "--read-timeout"},
                {"--fresh", "--audit", "--help"}, &error);
  if (!args.has_value()) return Usage(kServeUsage, error);
  if (args->switches.count("--help") != 0) return Help(kServeUsage);
  if (!args->positional.empty()) {
    return Usage(kServeUsage, "unexpected argument " + args->positional[0]);
  }
  if (args->values.count("--socket") == 0) return Usage(kServeUsage, "serve needs --socket PATH");
  OracleOptions options;
  ServerOptions server_options;
  server_options.socket_path = args->values["--socket"];
  size_t timeout_s = 30;
  size_t read_timeout_s = 10;
  if (!ParseCount(*args, "--workers", 1, 256, &options.pool_size, &error) ||
      !ParseCount(*args, "--max-connections", 1, 4096, &server_options.max_connections,
                  &error) ||
      !ParseCount(*args, "--timeout", 1, 3600, &timeout_s, &error) ||
      !ParseCount(*args, "--read-timeout", 1, 3600, &read_timeout_s, &error)) {
    return Usage(kServeUsage, error);
  }
  options.timeout = absl::Seconds(static_cast<int64_t>(timeout_s));
  server_options.io_timeout = absl::Seconds(static_cast<int64_t>(read_timeout_s));
  server_options.verifiers = options.pool_size;
  if (args->switches.count("--fresh") != 0) options.workers = OracleOptions::Workers::kFresh;
  options.stderr_fd = STDERR_FILENO;
  options.audit_fd = args->switches.count("--audit") != 0 ? STDERR_FILENO : -1;

  // Every thread (and so every worker until its lock-down resets the mask) starts with
  // these blocked; the main thread takes them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(options);
  if (!oracle.ok()) {
    fprintf(stderr, "x509_oracle: %s\n", Sanitize(oracle.status().message()).c_str());
    return kExitInternal;
  }
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(oracle->get(), server_options);
  if (!server.ok()) {
    fprintf(stderr, "x509_oracle: %s\n", Sanitize(server.status().message()).c_str());
    return kExitInternal;
  }
  fprintf(stderr, "x509_oracle: serving on %s (%s)\n", server_options.socket_path.c_str(),
          options.workers == OracleOptions::Workers::kFresh
              ? "a fresh worker per request"
              : absl::StrCat(options.pool_size, " pooled workers").c_str());
  int sig = 0;
  sigwait(&stop_signals, &sig);
  fprintf(stderr, "x509_oracle: %s, stopping after %llu requests\n", strsignal(sig),
          static_cast<unsigned long long>((*server)->requests_served()));
  (*server)->Stop();
  return 0;
}

}  // namespace
}  // namespace vow::x509

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  using namespace vow::x509;  // NOLINT
  if (argc < 2) return Usage(kMainUsage, "missing subcommand");
  std::string sub = argv[1];
  if (sub == "verify") return RunVerify(argc - 2, argv + 2);
  if (sub == "limbo") return RunLimboCommand(argc - 2, argv + 2);
  if (sub == "serve") return RunServe(argc - 2, argv + 2);
  if (sub == "query") return RunQuery(argc - 2, argv + 2);
  if (sub == "--help" || sub == "-h" || sub == "help") return Help(kMainUsage);
  return Usage(kMainUsage, "unknown subcommand " + sub);
}
