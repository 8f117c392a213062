/*
 * connection.c - the Redis sink's connection: connect, AUTH, SELECT, PING,
 * the server check, loading the dedupe script, reconnecting with a short
 * backoff. hiredis 0.14 writes with write(2), so a write to a connection
 * the server closed raises SIGPIPE: outboxd ignores it process-wide
 * (sink.h, the host's contract), and the write fails with EPIPE.
 */
#include "redis_sink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t redis_now_ms(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
int redis_error_is_transient(const char *text) {
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
const char *redis_reply_text(const redisReply *r) {
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

void redis_sink_disconnect(redis_sink_t *s) {
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
    return redis_error_is_transient(r->str) ? OUTBOX_SINK_RETRY : OUTBOX_SINK_FATAL;
}

/* Loads the dedupe script and keeps its SHA1 for EVALSHA. Without it (a
 * user whose ACL forbids SCRIPT) each call sends the script's source with
 * EVAL, which works as well and costs bandwidth. Returns OK, or RETRY when
 * the connection failed (errbuf set). */
int redis_script_load(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    const char *argv[3] = {"SCRIPT", "LOAD", redis_dedupe_script};
    redisReply *r = handshake_command(s, 3, argv, errbuf, errbuf_size);
    if (r == NULL) return OUTBOX_SINK_RETRY;
    s->sha[0] = '\0';
    if (r->type == REDIS_REPLY_STRING && r->len < sizeof s->sha) {
        memcpy(s->sha, r->str, r->len + 1);
    } else {
        redis_log(s, OUTBOX_SINK_LOG_WARNING,
                 "cannot load the dedupe script (%s): sending its source with EVAL instead",
                 redis_reply_text(r));
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
int redis_sink_connect(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
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
            status = redis_error_is_transient(r->str) ? OUTBOX_SINK_RETRY : OUTBOX_SINK_FATAL;
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

    if (s->cfg.dedupe && redis_script_load(s, errbuf, errbuf_size) != OUTBOX_SINK_OK) goto fail;
    return OUTBOX_SINK_OK;

fail:
    redis_sink_disconnect(s);
    return status;
}

/* Connects when disconnected, no sooner than the backoff after the last
 * failed attempt allows: a host calling in a tight loop does not hammer
 * the server. The wait is short (BACKOFF_MAX_MS at most), so it is slept
 * here rather than returned as a RETRY, which would only make outboxd back
 * off longer on top. */
int redis_sink_ensure_connected(redis_sink_t *s, char *errbuf, size_t errbuf_size) {
    if (s->c != NULL) return OUTBOX_SINK_OK;
    int64_t wait = s->next_connect_ms - redis_now_ms(CLOCK_MONOTONIC);
    if (wait > 0) {
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    int status = redis_sink_connect(s, errbuf, errbuf_size);
    if (status == OUTBOX_SINK_OK) {
        redis_log(s, OUTBOX_SINK_LOG_INFO, "reconnected to %s", s->url.display);
        s->reconnects++;
        s->backoff_ms = 0;
        return OUTBOX_SINK_OK;
    }
    s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_FIRST_MS : s->backoff_ms * 2;
    if (s->backoff_ms > BACKOFF_MAX_MS) s->backoff_ms = BACKOFF_MAX_MS;
    s->next_connect_ms = redis_now_ms(CLOCK_MONOTONIC) + s->backoff_ms;
    return status;
}
