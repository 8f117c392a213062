/*
 * options.c - the NATS sink's options: the option table (outboxd parses,
 * range-checks and defaults every value, and writes it into nats_config_t
 * through host->options_fill) and nats_config_parse, the one parser check
 * and open share, which adds what the table cannot say: each server URL's
 * syntax, which options go together, and the stream name. It never
 * connects and never reads a file (connection.c's nats_build_options does
 * that, for check and open alike).
 */
#include "nats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AT(member) OUTBOX_SINK_OPTION_AT(nats_config_t, member)

const outbox_sink_option_t nats_options[] = {
    {.key = "servers",
     .type = OUTBOX_SINK_OPT_LIST,
     .default_value = "nats://127.0.0.1:4222",
     AT(servers),
     .help = "server URLs (a list, or comma-separated): nats://host:port or tls://host:port"},
    {.key = "mode",
     .type = OUTBOX_SINK_OPT_ENUM,
     .default_value = "jetstream",
     .choices = "jetstream|core",
     AT(mode),
     .help = "jetstream: acked when the stream has stored the event (de-duplicated by "
             "Nats-Msg-Id); core: acked when the server has read it, no storage"},
    {.key = "creds_file",
     .type = OUTBOX_SINK_OPT_STRING,
     AT(creds_file),
     .help = "credentials file (user JWT and NKey seed) for decentralized authentication"},
    {.key = "user", .type = OUTBOX_SINK_OPT_STRING, AT(user), .help = "user name; needs password"},
    {.key = "password",
     .type = OUTBOX_SINK_OPT_SECRET,
     AT(password),
     .help = "the user's password; write password_file: PATH to read it from a file"},
    {.key = "token",
     .type = OUTBOX_SINK_OPT_SECRET,
     AT(token),
     .help = "an authentication token; write token_file: PATH to read it from a file"},
    {.key = "nkey",
     .type = OUTBOX_SINK_OPT_STRING,
     AT(nkey),
     .help = "the user's public NKey (U...), with nkey_seed_file: NKey authentication"},
    {.key = "nkey_seed_file",
     .type = OUTBOX_SINK_OPT_STRING,
     AT(nkey_seed_file),
     .help = "file holding the user's NKey seed (SU...); libnats reads it at each connect"},
    {.key = "tls_ca",
     .type = OUTBOX_SINK_OPT_STRING,
     AT(tls_ca),
     .help = "PEM file of the CA certificates that verify the server; turns TLS on"},
    {.key = "tls_cert",
     .type = OUTBOX_SINK_OPT_STRING,
     AT(tls_cert),
     .help = "PEM client certificate (with tls_key); turns TLS on"},
    {.key = "tls_key", .type = OUTBOX_SINK_OPT_STRING, AT(tls_key), .help = "PEM private key of tls_cert"},
    {.key = "tls_hostname",
     .type = OUTBOX_SINK_OPT_STRING,
     AT(tls_hostname),
     .help = "the name the servers' certificates must carry; default: the host of the first "
             "server, unless that is an IP address (then only the chain is checked)"},
    {.key = "connect_timeout_ms",
     .type = OUTBOX_SINK_OPT_DURATION,
     .default_value = "2000",
     .min = 1,
     .max = 600000,
     AT(connect_timeout_ms),
     .help = "time allowed for one connection attempt"},
    {.key = "max_reconnect",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "-1",
     .min = -1,
     .max = INT32_MAX,
     AT(max_reconnect),
     .help = "reconnect attempts before the connection is given up and the sink reopened; "
             "-1: forever"},
    {.key = "reconnect_wait_ms",
     .type = OUTBOX_SINK_OPT_DURATION,
     .default_value = "2000",
     .min = 0,
     .max = 600000,
     AT(reconnect_wait_ms),
     .help = "pause between reconnect attempts to the same server"},
    {.key = "max_pending",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "4096",
     .min = 1,
     .max = 1000000,
     AT(max_pending),
     .help = "jetstream: asynchronous publishes in flight (without their PubAck) at most"},
    {.key = "ack_timeout_ms",
     .type = OUTBOX_SINK_OPT_DURATION,
     .default_value = "5000",
     .min = 10,
     .max = 600000,
     AT(ack_timeout_ms),
     .help = "jetstream: wait this long for a PubAck, then retry the event; core: the "
             "flush timeout"},
    {.key = "stream",
     .type = OUTBOX_SINK_OPT_STRING,
     AT(stream),
     .help = "jetstream: the stream every event must land in (checked on each publish); "
             "created at open when missing, with stream_subjects"},
    {.key = "stream_subjects",
     .type = OUTBOX_SINK_OPT_LIST,
     AT(stream_subjects),
     .help = "subjects of the stream the sink creates (needs stream)"},
    {.key = "duplicate_window_s",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "120",
     .min = 1,
     .max = 604800,
     AT(duplicate_window_s),
     .help = "de-duplication window of the stream the sink creates, in seconds"},
    OUTBOX_SINK_OPTION_END};

