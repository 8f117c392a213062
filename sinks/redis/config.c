/*
 * config.c - the Redis sink's option table and its one parser, shared by
 * check and open: outboxd parses, range-checks and defaults every option
 * of the table and writes it into a redis_config_t (host->options_fill);
 * this file adds what the table cannot say: the url's syntax, the user,
 * where the password comes from, trimming and TLS (README: Options).
 */
#include "redis_sink.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPTION(member) OUTBOX_SINK_OPTION_AT(redis_config_t, member)

const outbox_sink_option_t redis_options[] = {
    {.key = "url",
     .type = OUTBOX_SINK_OPT_STRING,
     .default_value = "redis://127.0.0.1:6379/0",
     OPTION(url),
#ifdef HAVE_HIREDIS_SSL
     .help = "redis://[user@]host[:port][/db], rediss://... (TLS) or unix://[user@]/path[?db=N]; "
             "no password here (option password)"},
#else
     .help = "redis://[user@]host[:port][/db] or unix://[user@]/path[?db=N]; no password "
             "here (option password); no TLS (hiredis 0.14)"},
#endif
    {.key = "user",
     .type = OUTBOX_SINK_OPT_STRING,
     OPTION(user),
     .help = "Redis 6 ACL user (AUTH user password); instead of user@ in the url"},
    /* SECRET: outboxd also takes password_file: PATH, reads the file and
     * scrubs the value from every line it prints. */
    {.key = "password",
     .type = OUTBOX_SINK_OPT_SECRET,
     OPTION(password),
     .help = "the password (or password_file: PATH, {file: PATH}, {env: NAME}); never logged"},
    {.key = "password_env",
     .type = OUTBOX_SINK_OPT_STRING,
     OPTION(password_env),
     .help = "older form: environment variable holding the password"},
#ifdef HAVE_HIREDIS_SSL
    {.key = "tls_ca",
     .type = OUTBOX_SINK_OPT_STRING,
     OPTION(tls_ca),
     .help = "rediss://: PEM file of the CAs that verify the server (default: the system's)"},
    {.key = "tls_cert",
     .type = OUTBOX_SINK_OPT_STRING,
     OPTION(tls_cert),
     .help = "rediss://: PEM client certificate (with tls_key)"},
    {.key = "tls_key",
     .type = OUTBOX_SINK_OPT_STRING,
     OPTION(tls_key),
     .help = "rediss://: PEM key of tls_cert"},
    {.key = "tls_server_name",
     .type = OUTBOX_SINK_OPT_STRING,
     OPTION(tls_server_name),
     .help = "rediss://: the name sent as SNI (default: the url's host)"},
#endif
    /* DURATION: a bare number is milliseconds, as these keys always took;
     * "2s" or "1m" now work too. */
    {.key = "connect_timeout_ms",
     .type = OUTBOX_SINK_OPT_DURATION,
     .default_value = "2000",
     .min = 1,
     .max = 600000,
     OPTION(connect_timeout_ms),
     .help = "how long a connection attempt may take (ms, or 2s, 1m)"},
    {.key = "command_timeout_ms",
     .type = OUTBOX_SINK_OPT_DURATION,
     .default_value = "10000",
     .min = 1,
     .max = 600000,
     OPTION(command_timeout_ms),
     .help = "how long to wait for a reply before dropping the connection (RETRY)"},
    {.key = "pipeline",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "500",
     .min = 1,
     .max = 100000,
     OPTION(pipeline),
     .help = "commands sent before their replies are read"},
    {.key = "maxlen",
     .type = OUTBOX_SINK_OPT_INT,
     .min = 1,
     .max = INT64_MAX,
     OPTION(maxlen),
     .help = "trim each stream to about this many entries (XADD MAXLEN ~ N)"},
    {.key = "minid",
     .type = OUTBOX_SINK_OPT_STRING,
     OPTION(minid),
     .help = "trim entries older than a stream id (1700000000000-0) or an age (90s, 30m, 24h, "
             "7d) (XADD MINID ~, Redis >= 6.2)"},
    {.key = "trim_exact",
     .type = OUTBOX_SINK_OPT_BOOL,
     .default_value = "false",
     OPTION(trim_exact),
     .help = "trim exactly instead of by whole nodes (~), which costs more"},
    {.key = "dedupe",
     .type = OUTBOX_SINK_OPT_BOOL,
     .default_value = "false",
     OPTION(dedupe),
     .help = "add an event only if its id was not added to that stream within dedupe_ttl "
             "(a Lua script and one key per event)"},
    {.key = "dedupe_ttl",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "86400",
     .min = 1,
     .max = INT32_MAX,
     OPTION(dedupe_ttl),
     .help = "seconds an event id is remembered for dedupe"},
    {.key = "dedupe_prefix",
     .type = OUTBOX_SINK_OPT_STRING,
     .default_value = "outbox:dedupe:",
     OPTION(dedupe_prefix),
     .help = "dedupe keys are <prefix><stream>:<event id>"},
    OUTBOX_SINK_OPTION_END};

/* Writes "KEY: why" into errbuf (check's form: outboxd reports KEY's
 * line) and returns -1. */
