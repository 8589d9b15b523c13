/*
 * tzdb.c - the process-wide registry of zone tables, read from the system tz database.
 *
 * The only code that opens files under /usr/share/zoneinfo.  A zone is read and parsed
 * (tz_parse) the first time anyone asks for it and then kept, immutable, until
 * tzdb_shutdown: tables are shared by every job in the zone and handed out as plain
 * pointers, so they can never be freed or replaced while the process runs (a tzdata
 * update is picked up by a restart).
 *
 * The registry is an open-addressing hash table keyed by zone name, behind one mutex.
 * A hit costs a hash and a string compare under the lock.  A miss reads the file with
 * the lock held: loads are rare (once per zone per process) and holding the lock makes
 * "each zone is parsed once" trivially true.  Failures are not cached, so a zone that
 * appears later (a tzdata upgrade adding one) is found on the next call.
 *
 * Names are checked before any path is built, so a job's zone cannot name a file
 * outside the database ("../../etc/shadow") or a different spelling of a cached zone.
 */
#include "tzdb.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_DIR "/usr/share/zoneinfo"
#define DIR_MAX     4096
#define FILE_MAX    1048576 /* 1 MiB; real TZif files are under 4 KiB */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char dir_override[DIR_MAX];
static int dir_is_set;
static struct tz_zone **slots; /* open addressing, linear probing; NULL = empty */
static size_t nslots;          /* 0 or a power of two */
static size_t nzones;

static uint64_t hash_name(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static struct tz_zone *find_locked(const char *name)
{
    if (nslots == 0)
        return NULL;
    for (size_t i = hash_name(name) & (nslots - 1);; i = (i + 1) & (nslots - 1)) {
        if (slots[i] == NULL)
            return NULL;
        if (strcmp(tz_name(slots[i]), name) == 0)
            return slots[i];
    }
}

static void put_slot(struct tz_zone **tab, size_t n, struct tz_zone *z)
{
    size_t i = hash_name(tz_name(z)) & (n - 1);
    while (tab[i] != NULL)
        i = (i + 1) & (n - 1);
    tab[i] = z;
}

/* Keeps the load factor at most 1/2 so probe runs stay short. */
static int insert_locked(struct tz_zone *z)
{
    if ((nzones + 1) * 2 > nslots) {
        size_t n = nslots == 0 ? 64 : nslots * 2;
        struct tz_zone **tab = calloc(n, sizeof(struct tz_zone *));
        if (tab == NULL)
            return -1;
        for (size_t i = 0; i < nslots; i++) {
            if (slots[i] != NULL)
                put_slot(tab, n, slots[i]);
        }
        free(slots);
        slots = tab;
        nslots = n;
    }
    put_slot(slots, nslots, z);
    nzones++;
    return 0;
}

static const char *dir_locked(void)
{
    if (dir_is_set)
        return dir_override;
    const char *env = getenv("TZDIR");
    return env != NULL && env[0] != '\0' ? env : DEFAULT_DIR;
}

/* Letters, digits, '/', '_', '+', '-'; non-empty components; no leading '/'. */
static const char *name_problem(const char *name)
{
    size_t len = strlen(name);
    if (len == 0)
        return "the name is empty";
    if (len > TZ_NAME_MAX - 1)
        return "longer than 63 characters";
    if (name[0] == '/')
        return "an absolute path is not a zone name";
    for (const char *p = name; *p != '\0'; p++) {
        if (p[0] == '.' && p[1] == '.' && (p == name || p[-1] == '/') &&
            (p[2] == '/' || p[2] == '\0'))
            return "a \"..\" component is not allowed";
    }
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '+' || c == '-'))
            return "only letters, digits, '/', '_', '+' and '-' are allowed";
        if (c == '/' && (p[1] == '/' || p[1] == '\0'))
            return "empty path component";
    }
    return NULL;
}

