/*
 * nats.c - the NATS sink: each event becomes one NATS message on the
 * subject its route names, published to JetStream (the default) or to core
 * NATS (sinks/nats/README.md has the headers, the options and the delivery
 * guarantee of each mode).
 *
 * JetStream mode publishes asynchronously (js_PublishMsgAsync) with the
 * event id as Nats-Msg-Id, so the stream drops a re-published event inside
 * its duplicate window: outboxd delivers at least once, the stream ends up
 * with each event once. Every PubAck becomes the host's ack, from libnats's
 * own thread (the ack handler). Core mode publishes and acks a batch once a
 * flush (a PING/PONG round trip) has shown that the server read it.
 *
 * What makes this file longer than the file sink is keeping three promises
 * on top of an asynchronous client:
 *
 *  - Exactly one ack per event, and none after close. Each message in
 *    flight sits in a small table (natsMsg pointer -> the host's seq) that
 *    the ack handler, the reconnect check and close take entries out of,
 *    under one mutex. close takes back what libnats still holds and waits
 *    until the table is empty before it frees anything, because libnats
 *    calls the handler from a thread close cannot join.
 *  - Stream order across a lost connection. libnats would buffer publishes
 *    while it reconnects and send them first on the new connection, ahead of
 *    the events that were in flight on the old one and must be sent again.
 *    So the sink turns that buffer off (ReconnectBufSize 0: publishing while
 *    disconnected fails at once), and after a reconnect it hands every
 *    publish still in flight back to outboxd (RETRY) before it sends
 *    anything new. outboxd then publishes them again in log order; the ones
 *    the old server had stored come back as duplicates and are not stored
 *    twice.
 *  - A clear, permanent error for a subject that no stream covers. The
 *    server answers such a publish with "503 no responders". Before calling
 *    that FATAL, the sink asks the JetStream API which stream holds the
 *    subject (from poll, on the sink's thread), so a momentary 503 while a
 *    stream is being restored is a RETRY and not a lost event.
 *
 * The plugin never calls nats_Close(): libnats's state is global to the
 * process and another sink in the same outboxd may use it. The module is
 * linked with -z nodelete (local.mk) so that unloading it can never unmap
 * libnats under its own background threads.
 */
#include <outbox/sink.h>

#include <nats/nats.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

static const outbox_sink_option_t nats_options[] = {
    {.key = "servers",
     .type = OUTBOX_SINK_OPT_STRING,
     .default_value = "nats://127.0.0.1:4222",
     .help = "comma-separated server URLs: nats://host:port or tls://host:port"},
    {.key = "mode",
     .type = OUTBOX_SINK_OPT_ENUM,
     .default_value = "jetstream",
     .choices = "jetstream|core",
     .help = "jetstream: acked when the stream has stored the event (de-duplicated by "
             "Nats-Msg-Id); core: acked when the server has read it, no storage"},
    {.key = "creds_file",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "credentials file (user JWT and NKey seed) for decentralized authentication"},
    {.key = "user", .type = OUTBOX_SINK_OPT_STRING, .help = "user name; needs password"},
    {.key = "password",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "the user's password; write it as {file: PATH} or {env: NAME}, never logged"},
    {.key = "password_file",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "older form: file holding the user's password (trailing white space ignored)"},
    {.key = "token",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "an authentication token; write it as {file: PATH} or {env: NAME}, never logged"},
    {.key = "token_file",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "older form: file holding an authentication token (trailing white space ignored)"},
    {.key = "nkey",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "the user's public NKey (U...), with nkey_seed_file: NKey authentication"},
    {.key = "nkey_seed_file",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "file holding the user's NKey seed (SU...); libnats reads it at each connect"},
    {.key = "tls_ca",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "PEM file of the CA certificates that verify the server; turns TLS on"},
    {.key = "tls_cert",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "PEM client certificate (with tls_key); turns TLS on"},
    {.key = "tls_key", .type = OUTBOX_SINK_OPT_STRING, .help = "PEM private key of tls_cert"},
    {.key = "tls_hostname",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "the name the servers' certificates must carry; default: the host of the first "
             "server, unless that is an IP address (then only the chain is checked)"},
    {.key = "connect_timeout_ms",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "2000",
     .min = 1,
     .max = 600000,
     .help = "time allowed for one connection attempt"},
    {.key = "max_reconnect",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "-1",
     .min = -1,
     .max = INT_MAX,
     .help = "reconnect attempts before the connection is given up and the sink reopened; "
             "-1: forever"},
    {.key = "reconnect_wait_ms",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "2000",
     .min = 0,
     .max = 600000,
     .help = "pause between reconnect attempts to the same server"},
    {.key = "max_pending",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "4096",
     .min = 1,
     .max = 1000000,
     .help = "jetstream: asynchronous publishes in flight (without their PubAck) at most"},
    {.key = "ack_timeout_ms",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "5000",
     .min = 10,
     .max = 600000,
     .help = "jetstream: wait this long for a PubAck, then retry the event; core: the "
             "flush timeout"},
    {.key = "stream",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "jetstream: the stream every event must land in (checked on each publish); "
             "created at open when missing, with stream_subjects"},
    {.key = "stream_subjects",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "comma-separated subjects of the stream the sink creates (needs stream)"},
    {.key = "duplicate_window_s",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "120",
     .min = 1,
     .max = 604800,
     .help = "de-duplication window of the stream the sink creates, in seconds"},
    OUTBOX_SINK_OPTION_END};

/* The value of an option: the config's, else the table's default. outboxd
 * fills in defaults itself, but another host may not. */
static const char *nats_option(const outbox_sink_host_t *host, const char *key) {
    const char *value = host->option(host->ctx, key);
    if (value != NULL) return value;
    for (const outbox_sink_option_t *o = nats_options; o->key != NULL; o++) {
        if (strcmp(o->key, key) == 0) return o->default_value;
    }
    return NULL;
}

