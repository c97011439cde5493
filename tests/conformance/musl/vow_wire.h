/* The exec'd worker's side of vow's wire format (ipc/protocol.capnp), encoded and decoded
 * by hand in portable C, for workers that cannot link the C++ Cap'n Proto runtime (the
 * static musl conformance worker). Runs in the worker, before and after lock-down.
 *
 * Only what an exec'd worker sends or reads is covered:
 *   sends  Request{getFilter}, Request{hello}, Request{violation}
 *   reads  Response{filter | hello | error | time | fd}
 * Framing (ipc/message.h): one Cap'n Proto message in flat-array form per datagram:
 *   uint32 segment_count-1, uint32 size_in_words[segment_count], padding to 8 bytes,
 *   then the segments. The encoders emit one segment; the decoder accepts 1..8 segments,
 *   near and far pointers, and checks every offset and length against the segment it
 *   lands in. The broker is trusted more than the worker, but a decoder that reads out of
 *   bounds is a bug whoever sent the bytes.
 *
 * Struct layouts (from `capnp compile -ocapnp ipc/protocol.capnp`):
 *   Request   16 bytes data, 1 ptr: id u64 @0; union tag u16 @bits[64,80):
 *             hello=0 open=1 connect=2 clock=3 violation=4 getFilter=5; ptr[0] payload
 *   Hello      8 bytes, 0 ptrs: version u32 @[0,32), listenerAttached bit 32
 *   Violation  8 bytes, 1 ptr: syscall i32 @[0,32), arch u32 @[32,64); ptr[0] List(UInt64)
 *   Response  16 bytes, 1 ptr: id u64; tag u16 @[64,80): hello=0 fd=1 error=2 time=3
 *             filter=4; ptr[0] payload
 *   HelloReply 8 bytes: version u32 @[0,32)
 *   Error      8 bytes, 1 ptr: errno i32 @[0,32); ptr[0] reason Text
 *   Time      16 bytes: seconds i64 @[0,64), nanos u32 @[64,96)
 *   Filter    24 bytes, 1 ptr: needsListener bit 0, trapReporter bit 1, maxOpenFds u32
 *             @[32,64), cpuSeconds u32 @[64,96), memoryBytes u64 @[128,192); ptr[0] program
 *
 * No heap, no syscalls: every function is async-signal-safe (the SIGSYS reporter encodes
 * a violation from its handler). */
#ifndef VOW_TESTS_CONFORMANCE_MUSL_VOW_WIRE_H_
#define VOW_TESTS_CONFORMANCE_MUSL_VOW_WIRE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VOW_WIRE_PROTOCOL_VERSION 1u
#define VOW_WIRE_MAX_BYTES 65536u /* kMaxMessageBytes */
#define VOW_WIRE_MAX_SEGMENTS 8u  /* kMaxSegments */

/* Encoders: write one framed message into `buf` (8-byte aligned, `cap` bytes). Return
 * the message length in bytes, or -1 if `cap` is too small. */
long vow_wire_encode_get_filter(void *buf, size_t cap, uint64_t id);
long vow_wire_encode_hello(void *buf, size_t cap, uint64_t id, uint32_t version,
                           int listener_attached);
long vow_wire_encode_violation(void *buf, size_t cap, uint64_t id, int32_t nr,
                               uint32_t arch, const uint64_t args[6]);

enum vow_wire_response_kind {
  VOW_RESPONSE_HELLO = 0,
  VOW_RESPONSE_FD = 1,
  VOW_RESPONSE_ERROR = 2,
  VOW_RESPONSE_TIME = 3,
  VOW_RESPONSE_FILTER = 4,
};

struct vow_wire_response {
  uint64_t id;
  int kind; /* enum vow_wire_response_kind */
  /* hello */
  uint32_t hello_version;
  /* error */
  int32_t error_errno;
  const uint8_t *error_reason; /* points into the decoded buffer; not NUL-terminated */
  size_t error_reason_len;
  /* time */
  int64_t seconds;
  uint32_t nanos;
  /* filter */
  const uint8_t *program; /* points into the decoded buffer */
  size_t program_len;     /* bytes */
  int needs_listener;
  int trap_reporter;
  uint32_t max_open_fds;
  uint32_t cpu_seconds;
  uint64_t memory_bytes;
};

/* Decodes one framed Response of `len` bytes at `buf` (8-byte aligned). Returns 0, or
 * -1 for anything malformed: bad framing, a pointer out of its segment, a pointer of the
 * wrong kind, an unknown union tag. Absent fields read as their defaults (0). */
int vow_wire_decode_response(const void *buf, size_t len, struct vow_wire_response *out);

#ifdef __cplusplus
}
#endif

#endif /* VOW_TESTS_CONFORMANCE_MUSL_VOW_WIRE_H_ */
