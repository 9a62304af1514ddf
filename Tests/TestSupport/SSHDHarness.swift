import Foundation

/// Errors setting up a test harness, with what to do about them.
public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The built `care-agent` executable, next to the test bundle in the build directory.
public func careAgentExecutable() throws -> String {
    var candidates: [URL] = []
    let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = argv0.deletingLastPathComponent()
    for _ in 0..<4 {
        candidates.append(dir.appendingPathComponent("care-agent"))
        dir = dir.deletingLastPathComponent()
    }
    candidates.append(Fixtures.packageRoot.appendingPathComponent(".build/debug/care-agent"))
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
        return candidate.path
    }
    throw HarnessError("care-agent executable not found next to the tests (looked in \(candidates.map(\.path))); run `swift build` first")
}

/// A real OpenSSH `sshd` for tests: its own host keys, config, authorized_keys and client keys in a
/// temporary directory, listening on loopback high ports, running a project command as
/// `Subsystem netconf`. Stopped (and its directory removed) by ``stop()`` or deinit.
public final class SSHDHarness: @unchecked Sendable {
    public struct Options: Sendable {
        /// The subsystem command line (absolute paths).
        public var subsystem: String
        public var addresses: [String] = ["127.0.0.1"]
        public var hostKeyTypes: [String] = ["ed25519", "ecdsa"]
        public var publicKey = true
        public var password = false
        public var keyboardInteractive = false
        /// Allow ssh-rsa (SHA-1) for host and user keys, as older Junos releases do.
        public var allowSSHRSA = false
        public var maxStartups = "400:30:1000"
        public var extraConfig = ""
        /// sshd's LogLevel (DEBUG1 logs every authentication request with its method).
        public var logLevel = "VERBOSE"
        /// The port to listen on; nil picks a free one. Set it when the subsystem command must
        /// name the port (netconfd's `netconf-subsystem --ncxserver-sockname=PORT@SOCKET`).
        public var port: Int?
        public init(subsystem: String) { self.subsystem = subsystem }
    }

    /// The account tests log in as: `care-test` when running as root (it gets a known password),
    /// otherwise the current user (key authentication only).
    public static let testUser = "care-test"
    public static let testPassword = "Care-Test-Pa55word"

    public let directory: URL
    public let port: Int
    public let addresses: [String]
    public let user: String
    public let knownHostsPath: String
    /// Client private keys by name: ed25519, ecdsa, rsa, ed25519-passphrase (passphrase below).
    public let clientKeys: [String: String]
    public let keyPassphrase = "correct horse battery staple"
    private let process: ChildProcess
    public let logPath: String

    public init(_ options: Options) throws {
        let fm = FileManager.default
        directory = fm.temporaryDirectory.appendingPathComponent("care-sshd-\(UUID().uuidString.prefix(8))")
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        chmod(directory.path, 0o755)
        let isRoot = getuid() == 0
        user = isRoot ? SSHDHarness.testUser : (ProcessInfo.processInfo.environment["USER"] ?? NSUserName())
        if isRoot { try SSHDHarness.ensureTestUser() }
        addresses = options.addresses
        port = try options.port ?? SSHDHarness.freePort(on: addresses[0])
        let d = directory.path

        var hostKeyLines = ""
        var knownHosts = ""
        for type in options.hostKeyTypes {
            let path = "\(d)/ssh_host_\(type)_key"
            var args = ["-q", "-t", type, "-N", "", "-f", path]
            if type == "rsa" { args += ["-b", "2048"] }
            try runProgram("/usr/bin/ssh-keygen", args)
            hostKeyLines += "HostKey \(path)\n"
            let pub = try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ")
            for address in addresses { knownHosts += "[\(address)]:\(port) \(pub[0]) \(pub[1])\n" }
        }
        knownHostsPath = "\(d)/known_hosts"
        try knownHosts.write(toFile: knownHostsPath, atomically: true, encoding: .utf8)

        var keys: [String: String] = [:]
        var authorized = ""
        for (name, type, passphrase) in [("ed25519", "ed25519", ""), ("ecdsa", "ecdsa", ""), ("rsa", "rsa", ""),
                                         ("ed25519-passphrase", "ed25519", keyPassphrase),
                                         ("ecdsa-384", "ecdsa", ""), ("ecdsa-521", "ecdsa", ""), ("ecdsa-pem", "ecdsa", "")] {
            let path = "\(d)/client_\(name)"
            var args = ["-q", "-t", type, "-N", passphrase, "-C", "care-test-\(name)", "-f", path]
            if type == "rsa" { args += ["-b", "2048", "-m", "PEM"] }
            if name == "ecdsa-384" { args += ["-b", "384"] }
            if name == "ecdsa-521" { args += ["-b", "521"] }
            if name == "ecdsa-pem" { args += ["-m", "PEM"] }
            try runProgram("/usr/bin/ssh-keygen", args)
            keys[name] = path
            authorized += try String(contentsOfFile: path + ".pub", encoding: .utf8)
        }
        clientKeys = keys
        let authorizedPath = "\(d)/authorized_keys"
        try authorized.write(toFile: authorizedPath, atomically: true, encoding: .utf8)
        for file in try fm.contentsOfDirectory(atPath: d) {
            // Public files readable by the test user's subsystem; private keys 0600 (sshd insists).
            let isPrivateKey = (file.hasPrefix("ssh_host_") || file.hasPrefix("client_")) && !file.hasSuffix(".pub")
            chmod("\(d)/\(file)", isPrivateKey ? 0o600 : 0o644)
        }
        if isRoot { try? fm.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true) }

