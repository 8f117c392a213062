/*
 * redis.c - the Redis Streams sink: each event becomes one entry, added
 * with XADD to the stream its route names (sinks/redis/README.md has the
 * entry format, the options and the delivery guarantee).
 *
 * It is built on hiredis 0.14 (Debian 12's), blocking API. A publish call
 * sends its batch as pipelines of up to `pipeline` commands, then reads
 * the replies in order and acks each event from its own reply:
 *
 *  - an entry id: the event is in the stream (as durable as the server's
 *    appendfsync makes it): ack OK;
 *  - an error reply that will not pass by waiting (WRONGTYPE, a syntax or
 *    permission error): ack FATAL with the server's text, and the sink's
 *    on_error policy decides;
 *  - an error reply that may pass (OOM, LOADING, BUSY, READONLY, ...): no
 *    ack, and publish returns RETRY after the pipeline;
 *  - the connection breaks: the events whose replies were read stay acked,
 *    the others get no ack and publish returns RETRY. Whether the server
 *    ran a command whose reply was lost cannot be known, so such an event
 *    may be added twice (at-least-once), unless `dedupe` is on.
 *
 * With `dedupe`, every event goes through a small Lua script that adds the
 * entry only when a per-event key is absent, and then sets that key with a
 * TTL, atomically (Redis 7.0 has no idempotent XADD).
 *
 * A broken connection is dropped; the next publish call reconnects, no
 * sooner than a short backoff after the last failed attempt. Everything
 * acks before publish returns, so there is no poll or flush. All state
 * lives in the redis_sink_t that open returns: instances share nothing.
 */
#include "redis_sink.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* The sink's file split is in redis_sink.h. */

void redis_log(redis_sink_t *s, outbox_sink_log_level_t level, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->host->log(s->host->ctx, level, "%s", line);
}

/* ----------------------------------------------------------------------------
 * The callbacks
 * ------------------------------------------------------------------------- */

static void sink_free(redis_sink_t *s) {
    redis_sink_disconnect(s);
#ifdef HAVE_HIREDIS_SSL
    if (s->ssl != NULL) redisFreeSSLContext(s->ssl);
#endif
    redis_url_free(&s->url);
    redis_password_free(s->password);
    free(s->argv);
    free(s->argvlen);
    free(s->scratch);
    free(s->sent);
    free(s->resend);
    free(s);
}

/* The options, parsed and checked by the same code as open's, offline:
 * nothing connects (a rediss:// url's TLS files are read, as open would). */
static int redis_check(const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size) {
    redis_sink_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errbuf, errbuf_size, "url: out of memory");
        return OUTBOX_SINK_FATAL;
    }
    s->host = host;
    int rc = redis_configure(s, errbuf, errbuf_size) == 0 ? OUTBOX_SINK_OK : OUTBOX_SINK_FATAL;
    sink_free(s);
    return rc;
}

static void describe_trim(const redis_sink_t *s, char *out, size_t size) {
    const char *op = s->cfg.trim_exact ? "" : " ~";
    switch (s->trim) {
    case TRIM_NONE: snprintf(out, size, "none"); break;
    case TRIM_MAXLEN: snprintf(out, size, "MAXLEN%s %s", op, s->trim_value); break;
    case TRIM_MINID: snprintf(out, size, "MINID%s %s", op, s->trim_value); break;
    case TRIM_MINID_AGE: snprintf(out, size, "MINID%s (now - %lld ms)", op, s->minid_age_ms); break;
    }
}