/* What is wrong with a server URL libnats is to use,
 * [nats:// | tls://][user[:pass]@]host[:port], or NULL. Checked here so
 * that a typo is refused by check, naming the option, rather than an
 * endless "no server available" at run time. */
static const char *url_problem(const char *url) {
    const char *p = strstr(url, "://");
    if (p != NULL) {
        size_t scheme = (size_t)(p - url);
        if (!((scheme == 4 && strncasecmp(url, "nats", 4) == 0) ||
              (scheme == 3 && strncasecmp(url, "tls", 3) == 0)))
            return "its scheme is not nats:// or tls://";
        p += 3;
    } else {
        p = url;
    }
    const char *at = strrchr(p, '@');
    if (at != NULL) p = at + 1;
    if (strpbrk(p, " \t/?#") != NULL) return "it has a path, a query or white space after the host";
    if (*p == '[' && strchr(p, ']') == NULL) return "its IPv6 address has no closing ']'";
    const char *colon = *p == '[' ? strstr(p, "]:") : strrchr(p, ':');
    if (*p == '\0' || colon == p || (*p == '[' && p[1] == ']')) return "it has no host";
    if (colon != NULL) {
        char *end;
        colon += *p == '[' ? 2 : 1;
        long port = strtol(colon, &end, 10);
        if (end == colon || *end != '\0' || port < 1 || port > 65535) return "its port is not 1 to 65535";
    }
    return NULL;
}

/* The host of a server URL ("nats://u:p@host:4222" -> "host", "[::1]:4222"
 * -> "::1"), into out. */
void url_host(const char *url, char *out, size_t size) {
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
void server_shown(const char *url, char *out, size_t size) {
    const char *p = strstr(url, "://");
    size_t scheme = p ? (size_t)(p - url) + 3 : 0;
    const char *at = strrchr(url + scheme, '@');
    snprintf(out, size, "%.*s%s", (int)scheme, url, at ? at + 1 : url + scheme);
}

/* The servers, each through server_shown, comma-separated. */
void list_shown(const char *const *servers, char *out, size_t size) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; servers[i] != NULL && o + 1 < size; i++) {
        char one[300];
        server_shown(servers[i], one, sizeof one);
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "," : "", one);
    }
}

/* A JetStream stream name: no white space, '.', '*', '>', path separators. */
static int valid_stream_name(const char *name) {
    if (strlen(name) > 255) return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p <= ' ' || *p == 0x7f || strchr(".*>/\\", *p) != NULL) return 0;
    }
    return 1;
}

/* An empty string is as good as absent (a YAML `user: ""`). */
static const char *set(const char *value) {
    return value != NULL && value[0] != '\0' ? value : NULL;
}

