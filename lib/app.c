/* app.c - in progress */
#include "common.h"
