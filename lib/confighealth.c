/* confighealth.c - in progress */
#include "common.h"
