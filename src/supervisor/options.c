/* options.c - fcgim8d's command line: --help text, parsing, and the checks
 * on the values (fcgim8d(8)). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/server.h"
#include "fcgim8d.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fcgim8d [options] -- /path/to/service [service args]\n"
            "\n"
            "Runs a pool of FastCGI workers of a fcgi-m8 service (see fcgim8d(8)).\n"
            "\n"
            "  --listen unix:/path|host:port  listen socket (else LISTEN_FDS from systemd or\n"
            "                                 a listening socket on fd 0 from spawn-fcgi)\n"
            "  --socket-owner USER --socket-group GROUP --socket-mode MODE (default 0660)\n"
            "  --backlog N                    listen backlog (default 1024)\n"
            "  --workers N                    static pool size (default 4); with dynamic: start\n"
            "  --pm static|dynamic            pool mode (default static)\n"
            "  --min-spare N --max-spare N --max-workers N   dynamic pool (defaults 1, 3, 8)\n"
            "  --threads N                    threads per worker (passed to the service)\n"
            "  --max-requests N               recycle a worker after N requests (0 = never)\n"
            "  --request-timeout S            replace a worker stuck on one request longer\n"
            "  --slow-log S                   log requests running longer than S seconds\n"
            "  --shutdown-timeout S           on stop, how long requests in progress may\n"
            "                                 take to finish (default 30)\n"
            "  --drain-timeout S              a retiring worker (reload, --max-requests,\n"
            "                                 dynamic shrink) serves its kept connections\n"
            "                                 until the web server closes them, at most this\n"
            "                                 long (default 135; see fcgim8d(8))\n"
            "  --idle-timeout S --request-deadline S   passed to the workers (defaults 75, 30)\n"
            "  --env-file PATH                settings file (re-read on SIGHUP)\n"
            "  --user USER --group GROUP      drop privileges after binding\n"
            "  --pid-file PATH  --log-file PATH (SIGUSR1 reopens it)\n"
            "  --foreground (default) | --daemon\n"
            "  --status-listen ADDR           plain HTTP status and metrics (GET /status,\n"
            "                                 GET /metrics); loopback or a unix socket\n"
            "  --db-wait-tries N --db-wait-interval S   pre-start database wait (300, 5)\n"
            "  --version --help\n"
            "\n"
            "Signals: SIGHUP reload, SIGTERM/SIGINT drain and stop, SIGUSR1 reopen the log.\n");
}

int parse_options(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"socket-owner", required_argument, NULL, 'O'},
        {"socket-group", required_argument, NULL, 'G'},
        {"socket-mode", required_argument, NULL, 'm'},
        {"backlog", required_argument, NULL, 'b'},
        {"workers", required_argument, NULL, 'w'},
        {"pm", required_argument, NULL, 'P'},
        {"min-spare", required_argument, NULL, '1'},
        {"max-spare", required_argument, NULL, '2'},
        {"max-workers", required_argument, NULL, '3'},
        {"threads", required_argument, NULL, 't'},
        {"max-requests", required_argument, NULL, 'r'},
        {"request-timeout", required_argument, NULL, 'T'},
        {"slow-log", required_argument, NULL, 'S'},
        {"shutdown-timeout", required_argument, NULL, 's'},
        {"drain-timeout", required_argument, NULL, 1001},
        {"idle-timeout", required_argument, NULL, 1002},
        {"request-deadline", required_argument, NULL, 1003},
        {"env-file", required_argument, NULL, 'e'},
        {"user", required_argument, NULL, 'u'},
        {"group", required_argument, NULL, 'g'},
        {"pid-file", required_argument, NULL, 'p'},
        {"log-file", required_argument, NULL, 'L'},
        {"foreground", no_argument, NULL, 'f'},
        {"daemon", no_argument, NULL, 'd'},
        {"status-listen", required_argument, NULL, 'A'},
        {"db-wait-tries", required_argument, NULL, 'W'},
        {"db-wait-interval", required_argument, NULL, 'I'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (options){.socket_mode = 0660,
                   .backlog = 1024,
                   .workers = 4,
                   .threads = 4,
                   .shutdown_timeout = 30,
                   .drain_timeout = M8_DRAIN_TIMEOUT_DEFAULT_S,
                   .min_spare = 1,
                   .max_spare = 3,
                   .max_workers = 8,
                   .db_wait_tries = 300,
                   .db_wait_interval = 5};
    int c, idx = 0;
    opterr = 0;
    /* "+": stop at the first non-option, so the service's own options
     * after "--" (or after its path) are never ours. */
    while ((c = getopt_long(argc, argv, "+:", opts, &idx)) != -1) {
        int bad = 0;
        char *end;
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'O': o->socket_owner = optarg; break;
        case 'G': o->socket_group = optarg; break;
        case 'e': o->env_file = optarg; break;
        case 'u': o->user = optarg; break;
        case 'g': o->group = optarg; break;
        case 'p': o->pid_file = optarg; break;
        case 'L': o->log_file = optarg; break;
        case 'A': o->status_listen = optarg; break;
        case 'f': o->daemonize = false; break;
        case 'd': o->daemonize = true; break;
        case 'm':
            errno = 0;
            o->socket_mode = strtoll(optarg, &end, 8);
            bad = errno || *end || !*optarg || o->socket_mode < 0 || o->socket_mode > 0777;
            break;
        case 'b': bad = m8_parse_ll(optarg, 1, 65535, &o->backlog); break;
        case 'w': bad = m8_parse_ll(optarg, 1, MAX_WORKERS, &o->workers); break;
        case '1': bad = m8_parse_ll(optarg, 0, MAX_WORKERS, &o->min_spare); break;
        case '2': bad = m8_parse_ll(optarg, 1, MAX_WORKERS, &o->max_spare); break;
        case '3': bad = m8_parse_ll(optarg, 1, MAX_WORKERS, &o->max_workers); break;
        case 't':
            bad = m8_parse_ll(optarg, 1, 256, &o->threads);
            o->threads_set = true;
            break;
        case 'r': bad = m8_parse_ll(optarg, 0, INT64_MAX, &o->max_requests); break;
        case 'T': bad = m8_parse_double(optarg, 0, 86400, &o->request_timeout); break;
        case 'S': bad = m8_parse_double(optarg, 0, 86400, &o->slow_log); break;
        case 's': bad = m8_parse_ll(optarg, 0, 3600, &o->shutdown_timeout); break;
        case 1001:
            bad = m8_parse_double(optarg, 0, 86400, &o->drain_timeout);
            o->drain_arg = optarg;
            break;
        case 1002: {
            double v;
            bad = m8_parse_double(optarg, 0.1, 86400, &v);
            o->idle_arg = optarg;
            break;
        }
        case 1003: {
            double v;
            bad = m8_parse_double(optarg, 0.1, 3600, &v);
            o->deadline_arg = optarg;
            break;
        }
        case 'W': bad = m8_parse_ll(optarg, 1, 1000000, &o->db_wait_tries); break;
        case 'I': bad = m8_parse_double(optarg, 0.01, 3600, &o->db_wait_interval); break;
        case 'P':
            o->dynamic = strcmp(optarg, "dynamic") == 0;
            bad = !o->dynamic && strcmp(optarg, "static") != 0;
            break;
        case 'V': printf("fcgim8d (fcgi-m8 %s)\n", m8_version()); exit(0);
        case 'h': usage(stdout); exit(0);
        case ':': /* the ":" of "+:": an option without its value */
            fprintf(stderr, "fcgim8d: %s needs a value (see --help)\n", argv[optind - 1]);
            return M8_EX_USAGE;
        default:
            fprintf(stderr, "fcgim8d: unknown option %s (see --help)\n", argv[optind - 1]);
            return M8_EX_USAGE;
        }
        if (bad) {
            fprintf(stderr, "fcgim8d: bad value \"%s\" for --%s (see --help)\n", optarg,
                    opts[idx].name);
            return M8_EX_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "fcgim8d: no service given: fcgim8d [options] -- /path/to/service\n");
        return M8_EX_USAGE;
    }
    o->service_argv = argv + optind;
    if (o->dynamic) {
        if (o->max_spare < o->min_spare || o->max_workers < o->min_spare ||
            o->workers > o->max_workers) {
            fprintf(stderr, "fcgim8d: dynamic pool needs min-spare <= max-spare, "
                            "min-spare <= max-workers and workers <= max-workers\n");
            return M8_EX_USAGE;
        }
    }
    return 0;
}
