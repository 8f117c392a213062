/*
 * redis.c - the Redis Streams sink: each event becomes one entry, added
 * with XADD to the stream its route names (sinks/redis/README.md has the
 * entry format, the options and the delivery guarantee).
 *
 * It is built on hiredis 0.14 (Debian 12's), blocking API. A publish call
 * sends its batch as pipelines of up to `pipeline` commands, then reads
 * the replies in order and acks each event from its own reply:
 *
 *  - an entry id: the event is in the stream (as durable as the server's
 *    appendfsync makes it): ack OK;
 *  - an error reply that will not pass by waiting (WRONGTYPE, a syntax or
 *    permission error): ack FATAL with the server's text, and the sink's
 *    on_error policy decides;
 *  - an error reply that may pass (OOM, LOADING, BUSY, READONLY, ...): no
 *    ack, and publish returns RETRY after the pipeline;
 *  - the connection breaks: the events whose replies were read stay acked,
 *    the others get no ack and publish returns RETRY. Whether the server
 *    ran a command whose reply was lost cannot be known, so such an event
 *    may be added twice (at-least-once), unless `dedupe` is on.
 *
 * With `dedupe`, every event goes through a small Lua script that adds the
 * entry only when a per-event key is absent, and then sets that key with a
 * TTL, atomically (Redis 7.0 has no idempotent XADD).
 *
 * A broken connection is dropped; the next publish call reconnects, no
 * sooner than a short backoff after the last failed attempt. Everything
 * acks before publish returns, so there is no poll or flush. All state
 * lives in the redis_sink_t that open returns: instances share nothing.
 */
#include <outbox/sink.h>

#include <hiredis/hiredis.h>
#ifdef HAVE_HIREDIS_SSL
/* hiredis >= 1.0 built with SSL: configure found hiredis_ssl and added
 * -DHAVE_HIREDIS_SSL to HIREDIS_SSL_CFLAGS (README: TLS). */
#include <hiredis/hiredis_ssl.h>
#endif

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define PASSWORD_MAX 4096        /* bytes read from password_file */
#define BACKOFF_FIRST_MS 100     /* reconnect backoff, doubling up to... */
#define BACKOFF_MAX_MS 1000      /* ...this; outboxd backs off on top of it */

/* ----------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

static const outbox_sink_option_t redis_options[] = {
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
static int parse_digits(const char *p, size_t len, long long max, long long *number) {
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
 * The url
 *
 * Messages never repeat the url as written: whatever stands before its '@'
 * may be a password (a '/' or '@' in it defeats any parse), so the sink
 * prints only what it parsed: scheme, host, port, database (the user goes
 * into messages by itself, as "user app"). That is the whole of the rule;
 * outboxd additionally scrubs known secrets from plugin logs.
 * ------------------------------------------------------------------------- */

typedef struct {
    int is_unix;
    int tls;        /* rediss:// (only with HAVE_HIREDIS_SSL) */
    char *host;     /* TCP: host name or address, without IPv6 brackets */
    int port;
    char *path;     /* unix: the socket's path */
    char *user;     /* Redis 6 ACL user, or NULL for the default user */
    long long db;
    char *display;  /* for messages: scheme://host:port/db, no user, no password */
} redis_url_t;

static void url_free(redis_url_t *u) {
    free(u->host);
    free(u->path);
    free(u->user);
    free(u->display);
    memset(u, 0, sizeof *u);
}

/* Parses redis://[user@]host[:port][/db] (rediss:// with TLS) or
 * unix://[user@]/path[?db=N]. Returns 0, or -1 with err saying what is
 * wrong (without the option's name, which the caller adds), quoting at
 * most the part after the user: never the user or password part.
 *
 * The user part ends at the LAST '@' of a redis:// url (no host, port or
 * database holds one), and at the first "@/" of a unix:// url (the socket
 * path starts with '/'), so that a password holding '/' or '@' is still
 * found and refused, not taken for a host. */
