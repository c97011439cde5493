// The syscall numbers libseccomp can name on an arch: the highest one, and the holes
// (inclusive ranges) below it. The seccomp compiler's prologue returns ENOSYS for every
// number outside them.
#ifndef VOW_POLICIES_NUMBER_SPACE_H_
#define VOW_POLICIES_NUMBER_SPACE_H_

#include <stdint.h>

#include <utility>
#include <vector>

namespace vow {

struct NumberSpace {
  int max_known = -1;
  std::vector<std::pair<int, int>> holes;
};

// Asks the linked libseccomp about every number below 1024 (`scmp_arch` is one of its
// SCMP_ARCH_* values): 1024 linear searches of its tables. Run at build time by
// //policies:number_space_gen, and by the test that compares the two.
NumberSpace ScanNumberSpace(uint32_t scmp_arch);

}  // namespace vow

#endif  // VOW_POLICIES_NUMBER_SPACE_H_
