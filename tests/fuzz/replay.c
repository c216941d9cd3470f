/* SPDX-License-Identifier: MIT */
/* Replays files through a fuzz target's LLVMFuzzerTestOneInput, so every
 * corpus file is an ordinary regression test in any build (no libFuzzer,
 * any compiler). Arguments are files, or directories whose regular files are
 * all replayed. Exits non-zero if a file cannot be read; a broken invariant
 * aborts inside the target. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    while (data != NULL) {
        size_t got = fread(data + len, 1, cap - len, fp);
        len += got;
        if (len < cap)
            break;
        uint8_t *bigger = realloc(data, cap * 2);
        if (bigger == NULL) {
            free(data);
            data = NULL;
            break;
        }
        data = bigger;
        cap *= 2;
    }
    int err = ferror(fp);
    fclose(fp);
    if (data == NULL || err) {
        fprintf(stderr, "replay: %s: read failed\n", path);
        free(data);
        return -1;
    }
    /* An exact-size copy, so sanitizers see reads past the input. */
    uint8_t *exact = malloc(len > 0 ? len : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int replay_path(const char *path, unsigned *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (replay_file(path) != 0)
            return -1;
        (*count)++;
        return 0;
    }
    DIR *dir = opendir(path);
    if (dir == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        size_t n = strlen(path) + 1 + strlen(de->d_name) + 1;
        char *full = malloc(n);
        if (full == NULL) {
            rc = -1;
            break;
        }
        snprintf(full, n, "%s/%s", path, de->d_name);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(full) != 0)
                rc = -1;
            else
                (*count)++;
        }
        free(full);
    }
    closedir(dir);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int rc = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i], &count) != 0)
            rc = 1;
    printf("replayed %u inputs\n", count);
    return rc;
}