static int redis_open(const outbox_sink_host_t *host, void **state, char *errbuf,
                      size_t errbuf_size) {
    char trim[128], why[1024];

    /* check exists only in 1.1 hosts; open may meet an older outboxd. */
    if (!OUTBOX_SINK_HOST_HAS(host, options_fill)) {
        snprintf(errbuf, errbuf_size,
                 "redis sink: this plugin needs outboxd with sink ABI 1.1 or later (this one "
                 "offers %u.%u)",
                 (unsigned)host->abi_major, (unsigned)host->abi_minor);
        return OUTBOX_SINK_FATAL;
    }
    redis_sink_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    s->host = host;
    s->as_given = OUTBOX_SINK_HOST_HAS(host, message_as_given) && host->message_as_given;
    if (redis_configure(s, why, sizeof why) != 0) {
        snprintf(errbuf, errbuf_size, "redis sink: option %s", why);
        sink_free(s);
        return OUTBOX_SINK_FATAL;
    }
    s->sent = calloc(s->pipeline, sizeof *s->sent);
    s->resend = calloc(s->pipeline, sizeof *s->resend);
    if (s->sent == NULL || s->resend == NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: out of memory");
        sink_free(s);
        return OUTBOX_SINK_RETRY;
    }

    /* An unreachable server is RETRY: outboxd opens again after a backoff. */
    int status = redis_sink_connect(s, errbuf, errbuf_size);
    if (status != OUTBOX_SINK_OK) {
        sink_free(s);
        return status;
    }
    describe_trim(s, trim, sizeof trim);
    redis_log(s, OUTBOX_SINK_LOG_INFO,
              "adding entries to streams at %s (user %s, %s): pipeline %zu, trim %s, dedupe %s",
              s->url.display, s->url.user ? s->url.user : "default", s->password_source,
              s->pipeline, trim, s->cfg.dedupe ? (s->sha[0] ? "on (EVALSHA)" : "on (EVAL)") : "off");
    *state = s;
    return OUTBOX_SINK_OK;
}

/* Figures for outboxd's metrics (README: Stats). Called from the
 * instance's thread, as publish is: the counters need no lock. */
static void redis_stats(void *state, outbox_sink_stat_fn emit, void *emit_ctx) {
    const redis_sink_t *s = state;
    emit(emit_ctx, "redis_entries_added_total", OUTBOX_SINK_STAT_COUNTER, (double)s->added,
         "entries added to streams (XADD replied with an entry id)");
    emit(emit_ctx, "redis_duplicates_total", OUTBOX_SINK_STAT_COUNTER, (double)s->duplicates,
         "events the dedupe script found already added (acked, not added again)");
    emit(emit_ctx, "redis_refused_total", OUTBOX_SINK_STAT_COUNTER, (double)s->refused,
         "events acked FATAL: an error reply (WRONGTYPE, NOPERM, ...) or a refused stream name");
    emit(emit_ctx, "redis_transient_errors_total", OUTBOX_SINK_STAT_COUNTER, (double)s->transient,
         "error replies that may pass (OOM, LOADING, READONLY, ...): the batch is retried");
    emit(emit_ctx, "redis_connections_lost_total", OUTBOX_SINK_STAT_COUNTER, (double)s->lost,
         "connections that broke or timed out while a pipeline waited for replies");
    emit(emit_ctx, "redis_reconnects_total", OUTBOX_SINK_STAT_COUNTER, (double)s->reconnects,
         "successful reconnects after a lost connection");
    emit(emit_ctx, "redis_connected", OUTBOX_SINK_STAT_GAUGE, s->c != NULL ? 1.0 : 0.0,
         "1 while the sink holds a connection to the server");
}

static void redis_close(void *state) {
    redis_sink_t *s = state;
    if (s->cfg.dedupe)
        redis_log(s, OUTBOX_SINK_LOG_INFO,
                  "closing: %" PRIu64 " entries added, %" PRIu64 " duplicates not added again",
                  s->added, s->duplicates);
    else
        redis_log(s, OUTBOX_SINK_LOG_INFO, "closing: %" PRIu64 " entries added", s->added);
    sink_free(s);
}

/* poll and flush stay NULL: every event is acked before publish returns.
 * Payloads are bytes to this sink (binary-safe), so JSON and BSON both. */
OUTBOX_SINK_PLUGIN(.name = "redis", .version = "1.2.0",
                   .description = "entries added to Redis Streams (XADD, pipelined; optional "
                                  "dedupe by event id)",
                   .options = redis_options, .open = redis_open, .publish = redis_publish,
                   .recover = redis_recover, .close = redis_close, .check = redis_check, .stats = redis_stats,
                   .payloads = OUTBOX_SINK_PAYLOAD_JSON | OUTBOX_SINK_PAYLOAD_BSON,
                   .messages = OUTBOX_SINK_MESSAGES_AS_GIVEN)
