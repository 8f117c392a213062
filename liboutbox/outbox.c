/*
 * outbox.c - the outbox handle: connection pool, server capabilities, and
 * ensure(), which creates the three collections and the validator.
 */
#include "internal.h"

#include <string.h>
#include <strings.h>

outbox_t *outbox_new(outbox_conf_t *conf, outbox_error_t *error) {
    bson_error_t berr;
    outbox__clear_error(error);
    if (!conf) {
        outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_new: conf is NULL");
        return NULL;
    }
    if (!conf->database || !conf->outbox) {
        outbox__fail(error, OUTBOX_ERR_CONF, "%s is not set",
                     !conf->database ? "database" : "outbox");
        return NULL;
    }
    if (!conf->pool && !conf->uri) {
        outbox__fail(error, OUTBOX_ERR_CONF, "neither uri nor a client pool is set");
        return NULL;
    }
    mongoc_init(); /* idempotent; the application still owns mongoc_cleanup() */
    outbox_t *ob = bson_malloc0(sizeof *ob);
    if (conf->pool) {
        ob->pool = conf->pool;
    } else {
        ob->owned_uri = mongoc_uri_new_with_error(conf->uri, &berr);
        if (!ob->owned_uri) {
            outbox__fail(error, OUTBOX_ERR_CONF, "uri: not a valid MongoDB connection string");
            bson_free(ob);
            return NULL;
        }
        if (!mongoc_uri_get_appname(ob->owned_uri))
            mongoc_uri_set_appname(ob->owned_uri, "liboutbox");
        ob->owned_pool = mongoc_client_pool_new_with_error(ob->owned_uri, &berr);
        if (!ob->owned_pool) {
            outbox__fail_bson(error, &berr, "cannot create a MongoDB client pool");
            mongoc_uri_destroy(ob->owned_uri);
            bson_free(ob);
            return NULL;
        }
        /* Error API 2 puts every server error in MONGOC_ERROR_SERVER with
         * the server's own code (136, 11000, ...). */
        mongoc_client_pool_set_error_api(ob->owned_pool, MONGOC_ERROR_API_VERSION_2);
        ob->pool = ob->owned_pool;
    }
    ob->pending_name = bson_strdup_printf("%s.pending", conf->outbox);
    ob->checkpoints_name = bson_strdup_printf("%s.checkpoints", conf->outbox);
    ob->quarantine_name = bson_strdup_printf("%s" OUTBOX_QUARANTINE_SUFFIX, conf->outbox);
    ob->schemas_name = bson_strdup_printf("%s.schemas", conf->outbox);
    pthread_mutex_init(&ob->caps_lock, NULL);
    ob->conf = conf;
    return ob;
}

void outbox_destroy(outbox_t *ob) {
    if (!ob)
        return;
    if (ob->owned_pool)
        mongoc_client_pool_destroy(ob->owned_pool);
    if (ob->owned_uri)
        mongoc_uri_destroy(ob->owned_uri);
    pthread_mutex_destroy(&ob->caps_lock);
    bson_free(ob->pending_name);
    bson_free(ob->checkpoints_name);
    bson_free(ob->quarantine_name);
    bson_free(ob->schemas_name);
    outbox_conf_destroy(ob->conf);
    bson_free(ob);
}

const char *outbox_database(const outbox_t *ob) {
    return ob->conf->database;
}

const char *outbox_name(const outbox_t *ob) {
    return ob->conf->outbox;
}

mongoc_client_t *outbox__client_pop(outbox_t *ob) {
    return mongoc_client_pool_pop(ob->pool);
}

void outbox__client_push(outbox_t *ob, mongoc_client_t *client) {
    if (client)
        mongoc_client_pool_push(ob->pool, client);
}

/* Capabilities come from what the server says of itself: transactions need
 * a replica set (setName) or mongos (msg "isdbgrid") at wire version >= 8
 * (MongoDB 4.2); $jsonSchema validators need MongoDB >= 3.6 (wire 6).
 * FerretDB speaks a recent wire version but has neither, and says so in
 * buildInfo ("ferretdb" fields), so it is recognised by name. */
