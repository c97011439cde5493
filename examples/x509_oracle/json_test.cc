// The strict JSON reader and the string escaper.
#include "examples/x509_oracle/json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::x509 {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(absl::string_view text) {
  absl::StatusOr<JsonValue> v = ParseJson(text);
  if (v.ok()) return "OK";
  return std::string(v.status().message());
}

TEST(JsonTest, Values) {
  absl::StatusOr<JsonValue> v = ParseJson(
      " {\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\\/\"],"
      " \"b\": {}, \"c\": []} ");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->is_object());
  const JsonValue* a = v->Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->array().size(), 6u);
  int64_t i;
  EXPECT_TRUE(a->array()[0].AsInt64(&i));
  EXPECT_EQ(i, 1);
  EXPECT_FALSE(a->array()[1].AsInt64(&i));
  EXPECT_EQ(a->array()[1].number_text(), "-2.5e3");
  EXPECT_TRUE(a->array()[2].bool_value());
  EXPECT_FALSE(a->array()[3].bool_value());
  EXPECT_TRUE(a->array()[4].is_null());
  EXPECT_EQ(a->array()[5].string_value(), "x\xc3\xa9\xf0\x9f\x98\x80\n/");
  EXPECT_TRUE(v->Find("b")->is_object());
  EXPECT_TRUE(v->Find("c")->is_array());
  EXPECT_EQ(v->Find("zzz"), nullptr);
  EXPECT_EQ(a->offset(), 7u);
}

TEST(JsonTest, NulInString) {
  absl::StatusOr<JsonValue> v = ParseJson("\"a\\u0000b\"");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->string_value(), std::string("a\0b", 3));
}

TEST(JsonTest, Int64Range) {
  int64_t i;
  EXPECT_TRUE(ParseJson("9223372036854775807")->AsInt64(&i));
  EXPECT_FALSE(ParseJson("9223372036854775808")->AsInt64(&i));
}

TEST(JsonTest, StrictErrorsWithPosition) {
  EXPECT_EQ(ErrorOf(""), "JSON line 1, column 1 (byte 0): expected a value, got end of input");
  EXPECT_EQ(ErrorOf("{\n  \"a\": 1,\n}"),
            "JSON line 3, column 1 (byte 12): expected a member name in quotes, got '}'");
  EXPECT_EQ(ErrorOf("[1,]"), "JSON line 1, column 4 (byte 3): expected a value, got ']'");
  EXPECT_EQ(ErrorOf("[01]"), "JSON line 1, column 3 (byte 2): leading zeros are not allowed");
  EXPECT_EQ(ErrorOf("{\"a\":1,\"a\":2}"),
            "JSON line 1, column 8 (byte 7): duplicate member name \"a\"");
  EXPECT_EQ(ErrorOf("\"abc"),
            "JSON line 1, column 1 (byte 0): unterminated string (no closing quote)");
  EXPECT_EQ(ErrorOf("\"a\tb\""),
            "JSON line 1, column 3 (byte 2): unescaped control character byte 0x09 in "
            "string");
  EXPECT_EQ(ErrorOf("\"\\x\""), "JSON line 1, column 3 (byte 2): invalid escape \\'x'");
  EXPECT_EQ(ErrorOf("\"\\ud800\""),
            "JSON line 1, column 2 (byte 1): high surrogate not followed by a low "
            "surrogate");
  EXPECT_EQ(ErrorOf("\"\\udc00\""),
            "JSON line 1, column 2 (byte 1): lone low surrogate in \\u escape");
  EXPECT_EQ(ErrorOf("\"\xff\""), "JSON line 1, column 2 (byte 1): invalid UTF-8 in string");
  EXPECT_EQ(ErrorOf("\"\xc0\xaf\""),
            "JSON line 1, column 2 (byte 1): invalid UTF-8 in string");  // overlong '/'
  EXPECT_EQ(ErrorOf("\"\xed\xa0\x80\""),
            "JSON line 1, column 2 (byte 1): invalid UTF-8 in string");  // surrogate
  EXPECT_EQ(ErrorOf("[1] x"),
            "JSON line 1, column 5 (byte 4): unexpected data after the top-level value");
  EXPECT_EQ(ErrorOf("tru"), "JSON line 1, column 1 (byte 0): expected 'true', got 't'");
  EXPECT_EQ(ErrorOf("NaN"), "JSON line 1, column 1 (byte 0): expected a value, got 'N'");
  EXPECT_EQ(ErrorOf("-"), "JSON line 1, column 2 (byte 1): expected a digit");
  EXPECT_EQ(ErrorOf("1."), "JSON line 1, column 3 (byte 2): expected a digit after '.'");
  EXPECT_EQ(ErrorOf("1e"), "JSON line 1, column 3 (byte 2): expected a digit in the exponent");
  EXPECT_EQ(ErrorOf("// c\n1"), "JSON line 1, column 1 (byte 0): expected a value, got '/'");
}

TEST(JsonTest, DepthLimit) {
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  EXPECT_EQ(ErrorOf(ok), "OK");
  std::string deep(100000, '[');  // would overflow the stack without the limit
  EXPECT_THAT(ErrorOf(deep), HasSubstr("nesting deeper than 128"));
}

TEST(JsonTest, AppendJsonStringRoundTrips) {
  std::string all;
  for (int c = 0; c < 128; ++c) all.push_back(static_cast<char>(c));
  all += "\xc3\xa9\xf0\x9f\x98\x80";
  std::string quoted;
  AppendJsonString(all, &quoted);
  absl::StatusOr<JsonValue> back = ParseJson(quoted);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->string_value(), all);
  // Invalid UTF-8 becomes U+FFFD, so the output is still valid JSON.
  std::string bad;
  AppendJsonString("a\xff\xc3(b", &bad);
  EXPECT_EQ(bad, "\"a\xef\xbf\xbd\xef\xbf\xbd(b\"");
  EXPECT_TRUE(ParseJson(bad).ok());
}

}  // namespace
}  // namespace vow::x509
