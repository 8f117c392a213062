/*
 * file.c - the file sink: each event becomes one JSON line appended to the
 * file its route names (sinks/file/README.md has the line format, the
 * options and the delivery guarantee).
 *
 * It is also the reference plugin, the one to copy when writing a sink. It
 * uses nothing but <outbox/sink.h> and libc, and it shows the three outcomes
 * every sink deals with:
 *
 *  - OK: the event is where it belongs; ack it with OUTBOX_SINK_OK.
 *  - A transient failure (disk full, directory missing, read-only mount):
 *    publish returns OUTBOX_SINK_RETRY without acking what it could not
 *    write, and outboxd publishes those events again after a backoff.
 *  - A permanent failure of one event (its payload is not JSON): ack that
 *    event with OUTBOX_SINK_FATAL and go on; the sink's on_error policy
 *    decides what happens to it.
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
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
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

/* outboxd checks the config against this table before open (types, ranges,
 * enum words), fills in the defaults and prints it for
 * `outboxd --plugin-help file`. */
static const outbox_sink_option_t file_options[] = {
    {.key = "fsync",
     .type = OUTBOX_SINK_OPT_ENUM,
     .default_value = "batch",
     .choices = "always|batch|never",
     .help = "always: fsync each line before acking it; batch: fsync each file "
             "once per publish call, then ack; never: ack after write(), the OS "
             "writes back when it likes"},
    {.key = "mkdir",
     .type = OUTBOX_SINK_OPT_BOOL,
     .default_value = "true",
     .help = "create missing parent directories (mode 0755, minus the umask)"},
    {.key = "file_mode",
     .type = OUTBOX_SINK_OPT_STRING,
     .default_value = "0644",
     .help = "octal permission bits of created files (minus the umask)"},
    {.key = "max_open_files",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "64",
     .min = 1,
     .max = 1024,
     .help = "files kept open; beyond this the least recently used is closed"},
    OUTBOX_SINK_OPTION_END};

typedef enum { FSYNC_ALWAYS, FSYNC_BATCH, FSYNC_NEVER } fsync_policy_t;

static const char *fsync_policy_name(fsync_policy_t policy) {
    switch (policy) {
    case FSYNC_ALWAYS: return "always";
    case FSYNC_BATCH: return "batch";
    case FSYNC_NEVER: return "never";
    }
    return "?";
}

/* The value of an option: the config's, else the table's default. outboxd
 * fills in defaults itself, but a plugin should not rely on that: a test
 * host, or another program loading the plugin, may not. */
static const char *file_option(const outbox_sink_host_t *host, const char *key) {
    const char *value = host->option(host->ctx, key);
    if (value != NULL) return value;
    for (const outbox_sink_option_t *o = file_options; o->key != NULL; o++) {
        if (strcmp(o->key, key) == 0) return o->default_value;
    }
    return NULL;
}

/* The parsers below return 0, or -1 for a bad value. outboxd has checked
 * the values already; checking again costs little and keeps the plugin
 * safe with any host. */

static int parse_fsync(const char *value, fsync_policy_t *policy) {
    if (strcmp(value, "always") == 0) *policy = FSYNC_ALWAYS;
    else if (strcmp(value, "batch") == 0) *policy = FSYNC_BATCH;
    else if (strcmp(value, "never") == 0) *policy = FSYNC_NEVER;
    else return -1;
    return 0;
}

/* The words sink.h lists for OUTBOX_SINK_OPT_BOOL. */
static int parse_bool(const char *value, int *flag) {
    if (strcasecmp(value, "true") == 0 || strcasecmp(value, "yes") == 0 ||
        strcasecmp(value, "on") == 0 || strcmp(value, "1") == 0) {
        *flag = 1;
    } else if (strcasecmp(value, "false") == 0 || strcasecmp(value, "no") == 0 ||
               strcasecmp(value, "off") == 0 || strcmp(value, "0") == 0) {
        *flag = 0;
    } else {
        return -1;
    }
    return 0;
}

static int parse_int(const char *value, long long min, long long max, long long *number) {
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (end == value || *end != '\0' || errno != 0 || n < min || n > max) return -1;
    *number = n;
    return 0;
}

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

/* A growable buffer: a whole line is built here, then written at once.
 * After a failed allocation, appends do nothing and oom stays set, so the
 * caller checks for it once per line instead of after every append. */
