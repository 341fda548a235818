/* server.h - serving, all of it: listening sockets, signals, and the three
 * engines (epoll FastCGI, libfcgi, CGI).  Kept for the programs that want
 * the whole set; each part has its own header. */
#ifndef M8_SERVER_H
#define M8_SERVER_H

#include "app/cgi.h"
#include "app/engine.h"
#include "app/engine_epoll.h"
#include "app/engine_libfcgi.h"
#include "app/listen.h"
#include "app/signals.h"

#endif
