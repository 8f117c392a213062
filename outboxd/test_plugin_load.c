/*
 * test_plugin_load.c - outboxd refuses every plugin that does not fit its
 * ABI before running any of the plugin's callbacks, with a message that
 * names the file and both sides' values; a correct one loads. And it loads
 * only a file it can trust: one that nobody but root or its own user can
 * change, that stays inside plugin_dir, that is an ELF file, never through
 * a .la file's redirection.
 *
 * The build tree's plugins are in outboxd/testplugins/.libs (libtool's
 * layout), which the loader also looks in. The tests of the file checks
 * copy good.so into a temporary plugin_dir and spoil it there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "plugin.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    char want[200];
    snprintf(want, sizeof want, "incompatible sink ABI: outboxd has ABI %d.%d, plugin has 99.%d",
             OUTBOX_SINK_ABI_MAJOR, OUTBOX_SINK_ABI_MINOR, OUTBOX_SINK_ABI_MINOR);
    expect_refused("bad_abi", want);
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
    expect_refused("no_publish", "plugin \"no_publish\" has no publish (or publish_some) callback, which is required");
}

/* ABI 1.1: a plugin that declares minor 1 must have the 1.1 members;
 * outboxd would read past its struct otherwise. */
static void a_1_1_plugin_with_a_1_0_struct_is_refused_naming_both_sizes(void **state) {
    char want[300];
    snprintf(want, sizeof want,
             "plugin struct too small for the ABI it declares: ABI 1.%d needs at least %zu bytes "
             "(OUTBOX_SINK_PLUGIN_SIZE_1_1), plugin has %zu", OUTBOX_SINK_ABI_MINOR,
             (size_t)OUTBOX_SINK_PLUGIN_SIZE_1_1, (size_t)OUTBOX_SINK_PLUGIN_MIN_SIZE);
    expect_refused("small_1_1", want);
}

static void option_entries_smaller_than_1_0_are_refused(void **state) {
    char want[300];
    snprintf(want, sizeof want, "plugin option table entries too small: outboxd needs at least %zu bytes (ABI 1.0), "
             "plugin has option_size 16", (size_t)OUTBOX_SINK_OPTION_SIZE_1_0);
    expect_refused("small_options", want);
}

static void publish_some_may_replace_publish(void **state) {
    char err[2048];
    outboxd_plugins_t *set = outboxd_plugins_new(dir);
    const outbox_sink_plugin_t *p = outboxd_plugins_load(set, "publish_some_only", err, sizeof err);
    if (!p)
        fail_msg("%s", err);
    assert_null(p->publish);
    outboxd_plugins_free(set);
}

