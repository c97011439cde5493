// The promise vocabulary (OpenBSD pledge(2) names, plus `thread`). Both sides: the broker
// compiles promises to seccomp-BPF (promise_compiler.h); the worker only names them.
#ifndef VOW_POLICIES_PROMISES_H_
#define VOW_POLICIES_PROMISES_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace vow {

enum class Promise : uint8_t {
  kStdio,
  kRpath,
  kWpath,
  kCpath,
  kDpath,
  kTmppath,
  kFattr,
  kChown,
  kFlock,
  kInet,
  kUnix,
  kDns,
  kTty,
  kRecvfd,
  kSendfd,
  kProc,
  kThread,
  kExec,
  kProtExec,
  kId,
};
inline constexpr int kPromiseCount = 20;

// "stdio", "rpath", ..., "prot_exec", "id".
absl::string_view PromiseName(Promise p);
// The promise with that exact name, or nullopt.
std::optional<Promise> PromiseFromName(absl::string_view name);

// A set of promises (a bit per Promise).
class PromiseSet {
 public:
  constexpr PromiseSet() = default;
  constexpr PromiseSet(std::initializer_list<Promise> promises) {
    for (Promise p : promises) bits_ |= Bit(p);
  }
  constexpr bool contains(Promise p) const { return (bits_ & Bit(p)) != 0; }
  constexpr void insert(Promise p) { bits_ |= Bit(p); }
  constexpr void erase(Promise p) { bits_ &= ~Bit(p); }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr uint32_t bits() const { return bits_; }
  static constexpr PromiseSet FromBits(uint32_t bits) {
    PromiseSet s;
    s.bits_ = bits & ((1u << kPromiseCount) - 1);
    return s;
  }
  constexpr bool operator==(const PromiseSet& o) const { return bits_ == o.bits_; }
  // Space-separated names in vocabulary order, e.g. "stdio rpath".
  std::string ToString() const;

 private:
  static constexpr uint32_t Bit(Promise p) { return 1u << static_cast<uint32_t>(p); }
  uint32_t bits_ = 0;
};

}  // namespace vow

#endif  // VOW_POLICIES_PROMISES_H_
