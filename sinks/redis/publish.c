/*
 * publish.c - the Redis sink's publish: each event as one XADD (or one
 * call of the dedupe script), sent in pipelines, each event acked from its
 * own reply (redis.c's comment has the mapping).
 */
#include "redis_sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * The dedupe script
 * ------------------------------------------------------------------------- */

/* Adds the entry unless the event's dedupe key exists. The key is set
 * after XADD, not before with SET NX: Redis does not roll a script back,
 * so a SET followed by a failing XADD (WRONGTYPE) would leave a mark that
 * makes every retry of the event a "duplicate" that was never added. The
 * key's value is the entry id, which a duplicate reply returns.
 *
 * KEYS[1] the stream, KEYS[2] the dedupe key; ARGV[1] the TTL in seconds,
 * ARGV[2] how many trimming arguments follow, then those, then the entry's
 * field/value pairs. Returns the new entry's id, or {"duplicate", id}. */
const char redis_dedupe_script[] =
    "local seen = redis.call('GET', KEYS[2])\n"
    "if seen then return {'duplicate', seen} end\n"
    "local n = tonumber(ARGV[2])\n"
    "local args = {'XADD', KEYS[1]}\n"
    "for i = 3, 2 + n do args[#args + 1] = ARGV[i] end\n"
    "args[#args + 1] = '*'\n"
    "for i = 3 + n, #ARGV do args[#args + 1] = ARGV[i] end\n"
    "local id = redis.call(unpack(args))\n"
    "redis.call('SET', KEYS[2], id, 'EX', ARGV[1])\n"
    "return id\n";

/* ----------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------- */

/* Makes room for argc arguments and bytes of scratch. -1: out of memory. */
static int reserve(redis_sink_t *s, size_t argc, size_t bytes) {
    if (argc > s->argv_cap) {
        const char **argv = realloc(s->argv, argc * sizeof *argv);
        if (argv == NULL) return -1;
        s->argv = argv;
        size_t *lens = realloc(s->argvlen, argc * sizeof *lens);
        if (lens == NULL) return -1;
        s->argvlen = lens;
        s->argv_cap = argc;
    }
    if (bytes > s->scratch_cap) {
        char *scratch = realloc(s->scratch, bytes);
        if (scratch == NULL) return -1;
        s->scratch = scratch;
        s->scratch_cap = bytes;
    }
    return 0;
}

/* The trimming arguments of one publish call: MAXLEN or MINID, "~" unless
 * exact (no operator means exact, on every version since 5.0), the
 * threshold. An age becomes an id from the clock now: entries older than
 * it go. */
typedef struct {
    const char *argv[3];
    size_t argc;
    char threshold[32];
} trim_args_t;

static void trim_prepare(const redis_sink_t *s, trim_args_t *t) {
    t->argc = 0;
    if (s->trim == TRIM_NONE) return;
    t->argv[t->argc++] = s->trim == TRIM_MAXLEN ? "MAXLEN" : "MINID";
    if (!s->cfg.trim_exact) t->argv[t->argc++] = "~";
    if (s->trim == TRIM_MINID_AGE) {
        int64_t cutoff = redis_now_ms(CLOCK_REALTIME) - s->minid_age_ms;
        snprintf(t->threshold, sizeof t->threshold, "%" PRId64, cutoff > 0 ? cutoff : 0);
        t->argv[t->argc++] = t->threshold;
    } else {
        t->argv[t->argc++] = s->trim_value;
    }
}

/* Puts the entry's field/value pairs of ev into s->argv from argc on (room
 * reserved by the caller: 12 + 2 * n_headers arguments and the "h:<name>"
 * bytes in *scratch, which moves past what it used):
 *   id <id> type <type> [key <key>] created <ms> payload <bytes> h:<name> <value> ...
 * or, for a format other than native (sink.h), the message's headers as
 * fields and its body as "payload", nothing of ours. Returns the new argc.
 * The one layout of an entry: publish writes it, recover (recover.c)
 * compares what a stream holds with it. */
size_t redis_entry_fields(redis_sink_t *s, const outbox_sink_event_t *ev, size_t argc, char **scratch,
                          char created[24]) {
#define ARG(str, len) (s->argv[argc] = (str), s->argvlen[argc] = (len), argc++)
#define ARGZ(str) ARG((str), strlen(str))
    if (s->as_given) {
        for (size_t h = 0; h < ev->n_headers; h++) {
            ARGZ(ev->headers[h].name);
            ARGZ(ev->headers[h].value);
        }
        ARGZ("payload");
        ARG((const char *)ev->payload, ev->payload_len);
        return argc;
    }
    ARGZ("id");
    ARGZ(ev->id);
    ARGZ("type");
    ARGZ(ev->type);
    /* A null key has no field at all, so that a reader can tell it from
     * an empty key. */
    if (ev->key != NULL) {
        ARGZ("key");
        ARGZ(ev->key);
    }
    snprintf(created, 24, "%" PRId64, ev->created_ms);
    ARGZ("created");
    ARGZ(created);
    ARGZ("payload");
    ARG((const char *)ev->payload, ev->payload_len);
    for (size_t h = 0; h < ev->n_headers; h++) {
        int len = sprintf(*scratch, "h:%s", ev->headers[h].name);
        ARG(*scratch, (size_t)len);
        *scratch += len + 1;
        ARGZ(ev->headers[h].value);
    }
#undef ARGZ
#undef ARG
    return argc;
}