static char *init_log(char *path, size_t size) {
    snprintf(path, size, "/tmp/outboxd-init-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    setenv("OUTBOX_TEST_INIT_LOG", path, 1);
    return path;
}

static void init_runs_once_and_fini_at_the_end(void **state) {
    char path[64], err[2048];
    init_log(path, sizeof path);
    outboxd_plugins_t *set = outboxd_plugins_new(dir);
    const outbox_sink_plugin_t *p = outboxd_plugins_load(set, "init_fini", err, sizeof err);
    if (!p)
        fail_msg("%s", err);
    assert_ptr_equal(outboxd_plugins_load(set, "init_fini", err, sizeof err), p);
    char text[64] = "";
    FILE *f = fopen(path, "r");
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(text, "init\n");
    outboxd_plugins_free(set);
    f = fopen(path, "r");
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(text, "init\nfini\n");
    unlink(path);
    unsetenv("OUTBOX_TEST_INIT_LOG");
}

static void a_failing_init_refuses_the_plugin_with_its_message(void **state) {
    char path[64];
    init_log(path, sizeof path);
    expect_refused("init_fatal", "plugin \"init_fatal\" refused to start: init failed: the client library is too old");
    /* init ran; fini is not owed for a failed init. */
    char text[64] = "";
    FILE *f = fopen(path, "r");
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(text, "init\n");
    unlink(path);
    unsetenv("OUTBOX_TEST_INIT_LOG");
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

/* ----------------------------------------------------------------------------
 * The plugin file and plugin_dir must be trustworthy
 * ------------------------------------------------------------------------- */

typedef struct {
    char top[64];      /* the temporary folder, removed at the end */
    char plugins[128]; /* top/plugins: the plugin_dir, 0755, holding good.so 0755 */
} scratch_t;

static void copy_file(const char *from, const char *to, mode_t mode) {
    FILE *in = fopen(from, "rb");
    if (!in)
        fail_msg("cannot read %s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(chmod(to, mode), 0);
}

static void write_file(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void scratch_new(scratch_t *s) {
    snprintf(s->top, sizeof s->top, "/tmp/outbox-plugins-XXXXXX");
    assert_non_null(mkdtemp(s->top));
    snprintf(s->plugins, sizeof s->plugins, "%s/plugins", s->top);
    assert_int_equal(mkdir(s->plugins, 0755), 0);
    assert_int_equal(chmod(s->plugins, 0755), 0); /* whatever the umask */
    char from[1200], to[200];
    snprintf(from, sizeof from, "%s/.libs/good.so", dir);
    snprintf(to, sizeof to, "%s/good.so", s->plugins);
    copy_file(from, to, 0755);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static void scratch_free(scratch_t *s) {
    nftw(s->top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Loading NAME from plugin_dir d fails with a message that names file
 * (a path) and contains each of the needles. */
static void expect_refused_in(const char *d, const char *name, const char *file, const char *needle,
                              const char *needle2) {
    char err[2048] = "";
    outboxd_plugins_t *set = outboxd_plugins_new(d);
    if (outboxd_plugins_load(set, name, err, sizeof err))
        fail_msg("plugin %s from %s was accepted, expected: %s", name, d, needle);
    if (!strstr(err, file) || !strstr(err, needle) || (needle2 && !strstr(err, needle2)))
        fail_msg("plugin %s: message \"%s\" does not name %s with \"%s\"%s%s", name, err, file, needle,
                 needle2 ? " and " : "", needle2 ? needle2 : "");
    outboxd_plugins_free(set);
}

static void expect_loaded_from(const char *d, const char *name) {
    char err[2048] = "";
    outboxd_plugins_t *set = outboxd_plugins_new(d);
    const outbox_sink_plugin_t *p = outboxd_plugins_load(set, name, err, sizeof err);
    if (!p)
        fail_msg("plugin %s from %s was refused: %s", name, d, err);
    assert_string_equal(p->name, "good");
    outboxd_plugins_free(set);
}

/* As Debian installs them: root-owned 0644 in a 0755 folder (0755 here). */
static void an_installed_plugin_loads_from_plugin_dir(void **state) {
    scratch_t s;
    scratch_new(&s);
    char so[200];
    snprintf(so, sizeof so, "%s/good.so", s.plugins);
    assert_int_equal(chmod(so, 0644), 0);
    expect_loaded_from(s.plugins, "good");
    scratch_free(&s);
}

static void a_symlink_out_of_plugin_dir_is_refused(void **state) {
    scratch_t s;
    scratch_new(&s);
    /* good.so moves out of plugin_dir; a link in plugin_dir points at it. */
    char inside[200], outside[200];
    snprintf(inside, sizeof inside, "%s/good.so", s.plugins);
    snprintf(outside, sizeof outside, "%s/good.so", s.top);
    assert_int_equal(rename(inside, outside), 0);
    assert_int_equal(symlink(outside, inside), 0);
    expect_refused_in(s.plugins, "good", inside, "refusing to load: it resolves to", "outside plugin_dir");
    /* The same through a relative link climbing out. */
    assert_int_equal(unlink(inside), 0);
    assert_int_equal(symlink("../good.so", inside), 0);
    expect_refused_in(s.plugins, "good", inside, "outside plugin_dir", NULL);
    scratch_free(&s);
}

static void a_symlink_within_plugin_dir_loads(void **state) {
    scratch_t s;
    scratch_new(&s);
    char link[200];
    snprintf(link, sizeof link, "%s/alias.so", s.plugins);
    assert_int_equal(symlink("good.so", link), 0);
    expect_loaded_from(s.plugins, "alias");
    scratch_free(&s);
}

static void a_world_or_group_writable_plugin_dir_is_refused(void **state) {
    scratch_t s;
    scratch_new(&s);
    char so[200];
    snprintf(so, sizeof so, "%s/good.so", s.plugins);
    assert_int_equal(chmod(s.plugins, 0777), 0);
    expect_refused_in(s.plugins, "good", so, "plugin_dir", "is world-writable (mode 0777)");
    /* /tmp's sticky bit stops others from removing a file, not from adding one. */
    assert_int_equal(chmod(s.plugins, 01777), 0);
    expect_refused_in(s.plugins, "good", so, "plugin_dir", "is world-writable (mode 1777)");
    assert_int_equal(chmod(s.plugins, 0775), 0);
    expect_refused_in(s.plugins, "good", so, "plugin_dir", "is group-writable (mode 0775)");
    scratch_free(&s);
}

static void a_world_or_group_writable_plugin_file_is_refused(void **state) {
    scratch_t s;
    scratch_new(&s);
    char so[200];
    snprintf(so, sizeof so, "%s/good.so", s.plugins);
    assert_int_equal(chmod(so, 0666), 0);
    expect_refused_in(s.plugins, "good", so, "the file is world-writable (mode 0666)", NULL);
    assert_int_equal(chmod(so, 0664), 0);
    expect_refused_in(s.plugins, "good", so, "the file is group-writable (mode 0664)", NULL);
    scratch_free(&s);
}

/* A folder between plugin_dir and the file (libtool's .libs) counts too. */
static void a_writable_folder_inside_plugin_dir_is_refused(void **state) {
    scratch_t s;
    scratch_new(&s);
    char libs[200], from[200], so[200];
    snprintf(libs, sizeof libs, "%s/.libs", s.plugins);
    snprintf(from, sizeof from, "%s/good.so", s.plugins);
    snprintf(so, sizeof so, "%s/.libs/good.so", s.plugins);
    assert_int_equal(mkdir(libs, 0755), 0);
    assert_int_equal(chmod(libs, 0777), 0);
    assert_int_equal(rename(from, so), 0);
    expect_refused_in(s.plugins, "good", so, "directory ", "/.libs is world-writable (mode 0777)");
    assert_int_equal(chmod(libs, 0755), 0);
    expect_loaded_from(s.plugins, "good");
    scratch_free(&s);
}

/* Run as root (as in CI), the test can make files someone else's. */
static void a_plugin_or_plugin_dir_owned_by_another_user_is_refused(void **state) {
    if (geteuid() != 0) {
        /* The format tests/tap-cmocka.sh folds into the SKIP line. */
        printf("# skip reason: changing a file's owner needs root (tests run as uid %ld)\n", (long)geteuid());
        fflush(stdout);
        skip();
        return;
    }
    scratch_t s;
    scratch_new(&s);
    char so[200];
    snprintf(so, sizeof so, "%s/good.so", s.plugins);
    assert_int_equal(chown(so, 65534, 65534), 0);
    expect_refused_in(s.plugins, "good", so, "the file is owned by uid 65534, not by root or outboxd's user",
                      NULL);
    assert_int_equal(chown(so, 0, 0), 0);
    assert_int_equal(chown(s.plugins, 65534, 65534), 0);
    expect_refused_in(s.plugins, "good", so, "plugin_dir ", "is owned by uid 65534");
    scratch_free(&s);
}

/* libltdl's lt_dlopenext reads NAME.la first, whose libdir and dlname name
 * the library to load, from any folder. outboxd loads NAME.so only. */
static void a_la_file_cannot_redirect_the_load(void **state) {
    scratch_t s;
    scratch_new(&s);
    char other[200], evil[200], la[200], text[1024];
    snprintf(other, sizeof other, "%s/other", s.top);
    assert_int_equal(mkdir(other, 0755), 0);
    snprintf(evil, sizeof evil, "%s/evil.so", other);
    char from[200];
    snprintf(from, sizeof from, "%s/good.so", s.plugins);
    assert_int_equal(rename(from, evil), 0);
    snprintf(la, sizeof la, "%s/good.la", s.plugins);
    snprintf(text, sizeof text,
             "# good.la - a libtool library file\n"
             "dlname='evil.so'\nlibrary_names='evil.so'\nold_library=''\n"
             "dependency_libs=''\ninstalled=yes\nshouldnotlink=yes\nlibdir='%s'\n", other);
    write_file(la, text, 0644);
    expect_refused_in(s.plugins, "good", "/good.so", "cannot load", "No such file");
    scratch_free(&s);
}

static void a_file_that_is_not_elf_is_reported_as_such(void **state) {
    scratch_t s;
    scratch_new(&s);
    char junk[200], empty[200];
    snprintf(junk, sizeof junk, "%s/junk.so", s.plugins);
    write_file(junk, "#!/bin/sh\necho not a library\n", 0644);
    expect_refused_in(s.plugins, "junk", junk, ": not an ELF shared object", NULL);
    snprintf(empty, sizeof empty, "%s/empty.so", s.plugins);
    write_file(empty, "", 0644);
    expect_refused_in(s.plugins, "empty", empty, ": not an ELF shared object", NULL);
    scratch_free(&s);
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
        cmocka_unit_test(a_1_1_plugin_with_a_1_0_struct_is_refused_naming_both_sizes),
        cmocka_unit_test(option_entries_smaller_than_1_0_are_refused),
        cmocka_unit_test(publish_some_may_replace_publish),
        cmocka_unit_test(init_runs_once_and_fini_at_the_end),
        cmocka_unit_test(a_failing_init_refuses_the_plugin_with_its_message),
        cmocka_unit_test(two_plugins_with_one_name_are_refused),
        cmocka_unit_test(a_missing_file_is_reported),
        cmocka_unit_test(an_installed_plugin_loads_from_plugin_dir),
        cmocka_unit_test(a_symlink_out_of_plugin_dir_is_refused),
        cmocka_unit_test(a_symlink_within_plugin_dir_loads),
        cmocka_unit_test(a_world_or_group_writable_plugin_dir_is_refused),
        cmocka_unit_test(a_world_or_group_writable_plugin_file_is_refused),
        cmocka_unit_test(a_writable_folder_inside_plugin_dir_is_refused),
        cmocka_unit_test(a_plugin_or_plugin_dir_owned_by_another_user_is_refused),
        cmocka_unit_test(a_la_file_cannot_redirect_the_load),
        cmocka_unit_test(a_file_that_is_not_elf_is_reported_as_such),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("plugin_load", tests, NULL, NULL);
}
