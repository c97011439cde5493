#include "policies/promises.h"

#include <array>
#include <string>

namespace vow {
namespace {

// Indexed by the enum's value; the order is the vocabulary order.
constexpr std::array<const char*, kPromiseCount> kNames = {
    "stdio", "rpath", "wpath", "cpath", "dpath", "tmppath", "fattr",
    "chown", "flock", "inet",  "unix",  "dns",   "tty",     "recvfd",
    "sendfd", "proc", "thread", "exec", "prot_exec", "id",
};

}  // namespace

absl::string_view PromiseName(Promise p) {
  const auto i = static_cast<size_t>(p);
  if (i >= kNames.size()) return "unknown";
  return kNames[i];
}

std::optional<Promise> PromiseFromName(absl::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (name == kNames[i]) return static_cast<Promise>(i);
  }
  return std::nullopt;
}

std::string PromiseSet::ToString() const {
  std::string out;
  for (int i = 0; i < kPromiseCount; ++i) {
    const auto p = static_cast<Promise>(i);
    if (!contains(p)) continue;
    if (!out.empty()) out += ' ';
    const absl::string_view name = PromiseName(p);
    out.append(name.data(), name.size());
  }
  return out;
}

}  // namespace vow
