#include "examples/x509_oracle/json.h"

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vow::x509 {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return n;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

class JsonParser {
 public:
  explicit JsonParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    JsonValue v;
    SkipWhitespace();
    if (!ParseValue(&v, 0)) return Error();
    SkipWhitespace();
    if (pos_ != text_.size()) {
      Fail(pos_, "unexpected data after the top-level value");
      return Error();
    }
    return v;
  }

 private:
  absl::Status Error() const {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON ", JsonPosition(text_, error_pos_), ": ", error_));
  }

  bool Fail(size_t pos, std::string what) {
    if (error_.empty()) {
      error_pos_ = pos;
      error_ = std::move(what);
    }
    return false;
  }

  std::string Describe(size_t pos) const {
    if (pos >= text_.size()) return "end of input";
    unsigned char c = static_cast<unsigned char>(text_[pos]);
    if (c >= 0x20 && c < 0x7F) return absl::StrCat("'", std::string(1, c), "'");
    return absl::StrCat("byte 0x", absl::Hex(c, absl::kZeroPad2));
  }

  void SkipWhitespace() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  bool ParseValue(JsonValue* v, int depth) {
    v->offset_ = pos_;
    if (pos_ >= text_.size()) return Fail(pos_, "expected a value, got end of input");
    char c = text_[pos_];
    switch (c) {
      case '{':
        return ParseObject(v, depth + 1);
      case '[':
        return ParseArray(v, depth + 1);
      case '"':
        v->type_ = JsonValue::Type::kString;
        return ParseString(&v->string_);
      case 't':
        v->type_ = JsonValue::Type::kBool;
        v->bool_ = true;
        return ParseLiteral("true");
      case 'f':
        v->type_ = JsonValue::Type::kBool;
        v->bool_ = false;
        return ParseLiteral("false");
      case 'n':
        v->type_ = JsonValue::Type::kNull;
        return ParseLiteral("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(v);
        return Fail(pos_, absl::StrCat("expected a value, got ", Describe(pos_)));
    }
  }

  bool ParseLiteral(absl::string_view word) {
    if (text_.substr(pos_, word.size()) != word) {
      return Fail(pos_, absl::StrCat("expected '", word, "', got ", Describe(pos_)));
    }
    pos_ += word.size();
    return true;
  }

  bool IsDigit(size_t p) const {
    return p < text_.size() && text_[p] >= '0' && text_[p] <= '9';
  }

  bool ParseNumber(JsonValue* v) {
    size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    if (!IsDigit(pos_)) return Fail(pos_, "expected a digit");
    if (text_[pos_] == '0') {
      ++pos_;
      if (IsDigit(pos_)) return Fail(pos_, "leading zeros are not allowed");
    } else {
      while (IsDigit(pos_)) ++pos_;
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (!IsDigit(pos_)) return Fail(pos_, "expected a digit after '.'");
      while (IsDigit(pos_)) ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (!IsDigit(pos_)) return Fail(pos_, "expected a digit in the exponent");
      while (IsDigit(pos_)) ++pos_;
    }
    v->type_ = JsonValue::Type::kNumber;
    v->string_ = std::string(text_.substr(start, pos_ - start));
    return true;
  }

  bool ParseHex4(uint32_t* out) {
    if (pos_ + 4 > text_.size()) return Fail(pos_, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return Fail(pos_ + i, "expected a hex digit in \\u escape");
      }
    }
    pos_ += 4;
    *out = v;
    return true;
  }

  bool ParseString(std::string* out) {
    size_t open = pos_;
    ++pos_;  // the opening quote
    for (;;) {
      // Copy the longest run of plain bytes at once: strings in limbo files are whole
      // PEM certificates.
      size_t run = pos_;
      while (run < text_.size()) {
        unsigned char c = static_cast<unsigned char>(text_[run]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++run;
      }
      out->append(text_.data() + pos_, run - pos_);
      pos_ = run;
      if (pos_ >= text_.size()) {
        return Fail(open, "unterminated string (no closing quote)");
      }
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) {
        return Fail(pos_, absl::StrCat("unescaped control character ", Describe(pos_),
                                       " in string"));
      }
      if (c >= 0x80) {
        size_t n = Utf8SequenceLength(text_, pos_);
        if (n == 0) return Fail(pos_, "invalid UTF-8 in string");
        out->append(text_.data() + pos_, n);
        pos_ += n;
        continue;
      }
      // Backslash.
      ++pos_;
      if (pos_ >= text_.size()) return Fail(open, "unterminated string (no closing quote)");
      char e = text_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          size_t at = pos_ - 2;
          uint32_t cp;
          if (!ParseHex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Fail(at, "lone low surrogate in \\u escape");
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") {
              return Fail(at, "high surrogate not followed by a low surrogate");
            }
            pos_ += 2;
            uint32_t lo;
            if (!ParseHex4(&lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) {
              return Fail(at, "high surrogate not followed by a low surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Fail(pos_ - 1, absl::StrCat("invalid escape \\", Describe(pos_ - 1)));
      }
    }
  }

  bool ParseArray(JsonValue* v, int depth) {
    if (depth > kMaxJsonDepth) {
      return Fail(pos_, absl::StrCat("nesting deeper than ", kMaxJsonDepth));
    }
    v->type_ = JsonValue::Type::kArray;
    ++pos_;  // '['
    SkipWhitespace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipWhitespace();
      v->array_.emplace_back();
      if (!ParseValue(&v->array_.back(), depth)) return false;
      SkipWhitespace();
      if (pos_ >= text_.size()) return Fail(pos_, "expected ',' or ']', got end of input");
      char c = text_[pos_];
      if (c == ']') {
        ++pos_;
        return true;
      }
      if (c != ',') {
        return Fail(pos_, absl::StrCat("expected ',' or ']', got ", Describe(pos_)));
      }
      ++pos_;
    }
  }

  bool ParseObject(JsonValue* v, int depth) {
    if (depth > kMaxJsonDepth) {
      return Fail(pos_, absl::StrCat("nesting deeper than ", kMaxJsonDepth));
    }
    v->type_ = JsonValue::Type::kObject;
    ++pos_;  // '{'
    SkipWhitespace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipWhitespace();
      if (pos_ >= text_.size() || text_[pos_] != '"') {
        return Fail(pos_, absl::StrCat("expected a member name in quotes, got ",
                                       Describe(pos_)));
      }
      size_t key_pos = pos_;
      std::string key;
      if (!ParseString(&key)) return false;
      if (v->Find(key) != nullptr) {
        return Fail(key_pos, absl::StrCat("duplicate member name \"", key, "\""));
      }
      SkipWhitespace();
      if (pos_ >= text_.size() || text_[pos_] != ':') {
        return Fail(pos_, absl::StrCat("expected ':' after member name, got ",
                                       Describe(pos_)));
      }
      ++pos_;
      SkipWhitespace();
      v->object_.emplace_back(std::move(key), JsonValue());
      if (!ParseValue(&v->object_.back().second, depth)) return false;
      SkipWhitespace();
      if (pos_ >= text_.size()) return Fail(pos_, "expected ',' or '}', got end of input");
      char c = text_[pos_];
      if (c == '}') {
        ++pos_;
        return true;
      }
      if (c != ',') {
        return Fail(pos_, absl::StrCat("expected ',' or '}', got ", Describe(pos_)));
      }
      ++pos_;
    }
  }

  absl::string_view text_;
  size_t pos_ = 0;
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

absl::StatusOr<JsonValue> ParseJson(absl::string_view text) {
  return JsonParser(text).ParseDocument();
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
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD
        ++i;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

}  // namespace vow::x509
