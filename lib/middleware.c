/* middleware.c - in progress */
#include "common.h"
