#include "broker/run_flags.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "broker/policy_check.h"
#include "policies/policy_file.h"

namespace vow {
namespace {

struct Option {
  const char* long_name;  // without "--"
  char short_name;        // 0: none
  bool takes_value;
};
constexpr std::array<Option, 8> kOptions = {{
    {"promises", 'p', true},
    {"execpromises", 0, true},
    {"unveil", 'v', true},
    {"policy", 0, true},
    {"audit", 0, false},
    {"explain", 0, false},
    {"vow-worker", 0, false},
    {"help", 'h', false},
}};

absl::Status Usage(absl::string_view message) { return absl::InvalidArgumentError(message); }

// The long option closest to `name` (one or two edits), for "did you mean".
std::string NearestOption(absl::string_view name) {
  std::string best;
  size_t best_distance = 3;
  for (const Option& o : kOptions) {
    const absl::string_view c = o.long_name;
    // Levenshtein distance, small strings.
    std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= name.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (name[i - 1] != c[j - 1])});
      }
      prev.swap(cur);
    }
    if (prev[c.size()] < best_distance) {
      best_distance = prev[c.size()];
      best = std::string(c);
    }
  }
  return best;
}

absl::Status Apply(const Option& o, const std::string& value, RunFlags* flags) {
  const std::string name = o.long_name;
  if (name == "promises") {
    flags->promises = value;
  } else if (name == "execpromises") {
    if (flags->exec_promises.has_value()) return Usage("--execpromises is given twice");
    flags->exec_promises = value;
  } else if (name == "unveil") {
    flags->unveils.push_back(value);
  } else if (name == "policy") {
    if (!flags->policy_file.empty()) return Usage("--policy is given twice");
    if (value.empty()) return Usage("--policy needs a file name");
    flags->policy_file = value;
  } else if (name == "audit") {
    flags->audit = true;
  } else if (name == "explain") {
    flags->explain = true;
  } else if (name == "vow-worker") {
    flags->vow_worker = true;
  } else {
    flags->help = true;
  }
  return absl::OkStatus();
}

std::string PermsText(const PathRule& r) {
  std::string out;
  if (r.read) out += 'r';
  if (r.write) out += 'w';
  if (r.exec) out += 'x';
  if (r.create) out += 'c';
  return out.empty() ? "none" : out;
}

}  // namespace

absl::StatusOr<RunFlags> ParseRunFlags(const std::vector<std::string>& args) {
  RunFlags flags;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // the program
    const Option* option = nullptr;
    std::optional<std::string> value;
    std::string shown;
    if (arg[1] == '-') {
      const size_t eq = arg.find('=');
      const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) value = arg.substr(eq + 1);
      shown = "--" + name;
      for (const Option& o : kOptions) {
        if (name == o.long_name) option = &o;
      }
      if (option == nullptr) {
        const std::string near = NearestOption(name);
        return Usage(absl::StrCat("unknown option ", shown,
                                  near.empty() ? "" : absl::StrCat("; did you mean --", near, "?")));
      }
    } else {
      shown = arg.substr(0, 2);
      for (const Option& o : kOptions) {
        if (o.short_name != 0 && arg[1] == o.short_name) option = &o;
      }
      if (option == nullptr) return Usage(absl::StrCat("unknown option ", shown));
      if (arg.size() > 2) {
        if (!option->takes_value) return Usage(absl::StrCat("unknown option ", arg));
        value = arg.substr(2);  // -pstdio, as getopt takes it
      }
    }
    if (option->takes_value && !value.has_value()) {
      if (i + 1 >= args.size()) return Usage(absl::StrCat(shown, " needs a value"));
      value = args[++i];
    }
    if (!option->takes_value && value.has_value()) {
      return Usage(absl::StrCat(shown, " takes no value"));
    }
    RETURN_IF_ERROR(Apply(*option, value.value_or(""), &flags));
  }
  for (; i < args.size(); ++i) flags.argv.push_back(args[i]);
  return flags;
}

std::string AbsoluteNormalized(const std::string& path, const std::string& cwd) {
  const bool relative = !path.empty() && path[0] != '/';
  if (relative && (cwd.empty() || cwd[0] != '/')) return "";
  const std::string joined = relative ? cwd + "/" + path : path;
  if (joined.empty() || joined[0] != '/') return "";
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(joined, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return "/" + absl::StrJoin(parts, "/");
}

absl::StatusOr<PathRule> ParseUnveilFlag(const std::string& value, const std::string& cwd) {
  const std::string shown = absl::StrCat("-v ", value);
  std::string path = value;
  PathRule rule;
  rule.read = true;
  const size_t colon = value.find(':');
  bool letters = colon != std::string::npos && colon > 0;
  for (size_t i = 0; letters && i < colon; ++i) letters = value[i] >= 'a' && value[i] <= 'z';
  if (letters) {
    rule.read = false;
    for (size_t i = 0; i < colon; ++i) {
      const char c = value[i];
      bool* bit = c == 'r' ? &rule.read : c == 'w' ? &rule.write : c == 'x' ? &rule.exec
                                          : c == 'c' ? &rule.create : nullptr;
      if (bit == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            shown, ": unknown permission '", std::string(1, c), "'; use r, w, x and c"));
      }
      if (*bit) {
        return absl::InvalidArgumentError(
            absl::StrCat(shown, ": permission '", std::string(1, c), "' is given twice"));
      }
      *bit = true;
    }
    path = value.substr(colon + 1);
  }
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(shown, ": no path"));
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(shown, ": the path holds a NUL byte"));
  }
  rule.path = AbsoluteNormalized(path, cwd);
  if (rule.path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(shown, ": cannot make the path absolute (no current directory)"));
  }
  return rule;
}

