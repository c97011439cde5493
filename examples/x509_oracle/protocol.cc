#include "examples/x509_oracle/protocol.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/syscall.h"
#include "examples/x509_oracle/json.h"

namespace vow::x509 {
namespace {

void PutU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// A cursor over a hostile payload: every read is checked against what is left.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool U8(uint8_t* v) {
    if (data_.size() < 1) return false;
    *v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool I64(int64_t* v) {
    if (data_.size() < 8) return false;
    uint64_t u = 0;
    for (int i = 7; i >= 0; --i) u = (u << 8) | static_cast<uint8_t>(data_[i]);
    *v = static_cast<int64_t>(u);
    data_.remove_prefix(8);
    return true;
  }
  // A u32 length, then that many bytes (bounded by what is left).
  bool Bytes(std::string* out) {
    if (data_.size() < 4) return false;
    uint32_t len = GetU32(data_.data());
    data_.remove_prefix(4);
    if (len > data_.size()) return false;
    out->assign(data_.data(), len);
    data_.remove_prefix(len);
    return true;
  }
  size_t left() const { return data_.size(); }

 private:
  absl::string_view data_;
};

// Waits until `fd` is ready for `events` or the deadline passes.
absl::Status WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("timed out");
    int ms = left >= absl::Milliseconds(INT32_MAX)
                 ? INT32_MAX
                 : static_cast<int>(absl::ToInt64Milliseconds(left + absl::Microseconds(999)));
    struct pollfd p = {fd, events, 0};
    int rc = poll(&p, 1, ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "poll");
    }
    if (rc > 0) return absl::OkStatus();  // readable, writable, or an error/hangup to read
  }
}

// Reads exactly `len` bytes. `*got` counts what arrived (to tell clean EOF from a cut).
absl::Status RecvExact(int fd, char* buf, size_t len, absl::Time deadline, size_t* got) {
  *got = 0;
  while (*got < len) {
    ssize_t n = recv(fd, buf + *got, len - *got, MSG_DONTWAIT);
    if (n > 0) {
      *got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return absl::DataLossError("end of stream");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, "recv");
    absl::Status s = WaitFor(fd, POLLIN, deadline);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeJob(const VerifyRequest& request, bool has_time) {
  std::string out;
  out.reserve(kJobHeaderBytes + request.chain.size() + request.untrusted.size() +
              request.trusted.size() + request.host.size());
  out.push_back(static_cast<char>(kJobVersion));
  uint8_t flags = 0;
  if (has_time) flags |= 1;
  if (request.kind == VerifyRequest::Kind::kClient) flags |= 2;
  switch (request.host_kind) {
    case VerifyRequest::HostKind::kAuto: break;
    case VerifyRequest::HostKind::kDns: flags |= 1 << 2; break;
    case VerifyRequest::HostKind::kIp: flags |= 2 << 2; break;
  }
  out.push_back(static_cast<char>(flags));
  uint64_t t = static_cast<uint64_t>(has_time ? request.time_unix : 0);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((t >> (8 * i)) & 0xff));
  for (const std::string* field :
       {&request.chain, &request.untrusted, &request.trusted, &request.host}) {
    PutU32(static_cast<uint32_t>(field->size()), &out);
    out.append(*field);
  }
  return out;
}

absl::StatusOr<Job> DecodeJob(absl::string_view payload) {
  if (payload.size() > kMaxJobBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("job of ", payload.size(), " bytes exceeds ", kMaxJobBytes));
  }
  Reader r(payload);
  uint8_t version = 0, flags = 0;
  Job job;
  if (!r.U8(&version) || !r.U8(&flags) || !r.I64(&job.request.time_unix)) {
    return absl::InvalidArgumentError("job header cut short");
  }
  if (version != kJobVersion) {
    return absl::InvalidArgumentError(absl::StrCat("job version ", version, " (want ",
                                                   kJobVersion, ")"));
  }
  if ((flags & 0xf0) != 0) return absl::InvalidArgumentError("unknown job flags");
  job.has_time = (flags & 1) != 0;
  if (!job.has_time) job.request.time_unix = 0;
  job.request.kind = (flags & 2) != 0 ? VerifyRequest::Kind::kClient : VerifyRequest::Kind::kServer;
  switch ((flags >> 2) & 3) {
    case 0: job.request.host_kind = VerifyRequest::HostKind::kAuto; break;
    case 1: job.request.host_kind = VerifyRequest::HostKind::kDns; break;
    case 2: job.request.host_kind = VerifyRequest::HostKind::kIp; break;
    default: return absl::InvalidArgumentError("bad host kind");
  }
  const char* names[] = {"chain", "untrusted", "trusted", "host"};
  std::string* fields[] = {&job.request.chain, &job.request.untrusted, &job.request.trusted,
                           &job.request.host};
  for (int i = 0; i < 4; ++i) {
    if (!r.Bytes(fields[i])) {
      return absl::InvalidArgumentError(absl::StrCat("job field ", names[i], " cut short"));
    }
  }
  if (r.left() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(r.left(), " bytes after the job"));
  }
  return job;
}

