/*
 * scrub.c - outboxctl's output never holds the password of the connection
 * string it was given. Every URI outboxctl prints itself goes through
 * outbox_uri_redacted(); this catches the rest: the driver's own error
 * messages, which may quote a piece of a password (a raw '@' in one makes
 * libmongoc report "Failed to resolve 'etpw@127.0.0.1'"), and its log
 * lines. stdout and stderr are replaced by streams that hold each line
 * until it is complete, scrub it with outboxd's secrets registry (the one
 * list of what a secret looks like, shared with outboxd) and write it to
 * the original file descriptor.
 */
/* fopencookie and memrchr: _GNU_SOURCE, set for the whole tree */
#include "outboxctl.h"
#include "secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int fd;
    char *line; /* the incomplete line so far */
    size_t len, cap;
} sink_t;

static sink_t out_sink, err_sink;
static FILE *out_stream, *err_stream;

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return; /* nowhere left to report it */
        p += w;
        n -= (size_t)w;
    }
}

/* Writes s[0..n) scrubbed. A mask may be longer than what it hides, so the
 * scrub gets room to grow. */
static void emit(int fd, const char *s, size_t n) {
    size_t size = 2 * n + 64;
    char *buf = malloc(size);
    if (!buf)
        return;
    memcpy(buf, s, n);
    buf[n] = '\0';
    outboxd_secrets_scrub(buf, size);
    write_all(fd, buf, strlen(buf));
    free(buf);
}

static ssize_t sink_write(void *cookie, const char *data, size_t size) {
    sink_t *s = cookie;
    if (s->len + size > s->cap) {
        size_t cap = (s->len + size) * 2;
        char *grown = realloc(s->line, cap);
        if (!grown)
            return -1;
        s->line = grown;
        s->cap = cap;
    }
    memcpy(s->line + s->len, data, size);
    s->len += size;
    char *nl = memrchr(s->line, '\n', s->len);
    if (nl) { /* every complete line: a secret never spans two */
        size_t done = (size_t)(nl + 1 - s->line);
        emit(s->fd, s->line, done);
        memmove(s->line, s->line + done, s->len - done);
        s->len -= done;
    }
    return (ssize_t)size;
}

/* At exit, before stdio's own flush: what is buffered, then the last,
 * unterminated line. */
static void flush_at_exit(void) {
    FILE *streams[] = {out_stream, err_stream};
    sink_t *sinks[] = {&out_sink, &err_sink};
    for (int i = 0; i < 2; i++) {
        if (!streams[i])
            continue;
        fflush(streams[i]);
        if (sinks[i]->len)
            emit(sinks[i]->fd, sinks[i]->line, sinks[i]->len);
        sinks[i]->len = 0;
        free(sinks[i]->line);
        sinks[i]->line = NULL;
    }
}

static FILE *scrubbing_stream(sink_t *s, int fd, int mode) {
    s->fd = fd;
    cookie_io_functions_t io = {.write = sink_write};
    FILE *f = fopencookie(s, "w", io);
    if (f)
        setvbuf(f, NULL, mode, 0);
    return f;
}

void outboxctl_scrub_output(const char *uri) {
    outboxd_secrets_add_uri(uri);
    fflush(stdout);
    fflush(stderr);
    out_stream = scrubbing_stream(&out_sink, STDOUT_FILENO, _IOFBF);
    err_stream = scrubbing_stream(&err_sink, STDERR_FILENO, _IOLBF);
    if (!out_stream || !err_stream)
        return; /* out of memory at start: keep the plain streams */
    stdout = out_stream;
    stderr = err_stream;
    atexit(flush_at_exit);
}
