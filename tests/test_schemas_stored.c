/*
 * test_schemas_stored.c - the types an outbox keeps in N.schemas (issue
 * 20): ensure stores what the conf declares and refuses a declaration that
 * differs from what is stored; a schema changes only by outbox_schema_set
 * (outboxctl schema set), whose version grows; a producer without a schema
 * folder (outbox_load_types, outboxctl put without --schemas) validates
 * against the stored types exactly as one with the folder.
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* order.shipped without the carrier enum: any string. */
#define SHIPPED_ANY_CARRIER                                                                                            \
    "{\"bsonType\": \"object\", \"required\": [\"ordernr\", \"carrier\"], \"properties\": {\"ordernr\": "          \
    "{\"bsonType\": \"int\", \"minimum\": 1}, \"carrier\": {\"bsonType\": \"string\"}}}"

static int64_t stored_version(outbox_t *ob, const char *type) {
    char name[256];
    snprintf(name, sizeof name, "%s.schemas", outbox_name(ob));
    bson_t doc;
    bson_iter_t it;
    int64_t version = -1;
    if (test_find_by_id(name, type, &doc)) {
        if (bson_iter_init_find(&it, &doc, "version"))
            version = bson_iter_as_int64(&it);
        bson_destroy(&doc);
    }
    return version;
}

/* A second handle on ob's outbox, declaring shipped's schema as given
 * (NULL: no types at all). */
static outbox_t *other_producer(outbox_t *ob, const char *shipped_schema) {
    outbox_error_t err;
    outbox_conf_t *conf = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf, "uri", test_mongodb_uri(), &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "database", TEST_DB, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "outbox", outbox_name(ob), &err), OUTBOX_OK);
    if (shipped_schema && outbox_conf_add_type(conf, "order.shipped", shipped_schema, &err) != OUTBOX_OK)
        fail_msg("add_type: %s", err.message);
    outbox_t *other = outbox_new(conf, &err);
    assert_non_null(other);
    return other;
}

static void ensure_stores_the_types_and_refuses_another_schema(void **state) {
    (void)state;
    outbox_error_t err;
    outbox_t *ob = test_outbox("schemas_store"); /* order.created, order.shipped */
    assert_int_equal(stored_version(ob, "order.created"), 1);
    assert_int_equal(stored_version(ob, "order.shipped"), 1);
    /* The same declarations again: nothing changes. */
    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);
    assert_int_equal(stored_version(ob, "order.shipped"), 1);

    /* Another producer declares order.shipped otherwise: refused, named. */
    outbox_t *other = other_producer(ob, SHIPPED_ANY_CARRIER);
    assert_int_equal(outbox_ensure(other, &err), OUTBOX_ERR_SCHEMA);
    if (!strstr(err.message, "type \"order.shipped\"") || !strstr(err.message, "version 1") ||
        !strstr(err.message, "outboxctl schema set order.shipped"))
        fail_msg("the refusal does not say which type, version and what to run: %s", err.message);

    /* The deliberate change: version 2; the same schema again keeps it. */
    int64_t version = 0;
    if (outbox_schema_set(ob, "order.shipped", SHIPPED_ANY_CARRIER, &version, &err) != OUTBOX_OK)
        fail_msg("schema_set: %s", err.message);
    assert_int_equal(version, 2);
    assert_int_equal(outbox_schema_set(ob, "order.shipped", SHIPPED_ANY_CARRIER, &version, &err), OUTBOX_OK);
    assert_int_equal(version, 2);
    assert_int_equal(stored_version(ob, "order.shipped"), 2);
    /* Now the other producer agrees with what is stored, and the first
     * one (still declaring version 1's schema) is the one refused. */
    if (outbox_ensure(other, &err) != OUTBOX_OK)
        fail_msg("ensure with the stored schema: %s", err.message);
    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_ERR_SCHEMA);
    assert_non_null(strstr(err.message, "version 2"));
    /* A schema outside the subset is never stored. */
    assert_int_equal(outbox_schema_set(ob, "order.shipped", "{\"bsonType\": \"object\", \"oneOf\": []}", &version,
                                       &err),
                     OUTBOX_ERR_SCHEMA);
    assert_int_equal(stored_version(ob, "order.shipped"), 2);
    outbox_destroy(other);
    test_outbox_drop(ob);
}

