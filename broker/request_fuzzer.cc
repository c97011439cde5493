// libFuzzer target for DecodeRequest(): every datagram a worker can send reaches it.
// Build and run: see README.md (Fuzzing). Must never crash, leak, or trip a sanitizer.
#include <cstdint>
#include <cstring>
#include <memory>

#include "broker/request.h"
#include "ipc/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > vow::kMaxMessageBytes) return 0;  // Receive() refuses these before decoding
  // The broker decodes from an 8-byte aligned buffer; copy so the fuzzer's own buffer
  // alignment does not matter.
  std::unique_ptr<capnp::word[]> buffer(new capnp::word[size / 8 + 1]);
  memcpy(static_cast<void*>(buffer.get()), data, size);
  auto decoded = vow::DecodeRequest(buffer.get(), size);
  if (decoded.ok()) {
    // Touch what the broker will use.
    volatile size_t sink = decoded->path.size() + decoded->target.address.size() +
                           decoded->target.unix_path.size();
    (void)sink;
  }
  return 0;
}
