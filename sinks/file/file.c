/*
 * file.c - the file sink: each event becomes one JSON line appended to the
 * file its route names (sinks/file/README.md has the line format, the
 * options and the delivery guarantee).
 *
 * It is also the reference plugin, the one to copy when writing a sink. It
 * uses nothing but <outbox/sink.h> and libc, and shows the whole shape of
 * sink ABI 1.1:
 *
 *  - an option table mapped onto a config struct (OUTBOX_SINK_OPTION_AT):
 *    outboxd parses, range-checks and defaults every value and writes it
 *    there (host->options_fill), so the sink parses no string itself;
 *  - one parser, file_parse(), shared by check (outboxd --check, and a
 *    reload before anything running is stopped) and open, which checks
 *    what the table cannot say (file_mode's octal digits, the route);
 *  - payloads: JSON only, so outboxd refuses `payload: bson` for this sink
 *    when it loads the config, instead of every event failing at run time;
 *  - stats: a few figures for outboxd's metrics endpoint.
 *
 * And the three outcomes every sink deals with:
 *
 *  - OK: the event is where it belongs; ack it with OUTBOX_SINK_OK.
 *  - A transient failure (disk full, directory missing, read-only mount):
 *    publish returns OUTBOX_SINK_RETRY without acking what it could not
 *    write, and outboxd publishes those events again after a backoff.
 *  - A permanent failure of one event (its destination would leave the
 *    route's directory): ack that event with OUTBOX_SINK_FATAL and go on;
 *    the sink's on_error policy decides what happens to it.
 *
 * The sink acks every event before publish returns, so it needs neither
 * poll nor flush. It keeps no global mutable state: everything lives in the
 * file_sink_t that open returns, so several instances can run at once, each
 * in its own thread.
 *
 * Two rules keep the files clean: a line is written with exactly one
 * write() on an O_APPEND descriptor, and whenever something fails on a file
 * (a short write, a failed fsync) the file is cut back to the size it had
 * after its last acked line. A file therefore only ever holds whole lines,
 * and a retried event does not end up in it twice. Both rules assume the
 * sink is the only writer of its files.
 *
 * And one rule keeps them where they belong: a destination must stay beneath
 * its route's fixed directory (the route's text before its first {type} or
 * {key}, up to its last '/'). An event whose {type} or {key} value would
 * lead elsewhere (a '/', "..", an empty value), or whose path beneath that
 * directory goes through a symbolic link, is acked FATAL, naming the event
 * and the destination. Event values come from whoever can write to the
 * outbox, so they are never trusted with the file system.
 */
/* openat2 (syscall), O_PATH and the rest of POSIX 2008, whatever -std says. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <outbox/sink.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#if defined(SYS_openat2) && defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define FILE_SINK_HAVE_OPENAT2 1
#endif
#endif
#endif

/* ----------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

/* The options as host->options_fill writes them: each member has the C
 * type sink.h gives for its option type. */
typedef struct {
    const char *fsync;      /* ENUM: one of the choices */
    int mkdir;              /* BOOL */
    const char *file_mode;  /* STRING: octal digits, checked by file_parse */
    int64_t max_open_files; /* INT, within min..max */
} file_config_t;

/* outboxd checks the config against this table before check and open
 * (types, ranges, enum words), fills in the defaults, writes each value
 * into a file_config_t and prints the table for `outboxd --plugin-help
 * file`. */
static const outbox_sink_option_t file_options[] = {
    {.key = "fsync",
     .type = OUTBOX_SINK_OPT_ENUM,
     .default_value = "batch",
     .choices = "always|batch|never",
     OUTBOX_SINK_OPTION_AT(file_config_t, fsync),
     .help = "always: fsync each line before acking it; batch: fsync each file "
             "once per publish call, then ack; never: ack after write(), the OS "
             "writes back when it likes"},
    {.key = "mkdir",
     .type = OUTBOX_SINK_OPT_BOOL,
     .default_value = "true",
     OUTBOX_SINK_OPTION_AT(file_config_t, mkdir),
     .help = "create missing parent directories (mode 0755, minus the umask)"},
    {.key = "file_mode",
     .type = OUTBOX_SINK_OPT_STRING,
     .default_value = "0644",
     OUTBOX_SINK_OPTION_AT(file_config_t, file_mode),
     .help = "octal permission bits of created files (minus the umask)"},
    {.key = "max_open_files",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "64",
     .min = 1,
     .max = 1024,
     OUTBOX_SINK_OPTION_AT(file_config_t, max_open_files),
     .help = "files kept open; beyond this the least recently used is closed"},
    OUTBOX_SINK_OPTION_END};

/* fsync's choices, in this order. */
typedef enum { FSYNC_ALWAYS, FSYNC_BATCH, FSYNC_NEVER } fsync_policy_t;
static const char *const fsync_words[] = {"always", "batch", "never"};

/* Octal digits only ("0644", "600"), at most 07777. Parsed by hand because
 * strtol would also take signs, spaces and "0x". */
static int parse_mode(const char *value, mode_t *mode) {
    unsigned long m = 0;
    if (*value == '\0') return -1;
    for (const char *p = value; *p != '\0'; p++) {
        if (*p < '0' || *p > '7') return -1;
        m = m * 8 + (unsigned long)(*p - '0');
        if (m > 07777) return -1;
    }
    *mode = (mode_t)m;
    return 0;
}

/* ----------------------------------------------------------------------------
 * Formatting a line
 * ------------------------------------------------------------------------- */

/* The line being built: one buffer, reused for every event, and the last
 * second format_line turned into text. Building the line and its write()
 * are all the sink spends per event (bench/bench_sink against
 * bench/bench_raw measures it), so a line goes into room reserved once for
 * its longest possible form: no capacity check per byte, no printf. */
typedef struct {
    char *data;
    size_t len, cap;
    /* Events come in batches created close together, mostly within one
     * second, so the date and time up to the seconds are kept from one
     * line to the next and only the milliseconds are written anew. */
    int time_state; /* 0: nothing kept; 1: time_text holds time_sec; -1:
                       time_sec is outside what ISO-8601 text can say */
    int64_t time_sec;
    char time_text[OUTBOX_SINK_TIME_SIZE];
} line_t;

