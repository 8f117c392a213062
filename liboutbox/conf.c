/*
 * conf.c - outbox_conf_t: connection, names, capped size and the declared
 * event types with their compiled schemas.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

outbox_conf_t *outbox_conf_new(void) {
    outbox_conf_t *conf = bson_malloc0(sizeof *conf);
    conf->await_ms = OUTBOX_DEFAULT_AWAIT_MS;
    conf->batch_size = OUTBOX_DEFAULT_BATCH_SIZE;
    return conf;
}

void outbox_conf_destroy(outbox_conf_t *conf) {
    if (!conf)
        return;
    bson_free(conf->uri);
    bson_free(conf->database);
    bson_free(conf->outbox);
    for (size_t i = 0; i < conf->n_types; i++) {
        bson_free(conf->types[i].name);
        outbox__schema_destroy(conf->types[i].schema);
    }
    bson_free(conf->types);
    bson_free(conf);
}

static bool parse_int64(const char *value, int64_t min, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < min)
        return false;
    *out = v;
    return true;
}

/* The names MongoDB refuses, checked here so that the mistake shows at
 * configuration time (outboxd --check uses these very rules), not at the
 * first write. A database name is at most 63 bytes. An outbox name leaves
 * room in MongoDB's 255-byte namespace for the database and the longest
 * suffix (".checkpoints"). Returns why not, or NULL. */
#define OUTBOX_MAX_DATABASE_LEN 63
#define OUTBOX_MAX_OUTBOX_LEN 170

static const char *bad_database_name(const char *name) {
    if (!name[0])
        return "must not be empty";
    if (strlen(name) > OUTBOX_MAX_DATABASE_LEN)
        return "is longer than 63 bytes";
    if (strpbrk(name, "/\\. \"$"))
        return "holds one of / \\ . space \" $";
    return NULL;
}

static const char *bad_collection_name(const char *name) {
    if (!name[0])
        return "must not be empty";
    if (strlen(name) > OUTBOX_MAX_OUTBOX_LEN)
        return "is longer than 170 bytes";
    if (strchr(name, '$'))
        return "holds a $";
    if (strncmp(name, "system.", 7) == 0)
        return "starts with \"system.\", which MongoDB keeps for itself";
    return NULL;
}

/* At most 40 bytes of a name, for messages: a 10 MB mistake must not fill
 * them. Cut at a UTF-8 character boundary. */
static int shown_len(const char *value) {
    size_t len = strlen(value);
    if (len <= 40)
        return (int)len;
    len = 40;
    while (len > 0 && ((unsigned char)value[len] & 0xC0) == 0x80)
        len--;
    return (int)len;
}

outbox_code_t outbox_conf_set(outbox_conf_t *conf, const char *key, const char *value,
                              outbox_error_t *error) {
    if (!conf || !key || !value)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_conf_set: NULL argument");
    if (strcmp(key, "uri") == 0) {
        bson_error_t berr;
        mongoc_uri_t *uri = mongoc_uri_new_with_error(value, &berr);
        if (!uri) /* the driver's message can echo the URI: keep credentials out */
            return outbox__fail(error, OUTBOX_ERR_CONF, "uri: not a valid MongoDB connection string");
        mongoc_uri_destroy(uri);
        bson_free(conf->uri);
        conf->uri = bson_strdup(value);
    } else if (strcmp(key, "database") == 0) {
        const char *why = bad_database_name(value);
        if (why)
            return outbox__fail(error, OUTBOX_ERR_CONF, "database: \"%.*s%s\" is not a valid database name: it %s",
                                shown_len(value), value, value[shown_len(value)] ? "..." : "", why);
        bson_free(conf->database);
        conf->database = bson_strdup(value);
    } else if (strcmp(key, "outbox") == 0) {
        const char *why = bad_collection_name(value);
        if (why)
            return outbox__fail(error, OUTBOX_ERR_CONF, "outbox: \"%.*s%s\" is not a valid collection name: it %s",
                                shown_len(value), value, value[shown_len(value)] ? "..." : "", why);
        bson_free(conf->outbox);
        conf->outbox = bson_strdup(value);
    } else if (strcmp(key, "capped.size") == 0) {
        if (!parse_int64(value, 4096, &conf->capped_size))
            return outbox__fail(error, OUTBOX_ERR_CONF, "capped.size: \"%s\" is not a size in bytes >= 4096", value);
    } else if (strcmp(key, "capped.max") == 0) {
        if (!parse_int64(value, 0, &conf->capped_max))
            return outbox__fail(error, OUTBOX_ERR_CONF, "capped.max: \"%s\" is not a document count >= 0", value);
    } else if (strcmp(key, "tail.await_ms") == 0) {
        if (!parse_int64(value, 1, &conf->await_ms) || conf->await_ms > 60000)
            return outbox__fail(error, OUTBOX_ERR_CONF, "tail.await_ms: \"%s\" is not between 1 and 60000", value);
    } else if (strcmp(key, "tail.batch_size") == 0) {
        int64_t v;
        if (!parse_int64(value, 0, &v) || v > 100000)
            return outbox__fail(error, OUTBOX_ERR_CONF, "tail.batch_size: \"%s\" is not between 0 and 100000", value);
        conf->batch_size = v;
    } else {
        return outbox__fail(error, OUTBOX_ERR_CONF, "unknown configuration key \"%s\"", key);
    }
    return OUTBOX_OK;
}

