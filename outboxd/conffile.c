/*
 * conffile.c - reads outboxd's YAML configuration (conffile.h) with libyaml's
 * document API and checks it completely before the daemon acts on any of
 * it. Every mistake is reported as PATH:LINE:COLUMN: message, naming the key
 * at fault, so that an operator can fix the file without reading this code.
 */
#include "conffile.h"

#include "listen_addr.h"

#include "outbox/outbox.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#define DEFAULT_EVERY_EVENTS 1000
#define DEFAULT_EVERY_MS 1000

/* The limits (conffile.h) are far above any real configuration. The size
 * stops a wrong path (a log, a device) from being read whole into memory;
 * the depth stops libyaml's scanner, whose cost grows with the square of
 * the nesting (40,000 "[" took a minute), long before it matters. */

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

/* Like liboutbox's bson_malloc and Redis' zmalloc: running out of memory
 * while reading the configuration at start-up leaves nothing sensible to
 * do, and checking every copy would bury the checks that matter. */
static void *xmalloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) {
        fputs("outboxd: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fputs("outboxd: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t size) {
    p = realloc(p, size);
    if (!p) {
        fputs("outboxd: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *xstrndup(const char *s, size_t len) {
    char *copy = xmalloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

static char *xstrdup(const char *s) {
    return xstrndup(s, strlen(s));
}

/* The whole file, NUL-terminated. NULL with errno set on failure; EFBIG
 * when it is longer than max. */
static char *read_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n > max) {
            errno = EFBIG;
            goto error;
        }
        if (n == cap - 1) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    if (ferror(f)) /* e.g. EISDIR: fopen() accepts a directory */
        goto error;
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;

error:;
    int saved = errno;
    fclose(f);
    free(buf);
    errno = saved;
    return NULL;
}

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

typedef struct {
    const char *path;
    char *errbuf;
    size_t errbuf_size;
    yaml_document_t doc;
    outboxd_conf_t *conf;
    char shown[100]; /* see shown() */
} loader_t;

/* Writes "PATH:LINE:COLUMN: message", or "PATH: message" when mark is
 * NULL. Always returns -1 so that callers can `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int fail(loader_t *ld, const yaml_mark_t *mark,
                                                      const char *fmt, ...) {
    if (!ld->errbuf || ld->errbuf_size == 0)
        return -1;
    int n;
    if (mark)
        n = snprintf(ld->errbuf, ld->errbuf_size, "%s:%lu:%lu: ", ld->path,
                     (unsigned long)mark->line + 1, (unsigned long)mark->column + 1);
    else
        n = snprintf(ld->errbuf, ld->errbuf_size, "%s: ", ld->path);
    if (n >= 0 && (size_t)n < ld->errbuf_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->errbuf + n, ld->errbuf_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const yaml_mark_t *at(const yaml_node_t *node) {
    return &node->start_mark;
}

/* A value from the file, made fit to be quoted in a message: cut short and
 * with control characters masked, so that a pasted blob or an escaped
 * newline cannot garble the log line. One buffer: one value per message. */
static const char *shown(loader_t *ld, const char *s, size_t len) {
    const size_t max = sizeof ld->shown - 4;
    bool cut = len > max;
    if (cut) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--; /* do not split a UTF-8 character */
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        ld->shown[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    strcpy(ld->shown + len, cut ? "..." : "");
    return ld->shown;
}

/* libyaml's own message, at the place it gives. Reader errors (bad UTF-8,
 * control characters) carry a byte offset instead of a mark. */
static int yaml_failure(loader_t *ld, const yaml_parser_t *parser, const char *buf, size_t len) {
    const char *problem = parser->problem ? parser->problem : "unknown problem";
    if (parser->error == YAML_MEMORY_ERROR)
        return fail(ld, NULL, "out of memory");
    if (parser->error == YAML_READER_ERROR) {
        yaml_mark_t mark = {0};
        for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
            if (buf[i] == '\n') {
                mark.line++;
                mark.column = 0;
            } else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
                mark.column++;
            }
        }
        return fail(ld, &mark, "YAML syntax error: %s", problem);
    }
    return fail(ld, &parser->problem_mark, "YAML syntax error: %s", problem);
}

/* ------------------------------------------------------------------------
 * Reading nodes
 * ------------------------------------------------------------------------ */

static yaml_node_t *node(loader_t *ld, yaml_node_item_t id) {
    return yaml_document_get_node(&ld->doc, id);
}

/* The scalar's text; NULL when the node is not a scalar, or holds a NUL
 * ("\0" in a quoted string) that C strings would silently cut off. */
static const char *text(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE)
        return NULL;
    const char *s = (const char *)n->data.scalar.value;
    return strlen(s) == n->data.scalar.length ? s : NULL;
}

/* YAML's null: an empty, "~" or "null" plain scalar. */
static bool is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* One known key of a mapping, filled by read_fields(). */
typedef struct {
    const char *name;
    yaml_node_t *key, *value; /* NULL when absent */
} field_t;

/* An optional key's value, or NULL when it is absent or null: someone who
 * wrote `types:` and nothing after it meant "not set". */
static yaml_node_t *given(const field_t *f) {
    return f->value && !is_null(f->value) ? f->value : NULL;
}

/* Matches the keys of map against fields. Unknown and repeated keys are
 * refused here (libyaml accepts both), so callers only look at the values.
 * where names the mapping in messages: "", " in mongodb", ... */
static int read_fields(loader_t *ld, yaml_node_t *map, field_t *fields, size_t n_fields,
                       const char *where) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(ld, p->key);
        const char *name = text(k);
        if (!name)
            return fail(ld, at(k), "expected a string as key%s", where);
        size_t i = 0;
        while (i < n_fields && strcmp(fields[i].name, name) != 0)
            i++;
        if (i == n_fields) {
            char expected[200] = "";
            for (size_t j = 0; j < n_fields; j++) {
                strcat(expected, j ? ", " : "");
                strcat(expected, fields[j].name);
            }
            return fail(ld, at(k), "unknown key \"%s\"%s (expected %s)", shown(ld, name, strlen(name)),
                        where, expected);
        }
        if (fields[i].key)
            return fail(ld, at(k), "duplicate key \"%s\"%s (first at line %lu)", name, where,
                        (unsigned long)fields[i].key->start_mark.line + 1);
        fields[i].key = k;
        fields[i].value = node(ld, p->value);
    }
    return 0;
}

