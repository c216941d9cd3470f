/* SPDX-License-Identifier: MIT */
/* ts-pki DIR: write the throwaway test PKI (see pki.h) into DIR. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "pki.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    int ret = ts_pki_make(argv[1]);
    if (ret < 0) {
        if (ret == GNUTLS_E_FILE_ERROR)
            fprintf(stderr, "ts-pki: %s: %s\n", argv[1], strerror(errno));
        else
            fprintf(stderr, "ts-pki: %s: %s\n", argv[1], gnutls_strerror(ret));
        return 1;
    }
    return 0;
}