/* *total += len * mult + extra; -1 when that does not fit a size_t. */
static int bound_add(size_t *total, size_t len, size_t mult, size_t extra) {
    size_t room = SIZE_MAX - *total;
    if (extra > room || len > (room - extra) / mult) return -1;
    *total += len * mult + extra;
    return 0;
}

/* The most bytes json_string writes for len bytes of text: each byte
 * becomes at most six ("\u001f", "\ufffd"), and the two quotes. */
static int bound_string(size_t *total, size_t len) { return bound_add(total, len, 6, 2); }

/* Copies a string literal to o and moves o past it. */
#define PUT_LITERAL(o, literal)                        \
    do {                                               \
        memcpy((o), (literal), sizeof(literal) - 1);   \
        (o) += sizeof(literal) - 1;                    \
    } while (0)

/* A byte that stands for itself in a JSON string: printable ASCII other
 * than the quote and the backslash. */
#define JSON_PLAIN(c) ((c) >= 0x20 && (c) < 0x80 && (c) != '"' && (c) != '\\')

/* Whether the 8 bytes at s all stand for themselves (JSON_PLAIN), tested
 * on one 64-bit word at a time: no byte from 0x80 up, and then, as in
 * "determine if a word has a byte less than n" (Bit Twiddling Hacks), no
 * byte below 0x20 and none equal to '"' or '\\' (equal: x ^ c is zero).
 * Subtracting per byte sets a byte's high bit when it is below the
 * subtrahend; a borrow only spreads upwards from such a byte, so the
 * answer is exact. This scans a line's strings in well under half the
 * instructions of a loop over single bytes. */
static int json_plain8(const unsigned char *s) {
    const uint64_t ones = 0x0101010101010101u, highs = ones * 0x80;
    uint64_t v;
    memcpy(&v, s, 8);
    if ((v & highs) != 0) return 0;
    uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
    return (((v - ones * 0x20) | (quote - ones) | (backslash - ones)) & highs) == 0;
}

/* Writes the len bytes of str at o as a JSON string (room for
 * bound_string's count is there) and returns the end. Runs of plain bytes
 * are copied as they are; quotes and backslashes get a backslash, control
 * characters become \u00XX, valid UTF-8 passes through, and each byte that
 * is not part of valid UTF-8 becomes \ufffd (the replacement character):
 * every line must be valid JSON, whatever bytes an event carries. str is
 * NUL-terminated at len, which stops outbox_sink_utf8_len there. */
static char *json_string(char *o, const char *str, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str, *end = s + len;

    *o++ = '"';
    for (;;) {
        const unsigned char *run = s;
        while (end - s >= 8 && json_plain8(s)) s += 8;
        while (s < end && JSON_PLAIN(*s)) s++;
        memcpy(o, run, (size_t)(s - run));
        o += s - run;
        if (s == end) break;
        if (*s == '"' || *s == '\\') {
            *o++ = '\\';
            *o++ = (char)*s++;
        } else if (*s < 0x20) {
            PUT_LITERAL(o, "\\u00");
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 0xF];
            s++;
        } else {
            size_t n = outbox_sink_utf8_len(s);
            if (n == 0) {
                PUT_LITERAL(o, "\\ufffd");
                s++;
            } else {
                memcpy(o, s, n);
                o += n;
                s += n;
            }
        }
    }
    *o++ = '"';
    return o;
}

/* Writes ev's creation time at o as a JSON string, or null when it is
 * outside the years 0000..9999, and returns the end (26 bytes at most). */
static char *json_created(char *o, line_t *line, int64_t ms) {
    int64_t sec = ms / 1000, milli = ms % 1000;
    if (milli < 0) { /* floor, as outbox_sink_format_time: -1 ms is .999 of the second before */
        milli += 1000;
        sec -= 1;
    }
    if (line->time_state == 0 || line->time_sec != sec) {
        line->time_state = outbox_sink_format_time(ms, line->time_text) == 0 ? 1 : -1;
        line->time_sec = sec;
    }
    if (line->time_state < 0) {
        PUT_LITERAL(o, "null");
        return o;
    }
    /* "2026-11-26T18:45:25." from the second, then the milliseconds. */
    *o++ = '"';
    memcpy(o, line->time_text, 20);
    o += 20;
    *o++ = (char)('0' + milli / 100);
    *o++ = (char)('0' + milli / 10 % 10);
    *o++ = (char)('0' + milli % 10);
    PUT_LITERAL(o, "Z\"");
    return o;
}

/* Replaces each CR and LF of the n bytes at p with a space. */
static void blank_line_breaks(char *p, size_t n) {
    char *end = p + n;
    for (char *q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL;) *q++ = ' ';
    for (char *q = p; (q = memchr(q, '\r', (size_t)(end - q))) != NULL;) *q++ = ' ';
}

/* Builds the event's line, "\n" included, in line. Returns -1 when out of
 * memory. */
/* as_given (a format other than native, sink.h): the message outboxd laid
 * out, as {"headers":{NAME:VALUE,...},"payload":BODY} (a file has no
 * headers of its own: the same shape as the Redis sink's fields). */