/* A non-empty string, copied to *out. */
static int read_string(loader_t *ld, yaml_node_t *v, const char *label, char **out) {
    const char *s = is_null(v) ? NULL : text(v);
    if (!s)
        return fail(ld, at(v), "%s: expected a string", label);
    if (!*s)
        return fail(ld, at(v), "%s: must not be empty", label);
    *out = xstrdup(s);
    return 0;
}

/* Plain decimal digits only: "1e3", "0x10" or " 5" are more likely typos
 * than intent in a count. */
static int read_range(loader_t *ld, yaml_node_t *v, const char *label, int64_t min, int64_t max, int64_t *out) {
    const char *s = text(v);
    if (!s)
        return fail(ld, at(v), "%s: expected an integer from %lld to %lld", label, (long long)min, (long long)max);
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*s < '0' || *s > '9' || errno || *end || n < min || n > max)
        return fail(ld, at(v), "%s: expected an integer from %lld to %lld, got \"%s\"", label, (long long)min,
                    (long long)max, shown(ld, s, strlen(s)));
    *out = n;
    return 0;
}

/* A decimal fraction from 0 to 1 ("0.2", "0", "1"): no exponent, no sign,
 * no percent. */
static int read_ratio(loader_t *ld, yaml_node_t *v, const char *label, double *out) {
    const char *s = text(v);
    char *end = NULL;
    double x = 0;
    bool digits_only = s && *s;
    for (const char *c = s; digits_only && *c; c++)
        digits_only = (*c >= '0' && *c <= '9') || *c == '.';
    if (digits_only) {
        errno = 0;
        x = strtod(s, &end);
    }
    if (!digits_only || errno || *end || !(x >= 0.0 && x <= 1.0))
        return fail(ld, at(v), "%s: expected a number from 0 to 1 (a share of the log, e.g. 0.2), got \"%s\"",
                    label, s ? shown(ld, s, strlen(s)) : "");
    *out = x;
    return 0;
}

static int read_count(loader_t *ld, yaml_node_t *v, const char *label, int64_t max, int64_t *out) {
    return read_range(ld, v, label, 1, max, out);
}

/* One of choices (NULL-terminated, indexed like the enum), case-sensitive
 * like the keys. expected is the list as it reads in the message. */
static int read_choice(loader_t *ld, yaml_node_t *v, const char *label,
                       const char *const *choices, const char *expected, int *out) {
    const char *s = text(v);
    if (!s)
        return fail(ld, at(v), "%s: expected %s", label, expected);
    for (int i = 0; choices[i]; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return fail(ld, at(v), "%s: expected %s, got \"%s\"", label, expected, shown(ld, s, strlen(s)));
}

/* YAML 1.1's booleans, as people write them. */
static int read_bool(loader_t *ld, yaml_node_t *v, const char *label, bool *out) {
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    const char *s = text(v);
    if (!s)
        return fail(ld, at(v), "%s: expected true or false", label);
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
            *out = !strcasecmp(s, yes[i]);
            return 0;
        }
    }
    return fail(ld, at(v), "%s: expected true or false, got \"%s\"", label, shown(ld, s, strlen(s)));
}

