/*
 * redact.c - where the password of a connection string is, and the one
 * redaction function built on it: outbox_uri_redacted() for every
 * connection string a program of service-outbox prints, and
 * outbox_uri_passwords() for the programs that must also scrub a password
 * out of other text (outboxd's secrets registry, outboxctl's output).
 */
#include "internal.h"

#include <string.h>

static const char mask[] = "*****";

/* The password of one URL, uri[0..len): everything between the first ':'
 * of the userinfo and the last '@' before the URL's end. A user name
 * cannot hold a raw '/', so a ':' after one is a port or later. Returns
 * false when the URL has no password; else sets [*from, *to). */
static bool password_span(const char *uri, size_t len, size_t *from, size_t *to) {
    const char *end = uri + len;
    const char *start = uri;
    for (const char *p = uri; p + 2 < end; p++) {
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            start = p + 3;
            break;
        }
    }
    const char *last_at = NULL;
    for (const char *p = start; p < end; p++)
        if (*p == '@')
            last_at = p;
    const char *colon = last_at ? memchr(start, ':', (size_t)(last_at - start)) : NULL;
    if (!colon || memchr(start, '/', (size_t)(colon - start)))
        return false;
    *from = (size_t)(colon + 1 - uri);
    *to = (size_t)(last_at - uri);
    return true;
}

/* A list is split only where a new URL starts ("," then "scheme://"), so
 * that a ',' inside a password or in a MongoDB host list stays put.
 * Returns the ',' that ends the URL starting at p, or the NUL. */
static const char *url_end(const char *p) {
    for (; *p; p++) {
        if (*p != ',')
            continue;
        const char *q = p + 1;
        while (*q == ' ')
            q++;
        const char *s = q;
        while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
               *s == '+' || *s == '-' || *s == '.')
            s++;
        if (s > q && strncmp(s, "://", 3) == 0)
            return p;
    }
    return p;
}

void outbox_uri_passwords(const char *uri, void (*fn)(const char *password, size_t len, void *ctx),
                          void *ctx) {
    if (!uri || !fn)
        return;
    for (const char *p = uri;;) {
        const char *end = url_end(p);
        size_t from, to;
        if (password_span(p, (size_t)(end - p), &from, &to))
            fn(p + from, to - from, ctx);
        if (!*end)
            return;
        p = end + 1;
    }
}

char *outbox_uri_redacted(const char *uri) {
    if (!uri)
        return NULL;
    size_t len = strlen(uri), n_urls = 1;
    for (const char *p = url_end(uri); *p; p = url_end(p + 1))
        n_urls++;
    char *out = bson_malloc(len + n_urls * (sizeof mask - 1) + 1);
    size_t n = 0;
    for (const char *p = uri;;) {
        const char *end = url_end(p);
        size_t url_len = (size_t)(end - p), from, to;
        if (password_span(p, url_len, &from, &to)) {
            memcpy(out + n, p, from);
            memcpy(out + n + from, mask, sizeof mask - 1);
            memcpy(out + n + from + sizeof mask - 1, p + to, url_len - to);
            n += from + sizeof mask - 1 + url_len - to;
        } else {
            memcpy(out + n, p, url_len);
            n += url_len;
        }
        if (!*end)
            break;
        out[n++] = ',';
        p = end + 1;
    }
    out[n] = '\0';
    return out;
}
