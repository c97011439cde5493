// The libc set and the loader set: files that code in a worker reads behind the
// program's back, which every worker may read with no rule written. Trusted data (the
// broker opens these for a worker, read-only); `vow explain` prints both tables.
//
// The libc set (policy `libc default`, switched off by `libc none`): read-only regular
// files, never directories' contents listed, never anything executable. The loader set:
// what the dynamic loader of an exec'd image needs to start (the library directories
// and its cache), read-only; only an exec'd image (vow run, SpawnExec) gets it, and only
// fds from it may be mapped PROT_EXEC.
#ifndef VOW_POLICIES_LIBC_SET_H_
#define VOW_POLICIES_LIBC_SET_H_

#include <string>
#include <vector>

namespace vow {

struct LibcSetEntry {
  std::string path;    // absolute; a directory covers what is beneath it
  bool write = false;  // only /dev/null
  std::string reader;  // which libc function reads it, and why
};

const std::vector<LibcSetEntry>& LibcSet();
const std::vector<LibcSetEntry>& LoaderSet();
// Files of the worker's own /proc/PID that libc reads (the broker opens /proc/PID/NAME
// of the WORKER for "/proc/self/NAME" and "/proc/thread-self/NAME"; never its own).
const std::vector<LibcSetEntry>& LibcProcSelfSet();

}  // namespace vow

#endif  // VOW_POLICIES_LIBC_SET_H_
