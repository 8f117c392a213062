/*
 * schema_store.c - the declared types kept in the outbox itself, N.schemas:
 * { _id: TYPE, schema: the schema as a document, version: 1, 2, ...,
 *   updated: date }. So a producer in any language (and outboxctl put
 * without --schemas) finds the types and their schemas where the events
 * go, and two producers cannot disagree silently.
 *
 * Two declarations of one type that differ are refused, not merged and
 * not "newest wins": nothing in a declaration says which is newer, and a
 * replica of the previous deploy still running its ensure would roll the
 * schema back. A schema changes only deliberately (outbox_schema_set,
 * outboxctl schema set), which grows its version.
 */
#include "internal.h"

#include <stdio.h>

static mongoc_collection_t *schemas_collection(outbox_t *ob, mongoc_client_t *client) {
    return mongoc_client_get_collection(client, ob->conf->database, ob->schemas_name);
}

static int64_t wall_ms(void) {
    struct timeval tv;
    bson_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The stored document of type into *stored (initialized on true). */
static bool find_type(mongoc_collection_t *coll, const char *type, bson_t *stored, bool *found, bson_error_t *berr) {
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(type));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    *found = mongoc_cursor_next(cur, &doc);
    if (*found)
        bson_copy_to(doc, stored);
    bool ok = !mongoc_cursor_error(cur, berr);
    if (!ok && *found)
        bson_destroy(stored);
    if (!ok)
        *found = false;
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    return ok;
}

static bool stored_schema(const bson_t *stored, bson_t *schema, int64_t *version) {
    bson_iter_t it;
    *version = bson_iter_init_find(&it, stored, "version") && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
    if (!bson_iter_init_find(&it, stored, "schema") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    return bson_init_static(schema, data, len);
}

outbox_code_t outbox__schemas_store(outbox_t *ob, mongoc_client_t *client, outbox_error_t *error) {
    mongoc_collection_t *coll = schemas_collection(ob, client);
    outbox_code_t rc = OUTBOX_OK;
    for (size_t i = 0; rc == OUTBOX_OK && i < ob->conf->n_types; i++) {
        const outbox_type_t *t = &ob->conf->types[i];
        const bson_t *declared = outbox__schema_document(t->schema);
        bson_error_t berr;
        /* Insert if absent; a concurrent ensure that inserted first is the
         * stored one, compared below like any other. */
        bson_t *sel = BCON_NEW("_id", BCON_UTF8(t->name));
        bson_t *upd = BCON_NEW("$setOnInsert", "{", "schema", BCON_DOCUMENT(declared), "version", BCON_INT64(1),
                               "updated", BCON_DATE_TIME(wall_ms()), "}");
        bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
        bool ok = mongoc_collection_update_one(coll, sel, upd, opts, NULL, &berr);
        if (!ok && berr.code != OUTBOX_MONGO_DUPLICATE_KEY)
            rc = outbox__fail_bson(error, &berr, "cannot store the schema of type \"%s\" in %s.%s", t->name,
                                   ob->conf->database, ob->schemas_name);
        bson_destroy(sel);
        bson_destroy(upd);
        bson_destroy(opts);
        if (rc != OUTBOX_OK)
            break;
        bson_t stored, schema;
        bool found;
        int64_t version;
        if (!find_type(coll, t->name, &stored, &found, &berr)) {
            rc = outbox__fail_bson(error, &berr, "cannot read %s.%s", ob->conf->database, ob->schemas_name);
            break;
        }
        if (!found)
            continue; /* deleted meanwhile by hand: the next ensure stores it */
        if (!stored_schema(&stored, &schema, &version) || !bson_equal(&schema, declared))
            rc = outbox__fail(error, OUTBOX_ERR_SCHEMA,
                              "type \"%s\": %s.%s holds version %" PRId64 " of another schema for it; declare "
                              "that one (outboxctl schema show %s), or replace it deliberately: outboxctl "
                              "schema set %s FILE",
                              t->name, ob->conf->database, ob->schemas_name, version, t->name, t->name);
        bson_destroy(&stored);
    }
    mongoc_collection_destroy(coll);
    return rc;
}

outbox_code_t outbox__schemas_read(outbox_t *ob, mongoc_client_t *client, bson_t *types, outbox_error_t *error) {
    mongoc_collection_t *coll = schemas_collection(ob, client);
    bson_t all = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &all, opts, NULL);
    const bson_t *doc;
    outbox_code_t rc = OUTBOX_OK;
    while (rc == OUTBOX_OK && mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        bson_t schema;
        int64_t version;
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it) || !stored_schema(doc, &schema, &version))
            rc = outbox__fail(error, OUTBOX_ERR_SCHEMA, "%s.%s: a document is not {_id: TYPE, schema: {...}}",
                              ob->conf->database, ob->schemas_name);
        else
            BSON_APPEND_DOCUMENT(types, bson_iter_utf8(&it, NULL), &schema);
    }
    bson_error_t berr;
    if (rc == OUTBOX_OK && mongoc_cursor_error(cur, &berr))
        rc = outbox__fail_bson(error, &berr, "cannot read %s.%s", ob->conf->database, ob->schemas_name);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&all);
    mongoc_collection_destroy(coll);
    return rc;
}

