import Agent
import ArgumentParser
import Bundle
import Foundation
import Junos
import Reports

/// `care-agent report bugs|eol|health`: reports over verified bundles (or the agent's latest
/// collections), from the reference data in a data directory.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Targeted bug notifications, EOL/EOS/EOE and health reports over bundles.",
        discussion: """
        Each bundle is verified before it is read; one whose signature fails is refused, naming it. \
        Without bundles, the latest collection of each device of the agent is used: its newest bundle \
        in the outbox, else its last result in the state directory (facts only: configuration \
        checks then use the feature profile). See docs/reports.md.
        """,
        subcommands: [Bugs.self, EOL.self, Health.self, Benchmark.self]
    )

    /// Options every report takes.
    struct Common: ParsableArguments {
        @Option(help: "Output format: text, csv, json, html or cyclonedx (bugs only).") var format: String = "text"
        @Option(help: "Reference data directory (default: [reports] data-directory, the installed share/care-agent/data, or the source tree's data/).") var data: String?
        @Option(help: "Write the report to this file (atomically, mode 0640) instead of standard output.") var out: String?
        @Option(help: "agent.conf, for [reports] and, without bundles, the outbox and state directory (default \(AgentConfiguration.defaultPath)).") var config: String?
        @OptionGroup var trustedKeys: TrustedKeys
        @Argument(help: "Bundle files (.tar.gz). None: the agent's latest collection of each device.") var bundles: [String] = []

        func validate() throws {
            guard ReportFormat(rawValue: format) != nil else {
                throw ValidationError("--format \(format): expected \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        var reportFormat: ReportFormat { ReportFormat(rawValue: format) ?? .text }

        /// `[reports]` of agent.conf: nil when there is no readable file (the explicit --config must
        /// exist). A configuration error is printed as FILE:LINE:COLUMN and exits 2, as elsewhere.
        func reportsSection() throws -> (file: String, entries: [ConfigurationFile.Entry])? {
            let path = config ?? AgentConfiguration.defaultPath
            guard config != nil || FileManager.default.isReadableFile(atPath: path) else { return nil }
            do {
                return try Self.reportsSection(path: path)
            } catch {
                Console.error("\(error)")
                throw ExitCode(2)
            }
        }

        /// `[reports]` of the agent.conf at `path`.
        static func reportsSection(path: String) throws(ConfigurationError) -> (file: String, entries: [ConfigurationFile.Entry])? {
            let file = try ConfigurationFile(path: path)
            return (path, file.sections.filter { $0.kind == "reports" }.flatMap(\.entries))
        }

        /// The health thresholds `[reports]` sets (the defaults for the rest).
        static func thresholds(_ section: (file: String, entries: [ConfigurationFile.Entry])?) throws(ConfigurationError) -> HealthThresholds {
            var thresholds = HealthThresholds()
            for entry in section?.entries ?? [] where entry.key != "data-directory" {
                guard HealthThresholds.keyNames.contains(entry.key) else {
                    throw ConfigurationError(file: section!.file, line: entry.line, column: 1,
                                             message: "unknown key \"\(entry.key)\" in [reports]; expected data-directory, \(HealthThresholds.keyNames.joined(separator: ", "))")
                }
                let range = HealthThresholds.range(of: entry.key)
                guard let value = Int(entry.value), range.contains(value) else {
                    throw ConfigurationError(file: section!.file, line: entry.line, column: entry.valueColumn,
                                             message: "\(entry.key) = \(entry.value): expected a whole number from \(range.lowerBound) to \(range.upperBound)")
                }
                _ = thresholds.set(entry.key, to: value)
            }
            if let contradiction = thresholds.contradiction, let section {
                throw ConfigurationError(file: section.file, line: section.entries.first?.line ?? 1, column: 1,
                                         message: "[reports]: \(contradiction): the warning would never be raised")
            }
            return thresholds
        }

        func loadData(section: (file: String, entries: [ConfigurationFile.Entry])?) throws -> ReferenceData {
            let configured = section?.entries.last { $0.key == "data-directory" }?.value
            guard let directory = ReferenceData.locate(explicit: data, configured: configured) else {
                throw BundleCommand.fail(ReferenceDataError.notFound.description)
            }
            do {
                let loaded = try ReferenceData.load(directory: directory)
                for problem in loaded.problems { Console.error("data: \(problem)") }
                return loaded
            } catch {
                throw BundleCommand.fail("\(error)")
            }
        }

        /// Verified snapshots of the bundles given, or the agent's latest collections.
        func snapshots(readsConfiguration: Bool = true) throws -> [DeviceSnapshot] {
            let trust = try trustedKeys.trust()
            let reader = BundleReader(trust: trust)
            if !bundles.isEmpty {
                // Bundles are verified and read on every core; messages keep the order given.
                let slots = SnapshotSlots(count: bundles.count)
                DispatchQueue.concurrentPerform(iterations: bundles.count) { index in
                    let path = bundles[index]
                    do {
                        slots.set(index, .success(DeviceSnapshot(bundle: try reader.read(contentsOf: URL(fileURLWithPath: path)), source: path,
                                                                 readsConfiguration: readsConfiguration)))
                    } catch {
                        slots.set(index, .failure("\(path): refused: \(error)"))
                    }
                }
                var result: [DeviceSnapshot] = []
                var refused = 0
                for slot in slots.values {
                    switch slot {
                    case let .success(snapshot)?: result.append(snapshot)
                    case let .failure(message)?: refused += 1; Console.error(message)
                    case nil: break
                    }
                }
                if refused > 0 { throw ExitCode.failure }
                // As every bundle tool says it: a report from bundles nobody's key vouches for
                // looks the same as one from trusted bundles.
                if case .embeddedKey = trust, !result.isEmpty {
                    Console.error("warning: the signatures of \(result.count) bundle\(result.count == 1 ? "" : "s") were checked only against the keys embedded in them: "
                        + "this proves they are intact, not who made them; give --pubkey KEY or --keys DIR to check the signers")
                }
                return result
            }
            return try agentSnapshots(reader: reader, readsConfiguration: readsConfiguration)
        }

        /// Without bundles: each device's newest bundles in the outbox, else its stored result.
        func agentSnapshots(reader: BundleReader, readsConfiguration: Bool) throws -> [DeviceSnapshot] {
            var outbox = "/var/lib/care-agent/outbox", state = "/var/lib/care-agent"
            let path = config ?? AgentConfiguration.defaultPath
            if config != nil || FileManager.default.isReadableFile(atPath: path) {
                do {
                    let configuration = try AgentConfiguration.load(path: path)
                    outbox = configuration.agent.outbox
                    state = configuration.agent.stateDirectory
                } catch {
                    throw BundleCommand.fail("\(error)")
                }
            }
            var snapshots: [DeviceSnapshot] = []
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []).filter { $0.hasSuffix(".tar.gz") }.sorted()
            for name in names {
                let file = (outbox as NSString).appendingPathComponent(name)
                do {
                    snapshots.append(DeviceSnapshot(bundle: try reader.read(contentsOf: URL(fileURLWithPath: file)), source: file,
                                                    readsConfiguration: readsConfiguration))
                } catch {
                    Console.error("\(file): refused: \(error)")
                }
            }
            let withBundles = Set(snapshots.map(\.device))
            for result in ResultStore(stateDirectory: state).loadAll() where !withBundles.contains(result.device.name) {
                let (facts, collected) = result.bestFacts
                var snapshot = DeviceSnapshot(device: result.device.name, hostname: facts.software?.hostname, collected: collected,
                                              facts: facts, source: "\(state)/results/\(result.device.name).json")
                if !result.bestFactsAreLastGood {
                    snapshot.askedRPCs = Set(result.rpcs.map(\.name))
                    for rpc in result.rpcs where rpc.status.isFailure {
                        snapshot.failedRPCs[rpc.name] = DeviceSnapshot.failure(rpc.status.rawValue, rpc.message)
                    }
                    if result.rpcs.isEmpty, result.status == .failed {
                        // No session at all: nothing was asked, and the reason says why.
                        for kind in FactKind.allCases { snapshot.failedRPCs[kind.rpc] = result.reason ?? "the collection failed" }
                    }
                } else {
                    snapshot.latestFailure = (result.reason ?? result.status.rawValue, result.started)
                }
                snapshots.append(snapshot)
            }
            if snapshots.isEmpty {
                throw BundleCommand.fail("no bundles given and nothing collected in \(outbox) or \(state)/results")
            }
            return snapshots
        }

        /// Writes the rendered report: to --out atomically (HTML defaults to a file), else stdout.
        func emit(_ text: String, kind: String) throws {
            var target = out
            if target == nil, reportFormat == .html { target = "care-agent-report-\(kind).html" }
            guard let target else {
                FileHandle.standardOutput.write(Data(text.utf8))
                return
            }
            let url = URL(fileURLWithPath: target)
            do {
                try Data(text.utf8).write(to: url, options: .atomic)
                try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: url.path)
            } catch {
                throw BundleCommand.fail("cannot write \(target): \(error.localizedDescription)")
            }
            print(url.path)
        }
    }

    struct Bugs: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Which known bugs can hit each device: exposed, not exposed (configuration), possibly exposed.")
        @OptionGroup var common: Common
        @Option(help: "An earlier `report bugs --format json`: show only what is new or changed against it.") var since: String?

        func run() throws {
            let section = try common.reportsSection()
            let data = try common.loadData(section: section)
            var previous: [BugFinding]?
            if let since {
                guard let bytes = FileManager.default.contents(atPath: since) else { throw BundleCommand.fail("--since \(since): cannot read the file") }
                do { previous = try JSONDecoder().decode([BugFinding].self, from: bytes) } catch {
                    throw BundleCommand.fail("--since \(since): not a report bugs JSON array: \(error)")
                }
            }
            let snapshots = DeviceSnapshot.latestPerDevice(try common.snapshots()).map(\.latest)
            var report = BugReport(devices: snapshots, data: data)
            if let previous { report = report.since(previous) }
            try common.emit(ReportRenderer.render(report, as: common.reportFormat), kind: "bugs")
        }
    }

    struct EOL: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "eol", abstract: "End of engineering / support of each device's release, chassis and FRUs.")
        @OptionGroup var common: Common
        @Option(help: "Flag items whose end of support is within this window: 12m (months) or 2y (years).") var within: String = "12m"

        func run() throws {
            guard let months = Self.months(within) else { throw ValidationError("--within \(within): expected a number of months (12m) or years (2y)") }
            let section = try common.reportsSection()
            let data = try common.loadData(section: section)
            let snapshots = DeviceSnapshot.latestPerDevice(try common.snapshots(readsConfiguration: false)).map(\.latest)
            let report = LifecycleReport(devices: snapshots, data: data, withinMonths: months)
            do { try common.emit(try ReportRenderer.render(report, as: common.reportFormat), kind: "eol") } catch let error as ReportRenderError {
                throw ValidationError(error.description)
            }
        }

        static func months(_ text: String) -> Int? { LifecycleReport.windowMonths(text) }
    }

    struct Health: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What is unhealthy now: CPU, memory, storage, alarms, core dumps, reboots, environment, VC and cluster.")
        @OptionGroup var common: Common

        func run() throws {
            let thresholds: HealthThresholds
            do {
                thresholds = try Common.thresholds(try common.reportsSection())
            } catch let error as ConfigurationError {
                Console.error("\(error)")
                throw ExitCode(2)
            }
            let report = HealthReport(devices: DeviceSnapshot.latestPerDevice(try common.snapshots(readsConfiguration: false)), thresholds: thresholds)
            do { try common.emit(try ReportRenderer.render(report, as: common.reportFormat), kind: "health") } catch let error as ReportRenderError {
                throw ValidationError(error.description)
            }
        }
    }
}