/* ASCII letters and digits plus the characters in extra; s is non-empty. */
static bool only_word_chars(const char *s, const char *extra) {
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------
 * The sections
 * ------------------------------------------------------------------------ */

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Credentials in other schemes, or a bare password, would go unredacted
 * in logs (outbox_uri_redacted), so refuse them here. */
static bool is_mongodb_uri(const char *uri) {
    return !strncmp(uri, "mongodb://", 10) || !strncmp(uri, "mongodb+srv://", 14);
}

/* A path from the file, taken from the configuration file's folder when
 * relative: the daemon's working directory is rarely the one its operator
 * has in mind (and under systemd it is /var/lib/outboxd). */
static char *beside_config(loader_t *ld, const char *name) {
    const char *slash = strrchr(ld->path, '/');
    if (name[0] == '/' || !slash)
        return xstrdup(name);
    size_t dirlen = (size_t)(slash - ld->path);
    char *path = xmalloc(dirlen + 1 + strlen(name) + 1);
    sprintf(path, "%.*s/%s", (int)dirlen, ld->path, name);
    return path;
}

/* Whether a value holds a password in a URL's userinfo: whatever
 * outbox_uri_redacted() masks (one rule for what a password is). */
static bool has_url_password(const char *value) {
    if (!strstr(value, "://"))
        return false;
    char *shown = outbox_uri_redacted(value);
    bool differs = shown && strcmp(shown, value) != 0;
    outbox_free(shown);
    return differs;
}

/* Remembers the first secret written inline, for the warning at start. */
static void note_inline(loader_t *ld, const yaml_node_t *v, const char *what) {
    if (ld->conf->inline_secret)
        return;
    ld->conf->inline_secret = xstrdup(what);
    ld->conf->inline_secret_line = (int)v->start_mark.line + 1;
    ld->conf->inline_secret_column = (int)v->start_mark.column + 1;
}

/* The secret in the file {file: PATH}: at most OUTBOXD_SECRET_MAX_BYTES,
 * trailing newlines dropped (editors add one), no NUL. */
static int read_secret_file(loader_t *ld, yaml_node_t *at_node, const char *label, const char *name, char **out) {
    char *path = beside_config(ld, name);
    size_t len;
    int rc = 0;
    char *buf = read_file(path, OUTBOXD_SECRET_MAX_BYTES, &len);
    if (!buf) {
        const char *why = errno == EFBIG ? "larger than 64 KiB" : strerror(errno);
        rc = fail(ld, at(at_node), "%s: file %s: %s", label, shown(ld, path, strlen(path)), why);
    } else {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        if (len == 0)
            rc = fail(ld, at(at_node), "%s: file %s is empty", label, shown(ld, path, strlen(path)));
        else if (memchr(buf, '\0', len))
            rc = fail(ld, at(at_node), "%s: file %s holds a NUL byte", label, shown(ld, path, strlen(path)));
        else
            *out = xstrndup(buf, len);
        free(buf);
    }
    free(path);
    return rc;
}

/* A value written as {file: PATH} or {env: NAME}. The value itself never
 * appears in a message: the file or the variable does. */
static int read_secret_ref(loader_t *ld, yaml_node_t *map, const char *label, char **out) {
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    yaml_node_t *k = n ? node(ld, map->data.mapping.pairs.start[0].key) : NULL;
    yaml_node_t *v = n ? node(ld, map->data.mapping.pairs.start[0].value) : NULL;
    const char *kind = k ? text(k) : NULL, *arg = v ? text(v) : NULL;
    if (n != 1 || !kind || (strcmp(kind, "file") != 0 && strcmp(kind, "env") != 0))
        return fail(ld, at(map), "%s: expected a string, {file: PATH} or {env: NAME}", label);
    if (!arg || !*arg || is_null(v))
        return fail(ld, at(v), "%s: {%s: ...} needs a %s", label, kind, kind[0] == 'f' ? "path" : "variable name");
    if (kind[0] == 'f')
        return read_secret_file(ld, v, label, arg, out);
    if (!only_word_chars(arg, "_") || (arg[0] >= '0' && arg[0] <= '9'))
        return fail(ld, at(v), "%s: \"%s\" is not an environment variable name", label, shown(ld, arg, strlen(arg)));
    const char *value = getenv(arg);
    if (!value)
        return fail(ld, at(v), "%s: environment variable %s is not set", label, arg);
    if (!*value)
        return fail(ld, at(v), "%s: environment variable %s is empty", label, arg);
    *out = xstrdup(value);
    return 0;
}

/* A scalar, or a secret by reference; *by_ref says which. */
static int read_value(loader_t *ld, yaml_node_t *v, const char *label, char **out, bool *by_ref) {
    *by_ref = v->type == YAML_MAPPING_NODE;
    if (*by_ref)
        return read_secret_ref(ld, v, label, out);
    return read_string(ld, v, label, out);
}

/* The URI kept in a file of its own, so that the configuration can be
 * world-readable and the password not. Unlike {file:}, blanks around the
 * URI are dropped too (as always). */
static int read_uri_file(loader_t *ld, yaml_node_t *v, outboxd_conf_t *conf) {
    char *name, *path;
    if (read_string(ld, v, "mongodb.uri_file", &name) < 0)
        return -1;
    path = beside_config(ld, name);
    free(name);

    int rc = 0;
    size_t len;
    char *buf = read_file(path, OUTBOXD_SECRET_MAX_BYTES, &len);
    if (!buf) {
        const char *why = errno == EFBIG ? "larger than 64 KiB" : strerror(errno);
        rc = fail(ld, at(v), "mongodb.uri_file: %s: %s", shown(ld, path, strlen(path)), why);
    } else {
        char *start = buf, *end = buf + len;
        while (start < end && is_space(*start))
            start++;
        while (end > start && is_space(end[-1]))
            end--;
        if (start == end)
            rc = fail(ld, at(v), "mongodb.uri_file: %s: the file is empty", shown(ld, path, strlen(path)));
        else if (memchr(start, '\0', (size_t)(end - start)) || !is_mongodb_uri(start))
            rc = fail(ld, at(v), "mongodb.uri_file: %s: expected a mongodb:// or mongodb+srv:// URI",
                      shown(ld, path, strlen(path)));
        else
            conf->mongodb_uri = xstrndup(start, (size_t)(end - start));
        free(buf);
    }
    free(path);
    return rc;
}

/* A value liboutbox's outbox_conf_set() accepts for key: the library's
 * rules for URIs and names, checked where the value is written (the
 * daemon used to learn of a bad name only at run time, with no place).
 * liboutbox's message names the value, never a URI. */
static int check_with_liboutbox(loader_t *ld, yaml_node_t *v, const char *prefix, const char *key,
                                const char *value) {
    outbox_error_t err;
    outbox_conf_t *probe = outbox_conf_new();
    outbox_code_t rc = outbox_conf_set(probe, key, value, &err);
    outbox_conf_destroy(probe);
    if (rc != OUTBOX_OK)
        return fail(ld, at(v), "%s%s", prefix, err.message);
    return 0;
}

static int load_mongodb(loader_t *ld, yaml_node_t *map, outboxd_conf_t *conf) {
    enum { URI, URI_FILE, DATABASE, N };
    field_t f[N] = {{"uri"}, {"uri_file"}, {"database"}};
    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, at(map), "mongodb: expected a mapping");
    if (read_fields(ld, map, f, N, " in mongodb") < 0)
        return -1;

    yaml_node_t *uri = given(&f[URI]), *uri_file = given(&f[URI_FILE]), *where;
    bool by_ref = true;
    if (uri && uri_file)
        return fail(ld, at(f[URI_FILE].key), "mongodb: give either \"uri\" or \"uri_file\", not both");
    if (uri) {
        where = uri;
        if (read_value(ld, uri, "mongodb.uri", &conf->mongodb_uri, &by_ref) < 0)
            return -1;
        if (!is_mongodb_uri(conf->mongodb_uri))
            return fail(ld, at(uri), "mongodb.uri: expected a mongodb:// or mongodb+srv:// URI");
    } else if (uri_file) {
        where = uri_file;
        if (read_uri_file(ld, uri_file, conf) < 0)
            return -1;
    } else {
        return fail(ld, at(map), "mongodb has no \"uri\" or \"uri_file\"");
    }
    if (check_with_liboutbox(ld, where, "mongodb.", "uri", conf->mongodb_uri) < 0)
        return -1;
    if (!by_ref && has_url_password(conf->mongodb_uri))
        note_inline(ld, uri, "mongodb.uri");

    if (!f[DATABASE].key)
        return fail(ld, at(map), "mongodb has no \"database\"");
    if (read_string(ld, f[DATABASE].value, "mongodb.database", &conf->database) < 0)
        return -1;
    return check_with_liboutbox(ld, f[DATABASE].value, "mongodb.", "database", conf->database);
}

static int load_checkpoint(loader_t *ld, yaml_node_t *map, outboxd_conf_t *conf) {
    enum { EVENTS, MS, N };
    field_t f[N] = {{"every_events"}, {"every_ms"}};
    yaml_node_t *v;
    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, at(map), "checkpoint: expected a mapping");
    if (read_fields(ld, map, f, N, " in checkpoint") < 0)
        return -1;
    if ((v = given(&f[EVENTS])) && read_count(ld, v, "checkpoint.every_events", OUTBOXD_EVERY_EVENTS_MAX,
                                               &conf->checkpoint_every_events) < 0)
        return -1;
    if ((v = given(&f[MS])) &&
        read_count(ld, v, "checkpoint.every_ms", OUTBOXD_EVERY_MS_MAX, &conf->checkpoint_every_ms) < 0)
        return -1;
    return 0;
}