static int url_parse(const char *url, redis_url_t *u, char *err, size_t err_size) {
    const char *rest, *at = NULL;
    const char *scheme;
    char display[1024];

    memset(u, 0, sizeof *u);
    if (strncmp(url, "rediss://", 9) == 0) {
#ifdef HAVE_HIREDIS_SSL
        rest = url + 9;
        u->tls = 1;
        scheme = "rediss://";
#else
        snprintf(err, err_size, "rediss:// (TLS) is not supported: this sink is built on hiredis "
                                "0.14, which has no TLS (hiredis >= 1.0 with hiredis_ssl has)");
        return -1;
#endif
    } else if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
        scheme = "redis://";
    } else if (strncmp(url, "unix://", 7) == 0) {
        rest = url + 7;
        u->is_unix = 1;
        scheme = "unix://";
    } else {
        /* Not a url of ours: shown without what stands before its last
         * '@', which may be a password. */
        const char *last_at = strrchr(url, '@');
        size_t n = strcspn(url, ":/@");
        snprintf(err, err_size,
                 "\"%.*s%s%s\" is not redis://[user@]host[:port][/db] or unix://[user@]/path[?db=N]",
                 (int)(last_at ? (n < 20 ? n : 20) : 0), url, last_at ? "://...@" : "",
                 last_at ? last_at + 1 : url);
        return -1;
    }

    if (u->is_unix) {
        const char *p = strstr(rest, "@/");
        if (rest[0] != '/' && p != NULL) at = p;
    } else {
        at = strrchr(rest, '@');
    }
    if (at != NULL) {
        size_t len = (size_t)(at - rest);
        if (memchr(rest, ':', len) != NULL) {
            snprintf(err, err_size, "a password in the url is not accepted (it would show in "
                                    "configs and logs): use option password, written as "
                                    "{file: PATH} or {env: NAME}");
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)rest[i];
            if (ch <= ' ' || ch == 0x7f || ch == '/' || ch == '@' || ch == '?') {
                snprintf(err, err_size, "the part before '@' is not a user name (it holds '/', "
                                        "'@', '?', a space or a control character); a password "
                                        "in the url is not accepted: use option password");
                return -1;
            }
        }
        if (len == 0) {
            snprintf(err, err_size, "an empty user name before '@'");
            return -1;
        }
        if ((u->user = strndup(rest, len)) == NULL) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        rest = at + 1;
    }

    if (u->is_unix) {
        const char *query = strchr(rest, '?');
        size_t path_len = query ? (size_t)(query - rest) : strlen(rest);
        if (path_len < 2 || rest[0] != '/') {
            snprintf(err, err_size, "\"unix://%s\": unix:// needs an absolute socket path, as in "
                                    "unix:///run/redis/redis.sock", rest);
            url_free(u);
            return -1;
        }
        u->path = strndup(rest, path_len);
        if (query != NULL) {
            if (strncmp(query, "?db=", 4) != 0 ||
                parse_digits(query + 4, strlen(query + 4), INT_MAX, &u->db) != 0) {
                snprintf(err, err_size, "\"unix://%s\": after the socket path only ?db=N is "
                                        "understood", rest);
                url_free(u);
                return -1;
            }
        }
        snprintf(display, sizeof display, "unix://%s?db=%lld", u->path ? u->path : "", u->db);
    } else {
        const char *host = rest, *host_end, *after;
        long long port = 6379;
        if (*host == '[') {
            host_end = strchr(host, ']');
            if (host_end == NULL) {
                snprintf(err, err_size, "\"%s%s\": an IPv6 address needs its closing ]", scheme,
                         rest);
                url_free(u);
                return -1;
            }
            host++;
            after = host_end + 1;
        } else {
            host_end = host + strcspn(host, ":/");
            after = host_end;
        }
        if (host_end == host) {
            snprintf(err, err_size, "\"%s%s\" names no host", scheme, rest);
            url_free(u);
            return -1;
        }
        if (*after == ':') {
            size_t len = strcspn(after + 1, "/");
            if (parse_digits(after + 1, len, 65535, &port) != 0 || port == 0) {
                snprintf(err, err_size, "\"%s%s\": the port is not a number from 1 to 65535",
                         scheme, rest);
                url_free(u);
                return -1;
            }
            after += 1 + len;
        }
        if (*after == '/' && after[1] != '\0' &&
            parse_digits(after + 1, strlen(after + 1), INT_MAX, &u->db) != 0) {
            snprintf(err, err_size, "\"%s%s\": the database (after the /) is not a number",
                     scheme, rest);
            url_free(u);
            return -1;
        }
        if (*after != '\0' && *after != '/') {
            snprintf(err, err_size, "\"%s%s\" is not %shost[:port][/db]", scheme, rest, scheme);
            url_free(u);
            return -1;
        }
        u->host = strndup(host, (size_t)(host_end - host));
        u->port = (int)port;
        snprintf(display, sizeof display, "%s%s%s%s:%d/%lld", scheme,
                 rest[0] == '[' ? "[" : "", u->host ? u->host : "", rest[0] == '[' ? "]" : "",
                 u->port, u->db);
    }
    u->display = strdup(display);
    if (u->display == NULL || (u->is_unix ? u->path == NULL : u->host == NULL)) {
        snprintf(err, err_size, "out of memory");
        url_free(u);
        return -1;
    }
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
static void password_free(char *password) {
    if (password == NULL) return;
    explicit_bzero(password, strlen(password));
    free(password);
}

