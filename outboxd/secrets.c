/*
 * secrets.c - see secrets.h. The registry is a list of copies behind one
 * mutex; it only grows (a secret dropped by a SIGHUP reload may still sit
 * in a message that a sink's thread has not printed yet).
 *
 * Scrubbing is a plain search for each secret, longest first, so that a
 * secret that contains a shorter one is replaced whole. Secrets shorter
 * than 3 bytes are not searched for: masking every "a" in a log line
 * would ruin the log and hide nothing worth hiding (a one-letter password
 * is not protected by anything).
 */
#include "secrets.h"

#include "outbox/outbox.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SECRET_LEN 3

static const char mask[] = "*****";

typedef struct {
    char *text;
    bool nocase; /* a piece a client library may print lower-cased */
} secret_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static secret_t *secrets; /* sorted by length, longest first */
static size_t n_secrets;

static void add(const char *secret, bool nocase) {
    if (!secret || strlen(secret) < MIN_SECRET_LEN)
        return;
    pthread_mutex_lock(&lock);
    size_t len = strlen(secret), at = n_secrets;
    for (size_t i = 0; i < n_secrets; i++) {
        if (strcmp(secrets[i].text, secret) == 0) {
            secrets[i].nocase |= nocase;
            pthread_mutex_unlock(&lock);
            return;
        }
        if (at == n_secrets && strlen(secrets[i].text) < len)
            at = i;
    }
    char *copy = strdup(secret);
    secret_t *grown = realloc(secrets, (n_secrets + 1) * sizeof *secrets);
    if (!copy || !grown) { /* out of memory at start-up: outboxd cannot run anyway */
        free(copy);
        if (grown)
            secrets = grown;
        pthread_mutex_unlock(&lock);
        abort();
    }
    secrets = grown;
    memmove(secrets + at + 1, secrets + at, (n_secrets - at) * sizeof *secrets);
    secrets[at] = (secret_t){copy, nocase};
    n_secrets++;
    pthread_mutex_unlock(&lock);
}

void outboxd_secrets_add(const char *secret) {
    add(secret, false);
}

/* A raw '@' in a password makes libmongoc take what follows it for a host,
 * which it prints lower-cased ("Failed to resolve 'etpw@h'"): what follows
 * each '@' is a secret too, matched without case. Not shorter pieces, nor
 * pieces split at '/' or ':': "nats" out of "nats/S3cret" would mask the
 * word everywhere and ruin the log. */
#define MIN_PIECE_LEN 4

static void add_pieces(const char *pw) {
    for (const char *at = strchr(pw, '@'); at; at = strchr(at + 1, '@')) {
        size_t len = strcspn(at + 1, "@");
        if (len >= MIN_PIECE_LEN) {
            char *piece = strndup(at + 1, len);
            add(piece, true);
            free(piece);
        }
    }
}

/* Remembers one password of a URL (outbox_uri_passwords() finds it, by
 * the one rule outbox_uri_redacted() hides it by), raw and
 * percent-decoded: client libraries decode it before use, and may echo it
 * so. */
static void add_url_password(const char *password, size_t len, void *ctx) {
    (void)ctx;
    char *pw = strndup(password, len);
    if (!pw)
        abort();
    outboxd_secrets_add(pw);
    add_pieces(pw);
    char *plain = mongoc_uri_unescape(pw);
    outboxd_secrets_add(plain);
    bson_free(plain);
    free(pw);
}

void outboxd_secrets_add_uri(const char *value) {
    outbox_uri_passwords(value, add_url_password, NULL);
}

void outboxd_secrets_add_conf(const outboxd_conf_t *conf) {
    if (!conf)
        return;
    if (conf->mongodb_uri) {
        outboxd_secrets_add_uri(conf->mongodb_uri);
        mongoc_uri_t *uri = mongoc_uri_new_with_error(conf->mongodb_uri, NULL);
        if (uri) { /* the driver's own reading of it (decoded) */
            outboxd_secrets_add(mongoc_uri_get_password(uri));
            mongoc_uri_destroy(uri);
        }
    }
    for (size_t i = 0; i < conf->n_sinks; i++) {
        const outboxd_sink_conf_t *s = &conf->sinks[i];
        for (size_t j = 0; j < s->n_options; j++) {
            if (s->options[j].secret)
                outboxd_secrets_add(s->options[j].value);
            outboxd_secrets_add_uri(s->options[j].value);
        }
    }
}

void outboxd_secrets_add_options(const outboxd_options_t *opts) {
    for (size_t i = 0; opts && i < opts->n_typed; i++)
        if (opts->typed[i].present && opts->typed[i].secret && opts->typed[i].text)
            outboxd_secrets_add(opts->typed[i].text);
}

static char *find(const char *text, const secret_t *s) {
    return s->nocase ? strcasestr(text, s->text) : strstr(text, s->text);
}

/* Replaces secret in text, writing at most size - 1 bytes back. */
static void replace_all(char *text, size_t size, const secret_t *secret) {
    size_t slen = strlen(secret->text), m = sizeof mask - 1;
    char *hit = find(text, secret);
    if (!hit)
        return;
    char *out = malloc(size);
    if (!out) { /* cannot copy: cut the text before the first secret */
        *hit = '\0';
        return;
    }
    size_t n = 0;
    const char *p = text;
    while (hit) {
        size_t before = (size_t)(hit - p);
        if (n + before + m >= size)
            break;
        memcpy(out + n, p, before);
        memcpy(out + n + before, mask, m);
        n += before + m;
        p = hit + slen;
        hit = find(p, secret);
    }
    if (hit) { /* no room for the next mask: end with as much of it as fits */
        size_t before = (size_t)(hit - p);
        size_t room = size - 1 - n;
        size_t take = before < room ? before : room;
        memcpy(out + n, p, take);
        n += take;
        room -= take;
        memcpy(out + n, mask, room < m ? room : m);
        n += room < m ? room : m;
    } else {
        size_t rest = strlen(p);
        if (n + rest >= size)
            rest = size - 1 - n;
        memcpy(out + n, p, rest);
        n += rest;
    }
    out[n] = '\0';
    memcpy(text, out, n + 1);
    free(out);
}

void outboxd_secrets_scrub(char *text, size_t size) {
    if (!text || size == 0)
        return;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_secrets; i++)
        replace_all(text, size, &secrets[i]);
    pthread_mutex_unlock(&lock);
}

void outboxd_secrets_clear(void) {
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i].text);
    free(secrets);
    secrets = NULL;
    n_secrets = 0;
    pthread_mutex_unlock(&lock);
}
