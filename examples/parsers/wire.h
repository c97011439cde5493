// The parsers' wire format between the caller (trusted: the broker's process) and its
// workers (locked), on the worker's data socket (a SOCK_STREAM socketpair). Both sides;
// whatever a side reads is hostile to it, so every read is bounded by what is left.
//
// A frame is a little-endian u32 length followed by that many bytes. Inside a frame,
// integers are little-endian; a "string" is a u32 length and its bytes.
//
// Jobs (caller -> worker), first byte the kind:
//   kImage: u64 max_pixels, u8 flags (kKeepPixels, kWritePng, kPixelsInWindow), string
//           out_path (empty unless kWritePng), then the image bytes (the rest of the frame)
//   kFont:  u32 pixel_size, u64 max_pixels, string text (UTF-8), then the font bytes
//   kCrash: test only; honoured only by a worker started with crash_for_testing
//   kHostile: test only (hostile_for_testing): u8 mode, then an image job; the worker
//           misbehaves with its pixel window (see worker.h)
// A job frame may carry one fd (SCM_RIGHTS on its first byte): the caller's pixel window
// for this worker, a memfd the caller sized and sealed against shrinking and growing.
// The worker maps it (shared, writable) and keeps it for later jobs.
// Answers (worker -> caller), first byte kOk or kRejected:
//   image kOk:  u8 format, u32 width, height, channels, bit_depth, frames,
//               u32 n + n strings (warnings), u8 where (kInline, kInWindow),
//               u32 npixels (bytes of RGBA, or 0), then npixels bytes if kInline (only
//               with kPixelsInWindow may `where` be kInWindow: the pixels are then the
//               window's first npixels bytes)
//   font kOk:   string family, string style, u32 width, height, u32 n + n glyphs
//               (u32 codepoint, glyph_index; i32 advance, bearing_x, bearing_y;
//               u32 width, height), string pixels (8-bit gray, width * height)
//   kRejected:  u8 code (kInvalid or kLimit), string message
#ifndef VOW_EXAMPLES_PARSERS_WIRE_H_
#define VOW_EXAMPLES_PARSERS_WIRE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace vow::parsers::wire {

enum Kind : uint8_t { kImage = 1, kFont = 2, kHostile = 0xED, kCrash = 0xEE };
enum Flags : uint8_t { kKeepPixels = 1, kWritePng = 2, kPixelsInWindow = 4 };
enum Where : uint8_t { kInline = 0, kInWindow = 1 };
enum Answer : uint8_t { kOk = 0, kRejected = 1 };
enum Code : uint8_t { kInvalid = 0, kLimit = 1 };

inline constexpr size_t kMaxStringBytes = 1 << 20;

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void Str(absl::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  void Raw(absl::string_view s) { out_.append(s.data(), s.size()); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// Reads from a hostile buffer: every call fails (returns false) instead of reading past
// the end, and the reader stays failed.
class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  bool U8(uint8_t* v);
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  // A string of at most `max` bytes (a view into the buffer).
  bool Str(absl::string_view* s, size_t max = kMaxStringBytes);
  absl::string_view Rest() {
    absl::string_view r = in_;
    in_ = {};
    return r;
  }
  bool ok() const { return ok_; }
  size_t left() const { return in_.size(); }

 private:
  bool Take(size_t n, absl::string_view* out);
  absl::string_view in_;
  bool ok_ = true;
};

// ---- Caller side: poll() with a deadline; `fd` is a socket (send/recv with
// MSG_DONTWAIT | MSG_NOSIGNAL; its blocking mode is not changed). ----

// DeadlineExceeded, or the errno status (EPIPE: the worker is gone). `pass_fd` >= 0 is
// sent with the frame's first byte (SCM_RIGHTS); the caller keeps its own copy.
absl::Status SendFrame(int fd, absl::string_view payload, absl::Time deadline,
                       int pass_fd = -1);
// One frame of at most `max_bytes`. OutOfRange: EOF before the frame (the worker hung up);
// DataLoss: EOF inside it; ResourceExhausted: announced length above the maximum.
absl::Status RecvFrame(int fd, size_t max_bytes, absl::Time deadline, std::string* payload);

// ---- Worker side: blocking. ----
// False on EOF or error, or a frame above `max_bytes`. *eof says whether it was a clean
// EOF before the frame.
// With `received` non-null, an fd sent with the frame (SCM_RIGHTS, close-on-exec) is
// stored there (any further fds are closed); otherwise fds are not accepted.
bool ReadFrameBlocking(int fd, size_t max_bytes, std::string* payload, bool* eof,
                       UniqueFd* received = nullptr);
bool WriteFrameBlocking(int fd, absl::string_view payload);

}  // namespace vow::parsers::wire

#endif  // VOW_EXAMPLES_PARSERS_WIRE_H_