/* Reads the secret held by file path for option key. Returns it (the
 * caller frees it with password_free), or NULL with err naming the
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
static const char dedupe_script[] =
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
 * The sink instance
 * ------------------------------------------------------------------------- */

typedef enum { TRIM_NONE, TRIM_MAXLEN, TRIM_MINID, TRIM_MINID_AGE } trim_kind_t;

typedef struct {
    const outbox_sink_host_t *host;
    redis_url_t url;
    char *password;              /* NULL: no AUTH */
    char password_source[512];   /* "password from ...": for messages, never the password */
    struct timeval connect_timeout, command_timeout;
    size_t pipeline;

    trim_kind_t trim;
    char trim_value[64];         /* MAXLEN count or MINID id */
    long long minid_age_ms;      /* TRIM_MINID_AGE */
    int trim_exact;

    int dedupe;
    char dedupe_ttl[24];
    char *dedupe_prefix;

    redisContext *c;             /* NULL while disconnected */
#ifdef HAVE_HIREDIS_SSL
    redisSSLContext *ssl;        /* rediss://: made once at open, used at each connect */
#endif
    char sha[48];                /* the script's SHA1; "" until loaded */
    int64_t next_connect_ms;     /* no reconnect attempt before this */
    int64_t backoff_ms;          /* 0 after a success */

    /* One command's arguments, rebuilt for each event. */
    const char **argv;
    size_t *argvlen;
    size_t argv_cap;
    char *scratch;               /* "h:<name>" fields, the dedupe key */
    size_t scratch_cap;
    size_t *sent;                /* indexes of the events in one pipeline */
    size_t *resend;              /* ...and those to send again with EVAL */

    uint64_t added, duplicates;  /* for the log line at close */
} redis_sink_t;

