/*
 * connection.c - the NATS connection: libnats's options built from the
 * sink's (servers, reconnects, authentication, TLS), the connection
 * callbacks libnats makes from its own thread, libnats's error texts with
 * any credentials masked, the stream the sink may create at open, and the
 * orderly close that waits for libnats's last callback.
 */
#include "nats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* libnats's text for st, with the calling thread's last error detail, and
 * any credentials in it masked. */
void nats_error_text(natsStatus st, char *out, size_t size) {
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

/* Drains the connection (sends what is buffered, then closes it; one that
 * is down just closes) and waits for the closed callback, the last call
 * libnats makes with s. Returns 0 when it did not come in time: then s
 * must not be freed. */
int nats_close_connection(nats_sink_t *s) {
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

/* Says what went wrong in a libnats call about option key: "KEY: what: libnats's text". */
static int option_error(natsStatus st, const char *key, const char *what, char *errbuf, size_t size) {
    char text[512];
    nats_error_text(st, text, sizeof text);
    snprintf(errbuf, size, "%s: %s%s%s", key, what, what[0] ? ": " : "", text);
    return OUTBOX_SINK_FATAL;
}

int nats_build_options(const nats_config_t *c, const char *sink_name, nats_sink_t *s, natsOptions **out,
                       char *errbuf, size_t errbuf_size) {
    natsOptions *o = NULL;
    int n_servers = 0;
    char name[300], first_host[256];
    int rc = OUTBOX_SINK_FATAL;

    while (c->servers[n_servers] != NULL) n_servers++;
    snprintf(name, sizeof name, "outboxd sink %s", sink_name ? sink_name : "?");
    natsStatus st = natsOptions_Create(&o);
    if (st == NATS_OK) st = natsOptions_SetServers(o, (const char **)c->servers, n_servers);
    if (st != NATS_OK) {
        rc = option_error(st, "servers", "", errbuf, errbuf_size);
        goto fail;
    }
    if (st == NATS_OK) st = natsOptions_SetName(o, name);
    if (st == NATS_OK) st = natsOptions_SetTimeout(o, c->connect_timeout_ms);
    if (st == NATS_OK) st = natsOptions_SetMaxReconnect(o, (int)c->max_reconnect);
    if (st == NATS_OK) st = natsOptions_SetReconnectWait(o, c->reconnect_wait_ms);
    /* No buffering while disconnected: a publish then fails at once instead
     * of being sent later ahead of older events (see nats.h). */
    if (st == NATS_OK) st = natsOptions_SetReconnectBufSize(o, 0);
    /* A stream lookup must not hang on a dead connection. */
    if (st == NATS_OK) st = natsOptions_SetFailRequestsOnDisconnect(o, true);
    if (st == NATS_OK && s != NULL) st = natsOptions_SetDisconnectedCB(o, on_disconnected, s);
    if (st == NATS_OK && s != NULL) st = natsOptions_SetReconnectedCB(o, on_reconnected, s);
    if (st == NATS_OK && s != NULL) st = natsOptions_SetClosedCB(o, on_closed, s);
    if (st == NATS_OK && s != NULL) st = natsOptions_SetErrorHandler(o, on_error, s);
    if (st != NATS_OK) {
        char text[512];
        nats_error_text(st, text, sizeof text);
        snprintf(errbuf, errbuf_size, "setting up the connection: %s", text);
        rc = OUTBOX_SINK_RETRY; /* out of memory, most likely */
        goto fail;
    }

    /* Authentication (nats_config_parse let one way through). The secrets
     * are outboxd's (password, token: also given as KEY_file); libnats
     * keeps its own copy. Files libnats reads itself at each connect
     * (creds_file, nkey_seed_file) are checked for readability here, so
     * that a wrong path is refused by check. */
    if (c->creds_file != NULL) {
        if (access(c->creds_file, R_OK) != 0) {
            snprintf(errbuf, errbuf_size, "creds_file: cannot read %s: %s", c->creds_file, strerror(errno));
            goto fail;
        }
        if ((st = natsOptions_SetUserCredentialsFromFiles(o, c->creds_file, NULL)) != NATS_OK) {
            rc = option_error(st, "creds_file", "", errbuf, errbuf_size);
            goto fail;
        }
    }
    if (c->nkey != NULL) {
        if (access(c->nkey_seed_file, R_OK) != 0) {
            snprintf(errbuf, errbuf_size, "nkey_seed_file: cannot read %s: %s", c->nkey_seed_file,
                     strerror(errno));
            goto fail;
        }
        if ((st = natsOptions_SetNKeyFromSeed(o, c->nkey, c->nkey_seed_file)) != NATS_OK) {
            rc = option_error(st, "nkey", "", errbuf, errbuf_size);
            goto fail;
        }
    }
    if (c->user != NULL && (st = natsOptions_SetUserInfo(o, c->user, c->password)) != NATS_OK) {
        rc = option_error(st, "user", "", errbuf, errbuf_size);
        goto fail;
    }
    if (c->token != NULL && (st = natsOptions_SetToken(o, c->token)) != NATS_OK) {
        rc = option_error(st, "token", "", errbuf, errbuf_size);
        goto fail;
    }

    /* TLS: tls_ca or tls_cert turns it on (a tls:// URL does too). */
    if (c->tls) {
        const char *hostname = c->tls_hostname;
        if ((st = natsOptions_SetSecure(o, true)) != NATS_OK) {
            rc = option_error(st, c->tls_ca ? "tls_ca" : "tls_cert", "TLS", errbuf, errbuf_size);
            goto fail;
        }
        if (c->tls_ca != NULL && (st = natsOptions_LoadCATrustedCertificates(o, c->tls_ca)) != NATS_OK) {
            char what[600];
            snprintf(what, sizeof what, "cannot load %s", c->tls_ca);
            rc = option_error(st, "tls_ca", what, errbuf, errbuf_size);
            goto fail;
        }
        if (c->tls_cert != NULL &&
            (st = natsOptions_LoadCertificatesChain(o, c->tls_cert, c->tls_key)) != NATS_OK) {
            char what[1200];
            snprintf(what, sizeof what, "cannot load %s with tls_key %s", c->tls_cert, c->tls_key);
            rc = option_error(st, "tls_cert", what, errbuf, errbuf_size);
            goto fail;
        }
        /* libnats 3.4 checks the certificate's name only when given one. */
        url_host(c->servers[0], first_host, sizeof first_host);
        int ip = strchr(first_host, ':') != NULL || strspn(first_host, "0123456789.") == strlen(first_host);
        if (hostname == NULL && !ip) hostname = first_host;
        if (hostname != NULL && (st = natsOptions_SetExpectedHostname(o, hostname)) != NATS_OK) {
            rc = option_error(st, "tls_hostname", "", errbuf, errbuf_size);
            goto fail;
        }
    }
    *out = o;
    return OUTBOX_SINK_OK;
fail:
    natsOptions_Destroy(o);
    return rc;
}

/* Makes sure the stream named by option stream exists: created with
 * stream_subjects and duplicate_window_s when missing, left as it is (and
 * described in the log) when it exists. */
int nats_ensure_stream(nats_sink_t *s, char *errbuf, size_t errbuf_size) {
    const outbox_sink_host_t *host = s->host;
    long long window_s = s->cfg.duplicate_window_s;
    const char *const *subjects = s->cfg.stream_subjects;
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

    int n = 0;
    char list[1024] = "";
    for (size_t o = 0; subjects[n] != NULL; n++)
        if (o < sizeof list) o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", n ? ", " : "", subjects[n]);
    if (n == 0) {
        snprintf(errbuf, errbuf_size,
                 "nats sink: option stream_subjects: stream %s does not exist, and creating it needs "
                 "its subjects (a list)",
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
