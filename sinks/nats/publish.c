/*
 * publish.c - publishing and acks: the in-flight table (natsMsg -> the
 * host's seq) that makes each event get exactly one ack, the PubAck
 * handler, hand-backs after a reconnect, the "503 no responders" question,
 * publish in JetStream and core mode, poll and flush. nats.h's top comment
 * says why each of these exists.
 */
#include "nats.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the in-flight table ------------------------------------------------- */

static size_t slot_of(const nats_sink_t *s, const natsMsg *msg) {
    uint64_t h = (uint64_t)(uintptr_t)msg;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL; /* a 64-bit mix: pointers share their low bits */
    h ^= h >> 33;
    return (size_t)h & (s->cap - 1);
}

static int inflight_grow(nats_sink_t *s) {
    size_t old_cap = s->cap;
    inflight_t *old = s->table;
    size_t cap = old_cap ? old_cap * 2 : 1024;
    inflight_t *table = calloc(cap, sizeof *table);
    if (table == NULL) return -1;
    s->table = table;
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].msg == NULL) continue;
        size_t j = slot_of(s, old[i].msg);
        while (table[j].msg != NULL) j = (j + 1) & (cap - 1);
        table[j] = old[i];
    }
    free(old);
    return 0;
}

/* mu held. Returns -1 when out of memory. */
static int inflight_put(nats_sink_t *s, natsMsg *msg, uint64_t seq) {
    if ((s->count + 1) * 2 > s->cap && inflight_grow(s) != 0) return -1;
    size_t i = slot_of(s, msg);
    while (s->table[i].msg != NULL) i = (i + 1) & (s->cap - 1);
    s->table[i].msg = msg;
    s->table[i].seq = seq;
    s->count++;
    return 0;
}

/* mu held. Removes msg and gives its seq; 0 when msg is not in flight.
 * Deletion shifts the following entries back (no tombstones), so lookups
 * stay short however many messages have passed through. */
static int inflight_take(nats_sink_t *s, const natsMsg *msg, uint64_t *seq) {
    if (s->cap == 0) return 0;
    size_t mask = s->cap - 1, i = slot_of(s, msg);
    while (s->table[i].msg != msg) {
        if (s->table[i].msg == NULL) return 0;
        i = (i + 1) & mask;
    }
    *seq = s->table[i].seq;
    s->count--;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (s->table[j].msg == NULL) break;
        size_t k = slot_of(s, s->table[j].msg);
        /* Leave the entry at j if its home k lies cyclically in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        s->table[i] = s->table[j];
        i = j;
    }
    s->table[i].msg = NULL;
    return 1;
}

/* ---- acks ------------------------------------------------------------------ */

static void ack(nats_sink_t *s, uint64_t seq, outbox_sink_status_t status, const char *error) {
    s->host->ack(s->host->ctx, seq, status, error);
}

/* Counts one event handed back for a retry, and says so in the log at
 * most every RATE_MS (there may be thousands at once). mu held. */
static void note_retry(nats_sink_t *s, const char *why) {
    s->retried++;
    s->retries_unreported++;
    snprintf(s->last_retry, sizeof s->last_retry, "%s", why);
    int64_t now = now_ms();
    if (now - s->retry_warned_ms >= RATE_MS) {
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING,
                     "%" PRIu64 " publish(es) to be retried; last reason: %s", s->retries_unreported,
                     s->last_retry);
        s->retries_unreported = 0;
        s->retry_warned_ms = now;
    }
}

/* mu held. */
static void ack_retry(nats_sink_t *s, uint64_t seq, const char *why) {
    note_retry(s, why);
    ack(s, seq, OUTBOX_SINK_RETRY, why);
}

/* mu held. */
static void ack_fatal(nats_sink_t *s, uint64_t seq, const char *why) {
    s->failed++;
    ack(s, seq, OUTBOX_SINK_FATAL, why);
}

/* An event that can never be delivered, from the sink's thread. */
static void fail_event(nats_sink_t *s, uint64_t seq, const char *why) {
    pthread_mutex_lock(&s->mu);
    ack_fatal(s, seq, why);
    pthread_mutex_unlock(&s->mu);
}