/* A size in bytes: plain digits, optionally followed by KiB, MiB or GiB
 * (64MiB, 64 MiB), from min to max. */
static int read_size(loader_t *ld, yaml_node_t *v, const char *label, int64_t min, int64_t max, int64_t *out) {
    const char *s = text(v);
    char *end;
    errno = 0;
    long long n = s ? strtoll(s, &end, 10) : 0;
    long long unit = 0;
    if (s && *s >= '0' && *s <= '9' && !errno) {
        while (*end == ' ')
            end++;
        unit = !*end ? 1 : !strcmp(end, "KiB") ? 1024LL : !strcmp(end, "MiB") ? 1024LL * 1024
                                                : !strcmp(end, "GiB") ? 1024LL * 1024 * 1024 : 0;
    }
    if (!unit || n > max / unit || n * unit < min)
        return fail(ld, at(v), "%s: expected a size from %lld KiB to %lld GiB (bytes, or a number with KiB, MiB or "
                    "GiB), got \"%s\"", label, (long long)min / 1024, (long long)max / (1024LL * 1024 * 1024),
                    s ? shown(ld, s, strlen(s)) : "");
    *out = n * unit;
    return 0;
}

/* reader: the shared reader's ring. */
static int load_reader(loader_t *ld, yaml_node_t *map, outboxd_conf_t *conf) {
    enum { EVENTS, BYTES, N };
    field_t f[N] = {{"ring_events"}, {"ring_bytes"}};
    yaml_node_t *v;
    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, at(map), "reader: expected a mapping");
    if (read_fields(ld, map, f, N, " in reader") < 0)
        return -1;
    if ((v = given(&f[EVENTS])) &&
        read_count(ld, v, "reader.ring_events", OUTBOXD_RING_EVENTS_MAX, &conf->ring_events) < 0)
        return -1;
    if ((v = given(&f[BYTES])) && read_size(ld, v, "reader.ring_bytes", OUTBOXD_RING_BYTES_MIN,
                                            OUTBOXD_RING_BYTES_MAX, &conf->ring_bytes) < 0)
        return -1;
    return 0;
}

/* ha: the lease settings (docs/leases.md, section 5). Every key is checked
 * even with enabled: false, so that turning HA on later cannot reveal a
 * mistake written long ago. */
static int load_ha(loader_t *ld, yaml_node_t *map, outboxd_conf_t *conf) {
    enum { ENABLED, TTL, RENEW, INSTANCE_ID, N };
    field_t f[N] = {{"enabled"}, {"lease_ttl_ms"}, {"renew_ms"}, {"instance_id"}};
    yaml_node_t *v, *ttl, *renew;
    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, at(map), "ha: expected a mapping");
    if (read_fields(ld, map, f, N, " in ha") < 0)
        return -1;
    if ((v = given(&f[ENABLED])) && read_bool(ld, v, "ha.enabled", &conf->ha_enabled) < 0)
        return -1;
    if ((ttl = given(&f[TTL])) && read_range(ld, ttl, "ha.lease_ttl_ms", OUTBOXD_HA_TTL_MIN_MS,
                                             OUTBOXD_HA_TTL_MAX_MS, &conf->ha_lease_ttl_ms) < 0)
        return -1;
    if ((renew = given(&f[RENEW])) && read_range(ld, renew, "ha.renew_ms", OUTBOXD_HA_RENEW_MIN_MS,
                                                 OUTBOXD_HA_TTL_MAX_MS, &conf->ha_renew_ms) < 0)
        return -1;
    /* After a renewal the holder may publish for ttl - renew: that must
     * leave room for one more renewal attempt before its deadline. Reported
     * at renew_ms when it is written, else at the TTL that made the default
     * too long. */
    if (conf->ha_renew_ms * 2 >= conf->ha_lease_ttl_ms)
        return fail(ld, at(renew ? renew : ttl),
                    "ha.renew_ms: %lld must be below half of ha.lease_ttl_ms (%lld): a holder needs two renewals "
                    "per lease", (long long)conf->ha_renew_ms, (long long)conf->ha_lease_ttl_ms);
    if ((v = given(&f[INSTANCE_ID]))) {
        if (read_string(ld, v, "ha.instance_id", &conf->ha_instance_id) < 0)
            return -1;
        const char *id = conf->ha_instance_id;
        if (strlen(id) > OUTBOXD_HA_INSTANCE_ID_MAX || !only_word_chars(id, "._:-"))
            return fail(ld, at(v), "ha.instance_id: expected 1 to %d letters, digits, \".\", \"_\", \":\" or "
                        "\"-\", got \"%s\"", OUTBOXD_HA_INSTANCE_ID_MAX, shown(ld, id, strlen(id)));
    }
    return 0;
}

/* http: the metrics and health endpoint (http.h), off unless listen is
 * set. The address's form is checked here; whether it can be bound, by
 * --check and at start (outboxd_http_start). */
static int load_http(loader_t *ld, yaml_node_t *map, outboxd_conf_t *conf) {
    enum { LISTEN, GRACE, STUCK, N };
    field_t f[N] = {{"listen"}, {"ready_grace_ms"}, {"stuck_ms"}};
    yaml_node_t *v;
    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, at(map), "http: expected a mapping");
    if (read_fields(ld, map, f, N, " in http") < 0)
        return -1;
    if ((v = given(&f[LISTEN]))) {
        char why[200], buf[300];
        const char *host, *port;
        if (read_string(ld, v, "http.listen", &conf->http_listen) < 0)
            return -1;
        if (!outboxd_listen_split(conf->http_listen, buf, sizeof buf, &host, &port, why, sizeof why))
            return fail(ld, at(v), "http.listen: %s", why);
        conf->http_listen_line = at(v)->line + 1;
    }
    if ((v = given(&f[GRACE])) &&
        read_range(ld, v, "http.ready_grace_ms", 0, OUTBOXD_HTTP_GRACE_MAX_MS, &conf->http_ready_grace_ms) < 0)
        return -1;
    if ((v = given(&f[STUCK])) && read_range(ld, v, "http.stuck_ms", OUTBOXD_HTTP_STUCK_MIN_MS,
                                             OUTBOXD_HTTP_GRACE_MAX_MS, &conf->http_stuck_ms) < 0)
        return -1;
    return 0;
}

