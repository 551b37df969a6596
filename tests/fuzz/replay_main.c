/* Replays a libFuzzer corpus without libFuzzer: calls LLVMFuzzerTestOneInput on every file named
 * on the command line and every regular file in the directories named there (Fluent Bit's
 * pattern), so ctest can replay the corpus with any compiler and sanitizer. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file; returns 0 or -1 if it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long size;
    int rc = -1;

    if (!f) {
        perror(path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto Fail;
    /* exactly the file's size, so ASan flags any read past the input */
    buf = malloc(size ? (size_t)size : 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
        goto Fail;
    LLVMFuzzerTestOneInput(buf, (size_t)size);
    rc = 0;
Fail:
    if (rc != 0)
        fprintf(stderr, "%s: cannot read\n", path);
    free(buf);
    fclose(f);
    return rc;
}

/* Runs every regular file in dir (subdirectories too); returns the count or -1. */
static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    long n = 0;

    if (!d) {
        perror(dir);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        size_t len;
        char *path;
        long sub;

        if (de->d_name[0] == '.')
            continue;
        len = strlen(dir) + strlen(de->d_name) + 2;
        path = malloc(len);
        if (!path)
            abort();
        snprintf(path, len, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0) {
            perror(path);
            n = -1;
        } else if (S_ISDIR(st.st_mode)) {
            sub = replay_dir(path);
            n = sub < 0 || n < 0 ? -1 : n + sub;
        } else if (S_ISREG(st.st_mode)) {
            n = replay_file(path) != 0 || n < 0 ? -1 : n + 1;
        }
        free(path);
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s <corpus dir or file>...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : (replay_file(argv[i]) == 0 ? 1 : -1);
        if (n < 0)
            return 1;
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    printf("replayed %ld inputs\n", total);
    return 0;
}