static void sink_log(redis_sink_t *s, outbox_sink_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sink_log(redis_sink_t *s, outbox_sink_log_level_t level, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->host->log(s->host->ctx, level, "%s", line);
}

static int64_t now_ms(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval ms_to_timeval(long long ms) {
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* ----------------------------------------------------------------------------
 * SIGPIPE
 *
 * hiredis 0.14 writes with write(2), not send(MSG_NOSIGNAL): writing to a
 * connection the server has closed raises SIGPIPE, whose default action
 * kills the whole process (outboxd does not ignore it, and a plugin should
 * not change a process-wide disposition). So SIGPIPE is blocked in this
 * thread while hiredis writes, and one it raised is taken off the pending
 * set before unblocking: the write then just fails with EPIPE. SIGPIPE
 * from write(2) is sent to the writing thread, so others are unaffected.
 * ------------------------------------------------------------------------- */

typedef struct {
    sigset_t old;
    int was_pending;
} sigpipe_guard_t;

static void sigpipe_block(sigpipe_guard_t *g) {
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
}

static void sigpipe_unblock(sigpipe_guard_t *g) {
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    /* Only take what we raised: one pending before belongs to someone. */
    if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ----------------------------------------------------------------------------
 * Replies
 * ------------------------------------------------------------------------- */

/* True for error replies that may go away by themselves: memory freed by
 * consumers trimming, a server still loading its data after a restart, a
 * busy script, a replica promoted during a failover, a failed RDB save.
 * These are not a property of the event, so they are retried rather than
 * handed to on_error. A script's error may come wrapped ("ERR Error
 * running script ...: @user_script:8: OOM ..." before Redis 7), hence the
 * search after the first word too. */
static int error_is_transient(const char *text) {
    static const char *const codes[] = {"OOM ",      "LOADING ",  "BUSY ",       "READONLY ",
                                        "MASTERDOWN ", "TRYAGAIN ", "NOREPLICAS ", "CLUSTERDOWN ",
                                        "MISCONF ",  "NOTBUSY "};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t len = strlen(codes[i]);
        if (strncmp(text, codes[i], len) == 0) return 1;
        if (strncmp(text, "ERR Error running script", 24) == 0) {
            char wrapped[32];
            snprintf(wrapped, sizeof wrapped, ": %s", codes[i]);
            if (strstr(text, wrapped) != NULL) return 1;
        }
    }
    return 0;
}

/* The reply's text, for messages: error and status texts as they are. */
static const char *reply_text(const redisReply *r) {
    if (r == NULL) return "no reply";
    if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_STRING)
        return r->str;
    if (r->type == REDIS_REPLY_NIL) return "nil";
    if (r->type == REDIS_REPLY_INTEGER) return "an integer";
    return "an array";
}

/* ----------------------------------------------------------------------------
 * Connecting
 * ------------------------------------------------------------------------- */

static void sink_disconnect(redis_sink_t *s) {
    if (s->c != NULL) redisFree(s->c);
    s->c = NULL;
    s->sha[0] = '\0';
}

/* Runs one command of the handshake. Returns the reply (the caller frees
 * it), or NULL when the connection failed, with errbuf set: the caller
 * returns RETRY. */
static redisReply *handshake_command(redis_sink_t *s, int argc, const char **argv,
                                     char *errbuf, size_t errbuf_size) {
    size_t lens[3];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
    if (r == NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: %s: %s during %s", s->url.display,
                 s->c->errstr[0] ? s->c->errstr : "connection failed", argv[0]);
    }
    return r;
}

/* The version as 10000 * major + 100 * minor + patch, from INFO server;
 * 0 when unknown. */
static long server_version(const redisReply *info) {
    const char *p = strstr(info->str, "redis_version:");
    int major = 0, minor = 0, patch = 0;
    if (p == NULL || sscanf(p + 14, "%d.%d.%d", &major, &minor, &patch) < 2) return 0;
    return major * 10000L + minor * 100L + patch;
}

/* Copies text into out with each occurrence of the password replaced by
 * *****. Redis does not echo passwords, but a message the sink writes
 * must never carry one, whatever the server says. */
static void scrub(const char *text, const char *password, char *out, size_t out_size) {
    size_t len = password ? strlen(password) : 0, used = 0;
    while (*text != '\0' && used + 1 < out_size) {
        if (len > 0 && strncmp(text, password, len) == 0) {
            used += (size_t)snprintf(out + used, out_size - used, "*****");
            if (used >= out_size) used = out_size - 1;
            text += len;
        } else {
            out[used++] = *text++;
        }
    }
    out[used] = '\0';
}

/* Classifies an error reply of the handshake (after AUTH) and says what it
 * means in errbuf. Returns RETRY or FATAL. */
static int handshake_error(redis_sink_t *s, const char *what, const redisReply *r, char *errbuf,
                           size_t errbuf_size) {
    if (strncmp(r->str, "NOAUTH", 6) == 0) {
        snprintf(errbuf, errbuf_size,
                 "redis sink: %s wants a password: set option password (as {file: PATH} or "
                 "{env: NAME}) (%s)",
                 s->url.display, r->str);
        return OUTBOX_SINK_FATAL;
    }
    snprintf(errbuf, errbuf_size, "redis sink: %s: %s: %s", s->url.display, what, r->str);
    return error_is_transient(r->str) ? OUTBOX_SINK_RETRY : OUTBOX_SINK_FATAL;
}

/* Loads the dedupe script and keeps its SHA1 for EVALSHA. Without it (a
 * user whose ACL forbids SCRIPT) each call sends the script's source with
 * EVAL, which works as well and costs bandwidth. Returns OK, or RETRY when
 * the connection failed (errbuf set). */
static int script_load(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    const char *argv[3] = {"SCRIPT", "LOAD", dedupe_script};
    redisReply *r = handshake_command(s, 3, argv, errbuf, errbuf_size);
    if (r == NULL) return OUTBOX_SINK_RETRY;
    s->sha[0] = '\0';
    if (r->type == REDIS_REPLY_STRING && r->len < sizeof s->sha) {
        memcpy(s->sha, r->str, r->len + 1);
    } else {
        sink_log(s, OUTBOX_SINK_LOG_WARNING,
                 "cannot load the dedupe script (%s): sending its source with EVAL instead",
                 reply_text(r));
    }
    freeReplyObject(r);
    return OUTBOX_SINK_OK;
}

/* Connects, authenticates, selects the database, checks the server and
 * loads the dedupe script. Returns OK; RETRY when the server cannot be
 * reached or is not ready (errbuf says why); FATAL when the configuration
 * cannot work with this server: a refused login, a password the server
 * wants and was not given, a database it does not have, a version too old
 * for the options. On failure nothing stays connected. */
static int sink_connect(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    redisReply *r;
    int status = OUTBOX_SINK_RETRY;

    if (s->url.is_unix)
        s->c = redisConnectUnixWithTimeout(s->url.path, s->connect_timeout);
    else
        s->c = redisConnectWithTimeout(s->url.host, s->url.port, s->connect_timeout);
    if (s->c == NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: out of memory connecting to %s",
                 s->url.display);
        return OUTBOX_SINK_RETRY;
    }
    if (s->c->err) {
        snprintf(errbuf, errbuf_size, "redis sink: cannot connect to %s: %s", s->url.display,
                 s->c->errstr);
        goto fail;
    }
#ifdef HAVE_HIREDIS_SSL
    /* A handshake that fails (an unknown CA, an expired certificate) is
     * RETRY like an unreachable server: the certificate may be renewed. */
    if (s->ssl != NULL && redisInitiateSSLWithContext(s->c, s->ssl) != REDIS_OK) {
        snprintf(errbuf, errbuf_size, "redis sink: TLS with %s failed: %s", s->url.display,
                 s->c->errstr[0] ? s->c->errstr : "handshake failed");
        goto fail;
    }
#endif
    /* The connect timeout also became the socket's; replies get theirs. */
    if (redisSetTimeout(s->c, s->command_timeout) != REDIS_OK ||
        (!s->url.is_unix && redisEnableKeepAlive(s->c) != REDIS_OK)) {
        snprintf(errbuf, errbuf_size, "redis sink: %s: cannot set socket options: %s",
                 s->url.display, s->c->errstr);
        goto fail;
    }

    if (s->password != NULL) {
        /* AUTH user password for a Redis 6 ACL user, else AUTH password. */
        const char *argv[3];
        int argc = 0;
        argv[argc++] = "AUTH";
        if (s->url.user != NULL) argv[argc++] = s->url.user;
        argv[argc++] = s->password;
        if ((r = handshake_command(s, argc, argv, errbuf, errbuf_size)) == NULL) goto fail;
        if (r->type == REDIS_REPLY_ERROR) {
            char text[512];
            scrub(r->str, s->password, text, sizeof text);
            status = error_is_transient(r->str) ? OUTBOX_SINK_RETRY : OUTBOX_SINK_FATAL;
            snprintf(errbuf, errbuf_size, "redis sink: %s refused the login as user %s (%s): %s",
                     s->url.display, s->url.user ? s->url.user : "default", s->password_source,
                     text);
            freeReplyObject(r);
            goto fail;
        }
        freeReplyObject(r);
    } else if (s->url.user != NULL) {
        snprintf(errbuf, errbuf_size,
                 "redis sink: user %s is set but no password: set option password (as "
                 "{file: PATH} or {env: NAME})",
                 s->url.user);
        status = OUTBOX_SINK_FATAL;
        goto fail;
    }

    if (s->url.db != 0) {
        char db[24];
        snprintf(db, sizeof db, "%lld", s->url.db);
        const char *argv[2] = {"SELECT", db};
        if ((r = handshake_command(s, 2, argv, errbuf, errbuf_size)) == NULL) goto fail;
        if (r->type == REDIS_REPLY_ERROR) {
            status = handshake_error(s, "option url: SELECT of the database", r, errbuf,
                                     errbuf_size);
            freeReplyObject(r);
            goto fail;
        }
        freeReplyObject(r);
    }

    const char *ping[1] = {"PING"};
    if ((r = handshake_command(s, 1, ping, errbuf, errbuf_size)) == NULL) goto fail;
    if (r->type == REDIS_REPLY_ERROR) {
        status = handshake_error(s, "PING", r, errbuf, errbuf_size);
        freeReplyObject(r);
        goto fail;
    }
    freeReplyObject(r);

    /* Streams need Redis 5.0, MINID 6.2: better one clear error now than
     * a syntax error for every event, each handed to on_error. The same
     * for a cluster node, whose MOVED replies this sink cannot follow. A
     * user whose ACL forbids INFO is not checked. */
    const char *info[2] = {"INFO", "server"};
    if ((r = handshake_command(s, 2, info, errbuf, errbuf_size)) == NULL) goto fail;
    if (r->type == REDIS_REPLY_STRING && strstr(r->str, "redis_mode:cluster") != NULL) {
        snprintf(errbuf, errbuf_size,
                 "redis sink: %s is a Redis Cluster node; this sink (hiredis 0.14) supports a "
                 "standalone server only",
                 s->url.display);
        freeReplyObject(r);
        status = OUTBOX_SINK_FATAL;
        goto fail;
    }
    if (r->type == REDIS_REPLY_STRING) {
        long version = server_version(r);
        long needed = s->trim == TRIM_MINID || s->trim == TRIM_MINID_AGE ? 60200 : 50000;
        if (version != 0 && version < needed) {
            snprintf(errbuf, errbuf_size, "redis sink: %s runs Redis %ld.%ld, and %s needs %s",
                     s->url.display, version / 10000, version / 100 % 100,
                     needed == 60200 ? "option minid" : "a stream",
                     needed == 60200 ? "6.2" : "5.0");
            freeReplyObject(r);
            status = OUTBOX_SINK_FATAL;
            goto fail;
        }
    }
    freeReplyObject(r);

    if (s->dedupe && script_load(s, errbuf, errbuf_size) != OUTBOX_SINK_OK) goto fail;
    return OUTBOX_SINK_OK;

fail:
    sink_disconnect(s);
    return status;
}

