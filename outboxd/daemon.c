/*
 * daemon.c - outboxd, behind outboxd_daemon_main (daemon.h; main.c calls
 * it): tails one outbox (one shared reader, reader.h) and publishes every
 * event to each configured sink, each with its own threads, position and
 * checkpoint; moves committed transactional events from N.pending into the
 * log (the promoter).
 *
 *   outboxd --config FILE           run until SIGTERM/SIGINT
 *   outboxd --check --config FILE   check the config and load every plugin
 *
 * Exit status: 0 clean shutdown or a passed check; 1 a failure at run
 * time; 2 a bad command line, config or plugin.
 *
 * Start-up never depends on the server being there: an unreachable server
 * or a mongodb+srv:// name that DNS cannot resolve yet is retried with
 * backoff (outboxd/README.md says why), and SIGTERM stops it at any time.
 *
 * High availability (docs/leases.md): any number of outboxd may run with
 * the same configuration. The lease manager (lease.h) starts before the
 * sinks and stops after them; each sink publishes only while this outboxd
 * holds its lease, and the promoter runs only while it holds the promoter's.
 */
#include "config.h" /* autoconf's: HAVE_SYSTEMD */

#include "conffile.h"
#include "daemon.h"
#include "http.h"
#include "lease.h"
#include "lease_doc.h"
#include "log.h"
#include "options.h"
#include "plugin.h"
#include "reader.h"
#include "secrets.h"
#include "sinkset.h"
#include "survey.h"

#include "outbox/outbox.h"

#include <getopt.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#ifndef OUTBOXD_PLUGIN_DIR
#define OUTBOXD_PLUGIN_DIR "/usr/local/lib/service-outbox/sinks"
#endif

#define PROMOTE_EVERY_MS 500

/* How long one database operation waits for a usable server, unless the
 * URI sets serverSelectionTimeoutMS. Every operation of outboxd is retried
 * with backoff anyway, and libmongoc cannot interrupt a wait: this bounds
 * how long SIGTERM takes while the server is unreachable (it took ~26 s
 * with the driver's 30 s). */
#define SERVER_SELECTION_MS 2000

/* Retries of a client pool that cannot start (DNS of mongodb+srv://). */
#define POOL_RETRY_MIN_MS 1000
#define POOL_RETRY_MAX_MS 60000

static const char usage[] =
    "usage: outboxd --config FILE [--check] [--plugin-dir DIR] [--verbose]\n"
    "\n"
    "  -c, --config FILE     the configuration (YAML; see outboxd.conf(5), docs/config.md)\n"
    "      --check           check the config and load every plugin, then exit\n"
    "      --plugin-dir DIR  where sink plugins are (overrides plugin_dir; default\n"
    "                        " OUTBOXD_PLUGIN_DIR ")\n"
    "      --plugin-help NAME  describe plugin NAME and its options, then exit\n"
    "  -v, --verbose         debug logging\n"
    "  -V, --version, -h, --help\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop reading, flush every sink, write the\n"
    "checkpoints and exit 0. SIGHUP reloads the config: sinks added, removed\n"
    "or changed are started or stopped, the others keep running.\n";

static atomic_bool stopping;

