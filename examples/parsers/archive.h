// Archive extraction with libarchive: the types both sides share, and the worker's code.
//
// The worker (INSIDE the sandbox, locked to `stdio`) reads the archive from fd 0 (an fd
// the caller opened), and for each entry:
//  - checks the name (not empty, not absolute, no `.`/`..` component, valid UTF-8 without
//    control characters, at most kMaxNameBytes, at most max_depth components) and the type
//    (regular files and directories only: symlinks, hard links, devices, FIFOs and
//    sockets are refused), drops setuid/setgid/sticky bits (reported as a refusal);
//  - asks the CALLER (a kMkdir message on the data socket) for every directory; the
//    caller validates the name again and creates it beneath DIR with O_NOFOLLOW steps;
//  - asks the CALLER for every file (kFile: name, mode), then streams its data (kData:
//    offset, bytes); the worker never holds an fd of a file in DIR. The caller checks
//    the name again, counts the entry, creates the file beneath DIR itself (openat2
//    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, O_CREAT | O_EXCL, mode & 0777), and writes
//    each piece only as far as the per-file and total quotas allow;
//  - counts against the quotas itself too (to refuse early, with the entry's name).
// The worker's own checks are the first line only. What holds against a compromised
// worker (tested with skip_worker_checks_for_testing, which sends raw names to the
// caller, writes past every quota, and tries links and nodes with the raw syscalls):
//  - the caller's name checks and openat2 (nothing beneath DIR can name anything outside
//    it); the worker's policy has no path rule at all;
//  - seccomp: `stdio` has no open, symlink, link, mknod, chmod, rename or unlink;
//  - entry count, per-file size and total bytes: decided by the caller at each kFile and
//    kData before anything reaches the disk (a file's size counts as its highest written
//    offset, so holes count too); the figures in ExtractResult (written, bytes) come from
//    a scan of DIR at the end, not from the worker;
//  - wall time: the request's timeout (the worker is killed).
#ifndef VOW_EXAMPLES_PARSERS_ARCHIVE_H_
#define VOW_EXAMPLES_PARSERS_ARCHIVE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/client.h"

namespace vow::parsers {

inline constexpr size_t kMaxNameBytes = 1024;
inline constexpr size_t kMaxComponentBytes = 255;
inline constexpr size_t kMaxRefusals = 1000;

struct ExtractOptions {
  uint64_t max_entries = 100000;          // files + directories created
  uint64_t max_file_bytes = 1ull << 30;   // per file
  uint64_t max_total_bytes = 4ull << 30;  // all files
  uint32_t max_depth = 32;                // path components
  absl::Duration timeout = absl::Minutes(10);
  // Test only: the worker skips its own name, type and quota checks, asks the caller for
  // raw names, and tries symlink/link/mknod itself, as a compromised worker would.
  bool skip_worker_checks_for_testing = false;
  // Test only, with skip_worker_checks_for_testing: after each file the worker also sends
  // 1 MiB at offset max_file_bytes - 1 and 1 MiB at 3 * max_file_bytes.
  bool write_past_quotas_for_testing = false;
};

struct Refusal {
  std::string name;    // the entry's name (hostile bytes; JsonString() them)
  std::string reason;
};

struct ExtractResult {
  int outcome = 2;  // 0 kOk, 1 kRejected, 2 kFailed (parsers.h Outcome values)
  std::string error;           // the archive's error (libarchive) or the sandbox failure
  uint64_t entries = 0;        // entries the worker reported reading
  uint64_t written = 0;        // regular files in DIR afterwards (the caller's scan)
  uint64_t directories = 0;    // directories in DIR afterwards (the caller's scan)
  uint64_t bytes = 0;          // their total size (the caller's scan)
  std::vector<Refusal> refused;
  std::string ToJson() const;
};

// The name checks both sides make (the caller again for every directory it creates).
// OK or InvalidArgument with the reason ("absolute path", "`..` component", ...).
absl::Status CheckEntryName(absl::string_view name, uint32_t max_depth);

// Extraction job (caller -> worker): u64 max_entries, max_file_bytes, max_total_bytes,
// u32 max_depth, u8 flags (1: skip worker checks, 2: write past quotas), string dir.
// Worker -> caller messages: u8 kind then:
//   kMkdir:    string name           (answered by the caller: u8 0 or an errno, string why)
//   kFile:     string name, u32 mode (answered likewise; it becomes the current file)
//   kData:     u64 offset, then at most kMaxDataBytes of the current file's data
//   kRefused:  string name, string reason
//   kFinished: u64 entries, string archive_error (empty: the archive was read to its end)
enum ExtractMessage : uint8_t { kMkdir = 1, kRefused = 2, kFinished = 3, kFile = 4, kData = 5 };
inline constexpr size_t kMaxDataBytes = 1 << 20;

// The extraction worker: one job, then it returns.
int ExtractWorkerMain(Client& client);

// Runs in the CALLER before any extraction worker is forked (trusted; idempotent): reads
// small self-made 7z and zip archives in-process, so that glibc's iconv has loaded its
// gconv cache (7z names are UTF-16, zip names may be CP437) and the time zone is set up
// (zip times go through mktime). Workers inherit that state; without it libarchive's
// first conversion opens /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache and its
// first mktime /etc/localtime, which `stdio` forbids.
void WarmUpArchiveLibrary();

}  // namespace vow::parsers

#endif  // VOW_EXAMPLES_PARSERS_ARCHIVE_H_
