/*
 * msgformat.h - the message layouts outboxd applies for a sink's format
 * (docs/formats.md): CloudEvents (binary content mode, the Kafka binding;
 * or structured, application/cloudevents+json) and Debezium's outbox event
 * router layout. The format is applied here, where outboxd encodes, never
 * in a plugin: every sink, a third party's too, gets every format, and a
 * plugin receives protocol-neutral pieces (the headers to set, the body's
 * bytes) that it sends as given (sink.h, host->message_as_given).
 *
 * Native (the default) builds nothing: the plugin lays the event out as it
 * always did. Every format carries the envelope headers traceparent and
 * tracestate (W3C Trace Context) as headers of their own; CloudEvents also
 * as the Distributed Tracing extension's attributes, which its spec wants
 * to carry the same trace as the protocol's headers.
 */
#ifndef OUTBOXD_MSGFORMAT_H
#define OUTBOXD_MSGFORMAT_H

#include "conffile.h"

#include "outbox/sink.h"

#include <stdbool.h>
#include <stddef.h>

/* How one sink lays out its messages, resolved at its start. */
typedef struct {
    outboxd_message_format_t format;
    bool binary;             /* cloudevents: binary content mode (Kafka binding) */
    const char *source;      /* cloudevents.source, expanded (borrowed) */
    bool bson;               /* the payload is BSON (payload: bson) */
} outboxd_msgformat_t;

/* The layout of sink's messages with plugin: false, with why (a sentence
 * naming the sink's setting), when the plugin cannot carry that format
 * (it does not declare OUTBOX_SINK_MESSAGES_AS_GIVEN, ABI 1.2; binary mode
 * without a CloudEvents binding; structured mode with a BSON payload). */
bool outboxd_msgformat_resolve(const outboxd_sink_conf_t *sink, const outbox_sink_plugin_t *plugin,
                               outboxd_msgformat_t *mf, char *why, size_t why_size);

/* A message built for one event: its headers and body, owned. */
typedef struct {
    outbox_sink_header_t *headers;
    size_t n_headers;
    char *text;            /* the headers' names and values, back to back */
    unsigned char *body;   /* NULL: the event's payload as it is */
    size_t body_len;
} outboxd_message_t;

/* The message of ev (its id, type, key, created_ms, envelope headers and
 * payload, the data encoded for the sink) in mf's format, into *out (to be
 * cleared with outboxd_message_clear). False when out of memory. */
bool outboxd_message_build(const outboxd_msgformat_t *mf, const outbox_sink_event_t *ev, outboxd_message_t *out);

/* Frees what the message owns and empties it. */
void outboxd_message_clear(outboxd_message_t *m);

/* The format's name as the config writes it (host->format). */
const char *outboxd_message_format_name(outboxd_message_format_t format);

/* Whether name may be a CloudEvents extension attribute: 1 to 20 of a-z
 * and 0-9, and none of the spec's own attribute names. */
bool outboxd_ce_extension_name(const char *name);

#endif
