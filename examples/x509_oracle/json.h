// A small strict JSON reader (RFC 8259) and a string escaper, for the oracle's broker
// (x509-limbo files) and its verdicts (both sides).
//
// Strict: no comments, no trailing commas, no NaN/Infinity, no leading zeros, no
// unescaped control characters, valid UTF-8 only, no duplicate keys in an object,
// nothing but whitespace after the top-level value, nesting at most kMaxJsonDepth.
// Errors name the place: "line L, column C (byte B): what was expected". Parsing is
// iterative in the input and recursive only in the nesting (bounded), so a
// tens-of-megabytes file (the whole x509-limbo suite) is fine.
#ifndef VOW_EXAMPLES_X509_ORACLE_JSON_H_
#define VOW_EXAMPLES_X509_ORACLE_JSON_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vow::x509 {

inline constexpr int kMaxJsonDepth = 128;

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  bool bool_value() const { return bool_; }
  // The number's text as written (e.g. "12", "-1.5e3").
  const std::string& number_text() const { return string_; }
  // True and *out set when the number is an integer that fits in int64_t.
  bool AsInt64(int64_t* out) const;
  // The decoded string (UTF-8; may contain NUL bytes from \u0000).
  const std::string& string_value() const { return string_; }
  const std::vector<JsonValue>& array() const { return array_; }
  // Members in input order.
  const std::vector<std::pair<std::string, JsonValue>>& object() const {
    return object_;
  }
  // The member named `key`, or nullptr (also when this is not an object).
  const JsonValue* Find(absl::string_view key) const;

  // Byte offset of the value's first character in the parsed text.
  size_t offset() const { return offset_; }

  static const char* TypeName(Type t);

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string string_;
  std::vector<JsonValue> array_;
  std::vector<std::pair<std::string, JsonValue>> object_;
  size_t offset_ = 0;
};

// Parses `text`. Errors are InvalidArgument with the position (see above).
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

// "line L, column C (byte B)" for a byte offset into `text` (columns count bytes).
std::string JsonPosition(absl::string_view text, size_t offset);

// Appends `s` as a quoted JSON string: ", \, and bytes < 0x20 escaped (\n, \t, ...,
// \u00XX), DEL as \u007f; bytes that are not valid UTF-8 are replaced by U+FFFD, so
// the output is always valid JSON in valid UTF-8.
void AppendJsonString(absl::string_view s, std::string* out);

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_JSON_H_
