// Framing and limits of vow's messages. Both sides; the broker applies every limit here
// to hostile bytes, the worker to the broker's answers.
//
// A datagram is one Cap'n Proto message in flat-array form:
//   uint32 segment_count - 1
//   uint32 size_in_words[segment_count]
//   uint32 padding (present when segment_count is even, so the table ends on 8 bytes)
//   segment 0 .. segment_count-1 (each size_in_words * 8 bytes)
// and nothing else: CheckFraming() refuses trailing bytes, a short or over-long table,
// more than kMaxSegments segments, and anything over kMaxMessageBytes.
#ifndef VOW_IPC_MESSAGE_H_
#define VOW_IPC_MESSAGE_H_

#include <cstddef>
#include <cstdint>

#include "capnp/message.h"

namespace vow {

// The hard cap on one datagram, for both directions. The largest legitimate message is a
// seccomp program for an exec'd worker (BPF_MAXINSNS * 8 = 32 KiB) plus framing.
inline constexpr size_t kMaxMessageBytes = 64 * 1024;
inline constexpr size_t kMaxMessageWords = kMaxMessageBytes / sizeof(capnp::word);
// A legitimate sender produces one segment (see MessageArena); a few more are tolerated.
inline constexpr uint32_t kMaxSegments = 8;

// Reader limits for every message vow decodes. The traversal limit is the message size
// (a message may not be traversed more than about twice, which stops pointer-amplification
// loops); the nesting limit is far above the schema's depth (3) and far below the default.
capnp::ReaderOptions ReaderLimits();

// Validates the framing of `bytes` bytes at `data`. Returns 0 or -EBADMSG. No heap;
// async-signal-safe.
int CheckFraming(const void* data, size_t bytes);

// Storage for building one outgoing message without touching the heap: a zeroed first
// segment big enough for any message vow sends. Use with capnp::MallocMessageBuilder's
// (firstSegment) constructor; call Reset() before building the next message.
// Reset() zeroes only what the previous message used (MarkUsed), so a small request costs
// a small memset. Not thread-safe; one arena per thread of use. Async-signal-safe.
class MessageArena {
 public:
  // Constant-initialized: a static arena is zero in .bss, touched only when used (no
  // start-up memset of 64 KiB in every process that links the lock-down).
  constexpr MessageArena() : words_{} {}
  // An arena placed on memory that is zero already and that nothing has written: static
  // storage a forked worker constructs its Client on (broker/broker_fork_server.cc,
  // broker.cc). Skips zeroing the 64 KiB segment, which in a fresh worker is 16 page
  // faults and the memset (README "Spawn, round 4").
  struct OnZeroMemory {};
  explicit MessageArena(OnZeroMemory) {}
  kj::ArrayPtr<capnp::word> segment() { return kj::arrayPtr(words_, kMaxMessageWords); }
  // Zeroes the words the last message used; call before building the next message.
  void Reset();
  // Records how much of the segment `builder` (built on segment()) has used.
  void MarkUsed(capnp::MessageBuilder& builder);

 private:
  size_t dirty_words_ = 0;
  alignas(8) capnp::word words_[kMaxMessageWords];
};

}  // namespace vow

#endif  // VOW_IPC_MESSAGE_H_
