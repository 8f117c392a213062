/*
 * testlib.c - see testlib.h.
 */
#include "testlib.h"

#include <fcntl.h>
#include <sys/file.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *services_env; /* services.env, read once */

void test_print_skip(const char *fmt, ...) {
    char reason[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    printf("# skip reason: %s\n", reason);
    fflush(stdout);
}

char *test_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    size_t got = fread(buf, 1, (size_t)len, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static void load_services_env(void) {
    char path[1024];
    const char *dir = getenv("OUTBOX_SERVICES_DIR");
    if (services_env)
        return;
    if (dir)
        snprintf(path, sizeof path, "%s/services.env", dir);
    else if (getenv("XDG_CACHE_HOME"))
        snprintf(path, sizeof path, "%s/service-outbox/services.env", getenv("XDG_CACHE_HOME"));
    else
        snprintf(path, sizeof path, "%s/.cache/service-outbox/services.env",
                 getenv("HOME") ? getenv("HOME") : "/");
    services_env = test_read_file(path);
    if (!services_env)
        services_env = strdup("");
}

const char *test_service(const char *name) {
    static char values[8][512];
    static int next;
    const char *env = getenv(name);
    if (env && env[0])
        return env;
    load_services_env();
    size_t len = strlen(name);
    for (const char *line = services_env; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t line_len = eol ? (size_t)(eol - line) : strlen(line);
        if (line_len > len && strncmp(line, name, len) == 0 && line[len] == '=') {
            char *v = values[next++ % 8];
            size_t vlen = line_len - len - 1;
            if (vlen >= sizeof values[0])
                vlen = sizeof values[0] - 1;
            memcpy(v, line + len + 1, vlen);
            v[vlen] = '\0';
            /* services.env may quote values for the shell. */
            if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
                memmove(v, v + 1, vlen - 2);
                v[vlen - 2] = '\0';
            }
            return v;
        }
        line = eol ? eol + 1 : NULL;
    }
    return NULL;
}

const char *test_mongodb_uri(void) {
    const char *uri = test_service("OUTBOX_TEST_MONGODB_URI");
    if (!uri && getenv("OUTBOX_TEST_REQUIRE_SERVERS"))
        fail_msg("no MongoDB test server, and OUTBOX_TEST_REQUIRE_SERVERS is set (tests/run-all.sh "
                 "sets it: there the harness must have started one)");
    if (!uri)
        TEST_SKIP("no MongoDB test server: run tests/services/services.sh up (or set "
                  "OUTBOX_TEST_MONGODB_URI)");
    return uri;
}

const char *test_mongodb_kind(void) {
    const char *kind = test_service("OUTBOX_TEST_MONGODB_KIND");
    return kind ? kind : "unknown";
}

outbox_conf_t *test_conf(const char *label) {
    static int counter;
    char name[128];
    outbox_error_t err;
    const char *uri = test_mongodb_uri();
    outbox_conf_t *conf = outbox_conf_new();
    snprintf(name, sizeof name, "t_%s_%d_%d", label, (int)getpid(), ++counter);
    assert_int_equal(outbox_conf_set(conf, "uri", uri, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "database", TEST_DB, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "outbox", name, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "tail.await_ms", "100", &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_add_type(conf, "order.created", ORDER_CREATED_SCHEMA, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_add_type(conf, "order.shipped", ORDER_SHIPPED_SCHEMA, &err), OUTBOX_OK);
    return conf;
}

outbox_t *test_outbox(const char *label) {
    return test_outbox_capped(label, NULL, NULL);
}

outbox_t *test_outbox_capped(const char *label, const char *cap_bytes, const char *cap_events) {
    outbox_error_t err;
    outbox_conf_t *conf = test_conf(label);
    if (cap_bytes && outbox_conf_set(conf, "capped.size", cap_bytes, &err) != OUTBOX_OK)
        fail_msg("capped.size %s: %s", cap_bytes, err.message);
    if (cap_events && outbox_conf_set(conf, "capped.max", cap_events, &err) != OUTBOX_OK)
        fail_msg("capped.max %s: %s", cap_events, err.message);
    outbox_t *ob = outbox_new(conf, &err);
    if (!ob)
        fail_msg("outbox_new: %s", err.message);
    if (outbox_ensure(ob, &err) != OUTBOX_OK)
        fail_msg("outbox_ensure: %s", err.message);
    return ob;
}

mongoc_client_t *test_client(void) {
    mongoc_client_t *client = mongoc_client_new(test_mongodb_uri());
    assert_non_null(client);
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return client;
}

int64_t test_count(const char *coll) {
    bson_error_t berr;
    bson_t filter = BSON_INITIALIZER;
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    int64_t n = mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL, &berr);
    if (n < 0)
        fail_msg("count %s: %s", coll, berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(&filter);
    return n;
}

void test_put_pending(outbox_t *ob, int ordernr) {
    char name[256];
    snprintf(name, sizeof name, "%s.pending", outbox_name(ob));
    bson_oid_t id;
    bson_oid_init(&id, NULL);
    struct timeval tv;
    bson_gettimeofday(&tv);
    bson_t *doc = BCON_NEW("_id", BCON_OID(&id), "type", BCON_UTF8("order.created"), "key", BCON_UTF8("k"), "data",
                           "{", "ordernr", BCON_INT32(ordernr), "total", BCON_DOUBLE(1), "}", "created",
                           BCON_DATE_TIME((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000), "v", BCON_INT32(1));
    test_insert_raw(name, doc);
    bson_destroy(doc);
}

bool test_find_by_id(const char *coll, const char *id, bson_t *out) {
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    const bson_t *doc;
    bool found = mongoc_cursor_next(cur, &doc);
    if (found)
        bson_copy_to(doc, out);
    bson_error_t berr;
    if (mongoc_cursor_error(cur, &berr))
        fail_msg("find %s in %s: %s", id, coll, berr.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return found;
}

bool test_collection_exists(const char *coll) {
    bson_error_t berr;
    mongoc_client_t *client = test_client();
    mongoc_database_t *db = mongoc_client_get_database(client, TEST_DB);
    bool found = mongoc_database_has_collection(db, coll, &berr);
    if (!found && berr.code)
        fail_msg("list collections of %s: %s", TEST_DB, berr.message);
    mongoc_database_destroy(db);
    mongoc_client_destroy(client);
    return found;
}

void test_outbox_drop(outbox_t *ob) {
    if (!ob)
        return;
    mongoc_client_t *client = test_client();
    /* Every collection outboxd and liboutbox make for an outbox N. */
    const char *suffixes[] = {"", ".pending", ".checkpoints", ".leases", ".deadletter", ".quarantine", ".schemas"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", outbox_name(ob), suffixes[i]);
        mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
        mongoc_collection_drop(c, NULL);
        mongoc_collection_destroy(c);
    }
    mongoc_client_destroy(client);
    outbox_destroy(ob);
}

/* FerretDB lacks endSessions and the driver warns at every client close:
 * noise in the test logs, so it is dropped (as outboxctl does). */
static void log_handler(mongoc_log_level_t level, const char *domain, const char *message,
                        void *data) {
    if (level == MONGOC_LOG_LEVEL_WARNING &&
        (strstr(message, "endSessions") || strstr(message, "Falling back to malloc for counters")))
        return;
    mongoc_log_default_handler(level, domain, message, data);
}

int test_run(const char *name, const struct CMUnitTest *tests, size_t n) {
    mongoc_init();
    mongoc_log_set_handler(log_handler, NULL);
    cmocka_set_message_output(CM_OUTPUT_TAP);
    /* OUTBOX_TEST_ONLY=PATTERN runs only the tests whose names match it
     * (cmocka's '*' and '?' wildcards): for working on one test. */
    const char *only = getenv("OUTBOX_TEST_ONLY");
    if (only && *only)
        cmocka_set_test_filter(only);
    int failed = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    mongoc_cleanup();
    free(services_env);
    return failed;
}

bson_oid_t test_put_order(outbox_t *ob, int ordernr, const char *key) {
    outbox_error_t err;
    bson_oid_t id;
    bson_t *data = BCON_NEW("ordernr", BCON_INT32(ordernr), "total", BCON_DOUBLE(10.5));
    if (outbox_put(ob, NULL, "order.created", key, data, NULL, &id, &err) != OUTBOX_OK)
        fail_msg("put order %d: %s", ordernr, err.message);
    bson_destroy(data);
    return id;
}

int test_ordernr(const outbox_event_t *ev) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, outbox_event_data(ev), "ordernr"))
        fail_msg("event of type %s has no data.ordernr", outbox_event_type(ev));
    return (int)bson_iter_as_int64(&it);
}

void test_insert_raw(const char *coll, const bson_t *doc) {
    bson_error_t berr;
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    if (!mongoc_collection_insert_one(c, doc, NULL, NULL, &berr))
        fail_msg("insert into %s: %s", coll, berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
}

int test_read_ordernrs(outbox_tail_t *tail, int *ordernrs, int max, int64_t timeout_ms) {
    int n = 0;
    while (n < max) {
        const outbox_event_t *ev;
        outbox_error_t err;
        outbox_code_t rc = outbox_tail_next(tail, timeout_ms, &ev, &err);
        if (rc == OUTBOX_ERR_TIMED_OUT)
            break;
        if (rc != OUTBOX_OK)
            fail_msg("tail_next: %s (%s)", err.message, outbox_strerror(rc));
        ordernrs[n++] = test_ordernr(ev);
    }
    return n;
}

int test_run_command(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int status = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int test_scaled(int n) {
    const char *quick = getenv("OUTBOX_TEST_QUICK");
    if (!quick || !quick[0] || strcmp(quick, "0") == 0)
        return n;
    return n / 10 > 0 ? n / 10 : 1;
}

static char outboxctl_conn[1024]; /* test_outboxctl_use's options */

void test_outboxctl_use(const outbox_t *ob) {
    if (!ob)
        outboxctl_conn[0] = '\0';
    else
        snprintf(outboxctl_conn, sizeof outboxctl_conn, "--uri '%s' --db %s --outbox %s", test_mongodb_uri(),
                 TEST_DB, outbox_name(ob));
}

int test_outboxctl_run(char **out, const char *fmt, ...) {
    char args[1024], cmd[3072];
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' %s %s 2>&1", b ? b : ".", outboxctl_conn, args);
    return test_run_command(cmd, out);
}

void test_lock_kafka(void) {
    static int fd = -1;
    if (fd >= 0)
        return;
    fd = open(OUTBOX_TEST_KAFKA_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        fail_msg("cannot open %s", OUTBOX_TEST_KAFKA_LOCK);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        print_message("# waiting for another Kafka test to finish (%s)\n", OUTBOX_TEST_KAFKA_LOCK);
        if (flock(fd, LOCK_EX) != 0)
            fail_msg("cannot lock %s", OUTBOX_TEST_KAFKA_LOCK);
    }
}
