/*
 * cmd_lease.c - outboxd's leases as outboxctl sees them (issue 14,
 * docs/leases.md sections 1.2 and 5): reading N.leases for status (each
 * sink's newest claim, the promoter's, the live outboxd runs) and
 * `outboxctl lease release SINK`, which asks the holder of a sink to hand
 * it over. The documents are built and parsed by outboxd's own
 * lease_doc.c, so that a release request's _id is byte for byte the key
 * outboxd looks for.
 */
#include "outboxctl.h"

#include "lease_doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Used when a document lacks its ttl_ms (outboxd always writes one). */
#define DEFAULT_TTL_MS 10000

static void leases_coll_name(const store_t *s, char *out, size_t size) {
    snprintf(out, size, "%s%s", s->name, OUTBOXD_LEASES_SUFFIX);
}

/* The server's clock: lease ages are the server's now minus the server's
 * $currentDate of the last renewal, so that neither outboxd's clock nor
 * this machine's enters them. Falls back to this machine's clock when the
 * server does not answer hello (MongoDB before 4.4.2): then an age is only
 * as good as the two clocks, which is enough for a person to read. */
static int64_t server_now_ms(store_t *s) {
    bson_t *cmd = BCON_NEW("hello", BCON_INT32(1));
    bson_t reply;
    bson_error_t berr;
    int64_t now = -1;
    if (mongoc_client_command_simple(s->client, "admin", cmd, NULL, &reply, &berr))
        now = doc_date(&reply, "localTime");
    bson_destroy(&reply);
    bson_destroy(cmd);
    return now >= 0 ? now : now_ms();
}

static int64_t doc_int(const bson_t *doc, const char *key) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
}

int leases_read(store_t *s, leases_t *out) {
    char name[320];
    bson_error_t berr;
    const bson_t *doc;
    memset(out, 0, sizeof *out);
    leases_coll_name(s, name, sizeof name);
    mongoc_collection_t *coll = mongoc_client_get_collection(s->client, s->db, name);
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    size_t cap = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        lease_entry_t e;
        memset(&e, 0, sizeof e);
        /* Anyone with write access can put anything there: what is not
         * one of outboxd's documents is passed over. */
        if (!outboxd_lease_doc_parse(doc, &e.doc))
            continue;
        e.renew_ms = doc_int(doc, "renew_ms");
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            out->entries = bson_realloc(out->entries, cap * sizeof *out->entries);
        }
        out->entries[out->n++] = e;
    }
    int status = 0;
    if (mongoc_cursor_error(cur, &berr)) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, name, berr.message);
        status = EXIT_FAILURE;
        leases_free(out);
    } else {
        out->now_ms = server_now_ms(s);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    return status;
}

void leases_free(leases_t *l) {
    bson_free(l->entries);
    l->entries = NULL;
    l->n = 0;
}

/* The newest claim of lease (highest term), and what status shows of it. */
void leases_find(const leases_t *l, const char *lease, lease_view_t *v) {
    const lease_entry_t *newest = NULL;
    memset(v, 0, sizeof *v);
    v->age_ms = -1;
    for (size_t i = 0; i < l->n; i++) {
        const lease_entry_t *e = &l->entries[i];
        if (e->doc.is_presence || e->doc.is_request || strcmp(e->doc.lease, lease) != 0)
            continue;
        if (!newest || e->doc.term > newest->doc.term)
            newest = e;
    }
    if (!newest) {
        v->state = NULL;
        return;
    }
    v->claimed = true;
    v->term = newest->doc.term;
    v->released = newest->doc.released;
    snprintf(v->owner, sizeof v->owner, "%s", newest->doc.owner);
    snprintf(v->run, sizeof v->run, "%s", newest->doc.run);
    v->ttl_ms = newest->doc.ttl_ms > 0 ? newest->doc.ttl_ms : DEFAULT_TTL_MS;
    v->renew_ms = newest->renew_ms;
    if (newest->doc.renewed_ms > 0) {
        v->age_ms = l->now_ms - newest->doc.renewed_ms;
        if (v->age_ms < 0)
            v->age_ms = 0; /* a secondary's clock a little behind the primary's */
    }
    /* "stale": unrenewed for longer than its TTL on the server's clock;
     * its holder is most likely gone, and a standby takes it over soon. */
    v->state = v->released ? "released" : v->age_ms > v->ttl_ms ? "stale" : "held";
}

void leases_sink(const leases_t *l, const char *sink, lease_view_t *v) {
    char lease[256];
    outboxd_lease_name_for_sink(lease, sizeof lease, sink);
    leases_find(l, lease, v);
}

void leases_promoter(const leases_t *l, lease_view_t *v) {
    leases_find(l, OUTBOXD_LEASE_PROMOTER, v);
}

/* The outboxd runs whose presence was renewed within its TTL (on the
 * server's clock), in the order of N.leases. */
