/*
 * log.h - the one logging function: a level, a message, key=value fields.
 *
 *   log_info("run started", "job=%s shard=%u run=%s", name, shard, run_id);
 *
 * Lines go to stderr (the journal under systemd), one write per line so threads do not
 * interleave: "2026-11-26T00:45:31.123Z INFO run started job=nightly shard=0 run=...".
 * Values with spaces should be quoted by the caller ("reason=\"%s\"").
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below `level` are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);

void log_write(enum log_level level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
