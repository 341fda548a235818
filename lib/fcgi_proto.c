/* fcgi_proto.c - in progress */
#include "common.h"
