import Foundation
import Logging
import ServiceLifecycle

/// Sends sd_notify messages (`READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`) as datagrams
/// to `$NOTIFY_SOCKET`, without libsystemd. Does nothing when not started by systemd.
public struct SystemdNotifier: Sendable {
    public let socketPath: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sends `message` (`KEY=value` lines); false when there is no socket or sending failed.
    @discardableResult
    public func notify(_ message: String) -> Bool {
        guard let socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // "@name" is an abstract socket: a leading NUL byte instead of the "@".
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.enumerated() { raw[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), $0, length) }
        }
        return sent == bytes.count
    }

    /// Half the watchdog interval systemd asked for (`WATCHDOG_USEC`), or nil when none.
    public static func watchdogInterval(environment: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = Int64(text), usec > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], pid != String(getpid()) { return nil }
        return .microseconds(usec / 2)
    }
}

/// Tells systemd the service is ready (`READY=1`) from inside the ServiceGroup. By the time a
/// group runs its services it traps SIGTERM, so a stop that follows READY at once is a graceful
/// shutdown; sent before the group ran, SIGTERM's default action killed the agent (exit 143).
public struct ReadinessNotice: Service {
    let notifier: SystemdNotifier
    let status: String

    public init(notifier: SystemdNotifier, status: String) {
        self.notifier = notifier
        self.status = status
    }

    public func run() async throws {
        notifier.notify("READY=1\nSTATUS=\(status)")
        // Returning would end the group: stay until shutdown.
        try? await gracefulShutdown()
    }
}

/// Pings systemd's watchdog and publishes a one-line status while the agent runs.
public struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let interval: Duration
    let runtime: AgentRuntime

    /// What `systemctl status` shows: "collecting 212/1500 devices, 1288 queued", or "idle, 1500
    /// devices, next run 02:00 UTC". `inFlight` counts devices being collected, not those queued.
    public static func status(devices: Int, inFlight: Int, queued: Int = 0, nextRun: Date?) -> String {
        if inFlight > 0 || queued > 0 {
            return "collecting \(inFlight)/\(devices) devices" + (queued > 0 ? ", \(queued) queued" : "")
        }
        guard let nextRun else { return "idle, \(devices) devices, no run scheduled" }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.hour, .minute], from: nextRun)
        return "idle, \(devices) devices, next run " + String(format: "%02d:%02d UTC", parts.hour ?? 0, parts.minute ?? 0)
    }

    public init(notifier: SystemdNotifier, interval: Duration, runtime: AgentRuntime) {
        self.notifier = notifier
        self.interval = interval
        self.runtime = runtime
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let configuration = await runtime.configuration
                var status = WatchdogService.status(devices: configuration.devices.count,
                                                    inFlight: await runtime.devicesCollecting.count,
                                                    queued: await runtime.devicesQueued.count,
                                                    nextRun: await runtime.nextRuns.values.min())
                if await runtime.lastReloadError != nil { status += "; last reload failed, running the previous configuration" }
                notifier.notify("WATCHDOG=1\nSTATUS=\(status)")
                try await Task.sleep(for: interval)
            }
        }
        notifier.notify("STOPPING=1")
    }
}

/// Reloads the configuration on SIGHUP (`systemctl reload care-agent`), keeping the last good
/// one when the file is broken.
public struct ReloadOnHangupService: Service {
    let runtime: AgentRuntime
    let notifier: SystemdNotifier

    public init(runtime: AgentRuntime, notifier: SystemdNotifier) {
        self.runtime = runtime
        self.notifier = notifier
    }

    public func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { continuation.yield() }
        source.resume()
        defer { source.cancel() }
        for await _ in stream.cancelOnGracefulShutdown() {
            notifier.notify("RELOADING=1")
            let error = await runtime.reload()
            notifier.notify("READY=1\nSTATUS=" + (error.map { "reload failed: \($0)" } ?? "configuration reloaded"))
        }
    }
}
