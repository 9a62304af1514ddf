import Agent
import ArgumentParser
import Foundation
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
        reached, a key changed or new keys were not recorded, 2 for configuration and usage errors.
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

    /// One device's keys (or why there are none) and what its known_hosts says of each.
    struct DeviceScan: Sendable {
        var device: Device
        var port: Int
        var knownHosts: String
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
        let scans = await scanAll(devices, configuration: configuration)
        var newKeys = 0, troubled = false
        for scan in scans {
            if let error = scan.error {
                Console.out("\(scan.device.name) \(scan.device.host):\(scan.port): FAILED: \(error)")
                troubled = true
                continue
            }
            Console.out("\(scan.device.name) \(scan.device.host):\(scan.port) (\(scan.knownHosts))")
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
            if troubled { throw ExitCode(1) }
            return
        }
        if !yes {
            guard isatty(0) == 1 else {
                Console.error("\(newKeys) new host keys not recorded: confirm on a terminal, or give --yes once the fingerprints are checked")
                throw ExitCode(1)
            }
            FileHandle.standardOutput.write(Data("Record \(newKeys) new host keys? Compare the fingerprints with the devices' own first. [y/N] ".utf8))
            let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            guard answer == "y" || answer == "yes" else {
                Console.out("nothing recorded")
                throw ExitCode(1)
            }
        }
        var recorded = 0
        for scan in scans {
            for (key, state) in scan.keys where state == .new {
                do {
                    try KnownHosts.record(key, host: scan.device.host, port: scan.port, in: scan.knownHosts)
                    recorded += 1
                } catch {
                    Console.error("\(scan.device.name): \(error)")
                    troubled = true
                }
            }
        }
        let files = Set(scans.filter { $0.keys.contains { $0.1 == .new } }.map(\.knownHosts)).sorted()
        Console.out("recorded \(recorded) host keys in \(files.joined(separator: ", "))")
        if troubled { throw ExitCode(1) }
    }

    func scanAll(_ devices: [Device], configuration: AgentConfiguration) async -> [DeviceScan] {
        let limit = concurrency, timeout = Duration.milliseconds(Int64(self.timeout * 1000))
        return await withTaskGroup(of: (Int, DeviceScan).self) { tasks in
            var results: [(Int, DeviceScan)] = []
            for (index, device) in devices.enumerated() {
                if index >= limit, let done = await tasks.next() { results.append(done) }
                let settings = configuration.groups[device.group] ?? GroupSettings(name: device.group)
                tasks.addTask {
                    (index, await Self.scan(device, port: device.port ?? settings.port, knownHosts: settings.knownHosts, timeout: timeout))
                }
            }
            for await done in tasks { results.append(done) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    static func scan(_ device: Device, port: Int, knownHosts path: String, timeout: Duration) async -> DeviceScan {
        var result = DeviceScan(device: device, port: port, knownHosts: path)
        let known: KnownHosts
        do {
            known = try KnownHosts(path: path)
            let entries = known.entries(host: device.host, port: port)
            for key in try await HostKeyScan.scan(host: device.host, port: port, timeout: timeout) {
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
