/* See vow_wire.h. Cap'n Proto encoding reference: pointers are 64-bit little-endian
 * words; the low two bits give the kind (0 struct, 1 list, 2 far, 3 other).
 *   struct: bits 2..31 signed offset (words) from the end of the pointer to the data,
 *           bits 32..47 data size (words), bits 48..63 pointer count
 *   list:   bits 2..31 signed offset, bits 32..34 element size (2 = byte, 5 = 8 bytes),
 *           bits 35..63 element count
 *   far:    bit 2 double-far, bits 3..31 offset of the landing pad (words), bits 32..63
 *           segment id */
#include "tests/conformance/musl/vow_wire.h"

#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vow_wire.c assumes a little-endian host (Cap'n Proto's wire order)"
#endif

/* ---- encoding ------------------------------------------------------------------- */

static uint64_t struct_ptr(int32_t offset, uint16_t data_words, uint16_t ptr_count) {
  return ((uint64_t)((uint32_t)offset << 2)) | ((uint64_t)data_words << 32) |
         ((uint64_t)ptr_count << 48);
}

static uint64_t list_ptr(int32_t offset, unsigned size_code, uint32_t count) {
  return 1u | ((uint64_t)((uint32_t)offset << 2)) | ((uint64_t)(size_code & 7) << 32) |
         ((uint64_t)count << 35);
}

/* Writes the one-segment frame header and returns the first segment word, or NULL. */
static uint64_t *begin(void *buf, size_t cap, uint32_t words) {
  size_t bytes = 8 + (size_t)words * 8;
  if (buf == NULL || cap < bytes) return NULL;
  memset(buf, 0, bytes);
  uint32_t header[2] = {0, words}; /* segment_count - 1 = 0, size of segment 0 */
  memcpy(buf, header, sizeof(header));
  return (uint64_t *)((char *)buf + 8);
}

/* A Request root (id, union tag) at words 0..3 of `seg`: word 0 the root pointer, 1-2
 * the data section, 3 the payload pointer. */
static void request(uint64_t *seg, uint64_t id, uint16_t tag) {
  seg[0] = struct_ptr(0, 2, 1);
  seg[1] = id;
  seg[2] = tag;
}

long vow_wire_encode_get_filter(void *buf, size_t cap, uint64_t id) {
  uint64_t *seg = begin(buf, cap, 4);
  if (seg == NULL) return -1;
  request(seg, id, 5);
  return 8 + 4 * 8;
}

long vow_wire_encode_hello(void *buf, size_t cap, uint64_t id, uint32_t version,
                           int listener_attached) {
  uint64_t *seg = begin(buf, cap, 5);
  if (seg == NULL) return -1;
  request(seg, id, 0);
  seg[3] = struct_ptr(0, 1, 0); /* Hello at word 4 */
  seg[4] = (uint64_t)version | ((uint64_t)(listener_attached ? 1 : 0) << 32);
  return 8 + 5 * 8;
}

long vow_wire_encode_violation(void *buf, size_t cap, uint64_t id, int32_t nr,
                               uint32_t arch, const uint64_t args[6]) {
  uint64_t *seg = begin(buf, cap, 12);
  if (seg == NULL) return -1;
  request(seg, id, 4);
  seg[3] = struct_ptr(0, 1, 1); /* Violation at word 4 */
  seg[4] = (uint64_t)(uint32_t)nr | ((uint64_t)arch << 32);
  seg[5] = list_ptr(0, 5, 6);   /* args at words 6..11 */
  for (int i = 0; i < 6; ++i) seg[6 + i] = args[i];
  return 8 + 12 * 8;
}

/* ---- decoding ------------------------------------------------------------------- */

struct segment {
  const uint64_t *words;
  uint32_t size; /* words */
};

struct message {
  struct segment segs[VOW_WIRE_MAX_SEGMENTS];
  uint32_t count;
};

/* A resolved struct: its data section and pointer section, bounds already checked. */
struct sref {
  uint32_t seg;
  uint32_t data; /* first data word */
  uint16_t data_words;
  uint16_t ptr_count;
};

static uint64_t word_at(const struct message *m, uint32_t seg, uint32_t index) {
  uint64_t w;
  memcpy(&w, &m->segs[seg].words[index], 8);
  return w;
}

static int32_t ptr_offset(uint64_t p) { return ((int32_t)(uint32_t)p) >> 2; }