        var methods: [String] = []
        if options.publicKey { methods.append("publickey") }
        if options.password { methods.append("password") }
        if options.keyboardInteractive { methods.append("keyboard-interactive") }
        let rsa = options.allowSSHRSA ? "HostKeyAlgorithms +ssh-rsa\nPubkeyAcceptedAlgorithms +ssh-rsa\n" : ""
        let config = """
        Port \(port)
        \(addresses.map { "ListenAddress \($0)" }.joined(separator: "\n"))
        \(hostKeyLines)PidFile \(d)/sshd.pid
        AuthorizedKeysFile \(authorizedPath)
        StrictModes no
        UsePAM \(options.keyboardInteractive ? "yes" : "no")
        PubkeyAuthentication \(options.publicKey ? "yes" : "no")
        PasswordAuthentication \(options.password ? "yes" : "no")
        KbdInteractiveAuthentication \(options.keyboardInteractive ? "yes" : "no")
        AuthenticationMethods \(methods.joined(separator: " "))
        PermitRootLogin prohibit-password
        MaxStartups \(options.maxStartups)
        MaxSessions 1000
        LoginGraceTime 30
        LogLevel \(options.logLevel)
        \(rsa)Subsystem netconf \(options.subsystem)
        \(options.extraConfig)
        """
        let configPath = "\(d)/sshd_config"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)

        logPath = "\(d)/sshd.log"
        process = try ChildProcess("/usr/sbin/sshd", ["-D", "-e", "-f", configPath], stderr: logPath)
        try waitUntilListening()
    }

    deinit { stop() }

    /// Stops sshd and removes its directory.
    public func stop() {
        if process.isRunning {
            process.signal(SIGTERM)
            process.wait()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The listening sshd's process id (its sessions are its children).
    public var pid: pid_t { process.pid }

    /// Signals every session process of this sshd (the listener itself is left alone): SIGSTOP
    /// makes a jump host that stops answering mid-session, SIGCONT brings it back.
    public func signalSessions(_ signal: Int32) {
        for child in Self.descendants(of: process.pid) { kill(child, signal) }
    }

    static func descendants(of parent: pid_t) -> [pid_t] {
        var found: [pid_t] = []
        var frontier = [parent]
        while let next = frontier.popLast() {
            let children = ((try? String(contentsOfFile: "/proc/\(next)/task/\(next)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { pid_t($0) }
            found += children
            frontier += children
        }
        return found
    }

    /// The sshd log so far (for failure messages).
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    private func waitUntilListening() throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if !process.isRunning { throw HarnessError("sshd exited at start: \(log)") }
            if SSHDHarness.canConnect(addresses[0], port) { return }
            usleep(20_000)
        }
        throw HarnessError("sshd did not listen on \(addresses[0]):\(port) within 10 s: \(log)")
    }

    static func canConnect(_ address: String, _ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, address, &addr.sin_addr)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A port the kernel says is free now on `address`.
    public static func freePort(on address: String) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, address, &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw HarnessError("cannot bind \(address): \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    private static let userLock = NSLock()

    /// Creates the `care-test` account with its known password (root only; idempotent).
    static func ensureTestUser() throws {
        userLock.lock()
        defer { userLock.unlock() }
        if getpwnam(testUser) == nil {
            do {
                try runProgram("/usr/sbin/useradd", ["-m", "-s", "/bin/sh", testUser])
            } catch {
                if getpwnam(testUser) == nil { throw error }
            }
        }
        try runProgram("/usr/sbin/chpasswd", [], input: "\(testUser):\(testPassword)\n")
    }
}
