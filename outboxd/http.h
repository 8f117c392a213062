/*
 * http.h - outboxd's HTTP endpoint (the http: section, docs/config.md), off
 * unless http.listen is set. libmicrohttpd serves it on one thread of its
 * own, one request at a time (a scrape every few seconds needs no more):
 *
 *   GET /metrics  Prometheus text format 0.0.4 (metrics.c; docs/metrics.md)
 *   GET /healthz  200 while outboxd answers and no sink has been inside one
 *                 plugin call for stuck_ms (liveness); else 503 naming it
 *   GET /readyz   200 when MongoDB answers a ping and every sink is ready
 *                 (metrics.h: outboxd_metrics_sinks_ready); else 503 with a
 *                 JSON body saying what is not ready and why
 *
 * Any other path is 404, any other method 405. No request body is read.
 */
#ifndef OUTBOXD_HTTP_H
#define OUTBOXD_HTTP_H

#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct outboxd_http outboxd_http_t;

/* Starts serving on listen. mongodb_uri: where /readyz pings (its own
 * client, with short timeouts, so that a probe never waits for long);
 * metrics: borrowed, must outlive the server. NULL with errbuf when the
 * address cannot be resolved or bound (in use, no permission). */
outboxd_http_t *outboxd_http_start(const char *listen, const char *mongodb_uri, outboxd_metrics_t *metrics,
                                   int64_t ready_grace_ms, int64_t stuck_ms, char *errbuf, size_t errbuf_size);
/* Stops serving (waits for a request in progress) and frees the server. */
void outboxd_http_stop(outboxd_http_t *h);

#endif
