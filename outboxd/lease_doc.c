/*
 * lease_doc.c - see lease_doc.h. The _id builders are the only place that
 * spells a lease document's key: the server compares compound _ids field by
 * field in order, so outboxd's claim and outboxctl's release request for it
 * must be built by the same code.
 */
#include "lease_doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void outboxd_lease_claim_id(bson_t *out, const char *lease, int64_t term) {
    bson_t id;
    bson_init(out);
    BSON_APPEND_DOCUMENT_BEGIN(out, "_id", &id);
    BSON_APPEND_UTF8(&id, "lease", lease);
    BSON_APPEND_INT64(&id, "term", term);
    bson_append_document_end(out, &id);
}

void outboxd_lease_request_id(bson_t *out, const char *lease, int64_t term) {
    bson_t id;
    bson_init(out);
    BSON_APPEND_DOCUMENT_BEGIN(out, "_id", &id);
    BSON_APPEND_UTF8(&id, "lease", lease);
    BSON_APPEND_INT64(&id, "term", term);
    BSON_APPEND_UTF8(&id, "op", "release");
    bson_append_document_end(out, &id);
}

void outboxd_lease_presence_id(bson_t *out, const char *instance, const char *run) {
    bson_t id;
    bson_init(out);
    BSON_APPEND_DOCUMENT_BEGIN(out, "_id", &id);
    BSON_APPEND_UTF8(&id, "instance", instance);
    BSON_APPEND_UTF8(&id, "run", run);
    bson_append_document_end(out, &id);
}

void outboxd_lease_name_for_sink(char *out, size_t size, const char *sink) {
    if (size > 0)
        snprintf(out, size, "sink:%s", sink);
}

/* A string field into a fixed buffer; false when it is absent, not a
 * string, or does not fit (a name we would cut is not one of ours). */
static bool get_str(const bson_t *doc, const char *key, char *out, size_t size) {
    bson_iter_t it;
    uint32_t len;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it))
        return false;
    const char *s = bson_iter_utf8(&it, &len);
    if (len >= size || strlen(s) != len)
        return false;
    memcpy(out, s, (size_t)len + 1);
    return true;
}

/* An integer field (int32, int64 or a double holding one); 0 when absent. */
static bool get_int(const bson_t *doc, const char *key, int64_t *out) {
    bson_iter_t it;
    *out = 0;
    if (!bson_iter_init_find(&it, doc, key))
        return false;
    if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
        *out = bson_iter_as_int64(&it);
        return true;
    }
    if (BSON_ITER_HOLDS_DOUBLE(&it)) {
        *out = (int64_t)bson_iter_double(&it);
        return true;
    }
    return false;
}

bool outboxd_lease_doc_parse(const bson_t *doc, outboxd_lease_doc_t *out) {
    bson_iter_t it;
    memset(out, 0, sizeof *out);
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    bson_t id;
    if (!bson_init_static(&id, data, len))
        return false;

    if (get_str(&id, "instance", out->owner, sizeof out->owner)) {
        if (!get_str(&id, "run", out->run, sizeof out->run))
            return false;
        out->is_presence = true;
        get_int(doc, "sinks_held", &out->sinks_held);
    } else {
        if (!get_str(&id, "lease", out->lease, sizeof out->lease) || !out->lease[0])
            return false;
        /* An integer term only: a double is no key the builders make. */
        if (!bson_iter_init_find(&it, &id, "term") || !(BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it)))
            return false;
        out->term = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, &id, "op")) {
            if (!BSON_ITER_HOLDS_UTF8(&it) || strcmp(bson_iter_utf8(&it, NULL), "release") != 0)
                return false;
            out->is_request = true;
            return true;
        }
        get_str(doc, "owner", out->owner, sizeof out->owner);
        get_str(doc, "run", out->run, sizeof out->run);
        if (bson_iter_init_find(&it, doc, "released") && BSON_ITER_HOLDS_BOOL(&it))
            out->released = bson_iter_bool(&it);
    }
    get_int(doc, "renewals", &out->renewals);
    get_int(doc, "ttl_ms", &out->ttl_ms);
    if (bson_iter_init_find(&it, doc, "renewed") && BSON_ITER_HOLDS_DATE_TIME(&it))
        out->renewed_ms = bson_iter_date_time(&it);
    return true;
}

char *outboxd_lease_presence_sinks(const bson_t *doc) {
    bson_iter_t it, arr;
    if (!bson_iter_init_find(&it, doc, "sinks") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return NULL;
    size_t len = 1;
    bson_iter_t count = arr;
    while (bson_iter_next(&count))
        if (BSON_ITER_HOLDS_UTF8(&count))
            len += strlen(bson_iter_utf8(&count, NULL)) + 1;
    char *list = malloc(len + 1);
    if (!list)
        return NULL;
    size_t at = 0;
    list[at++] = '\n';
    while (bson_iter_next(&arr)) {
        if (!BSON_ITER_HOLDS_UTF8(&arr))
            continue;
        const char *name = bson_iter_utf8(&arr, NULL);
        size_t n = strlen(name);
        memcpy(list + at, name, n);
        at += n;
        list[at++] = '\n';
    }
    list[at] = '\0';
    return list;
}

bool outboxd_lease_list_has(const char *list, const char *lease) {
    if (!list)
        return true;
    size_t n = strlen(lease);
    for (const char *p = strstr(list, lease); p; p = strstr(p + 1, lease))
        if (p > list && p[-1] == '\n' && p[n] == '\n')
            return true;
    return false;
}
