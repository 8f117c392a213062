/*
 * redis_testlib.c - see redis_testlib.h.
 */
#include "redis_testlib.h"

#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 16

/* Every server started and not yet stopped, by port: copies, since the
 * test_redis_t may live in a frame a failed assertion jumped out of. */
static struct {
    int port;
    pid_t pid;
    char dir[128];
} servers[MAX_SERVERS];

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void remember(const test_redis_t *r) {
    int free_slot = -1;
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (servers[i].port == r->port) {
            servers[i].pid = r->pid;
            return;
        }
        if (servers[i].port == 0 && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0) fail_msg("more than %d redis servers at once", MAX_SERVERS);
    servers[free_slot].port = r->port;
    servers[free_slot].pid = r->pid;
    snprintf(servers[free_slot].dir, sizeof servers[free_slot].dir, "%s", r->dir);
}

static void forget(const test_redis_t *r, int remove_dir) {
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (servers[i].port != r->port) continue;
        if (remove_dir) memset(&servers[i], 0, sizeof servers[i]);
        else servers[i].pid = 0;
    }
}

static void remove_dir(const char *dir) {
    char cmd[300];
    if (dir[0] == '\0') return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) print_message("# could not remove %s\n", dir);
}

static void kill_and_reap(pid_t pid, int sig) {
    int status;
    kill(pid, sig);
    for (int i = 0; i < 300; i++) { /* 30 s, then SIGKILL */
        if (waitpid(pid, &status, WNOHANG) == pid) return;
        sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

void test_redis_stop_all(void) {
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (servers[i].port == 0) continue;
        if (servers[i].pid > 0) kill_and_reap(servers[i].pid, SIGKILL);
        remove_dir(servers[i].dir);
        memset(&servers[i], 0, sizeof servers[i]);
    }
}

void test_redis_require(void) {
    if (system("command -v redis-server >/dev/null 2>&1") == 0) return;
    /* tests/run-all.sh installs it (scripts/deps.sh): missing there is a
     * failure, as a missing MongoDB is. */
    if (getenv("OUTBOX_TEST_REQUIRE_SERVERS"))
        fail_msg("redis-server is not installed, and OUTBOX_TEST_REQUIRE_SERVERS is set");
    TEST_SKIP("redis-server is not installed (apt-get install redis-server)");
}

int test_redis_free_port(void) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        fail_msg("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(addr.sin_port);
}

static char *log_tail(const test_redis_t *r) {
    static char text[2048];
    char path[200];
    snprintf(path, sizeof path, "%s/redis.log", r->dir);
    FILE *f = fopen(path, "r");
    text[0] = '\0';
    if (f == NULL) return text;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof text - 1 ? size - (long)sizeof text + 1 : 0, SEEK_SET);
    size_t got = fread(text, 1, sizeof text - 1, f);
    text[got] = '\0';
    fclose(f);
    return text;
}

/* The process id that the redis-server on c reports: telling ours from
 * another test's server that took the port first. */
static long server_pid(redisContext *c) {
    redisReply *reply = redisCommand(c, "INFO server");
    long pid = -1;
    const char *at = reply && reply->type == REDIS_REPLY_STRING ? strstr(reply->str, "process_id:") : NULL;
    if (at != NULL) pid = strtol(at + strlen("process_id:"), NULL, 10);
    freeReplyObject(reply);
    return pid;
}

/* Forks redis-server on r's config and waits until it answers PING (not
 * LOADING) as the process just started. Returns false when it exited
 * because its port was taken (the caller may pick another); fails the
 * test on any other exit. */
static bool launch(test_redis_t *r) {
    char conf[200];
    snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
    fflush(stdout);
    fflush(stderr);
    r->pid = fork();
    assert_true(r->pid >= 0);
    if (r->pid == 0) {
        /* Dies with the test, even one killed by a signal: no server is
         * left behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Its own log file says everything: keep the TAP stream clean. */
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execlp("redis-server", "redis-server", conf, (char *)NULL);
        _exit(127);
    }
    remember(r);
    for (int i = 0; i < 400; i++) { /* 20 s */
        int status;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            r->pid = 0;
            forget(r, 0);
            if (strstr(log_tail(r), "Address already in use") != NULL) return false;
            fail_msg("redis-server on port %d exited at start: %s", r->port, log_tail(r));
        }
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
        if (c != NULL && !c->err) {
            redisReply *reply = r->password[0] ? redisCommand(c, "AUTH %s", r->password) : NULL;
            freeReplyObject(reply);
            reply = redisCommand(c, "PING");
            int up = reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
            freeReplyObject(reply);
            /* Another test's server on this port answers too (or refuses
             * the password); ours then exits, seen above. */
            if (up) up = server_pid(c) == (long)r->pid;
            redisFree(c);
            if (up) return true;
        } else if (c != NULL) {
            redisFree(c);
        }
        sleep_ms(50);
    }
    fail_msg("redis-server on port %d did not answer within 20 s: %s", r->port, log_tail(r));
    return false;
}

static void write_conf(const test_redis_t *r) {
    char path[200];
    snprintf(path, sizeof path, "%s/redis.conf", r->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "port %d\n"
            "bind 127.0.0.1\n"
            "dir %s\n"
            "unixsocket %s\n"
            "unixsocketperm 700\n"
            "appendonly yes\n"
            "appendfsync always\n"
            "save \"\"\n"
            "daemonize no\n"
            "logfile %s/redis.log\n"
            "%s\n",
            r->port, r->dir, r->sock, r->dir, r->extra_conf);
    fclose(f);
}