static void a_producer_without_a_folder_validates_against_the_stored_types(void **state) {
    (void)state;
    outbox_error_t err;
    outbox_t *ob = test_outbox("schemas_load");
    outbox_t *bare = other_producer(ob, NULL);
    /* Before loading, no type is declared. */
    assert_int_equal(outbox_put_json(bare, NULL, "order.shipped", "k", "{\"ordernr\": 1, \"carrier\": \"dhl\"}",
                                     NULL, NULL, &err),
                     OUTBOX_ERR_UNKNOWN_TYPE);
    size_t loaded = 0;
    if (outbox_load_types(bare, &loaded, &err) != OUTBOX_OK)
        fail_msg("load_types: %s", err.message);
    assert_int_equal(loaded, 2);
    /* The same verdicts, with the same messages, as the folder's. */
    const char *bad = "{\"ordernr\": 1, \"carrier\": \"pigeon\"}";
    outbox_error_t with_folder;
    assert_int_equal(outbox_put_json(ob, NULL, "order.shipped", "k", bad, NULL, NULL, &with_folder),
                     OUTBOX_ERR_VALIDATION);
    assert_int_equal(outbox_put_json(bare, NULL, "order.shipped", "k", bad, NULL, NULL, &err), OUTBOX_ERR_VALIDATION);
    assert_string_equal(err.message, with_folder.message);
    assert_int_equal(outbox_put_json(bare, NULL, "order.shipped", "k", "{\"ordernr\": 1, \"carrier\": \"dhl\"}",
                                     NULL, NULL, &err),
                     OUTBOX_OK);
    /* What the handle loaded agrees with what is stored: its ensure
     * passes. */
    if (outbox_ensure(bare, &err) != OUTBOX_OK)
        fail_msg("ensure after load: %s", err.message);
    outbox_destroy(bare);
    test_outbox_drop(ob);
}

/* outboxctl: init --schemas stores; schema list, show and set; put without
 * --schemas validates against the stored types; init with a folder that
 * disagrees is refused, naming the type. */
static void outboxctl_keeps_the_schemas_in_the_outbox(void **state) {
    (void)state;
    char *out = NULL, shipped[300];
    const char *src = getenv("OUTBOX_TEST_SRCDIR");
    outbox_t *ob = outbox_new(test_conf("schemas_ctl"), NULL);
    assert_non_null(ob);
    test_outboxctl_use(ob);
    assert_int_equal(test_outboxctl_run(&out, "--schemas '%s/examples/schemas' init", src ? src : "."), 0);
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "schema list"), 0);
    if (!strstr(out, "order.created") || !strstr(out, "order.shipped"))
        fail_msg("schema list: %s", out);
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "schema show order.shipped"), 0);
    if (!strstr(out, "version 1") || !strstr(out, "\"postnl\""))
        fail_msg("schema show: %s", out);
    free(out);
    /* put without --schemas: the stored enum refuses a pigeon (exit 2). */
    assert_int_equal(test_outboxctl_run(&out, "put order.shipped k '{\"ordernr\": 1, \"carrier\": \"pigeon\"}'"), 2);
    if (!strstr(out, "data.carrier"))
        fail_msg("put without --schemas: %s", out);
    free(out);
    char dir[] = "/tmp/outbox-schemas-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(shipped, sizeof shipped, "%s/shipped.json", dir);
    FILE *f = fopen(shipped, "w");
    assert_non_null(f);
    fputs(SHIPPED_ANY_CARRIER, f);
    fclose(f);
    assert_int_equal(test_outboxctl_run(&out, "schema set order.shipped '%s'", shipped), 0);
    if (!strstr(out, "order.shipped: version 2"))
        fail_msg("schema set: %s", out);
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "put order.shipped k '{\"ordernr\": 1, \"carrier\": \"pigeon\"}'"), 0);
    free(out);
    /* The folder still has version 1's schema: init refuses it (exit 2,
     * as for any schema mistake). */
    assert_int_equal(test_outboxctl_run(&out, "--schemas '%s/examples/schemas' init", src ? src : "."), 2);
    if (!strstr(out, "type \"order.shipped\"") || !strstr(out, "version 2"))
        fail_msg("init with a folder that disagrees: %s", out);
    free(out);
    test_outboxctl_use(NULL);
    remove(shipped);
    rmdir(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ensure_stores_the_types_and_refuses_another_schema),
        cmocka_unit_test(a_producer_without_a_folder_validates_against_the_stored_types),
        cmocka_unit_test(outboxctl_keeps_the_schemas_in_the_outbox),
    };
    return TEST_RUN("schemas_stored", tests);
}
