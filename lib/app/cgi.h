/* cgi.h - CGI mode: one request from the environment and stdin, the answer
 * on stdout; and the rule for the query words a CGI server puts on the
 * command line. */
#ifndef M8_CGI_H
#define M8_CGI_H

#include "app/engine.h"

/* Serves one CGI request from environ and stdin; returns the exit status. */
M8_INTERNAL int m8_cgi_serve(const m8_engine_opts *opts);

/* When GATEWAY_INTERFACE is set and QUERY_STRING has no '=', drops the
 * query words a CGI server appended to the command line (RFC 3875 4.4);
 * returns the new argc. */
M8_INTERNAL int m8_cgi_strip_search_words(int argc);

#endif