std::string Frame(absl::string_view payload) {
  std::string out;
  out.reserve(4 + payload.size());
  PutU32(static_cast<uint32_t>(payload.size()), &out);
  out.append(payload.data(), payload.size());
  return out;
}

absl::StatusOr<Verdict> VerdictFromJson(absl::string_view json) {
  absl::StatusOr<JsonValue> value = ParseJson(json);
  if (!value.ok()) return value.status();
  if (!value->is_object()) return absl::InvalidArgumentError("verdict is not an object");
  if (value->object().size() != 6) {
    return absl::InvalidArgumentError("verdict must have exactly 6 members");
  }
  Verdict v;
  const JsonValue* valid = value->Find("valid");
  const JsonValue* code = value->Find("error_code");
  const JsonValue* string = value->Find("error_string");
  const JsonValue* depth = value->Find("error_depth");
  const JsonValue* chain = value->Find("chain");
  const JsonValue* input_error = value->Find("input_error");
  int64_t code_value = 0, depth_value = 0;
  if (valid == nullptr || !valid->is_bool() || code == nullptr || !code->AsInt64(&code_value) ||
      string == nullptr || !string->is_string() || depth == nullptr ||
      !depth->AsInt64(&depth_value) || chain == nullptr || !chain->is_array() ||
      input_error == nullptr || !input_error->is_string() || code_value < INT32_MIN ||
      code_value > INT32_MAX || depth_value < INT32_MIN || depth_value > INT32_MAX) {
    return absl::InvalidArgumentError("verdict members missing or of the wrong type");
  }
  v.valid = valid->bool_value();
  v.error_code = static_cast<int>(code_value);
  v.error_string = string->string_value();
  v.error_depth = static_cast<int>(depth_value);
  for (const JsonValue& s : chain->array()) {
    if (!s.is_string()) return absl::InvalidArgumentError("chain entry is not a string");
    v.chain_subjects.push_back(s.string_value());
  }
  v.input_error = input_error->string_value();
  return v;
}

Verdict ErrorVerdict(absl::string_view what) {
  Verdict v;
  v.valid = false;
  v.input_error = std::string(what);
  return v;
}

absl::Status SendAll(int fd, absl::string_view data, absl::Time deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, "send");
    absl::Status s = WaitFor(fd, POLLOUT, deadline);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status RecvFrame(int fd, uint32_t max_bytes, absl::Time deadline, std::string* payload,
                       uint32_t* announced) {
  char header[4];
  size_t got = 0;
  absl::Status s = RecvExact(fd, header, 4, deadline, &got);
  if (!s.ok()) {
    if (got == 0 && absl::IsDataLoss(s)) return absl::OutOfRangeError("end of stream");
    return s;
  }
  uint32_t len = GetU32(header);
  if (announced != nullptr) *announced = len;
  if (len > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("frame of ", len, " bytes exceeds the limit of ", max_bytes));
  }
  payload->resize(len);
  s = RecvExact(fd, payload->data(), len, deadline, &got);
  if (!s.ok()) {
    payload->clear();
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RoundTrip(int fd, absl::string_view job_payload,
                                      absl::Time deadline) {
  absl::Status s = SendAll(fd, Frame(job_payload), deadline);
  if (!s.ok()) return s;
  std::string verdict;
  s = RecvFrame(fd, kMaxVerdictBytes, deadline, &verdict);
  if (!s.ok()) return s;
  return verdict;
}

}  // namespace vow::x509
