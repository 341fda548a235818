/* confighealth.h - check_config_health (doc/settings.md#config-health), key
 * strength (doc/settings.md#key-strength), secret-distinctness guards
 * (doc/settings.md#credential-reuse), and the consumer-role rule
 * (doc/settings.md#service-role).
 * Each finding is one line starting "CONFIG: " that names the variable and
 * never a secret value. */
#ifndef M8_CONFIGHEALTH_H
#define M8_CONFIGHEALTH_H

#include "config/settings.h"

typedef struct m8_config_report {
    m8_errlist warnings; /* logged at WARNING, in the contract's group order */
    m8_errlist fatals;   /* logged at CRITICAL; any => exit 78 */
} m8_config_report;

/* Runs every config-health check plus the credential-reuse guard; fills rep.  Returns the number of
 * fatals. */
M8_INTERNAL size_t m8_config_health(const m8_settings *s, m8_config_report *rep);
M8_INTERNAL void m8_config_report_free(m8_config_report *rep);

/* Loads settings from src and runs config health, logging each error and
 * warning (one line each, never a value).  Returns 0 with *out set, or 78
 * (EX_CONFIG) after logging why the service cannot start.  Used by the
 * service boot and by fcgim8d (start and reload). */
M8_INTERNAL int m8_settings_load_checked(const m8_settings_source *src, m8_settings **out);

#endif
