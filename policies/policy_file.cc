#include "policies/policy_file.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "base/unique_fd.h"

namespace vow {
namespace {

// Longest path the kernel accepts (PATH_MAX counts the NUL).
constexpr size_t kMaxPathBytes = 4095;
// sizeof(sockaddr_un::sun_path) minus the NUL.
constexpr size_t kMaxUnixPathBytes = 107;
// Durations (clock offset, wall_time) are at most 100 years of 365 days.
constexpr int64_t kMaxDurationNanos = int64_t{36500} * 24 * 3600 * 1000000000;
// Error messages quote at most this many bytes of what they found.
constexpr size_t kMaxQuotedBytes = 64;

constexpr std::array<absl::string_view, 10> kDirectives = {
    "promises", "penalty", "unveil", "connect",  "clock",
    "limit",    "layers",  "identity", "libc",   "execpromises"};
// In Layer order.
constexpr std::array<absl::string_view, kLayerCount> kLayerNames = {
    "userns", "mountns", "netns", "ipcns", "utsns", "pidns", "landlock"};
constexpr std::array<absl::string_view, 3> kIdentityWords = {"nobody", "keep", "UID:GID"};
constexpr std::array<absl::string_view, 2> kLibcWords = {"default", "none"};
constexpr std::array<absl::string_view, 4> kPenalties = {"kill", "errno", "trap", "log"};
constexpr std::array<absl::string_view, 3> kTransports = {"tcp", "udp", "unix"};
constexpr std::array<absl::string_view, 4> kClockKinds = {"real", "fixed", "offset", "none"};
constexpr std::array<absl::string_view, 6> kLimitNames = {
    "open_fds", "requests_per_second", "message_bytes", "cpu_seconds", "memory", "wall_time"};

struct DurationUnit {
  absl::string_view suffix;
  int64_t nanos;
};
// Largest first (DurationText picks the largest exact one).
constexpr std::array<DurationUnit, 7> kDurationUnits = {{
    {"d", int64_t{86400} * 1000000000},
    {"h", int64_t{3600} * 1000000000},
    {"m", int64_t{60} * 1000000000},
    {"s", 1000000000},
    {"ms", 1000000},
    {"us", 1000},
    {"ns", 1},
}};

struct SizeUnit {
  char suffix;
  int shift;
};
constexpr std::array<SizeUnit, 4> kSizeUnits = {{{'T', 40}, {'G', 30}, {'M', 20}, {'K', 10}}};

// `s` in double quotes, C-escaped, cut to kMaxQuotedBytes, for error messages.
std::string Quote(absl::string_view s) {
  if (s.size() > kMaxQuotedBytes) {
    return absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMaxQuotedBytes)), "...\"");
  }
  return absl::StrCat("\"", absl::CHexEscape(s), "\"");
}

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Optimal string alignment distance (Levenshtein plus adjacent transpositions),
// comparing ASCII letters case-insensitively.
int EditDistance(absl::string_view a, absl::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const int cost = AsciiLower(a[i - 1]) == AsciiLower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && AsciiLower(a[i - 1]) == AsciiLower(b[j - 2]) &&
          AsciiLower(a[i - 2]) == AsciiLower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

// The candidate closest to `unknown`, if it is a plausible typo (see NearestPromiseName).
std::optional<std::string> Nearest(absl::string_view unknown,
                                   absl::Span<const absl::string_view> candidates) {
  // Every candidate is short; a long word cannot be within 2 edits of one.
  if (unknown.empty() || unknown.size() > 32) return std::nullopt;
  const int allowed = std::min<int>(2, std::max<int>(1, static_cast<int>(unknown.size()) / 2));
  int best = allowed + 1;
  std::optional<std::string> best_name;
  for (absl::string_view c : candidates) {
    const int d = EditDistance(unknown, c);
    if (d < best) {
      best = d;
      best_name = std::string(c);
    }
  }
  return best_name;
}

// "; did you mean "x"?" or "; expected one of a, b, c".
std::string Suggestion(absl::Span<const absl::string_view> candidates,
                       std::optional<std::string> nearest) {
  if (nearest.has_value()) return absl::StrCat("; did you mean \"", *nearest, "\"?");
  return absl::StrCat("; expected one of: ", absl::StrJoin(candidates, ", "));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Decimal digits only (no sign). A value above UINT64_MAX saturates and sets *overflow.
// False if `s` is empty or has a non-digit.
bool ParseDigits(absl::string_view s, uint64_t* out, bool* overflow) {
  if (s.empty()) return false;
  uint64_t v = 0;
  *overflow = false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (*overflow || v > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      *overflow = true;
      v = std::numeric_limits<uint64_t>::max();
    } else {
      v = v * 10 + digit;
    }
  }
  *out = v;
  return true;
}

// One blank-separated word of a line. For a quoted word, `text` is the unescaped
// contents and `columns` the source column of each of its bytes.
struct Token {
  std::string text;
  int column = 0;      // 1-based column of the first byte (the quote, if quoted)
  int end_column = 0;  // column just past the last byte
  bool quoted = false;
  std::vector<int> columns;

  int ColumnAt(size_t i) const {
    if (!quoted) return column + static_cast<int>(i);
    if (i < columns.size()) return columns[i];
    return end_column - 1;
  }
};

class Parser {
 public:
  explicit Parser(absl::string_view filename) : filename_(filename) {}

  absl::StatusOr<Policy> Parse(absl::string_view text) {
    if (text.size() > kMaxPolicyFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(filename_, ": the policy is ", text.size(),
                                                     " bytes; at most ", kMaxPolicyFileBytes,
                                                     " are allowed"));
    }
    if (text.substr(0, 3) == "\xEF\xBB\xBF") {
      line_ = 1;
      return Error(1, "a UTF-8 byte order mark is not allowed; save the file without it");
    }
    size_t pos = 0;
    line_ = 0;
    while (pos < text.size()) {
      ++line_;
      size_t nl = text.find('\n', pos);
      absl::string_view line;
      if (nl == absl::string_view::npos) {
        line = text.substr(pos);
        pos = text.size();
      } else {
        line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      }
      RETURN_IF_ERROR(ParseLine(line));
    }
    return std::move(policy_);
  }

 private:
  absl::Status Error(int column, absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(filename_, ":", line_, ":", column, ": ", message));
  }

  absl::Status ParseLine(absl::string_view line) {
    if (line.size() > kMaxPolicyLineBytes) {
      return Error(static_cast<int>(kMaxPolicyLineBytes) + 1,
                   absl::StrCat("the line is longer than ", kMaxPolicyLineBytes, " bytes"));
    }
    for (size_t i = 0; i < line.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(line[i]);
      if (c == '\r') {
        return Error(static_cast<int>(i) + 1, "a carriage return must be followed by a line feed");
      }
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return Error(
            static_cast<int>(i) + 1,
            absl::StrCat("control character 0x", absl::Hex(c, absl::kZeroPad2), " is not allowed"));
      }
    }
    std::vector<Token> tokens;
    RETURN_IF_ERROR(Tokenize(line, &tokens));
    if (tokens.empty()) return absl::OkStatus();
    const Token& directive = tokens[0];
    RETURN_IF_ERROR(RequireUnquoted(directive));
    if (directive.text == "promises") return ParsePromises(tokens);
    if (directive.text == "penalty") return ParsePenalty(tokens);
    if (directive.text == "unveil") return ParseUnveil(tokens);
    if (directive.text == "connect") return ParseConnect(tokens);
    if (directive.text == "clock") return ParseClock(tokens);
    if (directive.text == "limit") return ParseLimit(tokens);
    if (directive.text == "layers") return ParseLayers(tokens);
    if (directive.text == "identity") return ParseIdentity(tokens);
    if (directive.text == "libc") return ParseLibc(tokens);
    if (directive.text == "execpromises") return ParseExecPromises(tokens);
    std::optional<std::string> nearest = Nearest(directive.text, kDirectives);
    if (directive.text == "pledge") nearest = "promises";
    return Error(directive.column, absl::StrCat("unknown directive ", Quote(directive.text),
                                                Suggestion(kDirectives, nearest)));
  }

  absl::Status Tokenize(absl::string_view line, std::vector<Token>* tokens) const {
    const size_t n = line.size();
    size_t i = 0;
    while (i < n) {
      if (IsBlank(line[i])) {
        ++i;
        continue;
      }
      if (line[i] == '#') break;  // a comment, to the end of the line
      Token t;
      t.column = static_cast<int>(i) + 1;
      if (line[i] == '"') {
        t.quoted = true;
        ++i;
        bool closed = false;
        while (i < n) {
          const char c = line[i];
          if (c == '"') {
            ++i;
            closed = true;
            break;
          }
          if (c == '\\') {
            if (i + 1 < n && (line[i + 1] == '"' || line[i + 1] == '\\')) {
              t.text.push_back(line[i + 1]);
              t.columns.push_back(static_cast<int>(i) + 1);
              i += 2;
              continue;
            }
            if (i + 1 < n) {
              return Error(static_cast<int>(i) + 1,
                           absl::StrCat("unknown escape ", Quote(line.substr(i, 2)),
                                        " in a quoted path; only \\\" and \\\\ are allowed"));
            }
            break;  // a backslash at the end of the line: unterminated
          }
          t.text.push_back(c);
          t.columns.push_back(static_cast<int>(i) + 1);
          ++i;
        }
        if (!closed) {
          return Error(t.column, "unterminated quoted path: expected a closing \"");
        }
        if (i < n && !IsBlank(line[i])) {
          return Error(static_cast<int>(i) + 1, "expected a blank after the closing quote");
        }
      } else {
        const size_t start = i;
        while (i < n && !IsBlank(line[i])) {
          if (line[i] == '"') {
            return Error(static_cast<int>(i) + 1,
                         "unexpected '\"' inside a word; a path with a quote must be written "
                         "in quotes, with the quote escaped as \\\"");
          }
          ++i;
        }
        t.text = std::string(line.substr(start, i - start));
      }
      t.end_column = static_cast<int>(i) + 1;
      tokens->push_back(std::move(t));
    }
    return absl::OkStatus();
  }

  absl::Status RequireUnquoted(const Token& t) const {
    if (t.quoted) return Error(t.column, "quotes are only allowed around paths");
    return absl::OkStatus();
  }

  // tokens[index] must exist (else "expected <what>" just after the previous token) and be
  // unquoted.
  absl::Status RequireWord(const std::vector<Token>& tokens, size_t index,
                           absl::string_view what) const {
    if (index >= tokens.size()) {
      return Error(tokens.back().end_column, absl::StrCat("expected ", what));
    }
    return RequireUnquoted(tokens[index]);
  }

  // Nothing may follow tokens[count - 1].
  absl::Status RequireEnd(const std::vector<Token>& tokens, size_t count,
                          absl::string_view after_what) const {
    if (tokens.size() <= count) return absl::OkStatus();
    const Token& t = tokens[count];
    return Error(t.column, absl::StrCat("unexpected ", Quote(t.text), " after ", after_what,
                                        "; expected the end of the line or a # comment"));
  }

  // Directives that may appear once: remembers the line, or reports the duplicate.
  absl::Status Once(int* first_line, const Token& directive, absl::string_view name) const {
    if (*first_line != 0) {
      return Error(directive.column,
                   absl::StrCat("duplicate ", name, " line; the first is on line ", *first_line));
    }
    *first_line = line_;
    return absl::OkStatus();
  }

  // A number of decimal digits, at most `max`, without leading zeros, reported as
  // "<noun> N is out of range 0..max" if too large.
  absl::StatusOr<uint64_t> Number(absl::string_view s, int column, uint64_t max,
                                  absl::string_view noun, absl::string_view expected) const {
    uint64_t v = 0;
    bool overflow = false;
    if (!ParseDigits(s, &v, &overflow)) return Error(column, absl::StrCat("expected ", expected));
    if (s.size() > 1 && s[0] == '0') {
      return Error(column, absl::StrCat("leading zeros are not allowed in ", Quote(s)));
    }
    if (overflow || v > max) {
      return Error(column, absl::StrCat(noun, " ", s.size() > 24 ? Quote(s) : std::string(s),
                                        " is out of range 0..", max));
    }
    return v;
  }

  // An absolute path without "//", "." or ".." components or a trailing "/".
  absl::Status CheckPath(const Token& t, absl::string_view what, size_t max_bytes) const {
    const std::string& s = t.text;
    if (s.empty()) return Error(t.column, absl::StrCat("expected an absolute path for ", what));
    if (s[0] != '/') {
      return Error(t.column, absl::StrCat(what, " path ", Quote(s),
                                          " is relative; it must be absolute (start with \"/\")"));
    }
    if (s.size() > max_bytes) {
      return Error(t.column, absl::StrCat(what, " path is ", s.size(), " bytes; at most ",
                                          max_bytes, " are allowed"));
    }
    if (s.size() == 1) return absl::OkStatus();
    size_t i = 1;
    for (;;) {
      size_t j = s.find('/', i);
      if (j == std::string::npos) j = s.size();
      const absl::string_view component = absl::string_view(s).substr(i, j - i);
      if (component.empty()) {
        if (j == s.size()) {
          std::string fixed = s;
          while (fixed.size() > 1 && fixed.back() == '/') fixed.pop_back();
          return Error(t.ColumnAt(s.size() - 1),
                       absl::StrCat("a trailing \"/\" is not allowed; write ", Quote(fixed)));
        }
        return Error(t.ColumnAt(j), "an empty path component (\"//\") is not allowed");
      }
      if (component == "." || component == "..") {
        return Error(t.ColumnAt(i), absl::StrCat("the path component ", Quote(component),
                                                 " is not allowed; write the path without it"));
      }
      if (j == s.size()) return absl::OkStatus();
      i = j + 1;
    }
  }

  // [+-]<digits><unit>; the sign only if `signed_ok`.
  absl::StatusOr<absl::Duration> ParseDurationToken(const Token& t, bool signed_ok) const {
    absl::string_view s = t.text;
    int64_t sign = 1;
    size_t at = 0;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
      if (!signed_ok) return Error(t.column, "a sign is not allowed in this duration");
      sign = s[0] == '-' ? -1 : 1;
      at = 1;
    }
    size_t digits_end = at;
    while (digits_end < s.size() && IsDigit(s[digits_end])) ++digits_end;
    const absl::string_view digits = s.substr(at, digits_end - at);
    const absl::string_view unit = s.substr(digits_end);
    constexpr absl::string_view kExpected =
        "expected a duration: a number and a unit (ns, us, ms, s, m, h or d), e.g. 30s";
    if (digits.empty()) return Error(t.ColumnAt(at), kExpected);
    if (digits.size() > 1 && digits[0] == '0') {
      return Error(t.ColumnAt(at), absl::StrCat("leading zeros are not allowed in ", Quote(s)));
    }
    for (const DurationUnit& u : kDurationUnits) {
      if (unit != u.suffix) continue;
      uint64_t v = 0;
      bool overflow = false;
      ParseDigits(digits, &v, &overflow);
      if (overflow || v > static_cast<uint64_t>(kMaxDurationNanos / u.nanos)) {
        return Error(t.column, absl::StrCat("duration ", Quote(s),
                                            " is out of range; at most 36500d (100 years)"));
      }
      return absl::Nanoseconds(sign * static_cast<int64_t>(v) * u.nanos);
    }
    if (unit.empty()) {
      return Error(t.ColumnAt(digits_end),
                   absl::StrCat("expected a unit after ", digits, ": ns, us, ms, s, m, h or d"));
    }
    return Error(t.ColumnAt(digits_end), absl::StrCat("unknown duration unit ", Quote(unit),
                                                      "; expected ns, us, ms, s, m, h or d"));
  }

  absl::Status ParsePromises(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(Once(&promises_line_, tokens[0], "\"promises\""));
    return PromiseList(tokens, &policy_.promises);
  }

  absl::Status ParseExecPromises(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(Once(&exec_promises_line_, tokens[0], "\"execpromises\""));
    PromiseSet set;
    RETURN_IF_ERROR(PromiseList(tokens, &set));
    policy_.exec_promises = set;
    return absl::OkStatus();
  }

  // `layers +NAME -NAME ...`: each layer at most once.
  absl::Status ParseLayers(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(Once(&layers_line_, tokens[0], "\"layers\""));
    if (tokens.size() == 1) {
      return Error(tokens[0].end_column,
                   "expected +NAME or -NAME after \"layers\" (e.g. -netns or +pidns)");
    }
    std::array<bool, kLayerCount> seen = {};
    for (size_t i = 1; i < tokens.size(); ++i) {
      const Token& t = tokens[i];
      RETURN_IF_ERROR(RequireUnquoted(t));
      if (t.text.empty() || (t.text[0] != '+' && t.text[0] != '-')) {
        return Error(t.column, absl::StrCat("expected +NAME (required) or -NAME (off), found ",
                                            Quote(t.text), "; layers are ",
                                            absl::StrJoin(kLayerNames, ", ")));
      }
      const absl::string_view name = absl::string_view(t.text).substr(1);
      const auto known = std::find(kLayerNames.begin(), kLayerNames.end(), name);
      if (known == kLayerNames.end()) {
        return Error(t.column + 1,
                     absl::StrCat("unknown layer ", Quote(name),
                                  Suggestion(kLayerNames, Nearest(name, kLayerNames))));
      }
      const size_t index = static_cast<size_t>(known - kLayerNames.begin());
      if (seen[index]) {
        return Error(t.column, absl::StrCat("layer ", Quote(name), " is listed twice"));
      }
      seen[index] = true;
      policy_.layers.modes[index] = t.text[0] == '+' ? LayerMode::kOn : LayerMode::kOff;
    }
    return absl::OkStatus();
  }

  // `identity nobody | keep | UID:GID`.
  absl::Status ParseIdentity(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(Once(&identity_line_, tokens[0], "\"identity\""));
    RETURN_IF_ERROR(RequireWord(tokens, 1, "nobody, keep or UID:GID after \"identity\""));
    const Token& t = tokens[1];
    Identity identity;
    if (t.text == "nobody") {
      identity.kind = Identity::Kind::kNobody;
    } else if (t.text == "keep") {
      identity.kind = Identity::Kind::kKeep;
    } else if (!t.text.empty() && IsDigit(t.text[0])) {
      const size_t colon = t.text.find(':');
      if (colon == std::string::npos) {
        return Error(t.column, absl::StrCat("expected UID:GID, found ", Quote(t.text)));
      }
      constexpr uint64_t kMaxId = 4294967294;  // (uid_t)-1 means "unchanged" to the kernel
      const absl::string_view text = t.text;
      ASSIGN_OR_RETURN(const uint64_t uid, Number(text.substr(0, colon), t.column, kMaxId, "uid",
                                                  "a numeric uid before ':'"));
      ASSIGN_OR_RETURN(const uint64_t gid,
                       Number(text.substr(colon + 1), t.ColumnAt(colon + 1), kMaxId, "gid",
                              "a numeric gid after ':'"));
      if (uid == 0 || gid == 0) {
        return Error(t.column,
                     absl::StrCat("identity ", Quote(t.text),
                                  " is root's id without root's capabilities; write "
                                  "\"identity keep\" to stay root, or another id"));
      }
      identity.kind = Identity::Kind::kIds;
      identity.uid = static_cast<uint32_t>(uid);
      identity.gid = static_cast<uint32_t>(gid);
    } else {
      std::optional<std::string> nearest = Nearest(t.text, absl::MakeSpan(kIdentityWords.data(), 2));
      if (t.text == "root") nearest = "keep";
      return Error(t.column, absl::StrCat("unknown identity ", Quote(t.text),
                                          Suggestion(kIdentityWords, nearest)));
    }
    RETURN_IF_ERROR(RequireEnd(tokens, 2, "the identity"));
    policy_.identity = identity;
    return absl::OkStatus();
  }

  // `libc default | none`.
  absl::Status ParseLibc(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(Once(&libc_line_, tokens[0], "\"libc\""));
    RETURN_IF_ERROR(RequireWord(tokens, 1, "default or none after \"libc\""));
    const Token& t = tokens[1];
    if (t.text == "default") {
      policy_.libc_set = true;
    } else if (t.text == "none") {
      policy_.libc_set = false;
    } else {
      return Error(t.column, absl::StrCat("unknown libc set ", Quote(t.text),
                                          Suggestion(kLibcWords, Nearest(t.text, kLibcWords))));
    }
    return RequireEnd(tokens, 2, "the libc set");
  }

  // The promise names after tokens[0], at least one, each once.
  absl::Status PromiseList(const std::vector<Token>& tokens, PromiseSet* out) const {
    if (tokens.size() == 1) {
      return Error(tokens[0].end_column, absl::StrCat("expected at least one promise name after ",
                                                      Quote(tokens[0].text)));
    }
    PromiseSet set;
    for (size_t i = 1; i < tokens.size(); ++i) {
      const Token& t = tokens[i];
      RETURN_IF_ERROR(RequireUnquoted(t));
      const std::optional<Promise> p = PromiseFromName(t.text);
      if (!p.has_value()) {
        std::optional<std::string> nearest = NearestPromiseName(t.text);
        std::string message = absl::StrCat("unknown promise ", Quote(t.text));
        if (nearest.has_value()) absl::StrAppend(&message, "; did you mean \"", *nearest, "\"?");
        return Error(t.column, message);
      }
      if (set.contains(*p)) {
        return Error(t.column, absl::StrCat("promise ", Quote(t.text), " is listed twice"));
      }
      set.insert(*p);
    }
    *out = set;
    return absl::OkStatus();
  }

  absl::Status ParsePenalty(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(Once(&penalty_line_, tokens[0], "\"penalty\""));
    RETURN_IF_ERROR(
        RequireWord(tokens, 1, "a penalty after \"penalty\": kill, errno, trap or log"));
    const Token& t = tokens[1];
    if (t.text == "kill") {
      policy_.penalty = Penalty::kKill;
    } else if (t.text == "errno") {
      policy_.penalty = Penalty::kErrno;
    } else if (t.text == "trap") {
      policy_.penalty = Penalty::kTrap;
    } else if (t.text == "log") {
      policy_.penalty = Penalty::kLog;
    } else {
      return Error(t.column, absl::StrCat("unknown penalty ", Quote(t.text),
                                          Suggestion(kPenalties, Nearest(t.text, kPenalties))));
    }
    return RequireEnd(tokens, 2, "the penalty");
  }

  absl::Status ParseUnveil(const std::vector<Token>& tokens) {
    if (tokens.size() < 2) {
      return Error(tokens[0].end_column, "expected an absolute path after \"unveil\"");
    }
    const Token& path = tokens[1];
    RETURN_IF_ERROR(CheckPath(path, "unveil", kMaxPathBytes));
    constexpr absl::string_view kExpectedPerms =
        "permissions made of r, w, x, c (or \"none\") after the path";
    if (tokens.size() < 3) {
      return Error(path.end_column, absl::StrCat("expected ", kExpectedPerms));
    }
    const Token& perms = tokens[2];
    RETURN_IF_ERROR(RequireUnquoted(perms));
    PathRule rule;
    rule.path = path.text;
    if (perms.text != "none") {
      for (size_t i = 0; i < perms.text.size(); ++i) {
        const char c = perms.text[i];
        bool* bit = c == 'r'   ? &rule.read
                    : c == 'w' ? &rule.write
                    : c == 'x' ? &rule.exec
                    : c == 'c' ? &rule.create
                               : nullptr;
        if (bit == nullptr) {
          return Error(perms.ColumnAt(i),
                       absl::StrCat("expected ", kExpectedPerms, "; ",
                                    Quote(perms.text.substr(i, 1)), " is not a permission"));
        }
        if (*bit) {
          return Error(perms.ColumnAt(i),
                       absl::StrCat("permission \"", std::string(1, c), "\" is given twice"));
        }
        *bit = true;
      }
    }
    RETURN_IF_ERROR(RequireEnd(tokens, 3, "the permissions"));
    auto [it, inserted] = unveil_lines_.emplace(rule.path, line_);
    if (!inserted) {
      return Error(path.column, absl::StrCat("path ", Quote(rule.path),
                                             " is already unveiled on line ", it->second));
    }
    policy_.paths.push_back(std::move(rule));
    return absl::OkStatus();
  }

  absl::Status ParseConnect(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(RequireWord(tokens, 1, "a transport after \"connect\": tcp, udp or unix"));
    const Token& transport = tokens[1];
    ConnectRule rule;
    if (transport.text == "tcp") {
      rule.transport = ConnectRule::Transport::kTcp;
    } else if (transport.text == "udp") {
      rule.transport = ConnectRule::Transport::kUdp;
    } else if (transport.text == "unix") {
      rule.transport = ConnectRule::Transport::kUnix;
    } else {
      return Error(transport.column,
                   absl::StrCat("unknown transport ", Quote(transport.text),
                                Suggestion(kTransports, Nearest(transport.text, kTransports))));
    }
    if (rule.transport == ConnectRule::Transport::kUnix) {
      if (tokens.size() < 3) {
        return Error(transport.end_column, "expected the absolute path of a unix socket");
      }
      RETURN_IF_ERROR(CheckPath(tokens[2], "unix socket", kMaxUnixPathBytes));
      rule.unix_path = tokens[2].text;
      RETURN_IF_ERROR(RequireEnd(tokens, 3, "the socket path"));
    } else {
      RETURN_IF_ERROR(RequireWord(
          tokens, 2, "an address and a port: 127.0.0.1:443, 10.0.0.0/8:443, [::1]:1-1024"));
      RETURN_IF_ERROR(ParseEndpoint(tokens[2], &rule));
      RETURN_IF_ERROR(RequireEnd(tokens, 3, "the address and port"));
    }
    for (size_t i = 0; i < policy_.connects.size(); ++i) {
      const ConnectRule& o = policy_.connects[i];
      if (o.transport == rule.transport && o.address == rule.address &&
          o.prefix_len == rule.prefix_len && o.port_min == rule.port_min &&
          o.port_max == rule.port_max && o.unix_path == rule.unix_path) {
        return Error(tokens[0].column,
                     absl::StrCat("the same connect rule is already on line ", connect_lines_[i]));
      }
    }
    policy_.connects.push_back(std::move(rule));
    connect_lines_.push_back(line_);
    return absl::OkStatus();
  }

  // ADDRESS[/PREFIX]:PORTS or [IPV6[/PREFIX]]:PORTS, PORTS = N | N-M | *.
  absl::Status ParseEndpoint(const Token& t, ConnectRule* rule) const {
    const absl::string_view s = t.text;
    const int c0 = t.column;
    constexpr absl::string_view kExpectedAddress = "expected an IPv4/IPv6 address or CIDR";
    bool v6 = false;
    absl::string_view network;
    size_t network_at = 0;
    size_t colon = 0;  // index of the ':' before the ports
    if (s[0] == '[') {
      v6 = true;
      const size_t close = s.find(']');
      if (close == absl::string_view::npos) {
        return Error(c0, "expected a \"]\" after the IPv6 address");
      }
      network = s.substr(1, close - 1);
      network_at = 1;
      colon = close + 1;
      if (colon >= s.size() || s[colon] != ':') {
        return Error(c0 + static_cast<int>(colon),
                     "expected \":\" and a port after the address, e.g. [::1]:443");
      }
    } else {
      colon = s.rfind(':');
      if (colon == absl::string_view::npos) {
        return Error(t.end_column,
                     "expected \":\" and a port after the address, e.g. 10.0.0.1:443");
      }
      network = s.substr(0, colon);
      if (network.find(':') != absl::string_view::npos) {
        return Error(c0, "an IPv6 address must be written in brackets, e.g. [::1]:443");
      }
    }
    const size_t slash = network.find('/');
    const absl::string_view ip = network.substr(0, slash);
    const int ip_column = c0 + static_cast<int>(network_at);
    std::array<unsigned char, 16> bytes{};
    if (ip.empty() ||
        inet_pton(v6 ? AF_INET6 : AF_INET, std::string(ip).c_str(), bytes.data()) != 1) {
      const bool has_letter = std::any_of(ip.begin(), ip.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      });
      if (!v6 && has_letter) {
        return Error(ip_column, absl::StrCat(kExpectedAddress, "; found ", Quote(ip),
                                             " (host names are not resolved)"));
      }
      return Error(ip_column, absl::StrCat(kExpectedAddress, "; found ", Quote(ip)));
    }
    const int bits = v6 ? 128 : 32;
    int prefix = bits;
    if (slash != absl::string_view::npos) {
      const absl::string_view p = network.substr(slash + 1);
      const int p_column = ip_column + static_cast<int>(slash) + 1;
      ASSIGN_OR_RETURN(const uint64_t value,
                       Number(p, p_column, static_cast<uint64_t>(bits), "prefix length",
                              absl::StrCat("a prefix length (0..", bits, ") after \"/\"")));
      prefix = static_cast<int>(value);
      // Every bit after the prefix must be zero: "10.0.0.1/8" is almost always a mistake.
      std::array<unsigned char, 16> masked = bytes;
      for (int b = prefix; b < bits; ++b)
        masked[b / 8] &= static_cast<unsigned char>(~(0x80u >> (b % 8)));
      if (masked != bytes) {
        char text[INET6_ADDRSTRLEN] = {};
        inet_ntop(v6 ? AF_INET6 : AF_INET, masked.data(), text, sizeof(text));
        return Error(ip_column, absl::StrCat("the address has bits set after its /", prefix,
                                             " prefix; did you mean ", v6 ? "[" : "", text, "/",
                                             prefix, v6 ? "]" : "", "?"));
      }
    }
    rule->address.assign(reinterpret_cast<const char*>(bytes.data()), v6 ? 16 : 4);
    rule->prefix_len = prefix;

    const absl::string_view ports = s.substr(colon + 1);
    const int ports_column = c0 + static_cast<int>(colon) + 1;
    constexpr absl::string_view kExpectedPort = "a port (0..65535), a range N-M or * after \":\"";
    if (ports == "*") {
      rule->port_min = 0;
      rule->port_max = 65535;
      return absl::OkStatus();
    }
    const size_t dash = ports.find('-');
    const absl::string_view lo_text = ports.substr(0, dash);
    ASSIGN_OR_RETURN(const uint64_t lo,
                     Number(lo_text, ports_column, 65535, "port", kExpectedPort));
    uint64_t hi = lo;
    if (dash != absl::string_view::npos) {
      const absl::string_view hi_text = ports.substr(dash + 1);
      const int hi_column = ports_column + static_cast<int>(dash) + 1;
      ASSIGN_OR_RETURN(hi, Number(hi_text, hi_column, 65535, "port",
                                  "the last port of the range (0..65535) after \"-\""));
      if (lo > hi) {
        return Error(ports_column,
                     absl::StrCat("the port range ", ports,
                                  " is empty: the first port is larger than the last"));
      }
    }
    rule->port_min = static_cast<uint16_t>(lo);
    rule->port_max = static_cast<uint16_t>(hi);
    return absl::OkStatus();
  }

  absl::Status ParseClock(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(Once(&clock_line_, tokens[0], "\"clock\""));
    RETURN_IF_ERROR(RequireWord(tokens, 1, "a clock after \"clock\": real, fixed, offset or none"));
    const Token& kind = tokens[1];
    ClockRule clock;
    if (kind.text == "real") {
      clock.kind = ClockRule::Kind::kReal;
    } else if (kind.text == "none") {
      clock.kind = ClockRule::Kind::kNone;
    } else if (kind.text == "fixed") {
      clock.kind = ClockRule::Kind::kFixed;
      RETURN_IF_ERROR(
          RequireWord(tokens, 2, "an RFC 3339 time after \"fixed\", e.g. 2024-05-01T00:00:00Z"));
      ASSIGN_OR_RETURN(clock.fixed, ParseTimeToken(tokens[2]));
    } else if (kind.text == "offset") {
      clock.kind = ClockRule::Kind::kOffset;
      RETURN_IF_ERROR(RequireWord(tokens, 2, "a duration after \"offset\", e.g. -3600s or 2h"));
      ASSIGN_OR_RETURN(clock.offset, ParseDurationToken(tokens[2], /*signed_ok=*/true));
    } else {
      return Error(kind.column,
                   absl::StrCat("unknown clock ", Quote(kind.text),
                                Suggestion(kClockKinds, Nearest(kind.text, kClockKinds))));
    }
    const bool has_value =
        clock.kind == ClockRule::Kind::kFixed || clock.kind == ClockRule::Kind::kOffset;
    RETURN_IF_ERROR(
        RequireEnd(tokens, has_value ? 3 : 2, has_value ? "the clock's value" : "the clock"));
    policy_.clock = clock;
    return absl::OkStatus();
  }

  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), checked by shape first (absl's
  // parser alone would also take blanks, lower case and "infinite-future").
  absl::StatusOr<absl::Time> ParseTimeToken(const Token& t) const {
    const absl::string_view s = t.text;
    constexpr absl::string_view kExpected =
        "expected an RFC 3339 time such as 2024-05-01T00:00:00Z or 2024-05-01T02:00:00+02:00";
    constexpr absl::string_view kShape = "dddd-dd-ddTdd:dd:dd";
    bool ok = s.size() >= kShape.size() + 1;
    for (size_t i = 0; ok && i < kShape.size(); ++i) {
      ok = kShape[i] == 'd' ? IsDigit(s[i]) : s[i] == kShape[i];
    }
    size_t i = kShape.size();
    if (ok && s[i] == '.') {
      ++i;
      const size_t digits = i;
      while (i < s.size() && IsDigit(s[i])) ++i;
      ok = i > digits && i - digits <= 9;
    }
    if (ok) {
      const absl::string_view zone = s.substr(std::min(i, s.size()));
      ok = zone == "Z" ||
           (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && IsDigit(zone[1]) &&
            IsDigit(zone[2]) && zone[3] == ':' && IsDigit(zone[4]) && IsDigit(zone[5]));
    }
    if (!ok) return Error(t.column, absl::StrCat(kExpected, "; found ", Quote(s)));
    absl::Time time;
    std::string why;
    if (!absl::ParseTime(absl::RFC3339_full, std::string(s), &time, &why)) {
      return Error(t.column,
                   absl::StrCat("time ", Quote(s), " is not a valid date and time (", why, ")"));
    }
    // FormatPolicy writes UTC; an offset or a leap second must not carry the instant
    // outside the four-digit years the shape check above accepts.
    const absl::TimeZone utc = absl::UTCTimeZone();
    const absl::Time first = absl::FromCivil(absl::CivilSecond(0, 1, 1, 0, 0, 0), utc);
    const absl::Time end = absl::FromCivil(absl::CivilSecond(10000, 1, 1, 0, 0, 0), utc);
    if (time < first || time >= end) {
      return Error(t.column, absl::StrCat("time ", Quote(s),
                                          " is outside years 0000..9999 when written in UTC"));
    }
    return time;
  }

  // Digits with an optional K, M, G or T (powers of 1024); at most `max`.
  absl::StatusOr<uint64_t> ParseSize(const Token& t, uint64_t max, absl::string_view name) const {
    absl::string_view digits = t.text;
    int shift = 0;
    if (!digits.empty()) {
      for (const SizeUnit& u : kSizeUnits) {
        if (digits.back() == u.suffix) {
          shift = u.shift;
          digits.remove_suffix(1);
          break;
        }
      }
    }
    uint64_t v = 0;
    bool overflow = false;
    if (!ParseDigits(digits, &v, &overflow)) {
      return Error(t.column, absl::StrCat("expected a size for ", name,
                                          ": a number of bytes, optionally followed by K, M, G "
                                          "or T (powers of 1024), or \"unlimited\""));
    }
    if (digits.size() > 1 && digits[0] == '0') {
      return Error(t.column, absl::StrCat("leading zeros are not allowed in ", Quote(t.text)));
    }
    if (overflow || v > (max >> shift)) {
      return Error(t.column, absl::StrCat(name, " ", Quote(t.text), " is out of range; at most ",
                                          max, " bytes"));
    }
    return v << shift;
  }

  absl::Status ParseLimit(const std::vector<Token>& tokens) {
    RETURN_IF_ERROR(RequireWord(
        tokens, 1,
        absl::StrCat("a limit name after \"limit\": ", absl::StrJoin(kLimitNames, ", "))));
    const Token& name = tokens[1];
    const auto known = std::find(kLimitNames.begin(), kLimitNames.end(), name.text);
    if (known == kLimitNames.end()) {
      return Error(name.column,
                   absl::StrCat("unknown limit ", Quote(name.text),
                                Suggestion(kLimitNames, Nearest(name.text, kLimitNames))));
    }
    int& first_line = limit_lines_[name.text];
    if (first_line != 0) {
      return Error(tokens[0].column, absl::StrCat("duplicate \"limit ", name.text,
                                                  "\" line; the first is on line ", first_line));
    }
    first_line = line_;
    RETURN_IF_ERROR(
        RequireWord(tokens, 2, absl::StrCat("a value for ", name.text, " (or \"unlimited\")")));
    const Token& value = tokens[2];
    RETURN_IF_ERROR(RequireEnd(tokens, 3, "the limit's value"));
    Limits& limits = policy_.limits;
    const bool unlimited = value.text == "unlimited";
    constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();
    uint64_t v = 0;
    if (name.text == "wall_time") {
      if (unlimited) {
        limits.wall_time = absl::ZeroDuration();
        return absl::OkStatus();
      }
      ASSIGN_OR_RETURN(const absl::Duration d, ParseDurationToken(value, /*signed_ok=*/false));
      if (d == absl::ZeroDuration()) return ZeroLimit(value);
      limits.wall_time = d;
      return absl::OkStatus();
    }
    if (!unlimited) {
      if (name.text == "message_bytes") {
        ASSIGN_OR_RETURN(v, ParseSize(value, kU32, name.text));
      } else if (name.text == "memory") {
        ASSIGN_OR_RETURN(v, ParseSize(value, std::numeric_limits<uint64_t>::max(), name.text));
      } else {
        ASSIGN_OR_RETURN(v,
                         Number(value.text, value.column, kU32, name.text,
                                absl::StrCat("a number for ", name.text, " (or \"unlimited\")")));
      }
      if (v == 0) return ZeroLimit(value);
    }
    if (name.text == "open_fds") {
      limits.max_open_fds = static_cast<uint32_t>(v);
    } else if (name.text == "requests_per_second") {
      limits.requests_per_second = static_cast<uint32_t>(v);
    } else if (name.text == "message_bytes") {
      limits.max_message_bytes = static_cast<uint32_t>(v);
    } else if (name.text == "cpu_seconds") {
      limits.cpu_seconds = static_cast<uint32_t>(v);
    } else {
      limits.memory_bytes = v;
    }
    return absl::OkStatus();
  }

  absl::Status ZeroLimit(const Token& value) const {
    return Error(value.column, "a limit of 0 is not allowed; write \"unlimited\" for no limit");
  }

  std::string filename_;
  int line_ = 0;
  Policy policy_;
  // Line of the first occurrence; 0 = not seen yet.
  int promises_line_ = 0;
  int penalty_line_ = 0;
  int clock_line_ = 0;
  int exec_promises_line_ = 0;
  int layers_line_ = 0;
  int identity_line_ = 0;
  int libc_line_ = 0;
  std::map<std::string, int> limit_lines_;
  std::map<std::string, int> unveil_lines_;
  std::vector<int> connect_lines_;  // parallel to policy_.connects
};

