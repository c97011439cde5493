// The renderer app's browser, driven through its C++ API (the HTTP layer is tested in a
// real Chromium by chromium_test.sh). Documents are generated here; each renderer is a
// real locked worker.
#include "examples/renderer/browser.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <thread>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "examples/parsers/image.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vow::renderer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSvg[] =
    R"(<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80">)"
    R"(<rect width="120" height="80" fill="#3366cc"/>)"
    R"(<text x="10" y="50" font-family="DejaVu Sans" font-size="30" fill="#ffffff">vow</text></svg>)";

// The same picture with text that tries to include /etc/passwd, and an image from it.
constexpr char kSvgPasswd[] =
    R"(<svg xmlns="http://www.w3.org/2000/svg" xmlns:xi="http://www.w3.org/2001/XInclude")"
    R"( xmlns:xlink="http://www.w3.org/1999/xlink" width="120" height="80">)"
    R"(<rect width="120" height="80" fill="#3366cc"/>)"
    R"(<image x="0" y="0" width="120" height="80" xlink:href="file:///etc/passwd"/>)"
    R"(<text x="2" y="50" font-family="DejaVu Sans" font-size="10" fill="#ffffff">)"
    R"(<xi:include href="file:///etc/passwd" parse="text"/></text></svg>)";
constexpr char kSvgEmptyText[] =
    R"(<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80">)"
    R"(<rect width="120" height="80" fill="#3366cc"/>)"
    R"(<text x="2" y="50" font-family="DejaVu Sans" font-size="10" fill="#ffffff"></text></svg>)";
constexpr char kSvgNet[] =
    R"(<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink")"
    R"( width="120" height="80"><rect width="120" height="80" fill="#3366cc"/>)"
    R"(<image width="120" height="80" xlink:href="http://198.51.100.7/x.png"/></svg>)";
constexpr char kSvgBlue[] =
    R"(<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80">)"
    R"(<rect width="120" height="80" fill="#3366cc"/></svg>)";

std::string BillionLaughs() {
  std::string s = "<?xml version=\"1.0\"?>\n<!DOCTYPE svg [\n<!ENTITY lol \"lollollollollol\">\n";
  for (int i = 1; i <= 10; ++i) {
    std::string prev = i == 1 ? "lol" : absl::StrCat("lol", i - 1);
    s += absl::StrCat("<!ENTITY lol", i, " \"");
    for (int k = 0; k < 10; ++k) s += absl::StrCat("&", prev, ";");
    s += "\">\n";
  }
  s += "]>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"100\">"
       "<text x=\"0\" y=\"20\">&lol10;</text></svg>\n";
  return s;
}

uint32_t Crc(const std::string& type_and_data) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(type_and_data.data()),
                                     type_and_data.size()));
}

void PutU32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>(v >> (8 * i)));
}

std::string Chunk(const std::string& type, const std::string& data) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(data.size()));
  std::string body = type + data;
  out += body;
  PutU32(&out, Crc(body));
  return out;
}

