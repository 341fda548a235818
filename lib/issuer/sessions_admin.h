/* sessions_admin.h - the limits of the issuer's /sessions/ routes and of
 * the superuser probe (doc/issuer.md#sessions-and-security-routes).  The
 * handlers (sessions_admin.c) are declared with the other route groups in
 * service.h, whose route table uses them: the session rows read as
 * ClientSessionPublic, the superuser's deletion of one session or of every
 * session of a user (row deleted, JTI blacklisted, refresh allowlist entry
 * removed, audit row in the same transaction, v1 session-revoked event
 * after the commit), and GET /security/superuser-probe with its window. */
#ifndef M8_ISSUER_SESSIONS_ADMIN_H
#define M8_ISSUER_SESSIONS_ADMIN_H

#include "core/common.h" /* first: config.h sets the feature macros */

/* The most rows one GET /sessions/ returns (as GET /users/). */
#define M8_ISSUER_SESSIONS_LIST_MAX 1000
/* The probe's window: at most this many calls per user per window. */
#define M8_ISSUER_PROBE_LIMIT 30
#define M8_ISSUER_PROBE_WINDOW_S 60

#endif
