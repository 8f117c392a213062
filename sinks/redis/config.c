/*
 * config.c - the Redis sink's option table and the one place that turns
 * options into a redis_sink_t: the url, the user and password, timeouts,
 * the pipeline, trimming, dedupe and TLS (README: Options).
 */
#include "redis_sink.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ----------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

const outbox_sink_option_t redis_options[] = {
    {.key = "url",
     .type = OUTBOX_SINK_OPT_STRING,
     .default_value = "redis://127.0.0.1:6379/0",
#ifdef HAVE_HIREDIS_SSL
     .help = "redis://[user@]host[:port][/db], rediss://... (TLS) or unix://[user@]/path[?db=N]; "
             "no password here (option password)"},
#else
     .help = "redis://[user@]host[:port][/db] or unix://[user@]/path[?db=N]; no password "
             "here (option password); no TLS (hiredis 0.14)"},
#endif
    {.key = "user",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "Redis 6 ACL user (AUTH user password); instead of user@ in the url"},
    {.key = "password",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "the password; write it as {file: PATH} or {env: NAME}, never logged"},
    {.key = "password_file",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "older form: file holding the password (trailing white space ignored)"},
    {.key = "password_env",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "older form: environment variable holding the password"},
#ifdef HAVE_HIREDIS_SSL
    {.key = "tls_ca",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "rediss://: PEM file of the CAs that verify the server (default: the system's)"},
    {.key = "tls_cert",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "rediss://: PEM client certificate (with tls_key)"},
    {.key = "tls_key", .type = OUTBOX_SINK_OPT_STRING, .help = "rediss://: PEM key of tls_cert"},
    {.key = "tls_server_name",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "rediss://: the name sent as SNI (default: the url's host)"},
#endif
    {.key = "connect_timeout_ms",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "2000",
     .min = 1,
     .max = 600000,
     .help = "how long a connection attempt may take"},
    {.key = "command_timeout_ms",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "10000",
     .min = 1,
     .max = 600000,
     .help = "how long to wait for a reply before dropping the connection (RETRY)"},
    {.key = "pipeline",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "500",
     .min = 1,
     .max = 100000,
     .help = "commands sent before their replies are read"},
    {.key = "maxlen",
     .type = OUTBOX_SINK_OPT_INT,
     .min = 1,
     .max = INT64_MAX,
     .help = "trim each stream to about this many entries (XADD MAXLEN ~ N)"},
    {.key = "minid",
     .type = OUTBOX_SINK_OPT_STRING,
     .help = "trim entries older than a stream id (1700000000000-0) or an age (90s, 30m, 24h, "
             "7d) (XADD MINID ~, Redis >= 6.2)"},
    {.key = "trim_exact",
     .type = OUTBOX_SINK_OPT_BOOL,
     .default_value = "false",
     .help = "trim exactly instead of by whole nodes (~), which costs more"},
    {.key = "dedupe",
     .type = OUTBOX_SINK_OPT_BOOL,
     .default_value = "false",
     .help = "add an event only if its id was not added to that stream within dedupe_ttl "
             "(a Lua script and one key per event)"},
    {.key = "dedupe_ttl",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "86400",
     .min = 1,
     .max = INT32_MAX,
     .help = "seconds an event id is remembered for dedupe"},
    {.key = "dedupe_prefix",
     .type = OUTBOX_SINK_OPT_STRING,
     .default_value = "outbox:dedupe:",
     .help = "dedupe keys are <prefix><stream>:<event id>"},
    OUTBOX_SINK_OPTION_END};

/* The config's value, else the table's default (a host may not fill in
 * defaults; outboxd does). NULL for an absent option without default. */
static const char *redis_option(const outbox_sink_host_t *host, const char *key) {
    const char *value = host->option(host->ctx, key);
    if (value != NULL) return value;
    for (const outbox_sink_option_t *o = redis_options; o->key != NULL; o++) {
        if (strcmp(o->key, key) == 0) return o->default_value;
    }
    return NULL;
}

