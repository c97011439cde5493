#include "examples/x509_oracle/protocol.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/syscall.h"
#include "examples/x509_oracle/json.h"

namespace vow::x509 {
namespace {

void PutU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutI32(int32_t v, std::string* out) { PutU32(static_cast<uint32_t>(v), out); }

void PutI64(int64_t v, std::string* out) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

void PutString(const std::string& s, std::string* out) {
  PutU32(static_cast<uint32_t>(s.size()), out);
  out->append(s);
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
  bool U32(uint32_t* v) {
    if (data_.size() < 4) return false;
    *v = GetU32(data_.data());
    data_.remove_prefix(4);
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

std::string EncodeJob(const VerifyRequest& request, bool has_time, TrustSource trust) {
  std::string out;
  out.reserve(kJobHeaderBytes + request.chain.size() + request.untrusted.size() +
              request.trusted.size() + request.crls.size() + request.host.size());
  out.push_back(static_cast<char>(kJobVersion));
  uint8_t flags = 0;
  if (has_time) flags |= 1;
  if (trust == TrustSource::kSystem) flags |= 2;
  if (request.subject_cn_fallback) flags |= 4;
  out.push_back(static_cast<char>(flags));
  uint8_t host_kind = 0;
  switch (request.host_kind) {
    case VerifyRequest::HostKind::kAuto: host_kind = 0; break;
    case VerifyRequest::HostKind::kDns: host_kind = 1; break;
    case VerifyRequest::HostKind::kIp: host_kind = 2; break;
    case VerifyRequest::HostKind::kEmail: host_kind = 3; break;
  }
  out.push_back(static_cast<char>(host_kind));
  out.push_back(static_cast<char>(static_cast<uint8_t>(request.purpose)));
  PutU32(static_cast<uint32_t>(request.max_depth), &out);
  PutI64(has_time ? request.time_unix : 0, &out);
  for (const std::string* field : {&request.chain, &request.untrusted, &request.trusted,
                                   &request.crls, &request.host}) {
    PutString(*field, &out);
  }
  PutU32(static_cast<uint32_t>(request.required_names.size()), &out);
  for (const PeerName& name : request.required_names) {
    uint8_t kind = name.kind == PeerName::Kind::kDns ? 0 : name.kind == PeerName::Kind::kIp ? 1 : 2;
    out.push_back(static_cast<char>(kind));
    PutString(name.value, &out);
  }
  return out;
}

absl::StatusOr<Job> DecodeJob(absl::string_view payload) {
  Job job;
  absl::Status s = DecodeJobInto(payload, &job);
  if (!s.ok()) return s;
  return job;
}

absl::Status DecodeJobInto(absl::string_view payload, Job* out) {
  if (payload.size() > kMaxJobBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("job of ", payload.size(), " bytes exceeds ", kMaxJobBytes));
  }
  // Every field from its default, the five strings keeping their storage.
  {
    VerifyRequest& q = out->request;
    std::string keep[] = {std::move(q.chain), std::move(q.untrusted), std::move(q.trusted),
                          std::move(q.crls), std::move(q.host)};
    *out = Job{};
    std::string* fields[] = {&q.chain, &q.untrusted, &q.trusted, &q.crls, &q.host};
    for (int i = 0; i < 5; ++i) *fields[i] = std::move(keep[i]);  // each is assigned below
  }
  Job& job = *out;
  Reader r(payload);
  uint8_t version = 0, flags = 0, host_kind = 0, purpose = 0;
  uint32_t depth = 0;
  if (!r.U8(&version)) return absl::InvalidArgumentError("job header cut short");
  if (version != kJobVersion) {
    return absl::InvalidArgumentError(absl::StrCat("job version ", version, " (want ",
                                                   kJobVersion, ")"));
  }
  if (!r.U8(&flags) || !r.U8(&host_kind) || !r.U8(&purpose) || !r.U32(&depth) ||
      !r.I64(&job.request.time_unix)) {
    return absl::InvalidArgumentError("job header cut short");
  }
  if ((flags & 0xf8) != 0) return absl::InvalidArgumentError("unknown job flags");
  job.has_time = (flags & 1) != 0;
  if (!job.has_time) job.request.time_unix = 0;
  job.trust = (flags & 2) != 0 ? TrustSource::kSystem : TrustSource::kRequest;
  job.request.subject_cn_fallback = (flags & 4) != 0;
  switch (host_kind) {
    case 0: job.request.host_kind = VerifyRequest::HostKind::kAuto; break;
    case 1: job.request.host_kind = VerifyRequest::HostKind::kDns; break;
    case 2: job.request.host_kind = VerifyRequest::HostKind::kIp; break;
    case 3: job.request.host_kind = VerifyRequest::HostKind::kEmail; break;
    default: return absl::InvalidArgumentError(absl::StrCat("bad host kind ", host_kind));
  }
  job.request.purpose = purpose;
  job.request.max_depth = static_cast<int32_t>(depth);
  const char* names[] = {"chain", "untrusted", "trusted", "crls", "host"};
  std::string* fields[] = {&job.request.chain, &job.request.untrusted, &job.request.trusted,
                           &job.request.crls, &job.request.host};
  for (int i = 0; i < 5; ++i) {
    if (!r.Bytes(fields[i])) {
      return absl::InvalidArgumentError(absl::StrCat("job field ", names[i], " cut short"));
    }
  }
  if (job.trust == TrustSource::kSystem && !job.request.trusted.empty()) {
    return absl::InvalidArgumentError("job asks for the system trust store and names anchors");
  }
  uint32_t count = 0;
  if (!r.U32(&count)) return absl::InvalidArgumentError("job name count cut short");
  if (count > kMaxRequiredNames) {
    return absl::InvalidArgumentError(
        absl::StrCat("job has ", count, " required names (at most ", kMaxRequiredNames, ")"));
  }
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t kind = 0;
    PeerName name;
    if (!r.U8(&kind) || !r.Bytes(&name.value)) {
      return absl::InvalidArgumentError(absl::StrCat("required name #", i + 1, " cut short"));
    }
    switch (kind) {
      case 0: name.kind = PeerName::Kind::kDns; break;
      case 1: name.kind = PeerName::Kind::kIp; break;
      case 2: name.kind = PeerName::Kind::kEmail; break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("required name #", i + 1, " has kind ", kind));
    }
    job.request.required_names.push_back(std::move(name));
  }
  if (r.left() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(r.left(), " bytes after the job"));
  }
  return absl::OkStatus();
}

