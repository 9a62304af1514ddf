import Foundation

/// A fleet of simulated Junos devices served by real OpenSSH sshd instances.
///
/// Every device listens on its own loopback address (127.0.x.y: all of 127/8 reaches `lo` on
/// Linux, so nothing needs configuring) and the same port, so that to a client the devices look
/// like separate hosts. One sshd serves up to 16 addresses; its `Subsystem netconf` runs
/// `care-agent simulate netconf --fleet-state DIR`, which finds its device from the server address
/// in `SSH_CONNECTION`. Everything a client needs is written to the state directory:
/// `inventory.csv`, `known_hosts`, `client_ed25519`, and `fleet.json` (the map sessions read).
public final class SimulatedFleet: @unchecked Sendable {
    /// What to build.
    public struct Options: Sendable {
        public var deviceCount: Int
        public var profilesDirectory: URL
        public var stateDirectory: URL
        public var faults = FaultMix()
        public var seed: UInt64 = 1
        /// 0: pick a port free on every address.
        public var port = 0
        public var rpcLatencyMs = 0
        public var setupDelayMs = 0
        /// The account clients log in as (any existing account: keys come from the state directory).
        public var user: String
        /// The command line sshd runs as the NETCONF subsystem, before `--fleet-state DIR`.
        public var subsystemCommand: [String]
        /// `care-netconf-relay`: when set, the devices answer from this process (``FleetResponders``)
        /// and sshd's subsystem only relays bytes to them; nil: a `subsystemCommand` process per session.
        public var relayPath: String?
        /// Listen addresses, one per device, instead of 127.0.1.1, 127.0.1.2, ...
        public var addresses: [String]?
        /// Serve the profiles' own host names and serials (`bundle serve`) instead of one per device.
        public var capturedIdentity = false
        public var sshdPath = "/usr/sbin/sshd"
        public var sshKeygenPath = "/usr/bin/ssh-keygen"

        public init(deviceCount: Int, profilesDirectory: URL, stateDirectory: URL, user: String, subsystemCommand: [String]) {
            self.deviceCount = deviceCount
            self.profilesDirectory = profilesDirectory
            self.stateDirectory = stateDirectory
            self.user = user
            self.subsystemCommand = subsystemCommand
        }
    }

    public let plan: FleetPlan
    public let stateDirectory: URL
    private let options: Options
    private var processes: [SpawnedProcess] = []
    private var responders: FleetResponders?
    private var netconfDirectory: String { stateDirectory.appendingPathComponent("netconf").path }

    public var inventoryPath: String { stateDirectory.appendingPathComponent("inventory.csv").path }
    public var knownHostsPath: String { stateDirectory.appendingPathComponent("known_hosts").path }
    public var clientKeyPath: String { stateDirectory.appendingPathComponent("client_ed25519").path }
    public var fleetMapPath: String { stateDirectory.appendingPathComponent(SimulatedFleet.fleetMapName).path }
    /// Written once every device accepts connections, removed by ``stop()``.
    public var readyMarkerPath: String { stateDirectory.appendingPathComponent("ready").path }
    public static let fleetMapName = "fleet.json"

    /// The sshd process ids, in sshd order.
    public var sshdProcessIDs: [pid_t] { processes.map(\.pid) }

    /// Plans the fleet and writes keys, configurations, the fleet map, inventory and known_hosts.
    public init(_ options: Options) throws(SimulatorError) {
        self.options = options
        let fm = FileManager.default
        for (program, package) in [(options.sshdPath, "openssh-server"), (options.sshKeygenPath, "openssh-client")]
            where !fm.isExecutableFile(atPath: program) {
            throw .fleet("\(program) not found: the simulator runs OpenSSH (Debian/Ubuntu: apt-get install \(package))")
        }
        stateDirectory = options.stateDirectory.standardizedFileURL
        do {
            try fm.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw .fleet("cannot create the state directory \(stateDirectory.path): \(error.localizedDescription)")
        }
        // sshd runs the subsystem as the login user, who must read the fleet map and profiles.
        chmod(stateDirectory.path, 0o755)
        for stale in ["ready", SimulatedFleet.fleetMapName] {
            try? fm.removeItem(at: stateDirectory.appendingPathComponent(stale))
        }
        let sources = try DeviceProfileSource.all(in: options.profilesDirectory)
        let port = options.port != 0 ? options.port : try SimulatedFleet.freePort()
        plan = try FleetPlan.make(deviceCount: options.deviceCount, profiles: sources, faults: options.faults,
                                  seed: options.seed, port: port, user: options.user,
                                  rpcLatencyMs: options.rpcLatencyMs, setupDelayMs: options.setupDelayMs,
                                  addresses: options.addresses, capturedIdentity: options.capturedIdentity)
        try writeState()
    }

    deinit { stop() }

    private func path(_ name: String) -> String { stateDirectory.appendingPathComponent(name).path }

