/*
 * tcp_proxy.c - see tcp_proxy.h. One thread accepts; one thread per
 * connection copies bytes both ways with poll(). Going down shuts every
 * socket, which both peers see as a reset connection.
 */
#include "tcp_proxy.h"

#include "testlib.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 256

struct test_proxy {
    int listen_fd;
    int port;
    struct sockaddr_in target;
    pthread_t acceptor;
    pthread_mutex_t lock;
    bool down, stopping;
    atomic_bool silent; /* connections stay open, nothing is forwarded */
    int fds[MAX_CONNS * 2];
    int n_fds;
    int active; /* connection threads still running */
};

typedef struct {
    test_proxy_t *proxy;
    int a, b;
} conn_t;

static void track(test_proxy_t *p, int fd, bool add) {
    pthread_mutex_lock(&p->lock);
    if (add && p->n_fds < MAX_CONNS * 2) {
        p->fds[p->n_fds++] = fd;
    } else if (!add) {
        for (int i = 0; i < p->n_fds; i++)
            if (p->fds[i] == fd) {
                p->fds[i] = p->fds[--p->n_fds];
                break;
            }
    }
    pthread_mutex_unlock(&p->lock);
}

static void *pump(void *arg) {
    conn_t *c = arg;
    char buf[65536];
    struct pollfd pfd[2] = {{.fd = c->a, .events = POLLIN}, {.fd = c->b, .events = POLLIN}};
    for (;;) {
        if (atomic_load(&c->proxy->silent)) {
            /* Bytes wait in the kernel's buffers: neither side learns. */
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&c->proxy->lock);
            bool cut = c->proxy->down || c->proxy->stopping;
            pthread_mutex_unlock(&c->proxy->lock);
            if (cut)
                break;
            continue;
        }
        if (poll(pfd, 2, 200) < 0)
            break;
        bool done = false;
        for (int i = 0; i < 2 && !done; i++) {
            if (!pfd[i].revents)
                continue;
            ssize_t n = read(pfd[i].fd, buf, sizeof buf);
            if (n <= 0) {
                done = true;
                break;
            }
            for (ssize_t off = 0; off < n;) {
                /* MSG_NOSIGNAL: a side that went away (a shutdown while
                 * going down) is EPIPE here, not a SIGPIPE that kills the
                 * test (seen under valgrind in test_ha). */
                ssize_t w = send(pfd[1 - i].fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
                if (w <= 0) {
                    done = true;
                    break;
                }
                off += w;
            }
        }
        if (done)
            break;
    }
    track(c->proxy, c->a, false);
    track(c->proxy, c->b, false);
    close(c->a);
    close(c->b);
    pthread_mutex_lock(&c->proxy->lock);
    c->proxy->active--;
    pthread_mutex_unlock(&c->proxy->lock);
    free(c);
    return NULL;
}

static void *accept_loop(void *arg) {
    test_proxy_t *p = arg;
    for (;;) {
        int fd = accept(p->listen_fd, NULL, NULL);
        pthread_mutex_lock(&p->lock);
        bool stopping = p->stopping, down = p->down;
        pthread_mutex_unlock(&p->lock);
        if (stopping) {
            if (fd >= 0)
                close(fd);
            return NULL;
        }
        if (fd < 0)
            continue;
        if (down) {
            close(fd);
            continue;
        }
        int up = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(up, (struct sockaddr *)&p->target, sizeof p->target) != 0) {
            close(up);
            close(fd);
            continue;
        }
        conn_t *c = malloc(sizeof *c);
        *c = (conn_t){.proxy = p, .a = fd, .b = up};
        track(p, fd, true);
        track(p, up, true);
        pthread_mutex_lock(&p->lock);
        p->active++;
        pthread_mutex_unlock(&p->lock);
        pthread_t t;
        pthread_create(&t, NULL, pump, c);
        pthread_detach(t);
    }
}

test_proxy_t *test_proxy_start(const char *host, int port) {
    test_proxy_t *p = calloc(1, sizeof *p);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    pthread_mutex_init(&p->lock, NULL);
    p->target.sin_family = AF_INET;
    p->target.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &p->target.sin_addr) != 1)
        goto fail;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(p->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(p->listen_fd, 64) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&addr, &len) != 0)
        goto fail;
    p->port = ntohs(addr.sin_port);
    pthread_create(&p->acceptor, NULL, accept_loop, p);
    return p;
fail:
    free(p);
    return NULL;
}

int test_proxy_port(const test_proxy_t *p) {
    return p->port;
}

void test_proxy_set_silent(test_proxy_t *p, bool silent) {
    atomic_store(&p->silent, silent);
}

void test_proxy_set_down(test_proxy_t *p, bool down) {
    pthread_mutex_lock(&p->lock);
    p->down = down;
    if (down)
        for (int i = 0; i < p->n_fds; i++)
            shutdown(p->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&p->lock);
}

void test_proxy_stop(test_proxy_t *p) {
    if (!p)
        return;
    test_proxy_set_down(p, true);
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_mutex_unlock(&p->lock);
    /* Wake accept() with a connection of our own. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    connect(fd, (struct sockaddr *)&addr, sizeof addr);
    close(fd);
    pthread_join(p->acceptor, NULL);
    close(p->listen_fd);
    for (;;) { /* the pumps notice the shutdown within one poll interval */
        pthread_mutex_lock(&p->lock);
        int active = p->active;
        pthread_mutex_unlock(&p->lock);
        if (!active)
            break;
        usleep(10000);
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

test_proxy_t *test_proxy_to_mongodb(void) {
    bson_error_t berr;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(test_mongodb_uri(), &berr);
    if (!uri)
        fail_msg("the test server's URI: %s", berr.message);
    const mongoc_host_list_t *host = mongoc_uri_get_hosts(uri);
    test_proxy_t *proxy = test_proxy_start(host->host, host->port);
    mongoc_uri_destroy(uri);
    assert_non_null(proxy);
    return proxy;
}