// A real decompression bomb: a 1-bit 40000x40000 gray PNG of zeros, ~200 MB of rows
// deflated to a few hundred KiB (1.6 Gpx of RGBA if decoded).
std::string PngBomb() {
  const uint32_t side = 40000;
  std::string ihdr;
  PutU32(&ihdr, side);
  PutU32(&ihdr, side);
  ihdr += std::string("\x01\x00\x00\x00\x00", 5);  // bit depth 1, gray, deflate, none, none
  z_stream z{};
  deflateInit(&z, 9);
  std::string row(1 + side / 8, '\0'), out;
  std::string buf(1 << 16, '\0');
  for (uint32_t y = 0; y < side; ++y) {
    z.next_in = reinterpret_cast<Bytef*>(row.data());
    z.avail_in = row.size();
    int flush = y + 1 == side ? Z_FINISH : Z_NO_FLUSH;
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf.data());
      z.avail_out = buf.size();
      deflate(&z, flush);
      out.append(buf.data(), buf.size() - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  return std::string("\x89PNG\r\n\x1a\n", 8) + Chunk("IHDR", ihdr) + Chunk("IDAT", out) +
         Chunk("IEND", "");
}

// A one-page PDF with a line of text in Helvetica (poppler finds a substitute font through
// fontconfig, through the broker).
// `catalog` and `page` are extra entries of the catalog and the page dictionaries,
// `more` extra objects (numbered from 6).
std::string Pdf(const std::string& catalog = "", const std::string& page = "",
                const std::vector<std::string>& more = {}) {
  std::string content = "BT /F1 36 Tf 40 100 Td (Hello vow) Tj ET";
  std::vector<std::string> objs = {
      absl::StrCat("<< /Type /Catalog /Pages 2 0 R ", catalog, ">>"),
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      absl::StrCat("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R "
                   "/Resources << /Font << /F1 5 0 R >> >> ",
                   page, ">>"),
      absl::StrCat("<< /Length ", content.size(), " >>\nstream\n", content, "\nendstream"),
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"};
  objs.insert(objs.end(), more.begin(), more.end());
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objs.size(); ++i) {
    offsets.push_back(pdf.size());
    absl::StrAppend(&pdf, i + 1, " 0 obj\n", objs[i], "\nendobj\n");
  }
  size_t xref = pdf.size();
  absl::StrAppend(&pdf, "xref\n0 ", objs.size() + 1, "\n0000000000 65535 f \n");
  for (size_t off : offsets) pdf += absl::StrFormat("%010d 00000 n \n", off);
  absl::StrAppend(&pdf, "trailer\n<< /Size ", objs.size() + 1, " /Root 1 0 R >>\nstartxref\n",
                  xref, "\n%%EOF\n");
  return pdf;
}

// A listener on 127.0.0.1 that the hostile PDF's actions name; nothing should connect.
int g_listener_port = 0;

// The same page as Pdf(), with every kind of action a viewer might run: JavaScript on
// open (which would fetch from the test's listener and write a file), a document-level
// JavaScript name tree, a Launch of /bin/sh creating a marker file, SubmitForm and URI to
// the listener, a page-open additional action, and a link annotation (no border) over the
// whole page that launches.
std::string ActivePdf() {
  const std::string url = absl::StrCat("http://127.0.0.1:", g_listener_port, "/pwned");
  const std::string marker = absl::StrCat(::testing::TempDir(), "/pdf_launched");
  return Pdf("/OpenAction 6 0 R /Names << /JavaScript << /Names [(x) 7 0 R] >> >> ",
             "/AA << /O 8 0 R >> /Annots [9 0 R] ",
             {absl::StrCat("<< /S /JavaScript /JS (app.launchURL\\(\"", url,
                           "\"\\); this.exportDataObject\\({cName: \"x\", nLaunch: 2}\\);) "
                           "/Next 10 0 R >>"),
              absl::StrCat("<< /S /JavaScript /JS (app.alert\\(1\\)) >>"),
              absl::StrCat("<< /S /Launch /F (/bin/sh) /Win << /F (cmd.exe) >> "
                           "/P (-c \"touch ", marker, "\") >>"),
              "<< /Type /Annot /Subtype /Link /Rect [0 0 300 200] /Border [0 0 0] "
              "/A 8 0 R >>",
              absl::StrCat("<< /S /SubmitForm /F << /FS /URL /F (", url, ") >> /Next 11 0 R >>"),
              absl::StrCat("<< /S /URI /URI (", url, ") >>")});
}

class BrowserTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // As vow_view does: renderers are forked from this process and inherit its address
    // space, which counts against their RLIMIT_AS.
    mallopt(M_ARENA_MAX, 2);
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listener_ >= 0 && bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        listen(listener_, 8) == 0 &&
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      g_listener_port = ntohs(addr.sin_port);
    }
    char tmpl[] = "/tmp/vow_view_test.XXXXXX";
    dir_ = new std::string(mkdtemp(tmpl));
    Write("doc.md",
          "# Hello\n\nSome *text* and [a link](javascript:alert(1)).\n\n"
          "<script>alert('owned')</script>\n\n<img src=x onerror=alert(2)>\n");
    Write("pic.svg", kSvg);
    Write("passwd.svg", kSvgPasswd);
    Write("empty_text.svg", kSvgEmptyText);
    Write("net.svg", kSvgNet);
    Write("blue.svg", kSvgBlue);
    Write("lol.svg", BillionLaughs());
    Write("bomb.png", PngBomb());
    Write("doc.pdf", Pdf());
    Write("active.pdf", ActivePdf());
    std::string rgba;
    for (int i = 0; i < 16 * 8; ++i) rgba += std::string("\xff\x00\x00\xff", 4);
    Write("red.png", *parsers::EncodePngRgba(16, 8, rgba));
    Write("notes.txt", "no renderer for this");
  }
  static void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(*dir_ + "/" + name, std::ios::binary) << bytes;
  }
  static BrowserOptions Defaults() {
    BrowserOptions o;
    o.spares = 1;
    return o;
  }
  static std::unique_ptr<Browser> Make(BrowserOptions o = Defaults()) {
    o.dir = *dir_;
    o.test_hooks = true;
    auto b = Browser::Create(o);
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *std::move(b) : nullptr;
  }
  // Opens a tab for `name` and renders it once.
  static Page Show(Browser& b, const std::string& name, uint32_t page = 0) {
    absl::StatusOr<TabId> tab = b.OpenTab(name);
    if (!tab.ok()) {
      Page p;
      p.kind = Page::Kind::kError;
      p.message = std::string(tab.status().message());
      return p;
    }
    return b.Render(*tab, page, false);
  }
  static parsers::DecodedImage Decode(const Page& p) {
    auto img = parsers::DecodeImageBytes(p.png, 1 << 24, true);
    EXPECT_TRUE(img.ok()) << img.status();
    return img.ok() ? *img : parsers::DecodedImage();
  }
  static std::string* dir_;
  static int listener_;
};
int BrowserTest::listener_ = -1;
std::string* BrowserTest::dir_ = nullptr;

