import Foundation

/// The NETCONF side of a simulated fleet, inside the fleet's own process: one listening Unix
/// socket per device (`<state>/netconf/<address>_<port>`), reached from sshd through
/// `care-netconf-relay`, and a thread per session running the device's ``NETCONFResponder``.
///
/// Why not a responder process per session: starting a Swift executable and loading its profile
/// cost some 25 ms of CPU per session, so at 512 sessions at once on two cores the fleet, not the
/// collectors under test, set the pace (and timed sessions out). Threads are fine here: this is
/// the test double; the agent itself keeps one event loop.
final class FleetResponders: @unchecked Sendable {
    let plan: FleetPlan
    let directory: String
    private var listeners: [(fd: Int32, device: FleetDevice)] = []
    private var wake: [Int32] = [-1, -1]
    private var acceptor: Thread?
    private let sessions = SessionCounter()

    init(plan: FleetPlan, directory: String) {
        self.plan = plan
        self.directory = directory
    }

    deinit { stop() }

    static func socketName(_ device: FleetDevice) -> String { "\(device.address)_\(device.port)" }

    /// Binds every device's socket and starts accepting.
    func start() throws(SimulatorError) {
        // A client that leaves mid-reply must not kill the fleet with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        Self.raiseDescriptorLimit()
        try? FileManager.default.removeItem(atPath: directory)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .fleet("cannot create \(directory): \(error.localizedDescription)")
        }
        // sshd runs the relay as the login user.
        chmod(directory, 0o755)
        for device in plan.devices {
            let path = "\(directory)/\(Self.socketName(device))"
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard fd >= 0, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
                if fd >= 0 { close(fd) }
                stop()
                throw .fleet("cannot make the socket \(path) (\(bytes.count) bytes; at most \(MemoryLayout.size(ofValue: address.sun_path) - 1))")
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in bytes.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0, chmod(path, 0o666) == 0, listen(fd, 1024) == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                stop()
                throw .fleet("cannot listen on \(path): \(reason)")
            }
            listeners.append((fd, device))
        }
        guard pipe(&wake) == 0 else { throw .fleet("cannot make a pipe: \(String(cString: strerror(errno)))") }
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "fleet-acceptor"
        acceptor = thread
        thread.start()
    }

    /// Stops accepting; sessions in progress end when their clients leave.
    func stop() {
        if wake[1] >= 0 {
            var byte: UInt8 = 0
            _ = write(wake[1], &byte, 1)
        }
        while acceptor?.isFinished == false { usleep(1_000) }
        acceptor = nil
        for listener in listeners { close(listener.fd) }
        listeners = []
        for fd in wake where fd >= 0 { close(fd) }
        wake = [-1, -1]
    }

    private func acceptLoop() {
        var polled = listeners.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        polled.append(pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0))
        while true {
            let ready = poll(&polled, nfds_t(polled.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if polled[polled.count - 1].revents != 0 { return }
            for index in 0..<(polled.count - 1) where polled[index].revents != 0 {
                polled[index].revents = 0
                let client = accept(polled[index].fd, nil, nil)
                guard client >= 0 else { continue }
                // Not inherited by sshd processes the fleet spawns later.
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                serve(client, device: listeners[index].device)
            }
        }
    }

    private func serve(_ client: Int32, device: FleetDevice) {
        let plan = plan
        let id = sessions.next()
        let thread = Thread {
            defer { close(client) }
            guard var responder = try? NETCONFResponder.forDevice(device, plan: plan) else { return }
            responder.sessionID = String(id)
            responder.run(input: client, output: client)
        }
        // Replies are written from a 64 KiB buffer; the default 8 MiB stack per session would only
        // reserve address space.
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Two sockets per session in flight (listener and peer) plus every device's listener.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Session ids for the hellos, unique within the fleet process.
private final class SessionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 1000

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
