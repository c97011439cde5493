// The strict JSON reader and the string escaper.
#include "examples/x509_oracle/json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::x509 {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

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
  // nlohmann's wording after the place, which is ours: line, column, byte.
  EXPECT_EQ(ErrorOf(""),
            "JSON line 1, column 1 (byte 0): syntax error while parsing value - unexpected end "
            "of input; expected '[', '{', or a literal");
  EXPECT_EQ(ErrorOf("{\n  \"a\": 1,\n}"),
            "JSON line 3, column 1 (byte 12): syntax error while parsing object key - "
            "unexpected '}'; expected string literal");
  EXPECT_THAT(ErrorOf("[1,]"), StartsWith("JSON line 1, column 4 (byte 3): syntax error"));
  EXPECT_THAT(ErrorOf("{\"a\" 1}"), StartsWith("JSON line 1, column 6 (byte 5): syntax error"));
  EXPECT_THAT(ErrorOf("[01]"),
              StartsWith("JSON line 1, column 3 (byte 2): syntax error while parsing array - "
                         "unexpected number literal"));
  EXPECT_THAT(ErrorOf("\"abc"), StartsWith("JSON line 1, column 5 (byte 4): syntax error"));
  EXPECT_THAT(ErrorOf("\"abc"), HasSubstr("missing closing quote"));
  EXPECT_THAT(ErrorOf("\"a\tb\""), StartsWith("JSON line 1, column 3 (byte 2): "));
  EXPECT_THAT(ErrorOf("\"a\tb\""), HasSubstr("control character U+0009 (HT) must be escaped"));
  EXPECT_THAT(ErrorOf("\"\\x\""), HasSubstr("forbidden character after backslash"));
  EXPECT_THAT(ErrorOf("\"\\ud800\""),
              HasSubstr("surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"));
  EXPECT_THAT(ErrorOf("\"\\udc00\""), HasSubstr("surrogate U+DC00..U+DFFF must follow"));
  EXPECT_THAT(ErrorOf("[1] x"), StartsWith("JSON line 1, column 5 (byte 4): syntax error"));
  EXPECT_THAT(ErrorOf("[1] x"), HasSubstr("expected end of input"));
  EXPECT_THAT(ErrorOf("tru"), StartsWith("JSON line 1, column "));
  EXPECT_THAT(ErrorOf("tru"), HasSubstr("invalid literal"));
  EXPECT_THAT(ErrorOf("NaN"), HasSubstr("invalid literal"));
  EXPECT_THAT(ErrorOf("-"), HasSubstr("invalid number"));
  EXPECT_THAT(ErrorOf("1."), HasSubstr("invalid number"));
  EXPECT_THAT(ErrorOf("1e"), HasSubstr("invalid number"));
  EXPECT_THAT(ErrorOf("// c\n1"), StartsWith("JSON line 1, column "));  // no comments
  EXPECT_THAT(ErrorOf("/* c */ 1"), HasSubstr("invalid literal"));
  EXPECT_THAT(ErrorOf("[1,2,]"), StartsWith("JSON line 1, column 6 (byte 5): syntax error"));
  EXPECT_THAT(ErrorOf("{\"a\":1,}"), StartsWith("JSON line 1, column 8 (byte 7): syntax error"));
  EXPECT_THAT(ErrorOf("[1]\n\n  ]"), StartsWith("JSON line 3, column 3 (byte 7): syntax error"));
  // Where the unexpected token starts, after a valid ',' or ':' or none.
  EXPECT_THAT(ErrorOf("[1,,2]"), StartsWith("JSON line 1, column 4 (byte 3): syntax error"));
  EXPECT_THAT(ErrorOf("{\"a\"::1}"), StartsWith("JSON line 1, column 6 (byte 5): syntax error"));
  EXPECT_THAT(ErrorOf("{\"a\": 1 \"b\": 2}"),
              StartsWith("JSON line 1, column 9 (byte 8): syntax error while parsing object - "
                         "unexpected string literal"));
  EXPECT_THAT(ErrorOf("[\"x\" , \n \"y\\\"z\" }"),
              StartsWith("JSON line 2, column 9 (byte 16): syntax error while parsing array"));
}

TEST(JsonTest, DuplicateKeysRefused) {
  EXPECT_EQ(ErrorOf("{\"a\":1,\"a\":2}"),
            "JSON line 1, column 8 (byte 7): duplicate member name \"a\"");
  EXPECT_EQ(ErrorOf("{\"x\": {\"b\": [1, {\"c\": 1}], \"b\": null}}"),
            "JSON line 1, column 28 (byte 27): duplicate member name \"b\"");
  // The same name as \u escape and as UTF-8 is the same member.
  EXPECT_EQ(ErrorOf("{\"\\u00e9\":1,\n\"\xc3\xa9\":2}"),
            "JSON line 2, column 1 (byte 13): duplicate member name \"\xc3\xa9\"");
  // The same name in different objects, or as a value, is fine.
  EXPECT_EQ(ErrorOf("[{\"a\":1},{\"a\":{\"a\":\"a\"}}]"), "OK");
}