TEST_F(BrowserTest, ListsDocuments) {
  auto b = Make();
  EXPECT_THAT(b->ListDocuments(), ::testing::Contains("doc.md"));
  EXPECT_THAT(b->FileListHtml(), HasSubstr("action=\"/view/pic.svg\""));
}

TEST_F(BrowserTest, MarkdownIsSanitizedHtml) {
  auto b = Make();
  Page p = Show(*b, "doc.md");
  ASSERT_EQ(p.kind, Page::Kind::kHtml) << p.message;
  EXPECT_THAT(p.html, HasSubstr("<h1>Hello</h1>"));
  EXPECT_THAT(p.html, HasSubstr("<em>text</em>"));
  EXPECT_THAT(p.html, Not(HasSubstr("<script")));
  EXPECT_THAT(p.html, Not(HasSubstr("javascript:")));
  EXPECT_THAT(p.html, Not(HasSubstr("onerror")));
  EXPECT_GT(p.pid, 0);
  std::string tab = b->TabHtml(p.tab, "doc.md", 0, p);
  EXPECT_THAT(p.notice, HasSubstr("Raw HTML was removed from this document 2 times"));
  EXPECT_THAT(tab, HasSubstr("<p id=\"notice\">Raw HTML was removed"));
  EXPECT_THAT(tab, HasSubstr("<article id=\"document\"><h1>Hello</h1>"));
  EXPECT_THAT(tab, HasSubstr(absl::StrCat("action=\"/tab/", p.tab, "/close\"")));
}

TEST_F(BrowserTest, SvgPngAndPdfRenderToPixels) {
  auto b = Make();
  Page svg = Show(*b, "pic.svg");
  ASSERT_EQ(svg.kind, Page::Kind::kPng) << svg.message;

  EXPECT_EQ(svg.width, 120u);
  EXPECT_EQ(svg.height, 80u);
  parsers::DecodedImage img = Decode(svg);
  ASSERT_EQ(img.rgba.size(), 120u * 80 * 4);
  EXPECT_EQ(img.rgba.substr(0, 4), std::string("\x33\x66\xcc\xff", 4));
  // The text was drawn (fonts came through the broker): some white pixels.
  size_t white = 0;
  for (size_t i = 0; i < img.rgba.size(); i += 4) white += img.rgba.substr(i, 3) == "\xff\xff\xff";
  EXPECT_GT(white, 30u);

  Page png = Show(*b, "red.png");
  ASSERT_EQ(png.kind, Page::Kind::kPng) << png.message;
  EXPECT_EQ(Decode(png).rgba.substr(0, 4), std::string("\xff\x00\x00\xff", 4));

  Page pdf = Show(*b, "doc.pdf");
  ASSERT_EQ(pdf.kind, Page::Kind::kPng) << pdf.message;
  EXPECT_EQ(pdf.pages, 1u);
  EXPECT_EQ(pdf.width, 400u);  // 300 pt at 96 dpi
  parsers::DecodedImage page = Decode(pdf);
  size_t dark = 0;
  for (size_t i = 0; i < page.rgba.size(); i += 4) dark += static_cast<uint8_t>(page.rgba[i]) < 100;
  EXPECT_GT(dark, 100u) << "the PDF's text was not drawn";
  Page missing = Show(*b, "doc.pdf", 5);
  EXPECT_EQ(missing.kind, Page::Kind::kRejected);
  EXPECT_THAT(missing.message, HasSubstr("page 6 of 1"));

  EXPECT_FALSE(b->OpenTab("notes.txt").ok());
  EXPECT_FALSE(b->OpenTab("../etc/passwd").ok());
  EXPECT_FALSE(b->OpenTab("no_such.md").ok());
  EXPECT_EQ(b->Render(12345, 0, false).kind, Page::Kind::kError);
}

