/*
 * error.c - error codes and texts, version, and the library's free().
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

int outbox_version_num(void) {
    return OUTBOX_VERSION_NUM;
}

const char *outbox_version_str(void) {
    return OUTBOX_VERSION_STR;
}

const char *outbox_strerror(outbox_code_t code) {
    switch (code) {
    case OUTBOX_OK: return "success";
    case OUTBOX_ERR_INVALID_ARG: return "invalid argument";
    case OUTBOX_ERR_NOMEM: return "out of memory";
    case OUTBOX_ERR_CONF: return "configuration error";
    case OUTBOX_ERR_SCHEMA: return "invalid schema";
    case OUTBOX_ERR_UNKNOWN_TYPE: return "event type not declared";
    case OUTBOX_ERR_VALIDATION: return "event failed validation";
    case OUTBOX_ERR_SERVER: return "MongoDB server or driver error";
    case OUTBOX_ERR_NOT_CAPPED: return "outbox collection is not capped";
    case OUTBOX_ERR_CAPPED_MISMATCH: return "outbox collection has another capped size";
    case OUTBOX_ERR_GAP: return "events were lost: the capped log wrapped past the checkpoint";
    case OUTBOX_ERR_TIMED_OUT: return "timed out";
    case OUTBOX_ERR_UNSUPPORTED: return "not supported by this server";
    case OUTBOX_ERR_IO: return "I/O error";
    case OUTBOX_ERR_NOT_FOUND: return "not found";
    case OUTBOX_ERR_MALFORMED: return "a document in the log is not an event envelope";
    case OUTBOX_ERR_LIMIT: return "a limit was exceeded";
    case OUTBOX_ERR_NOT_ENSURED: return "the outbox was not created: run outboxctl init (outbox_ensure)";
    }
    return "unknown error code";
}

void outbox_free(void *ptr) {
    bson_free(ptr);
}

void outbox__clear_error(outbox_error_t *error) {
    if (error) {
        error->code = OUTBOX_OK;
        error->server_code = 0;
        error->message[0] = '\0';
    }
}

outbox_code_t outbox__fail(outbox_error_t *error, outbox_code_t code, const char *fmt, ...) {
    if (error) {
        va_list ap;
        error->code = code;
        error->server_code = 0;
        va_start(ap, fmt);
        vsnprintf(error->message, sizeof error->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

outbox_code_t outbox__fail_bson(outbox_error_t *error, const bson_error_t *berr, const char *fmt,
                                ...) {
    if (error) {
        va_list ap;
        char what[OUTBOX_ERROR_MESSAGE_SIZE];
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        error->code = OUTBOX_ERR_SERVER;
        /* Server errors land in these domains (QUERY, COMMAND and COLLECTION
         * under error API 1, which a caller's pool may use). */
        error->server_code = (berr->domain == MONGOC_ERROR_SERVER ||
                              berr->domain == MONGOC_ERROR_WRITE_CONCERN ||
                              berr->domain == MONGOC_ERROR_QUERY ||
                              berr->domain == MONGOC_ERROR_COMMAND ||
                              berr->domain == MONGOC_ERROR_COLLECTION)
                                 ? (int32_t)berr->code
                                 : 0;
        snprintf(error->message, sizeof error->message, "%s: %s", what, berr->message);
    }
    return OUTBOX_ERR_SERVER;
}