void test_redis_start(test_redis_t *r, const char *extra_conf, const char *password) {
    test_redis_require();
    /* A port found free may be taken by another test's server before this
     * one binds it: then a new port, a few times. A port the test chose
     * is its to keep. */
    bool chosen_here = r->port == 0;
    snprintf(r->dir, sizeof r->dir, "/tmp/outbox-test-redis-XXXXXX");
    if (mkdtemp(r->dir) == NULL) fail_msg("mkdtemp: %s", strerror(errno));
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    snprintf(r->password, sizeof r->password, "%s", password ? password : "");
    snprintf(r->extra_conf, sizeof r->extra_conf, "%s", extra_conf ? extra_conf : "");
    for (int attempt = 0;; attempt++) {
        if (chosen_here) r->port = test_redis_free_port();
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
        write_conf(r);
        char log[200];
        snprintf(log, sizeof log, "%s/redis.log", r->dir);
        unlink(log); /* an earlier attempt's "in use" is not this one's */
        if (launch(r)) return;
        if (!chosen_here || attempt == 4)
            fail_msg("redis-server: port %d is in use: %s", r->port, log_tail(r));
    }
}

void test_redis_kill(test_redis_t *r, int sig) {
    if (r->pid > 0) kill_and_reap(r->pid, sig);
    r->pid = 0;
    forget(r, 0);
}

void test_redis_restart(test_redis_t *r) {
    assert_int_equal(r->pid, 0);
    if (!launch(r)) fail_msg("redis-server: its port %d was taken while it was down: %s", r->port, log_tail(r));
}

void test_redis_stop(test_redis_t *r) {
    if (r->port == 0) return;
    test_redis_kill(r, SIGKILL);
    forget(r, 1);
    remove_dir(r->dir);
    memset(r, 0, sizeof *r);
}

redisContext *test_redis_connect(const test_redis_t *r) {
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c == NULL || c->err)
        fail_msg("cannot connect to redis on port %d: %s", r->port, c ? c->errstr : "no memory");
    if (r->password[0]) {
        redisReply *reply = redisCommand(c, "AUTH %s", r->password);
        assert_non_null(reply);
        freeReplyObject(reply);
    }
    return c;
}

redisContext *test_redis_try_connect(const test_redis_t *r) {
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c != NULL && !c->err && r->password[0]) freeReplyObject(redisCommand(c, "AUTH %s", r->password));
    if (c != NULL && c->err) {
        redisFree(c);
        c = NULL;
    }
    return c;
}

static redisReply *vcmd(redisContext *c, const char *fmt, va_list ap) {
    redisReply *reply = redisvCommand(c, fmt, ap);
    if (reply == NULL) fail_msg("redis command \"%s\": %s", fmt, c->errstr);
    return reply;
}

redisReply *test_redis_cmd(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = vcmd(c, fmt, ap);
    va_end(ap);
    return reply;
}

long long test_redis_int(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = vcmd(c, fmt, ap);
    va_end(ap);
    if (reply->type != REDIS_REPLY_INTEGER)
        fail_msg("redis command \"%s\": expected an integer, got type %d (%s)", fmt, reply->type,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    long long value = reply->integer;
    freeReplyObject(reply);
    return value;
}

size_t test_redis_each_entry(redisContext *c, const char *stream,
                             void (*fn)(const redisReply *entry, void *arg), void *arg) {
    char start[64] = "-";
    size_t n = 0;
    for (;;) {
        redisReply *page = test_redis_cmd(c, "XRANGE %s %s + COUNT 5000", stream, start);
        if (page->type != REDIS_REPLY_ARRAY)
            fail_msg("XRANGE %s: %s", stream, page->type == REDIS_REPLY_ERROR ? page->str : "?");
        size_t got = page->elements;
        for (size_t i = 0; i < got; i++) fn(page->element[i], arg);
        n += got;
        if (got > 0) /* "(" + id: exclusive, from the last one on (Redis 6.2) */
            snprintf(start, sizeof start, "(%s", page->element[got - 1]->element[0]->str);
        freeReplyObject(page);
        if (got < 5000) return n;
    }
}

const char *test_redis_field(const redisReply *entry, const char *name, size_t *len) {
    const redisReply *fields = entry->element[1];
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (strcmp(fields->element[i]->str, name) == 0) {
            if (len) *len = fields->element[i + 1]->len;
            return fields->element[i + 1]->str;
        }
    }
    return NULL;
}

typedef struct {
    char (*ids)[25];
    size_t n, cap;
} ids_t;

static void collect_id(const redisReply *entry, void *arg) {
    ids_t *ids = arg;
    size_t len = 0;
    const char *id = test_redis_field(entry, "id", &len);
    if (id == NULL || len != 24) fail_msg("entry %s has no 24-hex id field", entry->element[0]->str);
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 1024;
        ids->ids = realloc(ids->ids, ids->cap * sizeof *ids->ids);
        assert_non_null(ids->ids);
    }
    memcpy(ids->ids[ids->n], id, 24);
    ids->ids[ids->n][24] = '\0';
    ids->n++;
}

char (*test_redis_event_ids(redisContext *c, const char *stream, size_t *n))[25] {
    ids_t ids = {NULL, 0, 0};
    test_redis_each_entry(c, stream, collect_id, &ids);
    *n = ids.n;
    return ids.ids;
}

long long test_redis_wait_len(const test_redis_t *r, const char *stream, long long n,
                              int timeout_ms) {
    long long len = 0;
    redisContext *c = NULL;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        if (c == NULL) c = test_redis_try_connect(r);
        redisReply *reply = c != NULL ? redisCommand(c, "XLEN %s", stream) : NULL;
        if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) len = reply->integer;
        if (reply == NULL && c != NULL) { /* the server restarts: connect again */
            redisFree(c);
            c = NULL;
        }
        freeReplyObject(reply);
        if (len >= n) break;
        sleep_ms(100);
    }
    if (c != NULL) redisFree(c);
    return len;
}
