#ifndef CARE_AGENT_CLIBSSH2_SHIM_H
#define CARE_AGENT_CLIBSSH2_SHIM_H
#include <libssh2.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Gives back the whole pages of [p, p + length) that hold only zeros: MADV_DONTNEED on private
   anonymous memory (all of malloc's) makes them read as zeros again, so the contents do not
   change, and a page costs memory again only when something writes into it. The caller owns
   the range and nothing else writes into it meanwhile. Returns the bytes given back. */
static inline size_t care_release_zero_pages(void *p, size_t length) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
    const uintptr_t end = ((uintptr_t)p + length) & ~(page - 1);
    uintptr_t run = 0;
    size_t released = 0;
    for (uintptr_t at = start; at <= end; at += page) {
        int zero = 0;
        if (at < end) {
            const uint64_t *word = (const uint64_t *)at;
            uint64_t any = 0;
            for (size_t i = 0; i < page / sizeof(uint64_t); i++) any |= word[i];
            zero = any == 0;
        }
        if (zero && run == 0) run = at;
        if (!zero && run != 0) {
            if (madvise((void *)run, at - run, MADV_DONTNEED) == 0) released += at - run;
            run = 0;
        }
    }
    return released;
}

/* libssh2 exposes many entry points as function-like macros, which Swift does not import. */

/* libssh2 1.10 embeds its packet buffers in the session (16 KiB in, 35,000 bytes out) and
   zeroes all ~54 KiB of it, so each session in flight held 54 KiB although NETCONF requests use
   the first page of the outgoing buffer: the pages still zero after set-up are given back
   (about 30 KiB a session; 15 MiB at 512 sessions). The session is malloc's (no allocator given). */
static inline LIBSSH2_SESSION *care_ssh2_session_init(void *abstract) {
    LIBSSH2_SESSION *session = libssh2_session_init_ex(NULL, NULL, NULL, abstract);
    if (session) care_release_zero_pages(session, malloc_usable_size(session));
    return session;
}

static inline int care_ssh2_session_disconnect(LIBSSH2_SESSION *s, const char *description) {
    return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, description, "");
}

static inline void *care_ssh2_session_abstract_get(LIBSSH2_SESSION *s) {
    return *libssh2_session_abstract(s);
}

static inline LIBSSH2_CHANNEL *care_ssh2_channel_open_session(LIBSSH2_SESSION *s) {
    return libssh2_channel_open_ex(s, "session", sizeof("session") - 1,
                                   LIBSSH2_CHANNEL_WINDOW_DEFAULT * 4,
                                   LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
}

static inline int care_ssh2_channel_subsystem(LIBSSH2_CHANNEL *c, const char *name) {
    return libssh2_channel_process_startup(c, "subsystem", sizeof("subsystem") - 1,
                                           name, (unsigned int)strlen(name));
}

static inline ssize_t care_ssh2_channel_read(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read_ex(c, 0, buf, len);
}

static inline ssize_t care_ssh2_channel_read_stderr(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read_ex(c, SSH_EXTENDED_DATA_STDERR, buf, len);
}

static inline ssize_t care_ssh2_channel_write(LIBSSH2_CHANNEL *c, const char *buf, size_t len) {
    return libssh2_channel_write_ex(c, 0, buf, len);
}

static inline int care_ssh2_channel_send_eof(LIBSSH2_CHANNEL *c) {
    return libssh2_channel_send_eof(c);
}

static inline int care_ssh2_userauth_password(LIBSSH2_SESSION *s, const char *user, const char *password) {
    return libssh2_userauth_password_ex(s, user, (unsigned int)strlen(user),
                                        password, (unsigned int)strlen(password), NULL);
}

static inline int care_ssh2_userauth_publickey_fromfile(LIBSSH2_SESSION *s, const char *user,
                                                        const char *publickey, const char *privatekey,
                                                        const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(s, user, (unsigned int)strlen(user),
                                                  publickey, privatekey, passphrase);
}

/* The same from the key file's contents, read once for many sessions; the public key is
 * derived from the private one. */
static inline int care_ssh2_userauth_publickey_frommemory(LIBSSH2_SESSION *s, const char *user,
                                                          const char *privatekey, size_t length,
                                                          const char *passphrase) {
    return libssh2_userauth_publickey_frommemory(s, user, strlen(user), NULL, 0, privatekey, length, passphrase);
}

/* Keyboard-interactive: libssh2 calls back with the session's abstract pointer, which holds
 * the answer (the password) as a C string owned by the Swift side for the call's duration.
 * Every prompt gets the password, as OpenSSH's client does for a password-only PAM stack;
 * libssh2 frees each response with the default free(). */
static void care_ssh2_kbdint_callback(const char *name, int name_len,
                                      const char *instruction, int instruction_len,
                                      int num_prompts,
                                      const LIBSSH2_USERAUTH_KBDINT_PROMPT *prompts,
                                      LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses,
                                      void **abstract) {
    (void)name; (void)name_len; (void)instruction; (void)instruction_len; (void)prompts;
    const char *answer = abstract ? (const char *)*abstract : NULL;
    for (int i = 0; i < num_prompts; i++) {
        if (answer) {
            responses[i].text = strdup(answer);
            responses[i].length = (unsigned int)strlen(answer);
        } else {
            responses[i].text = NULL;
            responses[i].length = 0;
        }
    }
}

static inline int care_ssh2_userauth_keyboard_interactive(LIBSSH2_SESSION *s, const char *user) {
    return libssh2_userauth_keyboard_interactive_ex(s, user, (unsigned int)strlen(user),
                                                    care_ssh2_kbdint_callback);
}

/* The session abstract is set when the session is made; replace it for kbd-interactive. */
static inline void care_ssh2_session_abstract_set(LIBSSH2_SESSION *s, void *value) {
    *libssh2_session_abstract(s) = value;
}
#endif
