/* db_mariadb.c - the MariaDB/MySQL backend of db.h over libmariadb
 * (MariaDB Connector/C).  The only file that includes mysql.h.
 *
 * Like PyMySQL (the reference's driver) it always speaks TCP, also for
 * "localhost" (libmariadb would pick its default unix socket there), in
 * utf8mb4, reads no option files, and never reconnects by itself: db.c
 * decides when to reconnect. */
#include "db.h"

#include <math.h>
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct m8_db_conn {
    MYSQL *my;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc = -1;

/* mysql_library_init is not thread-safe; mysql_init calls it lazily, so
 * call it once before any thread can race there. */
static void library_init(void)
{
    g_init_rc = mysql_library_init(0, NULL, NULL);
}

/* libmariadb takes whole seconds: round up, at least 1. */
static unsigned int whole_seconds(double s)
{
    double c = ceil(s);
    return c < 1 ? 1u : c > 86400 ? 86400u : (unsigned int)c;
}

static m8_db_conn *my_connect(const m8_db_params *p, char *err, size_t errlen)
{
    pthread_once(&g_once, library_init);
    if (g_init_rc != 0) {
        snprintf(err, errlen, "connect: the MariaDB client library failed to initialise");
        return NULL;
    }
    m8_db_conn *c = calloc(1, sizeof *c);
    MYSQL *my = c ? mysql_init(NULL) : NULL;
    if (!my) {
        free(c);
        snprintf(err, errlen, "connect: out of memory");
        return NULL;
    }
    unsigned int ct = whole_seconds(p->connect_s), io = whole_seconds(p->io_s);
    unsigned int proto = MYSQL_PROTOCOL_TCP;
    my_bool no = 0;
    if (mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &ct) ||
        mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &io) ||
        mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &io) ||
        mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &proto) ||
        mysql_optionsv(my, MYSQL_OPT_RECONNECT, &no) ||
        mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4")) {
        snprintf(err, errlen, "connect: %s", mysql_error(my));
        mysql_close(my);
        free(c);
        return NULL;
    }
    if (!mysql_real_connect(my, p->host, p->user, p->password, p->database, p->port, NULL, 0)) {
        snprintf(err, errlen, "connect: %s (%u)", mysql_error(my), mysql_errno(my));
        mysql_close(my);
        free(c);
        return NULL;
    }
    c->my = my;
    return c;
}

static int my_ping(m8_db_conn *c, const m8_db_params *p, char *err, size_t errlen)
{
    (void)p; /* MYSQL_OPT_READ/WRITE_TIMEOUT bound the query */
    static const char q[] = "SELECT 1";
    if (mysql_real_query(c->my, q, sizeof q - 1) != 0) {
        snprintf(err, errlen, "SELECT 1: %s (%u)", mysql_error(c->my), mysql_errno(c->my));
        return M8_EIO;
    }
    MYSQL_RES *res = mysql_store_result(c->my);
    if (!res) {
        snprintf(err, errlen, "SELECT 1: %s (%u)", mysql_error(c->my), mysql_errno(c->my));
        return M8_EIO;
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    int ok = row && row[0] && strcmp(row[0], "1") == 0;
    mysql_free_result(res);
    if (!ok) {
        snprintf(err, errlen, "SELECT 1: unexpected answer");
        return M8_EIO;
    }
    return 0;
}

static void my_disconnect(m8_db_conn *c)
{
    if (!c)
        return;
    mysql_close(c->my);
    free(c);
}

const m8_db_backend m8_db_backend_mariadb = {
    .name = "MariaDB/MySQL",
    .connect = my_connect,
    .ping = my_ping,
    .disconnect = my_disconnect,
};