/* log: the survey of the log (survey.h) and its early warning. */
static int load_log(loader_t *ld, yaml_node_t *map, outboxd_conf_t *conf) {
    enum { WARN, SURVEY, WARN_EVERY, N };
    field_t f[N] = {{"warn_headroom"}, {"survey_ms"}, {"warn_every_ms"}};
    yaml_node_t *v;
    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, at(map), "log: expected a mapping");
    if (read_fields(ld, map, f, N, " in log") < 0)
        return -1;
    if ((v = given(&f[WARN])) && read_ratio(ld, v, "log.warn_headroom", &conf->log_warn_headroom) < 0)
        return -1;
    if ((v = given(&f[SURVEY]))) {
        if (read_range(ld, v, "log.survey_ms", 0, OUTBOXD_LOG_SURVEY_MAX_MS, &conf->log_survey_ms) < 0)
            return -1;
        if (conf->log_survey_ms > 0 && conf->log_survey_ms < OUTBOXD_LOG_SURVEY_MIN_MS)
            return fail(ld, at(v), "log.survey_ms: expected 0 (no survey) or an integer from %d to %d, got \"%s\"",
                        OUTBOXD_LOG_SURVEY_MIN_MS, OUTBOXD_LOG_SURVEY_MAX_MS, text(v));
    }
    if ((v = given(&f[WARN_EVERY])) && read_range(ld, v, "log.warn_every_ms", OUTBOXD_LOG_SURVEY_MIN_MS,
                                                  OUTBOXD_LOG_SURVEY_MAX_MS, &conf->log_warn_every_ms) < 0)
        return -1;
    return 0;
}

/* The route template, checked once here so that outboxd_route_expand()
 * can stay a plain copy loop. The rules are those of Python's
 * str.format(): a single "}" is as much a mistake as an unclosed "{". */
static int check_route(loader_t *ld, yaml_node_t *v, const char *route) {
    for (const char *p = route; *p; p++) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            p++;
        } else if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end)
                return fail(ld, at(v), "route: unclosed \"{\" (write {{ for a literal brace)");
            size_t len = (size_t)(end - p) + 1;
            if (!(len == 6 && !memcmp(p, "{type}", 6)) && !(len == 5 && !memcmp(p, "{key}", 5)))
                return fail(ld, at(v), "route: unknown placeholder \"%s\" (use {type} or {key})",
                            shown(ld, p, len));
            p = end;
        } else if (*p == '}') {
            return fail(ld, at(v), "route: single \"}\" (write }} for a literal brace)");
        }
    }
    return 0;
}

static int load_types(loader_t *ld, yaml_node_t *seq, outboxd_sink_conf_t *sink) {
    if (seq->type != YAML_SEQUENCE_NODE)
        return fail(ld, at(seq), "types: expected a sequence of strings");
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0)
        return 0; /* [] means every type, like no filter at all */
    sink->types = xcalloc(n, sizeof *sink->types);
    sink->n_types = n;
    for (size_t i = 0; i < n; i++) {
        if (read_string(ld, node(ld, seq->data.sequence.items.start[i]), "types", &sink->types[i]) < 0)
            return -1;
    }
    return 0;
}

/* Free-form: the plugin's option table judges the keys and values later,
 * with each entry's position to point at. */
static int load_options(loader_t *ld, yaml_node_t *map, outboxd_sink_conf_t *sink) {
    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, at(map), "options: expected a mapping");
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    if (n == 0)
        return 0;
    sink->options = xcalloc(n, sizeof *sink->options);
    sink->n_options = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        yaml_node_t *k = node(ld, pair->key), *v = node(ld, pair->value);
        const char *key = text(k), *value = text(v);
        if (!key || !*key)
            return fail(ld, at(k), "expected a string as key in options");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sink->options[j].key, key) == 0)
                return fail(ld, at(k), "duplicate key \"%s\" in options (first at line %d)",
                            shown(ld, key, strlen(key)), sink->options[j].line);
        }
        char label[160];
        snprintf(label, sizeof label, "options.%s", shown(ld, key, strlen(key)));
        outboxd_option_t *o = &sink->options[i];
        bool by_ref = false;
        if (v->type == YAML_MAPPING_NODE) {
            by_ref = true;
            if (read_secret_ref(ld, v, label, &o->value) < 0)
                return -1;
        } else if (v->type == YAML_SEQUENCE_NODE) {
            /* A list (ABI 1.1 LIST options): each item a string, kept
             * with its position so that an empty item can be pointed at. */
            size_t m = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            size_t total = 1;
            o->is_sequence = true;
            o->items = m ? xcalloc(m, sizeof *o->items) : NULL;
            for (size_t j = 0; j < m; j++) {
                yaml_node_t *item = node(ld, v->data.sequence.items.start[j]);
                const char *t = text(item);
                if (!t)
                    return fail(ld, at(item), "%s: expected a sequence of strings", label);
                o->items[j].text = xstrdup(t);
                o->items[j].line = (int)item->start_mark.line + 1;
                o->items[j].column = (int)item->start_mark.column + 1;
                o->n_items = j + 1;
                total += strlen(t) + 2;
            }
            o->value = xmalloc(total);
            o->value[0] = '\0';
            for (size_t j = 0; j < m; j++) {
                if (j)
                    strcat(o->value, ", ");
                strcat(o->value, o->items[j].text);
            }
        } else if (!value) {
            return fail(ld, at(v), "%s: expected a scalar value, a sequence, {file: PATH} or {env: NAME}", label);
        } else {
            o->value = xstrdup(value);
        }
        o->key = xstrdup(key);
        o->line = (int)k->start_mark.line + 1;
        o->column = (int)k->start_mark.column + 1;
        o->value_line = (int)v->start_mark.line + 1;
        o->value_column = (int)v->start_mark.column + 1;
        o->secret = by_ref || outboxd_conf_key_is_secret(key);
        if (!by_ref && (o->secret || has_url_password(o->value))) {
            char what[300];
            snprintf(what, sizeof what, "sink %s option %s", sink->name, key);
            note_inline(ld, v, what);
        }
    }
    return 0;
}

static bool valid_sink_name(const char *s) {
    return s && *s && only_word_chars(s, "_.-");
}