typedef struct {
    char *data;
    size_t len, cap;
    int oom;
} buf_t;

static void buf_append(buf_t *b, const void *bytes, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) cap *= 2;
        char *data = realloc(b->data, cap);
        if (data == NULL) {
            b->oom = 1;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void buf_puts(buf_t *b, const char *s) { buf_append(b, s, strlen(s)); }


/* Appends str as a JSON string, or null when str is NULL. Quotes and
 * backslashes get a backslash, control characters become \u00XX, valid
 * UTF-8 passes through, and each byte that is not part of valid UTF-8
 * becomes \ufffd (the replacement character): every line must be valid
 * JSON, whatever bytes an event carries. */
static void json_string(buf_t *b, const char *str) {
    const unsigned char *s = (const unsigned char *)str;

    if (s == NULL) {
        buf_puts(b, "null");
        return;
    }
    buf_puts(b, "\"");
    while (*s != '\0') {
        if (*s == '"' || *s == '\\') {
            char escaped[2] = {'\\', (char)*s};
            buf_append(b, escaped, 2);
            s++;
        } else if (*s < 0x20) {
            char escaped[8];
            snprintf(escaped, sizeof escaped, "\\u%04x", (unsigned)*s);
            buf_puts(b, escaped);
            s++;
        } else if (*s < 0x80) {
            buf_append(b, s, 1);
            s++;
        } else {
            size_t n = outbox_sink_utf8_len(s);
            if (n == 0) {
                buf_puts(b, "\\ufffd");
                s++;
            } else {
                buf_append(b, s, n);
                s += n;
            }
        }
    }
    buf_puts(b, "\"");
}

/* created_ms as ISO-8601 UTC with milliseconds: 2026-11-26T18:45:25.123Z.
 * Returns -1 when the time cannot be represented. */
static int format_time(int64_t ms, char *out, size_t size) {
    int64_t secs = ms / 1000;
    int millis = (int)(ms % 1000);
    struct tm tm;

    /* C division truncates toward zero; before 1970 we need the floor, so
     * that -1 ms is 23:59:59.999 of the day before, not 00:00:00.-001. */
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    if ((int64_t)t != secs || gmtime_r(&t, &tm) == NULL) return -1;
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return 0;
}

/* True when the payload is a JSON object: its first non-whitespace byte is
 * '{' and its last is '}'. The first test alone is not enough: a BSON
 * document starts with its length as a little-endian int32, and a document
 * of 123 bytes starts with 0x7B, which is '{'. But a BSON document always
 * ends with a 0x00 byte, so the second test tells them apart. */
static int is_json_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int payload_is_json_object(const outbox_sink_event_t *ev) {
    const unsigned char *p = ev->payload;
    size_t start = 0, end = ev->payload_len;

    while (start < end && is_json_space(p[start])) start++;
    while (end > start && is_json_space(p[end - 1])) end--;
    return end - start >= 2 && p[start] == '{' && p[end - 1] == '}';
}

/* Builds the event's line, "\n" included, in b. Returns -1 when out of
 * memory. */
static int format_line(buf_t *b, const outbox_sink_event_t *ev) {
    char created[64];

    b->len = 0;
    b->oom = 0;
    buf_puts(b, "{\"id\":");
    json_string(b, ev->id);
    buf_puts(b, ",\"type\":");
    json_string(b, ev->type);
    buf_puts(b, ",\"key\":");
    json_string(b, ev->key);
    buf_puts(b, ",\"created\":");
    if (format_time(ev->created_ms, created, sizeof created) == 0)
        json_string(b, created);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"destination\":");
    json_string(b, ev->destination);

    /* The payload is JSON text already, so it goes in as it is, except that
     * CR and LF become spaces. Valid JSON only has them as whitespace
     * between tokens (inside strings they must be escaped), so this changes
     * nothing for a JSON reader, but it keeps one event on one line even if
     * a payload was pretty-printed. */
    buf_puts(b, ",\"data\":");
    size_t data_start = b->len;
    buf_append(b, ev->payload, ev->payload_len);
    if (!b->oom) {
        for (size_t i = data_start; i < b->len; i++) {
            if (b->data[i] == '\n' || b->data[i] == '\r') b->data[i] = ' ';
        }
    }

    buf_puts(b, ",\"headers\":{");
    for (size_t i = 0; i < ev->n_headers; i++) {
        if (i > 0) buf_puts(b, ",");
        json_string(b, ev->headers[i].name);
        buf_puts(b, ":");
        json_string(b, ev->headers[i].value);
    }
    buf_puts(b, "}}\n");
    return b->oom ? -1 : 0;
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
    fsync_policy_t fsync_policy;
    int make_dirs;
    mode_t file_mode;
    size_t max_open;
    open_file_t *files; /* max_open slots */
    uint64_t clock;     /* counts file uses, for the LRU order */
    buf_t line;         /* the line being written, reused for every event */
    pending_t *pending; /* fsync=batch only */
    size_t n_pending, pending_cap;
    char *route_dir;    /* the route's fixed directory ("" = the working
                           directory), or NULL when the host passes no route */
    int route_has_type, route_has_key; /* the route uses {type}, {key} */
} file_sink_t;