/* The words sink.h lists for OUTBOX_SINK_OPT_BOOL. */
static int parse_bool(const char *value, int *flag) {
    if (strcasecmp(value, "true") == 0 || strcasecmp(value, "yes") == 0 ||
        strcasecmp(value, "on") == 0 || strcmp(value, "1") == 0) {
        *flag = 1;
    } else if (strcasecmp(value, "false") == 0 || strcasecmp(value, "no") == 0 ||
               strcasecmp(value, "off") == 0 || strcmp(value, "0") == 0) {
        *flag = 0;
    } else {
        return -1;
    }
    return 0;
}

static int parse_int(const char *value, long long min, long long max, long long *number) {
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (end == value || *end != '\0' || errno != 0 || n < min || n > max) return -1;
    *number = n;
    return 0;
}

/* Digits only, at least one, as a non-negative number that fits. strtoll
 * alone would take signs and spaces. */
int redis_parse_digits(const char *p, size_t len, long long max, long long *number) {
    long long n = 0;
    if (len == 0) return -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        if (n > (max - (p[i] - '0')) / 10) return -1;
        n = n * 10 + (p[i] - '0');
    }
    *number = n;
    return 0;
}
/* ----------------------------------------------------------------------------
 * The password
 *
 * The recommended way is option password written as {file: PATH} or
 * {env: NAME}: outboxd resolves it before open and knows it is a secret
 * (it scrubs it from every log line). password_file and password_env are
 * the older forms, still read here, by the same rule as the NATS sink's
 * *_file options: the whole file, at most 64 KiB (more is refused, not
 * cut), trailing white space dropped, not empty, no NUL byte.
 * ------------------------------------------------------------------------- */

#define SECRET_FILE_MAX 65536

/* Frees a password after overwriting it: it should not linger in freed
 * memory (core dumps). explicit_bzero is not optimised away. */
void redis_password_free(char *password) {
    if (password == NULL) return;
    explicit_bzero(password, strlen(password));
    free(password);
}

/* Reads the secret held by file path for option key. Returns it (the
 * caller frees it with redis_password_free), or NULL with err naming the
 * option and the file, never the content. */
static char *secret_file_read(const char *key, const char *path, char *err, size_t err_size) {
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, err_size, "redis sink: option %s: cannot read %s: %s", key, path,
                 strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, SECRET_FILE_MAX + 2);
    size_t len = buf ? fread(buf, 1, SECRET_FILE_MAX + 1, f) : 0;
    int read_error = ferror(f);
    fclose(f);
    if (buf == NULL) {
        snprintf(err, err_size, "redis sink: out of memory");
        return NULL;
    }
    const char *problem = NULL;
    if (read_error) problem = "could not be read";
    else if (len > SECRET_FILE_MAX) problem = "is larger than 64 KiB";
    else {
        /* The usual file ends with a newline that is not part of it. */
        while (len > 0 && strchr("\r\n \t", buf[len - 1]) != NULL) buf[--len] = '\0';
        if (len == 0) problem = "is empty";
        else if (strlen(buf) != len) problem = "holds a NUL byte";
    }
    if (problem != NULL) {
        snprintf(err, err_size, "redis sink: option %s: %s %s", key, path, problem);
        explicit_bzero(buf, SECRET_FILE_MAX + 2);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Reads the password from password, password_file or password_env (at
 * most one may be set). Sets *password (NULL when none is set) and
 * describes its source in source, for messages. Returns 0, or -1 with err
 * naming the option: a missing file or variable is a configuration
 * error. */
static int password_read(const outbox_sink_host_t *host, char **password, char *source,
                         size_t source_size, char *err, size_t err_size) {
    const char *value = redis_option(host, "password");
    const char *file = redis_option(host, "password_file");
    const char *env = redis_option(host, "password_env");

    *password = NULL;
    snprintf(source, source_size, "no password");
    if ((value != NULL) + (file != NULL) + (env != NULL) > 1) {
        snprintf(err, err_size, "redis sink: options password, password_file and password_env: "
                                "set one, not several");
        return -1;
    }
    if (value != NULL) {
        if (value[0] == '\0') {
            snprintf(err, err_size, "redis sink: option password: empty");
            return -1;
        }
        *password = strdup(value);
        snprintf(source, source_size, "password from option password");
    } else if (env != NULL) {
        const char *v = getenv(env);
        if (v == NULL || v[0] == '\0') {
            snprintf(err, err_size,
                     "redis sink: option password_env: environment variable %s is not set or "
                     "empty",
                     env);
            return -1;
        }
        *password = strdup(v);
        snprintf(source, source_size, "password from $%s", env);
    } else if (file != NULL) {
        if ((*password = secret_file_read("password_file", file, err, err_size)) == NULL)
            return -1;
        snprintf(source, source_size, "password from %s", file);
    } else {
        return 0;
    }
    if (*password == NULL) {
        snprintf(err, err_size, "redis sink: out of memory");
        return -1;
    }
    return 0;
}
static struct timeval ms_to_timeval(long long ms) {
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Parses minid: a stream id (digits, or digits-digits), passed on as it
 * is, or an age (digits and a unit: ms, s, m, h, d). */
static int parse_minid(redis_sink_t *s, const char *value) {
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    size_t digits = strspn(value, "0123456789");
    long long n;

    if (digits == 0 || strlen(value) >= sizeof s->trim_value) return -1;
    const char *rest = value + digits;
    if (*rest == '\0' || (*rest == '-' && rest[1] != '\0' && strspn(rest + 1, "0123456789") ==
                                                                 strlen(rest + 1))) {
        snprintf(s->trim_value, sizeof s->trim_value, "%s", value);
        s->trim = TRIM_MINID;
        return 0;
    }
    if (redis_parse_digits(value, digits, INT64_MAX, &n) != 0) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(rest, units[i].unit) != 0) continue;
        if (n > INT64_MAX / units[i].ms) return -1;
        s->minid_age_ms = n * units[i].ms;
        s->trim = TRIM_MINID_AGE;
        return 0;
    }
    return -1;
}