/* Connects when disconnected, no sooner than the backoff after the last
 * failed attempt allows: a host calling in a tight loop does not hammer
 * the server. The wait is short (BACKOFF_MAX_MS at most), so it is slept
 * here rather than returned as a RETRY, which would only make outboxd back
 * off longer on top. */
static int sink_ensure_connected(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    if (s->c != NULL) return OUTBOX_SINK_OK;
    int64_t wait = s->next_connect_ms - now_ms(CLOCK_MONOTONIC);
    if (wait > 0) {
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    int status = sink_connect(s, errbuf, errbuf_size);
    if (status == OUTBOX_SINK_OK) {
        sink_log(s, OUTBOX_SINK_LOG_INFO, "reconnected to %s", s->url.display);
        s->backoff_ms = 0;
        return OUTBOX_SINK_OK;
    }
    s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_FIRST_MS : s->backoff_ms * 2;
    if (s->backoff_ms > BACKOFF_MAX_MS) s->backoff_ms = BACKOFF_MAX_MS;
    s->next_connect_ms = now_ms(CLOCK_MONOTONIC) + s->backoff_ms;
    return status;
}

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
    if (!s->trim_exact) t->argv[t->argc++] = "~";
    if (s->trim == TRIM_MINID_AGE) {
        int64_t cutoff = now_ms(CLOCK_REALTIME) - s->minid_age_ms;
        snprintf(t->threshold, sizeof t->threshold, "%" PRId64, cutoff > 0 ? cutoff : 0);
        t->argv[t->argc++] = t->threshold;
    } else {
        t->argv[t->argc++] = s->trim_value;
    }
}