// Paths are quoted when they hold anything the unquoted form cannot carry.
std::string FormatPath(absl::string_view path) {
  const bool plain =
      !path.empty() && path[0] != '#' && path.find_first_of(" \t\"\\") == absl::string_view::npos;
  if (plain) return std::string(path);
  std::string out = "\"";
  for (char c : path) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string DurationText(absl::Duration d) {
  if (d < absl::Nanoseconds(-kMaxDurationNanos) || d > absl::Nanoseconds(kMaxDurationNanos)) {
    // Not expressible; absl's form ("inf", "876000h0m1s") is refused by the parser.
    return absl::FormatDuration(d);
  }
  for (const DurationUnit& u : kDurationUnits) {
    absl::Duration rem;
    const int64_t q = absl::IDivDuration(d, absl::Nanoseconds(u.nanos), &rem);
    if (rem == absl::ZeroDuration()) return absl::StrCat(q, u.suffix);
  }
  // Sub-nanosecond: not expressible.
  return absl::FormatDuration(d);
}

std::string FormatSize(uint64_t bytes) {
  for (const SizeUnit& u : kSizeUnits) {
    const uint64_t unit = uint64_t{1} << u.shift;
    if (bytes % unit == 0) return absl::StrCat(bytes / unit, std::string(1, u.suffix));
  }
  return absl::StrCat(bytes);
}

std::string FormatCount(uint64_t v) { return v == 0 ? "unlimited" : absl::StrCat(v); }

// RFC 3339 in UTC with a four-digit year (absl's %Y does not pad years below 1000) and
// only as many fraction digits as needed.
std::string TimeText(absl::Time t) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond cs = absl::ToCivilSecond(t, utc);
  std::string out = absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d", cs.year(), cs.month(),
                                    cs.day(), cs.hour(), cs.minute(), cs.second());
  const int64_t nanos = absl::ToInt64Nanoseconds(t - absl::FromCivil(cs, utc));
  if (nanos != 0) {
    std::string fraction = absl::StrFormat("%09d", nanos);
    while (fraction.back() == '0') fraction.pop_back();
    absl::StrAppend(&out, ".", fraction);
  }
  out += 'Z';
  return out;
}

