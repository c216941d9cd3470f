/* SPDX-License-Identifier: MIT */
/* libdotproxy: forward plain DNS to DNS-over-TLS upstreams.
 * The one header users include. */
#ifndef DOTPROXY_DOTPROXY_H
#define DOTPROXY_DOTPROXY_H

#include "dotproxy/block.h"
#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "dotproxy/forward.h"
#include "dotproxy/loop.h"
#include "dotproxy/proxy.h"
#include "dotproxy/tap.h"
#include "dotproxy/tls.h"
#include "dotproxy/version.h"

#endif
