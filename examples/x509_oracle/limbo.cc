#include "examples/x509_oracle/limbo.h"

#include <cstdio>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/x509_oracle/json.h"

namespace vow::x509 {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Fields the reader knows, so that any other field makes a case skipped.
constexpr absl::string_view kKnownFields[] = {
    "id",
    "description",
    "conflicts_with",
    "importance",
    "features",
    "validation_kind",
    "trusted_certs",
    "untrusted_intermediates",
    "peer_certificate",
    "peer_certificate_key",
    "validation_time",
    "signature_algorithms",
    "key_usage",
    "extended_key_usage",
    "expected_result",
    "expected_peer_name",
    "expected_peer_names",
    "max_chain_depth",
    "crls",
};

// True if `v` carries no information: null, false, "", [], {}.
bool IsEmptyValue(const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kNull: return true;
    case JsonValue::Type::kBool: return !v.bool_value();
    case JsonValue::Type::kString: return v.string_value().empty();
    case JsonValue::Type::kArray: return v.array().empty();
    case JsonValue::Type::kObject: return v.object().empty();
    case JsonValue::Type::kNumber: return false;
  }
  return false;
}

// Reads one testcase object; errors carry the case and the position.
class CaseReader {
 public:
  CaseReader(absl::string_view text, const JsonValue& obj, size_t index,
             std::optional<int64_t> now)
      : text_(text), obj_(obj), index_(index), now_(now) {}