/* cloudevents.source with {outbox} and {db} expanded (docs/formats.md). */
static char *expand_source(loader_t *ld, const char *source) {
    size_t cap = strlen(source) + 1;
    for (const char *p = source; (p = strchr(p, '{')); p++)
        cap += strlen(ld->conf->outbox) + strlen(ld->conf->database);
    char *out = malloc(cap), *o = out;
    if (!out)
        abort();
    for (const char *p = source; *p;) {
        if (!strncmp(p, "{outbox}", 8)) {
            o += sprintf(o, "%s", ld->conf->outbox);
            p += 8;
        } else if (!strncmp(p, "{db}", 4)) {
            o += sprintf(o, "%s", ld->conf->database);
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

/* format and its cloudevents section: the layout of the sink's messages. */
static int load_format(loader_t *ld, yaml_node_t *sink_map, yaml_node_t *format, yaml_node_t *ce,
                       outboxd_sink_conf_t *sink) {
    static const char *const formats[] = {"native", "cloudevents", "debezium", NULL};
    static const char *const modes[] = {"auto", "binary", "structured", NULL};
    int choice;
    if (format) {
        if (read_choice(ld, format, "format", formats, "native, cloudevents or debezium", &choice) < 0)
            return -1;
        sink->format = (outboxd_message_format_t)choice;
        sink->format_line = (int)format->start_mark.line + 1;
        sink->format_column = (int)format->start_mark.column + 1;
    }
    if (ce && sink->format != OUTBOXD_MESSAGE_CLOUDEVENTS)
        return fail(ld, at(ce), "cloudevents: only with format: cloudevents (this sink's format is %s)",
                    formats[sink->format]);
    if (sink->format != OUTBOXD_MESSAGE_CLOUDEVENTS)
        return 0;
    if (!ce)
        return fail(ld, at(format ? format : sink_map),
                    "format: cloudevents needs cloudevents.source, the URI-reference of the events' source "
                    "(e.g. \"/{db}/{outbox}\")");
    enum { SOURCE, MODE, N };
    field_t f[N] = {{"source"}, {"mode"}};
    yaml_node_t *v;
    if (ce->type != YAML_MAPPING_NODE)
        return fail(ld, at(ce), "cloudevents: expected a mapping (source, mode)");
    if (read_fields(ld, ce, f, N, " in cloudevents") < 0)
        return -1;
    if (!(v = given(&f[SOURCE])))
        return fail(ld, at(ce), "cloudevents: missing \"source\", the URI-reference of the events' source "
                                "(e.g. \"/{db}/{outbox}\")");
    char *source;
    if (read_string(ld, v, "cloudevents.source", &source) < 0)
        return -1;
    for (const unsigned char *c = (const unsigned char *)source; *c; c++) {
        if (*c <= 0x20 || *c == 0x7f || *c == '"' || *c == '<' || *c == '>' || *c == '\\') {
            int at_col = (int)(c - (const unsigned char *)source);
            free(source);
            return fail(ld, at(v), "cloudevents.source: not a URI-reference: character %d is not allowed (a "
                                   "space, a control character, a quote, <, > or \\)",
                        at_col + 1);
        }
    }
    sink->ce_source = expand_source(ld, source);
    free(source);
    /* What is left of braces is a placeholder mistyped ({dbname}); RFC 3986
     * allows none of these in a URI-reference. */
    const char *bad = strpbrk(sink->ce_source, "{}|^`");
    if (bad)
        return fail(ld, at(v), "cloudevents.source: not a URI-reference: \"%c\" is not allowed (the "
                               "placeholders are {db} and {outbox})",
                    *bad);
    if ((v = given(&f[MODE]))) {
        if (read_choice(ld, v, "cloudevents.mode", modes, "auto, binary or structured", &choice) < 0)
            return -1;
        sink->ce_mode = (outboxd_ce_mode_t)choice;
        if (sink->ce_mode == OUTBOXD_CE_STRUCTURED && sink->payload == OUTBOXD_PAYLOAD_BSON)
            return fail(ld, at(v), "cloudevents.mode: structured carries the data as JSON: it needs payload: json "
                                   "(the sink's payload is bson)");
    }
    return 0;
}

static int load_sink(loader_t *ld, yaml_node_t *map, size_t number, outboxd_sink_conf_t *sink) {
    static const char *const payloads[] = {"json", "bson", NULL};
    static const char *const on_errors[] = {"stop", "skip", "deadletter", NULL};
    static const char *const on_gaps[] = {"stop", "continue", NULL};
    enum { NAME, PLUGIN, ROUTE, TYPES, PAYLOAD, FORMAT, CLOUDEVENTS, ON_ERROR, ON_GAP, OPTIONAL, RECOVER, OPTIONS, N };
    field_t f[N] = {{"name"},        {"plugin"},   {"route"},  {"types"},    {"payload"}, {"format"},
                    {"cloudevents"}, {"on_error"}, {"on_gap"}, {"optional"}, {"recover"}, {"options"}};
    char where[128];
    yaml_node_t *v;
    int choice;

    if (map->type != YAML_MAPPING_NODE)
        return fail(ld, at(map), "sink %zu: expected a mapping", number);
    sink->line = (int)map->start_mark.line + 1;
    sink->column = (int)map->start_mark.column + 1;

    /* A mistyped key is easier to find under the sink's name, so look the
     * name up before read_fields() can refuse anything. */
    snprintf(where, sizeof where, " in sink %zu", number);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *key = text(node(ld, p->key)), *name = text(node(ld, p->value));
        if (key && !strcmp(key, "name") && valid_sink_name(name))
            snprintf(where, sizeof where, " in sink \"%s\"", name);
    }
    if (read_fields(ld, map, f, N, where) < 0)
        return -1;

    if (!f[NAME].key)
        return fail(ld, at(map), "sink %zu has no \"name\"", number);
    if (read_string(ld, f[NAME].value, "name", &sink->name) < 0)
        return -1;
    if (!valid_sink_name(sink->name))
        return fail(ld, at(f[NAME].value), "name: expected letters, digits, \"_\", \".\" or \"-\", got \"%s\"",
                    shown(ld, sink->name, strlen(sink->name)));

    if (!f[PLUGIN].key)
        return fail(ld, at(map), "sink %zu has no \"plugin\"", number);
    if (read_string(ld, f[PLUGIN].value, "plugin", &sink->plugin) < 0)
        return -1;
    if (!only_word_chars(sink->plugin, "_-")) /* it becomes part of a file name */
        return fail(ld, at(f[PLUGIN].value), "plugin: expected letters, digits, \"_\" or \"-\", got \"%s\"",
                    shown(ld, sink->plugin, strlen(sink->plugin)));

    if (!f[ROUTE].key)
        return fail(ld, at(map), "sink %zu has no \"route\"", number);
    if (read_string(ld, f[ROUTE].value, "route", &sink->route) < 0 ||
        check_route(ld, f[ROUTE].value, sink->route) < 0)
        return -1;
    sink->route_line = (int)f[ROUTE].value->start_mark.line + 1;
    sink->route_column = (int)f[ROUTE].value->start_mark.column + 1;

    if ((v = given(&f[TYPES])) && load_types(ld, v, sink) < 0)
        return -1;
    if ((v = given(&f[PAYLOAD]))) {
        if (read_choice(ld, v, "payload", payloads, "json or bson", &choice) < 0)
            return -1;
        sink->payload = (outboxd_payload_t)choice;
        sink->payload_line = (int)v->start_mark.line + 1;
        sink->payload_column = (int)v->start_mark.column + 1;
    }
    if (load_format(ld, map, given(&f[FORMAT]), given(&f[CLOUDEVENTS]), sink) < 0)
        return -1;
    if ((v = given(&f[ON_ERROR]))) {
        if (read_choice(ld, v, "on_error", on_errors, "stop, skip or deadletter", &choice) < 0)
            return -1;
        sink->on_error = (outboxd_on_error_t)choice;
    }
    if ((v = given(&f[ON_GAP]))) {
        if (read_choice(ld, v, "on_gap", on_gaps, "stop or continue", &choice) < 0)
            return -1;
        sink->on_gap = (outboxd_on_gap_t)choice;
    }
    if ((v = given(&f[OPTIONAL])) && read_bool(ld, v, "optional", &sink->optional) < 0)
        return -1;
    sink->recover = true;
    if ((v = given(&f[RECOVER])) && read_bool(ld, v, "recover", &sink->recover) < 0)
        return -1;
    if ((v = given(&f[OPTIONS])) && load_options(ld, v, sink) < 0)
        return -1;
    return 0;
}

static int load_sinks(loader_t *ld, yaml_node_t *seq, outboxd_conf_t *conf) {
    if (seq->type != YAML_SEQUENCE_NODE || seq->data.sequence.items.top == seq->data.sequence.items.start)
        return fail(ld, at(seq), "sinks: expected a non-empty sequence of sinks");
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    /* Allocated whole and zeroed, so that outboxd_conf_free() can clean up
     * after a failure halfway through. */
    conf->sinks = xcalloc(n, sizeof *conf->sinks);
    conf->n_sinks = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node(ld, seq->data.sequence.items.start[i]);
        outboxd_sink_conf_t *sink = &conf->sinks[i];
        if (load_sink(ld, item, i + 1, sink) < 0)
            return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(conf->sinks[j].name, sink->name) == 0)
                return fail(ld, at(item), "duplicate sink name \"%s\" (first at line %d)", sink->name,
                            conf->sinks[j].line);
        }
    }
    return 0;
}