outbox_code_t outbox_server_caps(outbox_t *ob, unsigned *caps, outbox_error_t *error) {
    bson_error_t berr;
    bson_t hello = BSON_INITIALIZER, build = BSON_INITIALIZER;
    bson_t reply, cmd = BSON_INITIALIZER;
    outbox_code_t rc = OUTBOX_OK;

    pthread_mutex_lock(&ob->caps_lock);
    if (ob->caps_known) {
        *caps = ob->caps;
        pthread_mutex_unlock(&ob->caps_lock);
        return OUTBOX_OK;
    }
    mongoc_client_t *client = outbox__client_pop(ob);
    BSON_APPEND_INT32(&cmd, "hello", 1);
    if (!mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply, &berr)) {
        bson_destroy(&reply);
        bson_reinit(&cmd);
        BSON_APPEND_INT32(&cmd, "isMaster", 1);
        if (!mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply, &berr)) {
            rc = outbox__fail_bson(error, &berr, "cannot ask the server what it supports");
            goto done;
        }
    }
    bson_copy_to(&reply, &hello);
    bson_destroy(&reply);
    bson_reinit(&cmd);
    BSON_APPEND_INT32(&cmd, "buildInfo", 1);
    if (mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply, &berr))
        bson_copy_to(&reply, &build);
    bson_destroy(&reply);

    bson_iter_t it;
    int32_t wire = 0;
    bool replset = bson_iter_init_find(&it, &hello, "setName");
    bool mongos = bson_iter_init_find(&it, &hello, "msg") && BSON_ITER_HOLDS_UTF8(&it) &&
                  strcmp(bson_iter_utf8(&it, NULL), "isdbgrid") == 0;
    if (bson_iter_init_find(&it, &hello, "maxWireVersion"))
        wire = bson_iter_as_int64(&it) > INT32_MAX ? INT32_MAX : (int32_t)bson_iter_as_int64(&it);
    bool ferretdb = false;
    if (bson_iter_init(&it, &build)) {
        while (bson_iter_next(&it))
            if (strncasecmp(bson_iter_key(&it), "ferretdb", 8) == 0)
                ferretdb = true;
    }
    ob->caps = 0;
    if (!ferretdb && (replset || mongos) && wire >= 8)
        ob->caps |= OUTBOX_CAP_TRANSACTIONS;
    if (!ferretdb && wire >= 6)
        ob->caps |= OUTBOX_CAP_VALIDATORS;
    ob->caps_known = true;
    *caps = ob->caps;
done:
    outbox__client_push(ob, client);
    pthread_mutex_unlock(&ob->caps_lock);
    bson_destroy(&cmd);
    bson_destroy(&hello);
    bson_destroy(&build);
    return rc;
}

/* The validator for N: the envelope, and each type's data schema under an
 * anyOf keyed by type (the types are disjoint, so anyOf means oneOf here
 * and is cheaper for the server). types is { TYPE: schema, ... }: every
 * type N.schemas keeps, every service's, so that one service's ensure never
 * drops another's types from the log. With types NULL, the envelope alone:
 * N.pending's, so that no ensure can make another service's business
 * transaction fail; a pending event of a type N refuses is quarantined by
 * the promoter instead (docs/transactions.md). */
