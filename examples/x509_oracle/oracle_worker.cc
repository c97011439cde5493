#include "examples/x509_oracle/oracle_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/x509_oracle/protocol.h"
#include "examples/x509_oracle/verify.h"
#include "worker/client.h"

namespace vow::x509 {
namespace {

// Writes the length prefix and `payload` as one frame with writev (no copy of the
// payload, one wake-up of the front end when the socket takes it all at once).
bool WriteFrame(int fd, const std::string& payload) {
  char header[4];
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>((payload.size() >> (8 * i)) & 0xff);
  const size_t total = sizeof(header) + payload.size();
  size_t done = 0;
  while (done < total) {
    struct iovec iov[2];
    int n_iov = 0;
    if (done < sizeof(header)) {
      iov[n_iov++] = {header + done, sizeof(header) - done};
      iov[n_iov++] = {const_cast<char*>(payload.data()), payload.size()};
    } else {
      size_t off = done - sizeof(header);
      iov[n_iov++] = {const_cast<char*>(payload.data()) + off, payload.size() - off};
    }
    ssize_t n = writev(fd, iov, n_iov);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

// The binary verdict (protocol.h); the front end makes the JSON.
bool SendVerdict(const Verdict& v) {
  std::string bytes = EncodeVerdict(v);
  if (bytes.size() > kMaxVerdictBytes) {
    bytes = EncodeVerdict(ErrorVerdict(
        absl::StrCat("verdict of ", bytes.size(), " bytes exceeds ", kMaxVerdictBytes)));
  }
  return WriteFrame(1, bytes);
}

// Reads the trust store through the broker, at most kMaxFieldBytes + 1 bytes (Verify
// refuses anything above kMaxFieldBytes with a clear input_error).
std::optional<std::string> LoadBundle(Client& client, const std::string& path,
                                      std::string* error) {
  absl::StatusOr<UniqueFd> fd = client.Open(path, O_RDONLY);
  if (!fd.ok()) {
    *error = absl::StrCat("trust store ", path, ": ", fd.status().message());
    return std::nullopt;
  }
  std::string bytes;
  char buf[65536];
  while (bytes.size() <= kMaxFieldBytes) {
    ssize_t n = read(fd->get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = absl::StrCat("trust store ", path, ": read failed, errno ", errno);
      return std::nullopt;
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  if (bytes.empty()) {
    *error = absl::StrCat("trust store ", path, " is empty");
    return std::nullopt;
  }
  return bytes;
}

}  // namespace

int OracleWorkerMain(Client& client, const WorkerConfig& config) {
  // The system bundle, read and parsed once (after the first successful read), not per
  // job: parsing ~140 certificates costs OpenSSL 3.0 ~15 ms.
  std::unique_ptr<TrustAnchors> system_anchors;
  // One read(2) per job when the front end's sendmsg brought the whole frame.
  FrameReader frames(0, kMaxJobBytes);
  Job job;  // every job is decoded into it: its strings' storage is reused
  for (;;) {
    absl::string_view payload;
    uint32_t len = 0;
    switch (frames.Next(&payload, &len)) {
      case FrameReader::Result::kFrame:
        break;
      case FrameReader::Result::kEnd:
        return 0;  // EOF between frames: the front end is done with us
      case FrameReader::Result::kCut:
        return 1;
      case FrameReader::Result::kTooBig:
        (void)SendVerdict(ErrorVerdict(
            absl::StrCat("job frame of ", len, " bytes exceeds ", kMaxJobBytes)));
        return 1;
    }

    absl::Status decoded = DecodeJobInto(payload, &job);
    Verdict verdict;
    if (!decoded.ok()) {
      verdict = ErrorVerdict(absl::StrCat("bad request frame: ", decoded.message()));
    } else {
      std::string error;
      if (job.trust == TrustSource::kSystem && system_anchors == nullptr) {
        std::optional<std::string> bundle = LoadBundle(client, config.bundle_path, &error);
        if (bundle.has_value()) system_anchors = TrustAnchors::Parse(*bundle);
      }
      if (error.empty() && !job.has_time) {
        absl::StatusOr<absl::Time> now = client.Now();
        if (now.ok()) {
          job.request.time_unix = absl::ToUnixSeconds(*now);
        } else {
          error = absl::StrCat("clock: ", now.status().message());
        }
      }
      if (!error.empty()) {
        verdict = ErrorVerdict(error);
      } else if (job.trust == TrustSource::kSystem) {
        verdict = VerifyWithAnchors(job.request, *system_anchors);
      } else {
        verdict = Verify(job.request);
      }
    }
    if (config.garbage_hook_for_testing && decoded.ok() &&
        job.request.chain.find(kGarbageMagic) != std::string::npos) {
      if (!WriteFrame(1, kGarbageVerdictForTesting)) return 1;
    } else if (!SendVerdict(verdict)) {
      return 1;
    }
    // A large job's storage is not kept (nor is the frame buffer's).
    ShedLargeJob(&job, FrameReader::kKeep);
  }
}

}  // namespace vow::x509