/* Appends one event's command to the pipeline:
 *   XADD <stream> [trim] * id <id> type <type> [key <key>] created <ms>
 *        payload <bytes> h:<name> <value> ...
 * or, with dedupe, EVALSHA <sha> 2 <stream> <dedupe key> <ttl> <n trim>
 * [trim] <the same fields> (EVAL <source> ... when eval_source). Every
 * argument goes with its length: binary-safe, so a BSON payload with NUL
 * bytes arrives whole. Returns 0, or -1 when out of memory (in hiredis
 * too: then the connection is unusable). */
static int append_command(redis_sink_t *s, const outbox_sink_event_t *ev, const trim_args_t *t,
                          int eval_source) {
    char created[24], ntrim[4];
    size_t bytes = 0, argc = 0;

    for (size_t h = 0; h < ev->n_headers; h++) bytes += 3 + strlen(ev->headers[h].name);
    if (s->dedupe)
        bytes += strlen(s->dedupe_prefix) + strlen(ev->destination) + strlen(ev->id) + 2;
    if (reserve(s, 24 + 2 * ev->n_headers, bytes) != 0) return -1;

#define ARG(str, len) (s->argv[argc] = (str), s->argvlen[argc] = (len), argc++)
#define ARGZ(str) ARG((str), strlen(str))
    char *scratch = s->scratch;
    if (s->dedupe) {
        ARGZ(eval_source ? "EVAL" : "EVALSHA");
        ARGZ(eval_source ? dedupe_script : s->sha);
        ARGZ("2");
        ARGZ(ev->destination);
        int len = sprintf(scratch, "%s%s:%s", s->dedupe_prefix, ev->destination, ev->id);
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
    snprintf(created, sizeof created, "%" PRId64, ev->created_ms);
    ARGZ("created");
    ARGZ(created);
    ARGZ("payload");
    ARG((const char *)ev->payload, ev->payload_len);
    for (size_t h = 0; h < ev->n_headers; h++) {
        int len = sprintf(scratch, "h:%s", ev->headers[h].name);
        ARG(scratch, (size_t)len);
        scratch += len + 1;
        ARGZ(ev->headers[h].value);
    }
#undef ARGZ
#undef ARG
    /* hiredis copies the arguments into its buffer now. */
    return redisAppendCommandArgv(s->c, (int)argc, s->argv, s->argvlen) == REDIS_OK ? 0 : -1;
}

static void ack(redis_sink_t *s, uint64_t seq, outbox_sink_status_t status, const char *error) {
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
    if (r->type == REDIS_REPLY_ERROR && error_is_transient(r->str)) {
        snprintf(errbuf, errbuf_size, "redis sink: XADD to stream %s on %s: %s", ev->destination,
                 s->url.display, r->str);
        return PIPE_TRANSIENT;
    }
    if (r->type == REDIS_REPLY_ERROR)
        snprintf(error, sizeof error, "redis sink: XADD to stream %s: %s", ev->destination, r->str);
    else
        snprintf(error, sizeof error, "redis sink: XADD to stream %s: unexpected reply (%s)",
                 ev->destination, reply_text(r));
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
            sink_disconnect(s);
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
            sink_disconnect(s);
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

/* ----------------------------------------------------------------------------
 * Stream names
 *
 * Redis keys may be any bytes, but a stream name comes from the event
 * ({type}, {key}), which any producer writes. The rule (README: Stream
 * names): not empty, valid UTF-8, no control character (C0, DEL, C1).
 * Such names would be unreadable in redis-cli and log lines, and break
 * consumers that decode key names as UTF-8 text.
 * ------------------------------------------------------------------------- */

/* Why name cannot be a stream name, or NULL. */
static const char *stream_name_problem(const char *name) {
    const unsigned char *p = (const unsigned char *)name;
    if (*p == '\0') return "it is empty (the route gave no stream name)";
    while (*p != '\0') {
        size_t n = outbox_sink_utf8_len(p);
        if (n == 0) return "it is not valid UTF-8";
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] < 0xa0))
            return "it holds a control character";
        p += n;
    }
    return NULL;
}

