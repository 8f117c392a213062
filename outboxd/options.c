/*
 * options.c - see options.h. The host parses every option once, here, so
 * that a plugin's open and check read typed values (options_fill) instead
 * of each sink re-parsing strings with its own rules, and so that
 * `outboxd --check` refuses exactly what open would.
 */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t outboxd_option_stride(const outbox_sink_plugin_t *plugin) {
    if (plugin->struct_size >= offsetof(outbox_sink_plugin_t, option_size) + sizeof plugin->option_size &&
        plugin->option_size >= OUTBOX_SINK_OPTION_SIZE_1_0)
        return plugin->option_size;
    return OUTBOX_SINK_OPTION_SIZE_1_0;
}

const outbox_sink_option_t *outboxd_option_entry(const outbox_sink_plugin_t *plugin, size_t i) {
    if (!plugin->options)
        return NULL;
    size_t stride = outboxd_option_stride(plugin);
    for (size_t k = 0;; k++) {
        const outbox_sink_option_t *o =
            (const outbox_sink_option_t *)(const void *)((const char *)plugin->options + k * stride);
        if (!o->key)
            return NULL;
        if (k == i)
            return o;
    }
}

bool outboxd_option_mapped(const outbox_sink_plugin_t *plugin, const outbox_sink_option_t *entry,
                           size_t *offset) {
    if (outboxd_option_stride(plugin) < offsetof(outbox_sink_option_t, flags) + sizeof entry->flags)
        return false;
    if (!(entry->flags & OUTBOX_SINK_OPTION_MAPPED))
        return false;
    *offset = entry->offset;
    return true;
}

const char *outboxd_option_type_name(outbox_sink_option_type_t type) {
    switch (type) {
    case OUTBOX_SINK_OPT_STRING: return "string";
    case OUTBOX_SINK_OPT_INT: return "integer";
    case OUTBOX_SINK_OPT_BOOL: return "boolean";
    case OUTBOX_SINK_OPT_ENUM: return "one of";
    case OUTBOX_SINK_OPT_LIST: return "list";
    case OUTBOX_SINK_OPT_DURATION: return "duration";
    case OUTBOX_SINK_OPT_SECRET: return "secret";
    default: return "string";
    }
}

/* The table entry for key and its index; *any says whether the table
 * accepts any other key. */
static const outbox_sink_option_t *find_option(const outbox_sink_plugin_t *plugin, const char *key,
                                               size_t *index, bool *any) {
    *any = false;
    const outbox_sink_option_t *o;
    for (size_t i = 0; (o = outboxd_option_entry(plugin, i)); i++) {
        if (strcmp(o->key, "*") == 0) {
            *any = true;
        } else if (strcmp(o->key, key) == 0) {
            *index = i;
            return o;
        }
    }
    return NULL;
}

/* 1 for true, 0 for false, -1 for neither. */
static int parse_bool(const char *v) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

static bool in_choices(const char *choices, const char *v) {
    size_t len = strlen(v);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t wlen = bar ? (size_t)(bar - p) : strlen(p);
        if (wlen == len && strncmp(p, v, len) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* A duration: digits and an optional unit (ms, s, m, h; none means ms).
 * Returns NULL and sets *ms, or the reason. */
static const char *parse_duration(const char *v, int64_t *ms) {
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *p = v;
    int64_t n = 0;
    if (*p < '0' || *p > '9')
        return "expected a duration: a number with ms, s, m or h (a bare number is milliseconds)";
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (n > (INT64_MAX - d) / 10)
            return "the duration is too large";
        n = n * 10 + d;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].ms)
                return "the duration is too large";
            *ms = n * units[i].ms;
            return NULL;
        }
    }
    return "expected a duration: a number with ms, s, m or h (a bare number is milliseconds)";
}

static char *trimmed(const char *s, size_t len) {
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return strndup(s, len);
}

