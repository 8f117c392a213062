/*
 * plugin.c - the NATS sink as outboxd sees it: open (options, connection,
 * JetStream), close, and the plugin struct outbox_sink_entry returns.
 */
#include "nats.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * open
 * ------------------------------------------------------------------------- */

static void sink_free(nats_sink_t *s) {
    if (s->js) jsCtx_Destroy(s->js);
    if (s->nc) natsConnection_Destroy(s->nc);
    if (s->opts) natsOptions_Destroy(s->opts);
    if (s->stats) natsStatistics_Destroy(s->stats);
    for (size_t i = 0; i < s->n_suspects; i++) free(s->suspects[i].subject);
    free(s->suspects);
    free(s->table);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Everything open checks before it connects: the options and libnats's
 * options object built from them (files loaded), then dropped. Never
 * connects, so `outboxd --check` and a reload refuse a bad URL or a
 * missing CA file with no server running. */
static int nats_check(const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size) {
    nats_config_t c;
    natsOptions *opts = NULL;
    if (nats_config_parse(host, &c, errbuf, errbuf_size) != 0) return OUTBOX_SINK_FATAL;
    int rc = nats_build_options(&c, host->sink_name, NULL, &opts, errbuf, errbuf_size);
    natsOptions_Destroy(opts);
    return rc;
}

/* libnats's process-wide set-up (its timer, callback and garbage-collector
 * threads), once, from outboxd's main thread, so that a failure refuses
 * the plugin at load instead of failing each open. There is no fini: the
 * matching nats_Close() would, once TLS was used, make libnats 3.4.1's
 * exit handler free OpenSSL's compression methods that OpenSSL 3 frees
 * again (a double free at exit; README: What libnats ... cannot do). The
 * module is never unmapped (-z nodelete), and libnats's own atexit
 * handler stops its threads. */
static int nats_init(char *errbuf, size_t errbuf_size) {
    natsStatus st = nats_Open(-1);
    if (st == NATS_OK) return OUTBOX_SINK_OK;
    snprintf(errbuf, errbuf_size, "nats sink: libnats cannot start: %s", natsStatus_GetText(st));
    return OUTBOX_SINK_FATAL;
}

static int nats_open(const outbox_sink_host_t *host, void **state, char *errbuf,
                     size_t errbuf_size) {
    nats_config_t c;
    char why[1024];
    int rc;

    /* Options first, by check's rules: a bad value is FATAL, naming the option. */
    if ((rc = nats_config_parse(host, &c, why, sizeof why)) != 0) {
        snprintf(errbuf, errbuf_size, "%s%s", rc == -1 ? "nats sink: option " : "", why);
        return OUTBOX_SINK_FATAL;
    }
    nats_sink_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
    s->host = host;
    s->cfg = c;
    s->core = c.core;
    s->stream = c.stream;
    s->ack_timeout_ms = c.ack_timeout_ms;
    list_shown(c.servers, s->servers_shown, sizeof s->servers_shown);

    if ((rc = nats_build_options(&s->cfg, host->sink_name, s, &s->opts, why, sizeof why)) != OUTBOX_SINK_OK) {
        snprintf(errbuf, errbuf_size, "nats sink: %s%s", rc == OUTBOX_SINK_FATAL ? "option " : "", why);
        sink_free(s);
        return rc;
    }
    if (natsStatistics_Create(&s->stats) != NATS_OK) {
        sink_free(s);
        snprintf(errbuf, errbuf_size, "nats sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }

    /* Connecting: a server that is down or refuses us is RETRY, so that a
     * fixed server (or a corrected password file) is picked up without a
     * restart of outboxd. */
    natsStatus st = natsConnection_Connect(&s->nc, s->opts);
    /* libnats before 3.8.0 (Debian's is 3.4.1) sends no signature when
     * the nonce's signature starts with a zero byte (its base64 encoder
     * stopped at the first 0, fixed upstream in nats.c #705): one NKey
     * connect in 256 is refused. Another connect signs another nonce. */
    if (st == NATS_CONNECTION_AUTH_FAILED && c.nkey != NULL && nats_GetVersionNumber() < 0x030800)
        st = natsConnection_Connect(&s->nc, s->opts);
    if (st != NATS_OK) {
        char text[512];
        nats_error_text(st, text, sizeof text);
        /* OpenSSL's words name the check that failed; say what to look at. */
        const char *hint = strstr(text, "SSL handshake error") == NULL ? ""
                           : " (the TLS handshake failed: check tls_ca, tls_hostname, the server's "
                             "certificate and its dates)";
        snprintf(errbuf, errbuf_size, "nats sink: cannot connect to %s: %s%s", s->servers_shown, text,
                 hint);
        s->nc = NULL;
        sink_free(s);
        return OUTBOX_SINK_RETRY;
    }
    natsConnection_GetStats(s->nc, s->stats);
    natsStatistics_GetCounts(s->stats, NULL, NULL, NULL, NULL, &s->reconnects);

    if (!s->core) {
        jsOptions jo;
        jsAccountInfo *ai = NULL;
        jsErrCode jerr = 0;
        char text[512];
        jsOptions_Init(&jo);
        jo.Wait = c.ack_timeout_ms;
        jo.PublishAsync.MaxPending = c.max_pending;
        jo.PublishAsync.AckHandler = nats_on_puback;
        jo.PublishAsync.AckHandlerClosure = s;
        /* When max_pending are in flight, wait this long for room, then hand
         * the rest of the batch back: publish must not block for long. */
        jo.PublishAsync.StallWait = 100;
        st = natsConnection_JetStream(&s->js, s->nc, &jo);
        /* Is JetStream there at all? Without it, every publish would be a
         * 503. RETRY: the operator may be about to enable it. */
        if (st == NATS_OK) st = js_GetAccountInfo(&ai, s->js, NULL, &jerr);
        if (st != NATS_OK) {
            nats_error_text(st, text, sizeof text);
            if (st == NATS_NO_RESPONDERS || jerr == JSNotEnabledForAccountErr || jerr == JSNotEnabledErr)
                snprintf(errbuf, errbuf_size,
                         "nats sink: JetStream is not enabled on %s (start nats-server with -js, "
                         "or use mode: core): %s",
                         s->servers_shown, text);
            else
                snprintf(errbuf, errbuf_size, "nats sink: JetStream on %s: %s", s->servers_shown, text);
            if (nats_close_connection(s)) sink_free(s);
            return OUTBOX_SINK_RETRY;
        }
        jsAccountInfo_Destroy(ai);
        if (s->stream != NULL && (rc = nats_ensure_stream(s, errbuf, errbuf_size)) != OUTBOX_SINK_OK) {
            if (nats_close_connection(s)) sink_free(s);
            return rc;
        }
    }

    char url[256] = "?", shown[256];
    natsConnection_GetConnectedUrl(s->nc, url, sizeof url);
    server_shown(url, shown, sizeof shown);
    if (s->core)
        host->log(host->ctx, OUTBOX_SINK_LOG_INFO,
                  "connected to %s (servers %s); mode core: acked once a flush shows the server "
                  "read the batch, not stored",
                  shown, s->servers_shown);
    else
        host->log(host->ctx, OUTBOX_SINK_LOG_INFO,
                  "connected to %s (servers %s); mode jetstream: max_pending %" PRId64 ", ack_timeout_ms "
                  "%" PRId64 "%s%s",
                  shown, s->servers_shown, c.max_pending, c.ack_timeout_ms, s->stream ? ", stream " : "",
                  s->stream ? s->stream : "");
    *state = s;
    return OUTBOX_SINK_OK;
}

static void nats_close(void *state) {
    nats_sink_t *s = state;
    char errbuf[256];
    size_t abandoned = 0;

    if (!s->core) {
        /* outboxd flushes before close at shutdown, but not before the close
         * that follows a FATAL: give acks a moment either way. */
        nats_flush(s, 1000, errbuf, sizeof errbuf);
        abandoned = nats_take_back_all(s);
    }
    /* From here no PubAck finds a message in the table, except one the
     * handler is holding right now: wait for it (see nats.h). */
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    int64_t deadline = now_ms() + 5000;
    while (s->count > 0 && now_ms() < deadline) wait_ms(s, 50);
    size_t stuck = s->count;
    pthread_mutex_unlock(&s->mu);

    int closed = nats_close_connection(s);

    s->host->log(s->host->ctx, OUTBOX_SINK_LOG_INFO,
                 "closed: %" PRIu64 " published, %" PRIu64 " acked (%" PRIu64
                 " of them duplicates the stream already had), %" PRIu64 " retried, %" PRIu64
                 " failed for good, %zu unacked at close",
                 s->published, s->acked_ok, s->duplicates, s->retried, s->failed, abandoned + stuck);
    if (!closed || stuck > 0) {
        /* libnats may still call into s: keeping it is a small leak, freeing
         * it could be a crash. Never seen; said loudly if it happens. */
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_ERROR,
                     "libnats did not finish with the connection in time; its memory is left "
                     "allocated");
        return;
    }
    sink_free(s);
}

/* publish is NULL: outboxd calls publish_some, which says how much of a
 * batch it took. The payload goes out byte for byte, JSON or BSON. */
OUTBOX_SINK_PLUGIN(.name = "nats", .version = "1.2.0",
                   .description = "NATS: JetStream (de-duplicated by Nats-Msg-Id) or core NATS",
                   .options = nats_options, .open = nats_open, .publish_some = nats_publish_some,
                   .poll = nats_poll, .flush = nats_flush, .close = nats_close, .check = nats_check,
                   .stats = nats_stats, .recover = nats_recover, .init = nats_init,
                   .payloads = OUTBOX_SINK_PAYLOAD_JSON | OUTBOX_SINK_PAYLOAD_BSON,
                   .messages = OUTBOX_SINK_MESSAGES_AS_GIVEN)
