/*
 * secrets.h - the credentials outboxd knows (the MongoDB URI's password,
 * every sink option marked secret, the password in any URL-valued option),
 * and the one place that scrubs them out of text before it is printed or
 * stored: every log line (outboxd's own, libmongoc's, the plugins'), the
 * error text of acks and callbacks, checkpoint messages and dead letters.
 * This is defence in depth: code that prints a URL still passes it through
 * outbox_uri_redacted() first. Thread-safe.
 */
#ifndef OUTBOXD_SECRETS_H
#define OUTBOXD_SECRETS_H

#include "conffile.h"
#include "options.h"

#include <stddef.h>

/* Remembers a copy of secret (NULL or "" is ignored). */
void outboxd_secrets_add(const char *secret);

/* Remembers the password of each URL in value (a connection string or a
 * comma-separated list of them; anything else adds nothing), raw,
 * percent-decoded, and each piece after a raw '@' in it (matched without
 * case: libmongoc prints what follows such an '@' as a lower-cased host). */
void outboxd_secrets_add_uri(const char *value);

/* Remembers every credential in conf: the URI's password, each option
 * marked secret, the password of each option value that is a URL. Called
 * after every load (start and SIGHUP); secrets are never forgotten while
 * outboxd runs. */
void outboxd_secrets_add_conf(const outboxd_conf_t *conf);

/* Remembers the value of every resolved option that is secret: each
 * SECRET option (ABI 1.1, given inline, as {file:}/{env:} or as KEY_file)
 * and each value the config marked secret. Call it right after
 * outboxd_options_resolve, before anything can print. */
void outboxd_secrets_add_options(const outboxd_options_t *opts);

/* Replaces, in place, every occurrence of a remembered secret in text (a
 * NUL-terminated string in a buffer of size bytes) with "*****", cutting
 * the result to fit. */
void outboxd_secrets_scrub(char *text, size_t size);

/* Forgets everything (at exit, so that valgrind sees nothing left). */
void outboxd_secrets_clear(void);

#endif