  absl::StatusOr<LimboCase> Read() {
    if (!obj_.is_object()) return Error(obj_, "a testcase must be an object");
    LimboCase c;
    // The id first, so that every later error can name the case.
    const JsonValue* id = obj_.Find("id");
    if (id == nullptr) return Error(obj_, "missing required field \"id\"");
    if (!id->is_string()) return TypeError(*id, "id", "a string");
    c.id = id->string_value();

    if (const JsonValue* d = obj_.Find("description"); d != nullptr) {
      if (!d->is_string()) return TypeError(*d, "description", "a string");
      c.description = d->string_value();
    } else {
      return Error(obj_, "missing required field \"description\"");
    }

    std::vector<std::string> skip;

    // validation_kind
    absl::StatusOr<std::string> kind = RequiredString("validation_kind");
    if (!kind.ok()) return kind.status();
    if (*kind == "SERVER") {
      c.request.kind = VerifyRequest::Kind::kServer;
    } else if (*kind == "CLIENT") {
      c.request.kind = VerifyRequest::Kind::kClient;
    } else {
      return Error(*obj_.Find("validation_kind"),
                   absl::StrCat("validation_kind must be \"SERVER\" or \"CLIENT\", got \"",
                                *kind, "\""));
    }

    // Certificates.
    absl::StatusOr<std::vector<std::string>> trusted = RequiredStrings("trusted_certs");
    if (!trusted.ok()) return trusted.status();
    c.request.trusted = absl::StrJoin(*trusted, "\n");
    absl::StatusOr<std::vector<std::string>> untrusted =
        RequiredStrings("untrusted_intermediates");
    if (!untrusted.ok()) return untrusted.status();
    c.request.untrusted = absl::StrJoin(*untrusted, "\n");
    absl::StatusOr<std::string> peer = RequiredString("peer_certificate");
    if (!peer.ok()) return peer.status();
    c.request.chain = *std::move(peer);
    if (const JsonValue* k = obj_.Find("peer_certificate_key");
        k != nullptr && !k->is_null() && !k->is_string()) {
      return TypeError(*k, "peer_certificate_key", "a string or null");
    }

    // expected_result
    absl::StatusOr<std::string> expected = RequiredString("expected_result");
    if (!expected.ok()) return expected.status();
    if (*expected == "SUCCESS") {
      c.expected_success = true;
    } else if (*expected == "FAILURE") {
      c.expected_success = false;
    } else {
      return Error(*obj_.Find("expected_result"),
                   absl::StrCat("expected_result must be \"SUCCESS\" or \"FAILURE\", got \"",
                                *expected, "\""));
    }

    // validation_time
    const JsonValue* vt = obj_.Find("validation_time");
    if (vt == nullptr || vt->is_null()) {
      if (now_.has_value()) {
        c.request.time_unix = *now_;
      } else {
        skip.push_back("validation_time is null (\"now\") and no current time was given");
      }
    } else if (vt->is_string()) {
      absl::StatusOr<int64_t> t = ParseRfc3339(vt->string_value());
      if (!t.ok()) return Error(*vt, absl::StrCat("validation_time: ", t.status().message()));
      c.request.time_unix = *t;
    } else {
      return TypeError(*vt, "validation_time", "an RFC 3339 string or null");
    }

    // expected_peer_name
    const JsonValue* name = obj_.Find("expected_peer_name");
    if (name != nullptr && !name->is_null()) {
      absl::StatusOr<std::pair<std::string, std::string>> pn =
          PeerName(*name, "expected_peer_name");
      if (!pn.ok()) return pn.status();
      const auto& [pkind, value] = *pn;
      if (pkind == "DNS") {
        c.request.host = value;
        c.request.host_kind = VerifyRequest::HostKind::kDns;
      } else if (pkind == "IP") {
        c.request.host = value;
        c.request.host_kind = VerifyRequest::HostKind::kIp;
      } else {
        skip.push_back("RFC822 (e-mail) peer names are not supported");
      }
    }

    // expected_peer_names: checked for form, then skipped when non-empty.
    absl::StatusOr<std::vector<std::string>> names_ok = CheckPeerNames();
    if (!names_ok.ok()) return names_ok.status();
    if (!names_ok->empty()) {
      skip.push_back("expected_peer_names (client-side name matching) is not supported");
    }

    // extended_key_usage
    absl::StatusOr<std::vector<std::string>> ekus = RequiredStrings("extended_key_usage");
    if (!ekus.ok()) return ekus.status();
    const char* purpose =
        c.request.kind == VerifyRequest::Kind::kServer ? "serverAuth" : "clientAuth";
    if (ekus->size() != 1 || (*ekus)[0] != purpose) {
      skip.push_back(absl::StrCat("extended_key_usage [", absl::StrJoin(*ekus, ", "),
                                  "]: the oracle checks exactly [", purpose, "] for a ",
                                  *kind, " case"));
    }

    // Constraints the oracle does not enforce.
    for (const char* field : {"signature_algorithms", "key_usage"}) {
      absl::StatusOr<std::vector<std::string>> list = RequiredStrings(field);
      if (!list.ok()) return list.status();
      if (!list->empty()) {
        skip.push_back(absl::StrCat(field, " constraints [", absl::StrJoin(*list, ", "),
                                    "] are not enforced"));
      }
    }
    if (const JsonValue* f = obj_.Find("features"); f != nullptr && !f->is_null()) {
      absl::StatusOr<std::vector<std::string>> features = Strings(*f, "features");
      if (!features.ok()) return features.status();
      if (!features->empty()) {
        skip.push_back(absl::StrCat("features not supported: ",
                                    absl::StrJoin(*features, ", ")));
      }
    }
    if (const JsonValue* d = obj_.Find("max_chain_depth"); d != nullptr && !d->is_null()) {
      int64_t depth;
      if (!d->AsInt64(&depth)) return TypeError(*d, "max_chain_depth", "an integer or null");
      skip.push_back(absl::StrCat("max_chain_depth (", depth, ") is not supported"));
    }
    if (const JsonValue* crls = obj_.Find("crls"); crls != nullptr && !IsEmptyValue(*crls)) {
      skip.push_back("CRLs (revocation checking) are not supported");
    }
    for (const auto& [field, value] : obj_.object()) {
      bool known = false;
      for (absl::string_view k : kKnownFields) known = known || field == k;
      if (!known && !IsEmptyValue(value)) {
        skip.push_back(absl::StrCat("unknown field \"", field, "\""));
      }
    }
    c.skip_reason = absl::StrJoin(skip, "; ");
    return c;
  }

