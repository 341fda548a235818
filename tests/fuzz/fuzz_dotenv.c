/* fuzz_dotenv.c - libFuzzer target for the .env parser (lib/config/dotenv.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/dotenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *lookup(const char *name, void *ud)
{
    (void)ud;
    return strcmp(name, "HOME") == 0 ? "/home/fuzz" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m8_dotenv d;
    char err[128];
    if (m8_dotenv_parse((const char *)data, size, lookup, NULL, &d, err, sizeof err) == 0)
        m8_dotenv_free(&d);
    return 0;
}