/* An option that is set and not empty, or NULL. */
static const char *nats_option_set(const outbox_sink_host_t *host, const char *key) {
    const char *value = nats_option(host, key);
    return value != NULL && value[0] != '\0' ? value : NULL;
}

static int parse_int(const char *value, long long min, long long max, long long *number) {
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (end == value || *end != '\0' || errno != 0 || n < min || n > max) return -1;
    *number = n;
    return 0;
}

/* Reads an integer option checked against its row of the table. */
static int int_option(const outbox_sink_host_t *host, const char *key, long long *number,
                      char *errbuf, size_t errbuf_size) {
    const char *value = nats_option(host, key);
    for (const outbox_sink_option_t *o = nats_options; o->key != NULL; o++) {
        if (strcmp(o->key, key) != 0) continue;
        if (value == NULL || parse_int(value, o->min, o->max, number) != 0) {
            snprintf(errbuf, errbuf_size,
                     "nats sink: option %s: \"%s\" is not a whole number from %lld to %lld", key,
                     value ? value : "", (long long)o->min, (long long)o->max);
            return -1;
        }
        return 0;
    }
    snprintf(errbuf, errbuf_size, "nats sink: option %s: not in the option table", key);
    return -1;
}

/* Splits a comma-separated list into trimmed, non-empty, malloc'ed items.
 * Returns the count, or -1 for an empty item ("a,,b") or no memory. */
static int split_list(const char *list, char ***items_out) {
    char **items = NULL;
    int n = 0;
    const char *p = list;

    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) p++, len--;
        while (len > 0 && isspace((unsigned char)p[len - 1])) len--;
        char **grown = len ? realloc(items, (size_t)(n + 1) * sizeof *items) : NULL;
        if (grown == NULL) goto fail;
        items = grown;
        if ((items[n] = strndup(p, len)) == NULL) goto fail;
        n++;
        if (end == NULL) break;
        p = end + 1;
    }
    *items_out = items;
    return n;
fail:
    for (int i = 0; i < n; i++) free(items[i]);
    free(items);
    return -1;
}

static void free_list(char **items, int n) {
    for (int i = 0; i < n; i++) free(items[i]);
    free(items);
}

/* A server URL libnats can use: [nats:// | tls://][user[:pass]@]host[:port].
 * Checked here so that a typo is a FATAL naming the option rather than an
 * endless "no server available". */
static int valid_server_url(const char *url) {
    const char *p = strstr(url, "://");
    if (p != NULL) {
        size_t scheme = (size_t)(p - url);
        if (!((scheme == 4 && strncasecmp(url, "nats", 4) == 0) ||
              (scheme == 3 && strncasecmp(url, "tls", 3) == 0)))
            return 0;
        p += 3;
    } else {
        p = url;
    }
    const char *at = strrchr(p, '@');
    if (at != NULL) p = at + 1;
    if (*p == '\0' || strpbrk(p, " \t/?#") != NULL) return 0;
    const char *colon = *p == '[' ? strstr(p, "]:") : strrchr(p, ':');
    if (*p == '[' && strchr(p, ']') == NULL) return 0;
    if (colon != NULL) {
        long long port;
        colon += *p == '[' ? 2 : 1;
        if (parse_int(colon, 1, 65535, &port) != 0) return 0;
        if (colon - 1 == p) return 0; /* ":4222": no host */
    }
    return 1;
}

/* The host of a server URL ("nats://u:p@host:4222" -> "host", "[::1]:4222"
 * -> "::1"), into out. */
static void url_host(const char *url, char *out, size_t size) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = strrchr(p, '@');
    if (at != NULL) p = at + 1;
    size_t len = *p == '[' ? strcspn(++p, "]") : strcspn(p, ":");
    snprintf(out, size, "%.*s", (int)len, p);
}

/* A server URL for messages: its scheme and what follows its last '@'
 * ("nats://u:pa/ss@host:4222" -> "nats://host:4222"). A host or port has
 * no '@', so whatever a user part holds ('/', ':', '@') is left out. */
static void server_shown(const char *url, char *out, size_t size) {
    const char *p = strstr(url, "://");
    size_t scheme = p ? (size_t)(p - url) + 3 : 0;
    const char *at = strrchr(url + scheme, '@');
    snprintf(out, size, "%.*s%s", (int)scheme, url, at ? at + 1 : url + scheme);
}

/* A list of server URLs, each through server_shown, comma-separated. */
static void list_shown(char **servers, int n, char *out, size_t size) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n && o + 1 < size; i++) {
        char one[300];
        server_shown(servers[i], one, sizeof one);
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "," : "", one);
    }
}

/* An IPv4 or IPv6 address rather than a name. */
static int is_ip_address(const char *host) {
    return strchr(host, ':') != NULL || strspn(host, "0123456789.") == strlen(host);
}

/* Copies a libnats text to out with the credentials of any URL in it
 * ("nats://user:secret@host", "nats://token@host", "user:secret@host")
 * replaced by *****. The sink's own messages never hold a URL's user part
 * (they print server_shown()); this is for libnats's texts. An authority
 * starts the text, follows "://", a comma or white space, and ends at ','
 * or white space -- not at '/', which a password may hold; whatever it has
 * before its last '@' is masked. */
static void mask_credentials(const char *text, char *out, size_t size) {
    size_t o = 0;

    if (size == 0) return;
    for (const char *p = text; *p != '\0' && o + 1 < size;) {
        int starts = p == text || strchr(", \t", p[-1]) != NULL ||
                     (p - text >= 3 && strncmp(p - 3, "://", 3) == 0);
        const char *at = starts ? memrchr(p, '@', strcspn(p, ", \t")) : NULL;
        if (at != NULL) {
            for (const char *m = "*****"; *m && o + 1 < size; m++) out[o++] = *m;
            p = at;
        }
        if (o + 1 < size) out[o++] = *p++;
    }
    out[o] = '\0';
}

