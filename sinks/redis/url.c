/*
 * url.c - parses the Redis sink's url option: redis://, rediss:// (with
 * TLS) and unix://, and never shows what stands before its '@'.
 */
#include "redis_sink.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * The url
 *
 * Messages never repeat the url as written: whatever stands before its '@'
 * may be a password (a '/' or '@' in it defeats any parse), so the sink
 * prints only what it parsed: scheme, host, port, database (the user goes
 * into messages by itself, as "user app"). That is the whole of the rule;
 * outboxd additionally scrubs known secrets from plugin logs.
 * ------------------------------------------------------------------------- */

void redis_url_free(redis_url_t *u) {
    free(u->host);
    free(u->path);
    free(u->user);
    free(u->display);
    memset(u, 0, sizeof *u);
}

/* Parses redis://[user@]host[:port][/db] (rediss:// with TLS) or
 * unix://[user@]/path[?db=N]. Returns 0, or -1 with err saying what is
 * wrong (without the option's name, which the caller adds), quoting at
 * most the part after the user: never the user or password part.
 *
 * The user part ends at the LAST '@' of a redis:// url (no host, port or
 * database holds one), and at the first "@/" of a unix:// url (the socket
 * path starts with '/'), so that a password holding '/' or '@' is still
 * found and refused, not taken for a host. */
int redis_url_parse(const char *url, redis_url_t *u, char *err, size_t err_size) {
    const char *rest, *at = NULL;
    const char *scheme;
    char display[1024];

    memset(u, 0, sizeof *u);
    if (strncmp(url, "rediss://", 9) == 0) {
#ifdef HAVE_HIREDIS_SSL
        rest = url + 9;
        u->tls = 1;
        scheme = "rediss://";
#else
        snprintf(err, err_size, "rediss:// (TLS) is not supported: this sink is built on hiredis "
                                "0.14, which has no TLS (hiredis >= 1.0 with hiredis_ssl has)");
        return -1;
#endif
    } else if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
        scheme = "redis://";
    } else if (strncmp(url, "unix://", 7) == 0) {
        rest = url + 7;
        u->is_unix = 1;
        scheme = "unix://";
    } else {
        /* Not a url of ours: shown without what stands before its last
         * '@', which may be a password. */
        const char *last_at = strrchr(url, '@');
        size_t n = strcspn(url, ":/@");
        snprintf(err, err_size,
                 "\"%.*s%s%s\" is not redis://[user@]host[:port][/db] or unix://[user@]/path[?db=N]",
                 (int)(last_at ? (n < 20 ? n : 20) : 0), url, last_at ? "://...@" : "",
                 last_at ? last_at + 1 : url);
        return -1;
    }

    if (u->is_unix) {
        const char *p = strstr(rest, "@/");
        if (rest[0] != '/' && p != NULL) at = p;
    } else {
        at = strrchr(rest, '@');
    }
    if (at != NULL) {
        size_t len = (size_t)(at - rest);
        if (memchr(rest, ':', len) != NULL) {
            snprintf(err, err_size, "a password in the url is not accepted (it would show in "
                                    "configs and logs): use option password, written as "
                                    "{file: PATH} or {env: NAME}");
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)rest[i];
            if (ch <= ' ' || ch == 0x7f || ch == '/' || ch == '@' || ch == '?') {
                snprintf(err, err_size, "the part before '@' is not a user name (it holds '/', "
                                        "'@', '?', a space or a control character); a password "
                                        "in the url is not accepted: use option password");
                return -1;
            }
        }
        if (len == 0) {
            snprintf(err, err_size, "an empty user name before '@'");
            return -1;
        }
        if ((u->user = strndup(rest, len)) == NULL) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        rest = at + 1;
    }

    if (u->is_unix) {
        const char *query = strchr(rest, '?');
        size_t path_len = query ? (size_t)(query - rest) : strlen(rest);
        if (path_len < 2 || rest[0] != '/') {
            snprintf(err, err_size, "\"unix://%s\": unix:// needs an absolute socket path, as in "
                                    "unix:///run/redis/redis.sock", rest);
            redis_url_free(u);
            return -1;
        }
        u->path = strndup(rest, path_len);
        if (query != NULL) {
            if (strncmp(query, "?db=", 4) != 0 ||
                redis_parse_digits(query + 4, strlen(query + 4), INT_MAX, &u->db) != 0) {
                snprintf(err, err_size, "\"unix://%s\": after the socket path only ?db=N is "
                                        "understood", rest);
                redis_url_free(u);
                return -1;
            }
        }
        snprintf(display, sizeof display, "unix://%s?db=%lld", u->path ? u->path : "", u->db);
    } else {
        const char *host = rest, *host_end, *after;
        long long port = 6379;
        if (*host == '[') {
            host_end = strchr(host, ']');
            if (host_end == NULL) {
                snprintf(err, err_size, "\"%s%s\": an IPv6 address needs its closing ]", scheme,
                         rest);
                redis_url_free(u);
                return -1;
            }
            host++;
            after = host_end + 1;
        } else {
            host_end = host + strcspn(host, ":/");
            after = host_end;
        }
        if (host_end == host) {
            snprintf(err, err_size, "\"%s%s\" names no host", scheme, rest);
            redis_url_free(u);
            return -1;
        }
        if (*after == ':') {
            size_t len = strcspn(after + 1, "/");
            if (redis_parse_digits(after + 1, len, 65535, &port) != 0 || port == 0) {
                snprintf(err, err_size, "\"%s%s\": the port is not a number from 1 to 65535",
                         scheme, rest);
                redis_url_free(u);
                return -1;
            }
            after += 1 + len;
        }
        if (*after == '/' && after[1] != '\0' &&
            redis_parse_digits(after + 1, strlen(after + 1), INT_MAX, &u->db) != 0) {
            snprintf(err, err_size, "\"%s%s\": the database (after the /) is not a number",
                     scheme, rest);
            redis_url_free(u);
            return -1;
        }
        if (*after != '\0' && *after != '/') {
            snprintf(err, err_size, "\"%s%s\" is not %shost[:port][/db]", scheme, rest, scheme);
            redis_url_free(u);
            return -1;
        }
        u->host = strndup(host, (size_t)(host_end - host));
        u->port = (int)port;
        snprintf(display, sizeof display, "%s%s%s%s:%d/%lld", scheme,
                 rest[0] == '[' ? "[" : "", u->host ? u->host : "", rest[0] == '[' ? "]" : "",
                 u->port, u->db);
    }
    u->display = strdup(display);
    if (u->display == NULL || (u->is_unix ? u->path == NULL : u->host == NULL)) {
        snprintf(err, err_size, "out of memory");
        redis_url_free(u);
        return -1;
    }
    return 0;
}
