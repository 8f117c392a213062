/*
 * stream_name.c - which stream names the Redis sink refuses (README:
 * Stream names): a stream name is made of event data.
 */
#include "redis_sink.h"

#include <stddef.h>

/* ----------------------------------------------------------------------------
 * Stream names
 *
 * Redis keys may be any bytes, but a stream name comes from the event
 * ({type}, {key}), which any producer writes. The rule (README: Stream
 * names): valid UTF-8, no control character (C0, DEL, C1). Other names
 * would be unreadable in redis-cli and log lines, and break consumers
 * that decode key names as UTF-8 text. An empty name never comes here:
 * outboxd fails an event whose route expands to "" itself (ABI 1.1).
 * ------------------------------------------------------------------------- */

/* Why name cannot be a stream name, or NULL. */
const char *redis_stream_name_problem(const char *name) {
    const unsigned char *p = (const unsigned char *)name;
    while (*p != '\0') {
        size_t n = outbox_sink_utf8_len(p);
        if (n == 0) return "it is not valid UTF-8";
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] < 0xa0))
            return "it holds a control character";
        p += n;
    }
    return NULL;
}
