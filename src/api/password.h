/*
 * password.h - users' passwords: Argon2id hashes through libsodium, the rules a new
 * password must meet, one-time passwords, and random identifiers (sessions, CSRF tokens).
 *
 * Hashes are libsodium's crypto_pwhash_str text ("$argon2id$v=19$m=...,t=...,p=1$salt$hash"),
 * which carries its own salt and limits, so a hash made with older limits still verifies
 * and password_needs_rehash says when to replace it at the next good sign-in.  The limits
 * are libsodium's INTERACTIVE ones (2 passes, 64 MiB): a sign-in costs tens of
 * milliseconds, a guess costs an attacker the same.  At most PASSWORD_PARALLEL hashes run
 * at once (the others wait their turn), so a burst of sign-ins cannot take 64 MiB per
 * connection.
 */
#ifndef PASSWORD_H
#define PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/ty_err.h"

#define PASSWORD_HASH_MAX   128  /* bytes of a hash with its NUL (crypto_pwhash_STRBYTES) */
#define PASSWORD_MIN        8    /* characters (code points) of a new password, at least */
#define PASSWORD_MAX        1024 /* bytes of a password, at most */
#define PASSWORD_ONE_TIME   20   /* characters of a generated one-time password */
#define PASSWORD_PARALLEL   4    /* hashes computed at once; more wait */
#define PASSWORD_RANDOM_HEX 65   /* a random identifier: 64 hex digits (256 bits) and a NUL */

/* Make libsodium ready (once per process, any thread).  0, or TY_EIO when it cannot start
 * (no random source). */
int password_init(struct ty_err *err);

/*
 * The Argon2id hash of pw[0..len) into out[PASSWORD_HASH_MAX], with a new random salt.
 * 0, or TY_ENOMEM (libsodium could not get the memory the hash needs) / TY_EIO.
 */
int password_hash(const char *pw, size_t len, char out[PASSWORD_HASH_MAX], struct ty_err *err);

/* Whether pw[0..len) is the password of `hash` (a password_hash text).  false for a hash
 * that is not one. */
bool password_verify(const char *hash, const char *pw, size_t len);

/* Whether `hash` was made with other limits than password_hash uses now (or is not a hash
 * at all): the caller hashes the password again after a good sign-in. */
bool password_needs_rehash(const char *hash);

/*
 * Whether pw[0..len) may be a new password: PASSWORD_MIN characters at least and
 * PASSWORD_MAX bytes at most, no control characters, and not the user's name.  TY_EINVAL
 * naming `field` otherwise ("new: at least 8 characters; this one has 5").  The password
 * is never quoted.
 */
int password_check_new(const char *field, const char *pw, size_t len, const char *user,
                       struct ty_err *err);

/* A one-time password of PASSWORD_ONE_TIME characters from an alphabet without look-alikes
 * (no 0/O, 1/l/I), about 115 bits, into out[PASSWORD_ONE_TIME + 1]. */
void password_one_time(char out[PASSWORD_ONE_TIME + 1]);

/* 256 random bits as 64 lowercase hex digits into out[PASSWORD_RANDOM_HEX]. */
void password_random_hex(char out[PASSWORD_RANDOM_HEX]);

#endif