void ShedLargeJob(Job* job, size_t keep_bytes) {
  VerifyRequest& q = job->request;
  std::string* fields[] = {&q.chain, &q.untrusted, &q.trusted, &q.crls, &q.host};
  size_t held = 0;
  for (std::string* f : fields) held += f->capacity();
  if (held <= keep_bytes) return;
  // swap, not assignment: moving an empty (short) string into one keeps its storage.
  for (std::string* f : fields) std::string().swap(*f);
  *job = Job{};
}

std::string Frame(absl::string_view payload) {
  std::string out;
  out.reserve(4 + payload.size());
  PutU32(static_cast<uint32_t>(payload.size()), &out);
  out.append(payload.data(), payload.size());
  return out;
}

namespace {

// A cursor over a hostile verdict that knows its offset, so that every error names the
// field and where it starts. `entry` >= 0 names a member of chain[entry].
class VerdictReader {
 public:
  explicit VerdictReader(absl::string_view data) : data_(data) {}
  size_t offset() const { return pos_; }
  size_t left() const { return data_.size() - pos_; }

  absl::Status Fixed(const char* field, size_t n, uint64_t* v) {
    if (left() < n) return CutShort(field, -1, n);
    uint64_t u = 0;
    for (size_t i = n; i-- > 0;) u = (u << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += n;
    *v = u;
    return absl::OkStatus();
  }

  // A u32 length, then that many bytes, which must all lie inside the payload.
  absl::Status String(const char* field, int entry, std::string* out) {
    if (left() < 4) return CutShort(field, entry, 4);
    const size_t at = pos_;
    uint64_t len = 0;
    (void)Fixed(field, 4, &len);
    if (len > left()) {
      return Bad(field, entry, at,
                 absl::StrCat("length ", len, " exceeds the ", left(), " bytes left"));
    }
    out->assign(data_.data() + pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return absl::OkStatus();
  }

  static absl::Status Bad(const char* field, int entry, size_t at, absl::string_view what) {
    std::string name = entry < 0 ? std::string(field) : absl::StrCat("chain[", entry, "].", field);
    return absl::InvalidArgumentError(
        absl::StrCat("verdict field ", name, " at offset ", at, ": ", what));
  }

 private:
  absl::Status CutShort(const char* field, int entry, size_t n) const {
    return Bad(field, entry, pos_,
               absl::StrCat("cut short (needs ", n, " bytes, ", left(), " left)"));
  }

  absl::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

std::string EncodeVerdict(const Verdict& v) {
  size_t size = kVerdictHeaderBytes + 3 * 4 + v.error_string.size() +
                v.openssl_version.size() + v.input_error.size();
  for (const CertInfo& c : v.chain) {
    size += 5 * 4 + c.subject.size() + c.issuer.size() + c.not_before.size() +
            c.not_after.size() + c.sha256.size();
  }
  std::string out;
  out.reserve(size);
  out.push_back(static_cast<char>(kVerdictVersion));
  uint8_t flags = 0;
  if (v.valid) flags |= 1;
  if (v.validation_time.has_value()) flags |= 2;
  out.push_back(static_cast<char>(flags));
  PutI32(v.error_code, &out);
  PutI32(v.error_depth, &out);
  PutI64(v.validation_time.value_or(0), &out);
  PutU32(static_cast<uint32_t>(v.chain.size()), &out);
  PutString(v.error_string, &out);
  PutString(v.openssl_version, &out);
  PutString(v.input_error, &out);
  for (const CertInfo& c : v.chain) {
    PutString(c.subject, &out);
    PutString(c.issuer, &out);
    PutString(c.not_before, &out);
    PutString(c.not_after, &out);
    PutString(c.sha256, &out);
  }
  return out;
}

absl::StatusOr<Verdict> DecodeVerdict(absl::string_view payload) {
  if (payload.size() > kMaxVerdictBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("verdict of ", payload.size(), " bytes exceeds ", kMaxVerdictBytes));
  }
  VerdictReader r(payload);
  Verdict v;
  uint64_t version = 0, flags = 0, code = 0, depth = 0, time = 0, count = 0;
  RETURN_IF_ERROR(r.Fixed("version", 1, &version));
  if (version != kVerdictVersion) {
    return r.Bad("version", -1, 0, absl::StrCat(version, " (want ", kVerdictVersion, ")"));
  }
  RETURN_IF_ERROR(r.Fixed("flags", 1, &flags));
  if ((flags & ~uint64_t{3}) != 0) {
    return r.Bad("flags", -1, 1, absl::StrCat("unknown bits in 0x", absl::Hex(flags)));
  }
  v.valid = (flags & 1) != 0;
  RETURN_IF_ERROR(r.Fixed("error_code", 4, &code));
  v.error_code = static_cast<int32_t>(static_cast<uint32_t>(code));
  if (v.valid && v.error_code != 0) {
    return r.Bad("error_code", -1, 2, absl::StrCat(v.error_code, " in a valid verdict"));
  }
  RETURN_IF_ERROR(r.Fixed("error_depth", 4, &depth));
  v.error_depth = static_cast<int32_t>(static_cast<uint32_t>(depth));
  if (v.error_depth < -1 || v.error_depth > static_cast<int>(kMaxVerdictChainCerts)) {
    return r.Bad("error_depth", -1, 6,
                 absl::StrCat(v.error_depth, " outside -1..", kMaxVerdictChainCerts));
  }
  RETURN_IF_ERROR(r.Fixed("validation_time", 8, &time));
  int64_t t = static_cast<int64_t>(time);
  if ((flags & 2) != 0) {
    if (t < kMinTimeUnix || t > kMaxTimeUnix) {
      return r.Bad("validation_time", -1, 10,
                   absl::StrCat(t, " outside ", kMinTimeUnix, "..", kMaxTimeUnix));
    }
    v.validation_time = t;
  } else if (t != 0) {
    return r.Bad("validation_time", -1, 10, absl::StrCat(t, " but the flags say none"));
  }
  RETURN_IF_ERROR(r.Fixed("chain count", 4, &count));
  if (count > kMaxVerdictChainCerts) {
    return r.Bad("chain count", -1, 18, absl::StrCat(count, " (at most ", kMaxVerdictChainCerts, ")"));
  }
  RETURN_IF_ERROR(r.String("error_string", -1, &v.error_string));
  RETURN_IF_ERROR(r.String("openssl", -1, &v.openssl_version));
  size_t input_error_at = r.offset();
  RETURN_IF_ERROR(r.String("input_error", -1, &v.input_error));
  if (v.valid && !v.input_error.empty()) {
    return r.Bad("input_error", -1, input_error_at, "non-empty in a valid verdict");
  }
  // Each entry takes at least 20 bytes: a count beyond what is left is refused before
  // anything is allocated for it.
  if (count > r.left() / 20) {
    return r.Bad("chain count", -1, 18, absl::StrCat(count, " entries cannot fit in the ",
                                                 r.left(), " bytes left"));
  }
  v.chain.resize(static_cast<size_t>(count));
  for (size_t i = 0; i < v.chain.size(); ++i) {
    CertInfo& c = v.chain[i];
    std::pair<const char*, std::string*> members[] = {{"subject", &c.subject},
                                                      {"issuer", &c.issuer},
                                                      {"not_before", &c.not_before},
                                                      {"not_after", &c.not_after},
                                                      {"sha256", &c.sha256}};
    for (auto& [name, out] : members) {
      RETURN_IF_ERROR(r.String(name, static_cast<int>(i), out));
    }
  }
  if (r.left() != 0) {
    return r.Bad("end", -1, r.offset(), absl::StrCat(r.left(), " bytes after the verdict"));
  }
  return v;
}

std::string BoundedVerdictJson(Verdict* v) {
  std::string json = VerdictToJson(*v);
  if (json.size() > kMaxVerdictBytes) {
    *v = ErrorVerdict(
        absl::StrCat("verdict of ", json.size(), " bytes exceeds ", kMaxVerdictBytes));
    json = VerdictToJson(*v);
  }
  return json;
}

absl::StatusOr<Verdict> VerdictFromJson(absl::string_view json) {
  absl::StatusOr<JsonValue> value = ParseJson(json);
  if (!value.ok()) return value.status();
  if (!value->is_object()) return absl::InvalidArgumentError("verdict is not an object");
  if (value->object().size() != 9) {
    return absl::InvalidArgumentError("verdict must have exactly 9 members");
  }
  Verdict v;
  const JsonValue* valid = value->Find("valid");
  const JsonValue* code = value->Find("error_code");
  const JsonValue* string = value->Find("error_string");
  const JsonValue* depth = value->Find("error_depth");
  const JsonValue* chain = value->Find("chain");
  const JsonValue* time = value->Find("validation_time");
  const JsonValue* openssl = value->Find("openssl");
  const JsonValue* input_error = value->Find("input_error");
  const JsonValue* internal_error = value->Find("internal_error");
  int64_t code_value = 0, depth_value = 0;
  if (valid == nullptr || !valid->is_bool() || code == nullptr || !code->AsInt64(&code_value) ||
      string == nullptr || !string->is_string() || depth == nullptr ||
      !depth->AsInt64(&depth_value) || chain == nullptr || !chain->is_array() ||
      time == nullptr || !(time->is_null() || time->is_string()) || openssl == nullptr ||
      !openssl->is_string() || input_error == nullptr || !input_error->is_string() ||
      internal_error == nullptr || !internal_error->is_string() || code_value < INT32_MIN || code_value > INT32_MAX || depth_value < INT32_MIN ||
      depth_value > INT32_MAX) {
    return absl::InvalidArgumentError("verdict members missing or of the wrong type");
  }
  v.valid = valid->bool_value();
  v.error_code = static_cast<int>(code_value);
  v.error_string = string->string_value();
  v.error_depth = static_cast<int>(depth_value);
  for (const JsonValue& c : chain->array()) {
    if (!c.is_object() || c.object().size() != 5) {
      return absl::InvalidArgumentError("chain entry is not an object of 5 members");
    }
    CertInfo info;
    std::pair<const char*, std::string*> members[] = {{"subject", &info.subject},
                                                      {"issuer", &info.issuer},
                                                      {"not_before", &info.not_before},
                                                      {"not_after", &info.not_after},
                                                      {"sha256", &info.sha256}};
    for (auto& [name, out] : members) {
      const JsonValue* m = c.Find(name);
      if (m == nullptr || !m->is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("chain entry member \"", name, "\" missing or not a string"));
      }
      *out = m->string_value();
    }
    v.chain.push_back(std::move(info));
  }
  if (time->is_string()) {
    absl::StatusOr<int64_t> t = ParseRfc3339(time->string_value());
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("verdict validation_time: ", t.status().message()));
    }
    v.validation_time = *t;
  }
  v.openssl_version = openssl->string_value();
  v.input_error = input_error->string_value();
  v.internal_error = internal_error->string_value();
  return v;
}

