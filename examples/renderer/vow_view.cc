// vow_view: preview untrusted documents in a web UI, each rendered by a locked renderer
// worker. The process itself is the "browser": it owns the HTTP socket (127.0.0.1 only),
// the files and the renderers (see browser.h).
//
//   vow_view serve [--port P] [--spares N] [--wall-time S] [--render-timeout S]
//                  [--max-tabs N] [--memory MiB] [--cpu S] [--audit] DIR
//
// Routes: GET  /                  the file list of DIR
//         POST /view/NAME         opens a tab for NAME (leases it a warm renderer) and
//                                 redirects (303) to it
//         GET  /tab/ID            the tab: its document rendered by the tab's renderer
//                                 (?page=N for PDF)
//         POST /tab/ID?reload=1   after a crash: a fresh renderer, then the tab
//         POST /tab/ID/close      closes the tab and ends its renderer
//         GET  /about:renderers   every tab's renderer: tab, pid, document, state, memory,
//                                 requests, violations
// With --test-hooks (tests only) /tab/ID?test=segv|open|socket|hang|memory|spin makes the
// tab's renderer die in that way.
//
// Who may ask: any web page the user's browser shows can send requests to 127.0.0.1
// (<img src>, a form) and, by DNS rebinding, read answers under a name of its own. So,
// like Jupyter, every request needs a token made at start (128 random bits, in the URL
// printed at start, then in a cookie: HttpOnly, SameSite=Strict, named after the port);
// its Host header must be 127.0.0.1:PORT or localhost:PORT (rebinding); a browser's
// Sec-Fetch-Site must say same-origin or none (typed in) and an Origin must be this
// server's; what opens or ends a renderer is POST only. Each refusal is a 403 (405 for a
// GET of a POST route) whose body says what was wrong, and nothing is opened.
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <sys/random.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <memory>
#include <optional>
#include <thread>

#include <kj/async-io.h>
#include <kj/compat/http.h>
#include <kj/compat/url.h>
#include <kj/debug.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "examples/renderer/browser.h"

