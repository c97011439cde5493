// vow_parse: decodes images, extracts archives and renders text with Debian's libraries
// inside workers locked to `stdio`. The trusted front end; see README (Parser sandboxes).
//
//   vow_parse image FILE [--to OUT.png] [--max-pixels N] [--max-bytes N]
//   vow_parse extract ARCHIVE --into DIR [--max-entries N] [--max-file-bytes N]
//                                        [--max-total-bytes N] [--max-depth N]
//   vow_parse font FILE --text "..." [--size PX] [--to OUT.png]
// Prints one JSON object. Exit 0: decoded / all extracted / rendered; 1: the input was
// rejected or something was refused (the JSON says what); 2: bad usage.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "examples/parsers/parsers.h"

namespace {

using vow::parsers::Outcome;

int Usage(const std::string& why) {
  std::cerr << "vow_parse: " << why << "\n"
            << "usage: vow_parse image FILE [--to OUT.png] [--max-pixels N] [--max-bytes N]\n"
            << "       vow_parse extract ARCHIVE --into DIR [--max-entries N]"
               " [--max-file-bytes N] [--max-total-bytes N] [--max-depth N]\n"
            << "       vow_parse font FILE --text TEXT [--size PX] [--to OUT.png]\n";
  return 2;
}

bool ReadFile(const std::string& path, uint64_t max, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = absl::StrCat(path, ": cannot be read");
    return false;
  }
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  in.seekg(0);
  if (size < 0 || static_cast<uint64_t>(size) > max) {
    *error = absl::StrCat(path, ": ", size, " bytes exceeds the limit of ", max, " bytes");
    return false;
  }
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

std::string Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return absl::StrCat(cwd, "/", path);
}

int Print(const std::string& json, int code) {
  std::cout << json << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage("missing arguments");
  std::string command = argv[1], input = argv[2];
  std::map<std::string, std::string> flags;
  for (int i = 3; i < argc; ++i) {
    std::string f = argv[i];
    if (f.rfind("--", 0) != 0 || i + 1 >= argc) return Usage(absl::StrCat("bad argument ", f));
    flags[f] = argv[++i];
  }
  auto number = [&flags](const char* name, uint64_t* v) {
    auto it = flags.find(name);
    if (it == flags.end()) return true;
    bool ok = absl::SimpleAtoi(it->second, v);
    flags.erase(it);
    return ok;
  };
  auto take = [&flags](const char* name) {
    auto it = flags.find(name);
    if (it == flags.end()) return std::string();
    std::string v = it->second;
    flags.erase(it);
    return v;
  };
  vow::parsers::ParserOptions options;
  options.pool_size = 1;
  options.stderr_fd = 2;

  if (command == "image") {
    vow::parsers::ImageOptions image;
    image.keep_pixels = false;
    std::string to = take("--to");
    if (!number("--max-pixels", &image.max_pixels) || !number("--max-bytes", &image.max_bytes)) {
      return Usage("bad number");
    }
    if (!flags.empty()) return Usage(absl::StrCat("unknown flag ", flags.begin()->first));
    std::string bytes, error;
    if (!ReadFile(input, image.max_bytes, &bytes, &error)) {
      return Print(absl::StrCat("{\"error\": ", vow::parsers::JsonString(error), "}"), 1);
    }
    if (!to.empty()) options.pool_size = 0;
    auto parsers = vow::parsers::Parsers::Create(options);
    if (!parsers.ok()) return Usage(std::string(parsers.status().message()));
    vow::parsers::ImageResult r = to.empty() ? (*parsers)->DecodeImage(bytes, image)
                                             : (*parsers)->DecodeImageToPng(bytes, image, Absolute(to));
    return Print(r.ToJson(), r.outcome == Outcome::kOk ? 0 : 1);
  }
  if (command == "extract") {
    vow::parsers::ExtractOptions x;
    std::string into = take("--into");
    uint64_t depth = x.max_depth;
    if (!number("--max-entries", &x.max_entries) ||
        !number("--max-file-bytes", &x.max_file_bytes) ||
        !number("--max-total-bytes", &x.max_total_bytes) || !number("--max-depth", &depth) ||
        depth > 4096) {
      return Usage("bad number");
    }
    x.max_depth = static_cast<uint32_t>(depth);
    if (into.empty()) return Usage("extract needs --into DIR");
    if (!flags.empty()) return Usage(absl::StrCat("unknown flag ", flags.begin()->first));
    int fd = open(input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Print(absl::StrCat("{\"error\": ",
                                vow::parsers::JsonString(absl::StrCat(input, ": cannot be read")),
                                "}"),
                   1);
    }
    options.pool_size = 0;
    auto parsers = vow::parsers::Parsers::Create(options);
    if (!parsers.ok()) return Usage(std::string(parsers.status().message()));
    vow::parsers::ExtractResult r = (*parsers)->ExtractArchive(fd, Absolute(into), x);
    close(fd);
    return Print(r.ToJson(), r.outcome == 0 ? 0 : 1);
  }
  if (command == "font") {
    vow::parsers::FontOptions font;
    std::string text = take("--text"), to = take("--to");
    uint64_t size = font.pixel_size;
    if (!number("--size", &size) || size > 4096) return Usage("bad number");
    font.pixel_size = static_cast<uint32_t>(size);
    if (!flags.empty()) return Usage(absl::StrCat("unknown flag ", flags.begin()->first));
    if (text.empty()) return Usage("font needs --text TEXT");
    std::string bytes, error;
    if (!ReadFile(input, font.max_bytes, &bytes, &error)) {
      return Print(absl::StrCat("{\"error\": ", vow::parsers::JsonString(error), "}"), 1);
    }
    auto parsers = vow::parsers::Parsers::Create(options);
    if (!parsers.ok()) return Usage(std::string(parsers.status().message()));
    vow::parsers::FontResult r = (*parsers)->RenderText(bytes, text, font);
    if (r.outcome == Outcome::kOk && !to.empty()) {
      // The PNG was encoded here, on the trusted side, from checked pixels.
      int fd = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, r.png.data(), r.png.size()) != static_cast<ssize_t>(r.png.size())) {
        if (fd >= 0) close(fd);
        return Print(absl::StrCat("{\"error\": ",
                                  vow::parsers::JsonString(absl::StrCat(to, ": cannot be written")),
                                  "}"),
                     1);
      }
      close(fd);
    }
    return Print(r.ToJson(), r.outcome == Outcome::kOk ? 0 : 1);
  }
  return Usage(absl::StrCat("unknown command ", command));
}