/* Tells systemd (Type=notify) where outboxd is; a no-op elsewhere. */
static void notify(const char *state) {
#ifdef HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

typedef struct {
    outbox_t *outbox;
    outboxd_lease_t *lease; /* "promoter": one outboxd promotes at a time */
} promoter_t;

/* Promotion is idempotent (docs/design.md), so two promoters for the
 * length of a lease's margin cost duplicate work only; but one is enough:
 * it runs while this outboxd holds the promoter's lease, and waits for it
 * otherwise. With ha off the lease is always held. */
static void *promote_loop(void *arg) {
    promoter_t *pr = arg;
    int64_t last_warn = 0;
    int64_t term = OUTBOXD_LEASE_NONE;
    /* Follows N.pending's change stream where the server has one (commit
     * order), polls elsewhere; made anew at each term, so that a standby
     * holds no stream. */
    outbox_promoter_t *promoter = NULL;
    while (!atomic_load(&stopping)) {
        if (term == OUTBOXD_LEASE_NONE || !outboxd_lease_valid(pr->lease, term)) {
            outbox_promoter_destroy(promoter);
            promoter = NULL;
            if (term != OUTBOXD_LEASE_NONE && term >= 0)
                LOG_INFO("promoter: lease lost at term %lld: standing by mono_ms=%lld", (long long)term,
                         (long long)outboxd_lease_now_ms());
            term = outboxd_lease_wait(pr->lease, &stopping);
            if (term == OUTBOXD_LEASE_NONE)
                break;
            if (term >= 0)
                LOG_INFO("promoter: running at term %lld mono_ms=%lld", (long long)term,
                         (long long)outboxd_lease_now_ms());
        }
        if (!promoter && !(promoter = outbox_promoter_new(pr->outbox)))
            abort(); /* out of memory */
        outbox_error_t err;
        size_t moved, quarantined;
        bool following = outbox_promoter_follows_commits(promoter);
        if (outbox_promoter_run(promoter, PROMOTE_EVERY_MS, &moved, &quarantined, &err) != OUTBOX_OK) {
            if (time(NULL) - last_warn >= 10) {
                LOG_WARN("promoter: %s (retrying)", err.message);
                last_warn = time(NULL);
            }
            following = false; /* the stream closed: wait before it opens again */
        } else {
            if (!following && outbox_promoter_follows_commits(promoter))
                LOG_INFO("promoter: following the change stream of %s.pending (commit order)",
                         outbox_name(pr->outbox));
            following = outbox_promoter_follows_commits(promoter);
            /* Never silent: each run that set documents aside says how many
             * and names the last, with its reason. */
            if (quarantined)
                LOG_ERR("promoter: quarantined %zu pending document%s; the last: %s", quarantined,
                        quarantined == 1 ? "" : "s", err.message);
            if (moved > quarantined)
                LOG_DEBUG("promoter: moved %zu committed events into the log", moved - quarantined);
        }
        /* The stream waited on the server already; a poll waits here. */
        for (int i = 0; !following && i < PROMOTE_EVERY_MS / 50 && !atomic_load(&stopping); i++) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    outbox_promoter_destroy(promoter);
    /* The manager releases the promoter's lease at its stop. */
    return NULL;
}

/* Whether the outbox was ensured: outboxd never creates it (the size of
 * the log and the schemas are the producers' to choose), and publishing
 * from a log that is no capped collection, or promoting into a missing
 * one (which an insert would create uncapped), must not start. A server
 * that cannot answer yet is no refusal: the tails wait for it, and the
 * promoter checks again before it writes. */
static bool outbox_checked(outbox_t *outbox, const char *config_path) {
    outbox_error_t err;
    outbox_code_t rc = outbox_verify(outbox, &err);
    if (rc == OUTBOX_OK)
        return true;
    if (rc == OUTBOX_ERR_SERVER) {
        LOG_WARN("cannot check the outbox yet (%s); the promoter checks it before it writes", err.message);
        return true;
    }
    fprintf(stderr, "outboxd: %s: outbox: %s\n", config_path, err.message);
    return false;
}

/* libmongoc's messages go through outboxd's log, and so through its
 * scrubbing: the driver quotes hosts, and with a raw '@' in a password
 * the part after it is taken for a host. */
static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *data) {
    /* FerretDB has no endSessions; the driver warns at every client close. */
    if (level == MONGOC_LOG_LEVEL_WARNING &&
        (strstr(message, "endSessions") || strstr(message, "Falling back to malloc for counters")))
        return;
    if (level <= MONGOC_LOG_LEVEL_WARNING)
        outboxd_log(level <= MONGOC_LOG_LEVEL_CRITICAL ? OUTBOX_SINK_LOG_ERROR : OUTBOX_SINK_LOG_WARNING,
                    "mongoc %s: %s", domain, message);
}

/* outboxd --plugin-help NAME: what the plugin says of itself. A secret's
 * default is never printed (it would be a credential in a terminal). */
static int plugin_help(const char *name, const char *dir) {
    char err[1600];
    outboxd_plugins_t *set = outboxd_plugins_new(dir);
    const outbox_sink_plugin_t *p = outboxd_plugins_load(set, name, err, sizeof err);
    if (!p) {
        fprintf(stderr, "outboxd: %s\n", err);
        outboxd_plugins_free(set);
        return 2;
    }
    printf("plugin %s %s (%s), sink ABI %u.%u\n  %s\n", p->name, p->version ? p->version : "",
           outboxd_plugins_path(set, p), p->abi_major, p->abi_minor, p->description ? p->description : "");
    if (OUTBOXD_PLUGIN_HAS(p, payloads) && p->payloads)
        printf("  payloads: %s%s%s\n", p->payloads & OUTBOX_SINK_PAYLOAD_JSON ? "json" : "",
               (p->payloads & OUTBOX_SINK_PAYLOAD_JSON) && (p->payloads & OUTBOX_SINK_PAYLOAD_BSON) ? ", " : "",
               p->payloads & OUTBOX_SINK_PAYLOAD_BSON ? "bson" : "");
    printf("\noptions:\n");
    const outbox_sink_option_t *o;
    for (size_t i = 0; (o = outboxd_option_entry(p, i)); i++) {
        if (strcmp(o->key, "*") == 0) {
            printf("  (any other key)  passed to the plugin's client library, which checks it\n");
            continue;
        }
        bool secret = o->type == OUTBOX_SINK_OPT_SECRET;
        printf("  %-18s %s", o->key, outboxd_option_type_name(o->type));
        if (o->type == OUTBOX_SINK_OPT_ENUM)
            printf(" %s", o->choices);
        if (o->type == OUTBOX_SINK_OPT_INT)
            printf(" %lld..%lld", (long long)o->min, (long long)o->max);
        if (o->type == OUTBOX_SINK_OPT_DURATION) {
            if (o->min || o->max)
                printf(" %lld..%lld ms", (long long)o->min, (long long)o->max);
            printf(" (250ms, 10s, 5m, 1h; a bare number is ms)");
        }
        if (o->type == OUTBOX_SINK_OPT_LIST)
            printf(" (a YAML sequence or \"a, b, c\")");
        if (secret)
            printf(" (or %s_file: PATH; never printed)", o->key);
        if (o->default_value)
            printf(", default %s", secret ? "(secret)" : o->default_value);
        printf("%s\n      %s\n", o->required ? ", required" : "", o->help ? o->help : "");
    }
    outboxd_plugins_free(set);
    return 0;
}

/* One line when the file holds a secret inline and others may read it. */
static void warn_inline_secret(const outboxd_conf_t *conf) {
    if (conf->inline_secret && conf->readable_mode)
        LOG_WARN("%s:%d:%d: %s holds a secret inline, and the file is readable by %s (mode %04o): "
                 "write it as {file: PATH} or {env: NAME}, or chmod o-r,g-r the file",
                 conf->path, conf->inline_secret_line, conf->inline_secret_column, conf->inline_secret,
                 conf->readable_mode & 004 ? "everyone" : "its group", conf->readable_mode);
}

/* Creates the client pool, retrying with backoff while it cannot start:
 * with mongodb+srv:// the driver looks the hosts up in DNS right here, and
 * a DNS outage at boot must neither crash outboxd nor end it (systemd would
 * restart it into the same outage). Signals are taken meanwhile: SIGTERM
 * or SIGINT returns NULL with *stop_sig set; SIGHUP retries at once and is
 * remembered in *reload. */
static mongoc_client_pool_t *pool_new(const mongoc_uri_t *uri, const char *config_path, const sigset_t *sigs,
                                      int *stop_sig, bool *reload) {
    int64_t backoff = POOL_RETRY_MIN_MS;
    for (;;) {
        bson_error_t berr;
        mongoc_client_pool_t *pool = mongoc_client_pool_new_with_error(uri, &berr);
        if (pool)
            return pool;
        LOG_ERR("%s: mongodb.uri: the MongoDB client cannot start: %s (retrying in %lld s)", config_path,
                berr.message, (long long)backoff / 1000);
#ifdef HAVE_SYSTEMD
        /* Still starting: keep systemd from timing the start out. */
        sd_notifyf(0, "STATUS=waiting for MongoDB's DNS records (mongodb.uri)\nEXTEND_TIMEOUT_USEC=%lld",
                   (long long)(backoff + 30000) * 1000);
#endif
        struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            *stop_sig = sig;
            return NULL;
        }
        if (sig == SIGHUP)
            *reload = true;
        backoff = backoff * 2 > POOL_RETRY_MAX_MS ? POOL_RETRY_MAX_MS : backoff * 2;
    }
}

