/*
 * Hands the process's argv to the Swift runtime before main().
 *
 * Why: on Linux the Swift runtime finds argv by reading /proc/self/maps and walking the stack
 * back from `environ`. Where /proc is not mounted (a chroot, a minimal container) it finds
 * nothing, CommandLine.arguments is empty, and `care-agent run` would print its help and exit 0
 * instead of running. glibc calls every .init_array entry with (argc, argv, envp), so the exact
 * vector is available here without /proc; the runtime's override (exported for exactly this:
 * hosts that know argv better than the runtime) then takes precedence over its stack walk.
 */
#include "CCommandLine.h"

/* Swift calling convention: two plain arguments travel in the same registers as in C. */
extern void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) __attribute__((swiftcall));

static int captured_argc;

static void care_capture_command_line(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc <= 0 || argv == 0) return;
    captured_argc = argc;
    _swift_stdlib_overrideUnsafeArgvArgc(argv, argc);
}

__attribute__((section(".init_array"), used))
static void (*const care_capture_command_line_entry)(int, char **, char **) = care_capture_command_line;

int care_command_line_argc(void) { return captured_argc; }
