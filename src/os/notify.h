/*
 * notify.h - telling a service manager how the server is doing: the notification protocol
 * of systemd (sd_notify(3)), spoken directly so no library is needed.  A datagram of
 * "KEY=value" lines goes to the Unix socket named by $NOTIFY_SOCKET (a path, or "@name"
 * for the abstract namespace).  Without $NOTIFY_SOCKET nothing is sent and nothing fails:
 * the server runs the same under any supervisor, or none.
 */
#ifndef NOTIFY_H
#define NOTIFY_H

#include <stdint.h>

/*
 * Send state ("READY=1\nSTATUS=..."): 0 when sent, 1 when $NOTIFY_SOCKET is not set, or a
 * negative errno (an unusable socket name is -EINVAL).  Never blocks: the socket is a
 * datagram socket and MSG_DONTWAIT is used.  Thread-safe.
 */
int notify_send(const char *state);

/*
 * The watchdog interval the manager asks for, in milliseconds: $WATCHDOG_USEC / 1000 when
 * set, positive, and $WATCHDOG_PID is unset or is this process; 0 otherwise (no watchdog,
 * or one meant for another process).  The server should send "WATCHDOG=1" at about half
 * this interval.
 */
uint64_t notify_watchdog_ms(void);

#endif