static int refuse(char *errbuf, size_t errbuf_size, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(char *errbuf, size_t errbuf_size, const char *key, const char *fmt, ...) {
    char why[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(errbuf, errbuf_size, "%s: %s", key, why);
    return -1;
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

/* Frees a password after overwriting it: it should not linger in freed
 * memory (core dumps). explicit_bzero is not optimised away. */
void redis_password_free(char *password) {
    if (password == NULL) return;
    explicit_bzero(password, strlen(password));
    free(password);
}

/* The password from option password (outboxd has read password_file or
 * {file:}/{env:} into it) or from password_env, the older form, which
 * this sink reads itself. Keeps a copy in s (wiped at close) and says
 * where it came from in s->password_source, never what it is. */
static int password_configure(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    const char *password = s->cfg.password, *env = s->cfg.password_env;

    snprintf(s->password_source, sizeof s->password_source, "no password");
    if (password != NULL && env != NULL)
        return refuse(errbuf, errbuf_size, "password_env",
                      "set password (or password_file) or password_env, not both");
    if (password != NULL) {
        if (password[0] == '\0') return refuse(errbuf, errbuf_size, "password", "empty");
        snprintf(s->password_source, sizeof s->password_source,
                 "password from option password or password_file");
    } else if (env != NULL) {
        password = getenv(env);
        if (password == NULL || password[0] == '\0')
            return refuse(errbuf, errbuf_size, "password_env",
                          "environment variable %s is not set or empty", env);
        snprintf(s->password_source, sizeof s->password_source, "password from $%s", env);
    } else {
        return 0;
    }
    if ((s->password = strdup(password)) == NULL)
        return refuse(errbuf, errbuf_size, "password", "out of memory");
    return 0;
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
 * tls_server_name: reads the files, connects nowhere, so check builds it
 * too. The certificate's name is not checked by hiredis's
 * redisCreateSSLContext (only the chain): README, TLS. */
static int tls_configure(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    const char *ca = s->cfg.tls_ca, *cert = s->cfg.tls_cert, *key = s->cfg.tls_key;
    const char *sni = s->cfg.tls_server_name;

    if (!s->url.tls) {
        if (ca != NULL || cert != NULL || key != NULL || sni != NULL)
            return refuse(errbuf, errbuf_size,
                          ca ? "tls_ca" : cert ? "tls_cert" : key ? "tls_key" : "tls_server_name",
                          "TLS options need a rediss:// url");
        return 0;
    }
    if ((cert != NULL) != (key != NULL))
        return refuse(errbuf, errbuf_size, cert ? "tls_key" : "tls_cert",
                      "tls_cert and tls_key go together");
    pthread_once(&openssl_once, openssl_init);
    redisSSLContextError e = REDIS_SSL_CTX_NONE;
    s->ssl = redisCreateSSLContext(ca, NULL, cert, key, sni ? sni : s->url.host, &e);
    if (s->ssl == NULL)
        return refuse(errbuf, errbuf_size,
                      e == REDIS_SSL_CTX_CA_CERT_LOAD_FAILED ? "tls_ca" : "tls_cert",
                      "cannot set up TLS: %s", redisSSLContextGetError(e));
    return 0;
}
#endif

static struct timeval ms_to_timeval(int64_t ms) {
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

int redis_configure(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    const outbox_sink_host_t *host = s->host;
    redis_config_t *cfg = &s->cfg;
    char err[600];

    host->options_fill(host->ctx, cfg); /* open made sure the host has it */

    if (redis_url_parse(cfg->url, &s->url, err, sizeof err) != 0)
        return refuse(errbuf, errbuf_size, "url", "%s", err);
    /* The ACL user: option user (which may come from {file:} or {env:}),
     * or user@ in the url; both only when they agree. */
    if (cfg->user != NULL) {
        for (const unsigned char *p = (const unsigned char *)cfg->user; *p; p++) {
            if (*p <= ' ' || *p == 0x7f)
                return refuse(errbuf, errbuf_size, "user",
                              "a user name has no space or control character");
        }
        if (cfg->user[0] == '\0') return refuse(errbuf, errbuf_size, "user", "empty");
        if (s->url.user != NULL && strcmp(s->url.user, cfg->user) != 0)
            return refuse(errbuf, errbuf_size, "user",
                          "the url names another user; name it in one place");
        free(s->url.user);
        if ((s->url.user = strdup(cfg->user)) == NULL)
            return refuse(errbuf, errbuf_size, "user", "out of memory");
    }
    s->connect_timeout = ms_to_timeval(cfg->connect_timeout_ms);
    s->command_timeout = ms_to_timeval(cfg->command_timeout_ms);
    s->pipeline = (size_t)cfg->pipeline;

    if (cfg->maxlen != 0 && cfg->minid != NULL)
        return refuse(errbuf, errbuf_size, "minid", "set maxlen or minid, not both");
    if (cfg->maxlen != 0) {
        snprintf(s->trim_value, sizeof s->trim_value, "%" PRId64, cfg->maxlen);
        s->trim = TRIM_MAXLEN;
    }
    if (cfg->minid != NULL && parse_minid(s, cfg->minid) != 0)
        return refuse(errbuf, errbuf_size, "minid",
                      "\"%s\" is neither a stream id (1700000000000-0) nor an age (90s, 30m, "
                      "24h, 7d)",
                      cfg->minid);
    snprintf(s->dedupe_ttl, sizeof s->dedupe_ttl, "%" PRId64, cfg->dedupe_ttl);

    if (password_configure(s, errbuf, errbuf_size) != 0) return -1;
#ifdef HAVE_HIREDIS_SSL
    return tls_configure(s, errbuf, errbuf_size);
#else
    return 0;
#endif
}