/* ----------------------------------------------------------------------------
 * The callbacks
 * ------------------------------------------------------------------------- */

static void sink_free(redis_sink_t *s) {
    sink_disconnect(s);
#ifdef HAVE_HIREDIS_SSL
    if (s->ssl != NULL) redisFreeSSLContext(s->ssl);
#endif
    url_free(&s->url);
    password_free(s->password);
    free(s->dedupe_prefix);
    free(s->argv);
    free(s->argvlen);
    free(s->scratch);
    free(s->sent);
    free(s->resend);
    free(s);
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
    if (parse_digits(value, digits, INT64_MAX, &n) != 0) return -1;
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
static int sink_configure(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    const outbox_sink_host_t *host = s->host;
    char err[600];
    long long number;
    const char *value;

    value = redis_option(host, "url");
    if (url_parse(value, &s->url, err, sizeof err) != 0) {
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

static void describe_trim(const redis_sink_t *s, char *out, size_t size) {
    const char *op = s->trim_exact ? "" : " ~";
    switch (s->trim) {
    case TRIM_NONE: snprintf(out, size, "none"); break;
    case TRIM_MAXLEN: snprintf(out, size, "MAXLEN%s %s", op, s->trim_value); break;
    case TRIM_MINID: snprintf(out, size, "MINID%s %s", op, s->trim_value); break;
    case TRIM_MINID_AGE: snprintf(out, size, "MINID%s (now - %lld ms)", op, s->minid_age_ms); break;
    }
}

static int redis_open(const outbox_sink_host_t *host, void **state, char *errbuf,
                      size_t errbuf_size) {
    char trim[128];
    sigpipe_guard_t guard;

    redis_sink_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    s->host = host;
    if (sink_configure(s, errbuf, errbuf_size) != 0) {
        sink_free(s);
        return OUTBOX_SINK_FATAL;
    }
    s->sent = calloc(s->pipeline, sizeof *s->sent);
    s->resend = calloc(s->pipeline, sizeof *s->resend);
    if (s->dedupe_prefix == NULL || s->sent == NULL || s->resend == NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: out of memory");
        sink_free(s);
        return OUTBOX_SINK_RETRY;
    }

    /* An unreachable server is RETRY: outboxd opens again after a backoff. */
    sigpipe_block(&guard);
    int status = sink_connect(s, errbuf, errbuf_size);
    sigpipe_unblock(&guard);
    if (status != OUTBOX_SINK_OK) {
        sink_free(s);
        return status;
    }
    describe_trim(s, trim, sizeof trim);
    sink_log(s, OUTBOX_SINK_LOG_INFO,
             "adding entries to streams at %s (user %s, %s): pipeline %zu, trim %s, dedupe %s",
             s->url.display, s->url.user ? s->url.user : "default", s->password_source,
             s->pipeline, trim, s->dedupe ? (s->sha[0] ? "on (EVALSHA)" : "on (EVAL)") : "off");
    *state = s;
    return OUTBOX_SINK_OK;
}

/* Sends the batch in pipelines of up to `pipeline` events and acks each
 * event from its reply before returning. Returns OK when every event was
 * acked; RETRY when the connection broke or the server said to wait (the
 * events acked so far stay acked, the others come again); FATAL when a
 * reconnect found the configuration no longer works (a changed password):
 * outboxd then reopens the sink, and open says why. */
static int redis_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                         size_t errbuf_size) {
    redis_sink_t *s = state;
    sigpipe_guard_t guard;
    trim_args_t trim;
    int status;

    sigpipe_block(&guard);
    status = sink_ensure_connected(s, errbuf, errbuf_size);
    trim_prepare(s, &trim);
    for (size_t i = 0; i < n && status == OUTBOX_SINK_OK;) {
        size_t count = 0, n_resend = 0;
        while (i < n && count < s->pipeline) {
            /* A stream name the rule refuses (README: Stream names) will
             * not change: this event's FATAL, before anything is sent. */
            const char *problem = stream_name_problem(events[i].destination);
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
        int eval_source = s->dedupe && s->sha[0] == '\0';
        pipe_result_t result = send_pipeline(s, events, s->sent, count, &trim, eval_source,
                                             s->resend, &n_resend, errbuf, errbuf_size);
        if (result == PIPE_OK && n_resend > 0) {
            sink_log(s, OUTBOX_SINK_LOG_INFO,
                     "the dedupe script was gone from the server (NOSCRIPT): loading it again");
            result = send_pipeline(s, events, s->resend, n_resend, &trim, 1, NULL, NULL, errbuf,
                                   errbuf_size);
            if (result == PIPE_OK && script_load(s, errbuf, errbuf_size) != OUTBOX_SINK_OK) {
                sink_disconnect(s);
                result = PIPE_LOST;
            }
        }
        if (result != PIPE_OK) status = OUTBOX_SINK_RETRY;
    }
    sigpipe_unblock(&guard);
    return status;
}

static void redis_close(void *state) {
    redis_sink_t *s = state;
    if (s->dedupe)
        sink_log(s, OUTBOX_SINK_LOG_INFO,
                 "closing: %" PRIu64 " entries added, %" PRIu64 " duplicates not added again",
                 s->added, s->duplicates);
    else
        sink_log(s, OUTBOX_SINK_LOG_INFO, "closing: %" PRIu64 " entries added", s->added);
    sink_free(s);
}

/* poll and flush stay NULL: every event is acked before publish returns. */
OUTBOX_SINK_PLUGIN(.name = "redis", .version = "1.0.0",
                   .description = "entries added to Redis Streams (XADD, pipelined; optional "
                                  "dedupe by event id)",
                   .options = redis_options, .open = redis_open, .publish = redis_publish,
                   .close = redis_close)
