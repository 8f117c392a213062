/*
 * connection.c - the NATS connection: libnats's options built from the
 * sink's (servers, reconnects, authentication, TLS), the connection
 * callbacks libnats makes from its own thread, libnats's error texts with
 * any credentials masked, the stream the sink may create at open, and the
 * orderly close that waits for libnats's last callback.
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

/* The libnats options from ours. Returns OK, or FATAL with errbuf naming
 * the option. Secrets are read here and wiped as soon as libnats has its
 * copy. */
int nats_configure(nats_sink_t *s, const outbox_sink_host_t *host, char *errbuf,
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
     * of being sent later ahead of older events (see nats.h). */
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
int nats_ensure_stream(nats_sink_t *s, const outbox_sink_host_t *host, long long window_s,
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
