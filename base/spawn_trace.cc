#include "base/spawn_trace.h"

#ifdef VOW_SPAWN_TRACE
#include <sys/mman.h>

namespace vow {
namespace {
uint64_t* MakeTracePage() {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<uint64_t*>(p);
}
}  // namespace
static_assert(kTrCount * sizeof(uint64_t) <= 4096, "the trace is one page");
uint64_t* const g_spawn_trace = MakeTracePage();
}  // namespace vow
#endif
