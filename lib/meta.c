/* meta.c - in progress */
#include "common.h"
