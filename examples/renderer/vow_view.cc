// vow_view: preview untrusted documents in a web UI, each rendered by a locked renderer
// worker. The process itself is the "browser": it owns the HTTP socket (127.0.0.1 only),
// the files and the renderers (see browser.h).
//
//   vow_view serve [--port P] [--spares N] [--wall-time S] [--render-timeout S]
//                  [--max-tabs N] [--memory MiB] [--cpu S] [--audit] DIR
//
// Routes: /                  the file list of DIR
//         /view/NAME         opens a tab for NAME (leases it a warm renderer) and redirects
//                            (303) to it
//         /tab/ID            the tab: its document rendered by the tab's renderer (?page=N
//                            for PDF; ?reload=1 after a crash: a fresh renderer)
//         /tab/ID/close      closes the tab and ends its renderer
//         /about:renderers   every tab's renderer: tab, pid, document, state, memory,
//                            requests, violations
// With --test-hooks (tests only) /tab/ID?test=segv|open|socket|hang|memory|spin makes the
// tab's renderer die in that way.
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
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
  std::string location;  // non-empty: a 303 redirect there
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
        return OffLoop(response, [this, name]() {
          absl::StatusOr<TabId> tab = browser_.OpenTab(name);
          if (!tab.ok()) {
            Page p;
            p.kind = Page::Kind::kError;
            p.message = std::string(tab.status().message());
            return Reply{404, browser_.TabHtml(0, name, 0, p)};
          }
          return Reply{303, "", absl::StrCat("/tab/", *tab)};
        });
      }
      TabId tab = 0;
      if ((path.size() == 2 || (path.size() == 3 && path[2] == "close")) && path[0] == "tab" &&
          absl::SimpleAtoi(path[1].cStr(), &tab) && tab > 0) {
        if (path.size() == 3) {
          return OffLoop(response, [this, tab]() {
            bool closed = browser_.CloseTab(tab);
            return Reply{closed ? 200u : 404u,
                         absl::StrCat("<!doctype html><title>vow_view</title><p id=\"closed\">",
                                      closed ? "tab closed" : "no such tab",
                                      "</p><p><a href=\"/\">files</a></p>")};
          });
        }
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
        return OffLoop(response, [this, tab, page, reload, test]() {
          Page p = browser_.Render(tab, page, reload, test);
          std::string name = "(closed tab)";
          for (const TabInfo& t : browser_.Tabs()) {
            if (t.id == tab) name = t.document;
          }
          return Reply{p.kind == Page::Kind::kError ? 404u : 200u,
                       browser_.TabHtml(tab, name, page, p)};
        });
      }
    }
    return Send(response, {404, "<!doctype html><p>not found</p>"});
  }

 private:
  // Runs `make` (which blocks: it talks to renderers) on its own thread; the event loop
  // keeps serving.
  kj::Promise<void> OffLoop(Response& response, std::function<Reply()> make) {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<Reply>();
    // (kj::Own's destructor may throw, which std::thread's state may not hold.)
    using Fulfiller = kj::Own<kj::CrossThreadPromiseFulfiller<Reply>>;
    std::shared_ptr<Fulfiller> fulfiller(new Fulfiller(kj::mv(paf.fulfiller)));
    std::thread([make = std::move(make), fulfiller]() {
      (*fulfiller)->fulfill(make());
    }).detach();
    return paf.promise.then(
        [this, &response](Reply reply) { return Send(response, kj::mv(reply)); });
  }

  kj::Promise<void> Send(Response& response, Reply reply) {
    kj::HttpHeaders headers(table_);
    if (!reply.location.empty()) headers.set(kj::HttpHeaderId::LOCATION, reply.location);
    headers.set(kj::HttpHeaderId::CONTENT_TYPE, "text/html; charset=utf-8");
    // No script runs in any page, whatever a renderer returned; images only inline.
    headers.add("Content-Security-Policy",
                "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    headers.add("X-Content-Type-Options", "nosniff");
    headers.add("Cache-Control", "no-store");
    auto body = kj::heap<std::string>(std::move(reply.body));
    const char* text = reply.status == 200 ? "OK" : reply.status == 303 ? "See Other" : "Error";
    auto stream = response.send(reply.status, text, headers,
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
          "[--render-timeout SECONDS] [--max-tabs N] [--memory MIB] [--cpu SECONDS] "
          "[--audit] DIR\n");
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
    } else if (a == "--render-timeout" && value(&v) && v >= 1) {
      options.render_timeout = absl::Seconds(v);
    } else if (a == "--max-tabs" && value(&v) && v >= 1 && v <= 4096) {
      options.max_tabs = v;
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
  // Renderers are forked from this process and inherit its address space, which counts
  // against their RLIMIT_AS (--memory): glibc's 64 MiB arena per request thread grew it
  // past the limit (a renderer spawned then could not even start a thread).
  mallopt(M_ARENA_MAX, 2);
  if (argc < 2 || std::string(argv[1]) != "serve") return vow::renderer::Usage();
  try {
    return vow::renderer::Serve(argc, argv);
  } catch (const kj::Exception& e) {
    fprintf(stderr, "vow_view: %s\n", e.getDescription().cStr());
    return 1;
  }
}
