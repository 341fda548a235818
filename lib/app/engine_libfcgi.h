/* engine_libfcgi.h - the classic libfcgi engine (--engine libfcgi). */
#ifndef M8_ENGINE_LIBFCGI_H
#define M8_ENGINE_LIBFCGI_H

#include "app/engine.h"

/* opts->threads threads accepting on listen_fd under a mutex, one request
 * per connection each; serves until SIGTERM/SIGINT/SIGQUIT.  Signals must
 * be installed (m8_signals_install). */
M8_INTERNAL int m8_libfcgi_serve(const m8_engine_opts *opts, int listen_fd);

#endif
