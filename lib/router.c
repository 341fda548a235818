/* router.c - in progress */
#include "common.h"