namespace vow::renderer {
namespace {

struct Reply {
  unsigned status = 200;
  std::string body;
  std::string location;  // non-empty: a 303 redirect there
  std::string set_cookie;  // non-empty: a Set-Cookie header
};

// The header ids vow_view reads beyond kj's built-in ones.
struct HeaderIds {
  kj::HttpHeaderId origin;
  kj::HttpHeaderId cookie;
  kj::HttpHeaderId sec_fetch_site;
  kj::HttpHeaderId set_cookie;
};

// Compares without stopping at the first difference.
bool SameToken(absl::string_view a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < b.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

class Service final : public kj::HttpService {
 public:
  Service(Browser& browser, kj::HttpHeaderTable& table, HeaderIds ids, std::string token,
          bool test_hooks)
      : browser_(browser), table_(table), ids_(ids), token_(std::move(token)),
        test_hooks_(test_hooks) {}

  // Set once the port is known (before the first request).
  void SetPort(unsigned port) {
    port_ = port;
    cookie_name_ = absl::StrCat("vow_view_token_", port);
  }

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url,
                            const kj::HttpHeaders& headers, kj::AsyncInputStream&,
                            Response& response) override {
    if (method != kj::HttpMethod::GET && method != kj::HttpMethod::POST) {
      return Send(response, {405, "405: only GET and POST"});
    }
    const bool post = method == kj::HttpMethod::POST;
    KJ_IF_MAYBE(parsed, kj::Url::tryParse(url, kj::Url::HTTP_REQUEST)) {
      bool token_in_query = false;
      std::string refused = Refusal(headers, *parsed, &token_in_query);
      if (!refused.empty()) return Send(response, {403, std::move(refused)});
      // The token came in the URL (the one printed at start): from now on the cookie
      // carries it, so the pages' own links need none.
      std::string set_cookie;
      if (token_in_query) {
        set_cookie = absl::StrCat(cookie_name_, "=", token_,
                                  "; Path=/; HttpOnly; SameSite=Strict");
      }
      return Route(post, *parsed, response, std::move(set_cookie));
    }
    return Send(response, {404, "<!doctype html><p>not found</p>"});
  }

 private:
  // Why this request is refused ("403: ..."), or "" if it may go on. Sets
  // `*token_in_query` when the token came as ?token=.
  std::string Refusal(const kj::HttpHeaders& headers, const kj::Url& url,
                      bool* token_in_query) const {
    // DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends
    // its own name here.
    const std::string ours_ip = absl::StrCat("127.0.0.1:", port_);
    const std::string ours_name = absl::StrCat("localhost:", port_);
    kj::StringPtr host = headers.get(kj::HttpHeaderId::HOST).orDefault("");
    if (host != ours_ip.c_str() && host != ours_name.c_str()) {
      return absl::StrCat("403: the Host header is \"", std::string(host.cStr()).substr(0, 256),
                          "\", not ", ours_ip, " or ", ours_name,
                          " (DNS rebinding?): vow_view answers only its own address");
    }
    KJ_IF_MAYBE(site, headers.get(ids_.sec_fetch_site)) {
      if (*site != "same-origin" && *site != "none") {
        return absl::StrCat("403: a request from another site (Sec-Fetch-Site: ",
                            std::string(site->cStr()).substr(0, 64),
                            "): vow_view answers only its own pages and typed URLs");
      }
    }
    KJ_IF_MAYBE(origin, headers.get(ids_.origin)) {
      if (*origin != absl::StrCat("http://", ours_ip).c_str() &&
          *origin != absl::StrCat("http://", ours_name).c_str()) {
        return absl::StrCat("403: a request from another origin (Origin: ",
                            std::string(origin->cStr()).substr(0, 256), ")");
      }
    }
    bool any = false;
    for (const auto& q : url.query) {
      if (q.name != "token") continue;
      any = true;
      if (SameToken(absl::string_view(q.value.cStr(), q.value.size()), token_)) {
        *token_in_query = true;
        return "";
      }
    }
    KJ_IF_MAYBE(cookies, headers.get(ids_.cookie)) {
      for (absl::string_view c : absl::StrSplit(absl::string_view(cookies->cStr()), ';')) {
        c = absl::StripAsciiWhitespace(c);
        if (!absl::ConsumePrefix(&c, cookie_name_) || !absl::ConsumePrefix(&c, "=")) continue;
        any = true;
        if (SameToken(c, token_)) return "";
      }
    }
    return any ? "403: wrong token: use the URL vow_view printed when it started"
               : "403: no token: open the URL vow_view printed when it started "
                 "(http://127.0.0.1:PORT/?token=...)";
  }

  // Serves an accepted request. `set_cookie`: the Set-Cookie value of the answer, if any.
  kj::Promise<void> Route(bool post, kj::Url& parsed, Response& response,
                          std::string set_cookie) {
    auto& path = parsed.path;
    auto get_only = [&]() -> std::optional<Reply> {
      if (post) return Reply{405, "405: GET only"};
      return std::nullopt;
    };
    auto post_only = [&](const char* what) -> std::optional<Reply> {
      if (!post) return Reply{405, absl::StrCat("405: ", what, " is POST only")};
      return std::nullopt;
    };
    if (path.size() == 0) {
      if (auto r = get_only()) return Send(response, *std::move(r));
      return Send(response, {200, browser_.FileListHtml(), "", set_cookie});
    }
    if (path.size() == 1 && path[0] == "about:renderers") {
      if (auto r = get_only()) return Send(response, *std::move(r));
      return Send(response, {200, browser_.AboutHtml(), "", set_cookie});
    }
    if (path.size() == 2 && path[0] == "view") {
      if (auto r = post_only("opening a tab")) return Send(response, *std::move(r));
      std::string name(path[1].cStr(), path[1].size());
      return OffLoop(response, [this, name, set_cookie]() {
        absl::StatusOr<TabId> tab = browser_.OpenTab(name);
        if (!tab.ok()) {
          Page p;
          p.kind = Page::Kind::kError;
          p.message = std::string(tab.status().message());
          return Reply{404, browser_.TabHtml(0, name, 0, p), "", set_cookie};
        }
        return Reply{303, "", absl::StrCat("/tab/", *tab), set_cookie};
      });
    }
    TabId tab = 0;
    if ((path.size() == 2 || (path.size() == 3 && path[2] == "close")) && path[0] == "tab" &&
        absl::SimpleAtoi(path[1].cStr(), &tab) && tab > 0) {
      if (path.size() == 3) {
        if (auto r = post_only("closing a tab")) return Send(response, *std::move(r));
        return OffLoop(response, [this, tab, set_cookie]() {
          bool closed = browser_.CloseTab(tab);
          return Reply{closed ? 200u : 404u,
                       absl::StrCat("<!doctype html><title>vow_view</title><p id=\"closed\">",
                                    closed ? "tab closed" : "no such tab",
                                    "</p><p><a href=\"/\">files</a></p>"),
                       "", set_cookie};
        });
      }
      uint32_t page = 0;
      bool reload = false;
      std::optional<TestAct> test;
      for (auto& q : parsed.query) {
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
      // A reload leases a fresh renderer: POST only. A POST without it is a plain render.
      if (reload) {
        if (auto r = post_only("reloading a tab")) return Send(response, *std::move(r));
      }
      return OffLoop(response, [this, tab, page, reload, test, set_cookie]() {
        Page p = browser_.Render(tab, page, reload, test);
        std::string name = "(closed tab)";
        for (const TabInfo& t : browser_.Tabs()) {
          if (t.id == tab) name = t.document;
        }
        return Reply{p.kind == Page::Kind::kError ? 404u : 200u,
                     browser_.TabHtml(tab, name, page, p), "", set_cookie};
      });
    }
    return Send(response, {404, "<!doctype html><p>not found</p>"});
  }

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
    // Refusals are a line of text.
    headers.set(kj::HttpHeaderId::CONTENT_TYPE, reply.status == 403 || reply.status == 405
                                                    ? "text/plain; charset=utf-8"
                                                    : "text/html; charset=utf-8");
    if (!reply.set_cookie.empty()) headers.set(ids_.set_cookie, reply.set_cookie);
    // No script runs in any page, whatever a renderer returned; images only inline; forms
    // post only here.
    headers.add("Content-Security-Policy",
                "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    headers.add("X-Content-Type-Options", "nosniff");
    headers.add("Cache-Control", "no-store");
    auto body = kj::heap<std::string>(std::move(reply.body));
    const char* text = reply.status == 200   ? "OK"
                       : reply.status == 303 ? "See Other"
                       : reply.status == 403 ? "Forbidden"
                       : reply.status == 405 ? "Method Not Allowed"
                                             : "Error";
    auto stream = response.send(reply.status, text, headers,
                                static_cast<uint64_t>(body->size()));
    auto write = stream->write(body->data(), body->size());
    return write.attach(kj::mv(stream), kj::mv(body));
  }

  Browser& browser_;
  kj::HttpHeaderTable& table_;
  const HeaderIds ids_;
  const std::string token_;  // 32 hex digits
  const bool test_hooks_;
  unsigned port_ = 0;
  std::string cookie_name_;
};

constexpr char kUsage[] =
    "usage: vow_view serve [--port P] [--spares N] [--wall-time SECONDS] "
    "[--render-timeout SECONDS] [--max-tabs N] [--memory MIB] [--cpu SECONDS] "
    "[--audit] DIR\n";

int Usage() {
  fputs(kUsage, stderr);
  return 2;
}

int Help() {
  fputs(kUsage, stdout);
  fputs("\nServes a web UI on 127.0.0.1:P (8080; 0: any free port) listing the files of DIR;\n"
        "each document opened is rendered in a tab of its own by a locked renderer worker.\n"
        "At start it prints the URL to open: http://127.0.0.1:P/?token=TOKEN. The token (128\n"
        "random bits, new at every start) is needed by every request, in that URL or in the\n"
        "cookie the first page sets; requests with another Host than 127.0.0.1:P or\n"
        "localhost:P, or from another site (Sec-Fetch-Site, Origin), are refused (403), and\n"
        "what opens or ends a renderer is POST only: a web page in your browser cannot make\n"
        "vow_view open tabs or read its pages.\n"
        "  --spares N           warm renderers per pool (2)\n"
        "  --wall-time S        a renderer's whole life (1800)\n"
        "  --render-timeout S   one rendering, then the renderer is killed (30)\n"
        "  --max-tabs N         open tabs at most (128)\n"
        "  --memory MIB         RLIMIT_AS per renderer, on top of what it inherits (1024)\n"
        "  --cpu S              RLIMIT_CPU per renderer (10)\n"
        "  --audit              the broker's audit log on stderr\n",
        stdout);
  return 0;
}

// 128 bits from the kernel's random source, as 32 hex digits.
std::string MakeToken() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      perror("vow_view: getrandom");
      exit(1);
    }
    got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
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
  kj::HttpHeaderTable::Builder builder;
  HeaderIds ids{builder.add("Origin"), builder.add("Cookie"), builder.add("Sec-Fetch-Site"),
                builder.add("Set-Cookie")};
  kj::Own<kj::HttpHeaderTable> table = builder.build();
  const std::string token = MakeToken();
  Service service(**browser, *table, ids, token, hooks);
  kj::HttpServer server(io.provider->getTimer(), *table, service);
  auto address = io.provider->getNetwork().parseAddress("127.0.0.1", port).wait(io.waitScope);
  auto listener = address->listen();
  service.SetPort(listener->getPort());
  printf("vow_view: serving %s on http://127.0.0.1:%u/?token=%s\n", options.dir.c_str(),
         listener->getPort(), token.c_str());
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
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    return vow::renderer::Help();
  }
  if (argc < 2 || std::string(argv[1]) != "serve") return vow::renderer::Usage();
  try {
    return vow::renderer::Serve(argc, argv);
  } catch (const kj::Exception& e) {
    fprintf(stderr, "vow_view: %s\n", e.getDescription().cStr());
    return 1;
  }
}