static int format_line(line_t *line, const outbox_sink_event_t *ev, int as_given) {
    size_t id_len = strlen(ev->id), type_len = strlen(ev->type),
           key_len = ev->key != NULL ? strlen(ev->key) : 0,
           dest_len = strlen(ev->destination);

    /* Room for the longest line these values can make: the keys, braces,
     * commas, created and "\n" take under 128 bytes, the strings at most
     * bound_string's, the payload its own length. */
    size_t bound = 128;
    int too_big = bound_string(&bound, id_len) || bound_string(&bound, type_len) ||
                  bound_string(&bound, key_len) || bound_string(&bound, dest_len) ||
                  bound_add(&bound, ev->payload_len, 1, 0);
    for (size_t i = 0; i < ev->n_headers && !too_big; i++) {
        too_big = bound_string(&bound, strlen(ev->headers[i].name)) ||
                  bound_string(&bound, strlen(ev->headers[i].value)) ||
                  bound_add(&bound, 0, 1, 2); /* the ',' before it and the ':' */
    }
    if (too_big) return -1;
    if (bound > line->cap) {
        char *data = realloc(line->data, bound);
        if (data == NULL) return -1;
        line->data = data;
        line->cap = bound;
    }

    char *o = line->data;
    if (as_given) {
        PUT_LITERAL(o, "{\"headers\":{");
        for (size_t i = 0; i < ev->n_headers; i++) {
            if (i > 0) *o++ = ',';
            o = json_string(o, ev->headers[i].name, strlen(ev->headers[i].name));
            *o++ = ':';
            o = json_string(o, ev->headers[i].value, strlen(ev->headers[i].value));
        }
        PUT_LITERAL(o, "},\"payload\":");
        if (ev->payload_len > 0) {
            memcpy(o, ev->payload, ev->payload_len);
            blank_line_breaks(o, ev->payload_len);
            o += ev->payload_len;
        }
        PUT_LITERAL(o, "}\n");
        line->len = (size_t)(o - line->data);
        return 0;
    }
    PUT_LITERAL(o, "{\"id\":");
    o = json_string(o, ev->id, id_len);
    PUT_LITERAL(o, ",\"type\":");
    o = json_string(o, ev->type, type_len);
    PUT_LITERAL(o, ",\"key\":");
    if (ev->key != NULL)
        o = json_string(o, ev->key, key_len);
    else
        PUT_LITERAL(o, "null");
    PUT_LITERAL(o, ",\"created\":");
    o = json_created(o, line, ev->created_ms);
    PUT_LITERAL(o, ",\"destination\":");
    o = json_string(o, ev->destination, dest_len);

    /* The payload is JSON text already, so it goes in as it is, except that
     * CR and LF become spaces. Valid JSON only has them as whitespace
     * between tokens (inside strings they must be escaped), so this changes
     * nothing for a JSON reader, but it keeps one event on one line even if
     * a payload was pretty-printed. */
    PUT_LITERAL(o, ",\"data\":");
    if (ev->payload_len > 0) { /* memcpy's pointers must be valid even for 0 bytes */
        memcpy(o, ev->payload, ev->payload_len);
        blank_line_breaks(o, ev->payload_len);
        o += ev->payload_len;
    }

    PUT_LITERAL(o, ",\"headers\":{");
    for (size_t i = 0; i < ev->n_headers; i++) {
        if (i > 0) *o++ = ',';
        o = json_string(o, ev->headers[i].name, strlen(ev->headers[i].name));
        *o++ = ':';
        o = json_string(o, ev->headers[i].value, strlen(ev->headers[i].value));
    }
    PUT_LITERAL(o, "}}\n");
    line->len = (size_t)(o - line->data);
    return 0;
}

/* ----------------------------------------------------------------------------
 * The sink instance and its open files
 * ------------------------------------------------------------------------- */

/* One open file. The files live in a fixed array of max_open_files slots,
 * so pointers to them stay valid while the sink is open. */
typedef struct {
    char *path;         /* NULL when the slot is free */
    int fd;
    int dirty;          /* fsync=batch: lines written but not yet fsynced/acked */
    off_t clean_size;   /* the size after the last acked line: where to cut back to */
    uint64_t last_used; /* file_sink_t.clock when last used: the LRU order */
} open_file_t;

/* fsync=batch: an event whose line is written, waiting for its file's
 * fsync before it is acked. */
typedef struct {
    uint64_t seq;
    open_file_t *file;
} pending_t;

typedef struct {
    const outbox_sink_host_t *host;
    int as_given; /* host->message_as_given (ABI 1.2): events go as outboxd laid them out */
    /* Set by file_parse, from the options and the route. */
    fsync_policy_t fsync_policy;
    int make_dirs;
    mode_t file_mode;
    size_t max_open;
    char *route_dir;    /* the route's fixed directory, ending in '/' ("" = the
                           working directory) */
    size_t route_dir_len;
    int route_has_type, route_has_key; /* the route uses {type}, {key} */
    /* The instance. */
    open_file_t *files; /* max_open slots */
    uint64_t clock;     /* counts file uses, for the LRU order */
    open_file_t *last;  /* the slot the last event went to (its path may have
                           changed or gone since): most events go where the
                           one before went, and this spares the scan of the
                           slots */
    line_t line;        /* the line being written, reused for every event */
    pending_t *pending; /* fsync=batch only */
    size_t n_pending, pending_cap;
    uint64_t n_written, n_refused, n_failures; /* for stats */
} file_sink_t;

/* A note on strerror(): POSIX does not promise it is thread-safe, but glibc
 * and musl return constant strings for known errors, which is safe from
 * several sink threads. strerror_r would be the portable choice, but it
 * exists in two incompatible variants (XSI and GNU) selected by feature
 * macros, which is more trouble than it is worth in an example. */

static void ack(file_sink_t *s, uint64_t seq, outbox_sink_status_t status, const char *error) {
    if (status == OUTBOX_SINK_OK) s->n_written++;
    else s->n_refused++;
    s->host->ack(s->host->ctx, seq, status, error);
}

static void file_close(open_file_t *f) {
    /* Nothing useful to do if close fails: unless fsync=never, everything
     * acked has been fsynced already, and the rest is not acked. */
    close(f->fd);
    free(f->path);
    f->path = NULL;
    f->fd = -1;
    f->dirty = 0;
}

/* Something failed on f: put the file back as it was after its last acked
 * line, forget the events waiting for its fsync (they stay unacked, so
 * outboxd publishes them again) and close it. Closing matters: the next
 * publish then opens the path afresh, so once the problem is fixed (the
 * directory made writable, space freed) writing simply works again, and no
 * descriptor that has seen an error is reused. */
static void file_fail(file_sink_t *s, open_file_t *f) {
    /* Why cut back: a short write leaves part of a line at the end of the
     * file, and the next line would be glued onto it, leaving a broken line
     * in the middle of the file. Lines written but not acked would be
     * written again by the retry, twice in the file. */
    if (ftruncate(f->fd, f->clean_size) != 0) {
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_ERROR,
                     "cannot cut %s back to %lld bytes after an error (%s): it may end with a "
                     "partial or repeated line",
                     f->path, (long long)f->clean_size, strerror(errno));
    }
    size_t kept = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        if (s->pending[i].file != f) s->pending[kept++] = s->pending[i];
    }
    s->n_pending = kept;
    file_close(f);
}

