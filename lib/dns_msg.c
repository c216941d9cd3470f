/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "dotproxy/dns.h"
#include "dotproxy/config.h"
#include "dotproxy/error.h"
