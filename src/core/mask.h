/*
 * mask.h - hiding secret values in text: a job's output, whole or as it streams.
 *
 * A mask set is the list of values to hide (a job's secret_env values).  Every occurrence
 * of one of them in the text is replaced by MASK_TEXT.  Values shorter than MASK_MIN_LEN
 * bytes are not hidden: "1" or "on" would blank out ordinary output, and hiding them
 * would hide nothing worth hiding.  Where two values could match at the same place, the
 * longer one wins.
 *
 * Streams.  Text that arrives in pieces (a followed log) is fed piece by piece; bytes
 * that could be the start of a value are held back until the next piece or the end
 * decides, so a value split across two pieces is still hidden.  What is held is at most
 * the longest value's length less one byte.
 *
 * Cuts.  When earlier bytes are lost (the output cap dropped them, a read starts in the
 * middle), the first bytes may be the end of a value whose start is gone; a "cut" says
 * so, and a leading tail of a value at least MASK_MIN_LEN bytes long is hidden too.  In
 * the same way, text that ends with the start of a value (at least MASK_MIN_LEN bytes of
 * it) has that start hidden.
 *
 * Pure: no I/O, no clocks, no globals.  A set is shared by reference count by the one
 * thread that owns it (the server loop); a stream is used by one thread.
 */
#ifndef MASK_H
#define MASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define MASK_TEXT    "********"
#define MASK_MIN_LEN 4 /* bytes: shorter values are not hidden */

struct mask_set;

/*
 * A new set of the values[n] (copied; those shorter than MASK_MIN_LEN and repeats left
 * out) with one reference held by the caller.  *out is NULL when nothing is left to hide:
 * every function here takes a NULL set as "hide nothing".  0, or TY_ENOMEM.
 */
int mask_set_new(const char *const *values, size_t n, struct mask_set **out);

/* Take one more reference (returns set; NULL stays NULL) / drop one (frees at zero). */
struct mask_set *mask_set_ref(struct mask_set *set);
void mask_set_unref(struct mask_set *set);

/* How many values the set hides, and the longest one's length (0 for NULL). */
size_t mask_set_count(const struct mask_set *set);
size_t mask_set_max_len(const struct mask_set *set);

/* Text in pieces.  The stream borrows set, which must outlive it. */
struct mask_stream {
    const struct mask_set *set;
    struct strbuf hold; /* raw bytes held back: maybe the start of a value */
    bool cut;           /* the next byte follows lost bytes */
    uint64_t skip;      /* raw bytes still to read without showing them (context) */
};

/*
 * Start a stream.  skip: the first skip bytes are context only - read to recognise a
 * value that begins in them, never shown (a value that begins in them and ends after
 * them shows as MASK_TEXT).  cut: bytes before the first one are lost.
 */
void mask_stream_init(struct mask_stream *ms, const struct mask_set *set, uint64_t skip, bool cut);

/* Feed the next n raw bytes; what can be shown now is appended to out.  These return 0,
 * or TY_ENOMEM when a buffer could not grow (out is then incomplete). */
int mask_stream_feed(struct mask_stream *ms, const char *in, size_t n, struct strbuf *out);

/* Bytes were lost after what was fed: settle what is held (as at the end), and treat the
 * next byte as following a cut. */
int mask_stream_cut(struct mask_stream *ms, struct strbuf *out);

/* The text is complete: append what is still held (masked as needed) to out. */
int mask_stream_end(struct mask_stream *ms, struct strbuf *out);

/* Release the stream's buffer (the set is not touched). */
void mask_stream_free(struct mask_stream *ms);

/* The whole of in[0..n) at once, into out; cut as for mask_stream_init.  0 or TY_ENOMEM. */
int mask_apply(const struct mask_set *set, const char *in, size_t n, bool cut, struct strbuf *out);

#endif