Verdict InternalErrorVerdict(absl::string_view what) {
  Verdict v;
  v.valid = false;
  v.internal_error = std::string(what);
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

absl::Status SendFrame(int fd, absl::string_view payload, absl::Time deadline) {
  char header[4];
  for (int i = 0; i < 4; ++i) {
    header[i] = static_cast<char>((static_cast<uint64_t>(payload.size()) >> (8 * i)) & 0xff);
  }
  const size_t total = sizeof(header) + payload.size();
  size_t sent = 0;
  while (sent < total) {
    struct iovec iov[2];
    int n_iov = 0;
    if (sent < sizeof(header)) {
      iov[n_iov++] = {header + sent, sizeof(header) - sent};
      iov[n_iov++] = {const_cast<char*>(payload.data()), payload.size()};
    } else {
      size_t off = sent - sizeof(header);
      iov[n_iov++] = {const_cast<char*>(payload.data()) + off, payload.size() - off};
    }
    struct msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n_iov);
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoStatus(errno, "sendmsg");
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

absl::Status RecvSoleFrame(int fd, uint32_t max_bytes, absl::Time deadline,
                           std::string* payload) {
  char first[kSoleFrameChunk];
  size_t got = 0;
  while (got < 4) {
    absl::Status s = WaitFor(fd, POLLIN, deadline);
    if (!s.ok()) return s;
    ssize_t n = recv(fd, first + got, sizeof(first) - got, MSG_DONTWAIT);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0) {
      return got == 0 ? absl::OutOfRangeError("end of stream")
                      : absl::DataLossError("end of stream");
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return ErrnoStatus(errno, "recv");
    }
  }
  const uint32_t len = GetU32(first);
  if (len > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("frame of ", len, " bytes exceeds the limit of ", max_bytes));
  }
  const size_t have = got - 4;
  if (have > len) {
    return absl::InvalidArgumentError(
        absl::StrCat(have - len, " bytes after the frame of ", len, " bytes"));
  }
  payload->resize(len);
  memcpy(payload->data(), first + 4, have);
  size_t more = 0;
  absl::Status s = RecvExact(fd, payload->data() + have, len - have, deadline, &more);
  if (!s.ok()) {
    payload->clear();
    return s;
  }
  return absl::OkStatus();
}

