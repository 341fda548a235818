/* http.c - in progress */
#include "common.h"
