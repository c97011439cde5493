// libFuzzer target for DecodeVerdict (protocol.h): the bytes a worker sends back as its
// verdict, hostile. Runs in the front end's (broker's) role. Besides "no crash, no
// sanitizer report, no read out of bounds" it checks what the decoder promises:
//  - a refusal is InvalidArgument and names a field ("verdict field <name> at offset
//    <n>: ...") or the size ("verdict of <n> bytes exceeds ...");
//  - a decoded verdict is canonical: EncodeVerdict gives back exactly the input;
//  - its values are in range (error_depth, validation_time, chain size; a valid verdict
//    has error_code 0 and no input_error) and internal_error is empty;
//  - VerdictToJson of it (what the front end hands on) is a verdict VerdictFromJson
//    accepts and that gives the same JSON again (no hostile string breaks the JSON, the
//    time formats).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "examples/x509_oracle/protocol.h"
#include "examples/x509_oracle/verify.h"

namespace {

void Fail(const char* what, const std::string& detail) {
  fprintf(stderr, "verdict_fuzzer: %s: %s\n", what, detail.c_str());
  abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vow::x509;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Verdict> v = DecodeVerdict(input);
  if (!v.ok()) {
    const std::string message(v.status().message());
    if (!absl::IsInvalidArgument(v.status())) Fail("refusal is not InvalidArgument", message);
    if (!absl::StartsWith(message, "verdict field ") &&
        !absl::StartsWith(message, "verdict of ")) {
      Fail("refusal names no field", message);
    }
    return 0;
  }
  if (EncodeVerdict(*v) != input) Fail("not canonical", "re-encoding differs from the input");
  if (v->error_depth < -1 || v->error_depth > static_cast<int>(kMaxVerdictChainCerts)) {
    Fail("error_depth out of range", std::to_string(v->error_depth));
  }
  if (v->validation_time.has_value() &&
      (*v->validation_time < kMinTimeUnix || *v->validation_time > kMaxTimeUnix)) {
    Fail("validation_time out of range", std::to_string(*v->validation_time));
  }
  if (v->chain.size() > kMaxVerdictChainCerts) Fail("chain too long", "");
  if (v->valid && (v->error_code != 0 || !v->input_error.empty())) {
    Fail("valid verdict with an error", std::to_string(v->error_code));
  }
  if (!v->internal_error.empty()) Fail("internal_error set by the worker", v->internal_error);
  const std::string json = VerdictToJson(*v);
  absl::StatusOr<Verdict> back = VerdictFromJson(json);
  if (!back.ok()) Fail("its JSON does not parse back", std::string(back.status().message()));
  if (VerdictToJson(*back) != json) Fail("its JSON is not stable", json);
  return 0;
}
