/*
 * options.c - the NATS sink's options: the option table outboxd checks
 * and prints, and the helpers that read values from it (integers, lists,
 * server URLs, secret files, stream names). What the sink does with the
 * values is in connection.c (the connection) and plugin.c (open).
 */
#include "nats.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

const outbox_sink_option_t nats_options[] = {
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
const char *nats_option(const outbox_sink_host_t *host, const char *key) {
    const char *value = host->option(host->ctx, key);
    if (value != NULL) return value;
    for (const outbox_sink_option_t *o = nats_options; o->key != NULL; o++) {
        if (strcmp(o->key, key) == 0) return o->default_value;
    }
    return NULL;
}

/* An option that is set and not empty, or NULL. */
const char *nats_option_set(const outbox_sink_host_t *host, const char *key) {
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
int int_option(const outbox_sink_host_t *host, const char *key, long long *number,
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
int split_list(const char *list, char ***items_out) {
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

void free_list(char **items, int n) {
    for (int i = 0; i < n; i++) free(items[i]);
    free(items);
}

/* A server URL libnats can use: [nats:// | tls://][user[:pass]@]host[:port].
 * Checked here so that a typo is a FATAL naming the option rather than an
 * endless "no server available". */
int valid_server_url(const char *url) {
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

/* A list of server URLs, each through server_shown, comma-separated. */
void list_shown(char **servers, int n, char *out, size_t size) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n && o + 1 < size; i++) {
        char one[300];
        server_shown(servers[i], one, sizeof one);
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "," : "", one);
    }
}

/* An IPv4 or IPv6 address rather than a name. */
int is_ip_address(const char *host) {
    return strchr(host, ':') != NULL || strspn(host, "0123456789.") == strlen(host);
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
char *read_secret(const char *key, const char *path, char *errbuf, size_t errbuf_size) {
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

void free_secret(char *secret) {
    if (secret == NULL) return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

/* A JetStream stream name: no white space, '.', '*', '>', path separators. */
int valid_stream_name(const char *name) {
    if (*name == '\0' || strlen(name) > 255) return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p <= ' ' || *p == 0x7f || strchr(".*>/\\", *p) != NULL) return 0;
    }
    return 1;
}