size_t leases_instances(const leases_t *l, const lease_entry_t **out, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < l->n && n < max; i++) {
        const lease_entry_t *e = &l->entries[i];
        int64_t ttl = e->doc.ttl_ms > 0 ? e->doc.ttl_ms : DEFAULT_TTL_MS;
        if (e->doc.is_presence && e->doc.renewed_ms > 0 && l->now_ms - e->doc.renewed_ms <= ttl)
            out[n++] = e;
    }
    return n;
}

/* Copies s for a text column: database content may hold anything, and a
 * newline or an escape sequence must not garble the table. */
void lease_text(char *out, size_t size, const char *s) {
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    if (size)
        out[i] = '\0';
}

/* Whether sink has a checkpoint document: what tells an unknown sink name
 * from a sink that nobody holds. -1 on a server error (after a message). */
static int has_checkpoint(store_t *s, const char *sink) {
    bson_error_t berr;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    int64_t n = mongoc_collection_count_documents(s->checkpoints, filter, NULL, NULL, NULL, &berr);
    bson_destroy(filter);
    if (n < 0)
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->checkpoints_name, berr.message);
    return n < 0 ? -1 : n > 0;
}

/* lease release SINK: inserts the release request for the current term of
 * sink:SINK. The holder sees it at its next round, stops publishing, writes
 * its last checkpoint and releases the claim; another instance (or the same
 * one, after 2 * renew_ms) takes it. */
static int lease_release(store_t *s, const char *sink) {
    leases_t l;
    lease_view_t v;
    char lease[256], name[320], owner[80];
    int status = leases_read(s, &l);
    if (status)
        return status;
    outboxd_lease_name_for_sink(lease, sizeof lease, sink);
    leases_coll_name(s, name, sizeof name);
    leases_find(&l, lease, &v);
    leases_free(&l);
    lease_text(owner, sizeof owner, v.owner);
    if (!v.claimed || v.released) {
        int known = has_checkpoint(s, sink);
        if (known < 0)
            return EXIT_FAILURE;
        if (!known && !v.claimed) {
            fprintf(stderr, "outboxctl: unknown sink %s: no claim in %s.%s and no checkpoint in %s.%s\n", sink,
                    s->db, name, s->db, s->checkpoints_name);
            return EXIT_USAGE;
        }
        if (v.released)
            fprintf(stderr, "outboxctl: no instance holds sink %s (term %lld was released by %s); nothing to "
                            "release\n", sink, (long long)v.term, owner);
        else
            fprintf(stderr, "outboxctl: no instance holds sink %s (no claim in %s.%s: is ha.enabled off?); "
                            "nothing to release\n", sink, s->db, name);
        return EXIT_FAILURE;
    }

    char host[256] = "", by[300];
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    snprintf(by, sizeof by, "outboxctl on %s", host);
    bson_t doc;
    bson_error_t berr;
    outboxd_lease_request_id(&doc, lease, v.term);
    BSON_APPEND_UTF8(&doc, "by", by);
    BSON_APPEND_DATE_TIME(&doc, "at", now_ms());
    /* As outboxd's own lease writes: acknowledged by a majority, so that a
     * failover cannot roll the request back after it was reported. */
    mongoc_write_concern_t *wc = mongoc_write_concern_new();
    mongoc_write_concern_set_wmajority(wc, 0);
    bson_t opts = BSON_INITIALIZER;
    mongoc_write_concern_append(wc, &opts);
    mongoc_collection_t *coll = mongoc_client_get_collection(s->client, s->db, name);
    bool ok = mongoc_collection_insert_one(coll, &doc, &opts, NULL, &berr);
    bool again = !ok && berr.code == 11000; /* the same request, made before */
    char renew[64] = "renew_ms";
    if (v.renew_ms > 0)
        snprintf(renew, sizeof renew, "renew_ms (%lld ms)", (long long)v.renew_ms);
    if (!ok && !again) {
        fprintf(stderr, "outboxctl: cannot write the release request of sink %s into %s.%s: %s\n", sink, s->db,
                name, berr.message);
        status = EXIT_FAILURE;
    } else {
        printf("release of sink %s (term %lld, held by %s) %srequested; the holder hands it over within %s\n",
               sink, (long long)v.term, owner, again ? "was already " : "", renew);
        if (strcmp(v.state, "stale") == 0)
            printf("note: its last renewal was %.1f s ago, longer than its lease (%lld ms): if its outboxd is "
                   "gone, another takes the sink over without it\n", (double)v.age_ms / 1000.0,
                   (long long)v.ttl_ms);
    }
    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    mongoc_write_concern_destroy(wc);
    bson_destroy(&doc);
    return status;
}

int cmd_lease(const options_t *o, char **args, int n) {
    store_t s;
    if (n != 2 || strcmp(args[0], "release") != 0) {
        fprintf(stderr, "outboxctl: expected lease release SINK\n");
        return EXIT_USAGE;
    }
    if (!args[1][0]) {
        fprintf(stderr, "outboxctl: lease release: the sink name is empty\n");
        return EXIT_USAGE;
    }
    int status = store_open(o, &s);
    if (status)
        return status;
    status = lease_release(&s, args[1]);
    store_close(&s);
    return status;
}
