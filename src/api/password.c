/*
 * password.c - Argon2id password hashes and random secrets, through libsodium (see
 * password.h).
 *
 * Why libsodium: it is the well-kept implementation of Argon2id Debian ships, with the
 * hash's text form (salt and limits inside), constant-time verification and a rehash
 * check, so nothing here is cryptography of our own.  The process-wide state is
 * libsodium's (initialised once) and the gate that bounds how many hashes run at once.
 */
#include "password.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "../core/utf8.h"

#define OPS crypto_pwhash_OPSLIMIT_INTERACTIVE
#define MEM crypto_pwhash_MEMLIMIT_INTERACTIVE

_Static_assert(crypto_pwhash_STRBYTES <= PASSWORD_HASH_MAX, "a hash fits PASSWORD_HASH_MAX");

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

/* At most PASSWORD_PARALLEL hashes at once: each takes MEM bytes for its duration. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int running;

static void init_once(void)
{
    init_rc = sodium_init() < 0 ? -1 : 0;
}

int password_init(struct ty_err *err)
{
    pthread_once(&once, init_once);
    if (init_rc != 0)
        return ty_error(err, TY_EIO, NULL, -1, 0, "libsodium could not start (no random source?)");
    return 0;
}

static void gate_enter(void)
{
    pthread_mutex_lock(&gate_mu);
    while (running >= PASSWORD_PARALLEL)
        pthread_cond_wait(&gate_cv, &gate_mu);
    running++;
    pthread_mutex_unlock(&gate_mu);
}

static void gate_leave(void)
{
    pthread_mutex_lock(&gate_mu);
    running--;
    pthread_cond_signal(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

int password_hash(const char *pw, size_t len, char out[PASSWORD_HASH_MAX], struct ty_err *err)
{
    int rc = password_init(err);
    if (rc != 0)
        return rc;
    gate_enter();
    int s = crypto_pwhash_str_alg(out, pw, len, OPS, MEM, crypto_pwhash_ALG_ARGON2ID13);
    gate_leave();
    if (s != 0)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0,
                        "the password could not be hashed: Argon2id needs %zu MiB it could not get",
                        (size_t)MEM >> 20);
    return 0;
}

bool password_verify(const char *hash, const char *pw, size_t len)
{
    if (password_init(NULL) != 0 || hash == NULL ||
        strnlen(hash, PASSWORD_HASH_MAX) >= PASSWORD_HASH_MAX)
        return false;
    gate_enter();
    bool ok = crypto_pwhash_str_verify(hash, pw, len) == 0;
    gate_leave();
    return ok;
}

bool password_needs_rehash(const char *hash)
{
    if (password_init(NULL) != 0 || hash == NULL ||
        strnlen(hash, PASSWORD_HASH_MAX) >= PASSWORD_HASH_MAX ||
        strncmp(hash, crypto_pwhash_argon2id_STRPREFIX, strlen(crypto_pwhash_argon2id_STRPREFIX)) !=
            0)
        return true;
    return crypto_pwhash_str_needs_rehash(hash, OPS, MEM) != 0;
}

int password_check_new(const char *field, const char *pw, size_t len, const char *user,
                       struct ty_err *err)
{
    if (len > PASSWORD_MAX)
        return ty_error(err, TY_EINVAL, field, -1, 0, "%s: longer than %d bytes", field,
                        PASSWORD_MAX);
    if (utf8_invalid_at((const unsigned char *)pw, len) != len)
        return ty_error(err, TY_EINVAL, field, -1, 0, "%s: not valid UTF-8", field);
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pw[i];
        if (c < 0x20 || c == 0x7f)
            return ty_error(err, TY_EINVAL, field, -1, 0,
                            "%s: control characters (tab, newline, ...) are not allowed", field);
        chars += (c & 0xC0) != 0x80; /* count code points, not bytes */
    }
    if (chars < PASSWORD_MIN)
        return ty_error(err, TY_EINVAL, field, -1, 0,
                        "%s: at least %d characters; this one has %zu", field, PASSWORD_MIN, chars);
    if (user != NULL && strlen(user) == len && memcmp(user, pw, len) == 0)
        return ty_error(err, TY_EINVAL, field, -1, 0, "%s: must not be the user's name", field);
    return 0;
}

void password_one_time(char out[PASSWORD_ONE_TIME + 1])
{
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    password_init(NULL);
    for (int i = 0; i < PASSWORD_ONE_TIME; i++)
        out[i] = alphabet[randombytes_uniform((uint32_t)(sizeof alphabet - 1))];
    out[PASSWORD_ONE_TIME] = '\0';
}

void password_random_hex(char out[PASSWORD_RANDOM_HEX])
{
    unsigned char raw[32];
    password_init(NULL);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, PASSWORD_RANDOM_HEX, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
}
