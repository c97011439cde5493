// The renderer worker's main loop and the wire format between the browser (trusted) and
// a renderer (locked). The loop runs INSIDE the locked worker; whatever the browser
// reads back is hostile to it and is checked in browser.cc.
//
// Frames as in examples/parsers/wire.h (u32 length + bytes) on the worker's data socket,
// which is its fd 0 (jobs in) and fd 1 (answers out).
// Job (browser -> renderer), first byte the kind:
//   kRender: u8 DocType, u32 page (0-based), u64 max_pixels, then the document bytes
//   kTest:   u8 TestAct; honoured only by a renderer started with test hooks on
// Answer (renderer -> browser), first byte kOk or kRejected:
//   kOk, kHtml:  string html
//   kOk, kRgba:  u32 width, u32 height, u32 pages, then width*height*4 bytes of RGBA
//   kRejected:   u8 code (kInvalid, kLimit), string message
#ifndef VOW_EXAMPLES_RENDERER_RENDERER_WORKER_H_
#define VOW_EXAMPLES_RENDERER_RENDERER_WORKER_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "examples/renderer/render.h"

namespace vow {
class Client;
}

namespace vow::renderer {

enum JobKind : uint8_t { kRender = 1, kTest = 0xEE };
enum AnswerFormat : uint8_t { kHtml = 1, kRgba = 2 };
// What a test-only job makes the renderer do, each one a way a real renderer dies.
enum class TestAct : uint8_t {
  kSegv = 1,    // a NULL write: SIGSEGV
  kOpen = 2,    // open("/etc/passwd") (refused by the broker), then abort()
  kHang = 3,    // sleeps forever: ended by the wall-time limit
  kMemory = 4,  // allocates until RLIMIT_AS stops it, then aborts
  kSpin = 5,    // burns CPU: ended by RLIMIT_CPU
  kSocket = 6,  // socket(AF_INET): a syscall no promise of a renderer allows
};

inline constexpr size_t kMaxDocumentBytes = 64u << 20;

// Serves jobs from fd 0 until EOF. Returns the worker's exit code. `warm_up`: before the
// first job (as a spare, before any document is seen) render a small built-in document of
// that type, so that the libraries are initialized (fontconfig reads its configuration and
// cache through the broker) off the request path.
int RendererMain(Client& client, bool test_hooks,
                 std::optional<DocType> warm_up = std::nullopt);

}  // namespace vow::renderer

#endif  // VOW_EXAMPLES_RENDERER_RENDERER_WORKER_H_