int redis_entry_reserve(redis_sink_t *s, const outbox_sink_event_t *ev, size_t extra_argc, size_t extra_bytes) {
    size_t bytes = extra_bytes;
    for (size_t h = 0; h < ev->n_headers; h++) bytes += 3 + strlen(ev->headers[h].name);
    return reserve(s, extra_argc + 12 + 2 * ev->n_headers, bytes);
}

/* Appends one event's command to the pipeline:
 *   XADD <stream> [trim] * <the entry's fields>
 * or, with dedupe, EVALSHA <sha> 2 <stream> <dedupe key> <ttl> <n trim>
 * [trim] <the same fields> (EVAL <source> ... when eval_source). Every
 * argument goes with its length: binary-safe, so a BSON payload with NUL
 * bytes arrives whole. Returns 0, or -1 when out of memory (in hiredis
 * too: then the connection is unusable). */
static int append_command(redis_sink_t *s, const outbox_sink_event_t *ev, const trim_args_t *t,
                          int eval_source) {
    char created[24], ntrim[4];
    size_t argc = 0, bytes = 0;

    if (s->cfg.dedupe)
        bytes += strlen(s->cfg.dedupe_prefix) + strlen(ev->destination) + strlen(ev->id) + 2;
    if (redis_entry_reserve(s, ev, 12, bytes) != 0) return -1;

#define ARG(str, len) (s->argv[argc] = (str), s->argvlen[argc] = (len), argc++)
#define ARGZ(str) ARG((str), strlen(str))
    char *scratch = s->scratch;
    if (s->cfg.dedupe) {
        ARGZ(eval_source ? "EVAL" : "EVALSHA");
        ARGZ(eval_source ? redis_dedupe_script : s->sha);
        ARGZ("2");
        ARGZ(ev->destination);
        int len = sprintf(scratch, "%s%s:%s", s->cfg.dedupe_prefix, ev->destination, ev->id);
        ARG(scratch, (size_t)len);
        scratch += len + 1;
        ARGZ(s->dedupe_ttl);
        snprintf(ntrim, sizeof ntrim, "%zu", t->argc);
        ARGZ(ntrim);
        for (size_t i = 0; i < t->argc; i++) ARGZ(t->argv[i]);
    } else {
        ARGZ("XADD");
        ARGZ(ev->destination);
        for (size_t i = 0; i < t->argc; i++) ARGZ(t->argv[i]);
        ARGZ("*");
    }
#undef ARGZ
#undef ARG
    argc = redis_entry_fields(s, ev, argc, &scratch, created);
    /* hiredis copies the arguments into its buffer now. */
    return redisAppendCommandArgv(s->c, (int)argc, s->argv, s->argvlen) == REDIS_OK ? 0 : -1;
}

static void ack(redis_sink_t *s, uint64_t seq, outbox_sink_status_t status, const char *error) {
    if (status == OUTBOX_SINK_FATAL) s->refused++;
    s->host->ack(s->host->ctx, seq, status, error);
}

typedef enum {
    PIPE_OK,        /* every event acked (OK or FATAL) or set aside to send again */
    PIPE_TRANSIENT, /* an error reply that may pass: those events are not acked */
    PIPE_LOST,      /* the connection broke: the events after the last reply read are not acked */
} pipe_result_t;

/* Acks one event from its reply. An event whose EVALSHA found no script is
 * put in resend (when not NULL) to go again with EVAL; a transient error
 * leaves it unacked and returns PIPE_TRANSIENT. */
static pipe_result_t ack_reply(redis_sink_t *s, const outbox_sink_event_t *ev, size_t index,
                               const redisReply *r, size_t *resend, size_t *n_resend,
                               char *errbuf, size_t errbuf_size) {
    char error[1024];

    if (r->type == REDIS_REPLY_STRING) {
        s->added++;
        ack(s, ev->seq, OUTBOX_SINK_OK, NULL);
        return PIPE_OK;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "duplicate") == 0) {
        /* Added before (a replay after a crash): delivered all the same. */
        s->duplicates++;
        ack(s, ev->seq, OUTBOX_SINK_OK, NULL);
        return PIPE_OK;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && resend != NULL) {
        /* The script cache was emptied (SCRIPT FLUSH, a failover). */
        resend[(*n_resend)++] = index;
        return PIPE_OK;
    }
    if (r->type == REDIS_REPLY_ERROR && redis_error_is_transient(r->str)) {
        snprintf(errbuf, errbuf_size, "redis sink: XADD to stream %s on %s: %s", ev->destination,
                 s->url.display, r->str);
        s->transient++;
        return PIPE_TRANSIENT;
    }
    if (r->type == REDIS_REPLY_ERROR)
        snprintf(error, sizeof error, "redis sink: XADD to stream %s: %s", ev->destination, r->str);
    else
        snprintf(error, sizeof error, "redis sink: XADD to stream %s: unexpected reply (%s)",
                 ev->destination, redis_reply_text(r));
    ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
    return PIPE_OK;
}