#ifdef HAVE_HIREDIS_SSL
static pthread_once_t openssl_once = PTHREAD_ONCE_INIT;

static void openssl_init(void) { redisInitOpenSSL(); }

/* The TLS context of a rediss:// url, from tls_ca, tls_cert, tls_key and
 * tls_server_name. Returns 0, or -1 with errbuf naming the option. The
 * certificate's name is not checked by hiredis's redisCreateSSLContext
 * (only the chain): README, TLS. */
static int tls_configure(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    const outbox_sink_host_t *host = s->host;
    const char *ca = redis_option(host, "tls_ca");
    const char *cert = redis_option(host, "tls_cert");
    const char *key = redis_option(host, "tls_key");
    const char *sni = redis_option(host, "tls_server_name");

    if (!s->url.tls) {
        if (ca != NULL || cert != NULL || key != NULL || sni != NULL) {
            snprintf(errbuf, errbuf_size,
                     "redis sink: option %s: TLS options need a rediss:// url",
                     ca ? "tls_ca" : cert ? "tls_cert" : key ? "tls_key" : "tls_server_name");
            return -1;
        }
        return 0;
    }
    if ((cert != NULL) != (key != NULL)) {
        snprintf(errbuf, errbuf_size, "redis sink: option %s: tls_cert and tls_key go together",
                 cert ? "tls_key" : "tls_cert");
        return -1;
    }
    pthread_once(&openssl_once, openssl_init);
    redisSSLContextError e = REDIS_SSL_CTX_NONE;
    s->ssl = redisCreateSSLContext(ca, NULL, cert, key, sni ? sni : s->url.host, &e);
    if (s->ssl == NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: option %s: cannot set up TLS: %s",
                 e == REDIS_SSL_CTX_CA_CERT_LOAD_FAILED ? "tls_ca" : "tls_cert",
                 redisSSLContextGetError(e));
        return -1;
    }
    return 0;
}
#endif

/* Reads and checks every option into s. Returns 0, or -1 with errbuf
 * naming the option: a configuration error, FATAL. */
