/* fcgim8-issuer - the m8 token issuer as an fcgi-m8 service, wire-compatible
 * with fa-auth-m8: login, refresh and logout, the JWKS, self-service and the
 * superuser's user administration, on MariaDB or PostgreSQL.  The service
 * itself is lib/issuer (doc/issuer.md); this file is its entry point.  It
 * takes the command line of every fcgi-m8 service (--listen, --env-file,
 * --threads, --check ...) and runs under fcgim8d, spawn-fcgi or mod_fcgid.
 * See fcgim8-issuer(8). */
#include "config.h"

#include "issuer/service.h"

int main(int argc, char **argv)
{
    return m8_issuer_main(argc, argv);
}