 private:
  absl::Status Error(const JsonValue& at, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "limbo testcase #", index_ + 1, id_for_errors(), " at ",
        JsonPosition(text_, at.offset()), ": ", what));
  }

  absl::Status TypeError(const JsonValue& at, absl::string_view field,
                         absl::string_view want) const {
    return Error(at, absl::StrCat("field \"", field, "\" must be ", want, ", not ",
                                  JsonValue::TypeName(at.type())));
  }

  std::string id_for_errors() const {
    const JsonValue* id = obj_.Find("id");
    if (id == nullptr || !id->is_string()) return "";
    return absl::StrCat(" (", id->string_value(), ")");
  }

  absl::StatusOr<std::string> RequiredString(const char* field) const {
    const JsonValue* v = obj_.Find(field);
    if (v == nullptr) return Error(obj_, absl::StrCat("missing required field \"", field, "\""));
    if (!v->is_string()) return TypeError(*v, field, "a string");
    return v->string_value();
  }

  absl::StatusOr<std::vector<std::string>> Strings(const JsonValue& v,
                                                   absl::string_view field) const {
    if (!v.is_array()) return TypeError(v, field, "an array of strings");
    std::vector<std::string> out;
    for (const JsonValue& item : v.array()) {
      if (!item.is_string()) {
        return TypeError(item, absl::StrCat(field, "[", out.size(), "]"), "a string");
      }
      out.push_back(item.string_value());
    }
    return out;
  }

  absl::StatusOr<std::vector<std::string>> RequiredStrings(const char* field) const {
    const JsonValue* v = obj_.Find(field);
    if (v == nullptr) return Error(obj_, absl::StrCat("missing required field \"", field, "\""));
    return Strings(*v, field);
  }

  absl::StatusOr<std::pair<std::string, std::string>> PeerName(
      const JsonValue& v, absl::string_view field) const {
    if (!v.is_object()) return TypeError(v, field, "an object {kind, value}");
    const JsonValue* kind = v.Find("kind");
    const JsonValue* value = v.Find("value");
    if (kind == nullptr || !kind->is_string()) {
      return Error(v, absl::StrCat(field, ".kind must be a string"));
    }
    if (value == nullptr || !value->is_string()) {
      return Error(v, absl::StrCat(field, ".value must be a string"));
    }
    const std::string& k = kind->string_value();
    if (k != "DNS" && k != "IP" && k != "RFC822") {
      return Error(*kind, absl::StrCat(field, ".kind must be \"DNS\", \"IP\" or \"RFC822\", got \"",
                                       k, "\""));
    }
    return std::make_pair(k, value->string_value());
  }

  // The values of expected_peer_names (absent counts as empty; the schema requires it,
  // but nothing depends on it when it is empty).
  absl::StatusOr<std::vector<std::string>> CheckPeerNames() const {
    const JsonValue* v = obj_.Find("expected_peer_names");
    std::vector<std::string> out;
    if (v == nullptr || v->is_null()) return out;
    if (!v->is_array()) return TypeError(*v, "expected_peer_names", "an array");
    for (const JsonValue& item : v->array()) {
      absl::StatusOr<std::pair<std::string, std::string>> pn =
          PeerName(item, "expected_peer_names[]");
      if (!pn.ok()) return pn.status();
      out.push_back(pn->second);
    }
    return out;
  }

  absl::string_view text_;
  const JsonValue& obj_;
  size_t index_;
  std::optional<int64_t> now_;
};

// Control bytes in ids and reasons would garble a terminal: show them as '?'.
std::string Printable(absl::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  }
  return out;
}

std::string DescribeVerdict(const Verdict& v) {
  if (v.valid) return "valid";
  if (!v.input_error.empty()) return absl::StrCat("invalid (input error: ", v.input_error, ")");
  return absl::StrCat("invalid (error ", v.error_code, " at depth ", v.error_depth, ": ",
                      v.error_string, ")");
}

}  // namespace

