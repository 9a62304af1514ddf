// sshd's NETCONF subsystem for a simulated fleet (`care-agent simulate fleet`): connects to the
// fleet process's Unix socket for the device sshd was reached on (the server address and port of
// SSH_CONNECTION) and relays bytes both ways until the device side closes.
//
// In C, and this small, because it runs once per session: a Swift executable's start-up (runtime,
// Foundation, profile loading) per session made the simulated fleet, not the collectors, the
// bottleneck of a 1,000-device benchmark on two cores. The device logic stays in Swift, in the
// fleet process (Simulator's FleetResponders).
//
// SwiftPM links every executable with swiftrt.o, whose constructor registers the image's Swift
// metadata with the Swift runtime: that pulled in libswiftCore, and starting it (its own
// initialisers, a thread, /proc/self/maps) cost 3 ms of CPU per session, six times the relay's
// whole work. This program has no Swift metadata, so the two symbols swiftrt.o needs are defined
// here as no-ops and the executable is linked statically (Package.swift): nothing of the Swift
// runtime is linked in, and no shared library is loaded at all.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int write_all(int fd, const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t n = write(fd, bytes, count);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        bytes += n;
        count -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: care-netconf-relay SOCKET-DIRECTORY (run by sshd as a simulated fleet's netconf subsystem)\n");
        return 2;
    }
    const char *connection = getenv("SSH_CONNECTION");
    char address[64], port[16];
    if (connection == NULL || sscanf(connection, "%*s %*s %63s %15s", address, port) != 2) {
        fprintf(stderr, "care-netconf-relay: SSH_CONNECTION is not \"client-ip client-port server-ip server-port\"\n");
        return 1;
    }
    struct sockaddr_un target = {.sun_family = AF_UNIX};
    int length = snprintf(target.sun_path, sizeof target.sun_path, "%s/%s_%s", argv[1], address, port);
    if (length < 0 || (size_t)length >= sizeof target.sun_path) {
        fprintf(stderr, "care-netconf-relay: socket path %s/%s_%s is longer than %zu bytes\n", argv[1], address, port,
                sizeof target.sun_path - 1);
        return 1;
    }
    int device = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (device < 0 || connect(device, (struct sockaddr *)&target, sizeof target) != 0) {
        fprintf(stderr, "care-netconf-relay: cannot connect to %s: %s\n", target.sun_path, strerror(errno));
        return 1;
    }
    // A client gone mid-write ends the relay with EPIPE, not a signal.
    signal(SIGPIPE, SIG_IGN);
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = device, .events = POLLIN}};
    static char buffer[64 * 1024];
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        if (fds[0].revents) {
            ssize_t n = read(0, buffer, sizeof buffer);
            if (n > 0) {
                if (write_all(device, buffer, (size_t)n) != 0) return 0;
            } else if (n == 0 || errno != EINTR) {
                // The client closed its side: tell the device, keep relaying what it still sends.
                shutdown(device, SHUT_WR);
                fds[0].fd = -1;
            }
        }
        if (fds[1].revents) {
            ssize_t n = read(device, buffer, sizeof buffer);
            if (n > 0) {
                if (write_all(1, buffer, (size_t)n) != 0) return 0;
            } else if (n == 0 || errno != EINTR) {
                return 0;
            }
        }
    }
}

// See the top of this file: swiftrt.o's references, satisfied without the Swift runtime.
void swift_addNewDSOImage(const void *image) { (void)image; }
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }
