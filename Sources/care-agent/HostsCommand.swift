import Agent
import ArgumentParser
import Foundation
import Logging
import NETCONFSSH
import SSH

/// `care-agent hosts ...`: the devices' SSH host keys.
struct HostsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hosts",
        abstract: "Fetch and record the devices' SSH host keys.",
        subcommands: [HostsScanCommand.self]
    )
}

/// `care-agent hosts scan`: `ssh-keyscan -p 830` for the configured devices, with the agent's own
/// SSH code, then records the new keys in each group's known_hosts after confirmation.
struct HostsScanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Fetch each device's host keys, show their fingerprints and record new ones in known_hosts.",
        discussion: """
        Connects to every selected device (its group's port, 830 by default), fetches its Ed25519, ECDSA \
        and RSA host keys without logging in, and prints each fingerprint with what the group's \
        known_hosts says of it: new, known, or CHANGED (never recorded: a changed key is a replaced \
        device or a man in the middle; remove the old line once you know which). After confirmation, or \
        with --yes, the new keys are added to known_hosts (atomically, keeping the file's owner). Compare \
        the fingerprints with the device's own first (on its console: start shell, then \
        ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).

        Exit status: 0 when every device answered and nothing changed, 1 when a device could not be \
        reached, a key changed or new keys were not recorded, 2 for configuration errors, 64 for usage errors.
        """
    )

    @OptionGroup var options: ConfigurationOptions
    @Option(help: "Scan only this group (repeatable).") var group: [String] = []
    @Option(help: "Scan only this device (repeatable).") var device: [String] = []
    @Flag(help: "Record new keys without asking.") var yes = false
    @Option(help: "Seconds for each connection.") var timeout: Double = 10
    @Option(help: "Devices scanned at once.") var concurrency: Int = 16

    func validate() throws {
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
    }

    /// Something to scan: a device, or a jump host on the way to one; `route`: the jump hosts
    /// before it (nil: directly).
    struct ScanTarget: Sendable {
        var name: String
        var host: String
        var port: Int
        var knownHosts: String
        var route: JumpRoute?
    }

    /// One target's keys (or why there are none) and what its known_hosts says of each.
    struct TargetScan: Sendable {
        var target: ScanTarget
        var keys: [(HostKey, KeyState)] = []
        var error: String?
    }

    enum KeyState: Sendable, Equatable {
        case new, known, revoked(line: Int)
        case changed(line: Int, fingerprint: String)
    }

    func run() async throws {
        let configuration = try options.load()
        let devices: [Device]
        do {
            devices = try configuration.select(groups: group, devices: device)
        } catch {
            Console.error("\(error)"); throw ExitCode(2)
        }
        if devices.isEmpty {
            Console.error("no devices to scan (give --inventory, devices in agent.conf, or check --group/--device)")
            throw ExitCode(2)
        }
        // Jump hosts first: a device behind one is scanned through it, which takes its key.
        let (jumps, targets) = try Self.targets(devices, configuration: configuration)
        var troubled = false
        do {
            if !jumps.isEmpty {
                troubled = try await phase(jumps) || troubled
            }
            troubled = try await phase(targets) || troubled
        } catch {
            await JumpHostSessions.shared.closeAll()
            throw error
        }
        await JumpHostSessions.shared.closeAll()
        if troubled { throw ExitCode(1) }
    }

    /// The devices as scan targets, and the jump hosts on their way (each chain's hops, in order).
    static func targets(_ devices: [Device], configuration: AgentConfiguration) throws -> ([ScanTarget], [ScanTarget]) {
        var jumps: [ScanTarget] = [], seen = Set<String>()
        var targets: [ScanTarget] = []
        for device in devices {
            let settings = configuration.groups[device.group] ?? GroupSettings(name: device.group)
            let hops = device.proxyJump ?? settings.proxyJump
            var route: JumpRoute?
            if !hops.isEmpty {
                let credentials: SSHCredentials
                do {
                    let login = try settings.credentials.resolve(group: settings.name)
                    credentials = SSHCredentials(user: login.user, privateKeyPath: settings.proxyJumpKeyFile ?? login.privateKeyPath,
                                                 passphrase: settings.proxyJumpKeyFile == nil ? login.passphrase : nil)
                } catch {
                    Console.error("\(device.name): the jump hosts' login: \(error)")
                    throw ExitCode(2)
                }
                let verifier = HostKeyVerifier(knownHostsPath: settings.knownHosts, policy: .strict)
                for index in hops.indices {
                    let earlier = Array(hops[..<index])
                    let hop = hops[index]
                    guard seen.insert("\(earlier)|\(hop)|\(settings.knownHosts)").inserted else { continue }
                    jumps.append(ScanTarget(name: "jump host \(hop)", host: hop.host, port: hop.port, knownHosts: settings.knownHosts,
                                            route: earlier.isEmpty ? nil : JumpRoute(hops: earlier, credentials: credentials, hostKeyVerifier: verifier,
                                                                                     maximumTunnels: settings.proxyJumpTunnels)))
                }
                route = JumpRoute(hops: hops, credentials: credentials, hostKeyVerifier: verifier, maximumTunnels: settings.proxyJumpTunnels)
            }
            targets.append(ScanTarget(name: device.name, host: device.host, port: device.port ?? settings.port,
                                      knownHosts: settings.knownHosts, route: route))
        }
        return (jumps, targets)
    }

    /// Scans, shows, and records the new keys after confirmation; true when something is wrong.
    func phase(_ targets: [ScanTarget]) async throws -> Bool {
        let scans = await scanAll(targets)
        var newKeys = 0, troubled = false
        for scan in scans {
            let where_ = "\(scan.target.name) \(scan.target.host):\(scan.target.port)"
            if let error = scan.error {
                Console.out("\(where_): FAILED: \(error)")
                troubled = true
                continue
            }
            Console.out("\(where_) (\(scan.target.knownHosts))")
            for (key, state) in scan.keys {
                let label: String
                switch state {
                case .new: label = "new"; newKeys += 1
                case .known: label = "known"
                case let .revoked(line): label = "REVOKED (line \(line))"; troubled = true
                case let .changed(line, fingerprint):
                    label = "CHANGED: line \(line) has \(fingerprint); not recorded (verify, then remove the old line)"
                    troubled = true
                }
                Console.out("  \(key.type.padding(toLength: 20, withPad: " ", startingAt: 0)) \(key.fingerprint)  \(label)")
            }
        }
        guard newKeys > 0 else {
            Console.out("no new host keys")
            return troubled
        }
        if !yes {
            guard isatty(0) == 1 else {
                Console.error("\(newKeys) new host keys not recorded: confirm on a terminal, or give --yes once the fingerprints are checked")
                return true
            }
            FileHandle.standardOutput.write(Data("Record \(newKeys) new host keys? Compare the fingerprints with the hosts' own first. [y/N] ".utf8))
            let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            guard answer == "y" || answer == "yes" else {
                Console.out("nothing recorded")
                return true
            }
        }
        var recorded = 0
        for scan in scans {
            for (key, state) in scan.keys where state == .new {
                do {
                    try KnownHosts.record(key, host: scan.target.host, port: scan.target.port, in: scan.target.knownHosts)
                    recorded += 1
                } catch {
                    Console.error("\(scan.target.name): \(error)")
                    troubled = true
                }
            }
        }
        let files = Set(scans.filter { $0.keys.contains { $0.1 == .new } }.map(\.target.knownHosts)).sorted()
        Console.out("recorded \(recorded) host keys in \(files.joined(separator: ", "))")
        return troubled
    }

    func scanAll(_ targets: [ScanTarget]) async -> [TargetScan] {
        let limit = concurrency, timeout = Duration.milliseconds(Int64(self.timeout * 1000))
        let logger = Console.logger("care-agent")
        return await withTaskGroup(of: (Int, TargetScan).self) { tasks in
            var results: [(Int, TargetScan)] = []
            for (index, target) in targets.enumerated() {
                if index >= limit, let done = await tasks.next() { results.append(done) }
                tasks.addTask { (index, await Self.scan(target, timeout: timeout, logger: logger)) }
            }
            for await done in tasks { results.append(done) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    static func scan(_ target: ScanTarget, timeout: Duration, logger: Logger) async -> TargetScan {
        var result = TargetScan(target: target)
        do {
            let entries = try KnownHosts(path: target.knownHosts).entries(host: target.host, port: target.port)
            var connect: (@Sendable () async throws -> Int32)?
            if let route = target.route {
                connect = {
                    try await JumpHostSessions.shared.tunnel(to: target.host, port: target.port, route: route,
                                                             timeouts: SSHTimeouts(connect: timeout, authentication: timeout), logger: logger)
                }
            }
            for key in try await HostKeyScan.scan(host: target.host, port: target.port, timeout: timeout, connect: connect) {
                let state: KeyState
                if let revoked = entries.first(where: { $0.revoked && $0.key.blob == key.blob }) {
                    state = .revoked(line: revoked.line)
                } else if entries.contains(where: { !$0.revoked && $0.key.blob == key.blob }) {
                    state = .known
                } else if let other = entries.first(where: { !$0.revoked && $0.key.type == key.type }) {
                    state = .changed(line: other.line, fingerprint: other.key.fingerprint)
                } else {
                    state = .new
                }
                result.keys.append((key, state))
            }
        } catch {
            result.error = "\(error)"
        }
        return result
    }
}
