import Agent
import ArgumentParser
import Bundle
import Foundation
import NETCONFSSH
import Logging
import SSH

/// `care-agent collect`: collections on demand.
struct CollectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Collect devices on demand.",
        subcommands: [CollectNowCommand.self]
    )
}

/// Options naming the configuration and overriding it, shared by the commands that read it.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: "agent.conf (default \(AgentConfiguration.defaultPath), unless --inventory is given).") var config: String?
    @Option(help: "Inventory CSV (name,host,port,group); adds to the configuration's devices.") var inventory: [String] = []
    @Option(help: "User name for every group.") var user: String?
    @Option(help: "Private key file for every group.") var key: String?
    @Option(help: "File holding the private key's passphrase.") var passphraseFile: String?
    @Option(help: "File holding the password.") var passwordFile: String?
    @Option(help: "OpenSSH known_hosts file for every group.") var knownHosts: String?
    @Option(help: "strict or accept-new.") var hostKeyPolicy: String?

    func validate() throws {
        if let hostKeyPolicy, HostKeyPolicy(rawValue: hostKeyPolicy) == nil {
            throw ValidationError("--host-key-policy must be strict or accept-new")
        }
    }

    /// The configuration file (if any), the inventories, and the overrides.
    func load(_ extra: CommandLineOverrides = CommandLineOverrides()) throws -> AgentConfiguration {
        var configuration: AgentConfiguration
        let path = config ?? (inventory.isEmpty ? AgentConfiguration.defaultPath : nil)
        do {
            configuration = try path.map { try AgentConfiguration.load(path: $0) } ?? AgentConfiguration()
            for file in inventory {
                // Without agent.conf the CSV's groups are created with default settings; with one,
                // a group it does not define is an error, as for the service's `inventory =`.
                if path == nil {
                    try configuration.addInventoryCreatingGroups(InventoryFile(path: file))
                } else {
                    try configuration.addInventory(InventoryFile(path: file))
                }
            }
        } catch {
            Console.error("\(error)"); throw ExitCode(2)
        }
        // The [inventory NAME] sources' devices, as the service would schedule them.
        configuration = configuration.mergingInventorySources { Console.error("warning: \($0)") }
        var overrides = extra
        overrides.user = user
        overrides.keyFile = key
        overrides.passphraseFile = passphraseFile
        overrides.passwordFile = passwordFile
        overrides.knownHosts = knownHosts
        overrides.hostKeyPolicy = hostKeyPolicy.flatMap(HostKeyPolicy.init(rawValue:))
        configuration.apply(overrides)
        return configuration
    }
}