/* Turns a PubAck into the host's ack. mu held. Runs on libnats's thread. */
static void settle_puback(nats_sink_t *s, uint64_t seq, const char *subject, jsPubAck *pa,
                          jsPubAckErr *pae) {
    char why[600];

    if (pa != NULL) {
        /* duplicate: the stream had this Nats-Msg-Id within its window. It
         * holds the event, which is all an ack promises. */
        s->acked_ok++;
        if (pa->Duplicate) s->duplicates++;
        ack(s, seq, OUTBOX_SINK_OK, NULL);
        return;
    }
    const char *text = pae && pae->ErrText ? pae->ErrText : "unknown error";
    natsStatus err = pae ? pae->Err : NATS_ERR;
    jsErrCode code = pae ? pae->ErrCode : 0;

    if (err == NATS_NO_RESPONDERS) {
        /* No stream listens on the subject, or none did at that instant:
         * poll finds out which (see nats.h). */
        suspect_t *grown = s->suspects;
        char *copy = strdup(subject);
        if (copy != NULL && s->n_suspects == s->suspects_cap) {
            size_t cap = s->suspects_cap ? s->suspects_cap * 2 : 64;
            grown = realloc(s->suspects, cap * sizeof *grown);
            if (grown != NULL) {
                s->suspects = grown;
                s->suspects_cap = cap;
            }
        }
        if (copy == NULL || grown == NULL) {
            free(copy);
            ack_retry(s, seq, "nats sink: no responders for the subject, and out of memory");
            return;
        }
        s->suspects[s->n_suspects].seq = seq;
        s->suspects[s->n_suspects].subject = copy;
        s->n_suspects++;
        return;
    }
    if (code == JSStreamMessageExceedsMaximumErr) {
        snprintf(why, sizeof why, "nats sink: subject \"%s\": the stream refuses the event: %s (%d)",
                 subject, text, (int)code);
        ack_fatal(s, seq, why);
    } else if (code == JSStreamNotMatchErr) {
        snprintf(why, sizeof why,
                 "nats sink: subject \"%s\" is stored by another stream than \"%s\" (option stream): %s",
                 subject, s->stream ? s->stream : "?", text);
        ack_fatal(s, seq, why);
    } else if (err == NATS_TIMEOUT) {
        snprintf(why, sizeof why, "nats sink: no PubAck for subject \"%s\" within %" PRId64 " ms",
                 subject, s->ack_timeout_ms);
        ack_retry(s, seq, why);
    } else {
        /* Storage trouble, limits, a cluster without a leader...: these pass. */
        snprintf(why, sizeof why, "nats sink: PubAck error for subject \"%s\": %s (%d)", subject,
                 text, (int)code);
        ack_retry(s, seq, why);
    }
}

/* libnats's PubAck handler, on the thread of its reply subscription. msg is
 * ours again to destroy. */
void nats_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    nats_sink_t *s = closure;
    uint64_t seq;

    pthread_mutex_lock(&s->mu);
    /* Not in the table: close or a reconnect took it back meanwhile, and
     * it has been dealt with. Acking it here would be a second ack. */
    if (inflight_take(s, msg, &seq)) {
        settle_puback(s, seq, natsMsg_GetSubject(msg), pa, pae);
        s->ack_events++;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
    natsMsg_Destroy(msg);
}

/* ---- after a reconnect ------------------------------------------------------- */

/* When the connection has reconnected since the last check, hands every
 * publish still in flight back to outboxd (RETRY), before anything new is
 * sent: see nats.h. Returns how many it handed back (0: no
 * reconnect, or nothing was in flight). Sink thread only. */
static long take_back_after_reconnect(nats_sink_t *s) {
    uint64_t reconnects = 0;
    if (s->core || natsConnection_GetStats(s->nc, s->stats) != NATS_OK ||
        natsStatistics_GetCounts(s->stats, NULL, NULL, NULL, NULL, &reconnects) != NATS_OK ||
        reconnects == s->reconnects)
        return 0;
    s->reconnects = reconnects;

    natsMsgList list = {0};
    long n = 0;
    /* libnats 3.4.1 crashes in GetPendingList before its first successful
     * async publish (its pending map does not exist yet). */
    if (s->published > 0 && js_PublishAsyncGetPendingList(&list, s->js) == NATS_OK) {
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < list.Count; i++) {
            uint64_t seq;
            if (list.Msgs[i] != NULL && inflight_take(s, list.Msgs[i], &seq)) {
                s->retried++; /* the summary below stands for the usual warning */
                ack(s, seq, OUTBOX_SINK_RETRY,
                    "nats sink: the connection was lost while the event was in flight: publishing it again");
                n++;
            }
        }
        s->ack_events++;
        pthread_mutex_unlock(&s->mu);
        natsMsgList_Destroy(&list);
    }
    if (n > 0)
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_INFO,
                     "reconnected: %ld publish(es) in flight on the lost connection go again, "
                     "in log order", n);
    return n;
}

