#include "ipc/message.h"

#include <errno.h>
#include <string.h>

#include <atomic>

namespace vow {

capnp::ReaderOptions ReaderLimits() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 2 * kMaxMessageWords;
  options.nestingLimit = 16;
  return options;
}

int CheckFraming(const void* data, size_t bytes) {
  if (bytes < 8 || bytes > kMaxMessageBytes || bytes % 8 != 0) return -EBADMSG;
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) return -EBADMSG;
  const uint32_t* table = static_cast<const uint32_t*>(data);
  uint32_t count = table[0] + 1;  // wraps to 0 for 0xffffffff: refused below
  if (count == 0 || count > kMaxSegments) return -EBADMSG;
  size_t table_words = (count + 2) / 2;  // (1 + count) uint32s, rounded up to words
  if (table_words * 8 > bytes) return -EBADMSG;
  uint64_t total_words = table_words;
  for (uint32_t i = 0; i < count; ++i) total_words += table[1 + i];
  if (total_words * 8 != bytes) return -EBADMSG;
  // The padding word must be zero: no hidden bytes in a message.
  if (count % 2 == 0 && table[1 + count] != 0) return -EBADMSG;
  return 0;
}

void MessageArena::Reset() {
  memset(words_, 0, dirty_words_ * sizeof(capnp::word));
  // Pessimistic until MarkUsed(): a copy of this arena made while a message is being
  // built on it (a fork by another thread while the broker's exec child, which shares
  // this memory, builds its hello) then zeroes all of it on its own Reset(), instead of
  // keeping a half-built message that capnp refuses ("First segment must be zeroed").
  dirty_words_ = kMaxMessageWords;
  std::atomic_thread_fence(std::memory_order_seq_cst);  // before the builder's stores
}

void MessageArena::MarkUsed(capnp::MessageBuilder& builder) {
  size_t used = kMaxMessageWords;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
    auto segments = builder.getSegmentsForOutput();
    if (segments.size() == 1 && segments[0].begin() == words_) used = segments[0].size();
  })) {
    (void)e;
  }
  dirty_words_ = used;  // Reset() zeroed everything before; the builder wrote `used`
}

}  // namespace vow
