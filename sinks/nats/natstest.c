/*
 * natstest.c - see natstest.h.
 */
#include "natstest.h"

#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- servers to kill at exit ---------------------------------------------- */

#define MAX_SERVERS 16
static pid_t running[MAX_SERVERS];

static void kill_leftovers(void) {
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (running[i] > 0) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
    }
}

static void remember(pid_t pid) {
    static int registered;
    if (!registered) {
        atexit(kill_leftovers);
        registered = 1;
    }
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (running[i] == 0) {
            running[i] = pid;
            return;
        }
    }
}

static void forget(pid_t pid) {
    for (int i = 0; i < MAX_SERVERS; i++)
        if (running[i] == pid) running[i] = 0;
}

/* ---- the server -------------------------------------------------------------- */

const char *natstest_server_binary(void) {
    static char found[600];
    const char *env = getenv("OUTBOX_TEST_NATS_SERVER");
    if (env && env[0]) return access(env, X_OK) == 0 ? env : NULL;
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/local/sbin:/usr/local/bin", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/nats-server", dir);
        if (access(found, X_OK) == 0) return found;
    }
    return NULL;
}

void natstest_require_server(void) {
    if (natstest_server_binary() == NULL) {
        if (getenv("OUTBOX_TEST_REQUIRE_SERVERS"))
            fail_msg("no nats-server, and OUTBOX_TEST_REQUIRE_SERVERS is set");
        TEST_SKIP("no nats-server program (apt install nats-server, or set OUTBOX_TEST_NATS_SERVER)");
    }
}

int natstest_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* True when the server at url takes a connection and, if jetstream, when
 * JetStream answers an account info request. */
static bool server_answers(const char *url, int jetstream) {
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    bool ok = false;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url);
    natsOptions_SetTimeout(o, 500);
    natsOptions_SetAllowReconnect(o, false);
    natsStatus st = natsConnection_Connect(&nc, o);
    if (st == NATS_OK)
        ok = !jetstream || (natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
                            js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK);
    else
        ok = !jetstream && st != NATS_NO_SERVER; /* it speaks NATS, and wants credentials */
    jsAccountInfo_Destroy(ai);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return ok;
}

void natstest_server_start(natstest_server_t *srv, const char *dir, int port) {
    natstest_server_start_with(srv, dir, port, 1, NULL);
}

/* The client port the server with this pid chose for "-p -1": nats-server
 * writes {"nats":["nats://127.0.0.1:PORT"], ...} to
 * dir/<program>_<pid>.ports once it listens. 0 while there is no such file
 * yet. */
static int chosen_port(const char *dir, const char *exe, pid_t pid) {
    char path[800];
    const char *name = strrchr(exe, '/');
    snprintf(path, sizeof path, "%s/%s_%ld.ports", dir, name ? name + 1 : exe, (long)pid);
    char *text = test_read_file(path);
    if (text == NULL) return 0;
    int port = 0;
    const char *url = strstr(text, "\"nats\"");
    const char *host = url ? strstr(url, "://") : NULL;
    const char *colon = host ? strchr(host + 3, ':') : NULL; /* 127.0.0.1:PORT */
    if (colon != NULL) port = atoi(colon + 1);
    free(text);
    if (port > 0) unlink(path);
    return port;
}

void natstest_server_start_with(natstest_server_t *srv, const char *dir, int port, int jetstream,
                                const char *const *extra) {
    const char *exe = natstest_server_binary();
    const char *argv[32];
    int argc = 0;
    char port_arg[16];
    assert_non_null(exe);
    if (port == 0) port = srv->port;
    /* A first start lets the server choose its port ("-p -1") and tell it
     * through a ports file. A port found free by a probe and handed over
     * could be taken by another test's server in between, and this test
     * would then talk to that one. A restart takes the port back. */
    bool choose = port == 0;
    snprintf(port_arg, sizeof port_arg, "%d", choose ? -1 : port);
    snprintf(srv->store, sizeof srv->store, "%s/store", dir);
    mkdir(srv->store, 0755);

    fflush(stdout);
    srv->pid = fork();
    assert_true(srv->pid >= 0);
    if (srv->pid == 0) {
#ifdef __linux__
        /* Should the test itself crash, its servers go with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        char log[600];
        snprintf(log, sizeof log, "%s/nats-%ld.log", dir, (long)getpid());
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        argv[argc++] = exe;
        argv[argc++] = "-a";
        argv[argc++] = "127.0.0.1";
        argv[argc++] = "-p";
        argv[argc++] = port_arg;
        if (choose) {
            argv[argc++] = "--ports_file_dir";
            argv[argc++] = dir;
        }
        if (jetstream) {
            argv[argc++] = "-js";
            argv[argc++] = "-sd";
            argv[argc++] = srv->store;
        }
        for (int i = 0; extra && extra[i] && argc < 31; i++) argv[argc++] = extra[i];
        argv[argc] = NULL;
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    remember(srv->pid);
    snprintf(srv->log, sizeof srv->log, "%s/nats-%ld.log", dir, (long)srv->pid);
    for (int i = 0; i < 300; i++) { /* 15 s: recovering a store takes a moment */
        if (choose && port == 0) port = chosen_port(dir, exe, srv->pid);
        if (port != 0) {
            srv->port = port;
            snprintf(srv->url, sizeof srv->url, "nats://127.0.0.1:%d", port);
            if (server_answers(srv->url, jetstream)) return;
        }
        int status;
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
            forget(srv->pid);
            srv->pid = 0;
            char *log = test_read_file(srv->log);
            fail_msg("nats-server exited at start (status %d): %s", status, log ? log : "(no log)");
        }
        nap_ms(50);
    }
    fail_msg("nats-server (port %d) did not answer within 15 s (log %s)", port, srv->log);
}

