/*
 * cmd_schema.c - outboxctl schema list | show TYPE | set TYPE FILE: the
 * declared types the outbox keeps in N.schemas (liboutbox's
 * schema_store.c; docs/schemas.md), where producers in any language find
 * them. set is the one deliberate way to change a type's schema: it grows
 * the version, and runs ensure so that the log's validator follows.
 */
#include "outboxctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mongoc_collection_t *schemas_of(store_t *s, char *name, size_t size) {
    snprintf(name, size, "%s.schemas", s->name);
    return mongoc_client_get_collection(s->client, s->db, name);
}

static int64_t doc_int(const bson_t *doc, const char *key) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
}

/* list: TYPE VERSION UPDATED, one line per type, sorted by type. */
static int schema_list(const options_t *o) {
    store_t s;
    int status = store_open(o, &s);
    if (status)
        return status;
    char name[320];
    mongoc_collection_t *coll = schemas_of(&s, name, sizeof name);
    bson_t all = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "projection", "{", "schema", BCON_INT32(0), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &all, opts, NULL);
    const bson_t *doc;
    int n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        char when[40] = "-";
        int64_t updated = doc_date(doc, "updated");
        if (updated >= 0)
            format_iso(updated, when, sizeof when);
        const char *type = doc_utf8(doc, "_id");
        if (n++ == 0)
            printf("%-32s %7s  %s\n", "TYPE", "VERSION", "UPDATED");
        printf("%-32s %7lld  %s\n", type ? type : "?", (long long)doc_int(doc, "version"), when);
    }
    bson_error_t berr;
    if (mongoc_cursor_error(cur, &berr)) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s.db, name, berr.message);
        status = 1;
    } else if (n == 0) {
        printf("no types in %s.%s (outboxctl init --schemas DIR stores them)\n", s.db, name);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&all);
    mongoc_collection_destroy(coll);
    store_close(&s);
    return status;
}

/* show TYPE: its version on stderr's first line, its schema as JSON. */
static int schema_show(const options_t *o, const char *type) {
    store_t s;
    int status = store_open(o, &s);
    if (status)
        return status;
    char name[320];
    mongoc_collection_t *coll = schemas_of(&s, name, sizeof name);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(type));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    bson_error_t berr;
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "schema") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t schema;
        bson_iter_document(&it, &len, &data);
        bson_init_static(&schema, data, len);
        char *json = bson_as_relaxed_extended_json(&schema, NULL);
        fprintf(stderr, "%s: version %lld\n", type, (long long)doc_int(doc, "version"));
        printf("%s\n", json);
        bson_free(json);
    } else if (mongoc_cursor_error(cur, &berr)) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s.db, name, berr.message);
        status = 1;
    } else {
        fprintf(stderr, "outboxctl: schema show: type \"%s\" is not in %s.%s\n", type, s.db, name);
        status = 1;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    store_close(&s);
    return status;
}

/* set TYPE FILE: store, then ensure with every stored type so that the
 * log's validator has the new schema. */
static int schema_set(const options_t *o, const char *type, const char *path) {
    outbox_error_t err;
    int status;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "outboxctl: schema set: %s: cannot open\n", path);
        return 1;
    }
    size_t cap = 4096, len = 0, got;
    char *text = malloc(cap);
    while (text && (got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *bigger = realloc(text, cap *= 2);
            if (!bigger)
                free(text);
            text = bigger;
        }
    }
    bool failed = ferror(f);
    fclose(f);
    if (!text)
        abort(); /* out of memory */
    if (failed) {
        fprintf(stderr, "outboxctl: schema set: %s: read error\n", path);
        free(text);
        return 1;
    }
    text[len] = '\0';
    options_t without_dir = *o; /* the stored types, not a folder's */
    without_dir.schemas = NULL;
    outbox_t *ob = open_outbox(&without_dir, false, &status);
    if (!ob) {
        free(text);
        return status;
    }
    int64_t version;
    if (outbox_schema_set(ob, type, text, &version, &err) != OUTBOX_OK) {
        char what[400];
        snprintf(what, sizeof what, "schema set %s (%s)", type, path);
        status = fail(what, &err);
    } else if (outbox_load_types(ob, NULL, &err) != OUTBOX_OK || outbox_ensure(ob, &err) != OUTBOX_OK) {
        status = fail("schema set: stored, but the log's validator was not updated", &err);
    } else {
        printf("%s: version %lld\n", type, (long long)version);
    }
    free(text);
    outbox_destroy(ob);
    return status;
}

int cmd_schema(const options_t *o, char **args, int n) {
    if (n == 1 && strcmp(args[0], "list") == 0)
        return schema_list(o);
    if (n == 2 && strcmp(args[0], "show") == 0)
        return schema_show(o, args[1]);
    if (n == 3 && strcmp(args[0], "set") == 0)
        return schema_set(o, args[1], args[2]);
    fprintf(stderr, "outboxctl: schema needs: list | show TYPE | set TYPE FILE\n");
    return EXIT_USAGE;
}
