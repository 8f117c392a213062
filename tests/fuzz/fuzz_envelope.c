/*
 * fuzz_envelope.c - libFuzzer target: an envelope as it comes out of the
 * log (any BSON document: the server checks the structure, not what a
 * foreign producer put in it), through liboutbox's envelope parser and its
 * JSON encoder (outbox_event_to_json, the form `outboxctl tail`, the file
 * sink and every JSON payload take). A document is either refused with a
 * message or encoded as valid JSON (RFC 8259, checked by jansson, a
 * parser we did not write) that holds the event's id and type; never a
 * crash, a leak, or JSON a consumer cannot read.
 */
#include "internal.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bson_t doc;
    if (!bson_init_static(&doc, data, size))
        return 0;
    size_t offset;
    if (!bson_validate(&doc, BSON_VALIDATE_NONE, &offset))
        return 0; /* the server never hands out a structurally broken document */

    outbox_event_t ev;
    char errbuf[512];
    if (!outbox__event_parse(&ev, &doc, errbuf, sizeof errbuf)) {
        if (!memchr(errbuf, '\0', sizeof errbuf) || !errbuf[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    size_t len = 0;
    char *json = outbox_event_to_json(&ev, &len);
    if (json) {
        json_error_t jerr;
        json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!root) { /* an event was encoded as JSON no consumer can read */
            fprintf(stderr, "invalid JSON (%s at %d): %.*s\n", jerr.text, jerr.position, (int)len, json);
            abort();
        }
        json_t *type = json_object_get(root, "type");
        if (!json_is_string(type) || strcmp(json_string_value(type), outbox_event_type(&ev)) != 0)
            abort();
        json_decref(root);
        bson_free(json);
    }
    return 0;
}
