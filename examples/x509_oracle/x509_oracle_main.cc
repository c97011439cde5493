// x509_oracle: the X.509 validation oracle's front end (the broker). Every certificate
// byte is parsed only by a worker locked to the `stdio` promise (see oracle.h); this
// process reads the files it is given, ships their bytes, and prints the verdicts.
//
//   x509_oracle verify --chain FILE [--untrusted FILE] [--trusted FILE] --host NAME
//                      [--time RFC3339] [--client] [--audit]
//   x509_oracle limbo FILE.json [--workers N] [--audit]
//   x509_oracle serve --socket PATH [--workers N] [--fresh] [--max-connections N]
//                     [--timeout SECONDS] [--audit]
//
// Exit codes: verify 0 valid, 1 not valid; limbo 0 every judged case matched, 1 some
// MISMATCH; serve 0 after SIGINT/SIGTERM; 2 for usage errors, unreadable files and
// anything that kept the oracle from starting.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
#include "absl/time/time.h"
#include "examples/x509_oracle/limbo.h"
#include "examples/x509_oracle/oracle.h"
#include "examples/x509_oracle/protocol.h"
#include "examples/x509_oracle/server.h"
#include "examples/x509_oracle/verify.h"

namespace vow::x509 {
namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  x509_oracle verify --chain FILE [--untrusted FILE] [--trusted FILE] --host NAME\n"
    "                     [--time RFC3339] [--client] [--audit]\n"
    "  x509_oracle limbo FILE.json [--workers N] [--audit]\n"
    "  x509_oracle serve --socket PATH [--workers N] [--fresh] [--max-connections N]\n"
    "                    [--timeout SECONDS] [--audit]\n";

int Usage(const std::string& message) {
  fprintf(stderr, "x509_oracle: %s\n%s", message.c_str(), kUsage);
  return 2;
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

int RunVerify(int argc, char** argv) {
  std::string error;
  std::optional<Args> args = ParseArgs(argc, argv, {"--chain", "--untrusted", "--trusted",
                                                    "--host", "--time"},
                                       {"--client", "--audit"}, &error);
  if (!args.has_value()) return Usage(error);
  if (!args->positional.empty()) return Usage("unexpected argument " + args->positional[0]);
  if (args->values.count("--chain") == 0) return Usage("verify needs --chain FILE");
  if (args->values.count("--host") == 0) return Usage("verify needs --host NAME");
  VerifyRequest req;
  req.host = args->values["--host"];
  if (req.host.empty()) return Usage("--host must not be empty");
  req.kind = args->switches.count("--client") != 0 ? VerifyRequest::Kind::kClient
                                                   : VerifyRequest::Kind::kServer;
  bool has_time = false;
  if (args->values.count("--time") != 0) {
    absl::StatusOr<int64_t> t = ParseRfc3339(args->values["--time"]);
    if (!t.ok()) {
      return Usage(absl::StrCat("--time ", args->values["--time"], ": ", t.status().message()));
    }
    req.time_unix = *t;
    has_time = true;
  }
  // The front end only reads the bytes; the worker parses them. A file larger than a
  // whole job can be is refused here, with a verdict like any other unusable input.
  size_t total = 0;
  for (auto [flag, field] : {std::pair<const char*, std::string*>{"--chain", &req.chain},
                             {"--untrusted", &req.untrusted},
                             {"--trusted", &req.trusted}}) {
    auto it = args->values.find(flag);
    if (it == args->values.end()) continue;
    if (!ReadFile(it->second, kMaxJobBytes, field, &error)) {
      fprintf(stderr, "x509_oracle: %s %s\n", flag, error.c_str());
      return 2;
    }
    if (field->empty()) {
      fprintf(stderr, "x509_oracle: %s %s: empty file\n", flag, it->second.c_str());
      return 2;
    }
    total += field->size();
  }
  if (total + req.host.size() + kJobHeaderBytes > kMaxJobBytes) {
    printf("%s\n", VerdictToJson(ErrorVerdict(absl::StrCat(
                       "input of ", total, " bytes exceeds the limit of ", kMaxJobBytes)))
                       .c_str());
    return 1;
  }
  OracleOptions options;
  options.workers = OracleOptions::Workers::kFresh;
  options.stderr_fd = STDERR_FILENO;
  options.audit_fd = args->switches.count("--audit") != 0 ? STDERR_FILENO : -1;
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(options);
  if (!oracle.ok()) {
    fprintf(stderr, "x509_oracle: %s\n", std::string(oracle.status().message()).c_str());
    return 2;
  }
  std::string json = (*oracle)->VerifyPayload(EncodeJob(req, has_time));
  printf("%s\n", json.c_str());
  absl::StatusOr<Verdict> verdict = VerdictFromJson(json);
  return verdict.ok() && verdict->valid ? 0 : 1;
}

int RunLimboCommand(int argc, char** argv) {
  std::string error;
  std::optional<Args> args = ParseArgs(argc, argv, {"--workers"}, {"--audit"}, &error);
  if (!args.has_value()) return Usage(error);
  if (args->positional.size() != 1) return Usage("limbo needs exactly one FILE.json");
  size_t workers = 1;
  if (!ParseCount(*args, "--workers", 1, 64, &workers, &error)) return Usage(error);
  std::string json;
  constexpr size_t kMaxLimboBytes = size_t{1} << 30;
  if (!ReadFile(args->positional[0], kMaxLimboBytes, &json, &error)) {
    fprintf(stderr, "x509_oracle: %s\n", error.c_str());
    return 2;
  }
  if (json.size() > kMaxLimboBytes) {
    fprintf(stderr, "x509_oracle: %s: larger than 1 GiB\n", args->positional[0].c_str());
    return 2;
  }
  // A null validation_time means "now": the broker's real clock, the same clock rule the
  // workers have.
  absl::StatusOr<std::vector<LimboCase>> cases =
      ParseLimbo(json, absl::ToUnixSeconds(absl::Now()));
  if (!cases.ok()) {
    fprintf(stderr, "x509_oracle: %s: %s\n", args->positional[0].c_str(),
            std::string(cases.status().message()).c_str());
    return 2;
  }
  OracleOptions options;
  options.pool_size = workers;
  options.stderr_fd = STDERR_FILENO;
  options.audit_fd = args->switches.count("--audit") != 0 ? STDERR_FILENO : -1;
  absl::StatusOr<std::unique_ptr<Oracle>> oracle = Oracle::Create(options);
  if (!oracle.ok()) {
    fprintf(stderr, "x509_oracle: %s\n", std::string(oracle.status().message()).c_str());
    return 2;
  }
  Oracle* o = oracle->get();
  LimboReport report =
      vow::x509::RunLimbo(*cases, [o](const VerifyRequest& req) { return o->Verify(req); });
  for (const std::string& line : report.lines) printf("%s\n", line.c_str());
  printf("%s\n", report.summary.c_str());
  return report.mismatched == 0 ? 0 : 1;
}

int RunServe(int argc, char** argv) {
  std::string error;
  std::optional<Args> args =
      ParseArgs(argc, argv, {"--socket", "--workers", "--max-connections", "--timeout"},
                {"--fresh", "--audit"}, &error);
  if (!args.has_value()) return Usage(error);
  if (!args->positional.empty()) return Usage("unexpected argument " + args->positional[0]);
  if (args->values.count("--socket") == 0) return Usage("serve needs --socket PATH");
  OracleOptions options;
  ServerOptions server_options;
  server_options.socket_path = args->values["--socket"];
  size_t timeout_s = 30;
  if (!ParseCount(*args, "--workers", 1, 256, &options.pool_size, &error) ||
      !ParseCount(*args, "--max-connections", 1, 4096, &server_options.max_connections,
                  &error) ||
      !ParseCount(*args, "--timeout", 1, 3600, &timeout_s, &error)) {
    return Usage(error);
  }
  options.timeout = absl::Seconds(static_cast<int64_t>(timeout_s));
  server_options.io_timeout = options.timeout;
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
    fprintf(stderr, "x509_oracle: %s\n", std::string(oracle.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(oracle->get(), server_options);
  if (!server.ok()) {
    fprintf(stderr, "x509_oracle: %s\n", std::string(server.status().message()).c_str());
    return 2;
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
  if (argc < 2) return vow::x509::Usage("missing subcommand");
  std::string sub = argv[1];
  if (sub == "verify") return vow::x509::RunVerify(argc - 2, argv + 2);
  if (sub == "limbo") return vow::x509::RunLimboCommand(argc - 2, argv + 2);
  if (sub == "serve") return vow::x509::RunServe(argc - 2, argv + 2);
  if (sub == "--help" || sub == "-h" || sub == "help") {
    fputs(vow::x509::kUsage, stdout);
    return 0;
  }
  return vow::x509::Usage("unknown subcommand " + sub);
}
