/*
 * file.c - small files written whole or not at all (see file.h).
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
