/*
 * test_redact.c - outbox_uri_redacted(), the one function every program
 * prints a connection string through: the password never shows, whatever
 * characters it holds, and nothing but the password is hidden in an
 * ordinary URI. No server needed.
 */
#include "testlib.h"

#include <string.h>

static void redaction_hides_the_password_only(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"mongodb://app:s3cret@h:27017/shop?authSource=admin", "mongodb://app:*****@h:27017/shop?authSource=admin"},
        {"mongodb+srv://app:s3cret@cluster0.example.net/", "mongodb+srv://app:*****@cluster0.example.net/"},
        {"mongodb+srv://alice:S3CRETpw@db.nosuch.invalid/", "mongodb+srv://alice:*****@db.nosuch.invalid/"},
        {"mongodb://app:s3cret@h1:1,h2:2/?replicaSet=rs0", "mongodb://app:*****@h1:1,h2:2/?replicaSet=rs0"},
        /* Unescaped '@', '/', ':' and '?' in a password still end up hidden. */
        {"mongodb://app:p@ss/w?rd@h/", "mongodb://app:*****@h/"},
        {"redis://user:pa/S3CRET@127.0.0.1:6379/0", "redis://user:*****@127.0.0.1:6379/0"},
        {"redis://:pa:ss@127.0.0.1:6379", "redis://:*****@127.0.0.1:6379"},
        {"nats://user:Nats/S3CRET@127.0.0.1:1", "nats://user:*****@127.0.0.1:1"},
        /* A list of servers is redacted server by server. */
        {"nats://a:S3CRET1@h1:4222,nats://b:S3/CRET2@h2:4222", "nats://a:*****@h1:4222,nats://b:*****@h2:4222"},
        {"nats://a:x,y@h1:4222, tls://h2:4222", "nats://a:*****@h1:4222, tls://h2:4222"},
        {"mongodb://app@h:27017/", "mongodb://app@h:27017/"},
        {"mongodb://h1:27017,h2:27018/shop", "mongodb://h1:27017,h2:27018/shop"},
        /* An '@' in the options looks like one in a password: hiding too
         * much is the safe side. */
        {"mongodb://h:27017/shop?appName=a@b", "mongodb://h:*****@b"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *r = outbox_uri_redacted(cases[i][0]);
        assert_non_null(r);
        assert_string_equal(r, cases[i][1]);
        outbox_free(r);
    }
    assert_null(outbox_uri_redacted(NULL));
}

typedef struct {
    char found[4][64];
    size_t n;
} found_t;

static void collect(const char *password, size_t len, void *ctx) {
    found_t *f = ctx;
    assert_true(f->n < 4 && len < sizeof f->found[0]);
    memcpy(f->found[f->n], password, len);
    f->found[f->n++][len] = '\0';
}

/* The passwords handed out are exactly what the redaction hides: outboxd
 * scrubs them (and libmongoc's echo of them) from every message. */
static void passwords_are_what_redaction_hides(void **state) {
    (void)state;
    found_t f = {0};
    outbox_uri_passwords("nats://a:S3CRET1@h1:4222,nats://b:S3/CR@ET2@h2:4222, nats://h3", collect, &f);
    assert_int_equal(f.n, 2);
    assert_string_equal(f.found[0], "S3CRET1");
    assert_string_equal(f.found[1], "S3/CR@ET2");
    memset(&f, 0, sizeof f);
    outbox_uri_passwords("mongodb+srv://alice:p%40ss@cluster0.example.net/", collect, &f);
    assert_int_equal(f.n, 1);
    assert_string_equal(f.found[0], "p%40ss");
    memset(&f, 0, sizeof f);
    outbox_uri_passwords("mongodb://app@h/", collect, &f);
    outbox_uri_passwords("", collect, &f);
    outbox_uri_passwords(NULL, collect, &f);
    assert_int_equal(f.n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redaction_hides_the_password_only),
        cmocka_unit_test(passwords_are_what_redaction_hides),
    };
    return TEST_RUN("redact", tests);
}
