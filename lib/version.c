/* SPDX-License-Identifier: MIT */
#include "dotproxy/version.h"

DOTPROXY_EXPORT const char *dotproxy_version(void)
{
    return DOTPROXY_VERSION_STRING;
}
