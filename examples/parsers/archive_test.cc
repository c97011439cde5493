// Archive extraction in locked workers: a corpus made here with bsdtar and zip (every
// format and compression), hostile archives made with libarchive's writer, each checked
// for its result AND for a tree outside DIR that did not change; the same hostile
// archives through a worker that skips its own checks (a compromised worker), where the
// caller's checks and quotas (it creates and writes every file) and seccomp must hold.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "examples/parsers/parsers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::parsers {
namespace {

namespace fs = std::filesystem;
using ::testing::AnyOf;
using ::testing::HasSubstr;

Parsers& Shared() {
  static Parsers* p = [] {
    ParserOptions options;
    options.pool_size = 1;
    auto created = Parsers::Create(options);
    if (!created.ok()) abort();
    return created->release();
  }();
  return *p;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteFileAt(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

// path -> type, mode, size, contents hash (no mtimes: the test itself touches nothing).
std::map<std::string, std::string> Snapshot(const std::string& root, const std::string& skip) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    std::string p = it->path().string();
    if (p == skip) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    lstat(p.c_str(), &st);
    std::string contents = S_ISREG(st.st_mode) ? ReadAll(p) : "";
    out[p] = absl::StrCat(st.st_mode, " ", st.st_size, " ", st.st_nlink, " ",
                          std::hash<std::string>()(contents));
  }
  return out;
}

// A fresh case directory: ROOT/outside/secret.txt and ROOT/into (DIR, not yet created).
struct Case {
  std::string root, into, outside;
  std::map<std::string, std::string> before;
  std::vector<std::string> absolute_probes;
};

Case NewCase(const std::string& name) {
  static int n = 0;
  Case c;
  c.root = absl::StrCat(getenv("TEST_TMPDIR"), "/", name, "_", ++n);
  c.into = c.root + "/into";
  c.outside = c.root + "/outside";
  WriteFileAt(c.outside + "/secret.txt", "secret");
  c.before = Snapshot(c.root, c.into);
  return c;
}

void ExpectNothingOutsideChanged(const Case& c) {
  EXPECT_EQ(Snapshot(c.root, c.into), c.before) << "something outside DIR changed";
  for (const std::string& p : c.absolute_probes) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(p))) << p << " was created";
  }
}

struct Entry {
  std::string name;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;
  std::string symlink;   // target
  std::string hardlink;  // target
  dev_t rdev = 0;
};