static int load_conf(loader_t *ld, outboxd_conf_t *conf) {
    enum { MONGODB, OUTBOX, PLUGIN_DIR, CHECKPOINT, READER, HA, HTTP, LOG, SINKS, N };
    field_t f[N] = {{"mongodb"}, {"outbox"}, {"plugin_dir"}, {"checkpoint"}, {"reader"},
                    {"ha"},      {"http"},   {"log"},        {"sinks"}};
    yaml_node_t *root = yaml_document_get_root_node(&ld->doc), *v;
    yaml_mark_t start = {0};

    ld->conf = conf;
    conf->path = xstrdup(ld->path);
    conf->checkpoint_every_events = DEFAULT_EVERY_EVENTS;
    conf->checkpoint_every_ms = DEFAULT_EVERY_MS;
    conf->ring_events = OUTBOXD_RING_EVENTS_DEFAULT;
    conf->ring_bytes = OUTBOXD_RING_BYTES_DEFAULT;
    conf->ha_enabled = true;
    conf->ha_lease_ttl_ms = OUTBOXD_HA_TTL_DEFAULT_MS;
    conf->ha_renew_ms = OUTBOXD_HA_RENEW_DEFAULT_MS;
    conf->http_ready_grace_ms = OUTBOXD_HTTP_GRACE_DEFAULT_MS;
    conf->http_stuck_ms = OUTBOXD_HTTP_STUCK_DEFAULT_MS;
    conf->log_warn_headroom = OUTBOXD_LOG_WARN_HEADROOM_DEFAULT;
    conf->log_survey_ms = OUTBOXD_LOG_SURVEY_DEFAULT_MS;
    conf->log_warn_every_ms = OUTBOXD_LOG_WARN_EVERY_DEFAULT_MS;

    if (!root)
        return fail(ld, &start, "empty configuration (expected mongodb, outbox and sinks)");
    if (root->type != YAML_MAPPING_NODE)
        return fail(ld, at(root), "expected a mapping at the top level");
    if (read_fields(ld, root, f, N, "") < 0)
        return -1;

    if (!f[MONGODB].key)
        return fail(ld, at(root), "missing \"mongodb\"");
    if (load_mongodb(ld, f[MONGODB].value, conf) < 0)
        return -1;
    if (!f[OUTBOX].key)
        return fail(ld, at(root), "missing \"outbox\"");
    if (read_string(ld, f[OUTBOX].value, "outbox", &conf->outbox) < 0 ||
        check_with_liboutbox(ld, f[OUTBOX].value, "", "outbox", conf->outbox) < 0)
        return -1;
    if ((v = given(&f[PLUGIN_DIR]))) {
        char *dir;
        if (read_string(ld, v, "plugin_dir", &dir) < 0)
            return -1;
        conf->plugin_dir = beside_config(ld, dir);
        free(dir);
    }
    if ((v = given(&f[CHECKPOINT])) && load_checkpoint(ld, v, conf) < 0)
        return -1;
    if ((v = given(&f[READER])) && load_reader(ld, v, conf) < 0)
        return -1;
    if ((v = given(&f[HA])) && load_ha(ld, v, conf) < 0)
        return -1;
    if ((v = given(&f[HTTP])) && load_http(ld, v, conf) < 0)
        return -1;
    if ((v = given(&f[LOG])) && load_log(ld, v, conf) < 0)
        return -1;
    if (!f[SINKS].key)
        return fail(ld, at(root), "missing \"sinks\"");
    return load_sinks(ld, f[SINKS].value, conf);
}