/* True if [start, start + words) lies in segment `seg`. `start` may be negative. */
static int in_segment(const struct message *m, uint32_t seg, int64_t start, uint64_t words) {
  return seg < m->count && start >= 0 && (uint64_t)start <= m->segs[seg].size &&
         words <= m->segs[seg].size - (uint64_t)start;
}

/* Follows the pointer at (seg, index) to its target. On success stores the segment and
 * first word of the content and the tag word that describes it (the pointer itself, a
 * single-far landing pad, or a double-far tag). Returns 1, 0 for a null pointer, -1 for
 * a malformed one. Bounds of the content are the caller's to check (they depend on the
 * tag). */
static int follow(const struct message *m, uint32_t seg, uint32_t index, uint32_t *out_seg,
                  int64_t *out_start, uint64_t *out_tag) {
  if (!in_segment(m, seg, index, 1)) return -1;
  uint64_t p = word_at(m, seg, index);
  if (p == 0) return 0;
  unsigned kind = p & 3;
  if (kind == 0 || kind == 1) {
    *out_seg = seg;
    *out_start = (int64_t)index + 1 + ptr_offset(p);
    *out_tag = p;
    return 1;
  }
  if (kind != 2) return -1; /* capabilities and other pointers: not in this schema */
  uint32_t pad_seg = (uint32_t)(p >> 32);
  uint32_t pad = (uint32_t)(p >> 3) & 0x1fffffffu;
  int double_far = (p >> 2) & 1;
  if (!in_segment(m, pad_seg, pad, double_far ? 2 : 1)) return -1;
  uint64_t landing = word_at(m, pad_seg, pad);
  if (!double_far) {
    unsigned lk = landing & 3;
    if (lk != 0 && lk != 1) return -1; /* a pad must not be another far pointer */
    *out_seg = pad_seg;
    *out_start = (int64_t)pad + 1 + ptr_offset(landing);
    *out_tag = landing;
    return 1;
  }
  /* Double far: the pad is a single far pointer to the content, then a tag word whose
   * offset is zero. */
  uint64_t tag = word_at(m, pad_seg, pad + 1);
  if ((landing & 7) != 2 || ((tag & 3) != 0 && (tag & 3) != 1) || ptr_offset(tag) != 0) {
    return -1;
  }
  *out_seg = (uint32_t)(landing >> 32);
  *out_start = (int64_t)((landing >> 3) & 0x1fffffffu);
  *out_tag = tag;
  return 1;
}

/* Resolves a struct pointer. Returns 1 (and *out), 0 for null, -1 if malformed. */
static int get_struct(const struct message *m, uint32_t seg, uint32_t index, struct sref *out) {
  uint32_t tseg;
  int64_t start;
  uint64_t tag;
  int rc = follow(m, seg, index, &tseg, &start, &tag);
  if (rc <= 0) return rc;
  if ((tag & 3) != 0) return -1;
  uint16_t data_words = (uint16_t)(tag >> 32);
  uint16_t ptr_count = (uint16_t)(tag >> 48);
  if (!in_segment(m, tseg, start, (uint64_t)data_words + ptr_count)) return -1;
  out->seg = tseg;
  out->data = (uint32_t)start;
  out->data_words = data_words;
  out->ptr_count = ptr_count;
  return 1;
}

/* Data section word `i` of `s`, or 0 when the struct is older/smaller than the schema. */
static uint64_t data_word(const struct message *m, const struct sref *s, uint32_t i) {
  return i < s->data_words ? word_at(m, s->seg, s->data + i) : 0;
}

/* Index of pointer `i` of `s`, or -1 when the struct has no such pointer (reads as null). */
static int64_t ptr_index(const struct sref *s, uint32_t i) {
  return i < s->ptr_count ? (int64_t)s->data + s->data_words + i : -1;
}

/* Struct field `i` of `s`: 1 and *out, 0 if null or absent, -1 if malformed. */
static int struct_field(const struct message *m, const struct sref *s, uint32_t i,
                        struct sref *out) {
  int64_t at = ptr_index(s, i);
  if (at < 0) return 0;
  return get_struct(m, s->seg, (uint32_t)at, out);
}