TEST_F(BrowserTest, SvgCannotReadHostFilesOrTheNetwork) {
  auto b = Make();
  Page evil = Show(*b, "passwd.svg");
  Page clean = Show(*b, "empty_text.svg");
  ASSERT_EQ(clean.kind, Page::Kind::kPng) << clean.message;
  // Either refused, or drawn with nothing of /etc/passwd in it: the same pixels as the
  // picture whose text is empty.
  if (evil.kind == Page::Kind::kPng) {
    EXPECT_EQ(Decode(evil).rgba, Decode(clean).rgba);
  } else {
    EXPECT_EQ(evil.kind, Page::Kind::kRejected) << evil.message;
  }
  Page net = Show(*b, "net.svg");
  Page blue = Show(*b, "blue.svg");
  ASSERT_EQ(blue.kind, Page::Kind::kPng);
  if (net.kind == Page::Kind::kPng) {
    EXPECT_EQ(Decode(net).rgba, Decode(blue).rgba);
  } else {
    EXPECT_EQ(net.kind, Page::Kind::kRejected) << net.message;
  }
  for (const AuditEntry& e : b->broker().audit().Entries()) {
    EXPECT_FALSE(e.allowed && absl::StrContains(e.request, "/etc/passwd")) << e.request;
    EXPECT_FALSE(e.allowed && absl::StrContains(e.request, "connect")) << e.request;
  }
  // And the pages say so.
  EXPECT_THAT(evil.notice, HasSubstr("outside resources (file:)"));
  EXPECT_THAT(net.notice, HasSubstr("outside resources (http:)"));
  EXPECT_EQ(blue.notice, "");
  EXPECT_EQ(clean.notice, "");
  if (evil.kind == Page::Kind::kPng) {
    EXPECT_THAT(b->TabHtml(evil.tab, "passwd.svg", 0, evil),
                HasSubstr("<p id=\"notice\">This SVG refers to outside resources"));
  }
}

// A PDF that asks to run JavaScript, launch a shell, submit a form and open URLs: drawn
// as the same page without them (nothing is run: poppler draws, the renderer is locked to
// stdio), the page says what it contained, nothing reached the listener, no file was made.
TEST_F(BrowserTest, APdfsJavaScriptAndLaunchActionsAreNeverRun) {
  ASSERT_NE(g_listener_port, 0);
  auto b = Make();
  Page plain = Show(*b, "doc.pdf");
  Page active = Show(*b, "active.pdf");
  ASSERT_EQ(plain.kind, Page::Kind::kPng) << plain.message;
  ASSERT_EQ(active.kind, Page::Kind::kPng) << active.message;
  EXPECT_EQ(Decode(active).rgba, Decode(plain).rgba);
  EXPECT_EQ(plain.notice, "");
  for (const char* name : {"/JavaScript", "/JS", "/Launch", "/SubmitForm", "/URI"}) {
    EXPECT_THAT(active.notice, HasSubstr(name));
  }
  EXPECT_THAT(b->TabHtml(active.tab, "active.pdf", 0, active),
              HasSubstr("<p id=\"notice\">This PDF contains active content"));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_LT(accept(listener_, nullptr, nullptr), 0) << "something connected to the listener";
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_NE(access((::testing::TempDir() + "/pdf_launched").c_str(), F_OK), 0);
  for (const AuditEntry& e : b->broker().audit().Entries()) {
    EXPECT_FALSE(e.allowed && absl::StrContains(e.request, "connect")) << e.request;
    EXPECT_FALSE(absl::StrContains(e.request, "/bin/sh")) << e.request;
  }
  for (const RendererInfo& r : b->Renderers()) EXPECT_EQ(r.violations, 0u) << r.document;
}

