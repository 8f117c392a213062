/*
 * listen_addr.h - the form of an address to listen on ("HOST:PORT",
 * "[IPV6]:PORT", ":PORT"), read in one place: the config loader checks it
 * (with the line) and the HTTP endpoint binds what it gives. No resolving
 * here: whether the host exists and the port is free is known only by
 * binding (--check and the start do).
 */
#ifndef OUTBOXD_LISTEN_ADDR_H
#define OUTBOXD_LISTEN_ADDR_H

#include <stdbool.h>
#include <stddef.h>

/* Splits listen into host (NULL: every address) and port (1-65535), both
 * pointing into buf (a copy of listen); false with why when it has another
 * form. */
bool outboxd_listen_split(const char *listen, char *buf, size_t size, const char **host, const char **port,
                          char *why, size_t why_size);

#endif
