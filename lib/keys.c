/* keys.c - in progress */
#include "common.h"