#define SECRET_FILE_MAX 65536

/* Reads a secret from a file (password_file, token_file), by the rule the
 * Redis sink's password_file follows too: the whole file, at most 64 KiB
 * (more is refused, not cut), trailing white space dropped, not empty, no
 * NUL byte. Returns NULL with errbuf naming the option and the file, never
 * the content. The caller wipes and frees it (free_secret). The
 * recommended form is the value option (password, token) written as
 * {file: PATH}, which outboxd reads by the same rule less the white space
 * (only trailing newlines). */
static char *read_secret(const char *key, const char *path, char *errbuf, size_t errbuf_size) {
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: option %s: cannot read %s: %s", key, path,
                 strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, SECRET_FILE_MAX + 2);
    size_t len = buf ? fread(buf, 1, SECRET_FILE_MAX + 1, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (buf == NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: out of memory");
        return NULL;
    }
    const char *problem = NULL;
    if (failed) problem = "could not be read";
    else if (len > SECRET_FILE_MAX) problem = "is larger than 64 KiB";
    else {
        while (len > 0 && strchr("\r\n \t", buf[len - 1]) != NULL) buf[--len] = '\0';
        if (len == 0) problem = "is empty";
        else if (strlen(buf) != len) problem = "holds a NUL byte";
    }
    if (problem != NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: option %s: %s %s", key, path, problem);
        explicit_bzero(buf, SECRET_FILE_MAX + 2);
        free(buf);
        return NULL;
    }
    return buf;
}

static void free_secret(char *secret) {
    if (secret == NULL) return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

/* A JetStream stream name: no white space, '.', '*', '>', path separators. */
static int valid_stream_name(const char *name) {
    if (*name == '\0' || strlen(name) > 255) return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p <= ' ' || *p == 0x7f || strchr(".*>/\\", *p) != NULL) return 0;
    }
    return 1;
}

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
    if (*subject == '\0') return "it is empty (the route could not be expanded?)";
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

/* created_ms as ISO-8601 UTC with milliseconds (as the file sink writes it). */
static int format_time(int64_t ms, char *out, size_t size) {
    int64_t secs = ms / 1000;
    int millis = (int)(ms % 1000);
    struct tm tm;
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    if ((int64_t)t != secs || gmtime_r(&t, &tm) == NULL) return -1;
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return 0;
}

/* ----------------------------------------------------------------------------
 * The sink instance
 * ------------------------------------------------------------------------- */

/* A message in flight: libnats owns it and will hand it back to the ack
 * handler with its PubAck. NULL msg: a free slot. */
typedef struct {
    natsMsg *msg;
    uint64_t seq;
} inflight_t;

/* An event whose publish got "503 no responders", waiting for poll to find
 * out whether a stream covers its subject. */
typedef struct {
    uint64_t seq;
    char *subject;
} suspect_t;

typedef struct {
    const outbox_sink_host_t *host;
    int core;                /* mode: core */
    char servers_shown[1024]; /* the servers as list_shown() gives them: for messages */
    char *stream;            /* option stream, or NULL */
    int64_t ack_timeout_ms;

    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    natsStatistics *stats;
    uint64_t reconnects;     /* the connection's reconnect count at the last check */

    /* Everything below is shared with libnats's threads (ack handler,
     * connection callbacks) and guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;     /* broadcast on every ack, and when the connection closes */
    inflight_t *table;       /* open addressing, cap a power of two */
    size_t cap, count;
    suspect_t *suspects;
    size_t n_suspects, suspects_cap;
    uint64_t ack_events;     /* acks and suspects so far: poll waits for a change */
    uint64_t ack_events_polled;
    int closing;             /* close has begun: connection callbacks stay quiet */
    int conn_closed;         /* the closed callback has run: no more callbacks */
    /* For the log: what happened to the events. */
    uint64_t published, acked_ok, duplicates, retried, failed;
    /* Rate-limited warnings (one line per RATE_MS per kind). */
    int64_t retry_warned_ms, error_warned_ms;
    uint64_t retries_unreported;
    char last_retry[300];
} nats_sink_t;

#define RATE_MS 5000

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on s->cond for up to ms (mu held). */
static void wait_ms(nats_sink_t *s, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->cond, &s->mu, &ts);
}

/* libnats's text for st, with the calling thread's last error detail, and
 * any credentials in it masked. */
static void nats_error_text(natsStatus st, char *out, size_t size) {
    char raw[512];
    natsStatus last = NATS_OK;
    const char *detail = nats_GetLastError(&last);
    /* libnats prefixes its detail with "(conn.c:1905): ": not for users. */
    if (detail != NULL && detail[0] == '(' && strstr(detail, "): ") != NULL) detail = strstr(detail, "): ") + 3;
    if (detail != NULL && detail[0] != '\0' && last == st && strcmp(detail, natsStatus_GetText(st)) != 0)
        snprintf(raw, sizeof raw, "%s: %s", natsStatus_GetText(st), detail);
    else
        snprintf(raw, sizeof raw, "%s", natsStatus_GetText(st));
    /* TLS errors end in ": (null)" when OpenSSL had nothing to add. */
    size_t len = strlen(raw);
    if (len > 8 && strcmp(raw + len - 8, ": (null)") == 0) raw[len - 8] = '\0';
    mask_credentials(raw, out, size);
}

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
         * poll finds out which (see the top of the file). */
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
static void on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
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

/* ---- connection callbacks (libnats's callback thread) -------------------- */

static void on_disconnected(natsConnection *nc, void *closure) {
    nats_sink_t *s = closure;
    pthread_mutex_lock(&s->mu);
    if (!s->closing)
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING,
                     "disconnected from NATS; reconnecting (servers %s)", s->servers_shown);
    pthread_mutex_unlock(&s->mu);
}

