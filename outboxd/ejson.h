/*
 * ejson.h - the JSON that outboxd hands a sink with `payload: json`: the
 * event's `data` document as MongoDB relaxed Extended JSON v2, compact (no
 * spaces), doubles in their shortest round-trip form. docs/envelope.md
 * ("The JSON payload") is the user's description of exactly what it
 * writes; ejson.c says why it is ours and not a JSON library's.
 *
 * It replaces libbson's bson_as_relaxed_extended_json, which means the same
 * thing but pads with spaces, writes 19.95 as 19.949999999999999289, dates
 * after 9999 in a form no reader takes, and gives up (NULL) on a string
 * that liboutbox's parser lets through (bytes C0 80, or a code, symbol or
 * regex that is not UTF-8), which outboxd then cannot send at all.
 */
#ifndef OUTBOXD_EJSON_H
#define OUTBOXD_EJSON_H

#include <bson/bson.h>
#include <stddef.h>

/* Encodes doc. Returns NUL-terminated, valid UTF-8 JSON text in a malloc'd
 * buffer that the caller frees with free(); *len (if len is not NULL) gets
 * its length without the NUL. Never fails on a well-formed BSON document:
 * any value of any type, any depth, any bytes in strings (what is not
 * UTF-8 becomes \ufffd). Returns NULL, with nothing allocated, only when
 * doc's bytes are not well-formed BSON (liboutbox's parser refuses such an
 * envelope, except inside a code-with-scope's scope, which it does not
 * walk). Aborts when out of memory, as the rest of outboxd does.
 * Thread-safe; it reads the locale only through snprintf/strtod and
 * always writes '.' as the decimal point. */
char *outboxd_ejson_encode(const bson_t *doc, size_t *len);

/* A JSON text of the caller's making, for output laid out by hand (the
 * CloudEvents structured envelope, msgformat.c) with the string rules of
 * the encoder above, so that there is one JSON string escaper. p is
 * malloc'd (the caller frees it, or takes it), not NUL-terminated; start
 * from {0}. Out of memory aborts, as in the encoder. */
typedef struct {
    char *p;
    size_t len, cap;
} outboxd_json_text_t;

/* Makes room for n more bytes at once (a hint, to avoid growing twice). */
void outboxd_json_reserve(outboxd_json_text_t *t, size_t n);
/* n bytes as they are (JSON the caller vouches for). */
void outboxd_json_raw(outboxd_json_text_t *t, const char *s, size_t n);
/* s[0..n) as a JSON string, quoted and escaped as the encoder escapes. */
void outboxd_json_string(outboxd_json_text_t *t, const char *s, size_t n);

#endif