static void build_validator(const bson_t *types, bson_t *out) {
    const size_t n_types = types ? bson_count_keys(types) : 0;
    bson_t js, props, p, req, any, alt, altp, tp, arr;

    BSON_APPEND_DOCUMENT_BEGIN(out, "$jsonSchema", &js);
    BSON_APPEND_UTF8(&js, "bsonType", "object");
    BSON_APPEND_ARRAY_BEGIN(&js, "required", &req);
    const char *required[] = {"_id", "type", "data", "created", "v"};
    for (int i = 0; i < 5; i++) {
        char idx[16];
        const char *key;
        bson_uint32_to_string((uint32_t)i, &key, idx, sizeof idx);
        BSON_APPEND_UTF8(&req, key, required[i]);
    }
    bson_append_array_end(&js, &req);

    BSON_APPEND_DOCUMENT_BEGIN(&js, "properties", &props);
    BSON_APPEND_DOCUMENT_BEGIN(&props, "_id", &p);
    BSON_APPEND_UTF8(&p, "bsonType", "objectId");
    bson_append_document_end(&props, &p);
    BSON_APPEND_DOCUMENT_BEGIN(&props, "type", &p);
    BSON_APPEND_UTF8(&p, "bsonType", "string");
    if (n_types) {
        bson_iter_t t;
        uint32_t i = 0;
        BSON_APPEND_ARRAY_BEGIN(&p, "enum", &arr);
        for (bson_iter_init(&t, types); bson_iter_next(&t); i++) {
            char idx[16];
            const char *key;
            bson_uint32_to_string(i, &key, idx, sizeof idx);
            BSON_APPEND_UTF8(&arr, key, bson_iter_key(&t));
        }
        bson_append_array_end(&p, &arr);
    }
    bson_append_document_end(&props, &p);
    BSON_APPEND_DOCUMENT_BEGIN(&props, "key", &p);
    BSON_APPEND_ARRAY_BEGIN(&p, "bsonType", &arr);
    BSON_APPEND_UTF8(&arr, "0", "string");
    BSON_APPEND_UTF8(&arr, "1", "null");
    bson_append_array_end(&p, &arr);
    bson_append_document_end(&props, &p);
    BSON_APPEND_DOCUMENT_BEGIN(&props, "data", &p);
    BSON_APPEND_UTF8(&p, "bsonType", "object");
    bson_append_document_end(&props, &p);
    BSON_APPEND_DOCUMENT_BEGIN(&props, "created", &p);
    BSON_APPEND_UTF8(&p, "bsonType", "date");
    bson_append_document_end(&props, &p);
    BSON_APPEND_DOCUMENT_BEGIN(&props, "headers", &p);
    BSON_APPEND_UTF8(&p, "bsonType", "object");
    BSON_APPEND_DOCUMENT_BEGIN(&p, "additionalProperties", &tp);
    BSON_APPEND_UTF8(&tp, "bsonType", "string");
    bson_append_document_end(&p, &tp);
    bson_append_document_end(&props, &p);
    BSON_APPEND_DOCUMENT_BEGIN(&props, "v", &p);
    BSON_APPEND_ARRAY_BEGIN(&p, "bsonType", &arr);
    BSON_APPEND_UTF8(&arr, "0", "int");
    BSON_APPEND_UTF8(&arr, "1", "long");
    bson_append_array_end(&p, &arr);
    bson_append_document_end(&props, &p);
    bson_append_document_end(&js, &props);

    if (n_types) {
        bson_iter_t t;
        uint32_t i = 0;
        BSON_APPEND_ARRAY_BEGIN(&js, "anyOf", &any);
        for (bson_iter_init(&t, types); bson_iter_next(&t); i++) {
            char idx[16];
            const char *key;
            uint32_t len;
            const uint8_t *data;
            bson_t schema;
            bson_iter_document(&t, &len, &data);
            bson_init_static(&schema, data, len);
            bson_uint32_to_string(i, &key, idx, sizeof idx);
            BSON_APPEND_DOCUMENT_BEGIN(&any, key, &alt);
            BSON_APPEND_DOCUMENT_BEGIN(&alt, "properties", &altp);
            BSON_APPEND_DOCUMENT_BEGIN(&altp, "type", &tp);
            BSON_APPEND_ARRAY_BEGIN(&tp, "enum", &arr);
            BSON_APPEND_UTF8(&arr, "0", bson_iter_key(&t));
            bson_append_array_end(&tp, &arr);
            bson_append_document_end(&altp, &tp);
            BSON_APPEND_DOCUMENT(&altp, "data", &schema);
            bson_append_document_end(&alt, &altp);
            bson_append_document_end(&any, &alt);
        }
        bson_append_array_end(&js, &any);
    }
    bson_append_document_end(out, &js);
}

typedef struct {
    bool exists;
    bool capped;
    int64_t size;
    int64_t max;
} coll_info_t;

static outbox_code_t list_collection(mongoc_database_t *db, const char *name, coll_info_t *info,
                                     outbox_error_t *error) {
    bson_error_t berr;
    bson_t opts = BSON_INITIALIZER, filter;
    const bson_t *doc;
    memset(info, 0, sizeof *info);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "filter", &filter);
    BSON_APPEND_UTF8(&filter, "name", name);
    bson_append_document_end(&opts, &filter);
    mongoc_cursor_t *cur = mongoc_database_find_collections_with_opts(db, &opts);
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        info->exists = true;
        if (bson_iter_init_find(&it, doc, "options") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_t o;
            bson_iter_recurse(&it, &o);
            while (bson_iter_next(&o)) {
                const char *k = bson_iter_key(&o);
                if (strcmp(k, "capped") == 0)
                    info->capped = bson_iter_as_bool(&o);
                else if (strcmp(k, "size") == 0)
                    info->size = bson_iter_as_int64(&o);
                else if (strcmp(k, "max") == 0)
                    info->max = bson_iter_as_int64(&o);
            }
        }
    }
    outbox_code_t rc = OUTBOX_OK;
    if (mongoc_cursor_error(cur, &berr))
        rc = outbox__fail_bson(error, &berr, "cannot list collection %s.%s",
                               mongoc_database_get_name(db), name);
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    return rc;
}

