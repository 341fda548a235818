/* health.c - in progress */
#include "common.h"