/// `care-agent collect now`: collect the selected devices once, now.
struct CollectNowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "now",
        abstract: "Collect devices now and print a summary.",
        discussion: """
        With --standalone the collection runs in this process (no service needed): one signed bundle \
        per device goes to --out (default: the configuration's outbox), and the last result of each \
        device to the state directory for `care-agent status` and `care-agent inventory`. Without \
        --standalone the running service collects and answers over its control socket.

        Exit status: 0 when no device failed (partial ones are listed), 1 when one or more failed, \
        2 for a configuration error (or an option the service cannot honour), 64 for a usage error \
        (an unknown option, a missing or invalid value).
        """
    )

    @Flag(help: "Collect in this process instead of asking the running service.") var standalone = false
    @OptionGroup var options: ConfigurationOptions
    @Option(help: "Directory for the results (default: the configuration's outbox).") var out: String?
    @Option(help: "State directory for the last results (default: the configuration's).") var state: String?
    @Option(help: "Devices collected at once: replaces [agent] concurrency and every group's concurrency.") var concurrency: Int?
    @Option(help: "Seconds to wait for each RPC's reply.") var timeout: Double?
    @Option(help: "Seconds for a whole device.") var deviceTimeout: Double?
    @Option(help: "Collect only this group (repeatable).") var group: [String] = []
    @Option(help: "Collect only this device (repeatable).") var device: [String] = []
    @Flag(help: "Print the results as JSON.") var json = false
    @Option(help: "The running agent's control socket (default: <runtime-directory>/control.sock from the configuration).") var socket: String?
    @Flag(help: "Write plain directories (result.json, facts.json, replies/) instead of signed bundles.") var directories = false

    /// The options given that only an in-process collection can honour.
    var standaloneOnlyOptions: [String] {
        let given: [(String, Bool)] = [
            ("--inventory", !options.inventory.isEmpty), ("--user", options.user != nil), ("--key", options.key != nil),
            ("--passphrase-file", options.passphraseFile != nil), ("--password-file", options.passwordFile != nil),
            ("--known-hosts", options.knownHosts != nil), ("--host-key-policy", options.hostKeyPolicy != nil),
            ("--out", out != nil), ("--state", state != nil), ("--concurrency", concurrency != nil),
            ("--timeout", timeout != nil), ("--device-timeout", deviceTimeout != nil), ("--directories", directories),
        ]
        return given.filter(\.1).map(\.0)
    }

    /// The service's socket from agent.conf's runtime-directory. agent.conf may be half edited and
    /// not yet reloaded: the running service still answers, so a file that does not parse falls
    /// back to the default directory instead of failing.
    func serviceSocket() -> String {
        let path = options.config ?? AgentConfiguration.defaultPath
        do {
            return try AgentConfiguration.load(path: path).agent.runtimeDirectory + "/control.sock"
        } catch {
            let fallback = AgentSettings().runtimeDirectory + "/control.sock"
            Console.error("note: \(error); asking the service at \(fallback)")
            return fallback
        }
    }

    func validate() throws {
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if let deviceTimeout, deviceTimeout <= 0 { throw ValidationError("--device-timeout must be positive") }
    }

    func run() async throws {
        if !standalone {
            // The service selects and collects with its own configuration: options that would
            // change how this collection runs cannot reach it, and are refused rather than ignored.
            if let option = standaloneOnlyOptions.first {
                Console.error("\(option) applies with --standalone only: the running service collects with its own agent.conf (edit it and reload, or add --standalone)")
                throw ExitCode(2)
            }
            try askService(socket: socket ?? serviceSocket())
            return
        }
        var overrides = CommandLineOverrides()
        overrides.outbox = out
        overrides.concurrency = concurrency
        overrides.rpcTimeout = timeout.map { .milliseconds(Int64($0 * 1000)) }
        overrides.deviceTimeout = deviceTimeout.map { .milliseconds(Int64($0 * 1000)) }
        let configuration = try options.load(overrides)
        let devices: [Device]
        do {
            devices = try configuration.select(groups: group, devices: device)
        } catch {
            Console.error("\(error)"); throw ExitCode(2)
        }
        if devices.isEmpty {
            Console.error("no devices to collect (give --inventory, devices in agent.conf, or check --group/--device)")
            throw ExitCode(2)
        }
        if let problem = Self.rootWritingForAnotherUser(into: [state ?? configuration.agent.stateDirectory, configuration.agent.outbox]) {
            Console.error(problem)
            throw ExitCode(2)
        }
        let interactive = !json && isatty(1) == 1
        // On a terminal the progress bar and the summary say what failed; warnings would break the bar.
        let quietLogs = interactive && ProcessInfo.processInfo.environment["CARE_AGENT_LOG_LEVEL"] == nil
        let logger = Console.logger("care-agent", level: quietLogs ? .error : nil)
        let sink: any CollectionSink
        do {
            sink = try makeSink(configuration: configuration, logger: logger)
        } catch {
            Console.error("\(error)")
            throw ExitCode(2)
        }
        let collector: Collector
        do {
            collector = try Collector(configuration: configuration, sink: sink, logger: logger)
        } catch {
            Console.error("invalid redact-pattern or redact-path: \(error)"); throw ExitCode(2)
        }
        let progress = ProgressDisplay(total: devices.count, interactive: interactive, quiet: json)
        let store = ResultStore(stateDirectory: state ?? configuration.agent.stateDirectory)
        // Each result is recorded and summarized as its device finishes, then dropped: holding
        // every device's facts to the end made memory grow with the fleet (~75 KiB a device).
        let finished = FinishedDevices()
        // Slowest last time first (CollectionOrder: a device that hung last time does not start
        // last); the summaries keep the inventory's order.
        let stateDirectory = state ?? configuration.agent.stateDirectory
        var history = CollectionOrder.load(stateDirectory: stateDirectory)
        await collector.collectEach(devices, trigger: .standalone, order: history, onEvent: { progress.handle($0) }) { index, result in
            var saved = true
            if result.status.attempted {
                do { try store.save(result) } catch { saved = false }
            }
            finished.add(index, DeviceSummary(result), saved: saved, failed: result.status == .failed)
        }
        progress.finish()
        // Nothing may still be relaying through a jump host when the process exits.
        await JumpHostSessions.shared.closeAll()
        let (summaries, storeFailed, anyFailed) = finished.result()
        history.record(summaries)
        // Only an optimisation of the next run: a read-only state directory must not fail this one.
        try? history.save(stateDirectory: stateDirectory)
        if storeFailed { Console.error("could not record the last results in \(store.directory) (use --state DIR)") }
        if json {
            try Self.writeJSONArray(summaries)
        } else {
            Console.out(Summary.text(summaries))
        }
        if anyFailed { throw ExitCode(1) }
    }

    /// The summaries as JSONEncoder writes the whole array, written one element at a time: one
    /// encoding of the whole array built a tree and a string of every device at once, the largest
    /// allocation of a 2,000-device run, after the collection.
    static func writeJSONArray(_ summaries: [DeviceSummary]) throws {
        let encoder = ResultStore.encoder
        Console.out(bytes: Array("[\n".utf8))
        for (index, summary) in summaries.enumerated() {
            var bytes: [UInt8] = [0x20, 0x20]
            ResultStore.appendIndented(try encoder.encode(summary), to: &bytes)
            bytes += Array((index == summaries.count - 1 ? "\n" : ",\n").utf8)
            Console.out(bytes: bytes)
        }
        Console.out(bytes: Array("]\n".utf8))
    }

    func askService(socket: String) throws {
        let response: ControlResponse
        // The same progress as --standalone, from the service's event lines.
        let interactive = !json && isatty(1) == 1
        var progress: ProgressDisplay?
        do {
            response = try ControlClient.request(socket: socket, ControlRequest(command: "collect", groups: group, devices: device, progress: true),
                                                 idleTimeout: nil) { event in
                switch event.event {
                case .selected: progress = ProgressDisplay(total: event.devices ?? 0, interactive: interactive, quiet: json)
                case .started: if let name = event.device { progress?.started(name) }
                case .finished: if let result = event.result { progress?.finished(result) }
                }
            }
        } catch {
            progress?.finish()
            Console.error("\(error)")
            throw ExitCode(2)
        }
        progress?.finish()
        guard response.ok, let summaries = response.results else {
            Console.error(response.error ?? "the agent refused the request")
            throw ExitCode(2)
        }
        // As --standalone says it: a selection that names no device is a mistake, not a success.
        if summaries.isEmpty {
            Console.error("no devices to collect: the running agent's inventory has no device \(group.isEmpty && device.isEmpty ? "at all" : "in the selection (--group/--device)")")
            throw ExitCode(2)
        }
        if json {
            try Self.writeJSONArray(summaries)
        } else {
            Console.out(Summary.text(summaries))
        }
        if summaries.contains(where: { $0.status == .failed }) { throw ExitCode(1) }
    }

    /// Signed bundles in the outbox, with the agent key from the state directory (--state or the
    /// configuration's), or plain directories with --directories.
    func makeSink(configuration: AgentConfiguration, logger: Logger) throws -> any CollectionSink {
        if directories { return DirectorySink(root: configuration.agent.outbox) }
        var settings = configuration
        if let state { settings.agent.stateDirectory = state }
        return try BundleSink(configuration: settings, logger: logger)
    }
}