void outbox_conf_set_client_pool(outbox_conf_t *conf, mongoc_client_pool_t *pool) {
    if (conf)
        conf->pool = pool;
}

const outbox_type_t *outbox__conf_find_type(const outbox_conf_t *conf, const char *type) {
    for (size_t i = 0; i < conf->n_types; i++)
        if (strcmp(conf->types[i].name, type) == 0)
            return &conf->types[i];
    return NULL;
}

outbox_code_t outbox_conf_add_type(outbox_conf_t *conf, const char *type, const char *schema_json,
                                   outbox_error_t *error) {
    char msg[400];
    if (!conf || !type || !schema_json)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_conf_add_type: NULL argument");
    if (!type[0] || !bson_utf8_validate(type, strlen(type), false))
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "an event type needs a non-empty UTF-8 name");
    outbox_schema_t *schema = outbox__schema_compile(schema_json, msg, sizeof msg);
    if (!schema)
        return outbox__fail(error, OUTBOX_ERR_SCHEMA, "schema of type \"%s\": %s", type, msg);
    outbox_type_t *existing = (outbox_type_t *)outbox__conf_find_type(conf, type);
    if (existing) {
        outbox__schema_destroy(existing->schema);
        existing->schema = schema;
        return OUTBOX_OK;
    }
    conf->types = bson_realloc(conf->types, (conf->n_types + 1) * sizeof *conf->types);
    conf->types[conf->n_types].name = bson_strdup(type);
    conf->types[conf->n_types].schema = schema;
    conf->n_types++;
    return OUTBOX_OK;
}

static char *read_file(const char *path, outbox_error_t *error) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        outbox__fail(error, OUTBOX_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = bson_malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0)
            buf = bson_realloc(buf, cap *= 2);
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        bson_free(buf);
        outbox__fail(error, OUTBOX_ERR_IO, "%s: read error", path);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

outbox_code_t outbox_conf_add_types_dir(outbox_conf_t *conf, const char *dir,
                                        outbox_error_t *error) {
    if (!conf || !dir)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_conf_add_types_dir: NULL argument");
    DIR *d = opendir(dir);
    if (!d)
        return outbox__fail(error, OUTBOX_ERR_IO, "%s: %s", dir, strerror(errno));
    /* Sorted, so that which file is reported first does not depend on the
     * file system. */
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len > 5 && de->d_name[0] != '.' && strcmp(de->d_name + len - 5, ".json") == 0) {
            names = bson_realloc(names, (n + 1) * sizeof *names);
            names[n++] = bson_strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, compare_names);

    outbox_code_t rc = OUTBOX_OK;
    for (size_t i = 0; i < n && rc == OUTBOX_OK; i++) {
        char *path = bson_strdup_printf("%s/%s", dir, names[i]);
        char *text = read_file(path, error);
        if (!text) {
            rc = OUTBOX_ERR_IO;
        } else {
            char *type = bson_strndup(names[i], strlen(names[i]) - 5);
            outbox_error_t sub;
            rc = outbox_conf_add_type(conf, type, text, &sub);
            if (rc != OUTBOX_OK)
                outbox__fail(error, rc, "%s: %s", path, sub.message);
            bson_free(type);
            bson_free(text);
        }
        bson_free(path);
    }
    for (size_t i = 0; i < n; i++)
        bson_free(names[i]);
    bson_free(names);
    return rc;
}
