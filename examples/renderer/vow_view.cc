// vow_view: preview untrusted documents in a web UI, each rendered by a locked renderer
// worker. The process itself is the "browser": it owns the HTTP socket (127.0.0.1 only),
// the files and the renderers (see browser.h).
//
//   vow_view serve [--port P] [--spares N] [--wall-time S] [--memory MiB] [--cpu S]
//                  [--audit] DIR
//
// Routes: /                  the file list of DIR
//         /view/NAME         a tab: NAME rendered (?page=N for PDF, ?reload=1: fresh renderer)
//         /about:renderers   every renderer: pid, document, state, memory, requests, violations
// With --test-hooks (tests only) /view/NAME?test=segv|open|socket|hang|memory|spin makes the
// document's renderer die in that way.
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <memory>
#include <thread>

#include <kj/async-io.h>
#include <kj/compat/http.h>
#include <kj/compat/url.h>
#include <kj/debug.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "examples/renderer/browser.h"

namespace vow::renderer {
namespace {

struct Reply {
  unsigned status = 200;
  std::string body;
};

class Service final : public kj::HttpService {
 public:
  Service(Browser& browser, kj::HttpHeaderTable& table, bool test_hooks)
      : browser_(browser), table_(table), test_hooks_(test_hooks) {}

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url,
                            const kj::HttpHeaders&, kj::AsyncInputStream&,
                            Response& response) override {
    if (method != kj::HttpMethod::GET) return Send(response, {405, "only GET"});
    KJ_IF_MAYBE(parsed, kj::Url::tryParse(url, kj::Url::HTTP_REQUEST)) {
      auto& path = parsed->path;
      if (path.size() == 0) return Send(response, {200, browser_.FileListHtml()});
      if (path.size() == 1 && path[0] == "about:renderers") {
        return Send(response, {200, browser_.AboutHtml()});
      }
      if (path.size() == 2 && path[0] == "view") {
        std::string name(path[1].cStr(), path[1].size());
        uint32_t page = 0;
        bool reload = false;
        std::optional<TestAct> test;
        for (auto& q : parsed->query) {
          if (q.name == "page") {
            uint32_t n = 0;
            if (absl::SimpleAtoi(q.value.cStr(), &n) && n >= 1) page = n - 1;
          } else if (q.name == "reload") {
            reload = true;
          } else if (q.name == "test" && test_hooks_) {
            static const std::pair<const char*, TestAct> kActs[] = {
                {"segv", TestAct::kSegv}, {"open", TestAct::kOpen}, {"hang", TestAct::kHang},
                {"memory", TestAct::kMemory}, {"spin", TestAct::kSpin},
                {"socket", TestAct::kSocket}};
            for (const auto& [n, act] : kActs) {
              if (q.value == n) test = act;
            }
          }
        }
        // Rendering blocks: it runs on its own thread, the event loop keeps serving.
        auto paf = kj::newPromiseAndCrossThreadFulfiller<Reply>();
        // (kj::Own's destructor may throw, which std::thread's state may not hold.)
        using Fulfiller = kj::Own<kj::CrossThreadPromiseFulfiller<Reply>>;
        std::shared_ptr<Fulfiller> fulfiller(new Fulfiller(kj::mv(paf.fulfiller)));
        std::thread([this, name, page, reload, test, fulfiller]() {
          Page p = browser_.Open(name, page, reload, test);
          Reply reply{p.kind == Page::Kind::kError ? 404u : 200u,
                      browser_.TabHtml(name, page, p)};
          (*fulfiller)->fulfill(kj::mv(reply));
        }).detach();
        return paf.promise.then(
            [this, &response](Reply reply) { return Send(response, kj::mv(reply)); });
      }
    }
    return Send(response, {404, "<!doctype html><p>not found</p>"});
  }

 private:
  kj::Promise<void> Send(Response& response, Reply reply) {
    kj::HttpHeaders headers(table_);
    headers.set(kj::HttpHeaderId::CONTENT_TYPE, "text/html; charset=utf-8");
    // No script runs in any page, whatever a renderer returned; images only inline.
    headers.add("Content-Security-Policy",
                "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    headers.add("X-Content-Type-Options", "nosniff");
    headers.add("Cache-Control", "no-store");
    auto body = kj::heap<std::string>(std::move(reply.body));
    auto stream = response.send(reply.status, reply.status == 200 ? "OK" : "Error", headers,
                                static_cast<uint64_t>(body->size()));
    auto write = stream->write(body->data(), body->size());
    return write.attach(kj::mv(stream), kj::mv(body));
  }

  Browser& browser_;
  kj::HttpHeaderTable& table_;
  bool test_hooks_;
};

int Usage() {
  fprintf(stderr,
          "usage: vow_view serve [--port P] [--spares N] [--wall-time SECONDS] "
          "[--memory MIB] [--cpu SECONDS] [--audit] DIR\n");
  return 2;
}

int Serve(int argc, char** argv) {
  BrowserOptions options;
  unsigned port = 8080;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](uint64_t* out) {
      return i + 1 < argc && absl::SimpleAtoi(argv[++i], out);
    };
    uint64_t v = 0;
    if (a == "--port" && value(&v) && v <= 65535) {
      port = static_cast<unsigned>(v);
    } else if (a == "--spares" && value(&v) && v >= 1 && v <= 64) {
      options.spares = v;
    } else if (a == "--wall-time" && value(&v) && v >= 1) {
      options.wall_time = absl::Seconds(v);
    } else if (a == "--memory" && value(&v) && v >= 64) {
      options.memory_bytes = v << 20;
    } else if (a == "--cpu" && value(&v) && v >= 1) {
      options.cpu_seconds = static_cast<uint32_t>(v);
    } else if (a == "--audit") {
      options.audit_fd = 2;
    } else if (a == "--test-hooks") {
      options.test_hooks = true;
    } else if (!a.empty() && a[0] != '-' && options.dir.empty()) {
      options.dir = a;
    } else {
      fprintf(stderr, "vow_view: bad argument %s\n", a.c_str());
      return Usage();
    }
  }
  if (options.dir.empty()) return Usage();
  signal(SIGPIPE, SIG_IGN);
  bool hooks = options.test_hooks;
  auto browser = Browser::Create(options);
  if (!browser.ok()) {
    fprintf(stderr, "vow_view: %s\n", std::string(browser.status().message()).c_str());
    return 1;
  }
  auto io = kj::setupAsyncIo();
  kj::HttpHeaderTable table;
  Service service(**browser, table, hooks);
  kj::HttpServer server(io.provider->getTimer(), table, service);
  auto address = io.provider->getNetwork().parseAddress("127.0.0.1", port).wait(io.waitScope);
  auto listener = address->listen();
  printf("vow_view: serving %s on http://127.0.0.1:%u/\n", options.dir.c_str(),
         listener->getPort());
  fflush(stdout);
  server.listenHttp(*listener).wait(io.waitScope);
  return 0;
}

}  // namespace
}  // namespace vow::renderer

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "serve") return vow::renderer::Usage();
  try {
    return vow::renderer::Serve(argc, argv);
  } catch (const kj::Exception& e) {
    fprintf(stderr, "vow_view: %s\n", e.getDescription().cStr());
    return 1;
  }
}