TEST(SvgOutsideReferencesTest, ReferencesNotNamespaces) {
  EXPECT_THAT(SvgOutsideReferences(kSvgBlue), ::testing::IsEmpty());
  EXPECT_THAT(SvgOutsideReferences(kSvgPasswd), ::testing::ElementsAre("file:"));
  EXPECT_THAT(SvgOutsideReferences(kSvgNet), ::testing::ElementsAre("http:"));
  EXPECT_THAT(SvgOutsideReferences("<a href = 'HTTPS://x'/><g style=\"fill:url( ftp://y)\"/>"),
              ::testing::ElementsAre("https:", "ftp:"));
  EXPECT_THAT(SvgOutsideReferences("<!DOCTYPE s [<!ENTITY e SYSTEM \"/etc/passwd\">]><svg/>"),
              ::testing::ElementsAre("external entity"));
  EXPECT_THAT(SvgOutsideReferences(BillionLaughs()), ::testing::IsEmpty());
  EXPECT_THAT(SvgOutsideReferences("<use href=\"#local\"/><a href=\"file:"),
              ::testing::ElementsAre("file:"));  // an unterminated value at the end
}

TEST(PdfActiveContentTest, NamesEndAtDelimiters) {
  EXPECT_THAT(PdfActiveContent("<< /S /JavaScript /JS (x) >>"),
              ::testing::ElementsAre("/JavaScript", "/JS"));
  EXPECT_THAT(PdfActiveContent("<</S/Launch/F(x)>>"), ::testing::ElementsAre("/Launch"));
  EXPECT_THAT(PdfActiveContent("/JSON /URIs /Launcher"), ::testing::IsEmpty());
  EXPECT_THAT(PdfActiveContent("/URI"), ::testing::ElementsAre("/URI"));
}