outbox_code_t outbox_load_types(outbox_t *ob, size_t *loaded, outbox_error_t *error) {
    outbox__clear_error(error);
    if (loaded)
        *loaded = 0;
    if (!ob)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_load_types: outbox is NULL");
    mongoc_client_t *client = outbox__client_pop(ob);
    bson_t types = BSON_INITIALIZER;
    outbox_code_t rc = outbox__schemas_read(ob, client, &types, error);
    outbox__client_push(ob, client);
    bson_iter_t it;
    for (bson_iter_init(&it, &types); rc == OUTBOX_OK && bson_iter_next(&it);) {
        const char *type = bson_iter_key(&it);
        if (outbox__conf_find_type(ob->conf, type))
            continue; /* the conf's own declaration stands (ensure compares them) */
        uint32_t len;
        const uint8_t *data;
        bson_t schema;
        bson_iter_document(&it, &len, &data);
        bson_init_static(&schema, data, len);
        /* Canonical: every number keeps its BSON type, so the compiled
         * schema is the stored document exactly (ensure compares them). */
        char *json = bson_as_canonical_extended_json(&schema, NULL);
        outbox_error_t sub;
        if (outbox_conf_add_type(ob->conf, type, json, &sub) != OUTBOX_OK)
            rc = outbox__fail(error, sub.code, "%s.%s, type %s: %s", ob->conf->database, ob->schemas_name, type,
                              sub.message);
        else if (loaded)
            (*loaded)++;
        bson_free(json);
    }
    bson_destroy(&types);
    return rc;
}

outbox_code_t outbox_schema_set(outbox_t *ob, const char *type, const char *schema_json, int64_t *version,
                                outbox_error_t *error) {
    outbox__clear_error(error);
    if (version)
        *version = 0;
    if (!ob || !type || !schema_json)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_schema_set: outbox, type and schema are required");
    /* Checked as a declaration is: a schema outside the subset is refused
     * before it reaches a producer. */
    outbox_conf_t *probe = outbox_conf_new();
    outbox_code_t rc = outbox_conf_add_type(probe, type, schema_json, error);
    if (rc != OUTBOX_OK) {
        outbox_conf_destroy(probe);
        return rc;
    }
    const bson_t *schema = outbox__schema_document(probe->types[0].schema);
    mongoc_client_t *client = outbox__client_pop(ob);
    mongoc_collection_t *coll = schemas_collection(ob, client);
    bson_error_t berr;
    bson_t stored, old;
    bool found;
    int64_t have = 0;
    if (!find_type(coll, type, &stored, &found, &berr)) {
        rc = outbox__fail_bson(error, &berr, "cannot read %s.%s", ob->conf->database, ob->schemas_name);
        goto done;
    }
    bool same = found && stored_schema(&stored, &old, &have) && bson_equal(&old, schema);
    if (found)
        bson_destroy(&stored);
    if (same) {
        if (version)
            *version = have;
        goto done; /* unchanged: the version stays */
    }
    /* The version grows from the one read; a concurrent set of the same
     * type makes this update match nothing (or, for a new type, the insert
     * meet a duplicate key), and it is said. A stored document without a
     * version (written by hand) is matched as such. */
    bson_t *sel = !found       ? NULL
                  : have > 0  ? BCON_NEW("_id", BCON_UTF8(type), "version", BCON_INT64(have))
                              : BCON_NEW("_id", BCON_UTF8(type), "version", "{", "$exists", BCON_BOOL(false), "}");
    bson_t *upd = BCON_NEW("$set", "{", "schema", BCON_DOCUMENT(schema), "version", BCON_INT64(have + 1), "updated",
                           BCON_DATE_TIME(wall_ms()), "}");
    bson_t *opts = bson_new();
    bson_t reply;
    bool written;
    if (found) {
        written = mongoc_collection_update_one(coll, sel, upd, opts, &reply, &berr);
    } else {
        bson_t *doc = BCON_NEW("_id", BCON_UTF8(type), "schema", BCON_DOCUMENT(schema), "version", BCON_INT64(1),
                               "updated", BCON_DATE_TIME(wall_ms()));
        written = mongoc_collection_insert_one(coll, doc, NULL, &reply, &berr);
        bson_destroy(doc);
        if (written) { /* insert_one's reply has no matchedCount: say it was one */
            bson_destroy(&reply);
            bson_init(&reply);
            BSON_APPEND_INT64(&reply, "upsertedCount", 1);
        }
    }
    if (!written) {
        rc = berr.code == OUTBOX_MONGO_DUPLICATE_KEY
                 ? outbox__fail(error, OUTBOX_ERR_SCHEMA, "type \"%s\" was set by someone else meanwhile: try again",
                                type)
                 : outbox__fail_bson(error, &berr, "cannot store the schema of type \"%s\" in %s.%s", type,
                                     ob->conf->database, ob->schemas_name);
    } else {
        bson_iter_t it;
        int64_t matched = bson_iter_init_find(&it, &reply, "matchedCount") ? bson_iter_as_int64(&it) : 0;
        int64_t upserted = bson_iter_init_find(&it, &reply, "upsertedCount") ? bson_iter_as_int64(&it) : 0;
        if (matched + upserted == 0)
            rc = outbox__fail(error, OUTBOX_ERR_SCHEMA, "type \"%s\" was set by someone else meanwhile: try again",
                              type);
        else if (version)
            *version = have + 1;
    }
    bson_destroy(&reply);
    if (sel)
        bson_destroy(sel);
    bson_destroy(upd);
    bson_destroy(opts);
done:
    mongoc_collection_destroy(coll);
    outbox__client_push(ob, client);
    outbox_conf_destroy(probe);
    return rc;
}