/// The end-of-run summary: counts, then one line per failed or partial device with its reason.
enum Summary {
    static func text(_ results: [DeviceSummary]) -> String {
        let count = { (s: DeviceStatus) in results.filter { $0.status == s }.count }
        var lines = ["\(results.count) devices: \(count(.ok)) ok, \(count(.partial)) partial, \(count(.failed)) failed"
            + (count(.skipped) > 0 ? ", \(count(.skipped)) skipped" : "")
            + (count(.queued) > 0 ? ", \(count(.queued)) queued" : "")]
        for r in results where r.status != .ok {
            lines.append("  \(r.status.rawValue.uppercased()) \(r.name) (\(r.host):\(r.port)): \(r.reason ?? "")")
        }
        // Names and reasons quote devices (rpc-error messages, host names): escaped per line.
        return lines.map(TerminalText.escaped).joined(separator: "\n")
    }
}

/// Progress on stdout: a redrawn bar with the devices in flight on a terminal, one line per
/// finished device otherwise (logs, pipes, CI).
final class ProgressDisplay: @unchecked Sendable {
    let total: Int
    let interactive: Bool
    let quiet: Bool
    private let lock = NSLock()
    private var done = 0
    private var failed = 0
    private var inFlight: [String] = []

    init(total: Int, interactive: Bool, quiet: Bool) {
        self.total = total
        self.interactive = interactive
        self.quiet = quiet
    }