    private func writeState() throws(SimulatorError) {
        let d = stateDirectory
        // The client key pair (fresh each run, like every host key).
        try? FileManager.default.removeItem(atPath: clientKeyPath)
        try? FileManager.default.removeItem(atPath: clientKeyPath + ".pub")
        try runToCompletion(options.sshKeygenPath, ["-q", "-t", "ed25519", "-N", "", "-C", "care-agent-simulated-fleet", "-f", clientKeyPath], scratch: d)
        let publicKey = try read(clientKeyPath + ".pub")
        try write(publicKey, to: path("authorized_keys"), mode: 0o644)

        var knownHosts = ""
        for group in 0..<plan.sshdCount {
            let dir = d.appendingPathComponent("sshd-\(group)")
            try? FileManager.default.removeItem(at: dir)
            do {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            } catch {
                throw .fleet("cannot create \(dir.path): \(error.localizedDescription)")
            }
            chmod(dir.path, 0o755)
            let hostKey = dir.appendingPathComponent("ssh_host_ed25519_key").path
            try runToCompletion(options.sshKeygenPath, ["-q", "-t", "ed25519", "-N", "", "-C", "sshd-\(group)", "-f", hostKey], scratch: d)
            let fields = try read(hostKey + ".pub").split(separator: " ")
            guard fields.count >= 2 else { throw .fleet("ssh-keygen wrote an unexpected public key to \(hostKey).pub") }
            for device in plan.devices where device.sshd == group {
                let host = device.port == 22 ? device.address : "[\(device.address)]:\(device.port)"
                knownHosts += "\(host) \(fields[0]) \(fields[1])\n"
            }
        }
        try write(knownHosts, to: knownHostsPath, mode: 0o644)
        try write(plan.inventoryCSV(), to: inventoryPath, mode: 0o644)
        try plan.write(to: URL(fileURLWithPath: fleetMapPath))
        chmod(fleetMapPath, 0o644)
        // Each sshd's sessions read the plan of its own 16 devices: a session start that decoded
        // the whole fleet's map cost time in proportion to the fleet (quadratic over a collection).
        for group in 0..<plan.sshdCount {
            var own = plan
            own.devices = plan.devices.filter { $0.sshd == group }
            let path = d.appendingPathComponent("sshd-\(group)/\(SimulatedFleet.fleetMapName)").path
            try own.write(to: URL(fileURLWithPath: path))
            chmod(path, 0o644)
        }
    }

    /// The sshd configuration of instance `group`. `disablePerSourcePenalties` turns off OpenSSH
    /// 9.8+'s per-source penalties: every client comes from 127.0.0.1, and one auth-fail device
    /// would otherwise get the whole fleet refused.
    func sshdConfig(group: Int, disablePerSourcePenalties: Bool) -> String {
        let dir = stateDirectory.appendingPathComponent("sshd-\(group)").path
        let devices = plan.devices.filter { $0.sshd == group }
        let command = options.relayPath.map { [$0, netconfDirectory] } ?? options.subsystemCommand + ["--fleet-state", dir]
        // sshd runs it through the login shell (`sh -c`): `exec` spares a shell process per session.
        let subsystem = "exec " + command.map(SimulatedFleet.shellQuoted).joined(separator: " ")
        var config = devices.map { "ListenAddress \($0.address):\($0.port)" }.joined(separator: "\n") + "\n"
        config += """
        HostKey \(dir)/ssh_host_ed25519_key
        PidFile \(dir)/sshd.pid
        AuthorizedKeysFile \(path("authorized_keys"))
        StrictModes no
        UsePAM no
        PubkeyAuthentication yes
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        AuthenticationMethods publickey
        PermitRootLogin prohibit-password
        MaxStartups 1000:30:2000
        MaxSessions 100
        LoginGraceTime 30
        LogLevel INFO
        Subsystem netconf \(subsystem)
        # A simulated device offers NETCONF only: a shell or exec request gets the NETCONF
        # responder too (as on a Junos port 830), and nothing is forwarded.
        ForceCommand \(subsystem)
        DisableForwarding yes
        PermitTTY no
        PermitUserRC no

        """
        if disablePerSourcePenalties { config += "PerSourcePenalties no\n" }
        let refused = devices.filter { $0.fleetFault == .authFail }.map(\.address)
        if !refused.isEmpty {
            // auth-fail: these addresses accept no key at all.
            config += "Match LocalAddress \(refused.joined(separator: ","))\n    AuthorizedKeysFile /dev/null\n"
        }
        return config
    }

