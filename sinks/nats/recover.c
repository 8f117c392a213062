/*
 * recover.c - the NATS sink's recover (ABI 1.1; docs/recovery.md): after a
 * crash or a takeover, which of the events in doubt a JetStream stream
 * stores already, so that de-duplication no longer depends on the
 * stream's duplicate window (2 minutes by default): an outboxd down for
 * longer published them again.
 *
 * The earlier run published the events in log order, so each one a stream
 * stored is among its last m messages, m being the number of those events
 * whose subjects that stream holds. Each is read back by sequence
 * (js_GetMsg) and known by its Nats-Msg-Id, which is the event's id in
 * every format (subject.c). This assumes nobody else publishes to the
 * stream meanwhile and nothing deletes its newest messages; where others
 * do publish, the duplicate window still applies (sinks/nats/README.md).
 * Core NATS stores nothing to read back: there recover finds nothing and
 * the sink stays at-least-once.
 */
#include "nats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *subject;
    size_t i;
    char stream[256]; /* "" when no stream holds the subject */
} by_subject_t;

static int by_subject_cmp(const void *a, const void *b) {
    const by_subject_t *x = a, *y = b;
    int c = strcmp(x->subject, y->subject);
    return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

static int by_stream_cmp(const void *a, const void *b) {
    const by_subject_t *x = a, *y = b;
    int c = strcmp(x->stream, y->stream);
    return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

typedef struct {
    const char *id;
    size_t i;
} by_id_t;

static int by_id_cmp(const void *a, const void *b) {
    return strcmp(((const by_id_t *)a)->id, ((const by_id_t *)b)->id);
}

/* The events of one stream, ev[0..m): marks held[] for those whose id is
 * the Nats-Msg-Id of one of the stream's last m messages. */
static int recover_stream(nats_sink_t *s, const char *stream, const by_subject_t *ev, size_t m,
                          const outbox_sink_event_t *events, unsigned char *held, char *errbuf,
                          size_t errbuf_size) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetStreamInfo(&si, s->js, stream, NULL, &jerr);
    if (st != NATS_OK) {
        char why[300];
        nats_error_text(st, why, sizeof why);
        snprintf(errbuf, errbuf_size, "nats sink: stream %s: cannot read its state: %s", stream, why);
        return OUTBOX_SINK_RETRY;
    }
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    /* The ids, sorted, to look each message's up. */
    by_id_t *ids = malloc(m * sizeof *ids);
    if (ids == NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    for (size_t j = 0; j < m; j++) ids[j] = (by_id_t){events[ev[j].i].id, ev[j].i};
    qsort(ids, m, sizeof *ids, by_id_cmp);
    int rc = OUTBOX_SINK_OK;
    size_t found = 0, tries = 0;
    for (uint64_t seq = last; seq >= first && seq > 0 && found < m && tries < 2 * m + 16; seq--, tries++) {
        natsMsg *msg = NULL;
        jerr = 0;
        st = js_GetMsg(&msg, s->js, stream, seq, NULL, &jerr);
        if (st == NATS_NOT_FOUND) continue; /* deleted */
        if (st != NATS_OK) {
            char why[300];
            nats_error_text(st, why, sizeof why);
            snprintf(errbuf, errbuf_size, "nats sink: stream %s: cannot read message %llu back: %s", stream,
                     (unsigned long long)seq, why);
            rc = OUTBOX_SINK_RETRY;
            break;
        }
        found++;
        const char *id = NULL;
        if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != NULL) {
            by_id_t key = {id, 0};
            by_id_t *hit = bsearch(&key, ids, m, sizeof *ids, by_id_cmp);
            if (hit != NULL) held[hit->i] = 1; /* (an id twice in the list: one is enough to mark) */
        }
        natsMsg_Destroy(msg);
    }
    free(ids);
    return rc;
}

int nats_recover(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held, char *errbuf,
                 size_t errbuf_size) {
    nats_sink_t *s = state;
    if (s->core || n == 0) return OUTBOX_SINK_OK; /* core NATS keeps nothing to read back */
    by_subject_t *order = calloc(n, sizeof *order);
    if (order == NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    for (size_t i = 0; i < n; i++) order[i] = (by_subject_t){.subject = events[i].destination, .i = i};
    /* Each subject's stream, asked once per subject. */
    qsort(order, n, sizeof *order, by_subject_cmp);
    int rc = OUTBOX_SINK_OK;
    for (size_t a = 0; a < n && rc == OUTBOX_SINK_OK;) {
        size_t b = a + 1;
        while (b < n && strcmp(order[b].subject, order[a].subject) == 0) b++;
        char name[256] = "", err[512];
        int got = nats_stream_for_subject(s, order[a].subject, name, sizeof name, err, sizeof err);
        if (got < 0) {
            snprintf(errbuf, errbuf_size, "nats sink: which stream holds %s: %s", order[a].subject, err);
            rc = OUTBOX_SINK_RETRY;
        }
        for (size_t i = a; i < b; i++) snprintf(order[i].stream, sizeof order[i].stream, "%s", got == 1 ? name : "");
        a = b;
    }
    /* Then stream by stream; events no stream holds were never stored. */
    qsort(order, n, sizeof *order, by_stream_cmp);
    for (size_t a = 0; a < n && rc == OUTBOX_SINK_OK;) {
        size_t b = a + 1;
        while (b < n && strcmp(order[b].stream, order[a].stream) == 0) b++;
        if (order[a].stream[0] != '\0')
            rc = recover_stream(s, order[a].stream, order + a, b - a, events, held, errbuf, errbuf_size);
        a = b;
    }
    free(order);
    return rc;
}