static void free_list(char **list) {
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

/* A list from a YAML sequence (o->is_sequence) or from "a, b, c". Empty
 * items are refused: "a,,b" is a typo, not a list of three. Sets *bad to
 * the 1-based item at fault and *line and *column to where it is. */
static char **parse_list(const outboxd_option_t *o, const char *text, size_t *bad, int *line,
                         int *column) {
    size_t cap = 4, n = 0;
    char **list = calloc(cap + 1, sizeof *list);
    *bad = 0;
    if (o && o->is_sequence) {
        for (size_t i = 0; i < o->n_items; i++) {
            char *item = trimmed(o->items[i].text, strlen(o->items[i].text));
            if (!*item) {
                free(item);
                *bad = i + 1, *line = o->items[i].line, *column = o->items[i].column;
                break;
            }
            if (n == cap)
                list = realloc(list, ((cap *= 2) + 1) * sizeof *list);
            list[n++] = item;
            list[n] = NULL;
        }
    } else {
        /* A blank string is an empty list, as [] is. */
        char *all = trimmed(text, strlen(text));
        bool blank = !*all;
        free(all);
        for (const char *p = text; !blank && p;) {
            const char *comma = strchr(p, ',');
            char *item = trimmed(p, comma ? (size_t)(comma - p) : strlen(p));
            if (!*item) {
                free(item);
                *bad = n + 1;
                if (o)
                    *line = o->value_line, *column = o->value_column;
                break;
            }
            if (n == cap)
                list = realloc(list, ((cap *= 2) + 1) * sizeof *list);
            list[n++] = item;
            list[n] = NULL;
            p = comma ? comma + 1 : NULL;
        }
    }
    if (*bad) {
        free_list(list);
        return NULL;
    }
    return list;
}

/* Reads the secret in file (relative to the config's folder): at most
 * OUTBOXD_SECRET_MAX_BYTES, one trailing newline dropped, not empty, no
 * NUL. NULL with the reason in why (which never holds the content). */
static char *read_secret_file(const char *config_path, const char *file, char *why, size_t why_size) {
    char *full;
    const char *slash = strrchr(config_path, '/');
    if (file[0] == '/' || !slash) {
        full = strdup(file);
    } else if (asprintf(&full, "%.*s/%s", (int)(slash - config_path), config_path, file) < 0) {
        full = NULL;
    }
    if (!full) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    char *buf = NULL;
    FILE *f = fopen(full, "rbe");
    if (!f) {
        snprintf(why, why_size, "cannot read %s: %s", full, strerror(errno));
        goto out;
    }
    buf = malloc(OUTBOXD_SECRET_MAX_BYTES + 2);
    size_t len = buf ? fread(buf, 1, OUTBOXD_SECRET_MAX_BYTES + 1, f) : 0;
    if (!buf || ferror(f)) {
        snprintf(why, why_size, "cannot read %s: %s", full, buf ? strerror(errno) : "out of memory");
    } else if (len > OUTBOXD_SECRET_MAX_BYTES) {
        snprintf(why, why_size, "%s is larger than %d bytes", full, OUTBOXD_SECRET_MAX_BYTES);
    } else {
        /* One newline: editors add it; anything more is the secret's own. */
        if (len && buf[len - 1] == '\n')
            len--;
        if (len && buf[len - 1] == '\r')
            len--;
        buf[len] = '\0';
        if (!len)
            snprintf(why, why_size, "%s is empty", full);
        else if (memchr(buf, '\0', len))
            snprintf(why, why_size, "%s holds a NUL byte", full);
        else
            goto done;
    }
    free(buf);
    buf = NULL;
done:
    fclose(f);
out:
    free(full);
    return buf;
}

static void add(outboxd_options_t *out, const char *key, const char *value) {
    out->keys = realloc(out->keys, (out->n + 1) * sizeof *out->keys);
    out->values = realloc(out->values, (out->n + 1) * sizeof *out->values);
    out->keys[out->n] = strdup(key);
    out->values[out->n] = strdup(value);
    out->n++;
}

/* Parses value (given in the config as o, or NULL for a default) for def
 * into slot. Returns NULL or why it is refused; buf holds a built reason.
 * A secret's value is never part of the reason. */
static const char *parse_value(const outbox_sink_option_t *def, const outboxd_option_t *o, const char *value,
                               bool secret, outboxd_option_value_t *slot, char *buf, size_t buf_size,
                               int *line, int *column) {
    slot->def = def;
    if (o && o->is_sequence && def->type != OUTBOX_SINK_OPT_LIST)
        return "expected a single value, not a sequence";
    switch (def->type) {
    case OUTBOX_SINK_OPT_INT: {
        /* Digits with an optional '-', as sink.h says ("decimal"):
         * strtoll alone would take " 5" and "+5", which a plugin's own
         * parser may refuse at open, after --check said ok. */
        char *end;
        errno = 0;
        const char *digits = value + (value[0] == '-');
        long long v = strtoll(value, &end, 10);
        if (errno || *digits < '0' || *digits > '9' || *end)
            return "expected an integer";
        if (v < def->min || v > def->max) {
            snprintf(buf, buf_size, "%lld is out of range %lld..%lld", v, (long long)def->min,
                     (long long)def->max);
            return buf;
        }
        slot->number = v;
        break;
    }
    case OUTBOX_SINK_OPT_BOOL: {
        int b = parse_bool(value);
        if (b < 0)
            return "expected true or false";
        slot->number = b;
        break;
    }
    case OUTBOX_SINK_OPT_ENUM:
        if (!in_choices(def->choices, value)) {
            if (secret)
                snprintf(buf, buf_size, "expected one of %s (the value is secret: not shown)", def->choices);
            else
                snprintf(buf, buf_size, "expected one of %s, got \"%s\"", def->choices, value);
            return buf;
        }
        break;
    case OUTBOX_SINK_OPT_DURATION: {
        int64_t ms;
        const char *why = parse_duration(value, &ms);
        if (why)
            return why;
        if ((def->min || def->max) && (ms < def->min || ms > def->max)) {
            snprintf(buf, buf_size, "%s (%lld ms) is out of range %lld..%lld ms", secret ? "the value" : value,
                     (long long)ms, (long long)def->min, (long long)def->max);
            return buf;
        }
        slot->number = ms;
        break;
    }
    case OUTBOX_SINK_OPT_LIST: {
        size_t bad;
        slot->list = parse_list(o, value, &bad, line, column);
        if (!slot->list) {
            snprintf(buf, buf_size, "item %zu of the list is empty (write a, b, c or a YAML sequence)", bad);
            return buf;
        }
        break;
    }
    default: /* STRING, SECRET, and types of later minors: as written */
        break;
    }
    slot->present = true;
    slot->secret = secret || def->type == OUTBOX_SINK_OPT_SECRET;
    return NULL;
}

/* The KEY_file form of a SECRET option: the table's entry for KEY, or NULL. */
static const outbox_sink_option_t *secret_file_of(const outbox_sink_plugin_t *plugin, const char *key,
                                                  size_t *index, char **base) {
    size_t len = strlen(key);
    if (len <= 5 || strcmp(key + len - 5, "_file") != 0)
        return NULL;
    *base = strndup(key, len - 5);
    bool any;
    const outbox_sink_option_t *def = find_option(plugin, *base, index, &any);
    if (!def || def->type != OUTBOX_SINK_OPT_SECRET) {
        free(*base);
        *base = NULL;
        return NULL;
    }
    return def;
}

bool outboxd_options_resolve(const char *path, const outboxd_sink_conf_t *conf,
                             const outbox_sink_plugin_t *plugin, outboxd_options_t *out,
                             char *errbuf, size_t errbuf_size) {
    memset(out, 0, sizeof *out);
    out->plugin = plugin;
    while (outboxd_option_entry(plugin, out->n_typed))
        out->n_typed++;
    out->typed = calloc(out->n_typed + 1, sizeof *out->typed);
    for (size_t i = 0; i < out->n_typed; i++)
        out->typed[i].def = outboxd_option_entry(plugin, i);

    for (size_t i = 0; i < conf->n_options; i++) {
        const outboxd_option_t *o = &conf->options[i];
        bool any;
        size_t index = 0;
        char *base = NULL, *file_value = NULL, buf[300];
        const char *key = o->key, *value = o->value, *why = NULL;
        int line = o->line, column = o->column;
        const outbox_sink_option_t *def = find_option(plugin, o->key, &index, &any);
        if (!def && (def = secret_file_of(plugin, o->key, &index, &base))) {
            /* KEY_file: PATH for a SECRET option KEY. */
            key = base;
            if (out->typed[index].present) {
                why = "give either the secret or its _file, not both";
            } else if (o->is_sequence) {
                why = "expected a file name, not a sequence";
            } else {
                file_value = read_secret_file(path, o->value, buf, sizeof buf);
                if (!file_value)
                    why = buf;
                value = file_value;
            }
        } else if (def && out->typed[index].present) {
            /* KEY after KEY_file (the other order is caught above). */
            why = "give either the secret or its _file, not both";
        }
        if (!why && !def && !any) {
            why = "unknown option";
        } else if (!why && !def && o->is_sequence) {
            why = "expected a single value, not a sequence";
        } else if (!why && def) {
            why = parse_value(def, o, value, o->secret || base != NULL, &out->typed[index], buf,
                              sizeof buf, &line, &column);
        }
        if (why) {
            snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: option %s: %s (plugin %s)", path, line, column,
                     conf->name, o->key, why, plugin->name);
            free(base);
            if (file_value)
                explicit_bzero(file_value, strlen(file_value));
            free(file_value);
            outboxd_options_free(out);
            return false;
        }
        add(out, key, value);
        if (def) /* text points at the kept copy, which lives as long as out */
            out->typed[index].text = out->values[out->n - 1];
        if (file_value)
            explicit_bzero(file_value, strlen(file_value));
        free(file_value);
        free(base);
    }
    for (size_t i = 0; i < out->n_typed; i++) {
        outboxd_option_value_t *slot = &out->typed[i];
        const outbox_sink_option_t *d = slot->def;
        if (strcmp(d->key, "*") == 0 || slot->present)
            continue;
        if (d->default_value) {
            char buf[300];
            int line = 0, column = 0;
            const char *why =
                parse_value(d, NULL, d->default_value, false, slot, buf, sizeof buf, &line, &column);
            if (why) { /* the plugin's own table is wrong */
                snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: plugin %s: the default of option %s is "
                         "invalid: %s", path, conf->line, conf->column, conf->name, plugin->name, d->key,
                         d->type == OUTBOX_SINK_OPT_SECRET ? "(a secret: not shown)" : why);
                outboxd_options_free(out);
                return false;
            }
            add(out, d->key, d->default_value);
            slot->text = out->values[out->n - 1];
        } else if (d->required) {
            snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: option %s is required by plugin %s (%s)",
                     path, conf->line, conf->column, conf->name, d->key, plugin->name,
                     d->help ? d->help : "no help");
            outboxd_options_free(out);
            return false;
        } else if (d->type == OUTBOX_SINK_OPT_LIST) {
            slot->list = calloc(1, sizeof *slot->list); /* absent: empty, never NULL */
        }
    }
    return true;
}