static void on_reconnected(natsConnection *nc, void *closure) {
    nats_sink_t *s = closure;
    char url[256] = "?", shown[256];
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    server_shown(url, shown, sizeof shown);
    pthread_mutex_lock(&s->mu);
    if (!s->closing) s->host->log(s->host->ctx, OUTBOX_SINK_LOG_INFO, "reconnected to %s", shown);
    pthread_mutex_unlock(&s->mu);
}

/* The last callback libnats makes for a connection: close waits for it. */
static void on_closed(natsConnection *nc, void *closure) {
    nats_sink_t *s = closure;
    pthread_mutex_lock(&s->mu);
    if (!s->closing)
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_ERROR,
                     "the NATS connection is closed for good (max_reconnect reached?); the "
                     "sink will be reopened");
    s->conn_closed = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

/* Asynchronous errors: a permissions violation on publish shows up here
 * (the server drops the message, so its PubAck times out). */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure) {
    nats_sink_t *s = closure;
    const char *text = NULL;
    char shown[512];
    natsConnection_GetLastError(nc, &text);
    mask_credentials(text && text[0] ? text : natsStatus_GetText(err), shown, sizeof shown);
    pthread_mutex_lock(&s->mu);
    int64_t now = now_ms();
    if (!s->closing && now - s->error_warned_ms >= RATE_MS) {
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING, "NATS error: %s", shown);
        s->error_warned_ms = now;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- after a reconnect ------------------------------------------------------- */

/* When the connection has reconnected since the last check, hands every
 * publish still in flight back to outboxd (RETRY), before anything new is
 * sent: see the top of the file. Returns how many it handed back (0: no
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

/* Asks the JetStream API which stream holds subject. Returns 1 (its name in
 * name), 0 when none does, -1 when the question got no answer (why in err). */
static int stream_for_subject(nats_sink_t *s, const char *subject, char *name, size_t name_size,
                              char *err, size_t err_size) {
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
            verdict = stream_for_subject(s, subject, name, sizeof name, err, sizeof err);
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
 * Building a message
 * ------------------------------------------------------------------------- */

/* The event as a natsMsg with its headers, or a reason why it can never be
 * one. Returns 0 (msg set), 1 (the event is bad: why says why, FATAL) or -1
 * (libnats failed, out of memory: why says so, RETRY). */
static int build_msg(const outbox_sink_event_t *ev, natsMsg **msg, char *why, size_t why_size) {
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

    char created[64];
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, ev->destination, NULL, (const char *)ev->payload,
                                   (int)ev->payload_len);
    for (size_t i = 0; st == NATS_OK && i < ev->n_headers; i++)
        st = natsMsgHeader_Add(m, ev->headers[i].name, ev->headers[i].value);
    /* Nats-Msg-Id in core mode too: a stream that also captures the subject
     * de-duplicates as well, and subscribers can use it. In JetStream mode
     * jsPubOptions.MsgId sets the same header again. */
    if (st == NATS_OK) st = natsMsgHeader_Set(m, "Nats-Msg-Id", ev->id);
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
    if (st == NATS_OK && format_time(ev->created_ms, created, sizeof created) == 0)
        st = natsMsgHeader_Set(m, "Outbox-Created", created);
    if (st != NATS_OK) {
        natsMsg_Destroy(m);
        nats_error_text(st, why, why_size);
        return -1;
    }
    *msg = m;
    return 0;
}

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
    free(s->stream);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Drains the connection (sends what is buffered, then closes it; one that
 * is down just closes) and waits for the closed callback, the last call
 * libnats makes with s. Returns 0 when it did not come in time: then s
 * must not be freed. */
static int close_connection(nats_sink_t *s) {
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_mutex_unlock(&s->mu);
    if (natsConnection_DrainTimeout(s->nc, 2000) != NATS_OK) natsConnection_Close(s->nc);
    pthread_mutex_lock(&s->mu);
    int64_t deadline = now_ms() + 5000;
    while (!s->conn_closed && now_ms() < deadline) wait_ms(s, 50);
    int closed = s->conn_closed;
    pthread_mutex_unlock(&s->mu);
    return closed;
}

/* The libnats options from ours. Returns OK, or FATAL with errbuf naming
 * the option. Secrets are read here and wiped as soon as libnats has its
 * copy. */
static int configure(nats_sink_t *s, const outbox_sink_host_t *host, char *errbuf,
                     size_t errbuf_size) {
    long long connect_timeout, max_reconnect, reconnect_wait;
    const char *value;
    char **servers = NULL;
    int n_servers;
    natsStatus st;

    value = nats_option(host, "servers");
    n_servers = value ? split_list(value, &servers) : -1;
    if (n_servers <= 0) {
        snprintf(errbuf, errbuf_size, "nats sink: option servers: expected a comma-separated list of URLs");
        return OUTBOX_SINK_FATAL;
    }
    list_shown(servers, n_servers, s->servers_shown, sizeof s->servers_shown);
    char first_host[256];
    int tls_url = 0;
    url_host(servers[0], first_host, sizeof first_host);
    for (int i = 0; i < n_servers; i++) tls_url |= strncasecmp(servers[i], "tls://", 6) == 0;
    for (int i = 0; i < n_servers; i++) {
        if (!valid_server_url(servers[i])) {
            char shown[512];
            server_shown(servers[i], shown, sizeof shown);
            snprintf(errbuf, errbuf_size,
                     "nats sink: option servers: \"%s\" is not a server URL (nats://host:port or "
                     "tls://host:port)",
                     shown);
            free_list(servers, n_servers);
            return OUTBOX_SINK_FATAL;
        }
    }
    if (int_option(host, "connect_timeout_ms", &connect_timeout, errbuf, errbuf_size) != 0 ||
        int_option(host, "max_reconnect", &max_reconnect, errbuf, errbuf_size) != 0 ||
        int_option(host, "reconnect_wait_ms", &reconnect_wait, errbuf, errbuf_size) != 0) {
        free_list(servers, n_servers);
        return OUTBOX_SINK_FATAL;
    }

    char name[300];
    snprintf(name, sizeof name, "outboxd sink %s", host->sink_name ? host->sink_name : "?");
    st = natsOptions_Create(&s->opts);
    if (st == NATS_OK) st = natsOptions_SetServers(s->opts, (const char **)servers, n_servers);
    free_list(servers, n_servers);
    if (st != NATS_OK) {
        char text[512];
        nats_error_text(st, text, sizeof text);
        snprintf(errbuf, errbuf_size, "nats sink: option servers: %s", text);
        return OUTBOX_SINK_FATAL;
    }
    if (st == NATS_OK) st = natsOptions_SetName(s->opts, name);
    if (st == NATS_OK) st = natsOptions_SetTimeout(s->opts, connect_timeout);
    if (st == NATS_OK) st = natsOptions_SetMaxReconnect(s->opts, (int)max_reconnect);
    if (st == NATS_OK) st = natsOptions_SetReconnectWait(s->opts, reconnect_wait);
    /* No buffering while disconnected: a publish then fails at once instead
     * of being sent later ahead of older events (see the top of the file). */
    if (st == NATS_OK) st = natsOptions_SetReconnectBufSize(s->opts, 0);
    /* A stream lookup must not hang on a dead connection. */
    if (st == NATS_OK) st = natsOptions_SetFailRequestsOnDisconnect(s->opts, true);
    if (st == NATS_OK) st = natsOptions_SetDisconnectedCB(s->opts, on_disconnected, s);
    if (st == NATS_OK) st = natsOptions_SetReconnectedCB(s->opts, on_reconnected, s);
    if (st == NATS_OK) st = natsOptions_SetClosedCB(s->opts, on_closed, s);
    if (st == NATS_OK) st = natsOptions_SetErrorHandler(s->opts, on_error, s);
    if (st != NATS_OK) {
        char text[512];
        nats_error_text(st, text, sizeof text);
        snprintf(errbuf, errbuf_size, "nats sink: setting up the connection: %s", text);
        return OUTBOX_SINK_RETRY; /* out of memory, most likely */
    }

    /* Authentication: one way at a time, so that it is clear which one the
     * server sees. A secret comes as a value (password, token: outboxd
     * resolves {file: PATH} and {env: NAME} before open) or, the older
     * form, from a file the sink reads (password_file, token_file); files
     * libnats reads itself at each connect (creds_file, nkey_seed_file)
     * are checked for readability here, so that a wrong path is a clear
     * FATAL. */
    const char *creds = nats_option_set(host, "creds_file");
    const char *user = nats_option_set(host, "user");
    const char *password = nats_option_set(host, "password");
    const char *password_file = nats_option_set(host, "password_file");
    const char *token = nats_option_set(host, "token");
    const char *token_file = nats_option_set(host, "token_file");
    const char *nkey = nats_option_set(host, "nkey");
    const char *seed_file = nats_option_set(host, "nkey_seed_file");
    int ways = (creds != NULL) + (user != NULL || password != NULL || password_file != NULL) +
               (token != NULL || token_file != NULL) + (nkey != NULL || seed_file != NULL);
    if (ways > 1) {
        snprintf(errbuf, errbuf_size,
                 "nats sink: option %s: use one way to authenticate: creds_file, user with "
                 "password (or password_file), token (or token_file), or nkey with "
                 "nkey_seed_file",
                 creds ? "creds_file" : nkey ? "nkey" : seed_file ? "nkey_seed_file" : "token");
        return OUTBOX_SINK_FATAL;
    }
    if (password != NULL && password_file != NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: option password_file: set password or "
                                      "password_file, not both");
        return OUTBOX_SINK_FATAL;
    }
    if (token != NULL && token_file != NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: option token_file: set token or token_file, "
                                      "not both");
        return OUTBOX_SINK_FATAL;
    }
    if ((user != NULL) != (password != NULL || password_file != NULL)) {
        snprintf(errbuf, errbuf_size, "nats sink: option %s: user and password go together",
                 user ? "password" : password ? "user" : "password_file");
        return OUTBOX_SINK_FATAL;
    }
    if ((nkey != NULL) != (seed_file != NULL)) {
        snprintf(errbuf, errbuf_size, "nats sink: option %s: nkey and nkey_seed_file go together",
                 nkey ? "nkey_seed_file" : "nkey");
        return OUTBOX_SINK_FATAL;
    }
    if (creds != NULL) {
        if (access(creds, R_OK) != 0) {
            snprintf(errbuf, errbuf_size, "nats sink: option creds_file: cannot read %s: %s", creds,
                     strerror(errno));
            return OUTBOX_SINK_FATAL;
        }
        st = natsOptions_SetUserCredentialsFromFiles(s->opts, creds, NULL);
        if (st != NATS_OK) {
            snprintf(errbuf, errbuf_size, "nats sink: option creds_file: %s", natsStatus_GetText(st));
            return OUTBOX_SINK_FATAL;
        }
    }
    if (nkey != NULL) {
        /* A user's public NKey is 56 characters of base32 starting with U. */
        if (nkey[0] != 'U' || strlen(nkey) != 56 ||
            strspn(nkey, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != 56) {
            snprintf(errbuf, errbuf_size,
                     "nats sink: option nkey: not a user's public NKey (56 characters, U...); the "
                     "seed (SU...) goes into the file nkey_seed_file names");
            return OUTBOX_SINK_FATAL;
        }
        if (access(seed_file, R_OK) != 0) {
            snprintf(errbuf, errbuf_size, "nats sink: option nkey_seed_file: cannot read %s: %s",
                     seed_file, strerror(errno));
            return OUTBOX_SINK_FATAL;
        }
        st = natsOptions_SetNKeyFromSeed(s->opts, nkey, seed_file);
        if (st != NATS_OK) {
            snprintf(errbuf, errbuf_size, "nats sink: option nkey: %s", natsStatus_GetText(st));
            return OUTBOX_SINK_FATAL;
        }
    }
    if (user != NULL) {
        char *secret = password != NULL ? strdup(password)
                                        : read_secret("password_file", password_file, errbuf, errbuf_size);
        if (secret == NULL) {
            if (password != NULL) snprintf(errbuf, errbuf_size, "nats sink: out of memory");
            return password != NULL ? OUTBOX_SINK_RETRY : OUTBOX_SINK_FATAL;
        }
        st = natsOptions_SetUserInfo(s->opts, user, secret);
        free_secret(secret);
        if (st != NATS_OK) {
            snprintf(errbuf, errbuf_size, "nats sink: option user: %s", natsStatus_GetText(st));
            return OUTBOX_SINK_FATAL;
        }
    }
    if (token != NULL || token_file != NULL) {
        char *secret = token != NULL ? strdup(token)
                                     : read_secret("token_file", token_file, errbuf, errbuf_size);
        if (secret == NULL) {
            if (token != NULL) snprintf(errbuf, errbuf_size, "nats sink: out of memory");
            return token != NULL ? OUTBOX_SINK_RETRY : OUTBOX_SINK_FATAL;
        }
        st = natsOptions_SetToken(s->opts, secret);
        free_secret(secret);
        if (st != NATS_OK) {
            snprintf(errbuf, errbuf_size, "nats sink: option %s: %s", token ? "token" : "token_file",
                     natsStatus_GetText(st));
            return OUTBOX_SINK_FATAL;
        }
    }

    /* TLS: tls_ca or tls_cert turns it on (a tls:// URL does too). */
    const char *ca = nats_option_set(host, "tls_ca");
    const char *cert = nats_option_set(host, "tls_cert");
    const char *key = nats_option_set(host, "tls_key");
    const char *tls_hostname = nats_option_set(host, "tls_hostname");
    if ((cert != NULL) != (key != NULL)) {
        snprintf(errbuf, errbuf_size, "nats sink: option %s: tls_cert and tls_key go together",
                 cert ? "tls_key" : "tls_cert");
        return OUTBOX_SINK_FATAL;
    }
    if (ca != NULL || cert != NULL || tls_url) {
        char text[512];
        st = natsOptions_SetSecure(s->opts, true);
        if (st != NATS_OK) {
            nats_error_text(st, text, sizeof text);
            snprintf(errbuf, errbuf_size, "nats sink: option %s: TLS: %s", ca ? "tls_ca" : "tls_cert", text);
            return OUTBOX_SINK_FATAL;
        }
        if (ca != NULL && (st = natsOptions_LoadCATrustedCertificates(s->opts, ca)) != NATS_OK) {
            nats_error_text(st, text, sizeof text);
            snprintf(errbuf, errbuf_size, "nats sink: option tls_ca: cannot load %s: %s", ca, text);
            return OUTBOX_SINK_FATAL;
        }
        if (cert != NULL && (st = natsOptions_LoadCertificatesChain(s->opts, cert, key)) != NATS_OK) {
            nats_error_text(st, text, sizeof text);
            snprintf(errbuf, errbuf_size,
                     "nats sink: option tls_cert: cannot load %s with tls_key %s: %s", cert, key, text);
            return OUTBOX_SINK_FATAL;
        }
        /* libnats 3.4 checks the certificate's name only when given one. */
        if (tls_hostname == NULL && !is_ip_address(first_host)) tls_hostname = first_host;
        if (tls_hostname != NULL && (st = natsOptions_SetExpectedHostname(s->opts, tls_hostname)) != NATS_OK) {
            nats_error_text(st, text, sizeof text);
            snprintf(errbuf, errbuf_size, "nats sink: option tls_hostname: %s", text);
            return OUTBOX_SINK_FATAL;
        }
    } else if (tls_hostname != NULL) {
        snprintf(errbuf, errbuf_size,
                 "nats sink: option tls_hostname: TLS is off (no tls_ca, tls_cert or tls:// server)");
        return OUTBOX_SINK_FATAL;
    }
    return OUTBOX_SINK_OK;
}