/* A first pass over the events, for what the document API hides: it
 * resolves aliases silently (and a `<<: *x` merge would then go unnoticed
 * as an unknown key), and it stops at the first document. */
static int check_stream(loader_t *ld, const char *buf, size_t len) {
    yaml_parser_t parser;
    yaml_event_t event;
    int rc = 0, documents = 0, depth = 0;
    bool done = false;

    if (!yaml_parser_initialize(&parser))
        return fail(ld, NULL, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&parser, &event)) {
            rc = yaml_failure(ld, &parser, buf, len);
            break;
        }
        if (event.type == YAML_ALIAS_EVENT) {
            const char *anchor = (const char *)event.data.alias.anchor;
            rc = fail(ld, &event.start_mark, "aliases are not supported (found \"*%s\"): write the value out",
                      shown(ld, anchor, strlen(anchor)));
        } else if (event.type == YAML_DOCUMENT_START_EVENT && ++documents > 1) {
            rc = fail(ld, &event.start_mark, "only one YAML document is allowed");
        } else if ((event.type == YAML_MAPPING_START_EVENT || event.type == YAML_SEQUENCE_START_EVENT) &&
                   ++depth > OUTBOXD_CONF_MAX_DEPTH) {
            rc = fail(ld, &event.start_mark, "nested deeper than %d mappings and sequences",
                      OUTBOXD_CONF_MAX_DEPTH);
        } else if (event.type == YAML_MAPPING_END_EVENT || event.type == YAML_SEQUENCE_END_EVENT) {
            depth--;
        }
        done = event.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* ------------------------------------------------------------------------
 * The interface
 * ------------------------------------------------------------------------ */

outboxd_conf_t *outboxd_conf_load(const char *path, char *errbuf, size_t errbuf_size) {
    loader_t ld = {.path = path ? path : "(null)", .errbuf = errbuf, .errbuf_size = errbuf_size};
    yaml_parser_t parser;
    outboxd_conf_t *conf = NULL;
    size_t len;
    char *buf;

    if (errbuf && errbuf_size)
        errbuf[0] = '\0';
    if (!path) {
        fail(&ld, NULL, "no configuration file given");
        return NULL;
    }
    if (!(buf = read_file(path, OUTBOXD_CONF_MAX_BYTES, &len))) {
        if (errno == EFBIG)
            fail(&ld, NULL, "larger than %d KiB: not a configuration file", OUTBOXD_CONF_MAX_BYTES / 1024);
        else
            fail(&ld, NULL, "%s", strerror(errno));
        return NULL;
    }
    if (check_stream(&ld, buf, len) < 0)
        goto out;
    if (!yaml_parser_initialize(&parser)) {
        fail(&ld, NULL, "out of memory");
        goto out;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &ld.doc)) { /* libyaml frees the document */
        yaml_failure(&ld, &parser, buf, len);
        yaml_parser_delete(&parser);
        goto out;
    }
    yaml_parser_delete(&parser);
    conf = xcalloc(1, sizeof *conf);
    if (load_conf(&ld, conf) < 0) {
        outboxd_conf_free(conf);
        conf = NULL;
    } else {
        struct stat st;
        if (stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
            conf->readable_mode = (unsigned)(st.st_mode & 07777);
    }
    yaml_document_delete(&ld.doc);
out:
    free(buf);
    return conf;
}

void outboxd_conf_free(outboxd_conf_t *conf) {
    if (!conf)
        return;
    for (size_t i = 0; i < conf->n_sinks; i++) {
        outboxd_sink_conf_t *sink = &conf->sinks[i];
        free(sink->name);
        free(sink->plugin);
        free(sink->route);
        free(sink->ce_source);
        for (size_t j = 0; j < sink->n_types; j++)
            free(sink->types[j]);
        free(sink->types);
        for (size_t j = 0; j < sink->n_options; j++) {
            free(sink->options[j].key);
            free(sink->options[j].value);
            for (size_t k = 0; k < sink->options[j].n_items; k++)
                free(sink->options[j].items[k].text);
            free(sink->options[j].items);
        }
        free(sink->options);
    }
    free(conf->sinks);
    free(conf->path);
    free(conf->mongodb_uri);
    free(conf->database);
    free(conf->outbox);
    free(conf->plugin_dir);
    free(conf->inline_secret);
    free(conf->ha_instance_id);
    free(conf->http_listen);
    free(conf);
}

/* Splits key at '.', '_' and '-' and compares each part with the words. */
bool outboxd_conf_key_is_secret(const char *key) {
    static const char *const words[] = {"password", "passwd", "passphrase", "pwd",  "secret", "token",
                                        "nkey",     "seed",   "creds",      "credentials", "apikey", "jwt"};
    static const char *const whole[] = {"ssl.key.pem", "ssl_key", "sasl.oauthbearer.config", "sasl.jaas.config"};
    static const char *const pointers[] = {"file", "path", "location", "env"};
    if (!key)
        return false;
    const char *last = key;
    for (const char *p = key; *p; p++)
        if (*p == '.' || *p == '_' || *p == '-')
            last = p + 1;
    for (size_t i = 0; i < sizeof pointers / sizeof *pointers; i++)
        if (strcasecmp(last, pointers[i]) == 0)
            return false;
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++)
        if (strcasecmp(key, whole[i]) == 0)
            return true;
    for (const char *p = key; *p;) {
        size_t len = strcspn(p, "._-");
        for (size_t i = 0; i < sizeof words / sizeof *words; i++)
            if (len == strlen(words[i]) && strncasecmp(p, words[i], len) == 0)
                return true;
        p += len;
        if (*p)
            p++;
    }
    return false;
}

long outboxd_route_expand(const char *route, const char *type, const char *key, char *out,
                          size_t out_size) {
    size_t n = 0;
    if (!route || !out || out_size == 0)
        return -1;
    if (!type)
        type = "";
    if (!key)
        key = "";
    for (const char *p = route; *p;) {
        const char *piece = p;
        size_t len = 1;
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            p += 2;
        } else if (!strncmp(p, "{type}", 6)) {
            piece = type;
            len = strlen(type);
            p += 6;
        } else if (!strncmp(p, "{key}", 5)) {
            piece = key;
            len = strlen(key);
            p += 5;
        } else {
            p++; /* literal, or a template that skipped the check: copy as is */
        }
        if (len >= out_size - n) { /* keep room for the NUL */
            out[0] = '\0';
            return -1;
        }
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
    return (long)n;
}
