/*
 * http.c - see http.h.
 */
#include "http.h"

#include "ejson.h"
#include "listen_addr.h"
#include "log.h"
#include "secrets.h"

#include <mongoc/mongoc.h>
#include <microhttpd.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* /readyz's ping gives up after this long: a probe must answer in time
 * (Kubernetes' default probe timeout is 1 s, systemd's watchdogs are
 * longer). */
#define PING_TIMEOUT_MS 1000

struct outboxd_http {
    struct MHD_Daemon *daemon;
    outboxd_metrics_t *metrics;
    int64_t ready_grace_ms, stuck_ms;
    pthread_mutex_t ping_lock; /* the client is single-threaded */
    atomic_bool started;       /* MHD_start_daemon returned */
    mongoc_client_t *client;
};

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type, char *text,
                               size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text) {
    char *copy = strdup(text);
    return copy ? respond(c, status, "text/plain; charset=utf-8", copy, strlen(copy)) : MHD_NO;
}

/* Whether MongoDB answers a ping; else why (scrubbed of secrets). */
static bool ping(outboxd_http_t *h, char *why, size_t why_size) {
    bson_t cmd = BSON_INITIALIZER;
    bson_error_t berr;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    pthread_mutex_lock(&h->ping_lock);
    bool ok = mongoc_client_command_simple(h->client, "admin", &cmd, NULL, NULL, &berr);
    pthread_mutex_unlock(&h->ping_lock);
    bson_destroy(&cmd);
    if (!ok) {
        snprintf(why, why_size, "%s", berr.message);
        outboxd_secrets_scrub(why, why_size);
    }
    return ok;
}

/* A probe's answer: 200 when ok, else 503; the JSON body is
 * {"status": ..., (mongodb: ..., when given,) LIST_NAME: list}, list being
 * the JSON array metrics.c built (freed here). */
static enum MHD_Result respond_probe(struct MHD_Connection *c, bool ok, const char *status, const char *mongodb,
                                     const char *list_name, outboxd_buf_t *list) {
    outboxd_buf_t body = {0};
    outboxd_buf_printf(&body, "{\"status\":\"%s\",", status);
    if (mongodb) {
        outboxd_json_text_t t = {0}; /* ejson.h: the one JSON string escaper */
        outboxd_json_string(&t, mongodb, strlen(mongodb));
        outboxd_buf_printf(&body, "\"mongodb\":%.*s,", (int)t.len, t.p);
        free(t.p);
    }
    outboxd_buf_printf(&body, "\"%s\":%s}\n", list_name, list->failed ? "[]" : list->text);
    free(list->text);
    if (body.failed) {
        free(body.text);
        return MHD_NO;
    }
    return respond(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body.text, body.len);
}

static enum MHD_Result readyz(outboxd_http_t *h, struct MHD_Connection *c) {
    char why[600] = "";
    bool db = ping(h, why, sizeof why);
    outboxd_buf_t sinks = {0};
    bool ready = outboxd_metrics_sinks_ready(h->metrics, h->ready_grace_ms, &sinks) && db;
    return respond_probe(c, ready, ready ? "ready" : "not ready", db ? "ok" : why, "sinks_not_ready", &sinks);
}

static enum MHD_Result healthz(outboxd_http_t *h, struct MHD_Connection *c) {
    outboxd_buf_t stuck = {0};
    bool live = outboxd_metrics_sinks_live(h->metrics, h->stuck_ms, &stuck);
    return respond_probe(c, live, live ? "live" : "stuck", NULL, "stuck", &stuck);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls) {
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    outboxd_http_t *h = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0) {
        outboxd_buf_t b = {0};
        outboxd_metrics_render(h->metrics, &b);
        if (b.failed) {
            free(b.text);
            return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        }
        return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.text, b.len);
    }
    if (strcmp(url, "/healthz") == 0)
        return healthz(h, c);
    if (strcmp(url, "/readyz") == 0)
        return readyz(h, c);
    return respond_text(c, MHD_HTTP_NOT_FOUND, "not found: the paths are /metrics, /healthz and /readyz\n");
}

/* libmicrohttpd's own messages, as outboxd's log lines; none while it
 * starts (outboxd_http_start says why a start failed, with the address,
 * where libmicrohttpd would say "port 0"). */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    outboxd_http_t *h = cls;
    if (!atomic_load(&h->started))
        return;
    char line[600];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    outboxd_log(OUTBOX_SINK_LOG_WARNING, "http: %s", line);
}

/* A client for the pings: the URI's own settings, with timeouts short
 * enough for a probe. */
static mongoc_client_t *ping_client(const char *mongodb_uri, char *errbuf, size_t errbuf_size) {
    bson_error_t berr;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(mongodb_uri, &berr);
    if (!uri) {
        snprintf(errbuf, errbuf_size, "http: the MongoDB URI: %s", berr.message);
        return NULL;
    }
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, PING_TIMEOUT_MS);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, PING_TIMEOUT_MS);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, PING_TIMEOUT_MS);
    mongoc_client_t *client = mongoc_client_new_from_uri_with_error(uri, &berr);
    mongoc_uri_destroy(uri);
    if (!client) {
        snprintf(errbuf, errbuf_size, "http: a MongoDB client: %s", berr.message);
        return NULL;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return client;
}

outboxd_http_t *outboxd_http_start(const char *listen, const char *mongodb_uri, outboxd_metrics_t *metrics,
                                   int64_t ready_grace_ms, int64_t stuck_ms, char *errbuf, size_t errbuf_size) {
    char buf[300], why[200];
    const char *host, *port;
    if (!outboxd_listen_split(listen, buf, sizeof buf, &host, &port, why, sizeof why)) {
        snprintf(errbuf, errbuf_size, "http.listen \"%s\": %s", listen ? listen : "", why);
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(errbuf, errbuf_size, "http.listen \"%s\": %s", listen, gai_strerror(rc));
        return NULL;
    }
    outboxd_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        snprintf(errbuf, errbuf_size, "http: out of memory");
        return NULL;
    }
    h->metrics = metrics;
    h->ready_grace_ms = ready_grace_ms;
    h->stuck_ms = stuck_ms;
    pthread_mutex_init(&h->ping_lock, NULL);
    if (!(h->client = ping_client(mongodb_uri, errbuf, errbuf_size))) {
        freeaddrinfo(ai);
        outboxd_http_stop(h);
        return NULL;
    }
    /* AUTO: epoll or poll, never select(), whose FD_SETSIZE an outboxd
     * holding many open files (a file sink keeps up to 64 per sink) would
     * pass with the connections it accepts. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_END);
    int err = errno;
    atomic_store(&h->started, true);
    freeaddrinfo(ai);
    if (!h->daemon) {
        snprintf(errbuf, errbuf_size, "http.listen \"%s\": cannot listen there%s%s", listen, err ? ": " : "",
                 err ? strerror(err) : "");
        outboxd_http_stop(h);
        return NULL;
    }
    return h;
}

void outboxd_http_stop(outboxd_http_t *h) {
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    if (h->client)
        mongoc_client_destroy(h->client);
    pthread_mutex_destroy(&h->ping_lock);
    free(h);
}