absl::StatusOr<int64_t> ParseRfc3339(absl::string_view s) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an RFC 3339 date-time (", why, "): \"", Printable(s), "\""));
  };
  size_t p = 0;
  auto digits = [&](int n, int* out) {
    if (p + n > s.size()) return false;
    int v = 0;
    for (int i = 0; i < n; ++i) {
      char c = s[p + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    p += n;
    *out = v;
    return true;
  };
  auto expect = [&](absl::string_view chars) {
    if (p < s.size() && chars.find(s[p]) != absl::string_view::npos) {
      ++p;
      return true;
    }
    return false;
  };
  int year, month, day, hour, minute, second;
  if (!digits(4, &year) || !expect("-") || !digits(2, &month) || !expect("-") ||
      !digits(2, &day)) {
    return bad("expected YYYY-MM-DD");
  }
  if (!expect("Tt ")) return bad("expected 'T' after the date");
  if (!digits(2, &hour) || !expect(":") || !digits(2, &minute) || !expect(":") ||
      !digits(2, &second)) {
    return bad("expected hh:mm:ss");
  }
  if (expect(".")) {
    size_t start = p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    if (p == start) return bad("expected digits after '.'");
  }
  int offset_seconds = 0;
  if (expect("Zz")) {
    // UTC
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p] == '-' ? -1 : 1;
    ++p;
    int oh, om;
    if (!digits(2, &oh) || !expect(":") || !digits(2, &om) || oh > 23 || om > 59) {
      return bad("expected a +hh:mm offset");
    }
    offset_seconds = sign * (oh * 3600 + om * 60);
  } else {
    return bad("expected 'Z' or an offset");
  }
  if (p != s.size()) return bad("unexpected characters at the end");
  static constexpr int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return bad("month out of range");
  int max_day = kDaysIn[month - 1] + (month == 2 && IsLeap(year) ? 1 : 0);
  if (day < 1 || day > max_day) return bad("day out of range");
  // 60 is a leap second; POSIX time has none, count it as the next second.
  if (hour > 23 || minute > 59 || second > 60) return bad("time out of range");
  return DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
         offset_seconds;
}

absl::StatusOr<std::vector<LimboCase>> ParseLimbo(absl::string_view json,
                                                  std::optional<int64_t> now_unix) {
  absl::StatusOr<JsonValue> doc = ParseJson(json);
  if (!doc.ok()) return doc.status();
  if (!doc->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("limbo: the top level must be a testcase object or a suite object, not ",
                     JsonValue::TypeName(doc->type())));
  }
  std::vector<LimboCase> out;
  const JsonValue* testcases = doc->Find("testcases");
  if (testcases == nullptr) {
    if (doc->Find("id") == nullptr) {
      return absl::InvalidArgumentError(
          "limbo: the top-level object has neither \"testcases\" (a suite) nor \"id\" "
          "(a single testcase)");
    }
    absl::StatusOr<LimboCase> c = CaseReader(json, *doc, 0, now_unix).Read();
    if (!c.ok()) return c.status();
    out.push_back(*std::move(c));
    return out;
  }
  const JsonValue* version = doc->Find("version");
  int64_t v = 0;
  if (version == nullptr || !version->AsInt64(&v) || v != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "limbo: suite ",
        version == nullptr ? "has no \"version\""
                           : absl::StrCat("at ", JsonPosition(json, version->offset()),
                                          " has a \"version\" other than 1"),
        " (only version 1 is supported)"));
  }
  if (!testcases->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("limbo: \"testcases\" at ", JsonPosition(json, testcases->offset()),
                     " must be an array"));
  }
  out.reserve(testcases->array().size());
  for (size_t i = 0; i < testcases->array().size(); ++i) {
    absl::StatusOr<LimboCase> c =
        CaseReader(json, testcases->array()[i], i, now_unix).Read();
    if (!c.ok()) return c.status();
    out.push_back(*std::move(c));
  }
  return out;
}

LimboReport RunLimbo(const std::vector<LimboCase>& cases, const VerifyFn& verify) {
  LimboReport r;
  for (const LimboCase& c : cases) {
    ++r.total;
    std::string id = Printable(c.id);
    if (!c.skip_reason.empty()) {
      ++r.skipped;
      r.lines.push_back(absl::StrCat(id, ": SKIP (", Printable(c.skip_reason), ")"));
      continue;
    }
    Verdict v = verify(c.request);
    bool match = v.valid == c.expected_success;
    if (match) {
      ++r.matched;
      r.lines.push_back(absl::StrCat(id, ": ", Printable(DescribeVerdict(v)), ", match"));
    } else {
      ++r.mismatched;
      r.lines.push_back(absl::StrCat(id, ": ", Printable(DescribeVerdict(v)),
                                     ", MISMATCH (expected ",
                                     c.expected_success ? "SUCCESS" : "FAILURE", ")"));
    }
  }
  r.summary = absl::StrCat("limbo: ", r.total, " cases: ", r.matched, " match, ",
                           r.mismatched, " MISMATCH, ", r.skipped, " skipped");
  return r;
}

}  // namespace vow::x509