int nats_config_parse(const outbox_sink_host_t *host, nats_config_t *c, char *errbuf, size_t size) {
    memset(c, 0, sizeof *c);
    if (!OUTBOX_SINK_HOST_HAS(host, options_fill) || host->options_fill == NULL) {
        snprintf(errbuf, size, "nats sink: needs outboxd with sink ABI 1.1 (host->options_fill)");
        return -2;
    }
    host->options_fill(host->ctx, c);
    c->core = c->mode != NULL && strcmp(c->mode, "core") == 0;
    c->creds_file = set(c->creds_file), c->user = set(c->user), c->password = set(c->password);
    c->token = set(c->token), c->nkey = set(c->nkey), c->nkey_seed_file = set(c->nkey_seed_file);
    c->tls_ca = set(c->tls_ca), c->tls_cert = set(c->tls_cert), c->tls_key = set(c->tls_key);
    c->tls_hostname = set(c->tls_hostname), c->stream = set(c->stream);

    if (c->servers == NULL || c->servers[0] == NULL) {
        snprintf(errbuf, size, "servers: expected at least one server URL");
        return -1;
    }
    for (int i = 0; c->servers[i] != NULL; i++) {
        const char *problem = url_problem(c->servers[i]);
        char shown[300];
        if (problem == NULL) {
            c->tls_url |= strncasecmp(c->servers[i], "tls://", 6) == 0;
            continue;
        }
        server_shown(c->servers[i], shown, sizeof shown);
        snprintf(errbuf, size, "servers: \"%s\" is not a server URL (nats://host:port or tls://host:port): %s",
                 shown, problem);
        return -1;
    }

    /* Authentication: one way at a time, so that it is clear which one the
     * server sees. */
    int ways = (c->creds_file != NULL) + (c->user != NULL || c->password != NULL) + (c->token != NULL) +
               (c->nkey != NULL || c->nkey_seed_file != NULL);
    const char *bad = NULL;
    if (ways > 1) {
        bad = c->creds_file ? "creds_file" : c->nkey ? "nkey" : c->nkey_seed_file ? "nkey_seed_file" : "token";
        snprintf(errbuf, size, "%s: use one way to authenticate: creds_file, user with password, token, "
                               "or nkey with nkey_seed_file", bad);
        return -1;
    }
    if ((c->user != NULL) != (c->password != NULL)) {
        snprintf(errbuf, size, "%s: user and password go together", c->user ? "password" : "user");
        return -1;
    }
    if ((c->nkey != NULL) != (c->nkey_seed_file != NULL)) {
        snprintf(errbuf, size, "%s: nkey and nkey_seed_file go together", c->nkey ? "nkey_seed_file" : "nkey");
        return -1;
    }
    /* A user's public NKey is 56 characters of base32 starting with U. */
    if (c->nkey != NULL && (c->nkey[0] != 'U' || strlen(c->nkey) != 56 ||
                            strspn(c->nkey, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != 56)) {
        snprintf(errbuf, size, "nkey: not a user's public NKey (56 characters, U...); the seed (SU...) "
                               "goes into the file nkey_seed_file names");
        return -1;
    }

    c->tls = c->tls_ca != NULL || c->tls_cert != NULL || c->tls_url;
    if ((c->tls_cert != NULL) != (c->tls_key != NULL)) {
        snprintf(errbuf, size, "%s: tls_cert and tls_key go together", c->tls_cert ? "tls_key" : "tls_cert");
        return -1;
    }
    if (c->tls_hostname != NULL && !c->tls) {
        snprintf(errbuf, size, "tls_hostname: TLS is off (no tls_ca, tls_cert or tls:// server)");
        return -1;
    }

    if (c->stream != NULL && !valid_stream_name(c->stream)) {
        snprintf(errbuf, size, "stream: \"%s\" is not a stream name (no spaces, '.', '*', '>', '/' or '\\')",
                 c->stream);
        return -1;
    }
    if (c->stream == NULL && c->stream_subjects != NULL && c->stream_subjects[0] != NULL) {
        snprintf(errbuf, size, "stream_subjects: needs option stream (the stream to create)");
        return -1;
    }
    if (c->stream != NULL && c->core) {
        snprintf(errbuf, size, "stream: only with mode jetstream");
        return -1;
    }
    return 0;
}