/* Makes sure the stream named by option stream exists: created with
 * stream_subjects and duplicate_window_s when missing, left as it is (and
 * described in the log) when it exists. */
static int ensure_stream(nats_sink_t *s, const outbox_sink_host_t *host, long long window_s,
                         char *errbuf, size_t errbuf_size) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    char text[512];
    natsStatus st = js_GetStreamInfo(&si, s->js, s->stream, NULL, &jerr);

    if (st == NATS_OK) {
        int64_t have_s = si->Config->Duplicates / 1000000000;
        host->log(host->ctx, OUTBOX_SINK_LOG_INFO,
                  "stream %s exists (%d subject(s), duplicate window %" PRId64 " s)", s->stream,
                  si->Config->SubjectsLen, have_s);
        if (have_s != window_s)
            host->log(host->ctx, OUTBOX_SINK_LOG_WARNING,
                      "stream %s de-duplicates over %" PRId64 " s, not duplicate_window_s=%lld: the "
                      "option applies only when the sink creates the stream",
                      s->stream, have_s, window_s);
        jsStreamInfo_Destroy(si);
        return OUTBOX_SINK_OK;
    }
    if (st != NATS_NOT_FOUND) {
        nats_error_text(st, text, sizeof text);
        snprintf(errbuf, errbuf_size, "nats sink: cannot look up stream %s: %s", s->stream, text);
        return OUTBOX_SINK_RETRY;
    }

    const char *list = nats_option_set(host, "stream_subjects");
    char **subjects = NULL;
    int n = list ? split_list(list, &subjects) : 0;
    if (n <= 0) {
        snprintf(errbuf, errbuf_size,
                 "nats sink: option stream_subjects: stream %s does not exist, and creating it needs "
                 "its subjects (a comma-separated list)",
                 s->stream);
        return OUTBOX_SINK_FATAL;
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = s->stream;
    cfg.Subjects = (const char **)subjects;
    cfg.SubjectsLen = n;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = (int64_t)window_s * 1000000000;
    st = js_AddStream(&si, s->js, &cfg, NULL, &jerr);
    free_list(subjects, n);
    if (st == NATS_OK) {
        host->log(host->ctx, OUTBOX_SINK_LOG_INFO,
                  "created stream %s (subjects %s, file storage, duplicate window %lld s)", s->stream,
                  list, window_s);
        jsStreamInfo_Destroy(si);
        return OUTBOX_SINK_OK;
    }
    nats_error_text(st, text, sizeof text);
    if (jerr == JSStreamNameExistErr) return OUTBOX_SINK_OK; /* another sink was quicker */
    if (jerr != 0 && jerr != JSClusterNotAvailErr && jerr != JSClusterNotLeaderErr &&
        jerr != JSInsufficientResourcesErr) {
        snprintf(errbuf, errbuf_size, "nats sink: option stream_subjects: cannot create stream %s: %s",
                 s->stream, text);
        return OUTBOX_SINK_FATAL;
    }
    snprintf(errbuf, errbuf_size, "nats sink: cannot create stream %s: %s", s->stream, text);
    return OUTBOX_SINK_RETRY;
}

