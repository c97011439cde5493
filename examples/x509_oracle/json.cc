#include "examples/x509_oracle/json.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vow::x509 {
namespace {

// An input iterator over the text that counts the bytes nlohmann's lexer has read, so
// the builder knows where each value starts (the SAX interface gives no positions).
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* p, size_t* read) : p_(p), read_(read) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    ++p_;
    ++*read_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const CountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  size_t* read_;
};

bool IsNumberByte(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

}  // namespace

// nlohmann SAX handler that builds the JsonValue tree and enforces the limits and the
// rules nlohmann leaves to the caller (duplicate keys).
//
// Where a value starts: at every callback the lexer has read through the token it
// reports (one byte further after a number: its look-ahead). Between two callbacks it
// reads only whitespace, ',' and ':', so the next value (or key) starts at the first
// other byte after the previous callback's read position.
class JsonBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  JsonBuilder(absl::string_view text, const size_t* read, const JsonLimits& limits)
      : text_(text), read_(read), limits_(limits) {}

  bool null() override { return Scalar(JsonValue::Type::kNull) != nullptr; }
  bool boolean(bool val) override {
    JsonValue* v = Scalar(JsonValue::Type::kBool);
    if (v != nullptr) v->bool_ = val;
    return v != nullptr;
  }
  bool number_integer(number_integer_t) override { return Number(); }
  bool number_unsigned(number_unsigned_t) override { return Number(); }
  bool number_float(number_float_t, const string_t&) override { return Number(); }
  bool string(string_t& val) override {
    JsonValue* v = Scalar(JsonValue::Type::kString);
    if (v != nullptr) v->string_ = std::move(val);
    return v != nullptr;
  }
  bool binary(binary_t&) override {  // not produced by the JSON lexer
    return Fail(*read_, "binary value");
  }
  bool start_object(std::size_t) override { return Open(JsonValue::Type::kObject); }
  bool key(string_t& val) override {
    size_t at = NextStart();
    scan_ = *read_;
    if (!keys_.back().insert(val).second) {
      std::string quoted;
      AppendJsonString(val, &quoted);
      return Fail(at, absl::StrCat("duplicate member name ", quoted));
    }
    key_ = std::move(val);
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(JsonValue::Type::kArray); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    // what(): "[json.exception.parse_error.101] parse error at line 1, column 4: syntax
    // error while parsing value - unexpected ']'; ...": keep the part after the place,
    // which is given again (same convention as the other errors) from `position`, the
    // count of bytes read including the offending one, and the token.
    absl::string_view what = ex.what();
    size_t colon = what.find(": ");
    if (colon != absl::string_view::npos) what.remove_prefix(colon + 2);
    // The "last read" excerpt holds the input's bytes raw: show them as \xNN.
    std::string message;
    for (char c : what) {
      unsigned char b = static_cast<unsigned char>(c);
      if (b < 0x20 || b >= 0x7F) {
        absl::StrAppend(&message, "\\x", absl::Hex(b, absl::kZeroPad2));
      } else {
        message.push_back(c);
      }
    }
    // A whole token in the wrong place ("unexpected ..."): point at its first byte. Since
    // the last callback the parser read whitespace, at most one valid ',' or ':', and the
    // token, which ends at `position` (the count of bytes read). A token the lexer could
    // not read (bad string, number, literal): the byte where it stopped.
    size_t at = position > 0 ? position - 1 : 0;
    if (what.find(" - unexpected ") != absl::string_view::npos) {
      auto skip_space = [&](size_t p) {
        while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t' || text_[p] == '\n' ||
                                    text_[p] == '\r')) {
          ++p;
        }
        return p;
      };
      size_t p = skip_space(scan_);
      if (p < text_.size() && (text_[p] == ',' || text_[p] == ':') && p + 1 < position) {
        p = skip_space(p + 1);
      }
      if (p < position || position == 0) at = std::min(p, text_.size());
    }
    return Fail(at, std::move(message));
  }

  absl::StatusOr<JsonValue> Result(bool parsed) {
    if (!error_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON ", JsonPosition(text_, error_pos_), ": ", error_));
    }
    if (!parsed || !have_root_) {  // not expected: nlohmann reports every failure
      return absl::InvalidArgumentError("JSON: the parser stopped without a reason");
    }
    return std::move(root_);
  }

 private:
  size_t NextStart() const {
    size_t p = scan_;
    while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t' || text_[p] == '\n' ||
                                text_[p] == '\r' || text_[p] == ',' || text_[p] == ':')) {
      ++p;
    }
    return p;
  }

  bool Fail(size_t at, std::string what) {
    if (error_.empty()) {
      error_pos_ = at;
      error_ = std::move(what);
    }
    return false;
  }

  // A new value at the current place in the tree, or nullptr (error set).
  JsonValue* Add(JsonValue::Type type) {
    size_t at = NextStart();
    scan_ = *read_;
    if (++values_ > limits_.max_values) {
      Fail(at, absl::StrCat("more than ", limits_.max_values, " values"));
      return nullptr;
    }
    JsonValue* v;
    if (stack_.empty()) {
      have_root_ = true;
      v = &root_;
    } else if (stack_.back()->type_ == JsonValue::Type::kArray) {
      v = &stack_.back()->array_.emplace_back();
    } else {
      v = &stack_.back()->object_.emplace_back(std::move(key_), JsonValue()).second;
    }
    // Containers on the stack are each the last element of their parent, which grows
    // only after they are closed: the pointers stay valid.
    v->type_ = type;
    v->offset_ = at;
    return v;
  }

  JsonValue* Scalar(JsonValue::Type type) { return Add(type); }

  bool Number() {
    JsonValue* v = Add(JsonValue::Type::kNumber);
    if (v == nullptr) return false;
    size_t end = v->offset_;
    while (end < text_.size() && IsNumberByte(text_[end])) ++end;
    v->string_ = std::string(text_.substr(v->offset_, end - v->offset_));  // as written
    return true;
  }

  bool Open(JsonValue::Type type) {
    if (stack_.size() >= static_cast<size_t>(limits_.max_depth)) {
      return Fail(NextStart(), absl::StrCat("nesting deeper than ", limits_.max_depth));
    }
    JsonValue* v = Add(type);
    if (v == nullptr) return false;
    stack_.push_back(v);
    if (type == JsonValue::Type::kObject) keys_.emplace_back();
    return true;
  }

  bool Close() {
    scan_ = *read_;
    if (stack_.back()->type_ == JsonValue::Type::kObject) keys_.pop_back();
    stack_.pop_back();
    return true;
  }

  absl::string_view text_;
  const size_t* read_;
  JsonLimits limits_;
  size_t scan_ = 0;
  size_t values_ = 0;
  JsonValue root_;
  bool have_root_ = false;
  std::vector<JsonValue*> stack_;
  std::vector<std::unordered_set<std::string>> keys_;  // of the open objects
  std::string key_;
  size_t error_pos_ = 0;
  std::string error_;
};