/* fsync=batch: makes the lines written to f durable, then acks their
 * events. If fsync fails, they are not acked and the file is cut back:
 * after a failed fsync the kernel may have dropped the unwritten pages and
 * cleared the error, so a later fsync could "succeed" without the lines
 * being on disk; writing them again is the only safe course. */
static int file_sync(file_sink_t *s, open_file_t *f, char *errbuf, size_t errbuf_size) {
    if (fsync(f->fd) != 0) {
        snprintf(errbuf, errbuf_size, "file sink: cannot fsync %s: %s", f->path, strerror(errno));
        file_fail(s, f);
        return -1;
    }
    size_t kept = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        if (s->pending[i].file == f)
            ack(s, s->pending[i].seq, OUTBOX_SINK_OK, NULL);
        else
            s->pending[kept++] = s->pending[i];
    }
    s->n_pending = kept;
    f->dirty = 0;
    return 0;
}

/* Creates the missing directories of dir (the route's fixed directory,
 * which the administrator chose, so links in it are followed), like `mkdir
 * -p`, each with mode 0755 (minus the umask). dir ends with '/', and is cut
 * after each slash in turn (/a, then /a/b, ...) and mended again; the
 * leading slash is the root, which exists. path is the destination, for
 * the message. */
static int make_route_dir(char *dir, const char *path, char *errbuf, size_t errbuf_size) {
    for (char *p = dir; *p != '\0'; p++) {
        if (*p != '/' || p == dir) continue;
        *p = '\0';
        int failed = mkdir(dir, 0755) != 0 && errno != EEXIST;
        if (failed)
            snprintf(errbuf, errbuf_size, "file sink: cannot create directory %s for %s: %s", dir,
                     path, strerror(errno));
        *p = '/';
        if (failed) return -1;
    }
    return 0;
}

/* Opens rel (checked: no empty, "." or ".." component) beneath the
 * directory root_fd, creating its missing directories when make_dirs is
 * set, and following no symbolic link on the way: the last component, the
 * folders between, none. Returns the descriptor, or -1 with errno set;
 * *link_found is set when the reason is a symbolic link (or, for openat2,
 * any attempt to leave root_fd), which no retry can mend. */