/* SIGHUP: read the config again and apply it sink by sink. What cannot
 * change without a restart (the server, the outbox, the plugin directory)
 * and any mistake in the new file keep the running configuration. */
static outboxd_sinkset_t *reload(outboxd_sinkset_t *sinks, const char *path, outboxd_plugins_t *plugins,
                                 outbox_t *outbox, mongoc_client_pool_t *pool, outboxd_reader_t *reader,
                                 outboxd_leases_t *leases, outboxd_metrics_t *metrics, outboxd_survey_t *survey) {
    char errbuf[2048];
    const outboxd_conf_t *cur = outboxd_sinkset_conf(sinks);
    LOG_INFO("SIGHUP: reloading %s", path);
    outboxd_conf_t *conf = outboxd_conf_load(path, errbuf, sizeof errbuf);
    if (!conf) {
        LOG_ERR("reload: %s; the running configuration stays", errbuf);
        return sinks;
    }
    outboxd_secrets_add_conf(conf);
    warn_inline_secret(conf);
    const char *what = strcmp(conf->mongodb_uri, cur->mongodb_uri) != 0 ? "mongodb.uri"
                       : strcmp(conf->database, cur->database) != 0   ? "mongodb.database"
                       : strcmp(conf->outbox, cur->outbox) != 0       ? "outbox"
                       : (conf->plugin_dir || cur->plugin_dir) &&
                               !(conf->plugin_dir && cur->plugin_dir && strcmp(conf->plugin_dir, cur->plugin_dir) == 0)
                           ? "plugin_dir"
                           : NULL;
    if (what) {
        LOG_ERR("reload: %s changed, which needs a restart of outboxd; the running configuration stays", what);
        outboxd_conf_free(conf);
        return sinks;
    }
    /* The shared reader keeps running through a reload: its ring stays as
     * it was started. */
    if (conf->ring_events != cur->ring_events || conf->ring_bytes != cur->ring_bytes)
        LOG_WARN("reload: reader.ring_events or reader.ring_bytes changed, which takes effect at the next start "
                 "of outboxd; the running ring stays as it is");
    /* The lease manager keeps running through a reload with the settings it
     * was started with (docs/leases.md, section 5). */
    if (conf->ha_enabled != cur->ha_enabled || conf->ha_lease_ttl_ms != cur->ha_lease_ttl_ms ||
        conf->ha_renew_ms != cur->ha_renew_ms ||
        strcmp(conf->ha_instance_id ? conf->ha_instance_id : "", cur->ha_instance_id ? cur->ha_instance_id : "") != 0)
        LOG_WARN("reload: ha changed, which takes effect at the next start of outboxd; the running leases "
                 "stay as they are");
    if (strcmp(conf->http_listen ? conf->http_listen : "", cur->http_listen ? cur->http_listen : "") != 0 ||
        conf->http_ready_grace_ms != cur->http_ready_grace_ms || conf->http_stuck_ms != cur->http_stuck_ms)
        LOG_WARN("reload: http changed, which takes effect at the next start of outboxd; the endpoint stays as "
                 "it is");
    outboxd_sinkset_t *next = outboxd_sinkset_prepare(conf, path, plugins, errbuf, sizeof errbuf);
    if (!next) {
        LOG_ERR("reload: %s; the running configuration stays", errbuf);
        outboxd_conf_free(conf);
        return sinks;
    }
    outboxd_sinkset_metrics(next, metrics);
    outboxd_survey_configure(survey, &(outboxd_survey_conf_t){.every_ms = conf->log_survey_ms,
                                                              .warn_headroom = conf->log_warn_headroom,
                                                              .warn_every_ms = conf->log_warn_every_ms});
    sinks = outboxd_sinkset_reload(sinks, next, outbox, pool, reader, leases);
    LOG_INFO("reload: done");
    return sinks;
}

