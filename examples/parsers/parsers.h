// The parser sandbox's C++ API: images, fonts and archives decoded by Debian's libraries
// inside workers locked to `stdio`. Runs in the caller's (trusted, broker) process;
// everything a worker answers is hostile and is checked here before it becomes a result.
//
// Images and fonts are served by a WorkerPool of pre-forked, locked workers (no fork on
// the request path). A worker that crashes, answers garbage or times out is replaced;
// its request gets a result that says so ("crashed: SIGSEGV in worker"), never an
// exception or a crash of the caller. `--to OUT.png` and archive extraction write files:
// each gets a fresh worker whose policy names exactly where it may create files, and
// every file is created by the broker (Client::Open with O_CREAT|O_EXCL); the worker
// never opens or creates a path itself.
//
// Thread-safe: every method may be called from many threads at once.
#ifndef VOW_EXAMPLES_PARSERS_PARSERS_H_
#define VOW_EXAMPLES_PARSERS_PARSERS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "broker/broker.h"
#include "broker/worker_pool.h"
#include "examples/parsers/archive.h"
#include "examples/parsers/font.h"
#include "examples/parsers/image.h"

namespace vow::parsers {

struct ParserOptions {
  size_t pool_size = 2;  // 0: no pool (only DecodeImageToPng and ExtractArchive work)
  absl::Duration timeout = absl::Seconds(60);  // per request
  uint64_t worker_memory_bytes = 4ull << 30;   // RLIMIT_AS of every worker
  int stderr_fd = -1;                          // the workers' fd 2; -1: /dev/null
  int audit_fd = -1;                           // the broker's audit log; -1: in memory
  // Each pooled worker gets a pixel window of this size (a memfd, sparse, sealed by
  // this side against shrinking and growing) for pixels of up to this many bytes;
  // larger ones come through the data socket.
  uint64_t window_bytes = 256u << 20;
  // Test only: workers crash (SIGSEGV) on CrashWorkerForTesting().
  bool crash_for_testing = false;
  // Test only: workers honour HostileDecodeForTesting().
  bool hostile_for_testing = false;
};

// How a request ended.
enum class Outcome {
  kOk,        // decoded / rendered / extracted (see the result's fields)
  kRejected,  // the library rejected the input, or a limit was hit: `error` says which
  kFailed,    // the sandbox failed: the worker crashed, timed out or answered garbage
};

struct ImageOptions {
  uint64_t max_pixels = kDefaultMaxPixels;
  uint64_t max_bytes = kDefaultMaxImageBytes;  // checked before the bytes are sent
  bool keep_pixels = true;                     // return the RGBA pixels
};

struct ImageResult {
  Outcome outcome = Outcome::kFailed;
  std::string error;  // kRejected: the library's message; kFailed: what happened
  ImageInfo info;     // kOk
  std::string rgba;   // kOk and keep_pixels: width * height * 4 bytes
  // One JSON object: format, width, height, channels, bit_depth, frames, warnings; or
  // {"error": ...}. Worker strings are escaped (non-ASCII as \u00XX).
  std::string ToJson() const;
};

struct FontOptions {
  uint32_t pixel_size = 32;
  uint64_t max_pixels = 16u << 20;
  uint64_t max_bytes = 64u << 20;
};

struct FontResult {
  Outcome outcome = Outcome::kFailed;
  std::string error;
  RenderedText text;  // kOk
  std::string png;    // kOk: text.gray encoded here (trusted side) as a PNG
  std::string ToJson() const;  // family, style, width, height, glyphs[]
};

class Parsers {
 public:
  static absl::StatusOr<std::unique_ptr<Parsers>> Create(ParserOptions options = {});
  ~Parsers();
  Parsers(const Parsers&) = delete;
  Parsers& operator=(const Parsers&) = delete;

  ImageResult DecodeImage(absl::string_view bytes, const ImageOptions& options = {});
  // Also writes the decoded first frame as a clean PNG to `out_png` (absolute; must not
  // exist): a fresh worker whose policy has one rule, `out_png` with `c` and `w`.
  ImageResult DecodeImageToPng(absl::string_view bytes, const ImageOptions& options,
                               const std::string& out_png);
  FontResult RenderText(absl::string_view font, absl::string_view text,
                        const FontOptions& options = {});
  // Extracts the archive read from `archive_fd` (the caller's; not closed) into `dir`
  // (absolute; created if missing, must be empty). See archive.h.
  ExtractResult ExtractArchive(int archive_fd, const std::string& dir,
                               const ExtractOptions& options = {});

  // Test only (crash_for_testing): sends a job that makes a pooled worker crash.
  ImageResult CrashWorkerForTesting();
  // Test only (hostile_for_testing): DecodeImage, but the worker misbehaves with its
  // pixel window in the way `mode` says (worker.cc HostileMode: 1 shrinks it, 2 claims
  // pixels past its end, 3 answers "in the window" to a job that did not ask).
  ImageResult HostileDecodeForTesting(uint8_t mode, absl::string_view bytes,
                                      const ImageOptions& options = {});

  Broker& broker() { return *broker_; }
  size_t idle_workers() const { return pool_ != nullptr ? pool_->idle() : 0; }
  uint64_t failed_workers() const;

 private:
  explicit Parsers(ParserOptions options) : options_(std::move(options)) {}
  // This side's view of a worker's pixel window: read-only, shared; the worker may
  // write it at any time, so pixels are copied out while the worker is still leased.
  struct PixelWindow {
    UniqueFd fd;
    const char* map = nullptr;
    size_t size = 0;
    ~PixelWindow();
  };
  // One job to a pooled worker: `take` gets the answer (and the worker's pixel window if
  // `with_window`, sent along with the job the first time) while the worker is still
  // leased, and says whether the answer was well-formed; a malformed one ends the
  // worker. False with a kFailed description in *error if the exchange failed.
  bool PoolExchange(const std::string& job, size_t max_answer, bool with_window,
                    const std::function<bool(absl::string_view, const PixelWindow*)>& take,
                    std::string* error);
  bool PoolExchange(const std::string& job, size_t max_answer, std::string* answer,
                    std::string* error);
  ImageResult PooledImage(const std::string& job, const ImageOptions& options,
                          bool with_window);
  absl::StatusOr<std::shared_ptr<PixelWindow>> WindowFor(WorkerId id, bool* fresh);
  std::string DescribeEnd(WorkerId id, absl::Duration wait);

  ParserOptions options_;
  std::unique_ptr<Broker> broker_;
  std::shared_ptr<const PreparedPolicy> policy_;
  WorkerMain main_;
  std::unique_ptr<WorkerPool> pool_;
  mutable absl::Mutex mu_;
  std::map<WorkerId, std::string> ended_ ABSL_GUARDED_BY(mu_);
  std::map<WorkerId, std::shared_ptr<PixelWindow>> windows_ ABSL_GUARDED_BY(mu_);
  uint64_t failed_workers_ ABSL_GUARDED_BY(mu_) = 0;
};

// "crashed: SIGSEGV in worker", "killed for a forbidden syscall: ...", ...
std::string DescribeWorkerEnd(const WorkerResult& result);

// JSON string literal of hostile bytes: printable ASCII kept, `"` `\` escaped, every
// other byte as \u00XX (so non-UTF-8 names stay visible and the output stays ASCII).
std::string JsonString(absl::string_view bytes);

}  // namespace vow::parsers

#endif  // VOW_EXAMPLES_PARSERS_PARSERS_H_
