/*
 * subject.c - from an event to a NATS message: the subject rule (README:
 * Subjects), which envelope headers NATS can carry, and build_msg, which
 * makes the natsMsg with the sink's headers or says why the event can
 * never be one (a FATAL for that event alone).
 */
#include "nats.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ----------------------------------------------------------------------------
 * Checking an event before it becomes a message
 * ------------------------------------------------------------------------- */

/* Subjects longer than this are refused. nats-server closes the connection
 * when a protocol line (HPUB subject reply sizes) exceeds its
 * max_control_line, 4096 bytes by default: such an event would break the
 * connection at every retry. The JetStream reply subject and sizes take
 * about 100 bytes. */
#define SUBJECT_MAX 3072

/* The subject rule (README: Subjects): tokens separated by '.', none
 * empty; no '*' or '>' anywhere (wildcards, for subscriptions); no white
 * space or control character (C0, DEL, C1); valid UTF-8; at most
 * SUBJECT_MAX bytes. Returns NULL or what is wrong. */
static const char *subject_problem(const char *subject) {
    if (strlen(subject) > SUBJECT_MAX) return "it is longer than 3072 bytes";
    const unsigned char *token = (const unsigned char *)subject;
    for (const unsigned char *p = token;;) {
        if (*p == '.' || *p == '\0') {
            if (p == token) return "it has an empty token (a leading, trailing or double '.')";
            if (*p == '\0') return NULL;
            token = ++p;
            continue;
        }
        if (*p == '*' || *p == '>')
            return "it has a wildcard ('*' or '>'), which only subscriptions may use";
        if (*p <= ' ' || *p == 0x7f) return "it has white space or a control character";
        size_t n = outbox_sink_utf8_len(p);
        if (n == 0) return "it is not valid UTF-8";
        if (p[0] == 0xc2 && p[1] < 0xa0) return "it has white space or a control character";
        p += n;
    }
}

/* A header name NATS can carry (printable ASCII, no ':') that does not
 * start with a prefix NATS or the sink reserves. Nats-* headers are
 * instructions to the server (Nats-Expected-Stream, Nats-Rollup, ...): a
 * producer must not be able to give them through an event. */
static const char *header_name_problem(const char *name) {
    if (*name == '\0') return "it is empty";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == ':')
            return "a header name is printable ASCII without spaces or ':'";
    }
    if (strncasecmp(name, "Nats-", 5) == 0) return "the Nats- prefix is reserved for the server";
    if (strncasecmp(name, "Outbox-", 7) == 0) return "the Outbox- prefix is reserved for the sink";
    return NULL;
}

/* Header values travel as one text line: no CR, LF or other control bytes
 * (tab is fine). */
static int header_value_ok(const char *value) {
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p < ' ' && *p != '\t') || *p == 0x7f) return 0;
    }
    return 1;
}

/* ----------------------------------------------------------------------------
 * Building a message
 * ------------------------------------------------------------------------- */

/* The event as a natsMsg with its headers, or a reason why it can never be
 * one. Returns 0 (msg set), 1 (the event is bad: why says why, FATAL) or -1
 * (libnats failed, out of memory: why says so, RETRY). as_given (a format
 * other than native, sink.h): the headers outboxd built and no Outbox-*
 * header; Nats-Msg-Id stays, JetStream's de-duplication needs it. */
int nats_build_msg(const outbox_sink_event_t *ev, int as_given, natsMsg **msg, char *why, size_t why_size) {
    const char *problem = subject_problem(ev->destination);
    if (problem != NULL) {
        char shown[400];
        outbox_sink_quote(ev->destination, 120, shown, sizeof shown);
        snprintf(why, why_size, "nats sink: event %s: subject \"%s\" refused: %s", ev->id, shown,
                 problem);
        return 1;
    }
    if (ev->payload_len > INT_MAX) {
        snprintf(why, why_size, "nats sink: payload of %zu bytes is too large", ev->payload_len);
        return 1;
    }
    for (size_t i = 0; i < ev->n_headers; i++) {
        if ((problem = header_name_problem(ev->headers[i].name)) != NULL) {
            snprintf(why, why_size, "nats sink: envelope header \"%s\" cannot be sent: %s",
                     ev->headers[i].name, problem);
            return 1;
        }
        if (!header_value_ok(ev->headers[i].value)) {
            snprintf(why, why_size,
                     "nats sink: envelope header \"%s\" cannot be sent: its value has a line break "
                     "or a control character",
                     ev->headers[i].name);
            return 1;
        }
    }

    char created[OUTBOX_SINK_TIME_SIZE];
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, ev->destination, NULL, (const char *)ev->payload,
                                   (int)ev->payload_len);
    for (size_t i = 0; st == NATS_OK && i < ev->n_headers; i++)
        st = natsMsgHeader_Add(m, ev->headers[i].name, ev->headers[i].value);
    /* Nats-Msg-Id in core mode too: a stream that also captures the subject
     * de-duplicates as well, and subscribers can use it. In JetStream mode
     * jsPubOptions.MsgId sets the same header again. */
    if (st == NATS_OK) st = natsMsgHeader_Set(m, "Nats-Msg-Id", ev->id);
    if (as_given) {
        if (st != NATS_OK) {
            natsMsg_Destroy(m);
            nats_error_text(st, why, why_size);
            return -1;
        }
        *msg = m;
        return 0;
    }
    if (st == NATS_OK) st = natsMsgHeader_Set(m, "Outbox-Id", ev->id);
    if (st == NATS_OK) st = natsMsgHeader_Set(m, "Outbox-Type", ev->type);
    if (st == NATS_OK && ev->key != NULL) {
        if (header_value_ok(ev->key))
            st = natsMsgHeader_Set(m, "Outbox-Key", ev->key);
        else {
            natsMsg_Destroy(m);
            snprintf(why, why_size,
                     "nats sink: the event's key cannot be the Outbox-Key header: it has a line "
                     "break or a control character");
            return 1;
        }
    }
    if (st == NATS_OK && outbox_sink_format_time(ev->created_ms, created) == 0)
        st = natsMsgHeader_Set(m, "Outbox-Created", created);
    if (st != NATS_OK) {
        natsMsg_Destroy(m);
        nats_error_text(st, why, why_size);
        return -1;
    }
    *msg = m;
    return 0;
}