/* Sends the events events[idx[0..count)] as one pipeline, then reads the
 * replies in order and acks each event from its own. errbuf says why on
 * PIPE_TRANSIENT and PIPE_LOST; after PIPE_LOST the sink is disconnected.
 * Out of memory while appending is PIPE_LOST too: hiredis marks the
 * connection failed, and nothing of it can be trusted. */
static pipe_result_t send_pipeline(redis_sink_t *s, const outbox_sink_event_t *events,
                                   const size_t *idx, size_t count, const trim_args_t *t,
                                   int eval_source, size_t *resend, size_t *n_resend,
                                   char *errbuf, size_t errbuf_size) {
    pipe_result_t result = PIPE_OK;

    for (size_t k = 0; k < count; k++) {
        if (append_command(s, &events[idx[k]], t, eval_source) != 0) {
            snprintf(errbuf, errbuf_size, "redis sink: out of memory building a command for %s",
                     s->url.display);
            redis_sink_disconnect(s);
            return PIPE_LOST;
        }
    }
    for (size_t k = 0; k < count; k++) {
        redisReply *r = NULL;
        /* The first call writes the whole pipeline, then each reads. */
        if (redisGetReply(s->c, (void **)&r) != REDIS_OK || r == NULL) {
            snprintf(errbuf, errbuf_size,
                     "redis sink: connection to %s lost: %s (%zu of %zu events of this pipeline "
                     "acked; the rest go again after reconnecting)",
                     s->url.display, s->c->errstr[0] ? s->c->errstr : "no reply", k, count);
            freeReplyObject(r);
            redis_sink_disconnect(s);
            s->lost++;
            /* Reconnect on the next call without waiting: most losses are
             * a server restart, and the next call comes after outboxd's
             * own backoff anyway. */
            s->next_connect_ms = 0;
            return PIPE_LOST;
        }
        char transient[1024];
        if (ack_reply(s, &events[idx[k]], idx[k], r, resend, n_resend, transient,
                      sizeof transient) == PIPE_TRANSIENT && result == PIPE_OK) {
            /* Keep reading: the replies after it still ack their events. */
            snprintf(errbuf, errbuf_size, "%s", transient);
            result = PIPE_TRANSIENT;
        }
        freeReplyObject(r);
    }
    return result;
}

/* Sends the batch in pipelines of up to `pipeline` events and acks each
 * event from its reply before returning. Returns OK when every event was
 * acked; RETRY when the connection broke or the server said to wait (the
 * events acked so far stay acked, the others come again); FATAL when a
 * reconnect found the configuration no longer works (a changed password):
 * outboxd then reopens the sink, and open says why. */
int redis_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                  size_t errbuf_size) {
    redis_sink_t *s = state;
    trim_args_t trim;
    int status = redis_sink_ensure_connected(s, errbuf, errbuf_size);

    trim_prepare(s, &trim);
    for (size_t i = 0; i < n && status == OUTBOX_SINK_OK;) {
        size_t count = 0, n_resend = 0;
        while (i < n && count < s->pipeline) {
            /* A stream name the rule refuses (README: Stream names) will
             * not change: this event's FATAL, before anything is sent. */
            const char *problem = redis_stream_name_problem(events[i].destination);
            if (problem != NULL) {
                char error[700], shown[400];
                outbox_sink_quote(events[i].destination, 120, shown, sizeof shown);
                snprintf(error, sizeof error, "redis sink: event %s: stream name \"%s\" refused: %s",
                         events[i].id, shown, problem);
                ack(s, events[i].seq, OUTBOX_SINK_FATAL, error);
            } else {
                s->sent[count++] = i;
            }
            i++;
        }
        if (count == 0) break;
        int eval_source = s->cfg.dedupe && s->sha[0] == '\0';
        pipe_result_t result = send_pipeline(s, events, s->sent, count, &trim, eval_source,
                                             s->resend, &n_resend, errbuf, errbuf_size);
        if (result == PIPE_OK && n_resend > 0) {
            redis_log(s, OUTBOX_SINK_LOG_INFO,
                      "the dedupe script was gone from the server (NOSCRIPT): loading it again");
            result = send_pipeline(s, events, s->resend, n_resend, &trim, 1, NULL, NULL, errbuf,
                                   errbuf_size);
            if (result == PIPE_OK && redis_script_load(s, errbuf, errbuf_size) != OUTBOX_SINK_OK) {
                redis_sink_disconnect(s);
                result = PIPE_LOST;
            }
        }
        if (result != PIPE_OK) status = OUTBOX_SINK_RETRY;
    }
    return status;
}
