/* auth.c - in progress */
#include "common.h"
