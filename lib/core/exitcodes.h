/* exitcodes.h - the exit statuses fcgi-m8's programs share, named once.
 * The values are those of BSD's sysexits.h, so scripts and service managers
 * read them the usual way (fcgim8(3) m8_app_main, fcgim8d(8), fcgim8-gate(8),
 * fcgim8-prestart(1)).  Never installed. */
#ifndef M8_EXITCODES_H
#define M8_EXITCODES_H

#define M8_EX_USAGE 64    /* a bad command line */
#define M8_EX_SOFTWARE 70 /* an internal failure: a pipe, a fork, a thread, no ready worker */
#define M8_EX_IOERR 74    /* an answer could not be written (CGI mode) */
#define M8_EX_CONFIG 78   /* invalid settings, or the startup validators refused them */

#endif