    func handle(_ event: CollectionEvent) {
        switch event {
        case let .started(device): started(device.name)
        case let .finished(result, _): finished(DeviceSummary(result))
        }
    }

    func started(_ name: String) {
        lock.lock()
        defer { lock.unlock() }
        inFlight.append(name)
        if interactive { draw() }
    }

    func finished(_ result: DeviceSummary) {
        lock.lock()
        defer { lock.unlock() }
        inFlight.removeAll { $0 == result.name }
        done += 1
        if result.status == .failed { failed += 1 }
        if !interactive && !quiet {
            let seconds = String(format: "%.1f s", result.durationSeconds)
            let detail = result.status == .ok ? "\(result.rpcs.count) RPCs, \(seconds)" : "\(result.reason ?? ""), \(seconds)"
            Console.out(TerminalText.escaped("[\(done)/\(total)] \(result.status.rawValue) \(result.name): \(detail)"))
        }
        if interactive { draw() }
    }

    private func draw() {
        let width = 30
        let filled = total == 0 ? width : width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        var flying = inFlight.prefix(4).joined(separator: ", ")
        if inFlight.count > 4 { flying += " +\(inFlight.count - 4)" }
        let line = "[\(bar)] \(done)/\(total) done, \(failed) failed" + (flying.isEmpty ? "" : " | \(flying)")
        FileHandle.standardOutput.write(Data(("\r\u{1B}[2K" + TerminalText.escaped(line)).utf8))
    }

    func finish() {
        if interactive { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }
}

extension CollectNowCommand {
    /// Why root must not collect into `directories` (the state directory, the outbox) when one of
    /// them belongs to another user (the service's, care-agent): the bundles, results and start
    /// order it wrote would be root's, which the service can neither upload, read nor replace.
    /// nil when not root, or when every directory is root's or missing.
    static func rootWritingForAnotherUser(into directories: [String]) -> String? {
        guard geteuid() == 0 else { return nil }
        for directory in directories {
            var info = stat()
            guard stat(directory, &info) == 0, info.st_uid != 0 else { continue }
            let owner = getpwuid(info.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "\(info.st_uid)"
            return "refusing to collect as root into \(directory), which belongs to \(owner): the files would be root's, and "
                + "\(owner) (the service) could not upload, read or replace them; run it as that user "
                + "(sudo -u \(owner) care-agent collect now --standalone ...), or give --state and --out directories of root's own"
        }
        return nil
    }
}

/// The summaries of `collect now --standalone`, gathered from the collecting tasks.
private final class FinishedDevices: @unchecked Sendable {
    private let lock = NSLock()
    private var summaries: [(Int, DeviceSummary)] = []
    private var storeFailed = false
    private var anyFailed = false

    func add(_ index: Int, _ summary: DeviceSummary, saved: Bool, failed: Bool) {
        lock.lock()
        defer { lock.unlock() }
        summaries.append((index, summary))
        if !saved { storeFailed = true }
        if failed { anyFailed = true }
    }

    /// In the order the devices were given.
    func result() -> ([DeviceSummary], storeFailed: Bool, anyFailed: Bool) {
        lock.lock()
        defer { lock.unlock() }
        return (summaries.sorted { $0.0 < $1.0 }.map(\.1), storeFailed, anyFailed)
    }
}
