/* cli.c - the standard command line of a service (m8_app_main): the
 * options, --help and --version (cli.h). */
#include "app/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cgi.h"
#include "app/listen.h"
#include "core/exitcodes.h"

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "Usage: %s [options]\n"
            "A FastCGI service built on fcgi-m8 %s.\n\n"
            "  --listen ADDR        serve FastCGI on unix:/path or host:port; without it,\n"
            "                       serve the listening socket on fd 0 (spawn-fcgi, fcgim8d,\n"
            "                       systemd) or one CGI request (GATEWAY_INTERFACE set)\n"
            "  --socket-mode MODE   permissions of a unix socket (octal, default 0660)\n"
            "  --backlog N          listen backlog (default 1024)\n"
            "  --env-file PATH      read settings from this .env file (must exist)\n"
            "  --threads N          request threads (default 4, 1-256)\n"
            "  --shutdown-timeout S seconds to finish requests after SIGTERM (default 30)\n"
            "  --idle-timeout S     close a connection idle this long (default 75; keep it\n"
            "                       above the web server's keep-alive timeout)\n"
            "  --request-deadline S close a connection whose request has not arrived in\n"
            "                       full this long after its first byte (default 30)\n"
            "  --drain-timeout S    after SIGQUIT or --max-requests: serve kept connections\n"
            "                       until the web server closes them, at most this long\n"
            "                       (default 135)\n"
            "  --engine NAME        epoll (default: kept-alive connections hold no thread)\n"
            "                       or libfcgi (one request per connection per thread)\n"
            "  --check              load settings, run config health and the startup\n"
            "                       validators, then exit 0 (ok) or 78 (invalid)\n"
            "  --version            print the version and exit\n"
            "  --help               print this help and exit\n\n"
            "Settings come from NAME_FILE files, the environment and the .env file, in that\n"
            "order of precedence.  See fcgim8(3).\n",
            prog, m8_version());
}

int m8_cli_parse(m8_cli *cli, const m8_app *app, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"socket-mode", required_argument, NULL, 'm'},
        {"backlog", required_argument, NULL, 'b'},
        {"env-file", required_argument, NULL, 'e'},
        {"threads", required_argument, NULL, 't'},
        {"shutdown-timeout", required_argument, NULL, 's'},
        {"engine", required_argument, NULL, 'E'},
        {"idle-timeout", required_argument, NULL, 1001},
        {"request-deadline", required_argument, NULL, 1002},
        {"drain-timeout", required_argument, NULL, 1003},
        {"check", no_argument, NULL, 'c'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prog = argc > 0 && argv[0] ? argv[0] : "service";
    const char *listen_spec = NULL, *env_file = NULL;
    long long threads = 4, mode = 0660, backlog = 1024, shutdown_s = 30;
    m8_conn_limits limits = {M8_IDLE_TIMEOUT_DEFAULT_S, M8_REQUEST_DEADLINE_DEFAULT_S};
    double drain_s = M8_DRAIN_TIMEOUT_DEFAULT_S;
    bool check = false, libfcgi = false;
    int c, idx = 0;
    if (!m8_is_listen_socket(0))
        argc = m8_cgi_strip_search_words(argc);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        int bad = 0;
        char *end;
        switch (c) {
        case 'l': listen_spec = optarg; break;
        case 'e': env_file = optarg; break;
        case 'c': check = true; break;
        case 'E':
            libfcgi = strcmp(optarg, "libfcgi") == 0;
            bad = !libfcgi && strcmp(optarg, "epoll") != 0;
            break;
        case 't': bad = m8_parse_ll(optarg, 1, 256, &threads); break;
        case 'b': bad = m8_parse_ll(optarg, 1, 65535, &backlog); break;
        case 's': bad = m8_parse_ll(optarg, 0, 3600, &shutdown_s); break;
        case 1001: bad = m8_parse_double(optarg, 0.1, 86400, &limits.idle_timeout_s); break;
        case 1002: bad = m8_parse_double(optarg, 0.1, 3600, &limits.request_deadline_s); break;
        case 1003: bad = m8_parse_double(optarg, 0, 86400, &drain_s); break;
        case 'm':
            errno = 0;
            mode = strtoll(optarg, &end, 8);
            bad = errno || *end || !*optarg || mode < 0 || mode > 0777;
            break;
        case 'V':
            printf("%s (fcgi-m8 %s)\n", app->service_name ? app->service_name : prog, m8_version());
            return 0;
        case 'h': usage(stdout, prog); return 0;
        default:
            fprintf(stderr, "%s: unknown option %s (see --help)\n", prog, argv[optind - 1]);
            return M8_EX_USAGE;
        }
        if (bad) {
            fprintf(stderr, "%s: bad value \"%s\" for --%s (see --help)\n", prog, optarg,
                    opts[idx].name);
            return M8_EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", prog, argv[optind]);
        return M8_EX_USAGE;
    }

    *cli = (m8_cli){.prog = prog,
                    .listen_spec = listen_spec,
                    .env_file = env_file,
                    .threads = threads,
                    .mode = mode,
                    .backlog = backlog,
                    .shutdown_s = shutdown_s,
                    .limits = limits,
                    .drain_s = drain_s,
                    .check = check,
                    .libfcgi = libfcgi};
    return -1;
}
