/*
 * msgformat.c - see msgformat.h.
 */
#include "config.h"

#include "msgformat.h"

#include "ejson.h"
#include "plugin.h"

#include <stdlib.h>
#include <string.h>

static const char *const format_names[] = {"native", "cloudevents", "debezium"};

const char *outboxd_message_format_name(outboxd_message_format_t format) {
    return format >= 0 && format <= OUTBOXD_MESSAGE_DEBEZIUM ? format_names[format] : "native";
}

bool outboxd_msgformat_resolve(const outboxd_sink_conf_t *sink, const outbox_sink_plugin_t *plugin,
                               outboxd_msgformat_t *mf, char *why, size_t why_size) {
    memset(mf, 0, sizeof *mf);
    mf->format = sink->format;
    mf->bson = sink->payload == OUTBOXD_PAYLOAD_BSON;
    mf->source = sink->ce_source;
    if (sink->format == OUTBOXD_MESSAGE_NATIVE)
        return true;
    if (!OUTBOXD_PLUGIN_HAS(plugin, messages) || !(plugin->messages & OUTBOX_SINK_MESSAGES_AS_GIVEN)) {
        snprintf(why, why_size,
                 "format %s: plugin %s lays its messages out itself (it does not declare "
                 "OUTBOX_SINK_MESSAGES_AS_GIVEN, sink ABI 1.2): only format native",
                 format_names[sink->format], plugin->name);
        return false;
    }
    if (sink->format != OUTBOXD_MESSAGE_CLOUDEVENTS)
        return true;
    bool kafka = OUTBOXD_PLUGIN_HAS(plugin, cloudevents_binding) && plugin->cloudevents_binding &&
                 !strcmp(plugin->cloudevents_binding, "kafka");
    if (sink->ce_mode == OUTBOXD_CE_BINARY && !kafka) {
        snprintf(why, why_size,
                 "cloudevents.mode binary: plugin %s has no CloudEvents binding with headers that outboxd "
                 "knows (kafka): use structured",
                 plugin->name);
        return false;
    }
    mf->binary = kafka && sink->ce_mode != OUTBOXD_CE_STRUCTURED;
    if (!mf->binary && mf->bson) {
        snprintf(why, why_size,
                 "format cloudevents: plugin %s carries CloudEvents in structured mode, whose data is JSON: "
                 "the sink needs payload: json",
                 plugin->name);
        return false;
    }
    return true;
}

/* The W3C Trace Context headers: carried as themselves in every format. */
static bool trace_header(const char *name) {
    return !strcmp(name, "traceparent") || !strcmp(name, "tracestate");
}

bool outboxd_ce_extension_name(const char *name) {
    static const char *const own[] = {"id",   "source",  "specversion", "type",        "datacontenttype",
                                      "dataschema", "subject", "time",  "data", "data_base64", "partitionkey", NULL};
    size_t n = strlen(name);
    if (n == 0 || n > 20)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
            return false;
    for (size_t i = 0; own[i]; i++)
        if (!strcmp(name, own[i]))
            return false;
    return true;
}

/* The headers of one message are gathered first, pointing at the event's
 * own strings, then copied into one block (text) behind one array: two
 * allocations per message, however many headers (measured: a malloc per
 * name and value cost a CloudEvents message more than its JSON). */
typedef struct {
    outbox_sink_header_t *h; /* capacity cap; names not yet prefixed */
    bool *ce;                /* h[i]'s name takes the "ce_" prefix */
    size_t n, cap;
} gather_t;

static void put(gather_t *g, bool ce, const char *name, const char *value) {
    if (g->n == g->cap)
        abort(); /* a bug: outboxd_message_build counts every header it puts */
    g->ce[g->n] = ce;
    g->h[g->n].name = name;
    g->h[g->n++].value = value;
}

/* Copies the gathered names (prefixed) and values into m->text and points
 * m->headers at the copies. False when out of memory. */
static bool settle_headers(gather_t *g, outboxd_message_t *m) {
    size_t size = 0;
    for (size_t i = 0; i < g->n; i++)
        size += (g->ce[i] ? 3 : 0) + strlen(g->h[i].name) + 1 + strlen(g->h[i].value) + 1;
    char *text = malloc(size ? size : 1), *o = text;
    if (!text)
        return false;
    for (size_t i = 0; i < g->n; i++) {
        const char *name = o;
        if (g->ce[i]) {
            memcpy(o, "ce_", 3);
            o += 3;
        }
        size_t len = strlen(g->h[i].name) + 1;
        memcpy(o, g->h[i].name, len);
        o += len;
        const char *value = o;
        len = strlen(g->h[i].value) + 1;
        memcpy(o, g->h[i].value, len);
        o += len;
        g->h[i].name = name;
        g->h[i].value = value;
    }
    m->headers = g->h;
    m->n_headers = g->n;
    m->text = text;
    return true;
}