/* ---- "503 no responders": is there a stream? ------------------------------ */

/* (nats.h) */
int nats_stream_for_subject(nats_sink_t *s, const char *subject, char *name, size_t name_size, char *err,
                            size_t err_size) {
    char body[1200];
    size_t o = 0;

    o += (size_t)snprintf(body, sizeof body, "{\"subject\":\"");
    for (const char *p = subject; *p && o + 8 < sizeof body; p++) {
        if (*p == '"' || *p == '\\') body[o++] = '\\';
        body[o++] = *p;
    }
    o += (size_t)snprintf(body + o, sizeof body - o, "\"}");

    natsMsg *reply = NULL;
    natsStatus st = natsConnection_Request(&reply, s->nc, "$JS.API.STREAM.NAMES", body, (int)o,
                                           s->ack_timeout_ms);
    if (st != NATS_OK) {
        if (st == NATS_NO_RESPONDERS)
            snprintf(err, err_size, "the JetStream API does not answer (is JetStream enabled?)");
        else
            nats_error_text(st, err, err_size);
        return -1;
    }
    int len = natsMsg_GetDataLength(reply);
    char *json = strndup(natsMsg_GetData(reply) ? natsMsg_GetData(reply) : "", (size_t)(len > 0 ? len : 0));
    natsMsg_Destroy(reply);
    if (json == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    /* The reply is small JSON: {"type":...,"total":N,...,"streams":["A",...]}
     * or {"error":{"code":...,"description":"..."}}. libnats has no public
     * JSON parser; these few fields are found by name. */
    int result = -1;
    const char *p;
    if (strstr(json, "\"error\"") != NULL) {
        p = strstr(json, "\"description\":\"");
        snprintf(err, err_size, "the JetStream API answered an error: %.*s",
                 p ? (int)strcspn(p + 15, "\"") : 3, p ? p + 15 : "?");
    } else if ((p = strstr(json, "\"total\":")) != NULL && strtoll(p + 8, NULL, 10) == 0) {
        result = 0;
    } else if ((p = strstr(json, "\"streams\":[\"")) != NULL) {
        snprintf(name, name_size, "%.*s", (int)strcspn(p + 12, "\""), p + 12);
        result = 1;
    } else {
        snprintf(err, err_size, "the JetStream API answered something unexpected");
    }
    free(json);
    return result;
}

/* Decides the events that got "503 no responders". Sink thread only. */
static void settle_suspects(nats_sink_t *s) {
    pthread_mutex_lock(&s->mu);
    suspect_t *list = s->suspects;
    size_t n = s->n_suspects;
    s->suspects = NULL;
    s->n_suspects = s->suspects_cap = 0;
    pthread_mutex_unlock(&s->mu);
    if (n == 0) {
        free(list);
        return;
    }

    /* One question per subject: events to one subject share the answer. */
    const char *subject = NULL;
    int verdict = -1;
    char why[900], name[256], err[512];
    for (size_t i = 0; i < n; i++) {
        if (subject == NULL || strcmp(subject, list[i].subject) != 0) {
            subject = list[i].subject;
            verdict = nats_stream_for_subject(s, subject, name, sizeof name, err, sizeof err);
            if (verdict == 0)
                snprintf(why, sizeof why,
                         "nats sink: no JetStream stream covers subject \"%s\" (the server answered "
                         "503 no responders, and no stream lists the subject): add the subject to a "
                         "stream, or change the sink's route",
                         subject);
            else if (verdict == 1)
                snprintf(why, sizeof why,
                         "nats sink: subject \"%s\": no responders, although stream \"%s\" covers it "
                         "(starting up?): retrying",
                         subject, name);
            else
                snprintf(why, sizeof why,
                         "nats sink: subject \"%s\": no responders, and no stream lookup: %s", subject,
                         err);
        }
        pthread_mutex_lock(&s->mu);
        if (verdict == 0)
            ack_fatal(s, list[i].seq, why);
        else
            ack_retry(s, list[i].seq, why);
        s->ack_events++;
        pthread_mutex_unlock(&s->mu);
    }
    for (size_t i = 0; i < n; i++) free(list[i].subject);
    free(list);
}

/* ----------------------------------------------------------------------------
 * publish
 * ------------------------------------------------------------------------- */

/* Is the connection usable now? OK, RETRY (reconnecting) or FATAL (closed:
 * outboxd reopens the sink), with errbuf set. */
static int connection_state(nats_sink_t *s, char *errbuf, size_t errbuf_size) {
    natsConnStatus cs = natsConnection_Status(s->nc);
    if (cs == NATS_CONN_STATUS_CONNECTED) return OUTBOX_SINK_OK;
    if (cs == NATS_CONN_STATUS_CLOSED) {
        snprintf(errbuf, errbuf_size, "nats sink: the connection to %s is closed (max_reconnect reached?)",
                 s->servers_shown);
        return OUTBOX_SINK_FATAL;
    }
    snprintf(errbuf, errbuf_size, "nats sink: not connected to NATS (reconnecting to %s)", s->servers_shown);
    return OUTBOX_SINK_RETRY;
}

/* JetStream: sends each event asynchronously; its PubAck acks it later.
 * Takes events[0..*taken): each of them is in flight or acked (FATAL when
 * it can never be a message). Stops short when max_pending publishes are
 * in flight (OK: outboxd polls, then offers the rest again), and on a
 * reconnect or a failed send (RETRY: outboxd backs off first). */
static int publish_jetstream(nats_sink_t *s, const outbox_sink_event_t *events, size_t n, size_t *taken,
                             char *errbuf, size_t errbuf_size) {
    char why[900];

    for (size_t i = 0; i < n; *taken = ++i) {
        const outbox_sink_event_t *ev = &events[i];
        natsMsg *m = NULL;

        /* Before each send: a reconnect since the last one means the events
         * in flight go again first (this batch's included). */
        if (take_back_after_reconnect(s) > 0) {
            snprintf(errbuf, errbuf_size, "nats sink: reconnected to NATS: publishing again from the "
                                          "first event that was in flight");
            return OUTBOX_SINK_RETRY;
        }
        int rc = nats_build_msg(ev, s->as_given, &m, why, sizeof why);
        if (rc > 0) {
            fail_event(s, ev->seq, why);
            continue;
        }
        if (rc < 0) {
            snprintf(errbuf, errbuf_size, "%s", why);
            return OUTBOX_SINK_RETRY;
        }

        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = ev->id;
        po.MaxWait = s->ack_timeout_ms;
        po.ExpectStream = s->stream;
        natsMsg *sent = m;
        pthread_mutex_lock(&s->mu);
        rc = inflight_put(s, sent, ev->seq);
        pthread_mutex_unlock(&s->mu);
        if (rc != 0) {
            natsMsg_Destroy(m);
            snprintf(errbuf, errbuf_size, "nats sink: out of memory");
            return OUTBOX_SINK_RETRY;
        }
        /* Not under mu: when max_pending are in flight this waits for the
         * ack handler, which takes mu. */
        natsStatus st = js_PublishMsgAsync(s->js, &m, &po);
        if (st == NATS_OK) {
            pthread_mutex_lock(&s->mu);
            s->published++;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        /* Not taken: the message is still ours and never reached the ack
         * handler. */
        uint64_t seq;
        pthread_mutex_lock(&s->mu);
        inflight_take(s, sent, &seq);
        pthread_mutex_unlock(&s->mu);
        natsMsg_Destroy(m);
        if (st == NATS_MAX_PAYLOAD) {
            snprintf(why, sizeof why,
                     "nats sink: the event (%zu bytes of payload) is larger than the server's "
                     "max_payload (%" PRId64 " bytes)",
                     ev->payload_len, natsConnection_GetMaxPayload(s->nc));
            fail_event(s, ev->seq, why);
            continue;
        }
        rc = connection_state(s, errbuf, errbuf_size);
        if (rc != OUTBOX_SINK_OK) return rc;
        /* libnats waited StallWait for room under max_pending: full for now. */
        if (st == NATS_TIMEOUT) return OUTBOX_SINK_OK;
        char text[512];
        nats_error_text(st, text, sizeof text);
        snprintf(errbuf, errbuf_size, "nats sink: cannot publish to \"%s\" now: %s", ev->destination, text);
        return OUTBOX_SINK_RETRY;
    }
    return OUTBOX_SINK_OK;
}

/* Core: publishes the batch and acks it once a flush shows the server read
 * it; all of it or none (*taken stays 0, nothing acked) when a send or the
 * flush fails. An event that can never be a message is acked FATAL with
 * the rest, so that a batch that goes again acks nothing twice. */
static int publish_core(nats_sink_t *s, const outbox_sink_event_t *events, size_t n, size_t *taken,
                        char *errbuf, size_t errbuf_size) {
    char why[900];
    uint64_t before = 0, after = 0;
    char **bad = calloc(n ? n : 1, sizeof *bad); /* why an event cannot be sent; NULL: sent */
    int rc = OUTBOX_SINK_RETRY;
    if (bad == NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    natsConnection_GetStats(s->nc, s->stats);
    natsStatistics_GetCounts(s->stats, NULL, NULL, NULL, NULL, &before);

    for (size_t i = 0; i < n; i++) {
        natsMsg *m = NULL;
        int built = nats_build_msg(&events[i], s->as_given, &m, why, sizeof why);
        natsStatus st = built > 0 ? NATS_INVALID_ARG : built == 0 ? natsConnection_PublishMsg(s->nc, m) : NATS_NO_MEMORY;
        natsMsg_Destroy(m);
        if (st == NATS_MAX_PAYLOAD)
            snprintf(why, sizeof why,
                     "nats sink: the event (%zu bytes of payload) is larger than the server's "
                     "max_payload (%" PRId64 " bytes)",
                     events[i].payload_len, natsConnection_GetMaxPayload(s->nc));
        if (built > 0 || st == NATS_MAX_PAYLOAD) {
            if ((bad[i] = strdup(why)) != NULL) continue;
            st = NATS_NO_MEMORY;
        }
        if (st == NATS_OK) continue;
        /* What was sent may reach subscribers twice (at least once). */
        rc = connection_state(s, errbuf, errbuf_size);
        if (rc == OUTBOX_SINK_OK) {
            char text[512];
            nats_error_text(st, text, sizeof text);
            snprintf(errbuf, errbuf_size, "nats sink: cannot publish to \"%s\": %s", events[i].destination, text);
            rc = OUTBOX_SINK_RETRY;
        }
        goto done;
    }

    /* The flush is a PING after the batch: its PONG means the server has
     * read every message before it. A reconnect in between would make the
     * PONG come from a connection that never saw the first messages. */
    natsStatus st = natsConnection_FlushTimeout(s->nc, s->ack_timeout_ms);
    natsConnection_GetStats(s->nc, s->stats);
    natsStatistics_GetCounts(s->stats, NULL, NULL, NULL, NULL, &after);
    if (st != NATS_OK || after != before) {
        char text[512];
        if (st != NATS_OK) nats_error_text(st, text, sizeof text);
        else snprintf(text, sizeof text, "the connection was lost and re-established during the batch");
        snprintf(errbuf, errbuf_size, "nats sink: flush to %s: %s", s->servers_shown, text);
        rc = connection_state(s, why, sizeof why) == OUTBOX_SINK_FATAL ? OUTBOX_SINK_FATAL : OUTBOX_SINK_RETRY;
        goto done;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        if (bad[i] != NULL) {
            ack_fatal(s, events[i].seq, bad[i]);
            continue;
        }
        s->published++;
        s->acked_ok++;
        ack(s, events[i].seq, OUTBOX_SINK_OK, NULL);
    }
    pthread_mutex_unlock(&s->mu);
    *taken = n;
    rc = OUTBOX_SINK_OK;
done:
    for (size_t i = 0; i < n; i++) free(bad[i]);
    free(bad);
    return rc;
}

int nats_publish_some(void *state, const outbox_sink_event_t *events, size_t n, size_t *taken,
                      char *errbuf, size_t errbuf_size) {
    nats_sink_t *s = state;
    *taken = 0;
    int rc = connection_state(s, errbuf, errbuf_size);
    if (rc != OUTBOX_SINK_OK) return rc;
    return s->core ? publish_core(s, events, n, taken, errbuf, errbuf_size)
                   : publish_jetstream(s, events, n, taken, errbuf, errbuf_size);
}

/* Figures for outboxd's metrics endpoint (sink thread, between callbacks). */
void nats_stats(void *state, outbox_sink_stat_fn emit, void *emit_ctx) {
    nats_sink_t *s = state;
    uint64_t reconnects = 0;
    if (natsConnection_GetStats(s->nc, s->stats) == NATS_OK)
        natsStatistics_GetCounts(s->stats, NULL, NULL, NULL, NULL, &reconnects);
    pthread_mutex_lock(&s->mu);
    double in_flight = (double)(s->count + s->n_suspects);
    double published = (double)s->published, acked = (double)s->acked_ok, dup = (double)s->duplicates;
    double retried = (double)s->retried, failed = (double)s->failed;
    pthread_mutex_unlock(&s->mu);
    emit(emit_ctx, "nats_in_flight", OUTBOX_SINK_STAT_GAUGE, in_flight,
         "jetstream: publishes sent and still without their PubAck");
    emit(emit_ctx, "nats_published_total", OUTBOX_SINK_STAT_COUNTER, published, "messages NATS took");
    emit(emit_ctx, "nats_acked_total", OUTBOX_SINK_STAT_COUNTER, acked, "events acked OK (stored, or read in core mode)");
    emit(emit_ctx, "nats_duplicates_total", OUTBOX_SINK_STAT_COUNTER, dup,
         "PubAcks saying the stream already had the event (Nats-Msg-Id)");
    emit(emit_ctx, "nats_retried_total", OUTBOX_SINK_STAT_COUNTER, retried, "events handed back to be published again");
    emit(emit_ctx, "nats_failed_total", OUTBOX_SINK_STAT_COUNTER, failed, "events acked FATAL");
    emit(emit_ctx, "nats_reconnects_total", OUTBOX_SINK_STAT_COUNTER, (double)reconnects,
         "times the connection to NATS was re-established");
}

/* ----------------------------------------------------------------------------
 * poll, flush, close
 * ------------------------------------------------------------------------- */

/* Serves what the sink thread must do (publishes to hand back after a
 * reconnect, "no responders" to decide), then waits up to timeout_ms for
 * an ack, unless one came since the last poll. */
int nats_poll(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    nats_sink_t *s = state;
    if (s->core) return OUTBOX_SINK_OK; /* core acks within publish */
    take_back_after_reconnect(s);
    settle_suspects(s);
    pthread_mutex_lock(&s->mu);
    if (s->ack_events == s->ack_events_polled && s->count > 0 && timeout_ms > 0)
        wait_ms(s, timeout_ms);
    s->ack_events_polled = s->ack_events;
    pthread_mutex_unlock(&s->mu);
    return OUTBOX_SINK_OK;
}

/* Waits until every publish has its ack (the PubAcks, and the decisions on
 * "no responders"), or timeout_ms. */
int nats_flush(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    nats_sink_t *s = state;
    int64_t deadline = now_ms() + timeout_ms;
    size_t left;

    if (s->core) return OUTBOX_SINK_OK;
    for (;;) {
        take_back_after_reconnect(s);
        settle_suspects(s);
        pthread_mutex_lock(&s->mu);
        left = s->count + s->n_suspects;
        int64_t remaining = deadline - now_ms();
        if (left > 0 && remaining > 0 && s->n_suspects == 0) wait_ms(s, remaining < 50 ? remaining : 50);
        pthread_mutex_unlock(&s->mu);
        if (left == 0) return OUTBOX_SINK_OK;
        if (remaining <= 0) break;
    }
    snprintf(errbuf, errbuf_size, "nats sink: %zu publish(es) still without a PubAck after %d ms", left,
             timeout_ms);
    return OUTBOX_SINK_RETRY;
}

/* Takes back from libnats every publish still in flight, without acking it
 * (close: "treated as not delivered"). Returns how many. */
size_t nats_take_back_all(nats_sink_t *s) {
    natsMsgList list = {0};
    size_t n = 0;
    /* published > 0: see take_back_after_reconnect. */
    if (s->js == NULL || s->published == 0 || js_PublishAsyncGetPendingList(&list, s->js) != NATS_OK)
        return 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < list.Count; i++) {
        uint64_t seq;
        if (list.Msgs[i] != NULL && inflight_take(s, list.Msgs[i], &seq)) n++;
    }
    pthread_mutex_unlock(&s->mu);
    natsMsgList_Destroy(&list);
    return n;
}