void natstest_server_stop(natstest_server_t *srv, int sig) {
    if (srv->pid <= 0) return;
    kill(srv->pid, sig);
    for (int i = 0; i < 200; i++) { /* 20 s */
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) {
            forget(srv->pid);
            srv->pid = 0;
            return;
        }
        nap_ms(100);
    }
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    forget(srv->pid);
    srv->pid = 0;
}

/* ---- JetStream ------------------------------------------------------------------ */

natsConnection *natstest_connect(const char *url, jsCtx **js) {
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url);
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 100);
    natsStatus st = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    if (st != NATS_OK) fail_msg("connect to %s: %s", url, natsStatus_GetText(st));
    if (js != NULL && (st = natsConnection_JetStream(js, nc, NULL)) != NATS_OK)
        fail_msg("JetStream context: %s", natsStatus_GetText(st));
    return nc;
}

void natstest_disconnect(natsConnection *nc, jsCtx *js) {
    if (js) jsCtx_Destroy(js);
    if (nc) natsConnection_Destroy(nc);
}

void natstest_add_stream(jsCtx *js, const char *name, const char *subjects, int dup_window_s) {
    char copy[512], *list[16];
    int n = 0;
    snprintf(copy, sizeof copy, "%s", subjects);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
        list[n++] = t;
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = (const char **)list;
    cfg.SubjectsLen = n;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = (int64_t)dup_window_s * 1000000000;
    natsStatus st = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (st != NATS_OK) fail_msg("add stream %s: %s (%d)", name, natsStatus_GetText(st), (int)jerr);
    jsStreamInfo_Destroy(si);
}

int64_t natstest_stream_count(jsCtx *js, const char *stream) {
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, js, stream, NULL, NULL) != NATS_OK) return -1;
    int64_t n = (int64_t)si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

int64_t natstest_wait_count(jsCtx *js, const char *stream, int64_t n, int timeout_ms) {
    int64_t seen = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if ((seen = natstest_stream_count(js, stream)) >= n) return seen;
        nap_ms(50);
    }
    return seen;
}

int64_t natstest_read_stream(jsCtx *js, const char *stream, const char *subject, natstest_msg_fn fn,
                             void *arg) {
    int64_t total = natstest_stream_count(js, stream);
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    int64_t n = 0;

    if (total < 0) fail_msg("stream %s cannot be read", stream);
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Config.AckPolicy = js_AckNone;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsStatus st = js_PullSubscribe(&sub, js, subject, NULL, NULL, &so, &jerr);
    if (st != NATS_OK) fail_msg("pull subscribe to %s: %s (%d)", stream, natsStatus_GetText(st), (int)jerr);
    while (n < total) {
        natsMsgList list = {0};
        st = natsSubscription_Fetch(&list, sub, 1000, 5000, &jerr);
        if (st != NATS_OK) {
            natsMsgList_Destroy(&list);
            fail_msg("fetch from %s after %lld of %lld: %s", stream, (long long)n, (long long)total,
                     natsStatus_GetText(st));
        }
        for (int i = 0; i < list.Count; i++) {
            fn(list.Msgs[i], arg);
            n++;
        }
        natsMsgList_Destroy(&list);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return n;
}

int natstest_ordernr(natsMsg *msg) {
    bson_error_t berr;
    bson_iter_t it;
    int len = natsMsg_GetDataLength(msg);
    bson_t *doc = bson_new_from_json((const uint8_t *)natsMsg_GetData(msg), len, &berr);
    int nr = -1;
    if (doc && bson_iter_init_find(&it, doc, "ordernr")) nr = (int)bson_iter_as_int64(&it);
    bson_destroy(doc);
    return nr;
}

const char *natstest_header(natsMsg *msg, const char *name) {
    const char *value = NULL;
    if (natsMsgHeader_Get(msg, name, &value) != NATS_OK || value == NULL) return "";
    return value;
}
