/* cli.h - the standard command line of a service (fcgim8(3) m8_app_main). */
#ifndef M8_CLI_H
#define M8_CLI_H

#include "app/app.h"
#include "app/engine.h"

typedef struct m8_cli {
    const char *prog, *listen_spec, *env_file; /* borrowed from argv */
    long long threads, mode, backlog, shutdown_s;
    m8_conn_limits limits;
    double drain_s;
    bool check, libfcgi;
} m8_cli;

/* Parses argv (the query words of a CGI request dropped first, cgi.h) into
 * cli.  Returns -1 to go on serving, or the exit status to leave with:
 * 0 after --help or --version (printed on stdout), 64 after a bad option
 * (one line on stderr). */
M8_INTERNAL int m8_cli_parse(m8_cli *cli, const m8_app *app, int argc, char **argv);

#endif