TEST_F(BrowserTest, BillionLaughsAndDecompressionBombAreRefused) {
  auto b = Make();
  absl::Time start = absl::Now();
  Page lol = Show(*b, "lol.svg");
  EXPECT_NE(lol.kind, Page::Kind::kPng);
  EXPECT_NE(lol.kind, Page::Kind::kError);
  Page bomb = Show(*b, "bomb.png");
  EXPECT_EQ(bomb.kind, Page::Kind::kRejected) << bomb.message;
  EXPECT_THAT(bomb.message, HasSubstr("40000"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_EQ(Show(*b, "pic.svg").kind, Page::Kind::kPng);
}

// Waits until the pool has reaped `id` (its report arrives on the pool's thread).
RendererInfo WaitEnded(Browser& b, WorkerId id) {
  RendererInfo found;
  for (absl::Time until = absl::Now() + absl::Seconds(5); absl::Now() < until;) {
    for (const RendererInfo& r : b.Renderers()) {
      if (r.id == id) found = r;
    }
    if (found.id == id && !found.live) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return found;
}

TEST_F(BrowserTest, ATabKeepsItsRenderer) {
  auto b = Make();
  absl::StatusOr<TabId> tab = b->OpenTab("doc.pdf");
  ASSERT_TRUE(tab.ok()) << tab.status();
  Page first = b->Render(*tab, 0, false);
  ASSERT_EQ(first.kind, Page::Kind::kPng) << first.message;
  Page again = b->Render(*tab, 0, false);
  Page reloaded = b->Render(*tab, 0, /*reload=*/true);  // a live tab keeps its renderer
  Page missing = b->Render(*tab, 3, false);
  EXPECT_EQ(again.kind, Page::Kind::kPng);
  EXPECT_EQ(reloaded.kind, Page::Kind::kPng);
  EXPECT_EQ(missing.kind, Page::Kind::kRejected);
  for (const Page& p : {again, reloaded, missing}) {
    EXPECT_EQ(p.renderer, first.renderer);
    EXPECT_EQ(p.pid, first.pid);
  }
  // Another tab of the same document has a renderer of its own.
  Page other = Show(*b, "doc.pdf");
  EXPECT_NE(other.renderer, first.renderer);
  EXPECT_NE(other.pid, first.pid);
  std::vector<TabInfo> tabs = b->Tabs();
  ASSERT_EQ(tabs.size(), 2u);
  EXPECT_EQ(tabs[0].id, *tab);
  EXPECT_EQ(tabs[0].pid, first.pid);
  EXPECT_EQ(tabs[0].document, "doc.pdf");
  for (const RendererInfo& r : b->Renderers()) {
    if (r.id != first.renderer) continue;
    EXPECT_TRUE(r.live);
    EXPECT_EQ(r.tab, *tab);
    EXPECT_EQ(r.requests, 4u);
    EXPECT_EQ(r.state, "idle");
    EXPECT_GT(r.rss_kb, 0u);
  }
  EXPECT_THAT(b->AboutHtml(), HasSubstr(absl::StrCat("<td>", *tab, "</td><td>", first.pid,
                                                     "</td><td>doc.pdf</td><td>graphics</td>"
                                                     "<td>idle</td>")));
  // Closing the tab ends its renderer.
  EXPECT_TRUE(b->CloseTab(*tab));
  EXPECT_FALSE(b->CloseTab(*tab));
  EXPECT_EQ(b->Render(*tab, 0, false).kind, Page::Kind::kError);
  RendererInfo closed = WaitEnded(*b, first.renderer);
  EXPECT_FALSE(closed.live);
  EXPECT_EQ(closed.state, "ended: tab closed");
  EXPECT_EQ(b->Tabs().size(), 1u);
}

TEST_F(BrowserTest, CrashShowsTheReasonAndReloadRecovers) {
  auto b = Make();
  absl::StatusOr<TabId> tab = b->OpenTab("doc.md");
  ASSERT_TRUE(tab.ok()) << tab.status();
  Page first = b->Render(*tab, 0, false);
  ASSERT_EQ(first.kind, Page::Kind::kHtml);
  Page segv = b->Render(*tab, 0, false, TestAct::kSegv);
  ASSERT_EQ(segv.kind, Page::Kind::kCrashed);
  EXPECT_EQ(segv.renderer, first.renderer);  // the tab's own renderer crashed
  EXPECT_THAT(segv.message, HasSubstr("SIGSEGV"));
  std::string html = b->TabHtml(*tab, "doc.md", 0, segv);
  EXPECT_THAT(html, HasSubstr("This document crashed"));
  EXPECT_THAT(html, HasSubstr(absl::StrCat("action=\"/tab/", *tab, "?reload=1\"")));
  // Until a reload the tab stays crashed, and no renderer is leased to it.
  Page still = b->Render(*tab, 0, false);
  EXPECT_EQ(still.kind, Page::Kind::kCrashed);
  EXPECT_EQ(still.message, segv.message);
  EXPECT_EQ(still.renderer, 0u);
  EXPECT_TRUE(b->Tabs()[0].crashed);
  Page again = b->Render(*tab, 0, /*reload=*/true);
  ASSERT_EQ(again.kind, Page::Kind::kHtml);
  EXPECT_NE(again.renderer, first.renderer);
  EXPECT_NE(again.pid, first.pid);
  Page after = b->Render(*tab, 0, false);
  EXPECT_EQ(after.kind, Page::Kind::kHtml);
  EXPECT_EQ(after.renderer, again.renderer);
  EXPECT_FALSE(b->Tabs()[0].crashed);

  absl::StatusOr<TabId> socket_tab = b->OpenTab("doc.md");
  ASSERT_TRUE(socket_tab.ok());
  Page socket = b->Render(*socket_tab, 0, false, TestAct::kSocket);
  ASSERT_EQ(socket.kind, Page::Kind::kCrashed);
  EXPECT_THAT(socket.message, HasSubstr("socket("));
  EXPECT_THAT(socket.message, HasSubstr("promise inet would allow it"));
  absl::StatusOr<TabId> open_tab = b->OpenTab("doc.md");
  ASSERT_TRUE(open_tab.ok());
  Page open = b->Render(*open_tab, 0, false, TestAct::kOpen);
  ASSERT_EQ(open.kind, Page::Kind::kCrashed);
  EXPECT_THAT(open.message, HasSubstr("openat(\"/etc/passwd\", O_RDONLY) refused"));

  RendererInfo r = WaitEnded(*b, socket.renderer);
  EXPECT_FALSE(r.live);
  EXPECT_EQ(r.tab, *socket_tab);
  EXPECT_EQ(r.document, "doc.md");
  EXPECT_EQ(r.requests, 1u);
  EXPECT_GE(r.violations, 1u);
  EXPECT_THAT(r.state, HasSubstr("socket("));
  std::string about = b->AboutHtml();
  EXPECT_THAT(about, HasSubstr(absl::StrCat("<td>", *socket_tab, "</td><td>", socket.pid,
                                            "</td><td>doc.md</td>")));
  EXPECT_THAT(about, HasSubstr("crashed: SIGSEGV"));
}

TEST_F(BrowserTest, TabLimit) {
  BrowserOptions o = Defaults();
  o.max_tabs = 2;
  auto b = Make(o);
  absl::StatusOr<TabId> one = b->OpenTab("doc.md");
  absl::StatusOr<TabId> two = b->OpenTab("pic.svg");
  ASSERT_TRUE(one.ok() && two.ok());
  absl::StatusOr<TabId> three = b->OpenTab("doc.md");
  ASSERT_FALSE(three.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(three.status())) << three.status();
  EXPECT_THAT(std::string(three.status().message()), HasSubstr("the limit is 2"));
  EXPECT_TRUE(b->CloseTab(*one));
  EXPECT_TRUE(b->OpenTab("doc.md").ok());
}

TEST_F(BrowserTest, ARendererThatDiesIdleCrashesItsTab) {
  BrowserOptions o = Defaults();
  o.wall_time = absl::Seconds(2);
  auto b = Make(o);
  absl::StatusOr<TabId> tab = b->OpenTab("doc.md");
  ASSERT_TRUE(tab.ok()) << tab.status();
  ASSERT_EQ(b->Render(*tab, 0, false).kind, Page::Kind::kHtml);
  absl::SleepFor(absl::Seconds(3));
  Page idle = b->Render(*tab, 0, false);
  ASSERT_EQ(idle.kind, Page::Kind::kCrashed);
  EXPECT_THAT(idle.message, HasSubstr("wall time"));
  EXPECT_EQ(b->Render(*tab, 0, true).kind, Page::Kind::kHtml);
}

TEST_F(BrowserTest, RenderTimeoutEndsAHang) {
  BrowserOptions o = Defaults();
  o.render_timeout = absl::Seconds(1);
  auto b = Make(o);
  absl::StatusOr<TabId> tab = b->OpenTab("doc.md");
  ASSERT_TRUE(tab.ok());
  absl::Time start = absl::Now();
  Page hang = b->Render(*tab, 0, false, TestAct::kHang);
  ASSERT_EQ(hang.kind, Page::Kind::kCrashed);
  EXPECT_THAT(hang.message, HasSubstr("no answer within the render time limit (1s)"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(b->Render(*tab, 0, true).kind, Page::Kind::kHtml);
}

// 100 tabs open at once, each with its own locked renderer (60 Markdown, 40 SVG: the SVG
// renderers open fontconfig's files through the broker all at the same time), on this
// 2-core machine: all render, every re-render goes to the tab's own renderer, and the
// broker keeps answering (a 101st tab, a fresh SVG renderer, renders while they are open).
TEST_F(BrowserTest, HundredTabsAtOnce) {
  constexpr int kTabs = 100;
  BrowserOptions o = Defaults();
  o.spares = 4;
  o.max_tabs = kTabs + 1;
  o.memory_bytes = 256u << 20;  // RLIMIT_AS per renderer
  o.render_timeout = absl::Seconds(60);
  auto b = Make(o);
  std::vector<TabId> tabs(kTabs);
  std::vector<Page> pages(kTabs);
  std::vector<absl::Duration> latency(kTabs);
  auto parallel = [&](const std::function<void(int)>& fn) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < kTabs; i += 4) fn(i);
      });
    }
    for (auto& th : threads) th.join();
  };
  absl::Time start = absl::Now();
  parallel([&](int i) {
    absl::StatusOr<TabId> tab = b->OpenTab(i % 5 < 3 ? "doc.md" : "pic.svg");
    ASSERT_TRUE(tab.ok()) << tab.status();
    tabs[i] = *tab;
    pages[i] = b->Render(*tab, 0, false);
  });
  absl::Duration open_all = absl::Now() - start;
  std::set<pid_t> pids;
  for (int i = 0; i < kTabs; ++i) {
    ASSERT_EQ(pages[i].kind, i % 5 < 3 ? Page::Kind::kHtml : Page::Kind::kPng)
        << "tab " << i << ": " << pages[i].message;
    pids.insert(pages[i].pid);
  }
  EXPECT_EQ(pids.size(), static_cast<size_t>(kTabs));
  EXPECT_GE(b->broker().live_workers(), static_cast<size_t>(kTabs));
  // All 100 re-render at once, each in its own renderer.
  parallel([&](int i) {
    absl::Time t0 = absl::Now();
    Page p = b->Render(tabs[i], 0, false);
    latency[i] = absl::Now() - t0;
    EXPECT_NE(p.kind, Page::Kind::kCrashed) << p.message;
    EXPECT_EQ(p.pid, pages[i].pid);
  });
  std::sort(latency.begin(), latency.end());
  // The broker still serves a fresh renderer's path calls (fontconfig) promptly.
  absl::Time t0 = absl::Now();
  Page extra = Show(*b, "pic.svg");
  absl::Duration extra_latency = absl::Now() - t0;
  EXPECT_EQ(extra.kind, Page::Kind::kPng) << extra.message;
  EXPECT_LT(extra_latency, absl::Seconds(10));
  EXPECT_LT(latency.back(), absl::Seconds(10));
  size_t live_rows = 0;
  for (const RendererInfo& r : b->Renderers()) live_rows += r.live && r.tab != 0;
  EXPECT_EQ(live_rows, static_cast<size_t>(kTabs + 1));
  uint64_t renderers_kb = 0;
  for (const RendererInfo& r : b->Renderers()) renderers_kb += r.live ? r.rss_kb : 0;
  std::ifstream status("/proc/self/status");
  std::string line, rss;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmRSS:")) rss = line;
  }
  std::cout << "100 tabs: opened and rendered in " << open_all << "; re-render p50 "
            << latency[kTabs / 2] << ", max " << latency.back() << "; 101st tab "
            << extra_latency << "; broker " << rss << "; renderers' RSS sum "
            << renderers_kb / 1024 << " MiB\n";
  // Closing them ends every renderer.
  for (const TabInfo& t : b->Tabs()) EXPECT_TRUE(b->CloseTab(t.id));
  absl::Time until = absl::Now() + absl::Seconds(20);
  while (b->broker().live_workers() > 2 * o.spares && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_LE(b->broker().live_workers(), 2 * o.spares);
}