/* A Data/Text field: a list of bytes. 1 with bytes/len, 0 if null, -1 if malformed. */
static int bytes_field(const struct message *m, const struct sref *s, uint32_t i,
                       const uint8_t **bytes, size_t *len) {
  int64_t at = ptr_index(s, i);
  *bytes = NULL;
  *len = 0;
  if (at < 0) return 0;
  uint32_t tseg;
  int64_t start;
  uint64_t tag;
  int rc = follow(m, s->seg, (uint32_t)at, &tseg, &start, &tag);
  if (rc <= 0) return rc;
  if ((tag & 3) != 1 || ((tag >> 32) & 7) != 2) return -1; /* a list of bytes */
  uint64_t count = tag >> 35;
  if (!in_segment(m, tseg, start, (count + 7) / 8)) return -1;
  *bytes = (const uint8_t *)&m->segs[tseg].words[start];
  *len = (size_t)count;
  return 1;
}

static int parse_frame(const void *buf, size_t len, struct message *m) {
  if (buf == NULL || ((uintptr_t)buf & 7) != 0 || len < 8 || len % 8 != 0 ||
      len > VOW_WIRE_MAX_BYTES) {
    return -1;
  }
  const uint8_t *bytes = (const uint8_t *)buf;
  uint32_t count_minus_one;
  memcpy(&count_minus_one, bytes, 4);
  if (count_minus_one >= VOW_WIRE_MAX_SEGMENTS) return -1;
  uint32_t count = count_minus_one + 1;
  size_t table = ((size_t)(1 + count) * 4 + 7) & ~(size_t)7;
  if (table > len) return -1;
  size_t at = table;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t words;
    memcpy(&words, bytes + 4 + 4 * i, 4);
    if (words > (len - at) / 8) return -1;
    m->segs[i].words = (const uint64_t *)(bytes + at);
    m->segs[i].size = words;
    at += (size_t)words * 8;
  }
  if (at != len) return -1; /* trailing bytes */
  m->count = count;
  return 0;
}

int vow_wire_decode_response(const void *buf, size_t len, struct vow_wire_response *out) {
  struct message m;
  memset(out, 0, sizeof(*out));
  if (parse_frame(buf, len, &m) != 0) return -1;
  if (m.segs[0].size == 0) return -1;
  struct sref root;
  if (get_struct(&m, 0, 0, &root) != 1) return -1;
  out->id = data_word(&m, &root, 0);
  uint16_t tag = (uint16_t)data_word(&m, &root, 1);
  struct sref body;
  int rc;
  out->kind = tag;
  switch (tag) {
    case VOW_RESPONSE_FD:
      return 0;
    case VOW_RESPONSE_HELLO:
      if ((rc = struct_field(&m, &root, 0, &body)) < 0) return -1;
      if (rc == 1) out->hello_version = (uint32_t)data_word(&m, &body, 0);
      return 0;
    case VOW_RESPONSE_ERROR:
      if ((rc = struct_field(&m, &root, 0, &body)) < 0) return -1;
      if (rc == 0) return 0;
      out->error_errno = (int32_t)(uint32_t)data_word(&m, &body, 0);
      if (bytes_field(&m, &body, 0, &out->error_reason, &out->error_reason_len) < 0) return -1;
      /* Text carries a NUL terminator on the wire; it is not part of the text. */
      if (out->error_reason_len > 0 && out->error_reason[out->error_reason_len - 1] == 0) {
        --out->error_reason_len;
      }
      return 0;
    case VOW_RESPONSE_TIME:
      if ((rc = struct_field(&m, &root, 0, &body)) < 0) return -1;
      if (rc == 1) {
        out->seconds = (int64_t)data_word(&m, &body, 0);
        out->nanos = (uint32_t)data_word(&m, &body, 1);
      }
      return 0;
    case VOW_RESPONSE_FILTER: {
      if ((rc = struct_field(&m, &root, 0, &body)) < 0) return -1;
      if (rc == 0) return 0;
      uint64_t w0 = data_word(&m, &body, 0);
      out->needs_listener = (int)(w0 & 1);
      out->trap_reporter = (int)((w0 >> 1) & 1);
      out->max_open_fds = (uint32_t)(w0 >> 32);
      out->cpu_seconds = (uint32_t)data_word(&m, &body, 1);
      out->memory_bytes = data_word(&m, &body, 2);
      if (bytes_field(&m, &body, 0, &out->program, &out->program_len) < 0) return -1;
      return 0;
    }
    default:
      return -1;
  }
}
