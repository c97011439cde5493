#include "policies/number_space.h"

#include <seccomp.h>
#include <stdlib.h>

namespace vow {

NumberSpace ScanNumberSpace(uint32_t scmp_arch) {
  constexpr int kScanLimit = 1024;  // libseccomp's tables reach a few hundred
  NumberSpace ns;
  std::vector<bool> known(kScanLimit, false);
  for (int nr = 0; nr < kScanLimit; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(scmp_arch, nr);
    if (name != nullptr) {
      known[nr] = true;
      ns.max_known = nr;
      free(name);
    }
  }
  for (int nr = 0; nr <= ns.max_known; ++nr) {
    if (known[nr]) continue;
    int end = nr;
    while (end + 1 <= ns.max_known && !known[end + 1]) ++end;
    ns.holes.emplace_back(nr, end);
    nr = end;
  }
  return ns;
}

}  // namespace vow