static int nats_open(const outbox_sink_host_t *host, void **state, char *errbuf,
                     size_t errbuf_size) {
    long long max_pending, ack_timeout, window_s;
    const char *mode = nats_option(host, "mode");
    const char *stream = nats_option_set(host, "stream");
    int rc;

    /* Options first: a bad value is FATAL, naming the option. */
    if (mode == NULL || (strcmp(mode, "jetstream") != 0 && strcmp(mode, "core") != 0)) {
        snprintf(errbuf, errbuf_size, "nats sink: option mode: \"%s\" is not jetstream or core",
                 mode ? mode : "");
        return OUTBOX_SINK_FATAL;
    }
    if (int_option(host, "max_pending", &max_pending, errbuf, errbuf_size) != 0 ||
        int_option(host, "ack_timeout_ms", &ack_timeout, errbuf, errbuf_size) != 0 ||
        int_option(host, "duplicate_window_s", &window_s, errbuf, errbuf_size) != 0)
        return OUTBOX_SINK_FATAL;
    if (stream != NULL && !valid_stream_name(stream)) {
        snprintf(errbuf, errbuf_size,
                 "nats sink: option stream: \"%s\" is not a stream name (no spaces, '.', '*', '>', "
                 "'/' or '\\')",
                 stream);
        return OUTBOX_SINK_FATAL;
    }
    if (stream == NULL && nats_option_set(host, "stream_subjects") != NULL) {
        snprintf(errbuf, errbuf_size,
                 "nats sink: option stream_subjects: needs option stream (the stream to create)");
        return OUTBOX_SINK_FATAL;
    }
    if (stream != NULL && strcmp(mode, "core") == 0) {
        snprintf(errbuf, errbuf_size, "nats sink: option stream: only with mode jetstream");
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
    s->core = strcmp(mode, "core") == 0;
    s->ack_timeout_ms = ack_timeout;
    if (stream != NULL && (s->stream = strdup(stream)) == NULL) {
        sink_free(s);
        snprintf(errbuf, errbuf_size, "nats sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }

    if ((rc = configure(s, host, errbuf, errbuf_size)) != OUTBOX_SINK_OK) {
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
        jo.Wait = ack_timeout;
        jo.PublishAsync.MaxPending = max_pending;
        jo.PublishAsync.AckHandler = on_puback;
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
            if (close_connection(s)) sink_free(s);
            return OUTBOX_SINK_RETRY;
        }
        jsAccountInfo_Destroy(ai);
        if (s->stream != NULL && (rc = ensure_stream(s, host, window_s, errbuf, errbuf_size)) != OUTBOX_SINK_OK) {
            if (close_connection(s)) sink_free(s);
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
                  "connected to %s (servers %s); mode jetstream: max_pending %lld, ack_timeout_ms "
                  "%lld%s%s",
                  shown, s->servers_shown, max_pending, ack_timeout, s->stream ? ", stream " : "",
                  s->stream ? s->stream : "");
    *state = s;
    return OUTBOX_SINK_OK;
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

/* Stops a batch at event first (not sent, nor any after it) for reason
 * why. When nothing of the batch is in flight the whole batch goes back
 * with RETRY (outboxd logs it and backs off). Otherwise the events already
 * sent keep their coming PubAcks: the rest is acked RETRY here and the call
 * returns OK, so that outboxd does not send those in flight a second time. */
static int stop_batch(nats_sink_t *s, const outbox_sink_event_t *events, size_t first, size_t n,
                      size_t in_flight, const char *why, char *errbuf, size_t errbuf_size) {
    if (in_flight == 0) {
        snprintf(errbuf, errbuf_size, "%s", why);
        return OUTBOX_SINK_RETRY;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = first; i < n; i++) ack_retry(s, events[i].seq, why);
    pthread_mutex_unlock(&s->mu);
    return OUTBOX_SINK_OK;
}

static int publish_jetstream(nats_sink_t *s, const outbox_sink_event_t *events, size_t n,
                             char *errbuf, size_t errbuf_size) {
    char why[900];
    size_t in_flight = 0; /* events of this batch sent and not yet taken back */

    for (size_t i = 0; i < n; i++) {
        const outbox_sink_event_t *ev = &events[i];
        natsMsg *m = NULL;

        /* Before each send: a reconnect since the last one means the events
         * in flight go again first (this batch's included). */
        if (take_back_after_reconnect(s) > 0) {
            snprintf(why, sizeof why, "nats sink: reconnected to NATS: publishing again from the "
                                      "first event that was in flight");
            return stop_batch(s, events, i, n, 0, why, errbuf, errbuf_size);
        }
        int rc = build_msg(ev, &m, why, sizeof why);
        if (rc > 0) {
            fail_event(s, ev->seq, why);
            continue;
        }
        if (rc < 0) return stop_batch(s, events, i, n, in_flight, why, errbuf, errbuf_size);

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
            return stop_batch(s, events, i, n, in_flight, "nats sink: out of memory", errbuf, errbuf_size);
        }
        /* Not under mu: when max_pending are in flight this waits for the
         * ack handler, which takes mu. */
        natsStatus st = js_PublishMsgAsync(s->js, &m, &po);
        if (st == NATS_OK) {
            pthread_mutex_lock(&s->mu);
            s->published++;
            pthread_mutex_unlock(&s->mu);
            in_flight++;
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
        rc = connection_state(s, why, sizeof why);
        if (rc == OUTBOX_SINK_FATAL) {
            snprintf(errbuf, errbuf_size, "%s", why);
            return OUTBOX_SINK_FATAL;
        }
        if (rc == OUTBOX_SINK_OK) {
            char text[512];
            nats_error_text(st, text, sizeof text);
            snprintf(why, sizeof why, "nats sink: cannot publish to \"%s\" now: %s", ev->destination,
                     text);
        }
        return stop_batch(s, events, i, n, in_flight, why, errbuf, errbuf_size);
    }
    return OUTBOX_SINK_OK;
}

static int publish_core(nats_sink_t *s, const outbox_sink_event_t *events, size_t n, char *errbuf,
                        size_t errbuf_size) {
    char why[900];
    uint64_t before = 0, after = 0;
    unsigned char *sent = calloc(n ? n : 1, 1); /* which events went out */
    if (sent == NULL) {
        snprintf(errbuf, errbuf_size, "nats sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    natsConnection_GetStats(s->nc, s->stats);
    natsStatistics_GetCounts(s->stats, NULL, NULL, NULL, NULL, &before);

    for (size_t i = 0; i < n; i++) {
        natsMsg *m = NULL;
        int rc = build_msg(&events[i], &m, why, sizeof why);
        if (rc > 0) {
            fail_event(s, events[i].seq, why);
            continue;
        }
        natsStatus st = rc == 0 ? natsConnection_PublishMsg(s->nc, m) : NATS_NO_MEMORY;
        natsMsg_Destroy(m);
        if (st == NATS_OK) {
            sent[i] = 1;
            continue;
        }
        if (st == NATS_MAX_PAYLOAD) {
            snprintf(why, sizeof why,
                     "nats sink: the event (%zu bytes of payload) is larger than the server's "
                     "max_payload (%" PRId64 " bytes)",
                     events[i].payload_len, natsConnection_GetMaxPayload(s->nc));
            fail_event(s, events[i].seq, why);
            continue;
        }
        /* Nothing is acked before the flush, so the whole batch goes back:
         * what was sent may reach subscribers twice (at least once). */
        free(sent);
        rc = connection_state(s, errbuf, errbuf_size);
        if (rc == OUTBOX_SINK_OK) {
            char text[512];
            nats_error_text(st, text, sizeof text);
            snprintf(errbuf, errbuf_size, "nats sink: cannot publish to \"%s\": %s", events[i].destination, text);
            return OUTBOX_SINK_RETRY;
        }
        return rc;
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
        free(sent);
        return connection_state(s, why, sizeof why) == OUTBOX_SINK_FATAL ? OUTBOX_SINK_FATAL
                                                                         : OUTBOX_SINK_RETRY;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        if (!sent[i]) continue;
        s->published++;
        s->acked_ok++;
        ack(s, events[i].seq, OUTBOX_SINK_OK, NULL);
    }
    pthread_mutex_unlock(&s->mu);
    free(sent);
    return OUTBOX_SINK_OK;
}

static int nats_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                        size_t errbuf_size) {
    nats_sink_t *s = state;
    int rc = connection_state(s, errbuf, errbuf_size);
    if (rc != OUTBOX_SINK_OK) return rc;
    return s->core ? publish_core(s, events, n, errbuf, errbuf_size)
                   : publish_jetstream(s, events, n, errbuf, errbuf_size);
}

/* ----------------------------------------------------------------------------
 * poll, flush, close
 * ------------------------------------------------------------------------- */

/* Serves what the sink thread must do (publishes to hand back after a
 * reconnect, "no responders" to decide), then waits up to timeout_ms for
 * an ack, unless one came since the last poll. */
static int nats_poll(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
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
static int nats_flush(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
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
static size_t take_back_all(nats_sink_t *s) {
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

static void nats_close(void *state) {
    nats_sink_t *s = state;
    char errbuf[256];
    size_t abandoned = 0;

    if (!s->core) {
        /* outboxd flushes before close at shutdown, but not before the close
         * that follows a FATAL: give acks a moment either way. */
        nats_flush(s, 1000, errbuf, sizeof errbuf);
        abandoned = take_back_all(s);
    }
    /* From here no PubAck finds a message in the table, except one the
     * handler is holding right now: wait for it (see the top of the file). */
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    int64_t deadline = now_ms() + 5000;
    while (s->count > 0 && now_ms() < deadline) wait_ms(s, 50);
    size_t stuck = s->count;
    pthread_mutex_unlock(&s->mu);

    int closed = close_connection(s);

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

OUTBOX_SINK_PLUGIN(.name = "nats", .version = "1.0.0",
                   .description = "NATS: JetStream (de-duplicated by Nats-Msg-Id) or core NATS",
                   .options = nats_options, .open = nats_open, .publish = nats_publish,
                   .poll = nats_poll, .flush = nats_flush, .close = nats_close)
