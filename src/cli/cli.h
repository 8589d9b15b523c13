/*
 * cli.h - the tethys command line: one entry point per subcommand group.
 *
 * Each cli_* function receives the arguments after its own name and returns the
 * process exit status.  Exit statuses are part of the interface, documented in
 * docs/cli.md: 0 success, 1 a negative answer (a schedule that never fires), 2 bad
 * usage or invalid input, 3 an operating-system failure (a file could not be read).
 */
#ifndef CLI_H
#define CLI_H

enum cli_exit {
    CLI_OK = 0,
    CLI_NEGATIVE = 1,
    CLI_USAGE = 2,
    CLI_SYSTEM = 3,
};

/* tethys cron next|check ... */
int cli_cron(int argc, char **argv);

/* Print "tethys: " and the message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
