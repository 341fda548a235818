/* item-service - the seed's "Complete Example" service in C.
 *
 * For now it serves what fcgi-m8 assembles for every service (meta, both
 * pings, health, docs) and one public route; token-protected item routes
 * and the database arrive with the token and database work.  It registers
 * no health check: it has no dependency to check yet.
 *
 *   item-service --env-file .env --listen unix:/run/item-service.sock
 */
#include <json-c/json.h>

#include "fcgim8.h"

/* GET {API_PREFIX}/items/info: what this service offers, public. */
static int items_info(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "service", json_object_new_string("item-service"));
    json_object_object_add(o, "items_api", json_object_new_string(m8_req_route(req)));
    json_object_object_add(o, "auth", json_object_new_string("bearer (coming with tokens)"));
    return m8_res_json(req, 200, o);
}

static const m8_route routes[] = {
    {"GET", "/items/info", M8_PUBLIC, items_info, NULL, "Item service information", "items", 0},
};

int main(int argc, char **argv)
{
    m8_app *app = m8_app_new("Item Service", "1.0.0");
    if (!app || m8_app_add_routes(app, routes, sizeof routes / sizeof routes[0]) != 0)
        return 70;
    return m8_app_main(app, argc, argv);
}
