// A path call the broker refused. Privileged side; plain data for WorkerResult.
#ifndef VOW_BROKER_REFUSAL_H_
#define VOW_BROKER_REFUSAL_H_

#include <string>

namespace vow {

struct Refusal {
  std::string call;     // as a person reads it: openat("/etc/shadow", O_RDONLY)
  int err = 0;          // what the call returned (EACCES, ENOENT, ...)
  std::string reason;   // why
  std::string promise;  // the promise that would allow it, when that is what was missing
  // Learning mode (penalty log): the call was performed anyway and is recorded so that
  // `vow learn` can propose the promise and the rule it needs.
  bool learning = false;
  std::string path;     // the absolute path the broker resolved ("" if none)
  char letter = 0;      // the rule letter it needs: 'r', 'w' or 'c'
  std::string needed;   // the promise the call needs (rpath, wpath, cpath, exec, ...)
  // "openat(\"/etc/shadow\", O_RDONLY) refused (ENOENT): no rule covers the path"
  std::string ToString() const;
};

}  // namespace vow

#endif  // VOW_BROKER_REFUSAL_H_