std::string FormatEndpoint(const ConnectRule& rule) {
  std::string out;
  const size_t size = rule.address.size();
  if (size == 4 || size == 16) {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(size == 4 ? AF_INET : AF_INET6, rule.address.data(), text, sizeof(text));
    const int bits = size == 4 ? 32 : 128;
    const std::string prefix =
        rule.prefix_len == bits ? std::string() : absl::StrCat("/", rule.prefix_len);
    out = size == 4 ? absl::StrCat(text, prefix) : absl::StrCat("[", text, prefix, "]");
  } else {
    out = absl::StrCat("<invalid-address-of-", size, "-bytes>");  // refused by the parser
  }
  if (rule.port_min == 0 && rule.port_max == 65535) {
    absl::StrAppend(&out, ":*");
  } else if (rule.port_min == rule.port_max) {
    absl::StrAppend(&out, ":", rule.port_min);
  } else {
    absl::StrAppend(&out, ":", rule.port_min, "-", rule.port_max);
  }
  return out;
}

}  // namespace

std::optional<std::string> NearestPromiseName(absl::string_view unknown) {
  std::array<absl::string_view, kPromiseCount> names;
  for (int i = 0; i < kPromiseCount; ++i) names[i] = PromiseName(static_cast<Promise>(i));
  return Nearest(unknown, names);
}

