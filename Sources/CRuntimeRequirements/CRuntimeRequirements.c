/*
 * Refuses to start, with a message that says why, where /proc is not mounted.
 *
 * Why: the Swift runtime and libdispatch need /proc. The runtime finds argv through
 * /proc/self/maps (without it every command line reads as empty: the binary printed its help and
 * exited 0, whatever it was asked), and libdispatch's thread-pool monitor reads
 * /proc/self/task/TID/stat and stops the process with an illegal instruction when it cannot (seen
 * in a chroot: SIGILL within a second, on some runs only). Neither can be fixed from here, so
 * the process ends before any of it starts: one line on stderr, exit status 72 (sysexits.h's
 * EX_OSFILE: a system file is missing).
 *
 * It runs from .init_array, before Swift's main and before any thread exists.
 */
#include "CRuntimeRequirements.h"

#include <unistd.h>

static void care_require_proc(int argc, char **argv, char **envp) {
    (void)envp;
    if (access("/proc/self/maps", R_OK) == 0 && access("/proc/self/task", R_OK) == 0) return;
    static const char message[] =
        ": /proc is not mounted here (a chroot or a container without it?). The Swift runtime and "
        "libdispatch read /proc/self; mount it (mount -t proc proc /proc) and start again.\n";
    const char *name = (argc > 0 && argv && argv[0]) ? argv[0] : "care-agent";
    size_t length = 0;
    while (name[length]) length++;
    (void)!write(2, name, length);
    (void)!write(2, message, sizeof(message) - 1);
    _exit(72);
}

__attribute__((section(".init_array"), used))
static void (*const care_require_proc_entry)(int, char **, char **) = care_require_proc;
