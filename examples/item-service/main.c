/* item-service - the seed's "Complete Example" service in C.
 *
 * It serves what fcgi-m8 assembles for every service (meta, both pings,
 * health, docs), one public route and the seed's token-protected routes;
 * the database arrives with the database work.  It registers no health
 * check: it has no dependency to check yet.
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
    return m8_res_json(req, 200, o);
}

/* GET {API_PREFIX}/items/: any authenticated user (the seed's list_items). */
static int list_items(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "owner", json_object_new_string(m8_req_user(req)->email));
    return m8_res_json(req, 200, o);
}

/* GET {API_PREFIX}/profile: the caller, as the seed's get_profile. */
static int profile(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = m8_req_user(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(u->id));
    json_object_object_add(o, "email", json_object_new_string(u->email));
    json_object_object_add(o, "role", json_object_new_string(u->role));
    return m8_res_json(req, 200, o);
}

/* DELETE {API_PREFIX}/items/{item_id}/admin: admins only. */
static int delete_item(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "deleted", json_object_new_string(m8_req_path_param(req, "item_id")));
    json_object_object_add(o, "by", json_object_new_string(m8_req_user(req)->email));
    return m8_res_json(req, 200, o);
}

/* POST {API_PREFIX}/admin/bootstrap: superuser only. */
static int bootstrap(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "bootstrapped", json_object_new_boolean(1));
    json_object_object_add(o, "by", json_object_new_string(m8_req_user(req)->email));
    return m8_res_json(req, 200, o);
}

static const m8_route routes[] = {
    {"GET", "/items/info", M8_PUBLIC, items_info, NULL, "Item service information", "items", 0},
    {"GET", "/items/", M8_USER, list_items, NULL, "List the caller's items", "items", 0},
    {"DELETE", "/items/{item_id}/admin", M8_ADMIN, delete_item, NULL, "Delete an item (admin)",
     "items", 0},
    {"GET", "/profile", M8_USER, profile, NULL, "The caller's profile", "users", 0},
    {"POST", "/admin/bootstrap", M8_SUPERUSER, bootstrap, NULL, "Bootstrap (superuser)", "admin",
     0},
};

int main(int argc, char **argv)
{
    m8_app *app = m8_app_new("Item Service", "1.0.0");
    if (!app || m8_app_add_routes(app, routes, sizeof routes / sizeof routes[0]) != 0)
        return 70;
    return m8_app_main(app, argc, argv);
}