absl::string_view LayerName(Layer layer) {
  const auto i = static_cast<size_t>(layer);
  return i < kLayerNames.size() ? kLayerNames[i] : "<invalid-layer>";
}

std::optional<Layer> LayerFromName(absl::string_view name) {
  for (size_t i = 0; i < kLayerNames.size(); ++i) {
    if (kLayerNames[i] == name) return static_cast<Layer>(i);
  }
  return std::nullopt;
}

std::string FormatLayers(const Layers& layers) {
  std::vector<std::string> words;
  for (int i = 0; i < kLayerCount; ++i) {
    const Layer layer = static_cast<Layer>(i);
    const LayerMode mode = layers[layer];
    if (mode == DefaultLayerMode(layer)) continue;
    // kAuto where the default is off has no spelling; "?" makes the parser refuse it.
    const char* sign = mode == LayerMode::kOn ? "+" : mode == LayerMode::kOff ? "-" : "?";
    words.push_back(absl::StrCat(sign, LayerName(layer)));
  }
  return absl::StrJoin(words, " ");
}

absl::StatusOr<Policy> ParsePolicy(absl::string_view text, absl::string_view filename) {
  return Parser(filename).Parse(text);
}

absl::StatusOr<Policy> LoadPolicyFile(const std::string& path) {
  ASSIGN_OR_RETURN(const long raw_fd, Syscall(absl::StrCat("open ", path), [&] {
                     return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                   }));
  UniqueFd fd(static_cast<int>(raw_fd));
  struct stat st;
  RETURN_IF_ERROR(
      Syscall(absl::StrCat("fstat ", path), [&] { return ::fstat(fd.get(), &st); }).status());
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  // Read one byte more than allowed, so a file that grew after fstat is still caught.
  std::string text;
  text.resize(kMaxPolicyFileBytes + 1);
  size_t got = 0;
  while (got < text.size()) {
    ASSIGN_OR_RETURN(const long n, Syscall(absl::StrCat("read ", path), [&] {
                       return ::read(fd.get(), text.data() + got, text.size() - got);
                     }));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return ParsePolicy(text, path);
}

std::string FormatPolicy(const Policy& policy) {
  std::string out;
  absl::StrAppend(&out, "promises ", policy.promises.ToString(), "\n");
  if (policy.exec_promises.has_value()) {
    absl::StrAppend(&out, "execpromises ", policy.exec_promises->ToString(), "\n");
  }
  const auto penalty = static_cast<size_t>(policy.penalty);
  absl::StrAppend(&out, "penalty ", penalty < kPenalties.size() ? kPenalties[penalty] : "<invalid>",
                  "\n");
  switch (policy.clock.kind) {
    case ClockRule::Kind::kReal:
      out += "clock real\n";
      break;
    case ClockRule::Kind::kNone:
      out += "clock none\n";
      break;
    case ClockRule::Kind::kFixed:
      absl::StrAppend(&out, "clock fixed ", TimeText(policy.clock.fixed), "\n");
      break;
    case ClockRule::Kind::kOffset: {
      const absl::Duration d = policy.clock.offset;
      absl::StrAppend(&out, "clock offset ", d > absl::ZeroDuration() ? "+" : "", DurationText(d),
                      "\n");
      break;
    }
    default:
      out += "clock <invalid>\n";
  }
  const Limits& l = policy.limits;
  absl::StrAppend(&out, "limit open_fds ", FormatCount(l.max_open_fds), "\n");
  absl::StrAppend(&out, "limit requests_per_second ", FormatCount(l.requests_per_second), "\n");
  absl::StrAppend(&out, "limit message_bytes ",
                  l.max_message_bytes == 0 ? "unlimited" : FormatSize(l.max_message_bytes), "\n");
  absl::StrAppend(&out, "limit cpu_seconds ", FormatCount(l.cpu_seconds), "\n");
  absl::StrAppend(&out, "limit memory ",
                  l.memory_bytes == 0 ? "unlimited" : FormatSize(l.memory_bytes), "\n");
  absl::StrAppend(&out, "limit wall_time ",
                  l.wall_time == absl::ZeroDuration() ? "unlimited" : DurationText(l.wall_time),
                  "\n");
  const std::string layers = FormatLayers(policy.layers);
  if (!layers.empty()) absl::StrAppend(&out, "layers ", layers, "\n");
  switch (policy.identity.kind) {
    case Identity::Kind::kNobody:
      out += "identity nobody\n";
      break;
    case Identity::Kind::kKeep:
      out += "identity keep\n";
      break;
    case Identity::Kind::kIds:
      absl::StrAppend(&out, "identity ", policy.identity.uid, ":", policy.identity.gid, "\n");
      break;
    default:
      out += "identity <invalid>\n";
  }
  absl::StrAppend(&out, "libc ", policy.libc_set ? "default" : "none", "\n");
  for (const PathRule& rule : policy.paths) {
    std::string perms;
    if (rule.read) perms += 'r';
    if (rule.write) perms += 'w';
    if (rule.exec) perms += 'x';
    if (rule.create) perms += 'c';
    if (perms.empty()) perms = "none";
    absl::StrAppend(&out, "unveil ", FormatPath(rule.path), " ", perms, "\n");
  }
  for (const ConnectRule& rule : policy.connects) {
    switch (rule.transport) {
      case ConnectRule::Transport::kTcp:
        absl::StrAppend(&out, "connect tcp ", FormatEndpoint(rule), "\n");
        break;
      case ConnectRule::Transport::kUdp:
        absl::StrAppend(&out, "connect udp ", FormatEndpoint(rule), "\n");
        break;
      case ConnectRule::Transport::kUnix:
        absl::StrAppend(&out, "connect unix ", FormatPath(rule.unix_path), "\n");
        break;
      default:
        out += "connect <invalid>\n";
    }
  }
  return out;
}

}  // namespace vow
