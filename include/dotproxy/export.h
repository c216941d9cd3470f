/* SPDX-License-Identifier: MIT */
#ifndef DOTPROXY_EXPORT_H
#define DOTPROXY_EXPORT_H

#if defined(DOTPROXY_BUILDING) && defined(__GNUC__)
#define DOTPROXY_EXPORT __attribute__((visibility("default")))
#else
#define DOTPROXY_EXPORT
#endif

#endif
