// vow_cat: a first complete vow program. The broker (this process) unveils the files named
// on the command line read-only and forks a worker locked to `stdio`; the worker opens
// each file through the broker, writes it to stdout with line numbers, and ends with a
// `wc`-style summary. The worker cannot open anything else, and the broker's audit log
// (on stderr with --audit) shows every decision.
//
//   vow_cat [--audit] FILE...
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "worker/client.h"

namespace {

// Runs in the locked worker.
int CatWorker(vow::Client& client, const std::vector<std::string>& files) {
  long total_lines = 0, total_words = 0, total_bytes = 0;
  for (const std::string& path : files) {
    auto fd = client.Open(path, O_RDONLY);
    if (!fd.ok()) {
      fprintf(stderr, "vow_cat: %s\n", std::string(fd.status().message()).c_str());
      return 1;
    }
    long lines = 0, words = 0, bytes = 0;
    bool in_word = false, at_line_start = true;
    char buf[8192];
    ssize_t n;
    while ((n = read(fd->get(), buf, sizeof(buf))) > 0) {
      for (ssize_t i = 0; i < n; ++i) {
        char c = buf[i];
        if (at_line_start) {
          printf("%6ld  ", lines + 1);
          at_line_start = false;
        }
        putchar(c);
        ++bytes;
        if (c == '\n') {
          ++lines;
          at_line_start = true;
        }
        bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
        if (!space && !in_word) ++words;
        in_word = !space;
      }
    }
    if (!at_line_start) putchar('\n');
    printf("%7ld %7ld %7ld %s\n", lines, words, bytes, path.c_str());
    total_lines += lines;
    total_words += words;
    total_bytes += bytes;
  }
  if (files.size() > 1) printf("%7ld %7ld %7ld total\n", total_lines, total_words, total_bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool audit = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--audit") == 0) {
      audit = true;
    } else {
      std::error_code ec;
      std::filesystem::path p = std::filesystem::weakly_canonical(argv[i], ec);
      if (ec) {
        fprintf(stderr, "vow_cat: %s: %s\n", argv[i], ec.message().c_str());
        return 2;
      }
      files.push_back(p.string());
    }
  }
  if (files.empty()) {
    fprintf(stderr, "usage: vow_cat [--audit] FILE...\n");
    return 2;
  }
  vow::Policy policy;  // promises: stdio; penalty: kill
  for (const std::string& f : files) policy.paths.push_back(vow::PathRule{f, /*read=*/true});

  vow::BrokerOptions options;
  options.audit_fd = audit ? STDERR_FILENO : -1;
  auto broker = vow::Broker::Create(options);
  if (!broker.ok()) {
    fprintf(stderr, "vow_cat: %s\n", std::string(broker.status().message()).c_str());
    return 1;
  }
  vow::SpawnOptions spawn;
  spawn.stdout_fd = STDOUT_FILENO;
  spawn.stderr_fd = STDERR_FILENO;
  spawn.name = "cat";
  auto id = (*broker)->Spawn(policy, [&](vow::Client& c) { return CatWorker(c, files); }, spawn);
  if (!id.ok()) {
    fprintf(stderr, "vow_cat: %s\n", std::string(id.status().message()).c_str());
    return 1;
  }
  auto result = (*broker)->Wait(*id);
  if (!result.ok()) {
    fprintf(stderr, "vow_cat: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  if (result->kind != vow::WorkerResult::Kind::kExited) {
    fprintf(stderr, "vow_cat: worker %s\n", result->ToString().c_str());
    return 1;
  }
  return result->exit_code;
}
