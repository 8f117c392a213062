/*
 * test_validation_table.c - liboutbox against the one table of validation
 * cases every producer library runs (tests/validation/cases.json; the
 * Python client runs the same file): each event is accepted, or refused
 * with the path the table names; each schema declaration is accepted, or
 * refused at the keyword's path. No server is needed: validation happens
 * before any round trip.
 */
#include "testlib.h"

#include <stdio.h>
#include <string.h>

static bson_t table;

static void load(void) {
    const char *src = getenv("OUTBOX_TEST_SRCDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/validation/cases.json", src ? src : ".");
    char *text = test_read_file(path);
    bson_error_t berr;
    if (!text || !bson_init_from_json(&table, text, -1, &berr)) {
        fprintf(stderr, "test_validation_table: %s: %s\n", path, text ? berr.message : "cannot read it (set OUTBOX_TEST_SRCDIR)");
        exit(1);
    }
    free(text);
}

/* The sub-document key of doc (borrowed into out). */
static void sub(const bson_t *doc, const char *key, bson_t *out) {
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!bson_iter_init_find(&it, doc, key) || !(BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)))
        fail_msg("cases.json: no \"%s\"", key);
    bson_iter_document(&it, &len, &data);
    if (BSON_ITER_HOLDS_ARRAY(&it))
        bson_iter_array(&it, &len, &data);
    bson_init_static(out, data, len);
}

/* The "path" of a case: NULL for null. */
static const char *expected_path(const bson_t *c) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, c, "path"))
        fail_msg("a case has no \"path\"");
    return BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

/* The path in a message "<prefix>PATH: what". */
static void path_of(const char *message, const char *prefix, char *out, size_t size) {
    const char *p = strstr(message, prefix);
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(prefix);
    const char *end = strstr(p, ": ");
    snprintf(out, size, "%.*s", end ? (int)(end - p) : (int)strlen(p), p);
}

static char *canonical(const bson_t *schema) {
    /* Canonical: each number keeps its BSON type. */
    return bson_as_canonical_extended_json(schema, NULL);
}

static void every_event_case(void **state) {
    (void)state;
    outbox_error_t err;
    bson_t schemas, cases;
    sub(&table, "schemas", &schemas);
    sub(&table, "cases", &cases);
    outbox_conf_t *conf = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf, "uri", "mongodb://127.0.0.1:1/", &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "database", "d", &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "outbox", "n", &err), OUTBOX_OK);
    bson_iter_t it;
    bson_iter_init(&it, &schemas);
    while (bson_iter_next(&it)) {
        bson_t schema;
        uint32_t len;
        const uint8_t *data;
        bson_iter_document(&it, &len, &data);
        bson_init_static(&schema, data, len);
        char *json = canonical(&schema);
        if (outbox_conf_add_type(conf, bson_iter_key(&it), json, &err) != OUTBOX_OK)
            fail_msg("schema %s: %s", bson_iter_key(&it), err.message);
        bson_free(json);
    }
    outbox_t *ob = outbox_new(conf, &err);
    assert_non_null(ob);
    int n = 0, refused = 0;
    bson_iter_init(&it, &cases);
    while (bson_iter_next(&it)) {
        bson_t c, data;
        uint32_t len;
        const uint8_t *raw;
        bson_iter_document(&it, &len, &raw);
        bson_init_static(&c, raw, len);
        bson_iter_t t;
        assert_true(bson_iter_init_find(&t, &c, "schema"));
        const char *type = bson_iter_utf8(&t, NULL);
        sub(&c, "data", &data);
        const char *want = expected_path(&c);
        outbox_batch_t *b = outbox_batch_new(ob);
        outbox_code_t rc = outbox_batch_add(b, type, "k", &data, NULL, &err);
        outbox_batch_destroy(b);
        char got[300] = "", prefix[300];
        if (rc != OUTBOX_OK) {
            snprintf(prefix, sizeof prefix, "event 0 (%s): ", type);
            path_of(err.message, prefix, got, sizeof got);
            refused++;
        }
        if (!want && rc != OUTBOX_OK)
            fail_msg("case %d (%s): refused, the table accepts it: %s", n, type, err.message);
        if (want && rc == OUTBOX_OK)
            fail_msg("case %d (%s): accepted, the table refuses it at %s", n, type, want);
        if (want && strcmp(got, want) != 0)
            fail_msg("case %d (%s): refused at \"%s\", the table says \"%s\": %s", n, type, got, want, err.message);
        n++;
    }
    print_message("# %d event cases: %d refused at the table's path, %d accepted\n", n, refused, n - refused);
    outbox_destroy(ob);
}

static void every_declaration_case(void **state) {
    (void)state;
    outbox_error_t err;
    bson_t decls;
    sub(&table, "declarations", &decls);
    bson_iter_t it;
    int n = 0;
    bson_iter_init(&it, &decls);
    while (bson_iter_next(&it)) {
        bson_t c, schema;
        uint32_t len;
        const uint8_t *raw;
        bson_iter_document(&it, &len, &raw);
        bson_init_static(&c, raw, len);
        sub(&c, "schema", &schema);
        const char *want = expected_path(&c);
        char *json = canonical(&schema);
        outbox_conf_t *conf = outbox_conf_new();
        outbox_code_t rc = outbox_conf_add_type(conf, "x", json, &err);
        outbox_conf_destroy(conf);
        char got[300] = "";
        if (rc != OUTBOX_OK)
            path_of(err.message, "schema of type \"x\": ", got, sizeof got);
        if (!want && rc != OUTBOX_OK)
            fail_msg("declaration %d %s: refused, the table accepts it: %s", n, json, err.message);
        if (want && (rc != OUTBOX_ERR_SCHEMA || strcmp(got, want) != 0))
            fail_msg("declaration %d %s: %s at \"%s\", the table refuses it at \"%s\": %s", n, json,
                     rc == OUTBOX_OK ? "accepted" : "refused", got, want, err.message);
        bson_free(json);
        n++;
    }
    print_message("# %d declaration cases\n", n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_event_case),
        cmocka_unit_test(every_declaration_case),
    };
    load();
    int failed = TEST_RUN("validation_table", tests);
    bson_destroy(&table);
    return failed;
}