static const char *data_type(const outboxd_msgformat_t *mf) {
    return mf->bson ? "application/bson" : "application/json";
}

/* Binary content mode of the Kafka binding: every attribute a ce_ header,
 * the data the body as it is. */
static void cloudevents_binary(const outboxd_msgformat_t *mf, const outbox_sink_event_t *ev, gather_t *g,
                               const char *time) {
    put(g, true, "specversion", "1.0");
    put(g, true, "id", ev->id);
    put(g, true, "source", mf->source);
    put(g, true, "type", ev->type);
    if (time[0])
        put(g, true, "time", time);
    put(g, false, "content-type", data_type(mf));
    if (ev->key) {
        put(g, true, "subject", ev->key);
        put(g, true, "partitionkey", ev->key);
    }
    for (size_t i = 0; i < ev->n_headers; i++)
        if (outboxd_ce_extension_name(ev->headers[i].name))
            put(g, true, ev->headers[i].name, ev->headers[i].value);
}

/* One "name":"value" member of a JSON object, after a comma unless first. */
static void member(outboxd_json_text_t *t, const char *name, const char *value) {
    if (t->len > 1)
        outboxd_json_raw(t, ",", 1);
    outboxd_json_string(t, name, strlen(name));
    outboxd_json_raw(t, ":", 1);
    outboxd_json_string(t, value, strlen(value));
}

/* Structured content mode: one JSON object, the attributes and the data
 * (JSON, the sink's payload as it is) under "data". Written straight into
 * the body with the one JSON string escaper (ejson.h). */
static void cloudevents_structured(const outboxd_msgformat_t *mf, const outbox_sink_event_t *ev,
                                   outboxd_message_t *m, gather_t *g, const char *time) {
    outboxd_json_text_t t = {0};
    /* The attributes' usual size, so that the text is allocated once. */
    outboxd_json_reserve(&t, ev->payload_len + 192 + strlen(ev->id) + strlen(ev->type) + strlen(mf->source) +
                                 (ev->key ? 2 * strlen(ev->key) : 0));
    outboxd_json_raw(&t, "{", 1);
    member(&t, "specversion", "1.0");
    member(&t, "id", ev->id);
    member(&t, "source", mf->source);
    member(&t, "type", ev->type);
    if (time[0])
        member(&t, "time", time);
    member(&t, "datacontenttype", "application/json");
    if (ev->key) {
        member(&t, "subject", ev->key);
        member(&t, "partitionkey", ev->key);
    }
    for (size_t i = 0; i < ev->n_headers; i++)
        if (outboxd_ce_extension_name(ev->headers[i].name))
            member(&t, ev->headers[i].name, ev->headers[i].value);
    outboxd_json_raw(&t, ",\"data\":", 8);
    outboxd_json_raw(&t, (const char *)ev->payload, ev->payload_len);
    outboxd_json_raw(&t, "}", 1);
    m->body = (unsigned char *)t.p;
    m->body_len = t.len;
    put(g, false, "content-type", "application/cloudevents+json; charset=UTF-8");
}

bool outboxd_message_build(const outboxd_msgformat_t *mf, const outbox_sink_event_t *ev, outboxd_message_t *out) {
    memset(out, 0, sizeof *out);
    if (mf->format == OUTBOXD_MESSAGE_NATIVE)
        return true;
    char time[OUTBOX_SINK_TIME_SIZE];
    outbox_sink_format_time(ev->created_ms, time); /* "" outside years 0-9999: time is then left out */
    /* At most 8 headers of outboxd's own, and two per envelope header (a
     * trace header is a CloudEvents extension too). */
    gather_t g = {.cap = 8 + 2 * ev->n_headers};
    g.h = malloc(g.cap * (sizeof *g.h + sizeof *g.ce));
    if (!g.h)
        return false;
    g.ce = (bool *)(g.h + g.cap);
    if (mf->format == OUTBOXD_MESSAGE_DEBEZIUM) /* the outbox event router: the event id in "id" */
        put(&g, false, "id", ev->id);
    else if (mf->binary)
        cloudevents_binary(mf, ev, &g, time);
    else
        cloudevents_structured(mf, ev, out, &g, time);
    for (size_t i = 0; i < ev->n_headers; i++)
        if (trace_header(ev->headers[i].name))
            put(&g, false, ev->headers[i].name, ev->headers[i].value);
    if (!settle_headers(&g, out)) {
        free(g.h);
        outboxd_message_clear(out);
        return false;
    }
    return true;
}

void outboxd_message_clear(outboxd_message_t *m) {
    free(m->text);
    free(m->headers);
    free(m->body);
    memset(m, 0, sizeof *m);
}