/* MongoDB rounds a capped size up to a multiple of 256 bytes. */
static bool capped_size_matches(int64_t have, int64_t want) {
    return have == want || have == (want + 255) / 256 * 256;
}

static outbox_code_t check_capped(const outbox_t *ob, const coll_info_t *info,
                                  outbox_error_t *error) {
    const outbox_conf_t *conf = ob->conf;
    if (!info->capped)
        return outbox__fail(error, OUTBOX_ERR_NOT_CAPPED,
                            "%s.%s exists but is not a capped collection; an outbox must be "
                            "capped (drop or rename it, or choose another outbox name)",
                            conf->database, conf->outbox);
    if (conf->capped_size && !capped_size_matches(info->size, conf->capped_size))
        return outbox__fail(error, OUTBOX_ERR_CAPPED_MISMATCH,
                            "%s.%s is capped at %" PRId64 " bytes, but capped.size asks for %" PRId64
                            " (resizing a capped log is not automatic: leave capped.size unset to "
                            "accept the existing size)",
                            conf->database, conf->outbox, info->size, conf->capped_size);
    if (conf->capped_max && info->max != conf->capped_max)
        return outbox__fail(error, OUTBOX_ERR_CAPPED_MISMATCH,
                            "%s.%s is capped at %" PRId64 " documents, but capped.max asks for %" PRId64,
                            conf->database, conf->outbox, info->max, conf->capped_max);
    return OUTBOX_OK;
}

/* Creates name with opts unless it exists; a concurrent ensure that created
 * it first (NamespaceExists) is success. *created tells which happened. */
static outbox_code_t create_collection(mongoc_database_t *db, const char *name, const bson_t *opts,
                                       bool *created, outbox_error_t *error) {
    bson_error_t berr;
    mongoc_collection_t *coll = mongoc_database_create_collection(db, name, opts, &berr);
    *created = coll != NULL;
    if (coll) {
        mongoc_collection_destroy(coll);
        return OUTBOX_OK;
    }
    if (berr.code == OUTBOX_MONGO_NAMESPACE_EXISTS || strstr(berr.message, "already exists"))
        return OUTBOX_OK;
    return outbox__fail_bson(error, &berr, "cannot create collection %s.%s",
                             mongoc_database_get_name(db), name);
}

static outbox_code_t install_validator(mongoc_database_t *db, const char *name,
                                       const bson_t *validator, outbox_error_t *error) {
    bson_error_t berr;
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&cmd, "collMod", name);
    BSON_APPEND_DOCUMENT(&cmd, "validator", validator);
    BSON_APPEND_UTF8(&cmd, "validationLevel", "strict");
    BSON_APPEND_UTF8(&cmd, "validationAction", "error");
    bool ok = mongoc_database_command_simple(db, &cmd, NULL, NULL, &berr);
    bson_destroy(&cmd);
    if (!ok)
        return outbox__fail_bson(error, &berr, "cannot install the schema validator on %s.%s",
                                 mongoc_database_get_name(db), name);
    return OUTBOX_OK;
}

outbox_code_t outbox__verify_with(outbox_t *ob, mongoc_client_t *client, outbox_error_t *error) {
    coll_info_t info;
    outbox_code_t rc;
    const char *db_name = ob->conf->database;
    mongoc_database_t *db = mongoc_client_get_database(client, db_name);
    if ((rc = list_collection(db, ob->conf->outbox, &info, error)) != OUTBOX_OK)
        goto done;
    if (!info.exists) {
        rc = outbox__fail(error, OUTBOX_ERR_NOT_ENSURED,
                          "%s.%s does not exist: create the outbox first with outboxctl init (or "
                          "outbox_ensure); a write into it now would create an ordinary collection, "
                          "not a capped log", db_name, ob->conf->outbox);
        goto done;
    }
    if (!info.capped) {
        rc = outbox__fail(error, OUTBOX_ERR_NOT_CAPPED,
                          "%s.%s exists but is not a capped collection; an outbox must be capped "
                          "(drop or rename it and run outboxctl init)", db_name, ob->conf->outbox);
        goto done;
    }
    if ((rc = list_collection(db, ob->pending_name, &info, error)) != OUTBOX_OK)
        goto done;
    if (!info.exists)
        rc = outbox__fail(error, OUTBOX_ERR_NOT_ENSURED,
                          "%s.%s does not exist: run outboxctl init (or outbox_ensure) for outbox %s "
                          "before transactional puts (MongoDB creates no collection inside a "
                          "transaction before 4.4, and without its validator after)",
                          db_name, ob->pending_name, ob->conf->outbox);
    else if (info.capped)
        rc = outbox__fail(error, OUTBOX_ERR_CONF,
                          "%s.%s is capped; it must be an ordinary collection, because MongoDB "
                          "refuses writes to capped collections inside transactions",
                          db_name, ob->pending_name);
done:
    mongoc_database_destroy(db);
    return rc;
}

