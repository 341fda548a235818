/* docs.c - in progress */
#include "common.h"
