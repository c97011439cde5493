// The oracle's wire format between its front end (the broker) and a worker, and between
// a `serve` client and the front end. Both sides: the worker decodes jobs (hostile bytes:
// every length is bounded by what is left of the frame), the front end decodes verdicts
// (hostile too: a worker may be compromised).
//
// Every frame on a stream is a little-endian u32 length followed by that many bytes.
//
// A job (front end -> worker; also what a `serve` client sends), all integers
// little-endian:
//   u8   version, kJobVersion (2)
//   u8   flags: bit 0   the request names a time (time_unix below); else the worker
//                       asks the broker's clock (Client::Now())
//               bit 1   TrustSource::kSystem: the worker reads the system trust store
//                       through the broker (then `trusted` must be empty)
//               bit 2   subject_cn_fallback
//               bits 3-7 zero
//   u8   host kind: 0 auto, 1 DNS, 2 IP, 3 e-mail
//   u8   purpose: 0 none, else an X509_PURPOSE_* id (checked by the worker's Verify)
//   i32  max_depth (-1: OpenSSL's default)
//   i64  time_unix
//   5 x  (u32 length, bytes): chain, untrusted, trusted, crls, host
//   u32  number of required names (at most kMaxRequiredNames), then for each:
//        u8 kind (0 DNS, 1 IP, 2 e-mail), u32 length, bytes
//   nothing after the last name.
// Without the kSystem bit, an empty `trusted` is an empty trust store. A job payload is
// at most kMaxJobBytes; a `serve` client that announces more gets an error verdict and
// the connection is closed without reading the payload.
//
// A verdict from a worker to the front end (binary, version kVerdictVersion; the front
// end decodes it with DecodeVerdict and hands on VerdictToJson() of the result), all
// integers little-endian:
//   offset 0   u8   version, kVerdictVersion (1)
//          1   u8   flags: bit 0 valid, bit 1 validation_time present; bits 2-7 zero
//          2   i32  error_code (valid: must be 0)
//          6   i32  error_depth, -1..kMaxVerdictChainCerts
//         10   i64  validation_time: with bit 1, kMinTimeUnix..kMaxTimeUnix (what
//                   FormatRfc3339 formats); without it, 0
//         18   u32  number of chain entries, at most kMaxVerdictChainCerts
//         22   3 x  (u32 length, bytes): error_string, openssl version, input_error
//                   (valid: input_error must be empty)
//              then for each chain entry 5 x (u32 length, bytes): subject, issuer,
//                   not_before, not_after, sha256
//              nothing after the last entry.
// The whole payload is at most kMaxVerdictBytes, so every string is bounded by it (and
// by what is left of the payload). internal_error is not carried: only the front end sets
// it. There is exactly one encoding of each verdict (EncodeVerdict(DecodeVerdict(p)) == p
// for every p that decodes).
//
// A verdict from the front end to a `serve` client: VerdictToJson() of the verdict, at
// most kMaxVerdictBytes.
#ifndef VOW_EXAMPLES_X509_ORACLE_PROTOCOL_H_
#define VOW_EXAMPLES_X509_ORACLE_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "examples/x509_oracle/verify.h"

