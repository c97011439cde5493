// `bazel run //policies:explain -- [--arch=x86_64|aarch64] [--stable] stdio rpath ...`
// Prints what the promise set allows on that arch (see explain.h). Developer tool.
// Regenerating the golden files of explain_test:
//   VOW_UPDATE_GOLDEN=$PWD/policies/testdata bazel run //policies:promise_compiler_test
// (see explain_test.cc), or by hand for one file:
//   bazel run //policies:explain -- --arch=aarch64 --stable stdio > <file>
#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "policies/explain.h"
#include "policies/promise_compiler.h"
#include "policies/promises.h"

int main(int argc, char** argv) {
  vow::Arch arch = vow::NativeArch();
  vow::ExplainDetail detail = vow::ExplainDetail::kWithBpf;
  vow::PromiseSet promises;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--arch=")) {
      auto a = vow::ArchFromName(arg.substr(7));
      if (!a.has_value()) {
        std::fprintf(stderr, "unknown arch: %s\n", arg.c_str());
        return 2;
      }
      arch = *a;
    } else if (arg == "--stable") {
      detail = vow::ExplainDetail::kStable;
    } else {
      auto p = vow::PromiseFromName(arg);
      if (!p.has_value()) {
        std::fprintf(stderr, "unknown promise: %s\n", arg.c_str());
        return 2;
      }
      promises.insert(*p);
    }
  }
  auto text = vow::ExplainPromises(promises, arch, detail);
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", std::string(text.status().message()).c_str());
    return 1;
  }
  std::fwrite(text->data(), 1, text->size(), stdout);
  return 0;
}
