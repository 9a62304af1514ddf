import Foundation

/// Debian's yuma123 `netconfd` behind a real OpenSSH sshd: a NETCONF server written by someone
/// else, so that the client is tested against more than our own simulator.
///
/// Layout: sshd runs `netconf-subsystem --ncxserver-sockname=PORT@SOCKET` for each session; that
/// program relays the session to the long-lived `netconfd` over the Unix socket SOCKET. netconfd
/// only accepts sessions whose sshd port is in its `--port` list, so both sides are given the same
/// port. Everything lives in one temporary directory (HOME of netconfd, where it would keep its
/// startup configuration) and is removed by ``stop()`` or deinit.
public final class NetconfdHarness: @unchecked Sendable {
    public static let netconfdPath = "/usr/sbin/netconfd"
    public static let subsystemPath = "/usr/sbin/netconf-subsystem"

    public let directory: URL
    public let socketPath: String
    /// The sshd in front of netconfd; its `port`, `user`, `clientKeys` and `knownHostsPath` are
    /// what a client needs.
    public let sshd: SSHDHarness
    private let netconfd: ChildProcess
    private let outputPath: String
    private let lock = NSLock()
    private var stopped = false

    /// Whether netconfd is installed here (`apt-get install netconfd`).
    public static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: netconfdPath) && FileManager.default.isExecutableFile(atPath: subsystemPath)
    }

    public init(configure: (inout SSHDHarness.Options) -> Void = { _ in }) throws {
        guard NetconfdHarness.isInstalled else {
            throw HarnessError("\(NetconfdHarness.netconfdPath) or \(NetconfdHarness.subsystemPath) is missing: install Debian's netconfd package (apt-get install netconfd)")
        }
        let fm = FileManager.default
        directory = fm.temporaryDirectory.appendingPathComponent("care-netconfd-\(UUID().uuidString.prefix(8))")
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        // The subsystem runs as the login user and must reach the socket in here.
        chmod(directory.path, 0o755)
        socketPath = directory.appendingPathComponent("ncxserver.sock").path
        outputPath = directory.appendingPathComponent("netconfd.log").path

        let port = try SSHDHarness.freePort(on: "127.0.0.1")
        var options = SSHDHarness.Options(subsystem: "\(NetconfdHarness.subsystemPath) --ncxserver-sockname=\(port)@\(socketPath)")
        options.port = port
        configure(&options)
        do {
            sshd = try SSHDHarness(options)
        } catch {
            try? fm.removeItem(at: directory)
            throw error
        }

        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = directory.path
        let arguments = [
            "--port=\(sshd.port)",
            "--ncxserver-sockname=\(socketPath)",
            // netconfd's access control lets the superuser do everything; the test account reads.
            "--superuser=\(sshd.user)",
            "--log-level=info",
        ]
        do {
            netconfd = try ChildProcess(NetconfdHarness.netconfdPath, arguments, stdout: outputPath,
                                        stderr: directory.appendingPathComponent("netconfd.err").path, environment: environment)
        } catch {
            sshd.stop()
            try? fm.removeItem(at: directory)
            throw error
        }
        do {
            try waitForSocket()
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// What netconfd printed so far (for failure messages).
    public var log: String {
        let out = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: directory.appendingPathComponent("netconfd.err").path, encoding: .utf8)) ?? ""
        return out + err
    }

    /// Stops sshd and netconfd and removes the directory. Idempotent.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        if stopped { return }
        stopped = true
        sshd.stop()
        if netconfd.isRunning {
            netconfd.signal(SIGTERM)
            // netconfd shuts down in well under a second; do not let a wedged one hang the run.
            let deadline = Date().addingTimeInterval(5)
            while netconfd.isRunning && Date() < deadline { usleep(20_000) }
            if netconfd.isRunning { netconfd.signal(SIGKILL) }
            netconfd.wait()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    private func waitForSocket() throws {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if !netconfd.isRunning { throw HarnessError("netconfd exited at start: \(log)") }
            if FileManager.default.fileExists(atPath: socketPath) { return }
            usleep(20_000)
        }
        throw HarnessError("netconfd did not create \(socketPath) within 15 s: \(log)")
    }
}
