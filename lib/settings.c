/* settings.c - in progress */
#include "common.h"