    /// Starts every sshd and waits (at most `timeout`) until every device accepts connections.
    public func start(timeout: Duration = .seconds(20)) throws(SimulatorError) {
        if getuid() == 0 {
            // sshd's privilege separation directory; packages create it at boot, containers may not.
            try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        }
        let knowsPenalties = try sshdKnowsPerSourcePenalties()
        if options.relayPath != nil {
            let responders = FleetResponders(plan: plan, directory: netconfDirectory)
            try responders.start()
            self.responders = responders
        }
        for group in 0..<plan.sshdCount {
            let dir = stateDirectory.appendingPathComponent("sshd-\(group)").path
            try write(sshdConfig(group: group, disablePerSourcePenalties: knowsPenalties), to: "\(dir)/sshd_config", mode: 0o644)
            let log = "\(dir)/sshd.log"
            unlink(log)
            do {
                // -r: no re-exec per connection. Every session of the fleet runs on the machine of
                // the collector under test, and re-executing sshd (loading, linking, reading the
                // configuration and keys again) was most of sshd's ~19 ms of CPU a session
                // (perf, docs/performance.md); a real device's sshd costs the collector nothing.
                processes.append(try SpawnedProcess(options.sshdPath, ["-D", "-e", "-r", "-f", "\(dir)/sshd_config"],
                                                    stderr: log, ownProcessGroup: true))
            } catch {
                stop()
                throw error
            }
        }
        let deadline = ContinuousClock.now + timeout
        var waiting = plan.devices
        while !waiting.isEmpty {
            if let failure = deadSSHD() {
                stop()
                throw .fleet(failure)
            }
            waiting.removeAll { SimulatedFleet.canConnect($0.address, $0.port) }
            if waiting.isEmpty { break }
            if ContinuousClock.now > deadline {
                stop()
                throw .fleet("\(waiting.count) devices (first \(waiting[0].address):\(waiting[0].port)) did not accept connections within \(timeout)")
            }
            usleep(20_000)
        }
        try write("\(getpid())\n", to: readyMarkerPath, mode: 0o644)
    }

    /// A message naming the first sshd that has exited, with the end of its log; nil if all run.
    public func deadSSHD() -> String? {
        for (group, process) in processes.enumerated() where !process.isRunning {
            let log = (try? read(stateDirectory.appendingPathComponent("sshd-\(group)/sshd.log").path)) ?? ""
            let tail = log.split(separator: "\n").suffix(5).joined(separator: "\n")
            return "sshd \(group) (pid \(process.pid)) exited with status \(process.wait()): \(tail)"
        }
        return nil
    }

    /// Stops every sshd this fleet started (and the sessions they forked), then removes the ready marker.
    public func stop() {
        for process in processes { process.signal(SIGTERM, group: true) }
        for process in processes { process.terminate(grace: .seconds(3), group: true) }
        processes.removeAll()
        responders?.stop()
        responders = nil
        unlink(readyMarkerPath)
    }

    /// Whether sshd knows `PerSourcePenalties` (OpenSSH 9.8 and later): asks `sshd -t` about a
    /// configuration that has it.
    private func sshdKnowsPerSourcePenalties() throws(SimulatorError) -> Bool {
        let probe = path("sshd-0/penalties-probe.conf")
        let hostKey = path("sshd-0/ssh_host_ed25519_key")
        try write("HostKey \(hostKey)\nPerSourcePenalties no\n", to: probe, mode: 0o644)
        defer { unlink(probe) }
        do {
            try runToCompletion(options.sshdPath, ["-t", "-f", probe], scratch: stateDirectory)
            return true
        } catch {
            return false
        }
    }

    /// The summary `simulate fleet` prints.
    public func summary() -> String {
        let faulty = plan.devices.filter { $0.fault != nil }
        var profiles: [String: Int] = [:]
        for device in plan.devices { profiles[device.profile, default: 0] += 1 }
        var text = """
        Simulated fleet: \(plan.devices.count) devices on \(plan.devices.first!.address)...\(plan.devices.last!.address) port \(plan.port), \(processes.count) sshd processes
          profiles:    \(profiles.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
          faults:      \(faultSummary(faulty))
          latency:     set-up \(plan.setupDelayMs) ms, per RPC \(plan.rpcLatencyMs) ms
          user:        \(plan.user)
          key:         \(clientKeyPath)
          known_hosts: \(knownHostsPath)
          inventory:   \(inventoryPath)
        Try: care-agent rpc --host \(plan.devices[0].address) --port \(plan.port) --user \(plan.user) --key \(clientKeyPath) --known-hosts \(knownHostsPath) get-software-information
        Stop with Ctrl-C (or SIGTERM).
        """
        text += "\n"
        return text
    }

    /// The faulty devices by name, the first twelve of them (the full list is in inventory.csv).
    private func faultSummary(_ faulty: [FleetDevice]) -> String {
        if faulty.isEmpty { return "none" }
        var text = faulty.prefix(12).map { "\($0.name) (\($0.address)) \($0.fault!)" }.joined(separator: ", ")
        if faulty.count > 12 { text += " and \(faulty.count - 12) more (see inventory.csv)" }
        return text
    }

    // MARK: - small system helpers

    private func read(_ path: String) throws(SimulatorError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw .fleet("cannot read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }

    private func write(_ text: String, to path: String, mode: mode_t) throws(SimulatorError) {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw .fleet("cannot write \(path): \(error.localizedDescription)")
        }
        chmod(path, mode)
    }

    static func shellQuoted(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ $0.isLetter || $0.isNumber || "/._-=:,+@".contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// A TCP port that nothing listens on, on any address (the kernel picks it for the wildcard).
    static func freePort() throws(SimulatorError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .fleet("cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw .fleet("cannot find a free port: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Whether a TCP connection to `address:port` succeeds now.
    public static func canConnect(_ address: String, _ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { return false }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
