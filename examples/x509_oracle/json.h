// A strict JSON reader (RFC 8259) and a string escaper, for the oracle's broker
// (x509-limbo files, hostile) and its verdicts (both sides; a verdict read by the broker
// comes from a worker and is hostile too). Both are nlohmann-json (Debian's
// nlohmann-json3-dev): its SAX parser does the lexing and grammar; this file adds what
// the library does not enforce itself and builds the tree.
//
// Strict: no comments, no trailing commas, no NaN/Infinity, no leading zeros, no
// unescaped control characters, valid UTF-8 only (nlohmann's lexer); and here: no
// duplicate keys in an object, no byte order mark, nesting at most max_depth, at most
// max_bytes of text and max_values values (each limit refused before or while parsing,
// never by running out of memory or stack). Errors name the place: "JSON line L, column C
// (byte B): what was wrong". The parser is iterative; only the tree's destructor recurses,
// bounded by max_depth.
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
// The whole x509-limbo suite is tens of megabytes.
inline constexpr size_t kMaxJsonBytes = size_t{256} << 20;
// Values of any kind (a JsonValue is ~100 bytes: at most ~1.6 GB of tree).
inline constexpr size_t kMaxJsonValues = size_t{16} << 20;

struct JsonLimits {
  size_t max_bytes = kMaxJsonBytes;
  int max_depth = kMaxJsonDepth;
  size_t max_values = kMaxJsonValues;
};

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
  friend class JsonBuilder;
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string string_;
  std::vector<JsonValue> array_;
  std::vector<std::pair<std::string, JsonValue>> object_;
  size_t offset_ = 0;
};

// Parses `text`. Errors are InvalidArgument with the position (see above).
absl::StatusOr<JsonValue> ParseJson(absl::string_view text, const JsonLimits& limits = {});

// "line L, column C (byte B)" for a byte offset into `text` (columns count bytes).
std::string JsonPosition(absl::string_view text, size_t offset);

// Appends `s` as a quoted JSON string (nlohmann's serializer): ", \, and bytes < 0x20
// escaped (\n, \t, ..., \u00XX), DEL as \u007f (added here); bytes that are not valid
// UTF-8 are replaced by U+FFFD, so the output is always valid JSON in valid UTF-8.
void AppendJsonString(absl::string_view s, std::string* out);

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_JSON_H_
