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

#endif