outbox_code_t outbox_verify(outbox_t *ob, outbox_error_t *error) {
    outbox__clear_error(error);
    if (!ob)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_verify: outbox is NULL");
    mongoc_client_t *client = outbox__client_pop(ob);
    outbox_code_t rc = outbox__verify_with(ob, client, error);
    outbox__client_push(ob, client);
    return rc;
}

outbox_code_t outbox_ensure(outbox_t *ob, outbox_error_t *error) {
    unsigned caps;
    outbox_code_t rc;
    coll_info_t info;
    bool created;
    bson_t validator = BSON_INITIALIZER, envelope = BSON_INITIALIZER, types = BSON_INITIALIZER;

    outbox__clear_error(error);
    if (!ob)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_ensure: outbox is NULL");
    if ((rc = outbox_server_caps(ob, &caps, error)) != OUTBOX_OK)
        return rc;
    bool validators = (caps & OUTBOX_CAP_VALIDATORS) != 0;

    mongoc_client_t *client = outbox__client_pop(ob);
    mongoc_database_t *db = mongoc_client_get_database(client, ob->conf->database);

    /* N.schemas first: a declaration that differs from the stored one
     * stops ensure before it changes anything (a replica of the previous
     * deploy must not put its schema back on the log's validator). The
     * validator then has every stored type, every service's. */
    if ((rc = outbox__schemas_store(ob, client, error)) != OUTBOX_OK)
        goto done;
    if (validators) {
        if ((rc = outbox__schemas_read(ob, client, &types, error)) != OUTBOX_OK)
            goto done;
        build_validator(&types, &validator);
        build_validator(NULL, &envelope);
    }

    /* N: the capped log. */
    if ((rc = list_collection(db, ob->conf->outbox, &info, error)) != OUTBOX_OK)
        goto done;
    if (!info.exists) {
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "capped", true);
        BSON_APPEND_INT64(&opts, "size",
                          ob->conf->capped_size ? ob->conf->capped_size : OUTBOX_DEFAULT_CAPPED_SIZE);
        if (ob->conf->capped_max)
            BSON_APPEND_INT64(&opts, "max", ob->conf->capped_max);
        rc = create_collection(db, ob->conf->outbox, &opts, &created, error);
        bson_destroy(&opts);
        if (rc != OUTBOX_OK)
            goto done;
        if (!created && (rc = list_collection(db, ob->conf->outbox, &info, error)) != OUTBOX_OK)
            goto done;
    }
    if (info.exists && (rc = check_capped(ob, &info, error)) != OUTBOX_OK)
        goto done;
    if (validators && (rc = install_validator(db, ob->conf->outbox, &validator, error)) != OUTBOX_OK)
        goto done;

    /* N.pending: an ordinary collection, written inside transactions. */
    if ((rc = list_collection(db, ob->pending_name, &info, error)) != OUTBOX_OK)
        goto done;
    if (info.exists && info.capped) {
        rc = outbox__fail(error, OUTBOX_ERR_CONF,
                          "%s.%s is capped; it must be an ordinary collection, because MongoDB "
                          "refuses writes to capped collections inside transactions",
                          ob->conf->database, ob->pending_name);
        goto done;
    }
    if (!info.exists && (rc = create_collection(db, ob->pending_name, NULL, &created, error)) != OUTBOX_OK)
        goto done;
    if (validators && (rc = install_validator(db, ob->pending_name, &envelope, error)) != OUTBOX_OK)
        goto done;

    /* N.checkpoints: one document per reader. */
    if ((rc = list_collection(db, ob->checkpoints_name, &info, error)) != OUTBOX_OK)
        goto done;
    if (!info.exists)
        rc = create_collection(db, ob->checkpoints_name, NULL, &created, error);

done:
    mongoc_database_destroy(db);
    outbox__client_push(ob, client);
    bson_destroy(&validator);
    bson_destroy(&envelope);
    bson_destroy(&types);
    return rc;
}