/* The name as it may appear in a message: at most 64 bytes, control bytes as '?'. */
static void printable(const char *name, char out[TZ_NAME_MAX + 4])
{
    size_t i = 0;
    for (; i < TZ_NAME_MAX && name[i] != '\0'; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
    }
    if (name[i] != '\0') {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* Reads the whole file at path into a new buffer; a plain errno-style int on failure. */
static int read_file(const char *path, uint8_t **buf, size_t *len, int *too_big)
{
    *too_big = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    }
    if (st.st_size > FILE_MAX) {
        close(fd);
        *too_big = 1;
        return EFBIG;
    }
    /* read to EOF rather than trusting st_size: the file may change under us */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    uint8_t *b = malloc(cap);
    if (b == NULL) {
        close(fd);
        return ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap > FILE_MAX) {
                free(b);
                close(fd);
                *too_big = 1;
                return EFBIG;
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                close(fd);
                return ENOMEM;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(b);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;
}

static int load_locked(const char *name, const char *shown, struct tz_zone **out,
                       struct ty_err *err)
{
    const char *dir = dir_locked();
    char path[DIR_MAX + TZ_NAME_MAX + 2];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return ty_error(err, TY_ENOENT, "time zone", -1, 0,
                        "unknown time zone \"%s\" (the path under %.128s is too long)", shown, dir);
    uint8_t *buf = NULL;
    size_t len = 0;
    int too_big;
    int e = read_file(path, &buf, &len, &too_big);
    if (e == ENOMEM)
        return ty_error(err, TY_ENOMEM, "time zone", -1, 0,
                        "time zone \"%s\": out of memory reading %.128s", shown, path);
    if (too_big)
        return ty_error(err, TY_EFORMAT, "time zone", -1, 0,
                        "time zone \"%s\": %.128s is larger than %d bytes, not a TZif file", shown,
                        path, FILE_MAX);
    char why[128];
    if (e != 0 && strerror_r(e, why, sizeof why) != 0)
        snprintf(why, sizeof why, "error %d", e);
    if (e == EIO)
        return ty_error(err, TY_EIO, "time zone", -1, 0, "time zone \"%s\": cannot read %.128s: %s",
                        shown, path, why);
    if (e != 0) {
        /* ENOENT, ENOTDIR (a path through a file), EISDIR ("Europe"), EACCES, ... */
        if (e == ENOENT || e == ENOTDIR)
            return ty_error(err, TY_ENOENT, "time zone", -1, 0,
                            "unknown time zone \"%s\" (no such zone in %.128s)", shown, dir);
        return ty_error(err, TY_ENOENT, "time zone", -1, 0, "unknown time zone \"%s\" (%.128s: %s)",
                        shown, path, e == EISDIR ? "a directory, not a zone" : why);
    }
    if (len < 4 || memcmp(buf, "TZif", 4) != 0) {
        free(buf);
        return ty_error(err, TY_ENOENT, "time zone", -1, 0,
                        "unknown time zone \"%s\" (%.128s is not a TZif file)", shown, path);
    }
    struct ty_err perr;
    ty_err_clear(&perr);
    int rc = tz_parse(name, buf, len, out, &perr);
    free(buf);
    /* perr.pos is a byte in the file, not in the caller's input (the name): not passed on */
    if (rc != 0)
        return ty_error(err, rc, "time zone", -1, 0, "time zone \"%s\": %s", shown, perr.msg);
    return 0;
}

int tzdb_get(const char *name, const struct tz_zone **out, struct ty_err *err)
{
    char shown[TZ_NAME_MAX + 4];
    if (name == NULL)
        return ty_error(err, TY_EINVAL, "time zone", -1, 0,
                        "time zone \"\": not a valid zone name (no name given)");
    printable(name, shown);
    const char *why = name_problem(name);
    if (why != NULL)
        return ty_error(err, TY_EINVAL, "time zone", 0, (int)strlen(shown),
                        "time zone \"%s\": not a valid zone name (%s)", shown, why);

    pthread_mutex_lock(&lock);
    struct tz_zone *z = find_locked(name);
    int rc = 0;
    if (z == NULL) {
        rc = load_locked(name, shown, &z, err);
        if (rc == 0 && insert_locked(z) != 0) {
            tz_free(z);
            rc = ty_error(err, TY_ENOMEM, "time zone", -1, 0,
                          "time zone \"%s\": out of memory registering the zone", shown);
        }
    }
    pthread_mutex_unlock(&lock);
    if (rc == 0)
        *out = z;
    return rc;
}

void tzdb_set_dir(const char *dir)
{
    pthread_mutex_lock(&lock);
    dir_is_set = dir != NULL;
    if (dir != NULL)
        snprintf(dir_override, sizeof dir_override, "%s", dir);
    pthread_mutex_unlock(&lock);
}

const char *tzdb_dir(void)
{
    pthread_mutex_lock(&lock);
    const char *d = dir_locked();
    pthread_mutex_unlock(&lock);
    return d;
}

void tzdb_shutdown(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nslots; i++)
        tz_free(slots[i]);
    free(slots);
    slots = NULL;
    nslots = 0;
    nzones = 0;
    pthread_mutex_unlock(&lock);
}