// Writes a pax tar (optionally gzip-compressed) with exactly these entries.
std::string MakeTar(const std::string& path, const std::vector<Entry>& entries, bool gzip = false) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_open_filename(a, path.c_str());
  for (const Entry& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_copy_pathname(ae, e.name.c_str());
    archive_entry_set_filetype(ae, e.type);
    archive_entry_set_perm(ae, e.perm);
    if (!e.symlink.empty()) archive_entry_copy_symlink(ae, e.symlink.c_str());
    if (!e.hardlink.empty()) archive_entry_copy_hardlink(ae, e.hardlink.c_str());
    if (e.rdev != 0) archive_entry_set_rdev(ae, e.rdev);
    archive_entry_set_size(ae, e.type == AE_IFREG && e.hardlink.empty() ? e.data.size() : 0);
    archive_write_header(a, ae);
    if (e.type == AE_IFREG && !e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return path;
}

ExtractResult Extract(const std::string& archive, const Case& c, ExtractOptions options = {}) {
  int fd = open(archive.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << archive;
  ExtractResult r = Shared().ExtractArchive(fd, c.into, options);
  close(fd);
  return r;
}

std::string ReasonFor(const ExtractResult& r, const std::string& name) {
  for (const Refusal& f : r.refused) {
    if (f.name == name) return f.reason;
  }
  return "(not refused)";
}

// ---- The corpus: every format and compression, extracted exactly. -----------------

TEST(ArchiveTest, EveryFormatExtractsTheSameTree) {
  std::string src = absl::StrCat(getenv("TEST_TMPDIR"), "/src");
  WriteFileAt(src + "/top.txt", "top level\n");
  WriteFileAt(src + "/empty", "");
  WriteFileAt(src + "/a/b/c/deep.txt", "deep\n");
  WriteFileAt(src + "/caf\xc3\xa9.txt", "utf-8 name\n");
  std::string big(1 << 20, '\0');
  uint32_t x = 7;
  for (char& ch : big) ch = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  WriteFileAt(src + "/a/big.bin", big);
  fs::create_directories(src + "/emptydir");
  std::map<std::string, std::string> want;
  for (auto& e : fs::recursive_directory_iterator(src)) {
    std::string rel = fs::relative(e.path(), src).string();
    want[rel] = e.is_directory() ? "<dir>" : ReadAll(e.path().string());
  }
  std::string t = getenv("TEST_TMPDIR");
  const std::vector<std::pair<std::string, std::string>> corpus = {
      {"tar", "bsdtar -cf " + t + "/c.tar -C " + src + " ."},
      {"tar.gz", "bsdtar -czf " + t + "/c.tar.gz -C " + src + " ."},
      {"tar.xz", "bsdtar -cJf " + t + "/c.tar.xz -C " + src + " ."},
      {"tar.zst", "bsdtar --zstd -cf " + t + "/c.tar.zst -C " + src + " ."},
      {"7z", "bsdtar --format 7zip -cf " + t + "/c.7z -C " + src + " ."},
      {"cpio", "bsdtar --format newc -cf " + t + "/c.cpio -C " + src + " ."},
      {"cpio.gz", "bsdtar --format newc -czf " + t + "/c.cpio.gz -C " + src + " ."},
      {"zip", "cd " + src + " && zip -qr " + t + "/c.zip ."},
  };
  for (const auto& [ext, command] : corpus) {
    ASSERT_EQ(system(("LC_ALL=C.UTF-8 " + command).c_str()), 0) << command;
    Case c = NewCase("corpus");
    ExtractResult r = Extract(t + "/c." + ext, c);
    EXPECT_EQ(r.outcome, 0) << ext << ": " << r.ToJson();
    std::map<std::string, std::string> got;
    for (auto& e : fs::recursive_directory_iterator(c.into)) {
      std::string rel = fs::relative(e.path(), c.into).string();
      got[rel] = e.is_directory() ? "<dir>" : ReadAll(e.path().string());
    }
    EXPECT_TRUE(got == want) << ext << ": the extracted tree differs";
    EXPECT_EQ(r.written, 5u) << ext;
    EXPECT_EQ(r.bytes, big.size() + 10 + 5 + 11) << ext;
    ExpectNothingOutsideChanged(c);
  }
}

// ---- Hostile archives, the worker's own checks on. --------------------------------

TEST(ArchiveTest, SlipNamesAreRefusedAndNothingOutsideChanges) {
  Case c = NewCase("slip");
  std::string abs = c.root + "/abs_evil.txt";
  c.absolute_probes = {abs};
  std::string tar = MakeTar(c.root + ".tar", {{.name = "../evil.txt", .data = "x"},
                                               {.name = "a/../../evil2.txt", .data = "x"},
                                               {.name = abs, .data = "x"},
                                               {.name = "./ok.txt", .data = "fine"}});
  ExtractResult r = Extract(tar, c);
  EXPECT_EQ(r.outcome, 1);
  EXPECT_EQ(ReasonFor(r, "../evil.txt"), "`..` component");
  EXPECT_EQ(ReasonFor(r, "a/../../evil2.txt"), "`..` component");
  EXPECT_EQ(ReasonFor(r, abs), "absolute path");
  EXPECT_EQ(ReadAll(c.into + "/ok.txt"), "fine");
  EXPECT_EQ(r.written, 1u);
  EXPECT_THAT(r.ToJson(), HasSubstr("\"refused\": [{\"name\": \"../evil.txt\""));
  ExpectNothingOutsideChanged(c);
}

TEST(ArchiveTest, LinksNodesAndSetuidAreRefused) {
  Case c = NewCase("links");
  std::string tar = MakeTar(
      c.root + ".tar",
      {{.name = "ln", .type = AE_IFLNK, .symlink = c.outside},
       {.name = "ln/pwned.txt", .data = "through the link"},
       {.name = "rel", .type = AE_IFLNK, .symlink = "../outside"},
       {.name = "rel/secret.txt", .data = "overwrite"},
       {.name = "hl", .hardlink = "../outside/secret.txt"},
       {.name = "null", .type = AE_IFCHR, .perm = 0666, .rdev = makedev(1, 3)},
       {.name = "sda", .type = AE_IFBLK, .perm = 0660, .rdev = makedev(8, 0)},
       {.name = "fifo", .type = AE_IFIFO},
       {.name = "suid", .perm = 04755, .data = "#!/bin/sh\n"}});
  ExtractResult r = Extract(tar, c);
  EXPECT_EQ(r.outcome, 1);
  EXPECT_THAT(ReasonFor(r, "ln"), HasSubstr("symbolic link"));
  EXPECT_EQ(ReasonFor(r, "ln/pwned.txt"), "beneath a refused link");
  EXPECT_EQ(ReasonFor(r, "rel/secret.txt"), "beneath a refused link");
  EXPECT_THAT(ReasonFor(r, "hl"), HasSubstr("hard link"));
  EXPECT_EQ(ReasonFor(r, "null"), "device node");
  EXPECT_EQ(ReasonFor(r, "sda"), "device node");
  EXPECT_EQ(ReasonFor(r, "fifo"), "FIFO");
  EXPECT_EQ(ReasonFor(r, "suid"), "setuid/setgid/sticky bits dropped");
  struct stat st;
  ASSERT_EQ(lstat((c.into + "/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(r.written, 1u);
  EXPECT_EQ(r.directories, 0u);
  ExpectNothingOutsideChanged(c);
}

TEST(ArchiveTest, OverlongDeepAndNonUtf8NamesAreRefused) {
  Case c = NewCase("names");
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "d/";
  deep += "f";
  std::string tar = MakeTar(c.root + ".tar", {{.name = std::string(2000, 'a'), .data = "x"},
                                              {.name = std::string(300, 'b') + "/f", .data = "x"},
                                              {.name = "bad\xff\xfe.txt", .data = "x"},
                                              {.name = "ctl\x1b[2J.txt", .data = "x"},
                                              {.name = deep, .data = "x"}});
  ExtractResult r = Extract(tar, c);
  EXPECT_EQ(r.outcome, 1);
  EXPECT_THAT(ReasonFor(r, std::string(2000, 'a')), HasSubstr("longer than 1024"));
  EXPECT_THAT(ReasonFor(r, std::string(300, 'b') + "/f"), HasSubstr("component longer than 255"));
  EXPECT_EQ(ReasonFor(r, "bad\xff\xfe.txt"), "name is not UTF-8");
  EXPECT_EQ(ReasonFor(r, "ctl\x1b[2J.txt"), "control character in name");
  EXPECT_THAT(ReasonFor(r, deep), HasSubstr("41 components is deeper than 32"));
  EXPECT_THAT(r.ToJson(), HasSubstr("bad\\u00ff\\u00fe.txt"));
  EXPECT_EQ(r.written + r.directories, 0u);
  ExpectNothingOutsideChanged(c);
}

TEST(ArchiveTest, BombsStopAtTheQuotas) {
  Case c = NewCase("bombs");
  std::vector<Entry> entries = {{.name = "zeros", .data = std::string(20 << 20, '\0')}};
  for (int i = 0; i < 30; ++i) entries.push_back({.name = absl::StrCat("many/", i), .data = "y"});
  std::string tgz = MakeTar(c.root + ".tar.gz", entries, /*gzip=*/true);
  EXPECT_LT(fs::file_size(tgz), 100u * 1024);
  ExtractOptions options;
  options.max_file_bytes = 1 << 20;
  options.max_entries = 10;
  ExtractResult r = Extract(tgz, c, options);
  EXPECT_EQ(r.outcome, 1);
  EXPECT_THAT(ReasonFor(r, "zeros"), HasSubstr("quota: file larger than 1048576"));
  EXPECT_LE(fs::file_size(c.into + "/zeros"), 1u << 20);
  EXPECT_THAT(ReasonFor(r, "many/29"), HasSubstr("quota: more than 10 entries"));
  EXPECT_LE(r.written + r.directories, 10u);
  ExpectNothingOutsideChanged(c);

  Case t = NewCase("total");
  std::vector<Entry> five;
  for (int i = 0; i < 5; ++i) five.push_back({.name = absl::StrCat("f", i), .data = std::string(1 << 20, 'z')});
  options = ExtractOptions();
  options.max_total_bytes = 2 << 20;
  r = Extract(MakeTar(t.root + ".tar.gz", five, true), t, options);
  EXPECT_EQ(r.outcome, 1);
  EXPECT_THAT(ReasonFor(r, "f2"), HasSubstr("quota: archive larger than 2097152"));
  EXPECT_LE(r.bytes, 2u << 20);
  ExpectNothingOutsideChanged(t);
}

TEST(ArchiveTest, DamagedArchivesAreReported) {
  Case c = NewCase("damaged");
  std::string tgz = MakeTar(c.root + ".tar.gz", {{.name = "a.txt", .data = std::string(200000, 'a')},
                                                 {.name = "b.txt", .data = "b"}}, true);
  std::string bytes = ReadAll(tgz);
  WriteFileAt(tgz, bytes.substr(0, bytes.size() / 2));
  ExtractResult r = Extract(tgz, c);
  EXPECT_EQ(r.outcome, 1);
  EXPECT_FALSE(r.error.empty() && r.refused.empty()) << r.ToJson();
  ExpectNothingOutsideChanged(c);

  Case g = NewCase("garbage");
  WriteFileAt(g.root + ".bin", "this is not an archive of any kind");
  r = Extract(g.root + ".bin", g);
  EXPECT_EQ(r.outcome, 1);
  EXPECT_THAT(r.error, HasSubstr("Unrecognized archive format"));
  ExpectNothingOutsideChanged(g);

  Case z = NewCase("zipcrc");
  std::string src = z.root + "_src";
  WriteFileAt(src + "/data.txt", std::string(5000, 'q') + "end");
  ASSERT_EQ(system(("cd " + src + " && zip -q0 " + z.root + ".zip data.txt").c_str()), 0);
  std::string zip = ReadAll(z.root + ".zip");
  size_t at = zip.find("qqqq");
  ASSERT_NE(at, std::string::npos);
  zip[at + 100] = 'X';  // stored data no longer matches its CRC
  WriteFileAt(z.root + ".zip", zip);
  r = Extract(z.root + ".zip", z);
  EXPECT_EQ(r.outcome, 1);
  EXPECT_THAT(ReasonFor(r, "data.txt"), HasSubstr("CRC"));
  ExpectNothingOutsideChanged(z);
}

TEST(ArchiveTest, DirMustBeEmptyAndAbsolute) {
  Case c = NewCase("nonempty");
  WriteFileAt(c.into + "/already", "here");
  std::string tar = MakeTar(c.root + ".tar", {{.name = "x", .data = "x"}});
  ExtractResult r = Extract(tar, c);
  EXPECT_EQ(r.outcome, 2);
  EXPECT_THAT(r.error, HasSubstr("must be an empty directory"));
  int fd = open(tar.c_str(), O_RDONLY | O_CLOEXEC);
  r = Shared().ExtractArchive(fd, "relative/dir", {});
  close(fd);
  EXPECT_THAT(r.error, HasSubstr("must be an absolute path"));
}

// ---- A compromised worker: its own checks off. What still holds. ------------------

ExtractOptions Unchecked() {
  ExtractOptions options;
  options.skip_worker_checks_for_testing = true;
  return options;
}

TEST(ArchiveTest, CompromisedWorkerSlipNamesAreRefusedByTheCaller) {
  Case c = NewCase("u_slip");
  std::string tar = MakeTar(c.root + ".tar", {{.name = "../outside/evil.txt", .data = "x"},
                                              {.name = "sub/../../outside/secret.txt", .data = "x"},
                                              {.name = "ok.txt", .data = "fine"}});
  ExtractResult r = Extract(tar, c, Unchecked());
  EXPECT_EQ(r.outcome, 1) << r.ToJson();
  EXPECT_THAT(ReasonFor(r, "../outside/evil.txt"), HasSubstr("refused by the caller: "));
  EXPECT_THAT(ReasonFor(r, "sub/../../outside/secret.txt"), HasSubstr("refused by the caller: "));
  EXPECT_EQ(ReadAll(c.into + "/ok.txt"), "fine") << r.ToJson();
  ExpectNothingOutsideChanged(c);
}

// symlink/link/mknod by path are the broker's to refuse (EACCES, recorded), never the
// kernel's to perform.
TEST(ArchiveTest, CompromisedWorkerLinksAndNodesAreRefused) {
  struct Trick {
    Entry entry;
    std::string syscall;
  };
  const Trick tricks[] = {
      {{.name = "ln", .type = AE_IFLNK, .symlink = "/etc"}, "symlink"},
      {{.name = "hl", .hardlink = "../outside/secret.txt"}, "link"},
      {{.name = "null", .type = AE_IFCHR, .perm = 0666, .rdev = makedev(1, 3)}, "mknod"},
      {{.name = "fifo", .type = AE_IFIFO}, "mknod"},
  };
  for (const Trick& t : tricks) {
    Case c = NewCase("u_" + t.entry.name);
    std::string tar = MakeTar(c.root + ".tar", {t.entry});
    ExtractResult r = Extract(tar, c, Unchecked());
    EXPECT_NE(r.outcome, 0) << r.ToJson();
    EXPECT_THAT(r.ToJson(), AnyOf(HasSubstr(t.syscall + ": errno 13"),
                                  HasSubstr("killed for a forbidden syscall: " + t.syscall)))
        << r.ToJson();
    EXPECT_EQ(r.written + r.directories, 0u);
    ExpectNothingOutsideChanged(c);
  }
}

// What is in DIR, by lstat: files, directories, their total size and the largest.
struct Disk {
  uint64_t files = 0, dirs = 0, bytes = 0, largest = 0;
};
Disk OnDisk(const std::string& dir) {
  Disk d;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st;
    if (lstat(it->path().c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) ++d.dirs;
    if (!S_ISREG(st.st_mode)) continue;
    ++d.files;
    d.bytes += st.st_size;
    d.largest = std::max<uint64_t>(d.largest, st.st_size);
  }
  return d;
}

TEST(ArchiveTest, CompromisedWorkerQuotasHoldInTheCaller) {
  Case c = NewCase("u_fsize");
  ExtractOptions options = Unchecked();
  options.max_file_bytes = 1 << 20;
  std::string tgz = MakeTar(c.root + ".tar.gz", {{.name = "zeros", .data = std::string(20 << 20, '\0')},
                                                 {.name = "suid", .perm = 06755, .data = "x"}},
                            true);
  ExtractResult r = Extract(tgz, c, options);
  EXPECT_EQ(r.outcome, 1) << r.ToJson();
  EXPECT_THAT(ReasonFor(r, "zeros"), HasSubstr("quota: file larger than 1048576 bytes (stopped by the caller)"));
  EXPECT_EQ(fs::file_size(c.into + "/zeros"), 1u << 20);
  struct stat st;
  ASSERT_EQ(lstat((c.into + "/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07000, 0u) << "the caller masks the mode to 0777";
  ExpectNothingOutsideChanged(c);

  Case t = NewCase("u_total");
  std::vector<Entry> many;
  for (int i = 0; i < 6; ++i) many.push_back({.name = absl::StrCat("f", i), .data = std::string(1 << 20, 'z')});
  options = Unchecked();
  options.max_total_bytes = (2 << 20) + 100;
  options.max_entries = 3;
  r = Extract(MakeTar(t.root + ".tar.gz", many, true), t, options);
  EXPECT_EQ(r.outcome, 1) << r.ToJson();
  EXPECT_THAT(ReasonFor(r, "f2"), HasSubstr("quota: archive larger than 2097252 bytes in total (stopped by the caller)"));
  EXPECT_THAT(ReasonFor(r, "f3"), HasSubstr("quota: more than 3 entries"));
  EXPECT_THAT(ReasonFor(r, "f5"), HasSubstr("quota: more than 3 entries"));
  Disk d = OnDisk(t.into);
  EXPECT_EQ(d.files, 3u);
  EXPECT_EQ(d.bytes, (2u << 20) + 100) << "exactly up to the total quota, not a byte past";
  EXPECT_EQ(r.bytes, d.bytes);
  ExpectNothingOutsideChanged(t);
}

// A worker that writes past every quota on purpose: for each file, 1 MiB more at
// max_file_bytes - 1 and 1 MiB at 3 * max_file_bytes, many files, and a total far above
// the quota. What lands on disk stays within each quota at every moment: the caller cuts
// every write before it reaches the disk.
TEST(ArchiveTest, AWorkerWritingPastEveryQuotaLeavesTheDiskWithinThem) {
  Case c = NewCase("u_past");
  std::vector<Entry> entries;
  for (int i = 0; i < 8; ++i) entries.push_back({.name = absl::StrCat("f", i), .data = std::string(300000, 'a')});
  ExtractOptions options = Unchecked();
  options.write_past_quotas_for_testing = true;
  options.max_file_bytes = 512 << 10;
  options.max_total_bytes = 1 << 20;
  options.max_entries = 5;
  ExtractResult r = Extract(MakeTar(c.root + ".tar", entries), c, options);
  EXPECT_EQ(r.outcome, 1) << r.ToJson();
  Disk d = OnDisk(c.into);
  EXPECT_LE(d.files + d.dirs, 5u);
  EXPECT_LE(d.largest, 512u << 10);
  EXPECT_LE(d.bytes, 1u << 20);
  EXPECT_EQ(d.largest, 512u << 10) << "f0 was filled up to the per-file quota, then cut";
  EXPECT_EQ(d.bytes, 1u << 20) << "then the total ran out";
  EXPECT_THAT(ReasonFor(r, "f0"), HasSubstr("quota: file larger than 524288 bytes (stopped by the caller)"));
  EXPECT_THAT(ReasonFor(r, "f7"), HasSubstr("quota: more than 5 entries"));
  EXPECT_THAT(r.ToJson(), HasSubstr("bytes in total (stopped by the caller)"));
  ExpectNothingOutsideChanged(c);
}

TEST(ArchiveTest, CommandExitCodesAndJson) {
  Case c = NewCase("cli");
  std::string tar = MakeTar(c.root + ".tar", {{.name = "a/x.txt", .data = "x"}});
  std::string bin = "examples/parsers/vow_parse";
  std::string out = c.root + ".json";
  int rc = system((bin + " extract " + tar + " --into " + c.into + " > " + out).c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  EXPECT_EQ(ReadAll(out),
            "{\"entries\": 1, \"written\": 1, \"directories\": 1, \"bytes\": 1, \"refused\": []}\n");
  Case d = NewCase("cli2");
  std::string bad = MakeTar(d.root + ".tar", {{.name = "../x", .data = "x"}});
  rc = system((bin + " extract " + bad + " --into " + d.into + " > " + out).c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 1);
  rc = system((bin + " extract " + bad + " 2>/dev/null >/dev/null").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 2);
  rc = system((bin + " image /dev/null --bogus 1 2>/dev/null >/dev/null").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 2);
}

}  // namespace
}  // namespace vow::parsers