static int open_beneath(int root_fd, const char *rel, int flags, mode_t mode, int make_dirs,
                        int *link_found) {
    *link_found = 0;
#ifdef FILE_SINK_HAVE_OPENAT2
    /* One call where the kernel has it (Linux 5.6): it refuses every link
     * and every way out of root_fd, atomically. */
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.mode = (uint64_t)mode;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    if (fd >= 0) return fd;
    if (errno == ELOOP || errno == EXDEV) {
        *link_found = 1;
        return -1;
    }
    /* ENOSYS: an older kernel; EPERM: a seccomp filter that does not know
     * it. Both, and ENOENT with directories to make, take the walk below. */
    if (errno != ENOSYS && errno != EPERM && !(errno == ENOENT && make_dirs)) return -1;
#endif
    /* One component at a time, each opened with O_NOFOLLOW relative to the
     * one before. */
    char *copy = strdup(rel);
    if (copy == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int dir_fd = root_fd, result = -1;
    char *name = copy;
    for (char *slash; (slash = strchr(name, '/')) != NULL; name = slash + 1) {
        *slash = '\0';
        int next = openat(dir_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && make_dirs) {
            if (mkdirat(dir_fd, name, 0755) != 0 && errno != EEXIST) goto done;
            next = openat(dir_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            int saved = errno;
            struct stat st;
            if ((saved == ELOOP || saved == ENOTDIR) &&
                fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                *link_found = 1;
            errno = saved;
            goto done;
        }
        if (dir_fd != root_fd) close(dir_fd);
        dir_fd = next;
    }
    result = openat(dir_fd, name, flags | O_NOFOLLOW, mode);
    if (result < 0 && errno == ELOOP) *link_found = 1;
done:;
    int saved = errno;
    if (dir_fd != root_fd) close(dir_fd);
    free(copy);
    errno = saved;
    return result;
}

/* Returns a free slot: an unused one, or else the least recently used
 * file's, closed first (after the fsync its pending events wait for).
 * NULL when that fsync fails. A linear scan is fine: there are at most 1024
 * slots, and it is far cheaper than the write() that follows. */
static open_file_t *file_free_slot(file_sink_t *s, char *errbuf, size_t errbuf_size) {
    open_file_t *lru = &s->files[0];
    for (size_t i = 0; i < s->max_open; i++) {
        if (s->files[i].path == NULL) return &s->files[i];
        if (s->files[i].last_used < lru->last_used) lru = &s->files[i];
    }
    if (lru->dirty && file_sync(s, lru, errbuf, errbuf_size) != 0) return NULL;
    file_close(lru);
    return lru;
}

/* Returns the open file for path, opening it (and creating its directories,
 * if mkdir is on) when needed: it starts with the route's fixed directory,
 * and the rest is opened beneath it (check_destination has checked both).
 * NULL on failure, with errbuf set, and *refused set when the failure is
 * for good (a symbolic link on the way). */
static open_file_t *file_get(file_sink_t *s, const char *path, int *refused, char *errbuf,
                             size_t errbuf_size) {
    *refused = 0;
    if (s->last != NULL && s->last->path != NULL && strcmp(s->last->path, path) == 0) {
        s->last->last_used = ++s->clock;
        return s->last;
    }
    for (size_t i = 0; i < s->max_open; i++) {
        open_file_t *f = &s->files[i];
        if (f->path != NULL && strcmp(f->path, path) == 0) {
            f->last_used = ++s->clock;
            return s->last = f;
        }
    }

    open_file_t *f = file_free_slot(s, errbuf, errbuf_size);
    if (f == NULL) return NULL;

    /* The fixed directory is opened afresh for each file the sink opens,
     * so that one created, moved or remounted meanwhile is the one used. */
    char *path_copy = strdup(path);
    if (path_copy == NULL) {
        snprintf(errbuf, errbuf_size, "file sink: out of memory");
        return NULL;
    }
    char *dir = s->route_dir;
    const char *dir_name = dir[0] != '\0' ? dir : ".";
    int dir_fd = open(dir_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 && errno == ENOENT && s->make_dirs) {
        if (make_route_dir(dir, path, errbuf, errbuf_size) == 0)
            dir_fd = open(dir_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
        else
            errno = 0;
    }
    if (dir_fd < 0) {
        if (errno != 0)
            snprintf(errbuf, errbuf_size, "file sink: cannot open directory %s for %s: %s", dir_name,
                     path, strerror(errno));
        free(path_copy);
        return NULL;
    }

    /* O_APPEND: every write() goes to the end of the file, as one piece. */
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
    int link_found;
    int fd = open_beneath(dir_fd, path + s->route_dir_len, flags, s->file_mode, s->make_dirs,
                          &link_found);
    int saved = errno;
    close(dir_fd);
    if (fd < 0) {
        if (link_found) {
            *refused = 1;
            snprintf(errbuf, errbuf_size,
                     "it goes through a symbolic link beneath %s (the sink follows none there)",
                     dir_name);
        } else {
            snprintf(errbuf, errbuf_size, "file sink: cannot open %s: %s", path, strerror(saved));
        }
        free(path_copy);
        return NULL;
    }
    f->path = path_copy;
    f->fd = fd;
    f->dirty = 0;
    f->last_used = ++s->clock;
    return s->last = f;
}

/* Appends the line in s->line to f with a single write() and, for
 * fsync=always, fsyncs it. On failure the file is cut back and closed
 * (file_fail) and -1 is returned with errbuf set.
 *
 * Why one write(): with O_APPEND the kernel places the whole buffer at the
 * end of the file in one go, so a line is never interleaved with other
 * output. A short write (the disk filled up, the file hit its size limit)
 * is not completed with a second write(): that one would most likely fail
 * the same way, and we would have to cut the fragment off anyway. */
static int file_write_line(file_sink_t *s, open_file_t *f, char *errbuf, size_t errbuf_size) {
    struct stat st;

    /* The size before this line: where to cut back to if it fails. For
     * fsync=batch, the size before the first line of the batch, since the
     * earlier lines are not acked yet either: asked once per batch, not
     * per line (an fstat per line held the sink at 0.5 x a bare write()
     * loop, once per batch 0.75 x; bench/bench_sink). Nothing of the
     * batch is written yet, so a failure only closes the file. */
    if (!f->dirty) {
        if (fstat(f->fd, &st) != 0) {
            snprintf(errbuf, errbuf_size, "file sink: cannot stat %s: %s", f->path, strerror(errno));
            file_close(f);
            return -1;
        }
        f->clean_size = st.st_size;
    }

    ssize_t written = write(f->fd, s->line.data, s->line.len);
    if (written < 0) {
        snprintf(errbuf, errbuf_size, "file sink: cannot write to %s: %s", f->path,
                 strerror(errno));
        file_fail(s, f);
        return -1;
    }
    if ((size_t)written != s->line.len) {
        snprintf(errbuf, errbuf_size,
                 "file sink: cannot write to %s: short write (%zd of %zu bytes; disk full or "
                 "file size limit?)",
                 f->path, written, s->line.len);
        file_fail(s, f);
        return -1;
    }
    if (s->fsync_policy == FSYNC_ALWAYS && fsync(f->fd) != 0) {
        snprintf(errbuf, errbuf_size, "file sink: cannot fsync %s: %s", f->path, strerror(errno));
        file_fail(s, f);
        return -1;
    }
    return 0;
}

/* Why value (of a placeholder the route uses) cannot be part of a path, or
 * NULL when it can: it must be one non-empty path component. */
static const char *bad_value(const char *value) {
    if (value == NULL) return "the event has no key";
    if (value[0] == '\0') return "it is empty";
    if (strchr(value, '/') != NULL) return "it contains \"/\"";
    if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0) return "it is \".\" or \"..\"";
    return NULL;
}

/* Why rel, a path beneath the fixed directory, cannot name a file there,
 * or NULL when it can: every component must be non-empty (no "//", no '/'
 * at either end, not "" itself) and neither "." nor "..". */
static const char *bad_path(const char *rel) {
    for (const char *c = rel;; c++) {
        size_t len = strcspn(c, "/");
        if (len == 0)
            return "it has an empty path component (\"//\", or a \"/\" at the start or end)";
        if (len == 1 && c[0] == '.') return "it has a \".\" component";
        if (len == 2 && c[0] == '.' && c[1] == '.') return "it has a \"..\" component";
        c += len;
        if (*c == '\0') return NULL;
    }
}

/* Reads the route (the config's template, "/srv/out/{type}.jsonl") into s:
 * its fixed directory, its text before the first {type} or {key} (with {{
 * and }} unescaped, as outboxd expands them) cut after the last '/' ("" when
 * there is none: outboxd's working directory), and which placeholders it
 * uses. What follows the fixed directory must name a file whatever the
 * values are, which is checked here, once, with each placeholder standing
 * for one valid component; each event's values are checked by
 * check_destination. */
static int route_parse(file_sink_t *s, const char *route, char *errbuf, size_t errbuf_size) {
    char *text = malloc(strlen(route) + 1);
    size_t n = 0, cut = 0;
    int fixed = 1; /* still before the first placeholder */
    if (text == NULL) {
        snprintf(errbuf, errbuf_size, "file sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    for (const char *p = route; *p != '\0';) {
        int type = strncmp(p, "{type}", 6) == 0, key = strncmp(p, "{key}", 5) == 0;
        if (type || key) {
            s->route_has_type |= type;
            s->route_has_key |= key;
            p += type ? 6 : 5;
            fixed = 0;
            text[n++] = 'v'; /* a value: one non-empty component */
            continue;
        }
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) p++;
        if (fixed && *p == '/') cut = n + 1;
        text[n++] = *p++;
    }
    text[n] = '\0';
    const char *why = bad_path(text + cut);
    if (why != NULL) {
        text[cut] = '\0';
        snprintf(errbuf, errbuf_size, "route: \"%s\" names no file beneath %s: %s", route,
                 cut > 0 ? text : "the working directory", why);
        free(text);
        return OUTBOX_SINK_FATAL;
    }
    text[cut] = '\0';
    s->route_dir = text;
    s->route_dir_len = cut;
    return OUTBOX_SINK_OK;
}

/* Checks where ev's destination leads: beneath the route's fixed
 * directory, through values that are one component each. Returns 0, or -1
 * with the reason in why. No allocation: this runs per event. */
static int check_destination(const file_sink_t *s, const outbox_sink_event_t *ev, char *why,
                             size_t why_size) {
    const char *reason;

    if (s->route_has_type && (reason = bad_value(ev->type)) != NULL) {
        snprintf(why, why_size, "its {type} value \"%s\" cannot be a file name: %s", ev->type,
                 reason);
        return -1;
    }
    if (s->route_has_key && (reason = bad_value(ev->key)) != NULL) {
        if (ev->key == NULL)
            snprintf(why, why_size, "the route uses {key} and the event has no key");
        else
            snprintf(why, why_size, "its {key} value \"%s\" cannot be a file name: %s", ev->key,
                     reason);
        return -1;
    }
    if (strncmp(ev->destination, s->route_dir, s->route_dir_len) != 0) {
        snprintf(why, why_size, "it is not beneath the route's directory %s", s->route_dir);
        return -1;
    }
    /* Given the route's checks and the values', this holds for every
     * destination outboxd expands; it is checked again because it is what
     * keeps the file beneath the directory where openat2 is missing. */
    if ((reason = bad_path(ev->destination + s->route_dir_len)) != NULL) {
        snprintf(why, why_size, "%s beneath %s", reason, s->route_dir_len ? s->route_dir : ".");
        return -1;
    }
    return 0;
}

/* Publishes one event. Returns 0 when the event has been dealt with (acked,
 * or for fsync=batch written and waiting in s->pending), -1 when writing it
 * failed (errbuf says why; the event is not acked). */
static int publish_one(file_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                       size_t errbuf_size) {
    char why[1024], error[2048];
    int refused = 0;
    open_file_t *f = NULL;

    if (check_destination(s, ev, why, sizeof why) != 0)
        refused = 1;
    else
        f = file_get(s, ev->destination, &refused, why, sizeof why);
    /* A destination that leads out of the route's directory fails the same
     * way on every retry: a FATAL ack, and on to the next event. */
    if (refused) {
        snprintf(error, sizeof error, "file sink: event %s: refusing destination \"%s\": %s", ev->id,
                 ev->destination, why);
        ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
        return 0;
    }
    if (f == NULL) {
        snprintf(errbuf, errbuf_size, "%s", why);
        return -1;
    }
    if (format_line(&s->line, ev, s->as_given) != 0) {
        snprintf(errbuf, errbuf_size, "file sink: out of memory formatting event %s", ev->id);
        return -1;
    }
    if (file_write_line(s, f, errbuf, errbuf_size) != 0) return -1;

    if (s->fsync_policy == FSYNC_BATCH) {
        /* publish reserved room for every event of the batch. */
        s->pending[s->n_pending].seq = ev->seq;
        s->pending[s->n_pending].file = f;
        s->n_pending++;
        f->dirty = 1;
    } else {
        ack(s, ev->seq, OUTBOX_SINK_OK, NULL);
    }
    return 0;
}

/* ----------------------------------------------------------------------------
 * Recovery (ABI 1.1 recover; docs/recovery.md)
 *
 * After a crash or a takeover outboxd hands over the events an earlier run
 * may have written. A file's tail says which: the earlier run appended
 * them in order, so each one it wrote is among the file's last k lines,
 * k being the number of those events that go to that file, and its line
 * is byte for byte the one format_line makes of it now.
 * ------------------------------------------------------------------------- */

typedef struct {
    const char *text;
    size_t len;     /* "\n" included */
    uint64_t hash;
} tail_line_t;

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

static int by_hash(const void *a, const void *b) {
    uint64_t x = ((const tail_line_t *)a)->hash, y = ((const tail_line_t *)b)->hash;
    return x < y ? -1 : x > y;
}

/* Reads the whole lines at the end of fd, at most want of them, into *buf
 * (the caller frees) and *lines (ditto), *n_lines of them. A partial last
 * line (only a crash in the middle of a write leaves one) is cut off the
 * file first, so that the next line starts on a line of its own. Returns 0,
 * or -1 with errno set. */
static int read_last_lines(int fd, size_t want, char **buf, tail_line_t **lines, size_t *n_lines) {
    struct stat st;
    *buf = NULL;
    *lines = NULL;
    *n_lines = 0;
    if (fstat(fd, &st) != 0) return -1;
    off_t size = st.st_size, window = 64 * 1024;
    char *text = NULL;
    off_t from = 0;
    for (;;) {
        from = size > window ? size - window : 0;
        char *grown = realloc(text, (size_t)(size - from) + 1);
        if (grown == NULL) {
            free(text);
            errno = ENOMEM;
            return -1;
        }
        text = grown;
        size_t got = 0, len = (size_t)(size - from);
        while (got < len) {
            ssize_t r = pread(fd, text + got, len - got, from + (off_t)got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                if (r == 0) errno = EIO; /* the file shrank under us: not ours alone */
                free(text);
                return -1;
            }
            got += (size_t)r;
        }
        size_t end = len;
        while (end > 0 && text[end - 1] != '\n') end--;
        if (end < len && (end > 0 || from == 0)) {
            /* A partial last line: cut off. */
            if (ftruncate(fd, from + (off_t)end) != 0) {
                free(text);
                return -1;
            }
            size = from + (off_t)end;
            len = end;
        }
        size_t breaks = 0;
        for (size_t i = 0; i < len; i++) breaks += text[i] == '\n';
        /* want whole lines need want + 1 line breaks when the read does not
         * start at the file's start (the first one ends a partial line). */
        if (from == 0 || breaks > want || window >= size) {
            size_t start = 0;
            if (from > 0) {
                while (start < len && text[start] != '\n') start++;
                start++;
            }
            size_t count = 0;
            for (size_t i = start; i < len; i++) count += text[i] == '\n';
            tail_line_t *all = calloc(count ? count : 1, sizeof *all);
            if (all == NULL) {
                free(text);
                errno = ENOMEM;
                return -1;
            }
            size_t k = 0;
            for (size_t i = start, line_start = start; i < len; i++) {
                if (text[i] != '\n') continue;
                all[k].text = text + line_start;
                all[k].len = i + 1 - line_start;
                k++;
                line_start = i + 1;
            }
            size_t skip = k > want ? k - want : 0;
            memmove(all, all + skip, (k - skip) * sizeof *all);
            *buf = text;
            *lines = all;
            *n_lines = k - skip;
            return 0;
        }
        window *= 2;
    }
}

/* Marks held[i] for the events of idx[0..n) (all to one file) whose lines
 * are among that file's last n lines. Returns OK, or RETRY with errbuf. */
static int recover_file(file_sink_t *s, const outbox_sink_event_t *events, const size_t *idx, size_t n,
                        unsigned char *held, char *errbuf, size_t errbuf_size) {
    const outbox_sink_event_t *first = &events[idx[0]];
    char why[1024];
    if (check_destination(s, first, why, sizeof why) != 0) return OUTBOX_SINK_OK; /* never written */
    const char *dir_name = s->route_dir[0] != '\0' ? s->route_dir : ".";
    int dir_fd = open(dir_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int link_found = 0, fd = -1;
    if (dir_fd >= 0) {
        fd = open_beneath(dir_fd, first->destination + s->route_dir_len, O_RDWR | O_CLOEXEC, 0, 0,
                          &link_found);
        int saved = errno;
        close(dir_fd);
        errno = saved;
    }
    if (fd < 0) {
        if (errno == ENOENT || link_found) return OUTBOX_SINK_OK; /* nothing written there */
        snprintf(errbuf, errbuf_size, "file sink: cannot read back %s: %s", first->destination,
                 strerror(errno));
        return OUTBOX_SINK_RETRY;
    }
    char *text;
    tail_line_t *lines;
    size_t n_lines;
    int rc = read_last_lines(fd, n, &text, &lines, &n_lines);
    int saved = errno;
    close(fd);
    if (rc != 0) {
        snprintf(errbuf, errbuf_size, "file sink: cannot read back %s: %s", first->destination,
                 strerror(saved));
        return OUTBOX_SINK_RETRY;
    }
    for (size_t i = 0; i < n_lines; i++) lines[i].hash = fnv1a(lines[i].text, lines[i].len);
    qsort(lines, n_lines, sizeof *lines, by_hash);
    for (size_t j = 0; j < n && n_lines > 0; j++) {
        if (format_line(&s->line, &events[idx[j]], s->as_given) != 0) {
            snprintf(errbuf, errbuf_size, "file sink: out of memory formatting event %s", events[idx[j]].id);
            rc = -1;
            break;
        }
        tail_line_t key = {.hash = fnv1a(s->line.data, s->line.len)};
        tail_line_t *hit = bsearch(&key, lines, n_lines, sizeof *lines, by_hash);
        while (hit != NULL && hit > lines && hit[-1].hash == key.hash) hit--;
        for (; hit != NULL && hit < lines + n_lines && hit->hash == key.hash; hit++) {
            if (hit->len == s->line.len && memcmp(hit->text, s->line.data, hit->len) == 0) {
                held[idx[j]] = 1;
                break;
            }
        }
    }
    free(lines);
    free(text);
    return rc == 0 ? OUTBOX_SINK_OK : OUTBOX_SINK_RETRY;
}

typedef struct {
    file_sink_t *s;
    const outbox_sink_event_t *events;
    unsigned char *held;
} recovering_t;

static int recover_one_file(void *ctx, const size_t *idx, size_t k, char *errbuf, size_t errbuf_size) {
    recovering_t *r = ctx;
    return recover_file(r->s, r->events, idx, k, r->held, errbuf, errbuf_size);
}

/* File by file (the sink.h helper groups the events by destination). */
static int file_recover(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held,
                        char *errbuf, size_t errbuf_size) {
    recovering_t r = {state, events, held};
    return outbox_sink_each_destination(events, n, recover_one_file, &r, errbuf, errbuf_size);
}

/* ----------------------------------------------------------------------------
 * The callbacks
 * ------------------------------------------------------------------------- */

/* The one parser, shared by check and open: the options as outboxd wrote
 * them into a file_config_t, then what the table cannot check (file_mode's
 * digits, the route), into s. Returns OK, FATAL for a bad configuration
 * (errbuf starts with the option's key and ": ", so that outboxd names its
 * line), or RETRY when out of memory. s->route_dir is s's to free. */
static int file_parse(const outbox_sink_host_t *host, file_sink_t *s, char *errbuf,
                      size_t errbuf_size) {
    file_config_t config;

    /* options_fill and route came with ABI 1.1; route lies before
     * options_fill in the struct, so one test covers both. */
    if (!OUTBOX_SINK_HOST_HAS(host, options_fill) || host->options_fill == NULL) {
        snprintf(errbuf, errbuf_size,
                 "file sink: this host offers sink ABI %u.%u; the file sink needs 1.1 or later "
                 "(options_fill, route)",
                 (unsigned)host->abi_major, (unsigned)host->abi_minor);
        return OUTBOX_SINK_FATAL;
    }
    host->options_fill(host->ctx, &config);
    for (size_t i = 0; i < sizeof fsync_words / sizeof *fsync_words; i++) {
        if (strcmp(config.fsync, fsync_words[i]) == 0) s->fsync_policy = (fsync_policy_t)i;
    }
    s->make_dirs = config.mkdir;
    s->max_open = (size_t)config.max_open_files;
    if (parse_mode(config.file_mode, &s->file_mode) != 0) {
        snprintf(errbuf, errbuf_size, "file_mode: \"%s\" is not an octal mode such as 0644",
                 config.file_mode);
        return OUTBOX_SINK_FATAL;
    }
    return route_parse(s, host->route, errbuf, errbuf_size);
}

/* outboxd --check, and a reload before it stops anything: the same parse
 * as open, nothing opened or created. */
static int file_check(const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size) {
    file_sink_t s = {0};
    int rc = file_parse(host, &s, errbuf, errbuf_size);
    free(s.route_dir);
    return rc;
}

static int file_open(const outbox_sink_host_t *host, void **state, char *errbuf,
                     size_t errbuf_size) {
    /* Running out of memory may pass: RETRY, and outboxd opens us again. */
    file_sink_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errbuf, errbuf_size, "file sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    int rc = file_parse(host, s, errbuf, errbuf_size);
    if (rc == OUTBOX_SINK_OK && (s->files = calloc(s->max_open, sizeof *s->files)) == NULL) {
        snprintf(errbuf, errbuf_size, "file sink: out of memory");
        rc = OUTBOX_SINK_RETRY;
    }
    if (rc != OUTBOX_SINK_OK) {
        free(s->route_dir);
        free(s);
        return rc;
    }
    for (size_t i = 0; i < s->max_open; i++) s->files[i].fd = -1;
    s->host = host;
    s->as_given = OUTBOX_SINK_HOST_HAS(host, message_as_given) && host->message_as_given;
    host->log(host->ctx, OUTBOX_SINK_LOG_INFO,
              "appending JSON lines to files beneath %s: fsync=%s mkdir=%s file_mode=%04o "
              "max_open_files=%zu",
              s->route_dir_len ? s->route_dir : ".", fsync_words[s->fsync_policy],
              s->make_dirs ? "true" : "false", (unsigned)s->file_mode, s->max_open);
    *state = s;
    return OUTBOX_SINK_OK;
}

/* Writes the batch in order and acks each event before returning.
 *
 * On a write failure (open, mkdir, write or fsync failing on a file F) the
 * sink stops at the failing event and returns RETRY, with errbuf naming the
 * path and the error. Acked by then, and staying acked:
 *   - fsync=always or never: every event before the failing one;
 *   - fsync=batch: every event before the failing one, except those whose
 *     lines went to F after F's last fsync: F is cut back to its size at
 *     that fsync, and those events stay unacked. (The other files are
 *     fsynced before their events are acked, as always.)
 * Events FATAL-acked before the failure (bad payload or destination) stay
 * so. The failing event and all after it get no ack at all. outboxd
 * publishes the unacked events again, and no file holds any of them. */
static int file_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                        size_t errbuf_size) {
    file_sink_t *s = state;
    int failed = 0;

    /* Room for every event of the batch in the pending list, reserved up
     * front so that nothing can fail halfway for lack of memory. */
    if (s->fsync_policy == FSYNC_BATCH && n > s->pending_cap) {
        pending_t *pending = realloc(s->pending, n * sizeof *pending);
        if (pending == NULL) {
            snprintf(errbuf, errbuf_size, "file sink: out of memory");
            return OUTBOX_SINK_RETRY;
        }
        s->pending = pending;
        s->pending_cap = n;
    }

    for (size_t i = 0; i < n && !failed; i++) {
        if (publish_one(s, &events[i], errbuf, errbuf_size) != 0) failed = 1;
    }

    /* fsync=batch: one fsync per file written, then the acks. This runs
     * after a failure too, so that the lines written before it are acked
     * now rather than written again. */
    for (size_t i = 0; i < s->max_open; i++) {
        char sync_error[1024];
        if (!s->files[i].dirty) continue;
        if (file_sync(s, &s->files[i], sync_error, sizeof sync_error) != 0) {
            if (!failed) snprintf(errbuf, errbuf_size, "%s", sync_error); /* keep the first error */
            failed = 1;
        }
    }
    s->n_failures += (uint64_t)failed;
    return failed ? OUTBOX_SINK_RETRY : OUTBOX_SINK_OK;
}

static void file_close_sink(void *state) {
    file_sink_t *s = state;

    for (size_t i = 0; i < s->max_open; i++) {
        open_file_t *f = &s->files[i];
        if (f->path == NULL) continue;
        /* publish has acked or cut back everything, so this fsync protects
         * no acked line; it just leaves the files on disk at shutdown. */
        if (s->fsync_policy != FSYNC_NEVER && fsync(f->fd) != 0) {
            s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING, "cannot fsync %s: %s", f->path,
                         strerror(errno));
        }
        file_close(f);
    }
    free(s->files);
    free(s->line.data);
    free(s->pending);
    free(s->route_dir);
    free(s);
}

/* Figures for outboxd's metrics endpoint (outbox_sink_NAME there). Called
 * from the instance's thread, like publish, so no lock is needed. */
static void file_stats(void *state, outbox_sink_stat_fn emit, void *emit_ctx) {
    file_sink_t *s = state;
    size_t open_files = 0;
    for (size_t i = 0; i < s->max_open; i++) open_files += s->files[i].path != NULL;
    emit(emit_ctx, "file_events_written_total", OUTBOX_SINK_STAT_COUNTER, (double)s->n_written,
         "events acked OK: their lines are in their files (fsynced unless fsync: never)");
    emit(emit_ctx, "file_events_refused_total", OUTBOX_SINK_STAT_COUNTER, (double)s->n_refused,
         "events acked FATAL: their destination would leave the route's directory");
    emit(emit_ctx, "file_write_failures_total", OUTBOX_SINK_STAT_COUNTER, (double)s->n_failures,
         "publish calls that failed on a file (open, mkdir, write, fsync) and returned RETRY");
    emit(emit_ctx, "file_open_files", OUTBOX_SINK_STAT_GAUGE, (double)open_files,
         "files held open (at most max_open_files)");
}

/* poll and flush stay NULL: every event is acked before publish returns. */
OUTBOX_SINK_PLUGIN(.name = "file", .version = "1.2.0",
                   .description = "JSON lines appended to files (the reference sink)",
                   .options = file_options, .payloads = OUTBOX_SINK_PAYLOAD_JSON,
                   .check = file_check, .open = file_open, .publish = file_publish,
                   .stats = file_stats, .recover = file_recover, .close = file_close_sink,
                   .messages = OUTBOX_SINK_MESSAGES_AS_GIVEN)