TEST_F(BrowserTest, WallTimeEndsAHang) {
  BrowserOptions o = Defaults();
  o.wall_time = absl::Seconds(2);
  auto b = Make(o);
  absl::StatusOr<TabId> tab = b->OpenTab("doc.md");
  ASSERT_TRUE(tab.ok());
  absl::Time start = absl::Now();
  Page hang = b->Render(*tab, 0, false, TestAct::kHang);
  ASSERT_EQ(hang.kind, Page::Kind::kCrashed);
  EXPECT_THAT(hang.message, HasSubstr("wall time"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
}

TEST_F(BrowserTest, MemoryAndCpuLimitsEndARenderer) {
  // The memory limit alone (filling 128 MiB of fresh pages costs CPU time of its own on
  // this VM: a 1 s CPU limit beside it could end the renderer first).
  BrowserOptions m = Defaults();
  m.wall_time = absl::Seconds(60);
  m.memory_bytes = 128u << 20;
  auto mb = Make(m);
  absl::StatusOr<TabId> mtab = mb->OpenTab("doc.md");
  ASSERT_TRUE(mtab.ok());
  Page memory = mb->Render(*mtab, 0, false, TestAct::kMemory);
  ASSERT_EQ(memory.kind, Page::Kind::kCrashed);
  EXPECT_THAT(memory.message, HasSubstr("SIGABRT"));  // malloc failed at RLIMIT_AS
  BrowserOptions o = Defaults();
  o.wall_time = absl::Seconds(60);
  o.cpu_seconds = 1;
  auto b = Make(o);
  absl::StatusOr<TabId> tab = b->OpenTab("doc.md");
  ASSERT_TRUE(tab.ok());
  absl::Time start = absl::Now();
  Page spin = b->Render(*tab, 0, /*reload=*/true, TestAct::kSpin);
  ASSERT_EQ(spin.kind, Page::Kind::kCrashed);
  EXPECT_THAT(spin.message, ::testing::AnyOf(HasSubstr("SIGXCPU"), HasSubstr("SIGKILL")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace vow::renderer
