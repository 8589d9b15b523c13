/*
 * file.c - small files written whole or not at all (see file.h).
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int file_read_line(const char *path, char *buf, size_t cap, struct ty_err *err)
{
    buf[0] = '\0';
    FILE *fp = fopen(path, "re");
    if (fp == NULL)
        return errno == ENOENT ? TY_ENOENT
                               : ty_error(err, TY_EIO, NULL, -1, 0, "cannot read %s: %s", path,
                                          strerror(errno));
    if (fgets(buf, (int)cap, fp) == NULL)
        buf[0] = '\0';
    fclose(fp);
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

int file_write_atomic(const char *path, const char *text, size_t len, mode_t mode, bool sync,
                      struct ty_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return ty_error(err, errno == ENOSPC ? TY_ENOSPC : TY_EIO, NULL, -1, 0,
                        "cannot write %s: %s", tmp, strerror(errno));
    size_t done = 0;
    int e = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t)w;
    }
    if (e == 0 && sync && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e == 0 && rename(tmp, path) != 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        return ty_error(err, e == ENOSPC ? TY_ENOSPC : TY_EIO, NULL, -1, 0, "cannot write %s: %s",
                        path, strerror(e));
    }
    return 0;
}

int file_lock_dir(const char *dir, int *fd, long *holder, struct ty_err *err)
{
    *fd = -1;
    *holder = 0;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/lock", dir) >= (int)sizeof path)
        return ty_error(err, TY_EINVAL, "dir", -1, 0, "%s: path too long", dir);
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0)
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot open %s: %s", path, strerror(errno));
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(f, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        *holder = strtol(pid, NULL, 10);
        close(f);
        return ty_error(err, TY_EBUSY, NULL, -1, 0, "%s is held by another process (pid %ld)", path,
                        *holder);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) /* the lock holds anyway */
        log_warn("cannot record the pid in the lock file", "path=%s", path);
    *fd = f;
    return 0;
}

int file_mkdir_p(const char *path, mode_t mode, struct ty_err *err)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return ty_error(err, TY_EINVAL, "--data", -1, 0, "--data: path too long");
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return ty_error(err, TY_EIO, "--data", -1, 0, "cannot create %s: %s", buf,
                            strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return ty_error(err, TY_EIO, "--data", -1, 0, "cannot create %s: %s", buf, strerror(errno));
    return 0;
}
