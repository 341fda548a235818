/* server.c - in progress */
#include "common.h"