bool FrameReader::Fill() {
  for (;;) {
    ssize_t n = read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

FrameReader::Result FrameReader::Next(absl::string_view* payload, uint32_t* announced) {
  // The previous frame is done with: what followed it moves to the front.
  if (begin_ > 0) {
    memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buf_.size() > kKeep && end_ <= kChunk) {
    buf_.resize(kChunk);
    buf_.shrink_to_fit();
  }
  if (buf_.size() < kChunk) buf_.resize(kChunk);
  while (end_ < 4) {
    if (!Fill()) return end_ == 0 ? Result::kEnd : Result::kCut;
  }
  const uint32_t len = GetU32(buf_.data());
  *announced = len;
  if (len > max_bytes_) return Result::kTooBig;
  const size_t need = 4 + static_cast<size_t>(len);
  if (buf_.size() < need) buf_.resize(need);
  while (end_ < need) {
    if (!Fill()) return Result::kCut;
  }
  *payload = absl::string_view(buf_.data() + 4, len);
  begin_ = need;
  return Result::kFrame;
}

absl::StatusOr<std::string> RoundTrip(int fd, absl::string_view job_payload,
                                      absl::Time deadline) {
  absl::Status s = SendFrame(fd, job_payload, deadline);
  std::string verdict;
  if (!s.ok()) {
    // A server that refuses a connection (busy) answers before reading the job and hangs
    // up; its verdict may be waiting even though the job could not be sent.
    if (RecvFrame(fd, kMaxVerdictBytes, std::min(deadline, absl::Now() + absl::Seconds(1)),
                  &verdict)
            .ok()) {
      return verdict;
    }
    return s;
  }
  s = RecvFrame(fd, kMaxVerdictBytes, deadline, &verdict);
  if (!s.ok()) return s;
  return verdict;
}

}  // namespace vow::x509