int redis_configure(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    const outbox_sink_host_t *host = s->host;
    char err[600];
    long long number;
    const char *value;

    value = redis_option(host, "url");
    if (redis_url_parse(value, &s->url, err, sizeof err) != 0) {
        snprintf(errbuf, errbuf_size, "redis sink: option url: %s", err);
        return -1;
    }
    /* The ACL user: option user (which may come from {file:} or {env:}),
     * or user@ in the url; both only when they agree. */
    value = redis_option(host, "user");
    if (value != NULL) {
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            if (*p <= ' ' || *p == 0x7f) {
                snprintf(errbuf, errbuf_size,
                         "redis sink: option user: a user name has no space or control character");
                return -1;
            }
        }
        if (value[0] == '\0') {
            snprintf(errbuf, errbuf_size, "redis sink: option user: empty");
            return -1;
        }
        if (s->url.user != NULL && strcmp(s->url.user, value) != 0) {
            snprintf(errbuf, errbuf_size,
                     "redis sink: option user: the url names another user; name it in one place");
            return -1;
        }
        free(s->url.user);
        if ((s->url.user = strdup(value)) == NULL) {
            snprintf(errbuf, errbuf_size, "redis sink: out of memory");
            return -1;
        }
    }
    static const char *const timeouts[] = {"connect_timeout_ms", "command_timeout_ms"};
    for (int i = 0; i < 2; i++) {
        value = redis_option(host, timeouts[i]);
        if (parse_int(value, 1, 600000, &number) != 0) {
            snprintf(errbuf, errbuf_size,
                     "redis sink: option %s: \"%s\" is not a whole number from 1 to 600000",
                     timeouts[i], value);
            return -1;
        }
        *(i == 0 ? &s->connect_timeout : &s->command_timeout) = ms_to_timeval(number);
    }
    value = redis_option(host, "pipeline");
    if (parse_int(value, 1, 100000, &number) != 0) {
        snprintf(errbuf, errbuf_size,
                 "redis sink: option pipeline: \"%s\" is not a whole number from 1 to 100000",
                 value);
        return -1;
    }
    s->pipeline = (size_t)number;

    const char *maxlen = redis_option(host, "maxlen");
    const char *minid = redis_option(host, "minid");
    if (maxlen != NULL && minid != NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: options maxlen and minid: set one, not both");
        return -1;
    }
    if (maxlen != NULL) {
        if (parse_int(maxlen, 1, INT64_MAX, &number) != 0) {
            snprintf(errbuf, errbuf_size,
                     "redis sink: option maxlen: \"%s\" is not a whole number of at least 1",
                     maxlen);
            return -1;
        }
        snprintf(s->trim_value, sizeof s->trim_value, "%lld", number);
        s->trim = TRIM_MAXLEN;
    }
    if (minid != NULL && parse_minid(s, minid) != 0) {
        snprintf(errbuf, errbuf_size,
                 "redis sink: option minid: \"%s\" is neither a stream id (1700000000000-0) nor "
                 "an age (90s, 30m, 24h, 7d)",
                 minid);
        return -1;
    }
    value = redis_option(host, "trim_exact");
    if (parse_bool(value, &s->trim_exact) != 0) {
        snprintf(errbuf, errbuf_size, "redis sink: option trim_exact: \"%s\" is not true or false",
                 value);
        return -1;
    }
    value = redis_option(host, "dedupe");
    if (parse_bool(value, &s->dedupe) != 0) {
        snprintf(errbuf, errbuf_size, "redis sink: option dedupe: \"%s\" is not true or false",
                 value);
        return -1;
    }
    value = redis_option(host, "dedupe_ttl");
    if (parse_int(value, 1, INT32_MAX, &number) != 0) {
        snprintf(errbuf, errbuf_size,
                 "redis sink: option dedupe_ttl: \"%s\" is not a whole number of seconds from 1 "
                 "to %d",
                 value, INT32_MAX);
        return -1;
    }
    snprintf(s->dedupe_ttl, sizeof s->dedupe_ttl, "%lld", number);
    s->dedupe_prefix = strdup(redis_option(host, "dedupe_prefix"));

    if (password_read(host, &s->password, s->password_source, sizeof s->password_source, errbuf,
                      errbuf_size) != 0)
        return -1;
#ifdef HAVE_HIREDIS_SSL
    return tls_configure(s, errbuf, errbuf_size);
#else
    return 0;
#endif
}
