/* fcgim8-prestart - wait until the service's database answers `SELECT 1`
 * (the seed's fastapi-m8-prestart, doc/settings.md#database-wait).
 *
 *   fcgim8-prestart [--env-file PATH] [--tries N] [--interval S]
 *                   [--timeout S] [--issuer]
 *
 * Settings come from NAME_FILE files, the environment and the .env file, as
 * for every fcgi-m8 service.  Exit status: 0 the database answered (or none
 * is configured: SELECTED_DB and DB_HOST unset), 1 it did not answer by the
 * last try, 64 usage error, 78 invalid settings (including a SELECTED_DB this
 * build has no backend for).  See fcgim8-prestart(1). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/settings.h"
#include "core/exitcodes.h"
#include "core/log.h"
#include "db/db.h"

extern char **environ;

#define EXIT_NOT_READY 1

#define TRIES_MAX 1000000L

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: fcgim8-prestart [options]\n"
            "Wait until the database of the service's settings answers SELECT 1.\n\n"
            "  --env-file PATH        read settings from this .env file (must exist)\n"
            "  --tries N              attempts before giving up (default %d, 1-%ld)\n"
            "  --interval S           seconds to wait after a failed attempt (default %g;\n"
            "                         fractions allowed, 0-%g)\n"
            "  --timeout S            seconds one attempt may take to connect, and again\n"
            "                         to answer (default %g)\n"
            "  --issuer               the settings are fcgim8-issuer's (its own are known)\n"
            "  --version              print the version and exit\n"
            "  --help                 print this help and exit\n\n"
            "Exit status: 0 the database answered, or no database is configured\n"
            "(SELECTED_DB and DB_HOST unset); 1 no answer by the last attempt;\n"
            "64 usage error; 78 invalid settings or a SELECTED_DB this build lacks.\n"
            "Each failed attempt logs one JSON line on stderr.  See fcgim8-prestart(1).\n",
            M8_DB_WAIT_TRIES_DEFAULT, TRIES_MAX, M8_DB_WAIT_INTERVAL_DEFAULT, M8_DB_TIMEOUT_MAX,
            M8_DB_CONNECT_TIMEOUT_DEFAULT);
}

static void log_errs(const m8_errlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        m8_log(M8_LOG_CRITICAL, "%s", e->lines[i]);
}

static m8_settings *load(const char *env_file, bool uses_database, bool issuer)
{
    m8_errlist errs = {0};
    m8_settings_source src = {
        .env = environ, .env_file = env_file, .uses_database = uses_database, .issuer = issuer};
    m8_settings *s = m8_settings_load(&src, &errs);
    if (!s) {
        log_errs(&errs);
        m8_log(M8_LOG_CRITICAL, "Invalid settings: cannot wait for the database.");
    }
    m8_errlist_free(&errs);
    return s;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"env-file", required_argument, NULL, 'e'}, {"tries", required_argument, NULL, 't'},
        {"interval", required_argument, NULL, 'i'}, {"timeout", required_argument, NULL, 'c'},
        {"issuer", no_argument, NULL, 's'},         {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *env_file = NULL;
    bool issuer = false;
    long long tries = M8_DB_WAIT_TRIES_DEFAULT;
    double interval = M8_DB_WAIT_INTERVAL_DEFAULT;
    m8_db_timeouts to = {M8_DB_CONNECT_TIMEOUT_DEFAULT, 0};
    int c, idx = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        int bad = 0;
        switch (c) {
        case 'e': env_file = optarg; break;
        case 's': issuer = true; break;
        case 't': bad = m8_parse_ll(optarg, 1, TRIES_MAX, &tries); break;
        case 'i': bad = m8_parse_double(optarg, 0, M8_DB_TIMEOUT_MAX, &interval); break;
        case 'c': bad = m8_parse_double(optarg, 0.001, M8_DB_TIMEOUT_MAX, &to.connect_s); break;
        case 'V':
            printf("fcgim8-prestart (fcgi-m8 %s; backends:%s%s)\n", m8_version(),
                   m8_db_backend_available(M8_DB_MYSQL) ? " mysql" : "",
                   m8_db_backend_available(M8_DB_POSTGRES) ? " postgres" : "");
            return 0;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "fcgim8-prestart: unknown option %s (see --help)\n", argv[optind - 1]);
            return M8_EX_USAGE;
        }
        if (bad) {
            fprintf(stderr, "fcgim8-prestart: bad value \"%s\" for --%s (see --help)\n", optarg,
                    opts[idx].name);
            return M8_EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fcgim8-prestart: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return M8_EX_USAGE;
    }
    to.io_s = to.connect_s; /* SELECT 1 needs no longer than the connect */

    /* A lost connection must be an error, not a signal. */
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);

    /* First without the database requirement (doc/settings.md#database), to tell "no database"
     * (the seed skips) from an incomplete one (an error naming each field). */
    m8_settings *s = load(env_file, false, issuer);
    if (!s)
        return M8_EX_CONFIG;
    if (!m8_db_configured(s)) {
        m8_log(M8_LOG_INFO, "No database configured (SELECTED_DB and DB_HOST unset): skipping.");
        m8_settings_free(s);
        return 0;
    }
    m8_settings_free(s);
    s = load(env_file, true, issuer);
    if (!s)
        return M8_EX_CONFIG;

    char err[512] = "";
    int rc = m8_db_wait(s, (long)tries, interval, &to, NULL, err, sizeof err);
    m8_settings_free(s);
    if (rc == 0)
        return 0;
    if (rc == M8_ECONFIG) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        return M8_EX_CONFIG;
    }
    m8_log(M8_LOG_ERROR, "The database did not answer after %lld %s: %s", tries,
           tries == 1 ? "try" : "tries", err);
    return EXIT_NOT_READY;
}
