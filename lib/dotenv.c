/* dotenv.c - in progress */
#include "common.h"
