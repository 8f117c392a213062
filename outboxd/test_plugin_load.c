/*
 * test_plugin_load.c - outboxd refuses every plugin that does not fit its
 * ABI before running any of the plugin's callbacks, with a message that
 * names the file and both sides' values; a correct one loads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[1024];

static void expect_refused(const char *name, const char *needle) {
    char err[2048] = "";
    outboxd_plugins_t *set = outboxd_plugins_new(dir);
    const outbox_sink_plugin_t *p = outboxd_plugins_load(set, name, err, sizeof err);
    if (p)
        fail_msg("plugin %s was accepted, expected: %s", name, needle);
    if (!strstr(err, needle))
        fail_msg("plugin %s: message \"%s\" does not contain \"%s\"", name, err, needle);
    char file[1100];
    snprintf(file, sizeof file, "%s/", dir);
    if (!strstr(err, file))
        fail_msg("plugin %s: message \"%s\" does not name the file", name, err);
    outboxd_plugins_free(set);
}

static void a_correct_plugin_loads_once(void **state) {
    char err[2048];
    outboxd_plugins_t *set = outboxd_plugins_new(dir);
    const outbox_sink_plugin_t *p = outboxd_plugins_load(set, "good", err, sizeof err);
    if (!p)
        fail_msg("%s", err);
    assert_string_equal(p->name, "good");
    assert_int_equal(p->abi_major, OUTBOX_SINK_ABI_MAJOR);
    assert_ptr_equal(outboxd_plugins_load(set, "good", err, sizeof err), p);
    assert_non_null(strstr(outboxd_plugins_path(set, p), "good"));
    outboxd_plugins_free(set);
}

static void wrong_abi_major_is_refused(void **state) {
    expect_refused("bad_abi", "incompatible sink ABI: outboxd has ABI 1.0, plugin has 99.0");
}

static void too_short_struct_is_refused(void **state) {
    expect_refused("short_struct", "plugin struct too small: outboxd needs at least");
}

static void missing_entry_symbol_is_refused(void **state) {
    expect_refused("no_symbol", "not a sink plugin: it does not export outbox_sink_entry()");
}

static void wrong_build_tag_is_refused(void **state) {
    char want[200];
    snprintf(want, sizeof want, "incompatible build: outboxd has build tag \"%s\", plugin has \"ptr4-be-size4\"",
             OUTBOX_SINK_BUILD_TAG);
    expect_refused("bad_tag", want);
}

static void missing_required_callback_is_refused(void **state) {
    expect_refused("no_publish", "plugin \"no_publish\" has no publish callback, which is required");
}

static void two_plugins_with_one_name_are_refused(void **state) {
    char err[2048];
    outboxd_plugins_t *set = outboxd_plugins_new(dir);
    assert_non_null(outboxd_plugins_load(set, "good", err, sizeof err));
    assert_null(outboxd_plugins_load(set, "dup_name", err, sizeof err));
    if (!strstr(err, "plugin name \"good\" is already taken by") || !strstr(err, "dup_name"))
        fail_msg("unexpected: %s", err);
    outboxd_plugins_free(set);
}

static void a_missing_file_is_reported(void **state) {
    char err[2048];
    outboxd_plugins_t *set = outboxd_plugins_new(dir);
    assert_null(outboxd_plugins_load(set, "nonexistent", err, sizeof err));
    assert_non_null(strstr(err, "plugin \"nonexistent\": cannot load"));
    assert_null(outboxd_plugins_load(set, "../etc/passwd", err, sizeof err));
    assert_non_null(strstr(err, "not a valid plugin name"));
    outboxd_plugins_free(set);
}

int main(void) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(dir, sizeof dir, "%s/outboxd/testplugins", b ? b : ".");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_correct_plugin_loads_once),
        cmocka_unit_test(wrong_abi_major_is_refused),
        cmocka_unit_test(too_short_struct_is_refused),
        cmocka_unit_test(missing_entry_symbol_is_refused),
        cmocka_unit_test(wrong_build_tag_is_refused),
        cmocka_unit_test(missing_required_callback_is_refused),
        cmocka_unit_test(two_plugins_with_one_name_are_refused),
        cmocka_unit_test(a_missing_file_is_reported),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("plugin_load", tests, NULL, NULL);
}
