/*
 * file.h - small files written whole or not at all.
 */
#ifndef OS_FILE_H
#define OS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../core/ty_err.h"

/*
 * Write text[0..len) to `path` atomically: into `path`.tmp (mode), synced to disk when
 * `sync` (a file that must survive a power loss; a cache that can be remade need not be),
 * then renamed over `path`, so a reader sees the old contents or the new, never a part.
 * TY_ENOSPC (disk full) or TY_EIO, naming the file; nothing is left at the temporary name.
 */
int file_write_atomic(const char *path, const char *text, size_t len, mode_t mode, bool sync,
                      struct ty_err *err);

/*
 * The first line of a small file (a token, an id) into buf[cap], without its line end;
 * a longer line is cut to cap-1 bytes.  0; TY_ENOENT when the file does not exist (buf
 * ""); TY_EIO when it cannot be read, naming it.
 */
int file_read_line(const char *path, char *buf, size_t cap, struct ty_err *err);

/*
 * Take `dir`/lock, the lock one data directory has for one process (a server, or a tool
 * that must not run beside one): open it (0600, created when missing), flock it
 * exclusively without waiting, and write our pid into it for whoever finds it taken.
 * *fd gets the descriptor; the lock lasts until it is closed (or the process ends).
 * TY_EBUSY when another process holds it (*holder gets the pid it recorded, 0 when none
 * can be read), TY_EIO when it cannot be opened; both name the file.  A pid that cannot
 * be written does not fail the call.
 */
int file_lock_dir(const char *dir, int *fd, long *holder, struct ty_err *err);

/*
 * Make directory `path` and every missing parent (mode for those it makes; an existing
 * one is left as it is).  TY_EIO naming the directory that could not be made; TY_EINVAL
 * for a path of 4096 bytes or more.  Field "--data": its callers make data directories.
 */
int file_mkdir_p(const char *path, mode_t mode, struct ty_err *err);

#endif