void outboxd_options_free(outboxd_options_t *opts) {
    for (size_t i = 0; i < opts->n_typed; i++)
        free_list(opts->typed[i].list);
    for (size_t i = 0; i < opts->n; i++) {
        /* Secrets do not linger in freed memory (a core dump, a reuse). */
        explicit_bzero(opts->values[i], strlen(opts->values[i]));
        free(opts->keys[i]);
        free(opts->values[i]);
    }
    free(opts->typed);
    free(opts->keys);
    free(opts->values);
    memset(opts, 0, sizeof *opts);
}

const char *outboxd_options_get(const outboxd_options_t *opts, const char *key) {
    for (size_t i = 0; i < opts->n; i++)
        if (strcmp(opts->keys[i], key) == 0)
            return opts->values[i];
    return NULL;
}

const char *outboxd_options_next(const outboxd_options_t *opts, size_t *cursor, const char **value) {
    if (*cursor >= opts->n)
        return NULL;
    if (value)
        *value = opts->values[*cursor];
    return opts->keys[(*cursor)++];
}

int outboxd_options_fill(const outboxd_options_t *opts, void *config) {
    static const char *const empty[] = {NULL};
    for (size_t i = 0; opts->plugin && i < opts->n_typed; i++) {
        const outboxd_option_value_t *slot = &opts->typed[i];
        size_t offset;
        if (!outboxd_option_mapped(opts->plugin, slot->def, &offset))
            continue;
        char *at = (char *)config + offset;
        /* memcpy: the plugin's struct is its own; no alignment is assumed. */
        switch (slot->def->type) {
        case OUTBOX_SINK_OPT_INT:
        case OUTBOX_SINK_OPT_DURATION: {
            int64_t v = slot->present ? slot->number : 0;
            memcpy(at, &v, sizeof v);
            break;
        }
        case OUTBOX_SINK_OPT_BOOL: {
            int v = slot->present ? (int)slot->number : 0;
            memcpy(at, &v, sizeof v);
            break;
        }
        case OUTBOX_SINK_OPT_LIST: {
            const char *const *v = slot->list ? (const char *const *)slot->list : empty;
            memcpy(at, &v, sizeof v);
            break;
        }
        case OUTBOX_SINK_OPT_STRING:
        case OUTBOX_SINK_OPT_ENUM:
        case OUTBOX_SINK_OPT_SECRET: {
            const char *v = slot->present ? slot->text : NULL;
            memcpy(at, &v, sizeof v);
            break;
        }
        default: /* a type this outboxd does not know: nothing to write */
            break;
        }
    }
    return 0;
}
