/*
 * redis_sink.h - what the files of the Redis Streams sink share (internal:
 * nothing here is exported from the module, which -fvisibility=hidden and
 * -export-symbols-regex keep to outbox_sink_entry). The sink's files, by
 * concern:
 *   redis.c        the plugin struct: open, close, the instance's life
 *   config.c       the option table and turning options into a redis_sink_t
 *   url.c          parsing the url (never printing what precedes its '@')
 *   connection.c   connecting, the handshake, reconnect backoff
 *   publish.c      publish: commands, pipelines, replies to acks, dedupe script
 *   recover.c      recover: which events in doubt a stream's last entries hold
 *   stream_name.c  the rule for stream names made from event data
 */
#ifndef OUTBOX_REDIS_SINK_H
#define OUTBOX_REDIS_SINK_H

#include <outbox/sink.h>

#include <hiredis/hiredis.h>
#ifdef HAVE_HIREDIS_SSL
/* hiredis >= 1.0 built with SSL: configure found hiredis_ssl and added
 * -DHAVE_HIREDIS_SSL to HIREDIS_SSL_CFLAGS (README: TLS). */
#include <hiredis/hiredis_ssl.h>
#endif

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#define BACKOFF_FIRST_MS 100     /* reconnect backoff, doubling up to... */
#define BACKOFF_MAX_MS 1000      /* ...this; outboxd backs off on top of it */

/* ----------------------------------------------------------------------------
 * The url (url.c)
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

/* ----------------------------------------------------------------------------
 * The sink instance
 * ------------------------------------------------------------------------- */

/* The options as outboxd's options_fill writes them (the table in
 * config.c maps each one here). Strings belong to outboxd and live until
 * close (until check returns, in check); NULL or 0 when absent. */
typedef struct {
    const char *url, *user, *password, *password_env;
    const char *tls_ca, *tls_cert, *tls_key, *tls_server_name; /* rediss:// builds only */
    int64_t connect_timeout_ms, command_timeout_ms;
    int64_t pipeline, maxlen, dedupe_ttl;
    const char *minid, *dedupe_prefix;
    int trim_exact, dedupe;
} redis_config_t;

typedef enum { TRIM_NONE, TRIM_MAXLEN, TRIM_MINID, TRIM_MINID_AGE } trim_kind_t;

typedef struct {
    const outbox_sink_host_t *host;
    int as_given; /* host->message_as_given (ABI 1.2): events go as outboxd laid them out */
    redis_config_t cfg;
    /* What config.c made of cfg. */
    redis_url_t url;
    char *password;              /* NULL: no AUTH */
    char password_source[512];   /* "password from ...": for messages, never the password */
    struct timeval connect_timeout, command_timeout;
    size_t pipeline;
    trim_kind_t trim;
    char trim_value[64];         /* MAXLEN count or MINID id */
    long long minid_age_ms;      /* TRIM_MINID_AGE */
    char dedupe_ttl[24];

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

    /* For stats and the log line at close. */
    uint64_t added, duplicates, refused, transient, lost, reconnects;
} redis_sink_t;

/* ----------------------------------------------------------------------------
 * Functions, by file
 * ------------------------------------------------------------------------- */

/* config.c */
extern const outbox_sink_option_t redis_options[];
/* The one parser of check and open: fills s->cfg through s->host's
 * options_fill and checks what the table cannot. 0, or -1 with errbuf
 * "KEY: why". s->host must be set. */
int redis_configure(redis_sink_t *s, char *errbuf, size_t errbuf_size);
/* Digits only, at least one, as a non-negative number up to max: 0, or -1. */
int redis_parse_digits(const char *p, size_t len, long long max, long long *number);
/* Wipes and frees a password (NULL is fine). */
void redis_password_free(char *password);

/* url.c */
int redis_url_parse(const char *url, redis_url_t *u, char *err, size_t err_size);
void redis_url_free(redis_url_t *u);

/* connection.c */
int64_t redis_now_ms(clockid_t clock);
int redis_error_is_transient(const char *text);
const char *redis_reply_text(const redisReply *r);
int redis_sink_connect(redis_sink_t *s, char *errbuf, size_t errbuf_size);
int redis_sink_ensure_connected(redis_sink_t *s, char *errbuf, size_t errbuf_size);
void redis_sink_disconnect(redis_sink_t *s);
int redis_script_load(redis_sink_t *s, char *errbuf, size_t errbuf_size);

/* publish.c */
extern const char redis_dedupe_script[];
int redis_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                  size_t errbuf_size);
/* The entry's fields of ev (the one layout publish writes and recover
 * compares): room for them plus extra_argc arguments and extra_bytes of
 * scratch (0, or -1 when out of memory); then the fields into s->argv from
 * argc on, "h:<name>" bytes into *scratch, created's digits into created;
 * returns the new argc. */
int redis_entry_reserve(redis_sink_t *s, const outbox_sink_event_t *ev, size_t extra_argc, size_t extra_bytes);
size_t redis_entry_fields(redis_sink_t *s, const outbox_sink_event_t *ev, size_t argc, char **scratch,
                          char created[24]);
/* recover.c */
int redis_recover(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held, char *errbuf,
                  size_t errbuf_size);

/* stream_name.c */
const char *redis_stream_name_problem(const char *name);

/* redis.c */
void redis_log(redis_sink_t *s, outbox_sink_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
