// The placeholder pid in compiled programs. Both sides: the broker's compiler emits it,
// the worker's loader (PatchSelfPid) replaces it with the worker's pid after fork.
#ifndef VOW_POLICIES_SELF_PID_H_
#define VOW_POLICIES_SELF_PID_H_

#include <stdint.h>

namespace vow {

// The pid that kill/tgkill "self" conditions compare against in a compiled program. The
// broker compiles before fork, so the worker's pid is unknown; the child rewrites this
// immediate with its own pid. Larger than any pid (pid_max <= 2^22), and libseccomp
// emits it as the immediate of a single `jeq` (the comparison is on the low 32 bits).
inline constexpr uint32_t kSelfPidPlaceholder = 0x7ff0f00d;

}  // namespace vow

#endif  // VOW_POLICIES_SELF_PID_H_