bool JsonValue::AsInt64(int64_t* out) const {
  if (type_ != Type::kNumber) return false;
  if (string_.find_first_of(".eE") != std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(string_.c_str(), &end, 10);
  if (errno == ERANGE || end != string_.c_str() + string_.size()) return false;
  *out = v;
  return true;
}

const JsonValue* JsonValue::Find(absl::string_view key) const {
  // Linear: limbo objects have about twenty members.
  for (const auto& [name, value] : object_) {
    if (name == key) return &value;
  }
  return nullptr;
}

const char* JsonValue::TypeName(Type t) {
  switch (t) {
    case Type::kNull: return "null";
    case Type::kBool: return "a boolean";
    case Type::kNumber: return "a number";
    case Type::kString: return "a string";
    case Type::kArray: return "an array";
    case Type::kObject: return "an object";
  }
  return "?";
}

absl::StatusOr<JsonValue> ParseJson(absl::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JSON text of ", text.size(), " bytes exceeds the limit of ", limits.max_bytes));
  }
  // nlohmann skips a UTF-8 byte order mark; RFC 8259 forbids sending one.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON ", JsonPosition(text, 0), ": byte order mark (U+FEFF)"));
  }
  size_t read = 0;
  JsonBuilder builder(text, &read, limits);
  bool parsed = nlohmann::json::sax_parse(CountingIterator(text.data(), &read),
                                          CountingIterator(text.data() + text.size(), &read),
                                          &builder, nlohmann::json::input_format_t::json,
                                          /*strict=*/true, /*ignore_comments=*/false);
  return builder.Result(parsed);
}

std::string JsonPosition(absl::string_view text, size_t offset) {
  if (offset > text.size()) offset = text.size();
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return absl::StrCat("line ", line, ", column ", offset - line_start + 1, " (byte ",
                      offset, ")");
}

void AppendJsonString(absl::string_view s, std::string* out) {
  nlohmann::json j = std::string(s);
  std::string dumped =
      j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  // nlohmann leaves DEL raw (valid JSON); escape it too, so a verdict printed to a
  // terminal carries no control byte at all. 0x7F is never part of a multi-byte sequence.
  for (char c : dumped) {
    if (c == '\x7f') {
      out->append("\\u007f");
    } else {
      out->push_back(c);
    }
  }
}

}  // namespace vow::x509