TEST(JsonTest, BadUtf8Refused) {
  // In strings: a stray byte, an overlong '/', an encoded surrogate, a truncated sequence,
  // above U+10FFFF. Errors show the bytes as \xNN, never raw.
  for (const char* text : {"\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xe2\x82\"",
                           "\"\xf4\x90\x80\x80\""}) {
    std::string e = ErrorOf(text);
    EXPECT_THAT(e, StartsWith("JSON line 1, column ")) << text;
    EXPECT_THAT(e, HasSubstr("ill-formed UTF-8 byte")) << text;
    for (char c : e) EXPECT_LT(static_cast<unsigned char>(c), 0x80) << e;
  }
  EXPECT_THAT(ErrorOf("\"\xff\""), StartsWith("JSON line 1, column 2 (byte 1): "));
  EXPECT_THAT(ErrorOf("\"\xff\""), HasSubstr("last read: '\"\\xff'"));
  // Outside strings.
  EXPECT_THAT(ErrorOf("[1, \xc3\xa9]"), StartsWith("JSON line 1, column 5 (byte 4): "));
  // Valid UTF-8 up to U+10FFFF is kept as is.
  absl::StatusOr<JsonValue> v = ParseJson("\"\xf4\x8f\xbf\xbf\"");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->string_value(), "\xf4\x8f\xbf\xbf");
  // A byte order mark is refused (nlohmann alone would skip it).
  EXPECT_EQ(ErrorOf("\xef\xbb\xbf{}"), "JSON line 1, column 1 (byte 0): byte order mark (U+FEFF)");
}

TEST(JsonTest, DepthLimit) {
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  EXPECT_EQ(ErrorOf(ok), "OK");
  std::string over(kMaxJsonDepth + 1, '[');
  over += std::string(kMaxJsonDepth + 1, ']');
  EXPECT_EQ(ErrorOf(over), "JSON line 1, column 129 (byte 128): nesting deeper than 128");
  std::string deep(100000, '[');  // a deep tree would overflow the stack when destroyed
  EXPECT_THAT(ErrorOf(deep), HasSubstr("nesting deeper than 128"));
  std::string objects;
  for (int i = 0; i <= kMaxJsonDepth; ++i) objects += "{\"a\":";
  EXPECT_THAT(ErrorOf(objects), HasSubstr("nesting deeper than 128"));
  JsonLimits limits;
  limits.max_depth = 2;
  EXPECT_TRUE(ParseJson("[[1]]", limits).ok());
  EXPECT_EQ(ParseJson("[{\"a\":[]}]", limits).status().message(),
            "JSON line 1, column 7 (byte 6): nesting deeper than 2");
}

TEST(JsonTest, SizeLimits) {
  JsonLimits limits;
  limits.max_bytes = 10;
  EXPECT_TRUE(ParseJson("[1,2,3,45]", limits).ok());
  EXPECT_EQ(ParseJson("[1,2,3,456]", limits).status().message(),
            "JSON text of 11 bytes exceeds the limit of 10");
  limits = JsonLimits();
  limits.max_values = 5;  // the array, 1, [2], 2, 3
  EXPECT_TRUE(ParseJson("[1,[2],3]", limits).ok());
  limits.max_values = 4;
  EXPECT_EQ(ParseJson("[1,[2],3]", limits).status().message(),
            "JSON line 1, column 8 (byte 7): more than 4 values");
}

TEST(JsonTest, OffsetsOfEveryValue) {
  const std::string text = "{ \"n\" : -12.5e1 ,\"s\":\"\\u0041\",\n \"a\":[ 7 ,true, null,{}],\"z\":0}";
  absl::StatusOr<JsonValue> v = ParseJson(text);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->offset(), 0u);
  EXPECT_EQ(v->Find("n")->offset(), text.find("-12.5e1"));
  EXPECT_EQ(v->Find("n")->number_text(), "-12.5e1");
  EXPECT_EQ(v->Find("s")->offset(), text.find("\"\\u0041\""));
  EXPECT_EQ(v->Find("s")->string_value(), "A");
  const JsonValue* a = v->Find("a");
  EXPECT_EQ(a->offset(), text.find("[ 7"));
  EXPECT_EQ(a->array()[0].offset(), text.find("7 ,"));
  EXPECT_EQ(a->array()[1].offset(), text.find("true"));
  EXPECT_EQ(a->array()[2].offset(), text.find("null"));
  EXPECT_EQ(a->array()[3].offset(), text.find("{}"));
  EXPECT_EQ(v->Find("z")->offset(), text.size() - 2);
  int64_t z = -1;
  EXPECT_TRUE(v->Find("z")->AsInt64(&z));
  EXPECT_EQ(z, 0);
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