extension ReportCommand {
    /// Hidden: `report bugs` and `report eol` over many bundles beside the time to only verify and
    /// read them in the same run (scripts/bench-reports, docs/performance.md "Reports").
    struct Benchmark: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "benchmark", shouldDisplay: false)

        @Option(help: "Directory of device profiles (profiles/).") var profiles: String
        @Option(help: "Reference data directory (data/).") var data: String
        @Option(help: "Number of bundles.") var bundles: Int = 2000
        @Option(help: "Where to write the bundles (default: a temporary directory, removed afterwards).") var directory: String?

        func run() throws {
            let profileNames = try FileManager.default.contentsOfDirectory(atPath: profiles).filter { !$0.hasPrefix(".") }.sorted()
            var replies: [[RawReply]] = []
            for name in profileNames {
                let dir = (profiles as NSString).appendingPathComponent(name)
                let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".xml") }.sorted()
                replies.append(try files.map { RawReply(rpc: String($0.dropLast(4)), bytes: Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\($0)")))) })
            }
            let facts = replies.map { DeviceFacts.parsed(from: $0) }
            let dir = directory.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("care-agent-bench-reports-\(UUID().uuidString)")
            defer { if directory == nil { try? FileManager.default.removeItem(at: dir) } }
            let key = AgentKey(privateKey: .init())
            let writer = BundleWriter(directory: dir, key: key)
            var paths: [String] = []
            let started = Date()
            for i in 0..<bundles {
                let p = i % replies.count
                let name = String(format: "dev-%05d", i)
                let contents = BundleContents(
                    agent: AgentIdentity(id: "bench", version: "dev"),
                    device: DeviceIdentity(name: name, address: "192.0.2.1", hostname: name, model: facts[p].software?.model),
                    trigger: .onDemand, started: started, finished: started,
                    outcomes: replies[p].map { RPCOutcome(rpc: $0.rpc, status: .ok, durationSeconds: 1) },
                    rawReplies: replies[p], facts: facts[p], log: "")
                paths.append(try writer.write(contents).path)
            }
            let reference = try ReferenceData.load(directory: URL(fileURLWithPath: data))
            print("\(bundles) bundles from \(profileNames.count) profiles (\(profileNames.joined(separator: ", "))); \(reference.advisories.count) advisories, \(reference.hardware.count) hardware rows")

            let reader = BundleReader()
            func seconds(_ body: () throws -> Void) rethrows -> Double {
                let t0 = ContinuousClock.now
                try body()
                let d = ContinuousClock.now - t0
                return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            }
            var count = 0
            let baseline = try seconds {
                for path in paths { count += try reader.read(contentsOf: URL(fileURLWithPath: path)).members.count }
            }
            var bugRows = 0
            let bugs = try seconds {
                let snapshots = try paths.map { DeviceSnapshot(bundle: try reader.read(contentsOf: URL(fileURLWithPath: $0)), source: $0) }
                bugRows = BugReport(devices: snapshots, data: reference).findings.count
            }
            var eolRows = 0
            let eol = try seconds {
                let snapshots = try paths.map { DeviceSnapshot(bundle: try reader.read(contentsOf: URL(fileURLWithPath: $0)), source: $0, readsConfiguration: false) }
                eolRows = LifecycleReport(devices: snapshots, data: reference).items.count
            }
            let baseline2 = try seconds {
                for path in paths { count += try reader.read(contentsOf: URL(fileURLWithPath: path)).members.count }
            }
            let read = min(baseline, baseline2)
            func line(_ what: String, _ t: Double, _ rows: Int) -> String {
                String(format: "%@: %.2f s (%d rows), %.2f x the reading time", what, t, rows, t / read)
            }
            print(String(format: "verify + read (baseline): %.2f s (best of two passes: %.2f s, %.2f s)", read, baseline, baseline2))
            print(line("report bugs (read + report)", bugs, bugRows))
            print(line("report eol (read + report)", eol, eolRows))
        }
    }
}

/// Results of reading bundles concurrently, one slot per bundle (a lock guards the array).
final class SnapshotSlots: @unchecked Sendable {
    enum Slot { case success(DeviceSnapshot), failure(String) }
    private var slots: [Slot?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ slot: Slot) {
        lock.lock()
        slots[index] = slot
        lock.unlock()
    }

    var values: [Slot?] {
        lock.lock()
        defer { lock.unlock() }
        return slots
    }
}
