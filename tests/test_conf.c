/*
 * test_conf.c - configuration mistakes are reported with the key, value or
 * file at fault, and leave nothing half-set. No server needed.
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void unknown_key_and_bad_values_are_named(void **state) {
    outbox_error_t err;
    outbox_conf_t *conf = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf, "capped.sise", "1000", &err), OUTBOX_ERR_CONF);
    assert_string_equal(err.message, "unknown configuration key \"capped.sise\"");
    assert_int_equal(outbox_conf_set(conf, "capped.size", "12kb", &err), OUTBOX_ERR_CONF);
    assert_string_equal(err.message, "capped.size: \"12kb\" is not a size in bytes >= 4096");
    assert_int_equal(outbox_conf_set(conf, "outbox", "system.x", &err), OUTBOX_ERR_CONF);
    assert_int_equal(outbox_conf_set(conf, "database", "a.b", &err), OUTBOX_ERR_CONF);
    assert_int_equal(outbox_conf_set(conf, "tail.await_ms", "0", &err), OUTBOX_ERR_CONF);
    assert_int_equal(outbox_conf_set(conf, "tail.batch_size", "-1", &err), OUTBOX_ERR_CONF);
    assert_string_equal(err.message, "tail.batch_size: \"-1\" is not between 0 and 100000");
    assert_int_equal(outbox_conf_set(conf, "tail.batch_size", "100001", &err), OUTBOX_ERR_CONF);
    assert_int_equal(outbox_conf_set(conf, "tail.batch_size", "0", &err), OUTBOX_OK);
    /* A bad URI must not be echoed: it may hold a password. */
    assert_int_equal(outbox_conf_set(conf, "uri", "mongodb://u:s3cret@", &err), OUTBOX_ERR_CONF);
    assert_null(strstr(err.message, "s3cret"));
    outbox_conf_destroy(conf);
}

/* outboxd --check applies these very rules (outboxd/conffile.c): a name
 * MongoDB would refuse at the first write is refused here, with the reason,
 * and a huge one is shown by its start only. */
static void names_mongodb_refuses_are_refused_with_the_reason(void **state) {
    outbox_error_t err;
    outbox_conf_t *conf = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf, "outbox", "ev$x", &err), OUTBOX_ERR_CONF);
    assert_string_equal(err.message, "outbox: \"ev$x\" is not a valid collection name: it holds a $");
    assert_int_equal(outbox_conf_set(conf, "outbox", "", &err), OUTBOX_ERR_CONF);
    assert_string_equal(err.message, "outbox: \"\" is not a valid collection name: it must not be empty");
    size_t big = 10 * 1024 * 1024;
    char *name = malloc(big + 1);
    memset(name, 'n', big);
    name[big] = '\0';
    assert_int_equal(outbox_conf_set(conf, "database", name, &err), OUTBOX_ERR_CONF);
    assert_string_equal(err.message, "database: \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\" is not a valid "
                                     "database name: it is longer than 63 bytes");
    assert_int_equal(outbox_conf_set(conf, "outbox", name, &err), OUTBOX_ERR_CONF);
    assert_string_equal(err.message, "outbox: \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\" is not a valid "
                                     "collection name: it is longer than 170 bytes");
    name[63] = '\0';
    assert_int_equal(outbox_conf_set(conf, "database", name, &err), OUTBOX_OK);
    memset(name, 'o', 170); /* 170 bytes: the longest outbox name */
    name[170] = '\0';
    assert_int_equal(outbox_conf_set(conf, "outbox", name, &err), OUTBOX_OK);
    free(name);
    outbox_conf_destroy(conf);
}

static void outbox_new_needs_names_and_keeps_conf_on_failure(void **state) {
    outbox_error_t err;
    outbox_conf_t *conf = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf, "uri", "mongodb://127.0.0.1:1/", &err), OUTBOX_OK);
    assert_null(outbox_new(conf, &err));
    assert_int_equal(err.code, OUTBOX_ERR_CONF);
    assert_string_equal(err.message, "database is not set");
    /* Still ours: the next calls must work and destroy must not double free. */
    assert_int_equal(outbox_conf_set(conf, "database", "d", &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "outbox", "events", &err), OUTBOX_OK);
    outbox_t *ob = outbox_new(conf, &err);
    assert_non_null(ob);
    assert_string_equal(outbox_name(ob), "events");
    assert_string_equal(outbox_database(ob), "d");
    outbox_destroy(ob);
}

static void schema_errors_name_the_type_and_file(void **state) {
    outbox_error_t err;
    char dir[] = "/tmp/outbox-schemas-XXXXXX";
    char path[256];
    outbox_conf_t *conf = outbox_conf_new();
    assert_int_equal(outbox_conf_add_type(conf, "a.b", "{\"bsonType\": \"objekt\"}", &err), OUTBOX_ERR_SCHEMA);
    assert_string_equal(err.message, "schema of type \"a.b\": bsonType: unknown BSON type \"objekt\"");

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/good.type.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"bsonType\": \"object\"}", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/zz.bad.json", dir);
    f = fopen(path, "w");
    fputs("{\"properties\": {\"x\": {\"minimum\": \"one\"}}}", f);
    fclose(f);
    assert_int_equal(outbox_conf_add_types_dir(conf, dir, &err), OUTBOX_ERR_SCHEMA);
    char want[512];
    snprintf(want, sizeof want, "%s: schema of type \"zz.bad\": properties.x.minimum: expected a number", path);
    assert_string_equal(err.message, want);
    unlink(path);
    snprintf(path, sizeof path, "%s/good.type.json", dir);
    unlink(path);
    rmdir(dir);
    assert_int_equal(outbox_conf_add_types_dir(conf, "/nonexistent/dir", &err), OUTBOX_ERR_IO);
    assert_string_equal(err.message, "/nonexistent/dir: No such file or directory");
    outbox_conf_destroy(conf);
}

static void version_and_error_strings(void **state) {
    assert_int_equal(outbox_version_num(), OUTBOX_VERSION_NUM);
    assert_string_equal(outbox_version_str(), OUTBOX_VERSION_STR);
    for (int c = OUTBOX_OK; c <= OUTBOX_ERR_NOT_FOUND; c++)
        assert_string_not_equal(outbox_strerror((outbox_code_t)c), "unknown error code");
    assert_string_equal(outbox_strerror((outbox_code_t)999), "unknown error code");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_key_and_bad_values_are_named),
        cmocka_unit_test(outbox_new_needs_names_and_keeps_conf_on_failure),
        cmocka_unit_test(names_mongodb_refuses_are_refused_with_the_reason),
        cmocka_unit_test(schema_errors_name_the_type_and_file),
        cmocka_unit_test(version_and_error_strings),
    };
    return TEST_RUN("conf", tests);
}