/* A note on strerror(): POSIX does not promise it is thread-safe, but glibc
 * and musl return constant strings for known errors, which is safe from
 * several sink threads. strerror_r would be the portable choice, but it
 * exists in two incompatible variants (XSI and GNU) selected by feature
 * macros, which is more trouble than it is worth in an example. */

static void ack(file_sink_t *s, uint64_t seq, outbox_sink_status_t status, const char *error) {
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
 * -p`, each with mode 0755 (minus the umask). path is the destination, for
 * the message. */
static int make_route_dir(const char *dir, const char *path, char *errbuf, size_t errbuf_size) {
    char *copy = strdup(dir);
    if (copy == NULL) {
        snprintf(errbuf, errbuf_size, "file sink: out of memory");
        return -1;
    }
    /* Cut the path after each slash in turn: /a, then /a/b, ... A leading
     * slash is the root, which exists. dir ends with '/'. */
    for (char *p = copy; *p != '\0'; p++) {
        if (*p != '/' || p == copy) continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            snprintf(errbuf, errbuf_size, "file sink: cannot create directory %s for %s: %s", copy,
                     path, strerror(errno));
            free(copy);
            return -1;
        }
        *p = '/';
    }
    free(copy);
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
 * if mkdir is on) when needed: its first dir_len bytes name the fixed
 * directory, and the rest is opened beneath it (check_destination has
 * checked both). NULL on failure, with errbuf set, and *refused set when
 * the failure is for good (a symbolic link on the way). */
static open_file_t *file_get(file_sink_t *s, const char *path, size_t dir_len, int *refused,
                             char *errbuf, size_t errbuf_size) {
    *refused = 0;
    for (size_t i = 0; i < s->max_open; i++) {
        open_file_t *f = &s->files[i];
        if (f->path != NULL && strcmp(f->path, path) == 0) {
            f->last_used = ++s->clock;
            return f;
        }
    }

    open_file_t *f = file_free_slot(s, errbuf, errbuf_size);
    if (f == NULL) return NULL;

    /* The fixed directory is opened afresh for each file the sink opens,
     * so that one created, moved or remounted meanwhile is the one used. */
    char *path_copy = strdup(path);
    char *dir = strndup(path, dir_len);
    if (path_copy == NULL || dir == NULL) {
        free(path_copy);
        free(dir);
        snprintf(errbuf, errbuf_size, "file sink: out of memory");
        return NULL;
    }
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
        free(dir);
        return NULL;
    }

    /* O_APPEND: every write() goes to the end of the file, as one piece. */
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
    int link_found;
    int fd = open_beneath(dir_fd, path + dir_len, flags, s->file_mode, s->make_dirs, &link_found);
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
        free(dir);
        return NULL;
    }
    free(dir);
    f->path = path_copy;
    f->fd = fd;
    f->dirty = 0;
    f->last_used = ++s->clock;
    return f;
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

/* The route's fixed directory: its text before the first {type} or {key}
 * (with {{ and }} unescaped, as outboxd expands them), cut after the last
 * '/'; "" when there is no '/' before it (a relative route: outboxd's
 * working directory). Also says which placeholders the route uses. NULL
 * when out of memory. */
static char *route_fixed_dir(const char *route, int *has_type, int *has_key) {
    char *dir = malloc(strlen(route) + 1);
    size_t n = 0, cut = 0;
    int fixed = 1;
    if (dir == NULL) return NULL;
    *has_type = *has_key = 0;
    for (const char *p = route; *p != '\0';) {
        char c;
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            c = p[0];
            p += 2;
        } else if (strncmp(p, "{type}", 6) == 0) {
            *has_type = 1, fixed = 0, p += 6;
            continue;
        } else if (strncmp(p, "{key}", 5) == 0) {
            *has_key = 1, fixed = 0, p += 5;
            continue;
        } else {
            c = *p++;
        }
        if (!fixed) continue;
        dir[n++] = c;
        if (c == '/') cut = n;
    }
    dir[cut] = '\0';
    return dir;
}

/* Why value (of placeholder, e.g. "{key}") cannot be part of a path, or
 * NULL when it can: it must be one non-empty path component. */
static const char *bad_value(const char *value) {
    if (value == NULL) return "the event has no key";
    if (value[0] == '\0') return "it is empty";
    if (strchr(value, '/') != NULL) return "it contains \"/\"";
    if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0) return "it is \".\" or \"..\"";
    return NULL;
}

/* Checks where ev's destination leads. Returns 0 and sets *dir_len to the
 * length of its fixed directory (possibly 0: the working directory) when
 * the rest stays beneath it; returns -1 with the reason in why when not.
 * Without a route from the host, the directory part of the destination
 * stands in for the fixed directory. No allocation: this runs per event. */
static int check_destination(const file_sink_t *s, const outbox_sink_event_t *ev,
                             size_t *dir_len_out, char *why, size_t why_size) {
    const char *dest = ev->destination;
    const char *reason, *rel;
    size_t dir_len;

    if (s->route_dir != NULL) {
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
        dir_len = strlen(s->route_dir);
        if (strncmp(dest, s->route_dir, dir_len) != 0) {
            snprintf(why, why_size, "it is not beneath the route's directory %s", s->route_dir);
            return -1;
        }
    } else {
        const char *slash = strrchr(dest, '/');
        dir_len = slash != NULL ? (size_t)(slash - dest) + 1 : 0;
    }
    /* What follows the fixed directory: components that are neither empty
     * (a value starting or ending with '/', an absolute value after a
     * relative route) nor "." or "..". */
    rel = dest + dir_len;
    if (*rel == '\0') {
        snprintf(why, why_size, "its file name is empty");
        return -1;
    }
    for (const char *c = s->route_dir != NULL ? rel : dest;;) {
        const char *end = strchr(c, '/');
        size_t len = end != NULL ? (size_t)(end - c) : strlen(c);
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            snprintf(why, why_size, "it has a \"..\" component");
            return -1;
        }
        if (s->route_dir != NULL && len == 0) {
            snprintf(why, why_size, "it has an empty path component beneath %s (\"//\", or a "
                     "\"/\" at the start or end)", s->route_dir[0] ? s->route_dir : ".");
            return -1;
        }
        if (s->route_dir != NULL && len == 1 && c[0] == '.') {
            snprintf(why, why_size, "it has a \".\" component");
            return -1;
        }
        if (end == NULL) break;
        c = end + 1;
    }
    if (dest[strlen(dest) - 1] == '/') {
        snprintf(why, why_size, "its file name is empty");
        return -1;
    }
    *dir_len_out = dir_len;
    return 0;
}

/* Publishes one event. Returns 0 when the event has been dealt with (acked,
 * or for fsync=batch written and waiting in s->pending), -1 when writing it
 * failed (errbuf says why; the event is not acked). */
static int publish_one(file_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                       size_t errbuf_size) {
    char error[2048];

    if (!payload_is_json_object(ev)) {
        snprintf(error, sizeof error,
                 "file sink needs payload: json (got %zu bytes that are not a JSON object)",
                 ev->payload_len);
        ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
        return 0;
    }
    /* A destination that leads out of the route's directory, or can never
     * name a file, fails the same way on every retry: a FATAL ack. */
    size_t dir_len;
    char why[1024];
    if (check_destination(s, ev, &dir_len, why, sizeof why) != 0) {
        snprintf(error, sizeof error, "file sink: event %s: refusing destination \"%s\": %s", ev->id,
                 ev->destination, why);
        ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
        return 0;
    }
    if (format_line(&s->line, ev) != 0) {
        snprintf(errbuf, errbuf_size, "file sink: out of memory formatting event %s", ev->id);
        return -1;
    }
    int refused;
    open_file_t *f = file_get(s, ev->destination, dir_len, &refused, why, sizeof why);
    if (f == NULL && refused) {
        snprintf(error, sizeof error, "file sink: event %s: refusing destination \"%s\": %s", ev->id,
                 ev->destination, why);
        ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
        return 0;
    }
    if (f == NULL) {
        snprintf(errbuf, errbuf_size, "%s", why);
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
 * The callbacks
 * ------------------------------------------------------------------------- */

/* The sink's route template as the config has it, from a host new enough
 * to pass it (ABI 1.1); NULL from an older one. */
static const char *host_route(const outbox_sink_host_t *host) {
#if OUTBOX_SINK_ABI_MAJOR > 1 || OUTBOX_SINK_ABI_MINOR >= 1
    if (OUTBOX_SINK_HOST_HAS(host, route)) return host->route;
#endif
    return NULL;
}

static int file_open(const outbox_sink_host_t *host, void **state, char *errbuf,
                     size_t errbuf_size) {
    fsync_policy_t fsync_policy;
    int make_dirs;
    mode_t file_mode;
    long long max_open;
    const char *value;

    /* A bad option value is a configuration error: FATAL, naming the
     * option, since retrying cannot fix it. */
    value = file_option(host, "fsync");
    if (parse_fsync(value, &fsync_policy) != 0) {
        snprintf(errbuf, errbuf_size,
                 "file sink: option fsync: \"%s\" is not always, batch or never", value);
        return OUTBOX_SINK_FATAL;
    }
    value = file_option(host, "mkdir");
    if (parse_bool(value, &make_dirs) != 0) {
        snprintf(errbuf, errbuf_size, "file sink: option mkdir: \"%s\" is not true or false",
                 value);
        return OUTBOX_SINK_FATAL;
    }
    value = file_option(host, "file_mode");
    if (parse_mode(value, &file_mode) != 0) {
        snprintf(errbuf, errbuf_size,
                 "file sink: option file_mode: \"%s\" is not an octal mode such as 0644", value);
        return OUTBOX_SINK_FATAL;
    }
    value = file_option(host, "max_open_files");
    if (parse_int(value, 1, 1024, &max_open) != 0) {
        snprintf(errbuf, errbuf_size,
                 "file sink: option max_open_files: \"%s\" is not a whole number from 1 to 1024",
                 value);
        return OUTBOX_SINK_FATAL;
    }

    /* Running out of memory may pass: RETRY, and outboxd opens us again. */
    file_sink_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(errbuf, errbuf_size, "file sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    s->files = calloc((size_t)max_open, sizeof *s->files);
    if (s->files == NULL) {
        free(s);
        snprintf(errbuf, errbuf_size, "file sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    for (long long i = 0; i < max_open; i++) s->files[i].fd = -1;
    const char *route = host_route(host);
    if (route != NULL) {
        s->route_dir = route_fixed_dir(route, &s->route_has_type, &s->route_has_key);
        if (s->route_dir == NULL) {
            free(s->files);
            free(s);
            snprintf(errbuf, errbuf_size, "file sink: out of memory");
            return OUTBOX_SINK_RETRY;
        }
    } else {
        host->log(host->ctx, OUTBOX_SINK_LOG_WARNING,
                  "this host passes no route (sink ABI before 1.1): destinations are checked for "
                  "\"..\" components and a linked file name only, not kept beneath the route's "
                  "directory");
    }
    s->host = host;
    s->fsync_policy = fsync_policy;
    s->make_dirs = make_dirs;
    s->file_mode = file_mode;
    s->max_open = (size_t)max_open;

    host->log(host->ctx, OUTBOX_SINK_LOG_INFO,
              "appending JSON lines to files: fsync=%s mkdir=%s file_mode=%04o max_open_files=%zu",
              fsync_policy_name(fsync_policy), make_dirs ? "true" : "false", (unsigned)file_mode,
              s->max_open);
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

/* poll and flush stay NULL: every event is acked before publish returns. */
OUTBOX_SINK_PLUGIN(.name = "file", .version = "1.0.0",
                   .description = "JSON lines appended to files (the reference sink)",
                   .options = file_options, .open = file_open, .publish = file_publish,
                   .close = file_close_sink)