absl::StatusOr<PromiseSet> ParsePromisesFlag(const std::string& value) {
  PromiseSet set;
  for (absl::string_view word : absl::StrSplit(value, absl::ByAnyChar(" \t,"), absl::SkipEmpty())) {
    const std::optional<Promise> p = PromiseFromName(word);
    if (!p.has_value()) {
      const std::optional<std::string> near = NearestPromiseName(word);
      return absl::InvalidArgumentError(
          absl::StrCat("-p: unknown promise \"", word, "\"",
                       near.has_value() ? absl::StrCat("; did you mean \"", *near, "\"?") : ""));
    }
    if (set.contains(*p)) {
      return absl::InvalidArgumentError(absl::StrCat("-p: promise \"", word, "\" is given twice"));
    }
    set.insert(*p);
  }
  if (set.empty()) {
    return absl::InvalidArgumentError("-p: no promise given (e.g. -p 'stdio rpath')");
  }
  return set;
}

absl::StatusOr<Policy> PolicyFromRunFlags(const RunFlags& flags, const std::string& cwd) {
  Policy policy;
  if (!flags.policy_file.empty()) {
    ASSIGN_OR_RETURN(policy, LoadPolicyFile(flags.policy_file));
  }
  if (flags.promises.has_value()) {
    ASSIGN_OR_RETURN(const PromiseSet promises, ParsePromisesFlag(*flags.promises));
    if (!flags.policy_file.empty() && !(promises == policy.promises)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-p \"", promises.ToString(), "\" conflicts with ", flags.policy_file,
          ", whose promises are \"", policy.promises.ToString(),
          "\" (without a promises line a file has \"stdio\"); set them in one place"));
    }
    policy.promises = promises;
  }
  if (flags.exec_promises.has_value()) {
    absl::StatusOr<PromiseSet> parsed = ParsePromisesFlag(*flags.exec_promises);
    if (!parsed.ok()) {
      absl::string_view m = parsed.status().message();
      absl::ConsumePrefix(&m, "-p: ");
      return absl::InvalidArgumentError(absl::StrCat("--execpromises: ", m));
    }
    const PromiseSet exec = *parsed;
    if (policy.exec_promises.has_value() && !(exec == *policy.exec_promises)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--execpromises \"", exec.ToString(), "\" conflicts with ", flags.policy_file,
          ", whose execpromises are \"", policy.exec_promises->ToString(),
          "\"; set them in one place"));
    }
    policy.exec_promises = exec;
  }
  for (const std::string& v : flags.unveils) {
    ASSIGN_OR_RETURN(const PathRule rule, ParseUnveilFlag(v, cwd));
    bool duplicate = false;
    for (const PathRule& existing : policy.paths) {
      if (existing.path != rule.path) continue;
      if (existing.read != rule.read || existing.write != rule.write ||
          existing.exec != rule.exec || existing.create != rule.create) {
        return absl::InvalidArgumentError(absl::StrCat(
            "-v ", v, " conflicts with the rule \"", existing.path, " ", PermsText(existing),
            "\"", flags.policy_file.empty() ? " of an earlier -v" : " of " + flags.policy_file,
            " for the same path"));
      }
      duplicate = true;
    }
    if (!duplicate) policy.paths.push_back(rule);
  }
  absl::Status valid = ValidatePolicy(policy);
  if (!valid.ok()) {
    const std::string source = flags.policy_file.empty() ? "the flags" : flags.policy_file;
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", valid.message()));
  }
  return policy;
}

absl::StatusOr<std::string> FindProgram(const std::string& program, const char* path_env,
                                        const std::string& cwd) {
  if (program.empty()) return absl::NotFoundError("an empty program name");
  // 0: executable regular file; ENOENT-like; EACCES: exists, not executable.
  auto probe = [](const std::string& candidate) {
    struct stat st;
    if (stat(candidate.c_str(), &st) != 0) return errno == EACCES ? EACCES : ENOENT;
    if (!S_ISREG(st.st_mode)) return EACCES;
    return access(candidate.c_str(), X_OK) == 0 ? 0 : EACCES;
  };
  std::vector<std::string> candidates;
  if (program.find('/') != std::string::npos) {
    candidates.push_back(AbsoluteNormalized(program, cwd));
  } else {
    const std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      const std::string base = dir.empty() ? cwd : AbsoluteNormalized(std::string(dir), cwd);
      if (base.empty()) continue;
      candidates.push_back(base == "/" ? "/" + program : base + "/" + program);
    }
  }
  bool denied = false;
  for (const std::string& c : candidates) {
    if (c.empty()) continue;
    const int r = probe(c);
    if (r == 0) return c;
    if (r == EACCES) denied = true;
  }
  if (denied) return absl::PermissionDeniedError(absl::StrCat(program, ": permission denied"));
  return absl::NotFoundError(absl::StrCat(program, ": not found"));
}

}  // namespace vow
