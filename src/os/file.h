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

#endif