/* The http endpoint of conf (http.listen set); NULL when it cannot listen,
 * said on stderr at the line of http.listen (as a mistake in the file is:
 * --check and the start fail alike). */
static outboxd_http_t *start_http(const outboxd_conf_t *conf, const char *config_path, outboxd_metrics_t *metrics) {
    char errbuf[1024];
    outboxd_http_t *h = outboxd_http_start(conf->http_listen, conf->mongodb_uri, metrics, conf->http_ready_grace_ms,
                                           conf->http_stuck_ms, errbuf, sizeof errbuf);
    if (!h) {
        outboxd_secrets_scrub(errbuf, sizeof errbuf);
        fprintf(stderr, "outboxd: %s:%d: %s\n", config_path, conf->http_listen_line, errbuf);
    }
    return h;
}

int outboxd_daemon_main(int argc, char **argv, const outboxd_reader_source_t *source) {
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
        {"plugin-help", required_argument, NULL, 'H'},
        {"plugin-dir", required_argument, NULL, 'p'}, {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *plugin_dir = NULL, *help_plugin = NULL;
    bool check = false;
    /* Signals are blocked from the start, in every thread, and taken by
     * the main thread alone with sigwait: a SIGTERM that arrives while
     * outboxd is still starting waits, and then stops it cleanly. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* A plugin's client library may write to a socket the peer closed
     * (hiredis uses plain write()): that must be an error, not the end of
     * the daemon. */
    signal(SIGPIPE, SIG_IGN);
    int c;
    while ((c = getopt_long(argc, argv, "c:vVh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'k': check = true; break;
        case 'p': plugin_dir = optarg; break;
        case 'H': help_plugin = optarg; break;
        case 'v': outboxd_log_set_level(OUTBOX_SINK_LOG_DEBUG); break;
        case 'V': printf("outboxd (service-outbox) %s, sink ABI %d.%d\n", outbox_version_str(),
                         OUTBOX_SINK_ABI_MAJOR, OUTBOX_SINK_ABI_MINOR); return 0;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (help_plugin && optind == argc)
        return plugin_help(help_plugin, plugin_dir ? plugin_dir : OUTBOXD_PLUGIN_DIR);
    if (!config_path || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }

    char errbuf[2048];
    outboxd_conf_t *conf = outboxd_conf_load(config_path, errbuf, sizeof errbuf);
    if (!conf) {
        fprintf(stderr, "outboxd: %s\n", errbuf);
        return 2;
    }
    /* Before anything can print: from here on every log line, checkpoint
     * message and error is scrubbed of them. */
    outboxd_secrets_add_conf(conf);
    warn_inline_secret(conf);
    if (!plugin_dir)
        plugin_dir = conf->plugin_dir ? conf->plugin_dir : OUTBOXD_PLUGIN_DIR;

    /* Every plugin is loaded and every sink's options checked before any
     * thread starts: configuration mistakes stop outboxd at once. */
    outboxd_plugins_t *plugins = outboxd_plugins_new(plugin_dir);
    int status = 0;
    outboxd_sinkset_t *sinks = outboxd_sinkset_prepare(conf, config_path, plugins, errbuf, sizeof errbuf);
    if (!sinks) {
        outboxd_secrets_scrub(errbuf, sizeof errbuf);
        fprintf(stderr, "outboxd: %s\n", errbuf);
        outboxd_conf_free(conf);
        outboxd_plugins_free(plugins);
        outboxd_secrets_clear();
        return 2;
    }
    if (check) {
        /* http.listen: bound for a moment, so that a port in use or a
         * host that is not this machine's shows now, not at the start. */
        if (conf->http_listen) {
            outboxd_metrics_t *metrics = outboxd_metrics_new();
            mongoc_init();
            outboxd_http_t *h = metrics ? start_http(conf, config_path, metrics) : NULL;
            bool listened = h != NULL;
            outboxd_http_stop(h);
            outboxd_metrics_free(metrics);
            mongoc_cleanup();
            if (!listened) {
                status = 2;
                goto out;
            }
        }
        outboxd_sinkset_print(sinks, stdout);
        printf("%s: ok\n", config_path);
        goto out;
    }

    mongoc_init();
    mongoc_log_set_handler(log_handler, NULL);
    bson_error_t berr;
    /* The loader checked the URI with liboutbox's rules already. */
    mongoc_uri_t *uri = mongoc_uri_new_with_error(conf->mongodb_uri, &berr);
    if (!uri) {
        fprintf(stderr, "outboxd: %s: mongodb.uri is not a valid connection string\n", config_path);
        status = 2;
        mongoc_cleanup();
        goto out;
    }
    mongoc_uri_set_appname(uri, "outboxd");
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, SERVER_SELECTION_MS);
    int stop_sig = 0;
    bool reload_pending = false;
    mongoc_client_pool_t *pool = pool_new(uri, config_path, &sigs, &stop_sig, &reload_pending);
    if (!pool) {
        LOG_INFO("%s: stopped before the MongoDB client could start", stop_sig == SIGTERM ? "SIGTERM" : "SIGINT");
        mongoc_uri_destroy(uri);
        mongoc_cleanup();
        goto out;
    }
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    outbox_error_t err;
    outbox_conf_t *oconf = outbox_conf_new();
    outbox_conf_set_client_pool(oconf, pool);
    /* Checked by the loader with these very rules; a refusal here would be
     * a bug, but it must still stop outboxd with the reason. A sink's tail
     * waits at most tail.await_ms on the server for new events before it
     * can turn to its acks and checkpoint; it bounds how long a lone event
     * can wait behind an empty wait. A round trip brings at most a quarter
     * of the ring (and at most liboutbox's 1,000): the reader hands a batch
     * to the ring while the server builds the next one, instead of waiting
     * for room for a batch larger than the ring. */
    outbox_t *outbox = NULL;
    char batch[24];
    snprintf(batch, sizeof batch, "%lld",
             (long long)(conf->ring_events >= 4000 ? 1000 : conf->ring_events >= 4 ? conf->ring_events / 4 : 1));
    if (outbox_conf_set(oconf, "database", conf->database, &err) == OUTBOX_OK &&
        outbox_conf_set(oconf, "outbox", conf->outbox, &err) == OUTBOX_OK &&
        outbox_conf_set(oconf, "tail.await_ms", "100", &err) == OUTBOX_OK &&
        outbox_conf_set(oconf, "tail.batch_size", batch, &err) == OUTBOX_OK)
        outbox = outbox_new(oconf, &err);
    /* The endpoint before any thread of the sinks: a port that cannot be
     * bound stops outboxd at once, as a mistake in the file does. */
    outboxd_metrics_t *metrics = outbox ? outboxd_metrics_new() : NULL;
    outboxd_http_t *http = NULL;
    if (outbox && !metrics)
        abort(); /* out of memory */
    if (metrics)
        outboxd_metrics_ready_grace(metrics, conf->http_ready_grace_ms);
    if (outbox && conf->http_listen && !(http = start_http(conf, config_path, metrics))) {
        outbox_destroy(outbox);
        outbox = NULL;
        status = 2;
    } else if (!outbox) {
        fprintf(stderr, "outboxd: %s: %s\n", config_path, err.message);
        outbox_conf_destroy(oconf);
        status = 2;
    }
    if (outbox && !outbox_checked(outbox, config_path)) {
        outboxd_http_stop(http);
        http = NULL;
        outbox_destroy(outbox);
        outbox = NULL;
        status = 2;
    }
    if (outbox) {
        if (http)
            LOG_INFO("http: serving /metrics, /healthz and /readyz on %s", conf->http_listen);
        char *shown = outbox_uri_redacted(conf->mongodb_uri);
        LOG_INFO("outbox %s.%s at %s, %zu sinks, plugins from %s", conf->database, conf->outbox, shown,
                 conf->n_sinks, plugin_dir);
        outbox_free(shown);
        /* One reader for the outbox, whatever the number of sinks: it
         * waits for the sinks' checkpoints and starts at the oldest. */
        char logcoll[200];
        snprintf(logcoll, sizeof logcoll, "%s", conf->outbox);
        outboxd_reader_t *reader = outboxd_reader_new(outbox, pool, conf->database, logcoll,
                                                      (size_t)conf->ring_events, (size_t)conf->ring_bytes);
        if (source)
            outboxd_reader_set_source(reader, source); /* bench/bench_pipeline.c: events from memory */
        /* The leases before the sinks: the manager's first round (before
         * any sink starts) bids for every lease got so far, so a single
         * instance starts holding everything, as fast as without leases. */
        outboxd_leases_t *leases = outboxd_leases_new(pool, conf->database, conf->outbox, conf);
        if (!leases)
            abort(); /* out of memory */
        outboxd_sinkset_leases(sinks, leases);
        outboxd_sinkset_metrics(sinks, metrics);
        outboxd_reader_watch(reader, outboxd_metrics_heartbeat(metrics, OUTBOXD_THREAD_READER));
        outboxd_leases_watch(leases, outboxd_metrics_heartbeat(metrics, OUTBOXD_THREAD_LEASES));
        /* The log's figures, each sink's lag and headroom: /metrics, and
         * the warning of a gap to come (survey.h). */
        outboxd_survey_t *survey = outboxd_survey_new(
            pool, conf->database, conf->outbox, metrics, reader,
            &(outboxd_survey_conf_t){.every_ms = conf->log_survey_ms, .warn_headroom = conf->log_warn_headroom,
                                     .warn_every_ms = conf->log_warn_every_ms});
        if (!survey)
            abort(); /* out of memory */
        promoter_t pr = {.outbox = outbox, .lease = outboxd_leases_get(leases, OUTBOXD_LEASE_PROMOTER)};
        if (!outboxd_leases_start(leases))
            LOG_ERR("cannot start the thread of the lease manager: no lease is renewed, and the sinks stand by");
        outboxd_sinkset_start(sinks, outbox, pool, reader);
        if (!outboxd_reader_start(reader))
            LOG_ERR("cannot start the thread of the shared reader: the sinks read on tails of their own");
        if (conf->log_survey_ms == 0)
            LOG_INFO("log.survey_ms is 0: no survey of the log (no lag, headroom or log figures, no headroom "
                     "warning)");
        if (!outboxd_survey_start(survey))
            LOG_ERR("cannot start the thread of the log survey: no lag, headroom or log figures, no headroom warning");
        pthread_t promoter;
        pthread_create(&promoter, NULL, promote_loop, &pr);
        notify("READY=1\nSTATUS=publishing");

        for (;;) {
            int sig;
            if (reload_pending) { /* a SIGHUP came while the client could not start */
                reload_pending = false;
                sig = SIGHUP;
            } else {
                sigwait(&sigs, &sig);
            }
            if (sig == SIGHUP) {
                notify("RELOADING=1");
                sinks = reload(sinks, config_path, plugins, outbox, pool, reader, leases, metrics, survey);
                notify("READY=1\nSTATUS=publishing");
                continue;
            }
            LOG_INFO("%s: stopping: flushing sinks and writing checkpoints", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        notify("STOPPING=1\nSTATUS=flushing sinks, writing checkpoints");
        atomic_store(&stopping, true);
        outboxd_sinkset_request_stop(sinks); /* all at once, not one after the other */
        outboxd_survey_stop(survey);         /* a walk in progress ends at its next batch */
        outboxd_reader_stop(reader);         /* stop reading; the ring stays while sinks flush */
        pthread_join(promoter, NULL);
        outboxd_sinkset_stop(sinks);
        sinks = NULL;
        outboxd_survey_free(survey);
        /* After the sinks (each released its lease after its last
         * checkpoint): the promoter's lease and the presence go. */
        outboxd_leases_stop(leases);
        outboxd_leases_free(leases);
        outboxd_reader_free(reader);
        outbox_destroy(outbox);
        LOG_INFO("stopped");
    }
    outboxd_http_stop(http); /* after the sinks: a scrape during the stop still answers */
    outboxd_metrics_free(metrics);
    mongoc_client_pool_destroy(pool);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
out:
    outboxd_sinkset_stop(sinks); /* NULL after a run; frees an unstarted set */
    outboxd_plugins_free(plugins);
    outboxd_secrets_clear();
    return status;
}
