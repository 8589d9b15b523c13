/*
 * web_embed.c - a build-time tool: turns the web console's built files (web/dist) into a C
 * source holding them as one table, struct web_bundle web_console (src/api/web.h), which
 * is compiled into the tethys program.
 *
 *     web_embed OUT.c DIR      every regular file under DIR, recursively
 *     web_embed OUT.c          an empty table (a binary built without the console)
 *
 * Each file becomes a byte array with its path (relative to DIR, '/'-separated), its
 * content type (from its extension), its ETag (FNV-1a 64 of its bytes, as 16 hex digits,
 * quoted) and whether its name is content-hashed (it lies under assets/, where Vite puts
 * the files whose names carry their hash).  The table is sorted by path, bytewise, for
 * web_find's binary search.  OUT.c is written to a temporary file and renamed, so an
 * interrupted build never leaves half a table.  Exit status 0, or 1 with a message.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct file {
    char *rel;
    unsigned char *data;
    size_t len;
};

static struct file *files;
static size_t n_files, cap_files;

static int fail(const char *what, const char *path)
{
    fprintf(stderr, "web_embed: %s: %s: %s\n", path, what, strerror(errno));
    return 1;
}

static int read_file(const char *path, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail("cannot open", path);
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            fclose(f);
            return fail("out of memory", path);
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        unsigned char *nb = realloc(buf, cap);
        if (nb == NULL)
            free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return fail("cannot read", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Add every regular file under dir/rel (rel "" at the top). */
static int walk(const char *dir, const char *rel)
{
    char path[8448];
    snprintf(path, sizeof path, "%s%s%s", dir, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (d == NULL)
        return fail("cannot open directory", path);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096], full[8448];
        int ns = snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        int nfull = snprintf(full, sizeof full, "%s/%s", dir, sub);
        if (ns < 0 || (size_t)ns >= sizeof sub || nfull < 0 || (size_t)nfull >= sizeof full) {
            errno = ENAMETOOLONG;
            rc = fail("path too long", path);
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0) {
            rc = fail("cannot stat", full);
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk(dir, sub);
        } else if (S_ISREG(st.st_mode)) {
            if (n_files == cap_files) {
                cap_files = cap_files ? cap_files * 2 : 32;
                struct file *nf = realloc(files, cap_files * sizeof *files);
                if (nf == NULL) {
                    rc = fail("out of memory", full);
                    break;
                }
                files = nf;
            }
            struct file *f = &files[n_files];
            f->rel = strdup(sub);
            if (f->rel == NULL)
                rc = fail("out of memory", full);
            else if ((rc = read_file(full, &f->data, &f->len)) == 0)
                n_files++;
        }
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const struct file *)a)->rel, ((const struct file *)b)->rel);
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".webp", "image/webp"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void c_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7F)
            fprintf(out, "\\%03o", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static int write_out(const char *out_path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    FILE *out = fopen(tmp, "w");
    if (out == NULL)
        return fail("cannot create", tmp);
    fprintf(out,
            "/* Generated by tools/web_embed.c from the console's built files: do not edit. */\n"
            "#include \"api/web.h\"\n\n");
    for (size_t i = 0; i < n_files; i++) {
        fprintf(out, "static const unsigned char f%zu[] = {", i);
        for (size_t k = 0; k < files[i].len; k++)
            fprintf(out, "%s%u,", k % 24 == 0 ? "\n" : "", files[i].data[k]);
        fprintf(out, "%s0};\n", files[i].len ? "\n" : "");
    }
    fprintf(out, "\nstatic const struct web_asset assets[] = {\n");
    for (size_t i = 0; i < n_files; i++) {
        fputs("    {", out);
        c_string(out, files[i].rel);
        fputs(", ", out);
        c_string(out, content_type(files[i].rel));
        fprintf(out, ", f%zu, %zu, \"\\\"%016llx\\\"\", %s},\n", i, files[i].len,
                (unsigned long long)fnv1a64(files[i].data, files[i].len),
                strncmp(files[i].rel, "assets/", 7) == 0 ? "true" : "false");
    }
    if (n_files == 0)
        fputs("    {\"\", \"\", 0, 0, \"\", false},\n", out);
    fprintf(out, "};\n\nconst struct web_bundle web_console = {assets, %zu};\n", n_files);
    if (fclose(out) != 0)
        return fail("cannot write", tmp);
    if (rename(tmp, out_path) != 0)
        return fail("cannot rename to", out_path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: web_embed OUT.c [DIR]\n");
        return 2;
    }
    if (argc == 3) {
        if (walk(argv[2], "") != 0)
            return 1;
        qsort(files, n_files, sizeof *files, by_path);
        int has_index = 0;
        for (size_t i = 0; i < n_files; i++)
            has_index |= strcmp(files[i].rel, "index.html") == 0;
        if (!has_index) {
            fprintf(stderr, "web_embed: %s has no index.html (was the console built?)\n", argv[2]);
            return 1;
        }
    }
    if (write_out(argv[1]) != 0)
        return 1;
    for (size_t i = 0; i < n_files; i++) {
        free(files[i].rel);
        free(files[i].data);
    }
    free(files);
    return 0;
}