namespace vow::x509 {

inline constexpr uint8_t kJobVersion = 2;
inline constexpr uint8_t kVerdictVersion = 1;
// The chain OpenSSL builds has at most max_depth + 2 <= kMaxDepth + 2 certificates.
inline constexpr uint32_t kMaxVerdictChainCerts = 1024;
// version, flags, error_code, error_depth, validation_time, chain count.
inline constexpr size_t kVerdictHeaderBytes = 1 + 1 + 4 + 4 + 8 + 4;
inline constexpr uint32_t kMaxJobBytes = 64u << 20;
inline constexpr uint32_t kMaxVerdictBytes = 4u << 20;
// version, flags, host kind, purpose, depth, time, five lengths, the name count.
inline constexpr size_t kJobHeaderBytes = 1 + 1 + 1 + 1 + 4 + 8 + 5 * 4 + 4;

// Where the worker's trust anchors come from.
enum class TrustSource {
  kRequest,  // request.trusted, possibly empty (= nothing is trusted)
  kSystem,   // the system bundle, opened by the worker through the broker
};

struct Job {
  VerifyRequest request;
  // False: the request names no time; request.time_unix is to be taken from the clock.
  bool has_time = false;
  TrustSource trust = TrustSource::kRequest;
};

// The job payload (without the frame's length prefix). Fields longer than 4 GiB - 1 are
// not representable; the caller keeps the total under kMaxJobBytes (EncodeJob does not
// check; the receiver does).
std::string EncodeJob(const VerifyRequest& request, bool has_time,
                      TrustSource trust = TrustSource::kRequest);

// Decodes a job payload. Hostile input: InvalidArgument for anything malformed.
absl::StatusOr<Job> DecodeJob(absl::string_view payload);
// The same into *job, whose five strings keep their storage (the worker decodes every job
// into one Job: once its strings have grown, a job costs no allocation). Every field of
// *job is set, from its default where the payload does not say; after an error *job
// holds a partial job.
absl::Status DecodeJobInto(absl::string_view payload, Job* job);
// Gives back the storage of *job's strings (*job becomes Job{}) when together it is above
// `keep_bytes`: a worker that decoded one large job does not hold its size for life.
void ShedLargeJob(Job* job, size_t keep_bytes);

// `payload` with its u32 length prefix.
std::string Frame(absl::string_view payload);

// The binary verdict (format above) of `v`, whose internal_error is not carried. A
// verdict whose chain has more than kMaxVerdictChainCerts entries, or whose time or depth
// lies outside the ranges above, is encoded as given and refused by DecodeVerdict (Verify
// never makes one). The caller bounds the size (the worker sends an input_error verdict
// instead of one above kMaxVerdictBytes).
std::string EncodeVerdict(const Verdict& v);

// Decodes a binary verdict from a worker. Hostile input: InvalidArgument naming the
// field and its offset for anything malformed (cut short, a length beyond the payload, a
// value out of range, unknown flags, bytes after the end); never reads out of bounds.
absl::StatusOr<Verdict> DecodeVerdict(absl::string_view payload);

// The JSON the front end hands on for a decoded verdict: VerdictToJson(*v), unless that
// is above kMaxVerdictBytes (JSON escaping can make a verdict up to 6x its binary size;
// clients read at most kMaxVerdictBytes): then *v becomes an input_error verdict saying
// so, and its JSON is returned.
std::string BoundedVerdictJson(Verdict* v);

// The verdict back from its JSON (strict: every field of VerdictToJson, right types).
absl::StatusOr<Verdict> VerdictFromJson(absl::string_view json);

// An error verdict: valid false, input_error `what` (the request was unusable).
Verdict ErrorVerdict(absl::string_view what);
// valid false, internal_error `what` (the oracle failed: a worker crashed, timed out...).
Verdict InternalErrorVerdict(absl::string_view what);

// ---- Stream I/O with deadlines, for the front end and `serve` clients (uses poll,
// recv/send with MSG_DONTWAIT and MSG_NOSIGNAL: `fd` must be a socket; its blocking mode
// does not matter and is not changed). ----

// Writes all of `data`. DeadlineExceeded, or the errno status (EPIPE: the peer is gone).
absl::Status SendAll(int fd, absl::string_view data, absl::Time deadline);

// Writes Frame(payload) without building it: the length prefix and the payload go in one
// sendmsg (two iovecs) when the socket takes them, so the peer is woken once per frame,
// not once for the prefix and again for the payload. Errors as SendAll.
absl::Status SendFrame(int fd, absl::string_view payload, absl::Time deadline);

// Reads one frame of at most `max_bytes` into *payload.
//  - OutOfRange: clean EOF before the first byte of the frame;
//  - DataLoss: EOF inside the frame;
//  - ResourceExhausted: the announced length is above `max_bytes` (nothing of the
//    payload has been read; *announced holds the length if not null);
//  - DeadlineExceeded, or an errno status.
absl::Status RecvFrame(int fd, uint32_t max_bytes, absl::Time deadline, std::string* payload,
                       uint32_t* announced = nullptr);

// Reads the one frame a peer sends in answer to a request (the front end's side of a
// worker exchange, after the job went out: a worker writes nothing unasked). Waits first
// (the answer is seldom there right after the request), then takes in what has arrived,
// up to kSoleFrameChunk bytes per recv: a frame that arrived whole costs one poll and one
// recv (RecvFrame: a recv finding nothing, a poll, a recv for the length prefix and one
// for the payload). Errors as RecvFrame, plus InvalidArgument when bytes beyond the frame
// arrived with it (the peer wrote more than its answer).
inline constexpr size_t kSoleFrameChunk = 16384;
absl::Status RecvSoleFrame(int fd, uint32_t max_bytes, absl::Time deadline,
                           std::string* payload);

// The worker's side: frames from a blocking fd (its fd 0), read with as few read(2)s as
// the bytes arrive in (one when the front end's sendmsg brought the whole frame; a
// length prefix and a payload read apart cost two). Bytes after a frame are kept for the
// next one. Not thread-safe.
class FrameReader {
 public:
  enum class Result {
    kFrame,   // *payload is the frame's payload (valid until the next call)
    kEnd,     // EOF (or a read error) before the first byte of a frame
    kCut,     // EOF (or a read error) inside a frame
    kTooBig,  // the announced length (*announced) is above max_bytes; nothing of the
              // payload was read, and the stream is no longer in step
  };
  FrameReader(int fd, uint32_t max_bytes) : fd_(fd), max_bytes_(max_bytes) {}
  Result Next(absl::string_view* payload, uint32_t* announced);
  // The buffer's capacity now (for tests).
  size_t buffer_capacity() const { return buf_.capacity(); }

  // The buffer starts at kChunk bytes and grows to the largest frame; a buffer grown
  // beyond kKeep is given back before the next frame.
  static constexpr size_t kChunk = 65536;
  static constexpr size_t kKeep = 1u << 20;

 private:
  // One read(2) into the free end of the buffer; false at EOF or on an error.
  bool Fill();

  const int fd_;
  const uint32_t max_bytes_;
  std::string buf_;
  size_t begin_ = 0;  // the first byte not yet handed out
  size_t end_ = 0;    // the end of what was read
};

// A client's round trip: sends Frame(job_payload) and reads one verdict frame. If the
// send fails, a verdict the server sent before hanging up (a "server busy" refusal) is
// still returned.
absl::StatusOr<std::string> RoundTrip(int fd, absl::string_view job_payload,
                                      absl::Time deadline);

}  // namespace vow::x509

#endif  // VOW_EXAMPLES_X509_ORACLE_PROTOCOL_H_
