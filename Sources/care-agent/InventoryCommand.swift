import Agent
import ArgumentParser
import Bundle
import Foundation
import Junos

/// `care-agent inventory`: the fleet as its last results describe it (the default), or what
/// the `[inventory NAME]` sources yield now (`inventory sources`).
struct InventoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory",
        abstract: "List the devices' model, serial and Junos version, or what the inventory sources yield.",
        subcommands: [InventoryListCommand.self, InventorySourcesCommand.self],
        defaultSubcommand: InventoryListCommand.self
    )
}

/// `care-agent inventory [list]`: the devices' hardware and software from their last results.
struct InventoryListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List model, serial number and Junos version of each device from its last collection.",
        discussion: "Reads <state-directory>/results; with --fru, one line per field-replaceable unit. A device whose last collection failed is shown with the facts of its last good one (and that one's date)."
    )

    @Option(help: "The agent's state directory.") var state: String = "/var/lib/care-agent"
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print CSV.") var csv = false
    @Flag(help: "List field-replaceable units (line cards, PICs, optics, power, fans).") var fru = false

    func validate() throws {
        if json && csv { throw ValidationError("give --json or --csv, not both") }
    }

    struct Row: Codable {
        var device: String
        var host: String
        var collected: Date
        var model: String?
        var serial: String?
        var version: String?
        var item: String?
        var partNumber: String?
        var description: String?
        /// How the last collection went, and when it started: `collected` is older when it
        /// failed and the facts are the last good ones.
        var lastStatus: String
        var lastAttempt: Date
    }

    func run() async throws {
        let store = ResultStore(stateDirectory: state)
        if let problem = StateAccess.problem(reading: [state, store.directory]) {
            Console.error(problem)
            throw ExitCode(2)
        }
        let results = store.loadAll()
        if results.isEmpty {
            Console.error("no results in \(state)/results (nothing collected yet?)")
            throw ExitCode(1)
        }
        var rows: [Row] = []
        for r in results {
            // A failed last run keeps the facts of the last good one (and its date).
            let (facts, collected) = r.bestFacts
            let base = Row(device: r.device.name, host: r.host, collected: collected,
                           model: facts.software?.model ?? facts.inventory?.chassisDescription,
                           serial: facts.inventory?.chassisSerial,
                           version: facts.software?.version.map { "\($0)" },
                           lastStatus: r.status.rawValue, lastAttempt: r.started)
            guard fru else { rows.append(base); continue }
            for unit in facts.inventory?.frus ?? [] {
                var row = base
                row.item = unit.identity
                row.serial = unit.serialNumber
                row.partNumber = unit.partNumber
                row.description = unit.description
                rows.append(row)
            }
        }
        if json {
            Console.out(String(decoding: try ResultStore.encoder.encode(rows), as: UTF8.self))
            return
        }
        let header = fru ? ["device", "host", "item", "part-number", "serial", "description"] : ["device", "host", "model", "serial", "version", "collected"]
        let iso = ISO8601DateFormatter()
        // Every cell but the date came from a device: escaped before it is laid out.
        let table = rows.map { r in
            (fru ? [r.device, r.host, r.item ?? "", r.partNumber ?? "", r.serial ?? "", r.description ?? ""]
                 : [r.device, r.host, r.model ?? "", r.serial ?? "", r.version ?? "", iso.string(from: r.collected)]).map(TerminalText.escaped)
        }
        if csv {
            for line in [header] + table { Console.out(line.map(Self.csvField).joined(separator: ",")) }
            return
        }
        let widths = header.indices.map { i in ([header] + table).map { $0[i].count }.max() ?? 0 }
        for line in [header] + table {
            Console.out(line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }

    static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// `care-agent inventory sources`: reads each `[inventory NAME]` source of agent.conf now and
/// shows what it yields (devices, skipped records, duplicates), without collecting and without
/// touching the running agent's last good inventories: a dry run for the operator.
struct InventorySourcesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sources",
        abstract: "Show what each [inventory] source of agent.conf yields now, without collecting.",
        discussion: "Exit status 0 when every source could be read, 1 when one could not, 2 for a configuration error."
    )

    @Option(help: "agent.conf.") var config: String = AgentConfiguration.defaultPath
    @Option(help: "Only this source (repeatable).") var source: [String] = []
    @Flag(help: "Print JSON.") var json = false

    struct SourceReport: Codable {
        var name: String
        var type: String
        var location: String
        var ok: Bool
        var error: String?
        var devices: [DeviceRow]
        var skipped: [String]
    }

    struct DeviceRow: Codable {
        var name: String
        var host: String
        var port: Int?
        var group: String
        var platform: String?
        var origin: String
    }

    struct Report: Codable {
        var sources: [SourceReport]
        /// Duplicates across agent.conf and the sources, and devices of undefined groups.
        var problems: [String]
        /// Devices the agent would schedule: agent.conf's and the sources', merged.
        var devices: Int
    }

    func run() async throws {
        let configuration: AgentConfiguration
        do { configuration = try AgentConfiguration.load(path: config) } catch {
            Console.error("\(error)")
            throw ExitCode(2)
        }
        let unknown = source.filter { name in !configuration.inventorySources.contains { $0.name == name } }
        if !unknown.isEmpty {
            Console.error("no [inventory \(unknown.joined(separator: ", "))] in \(config)")
            throw ExitCode(2)
        }
        let selected = configuration.inventorySources.filter { source.isEmpty || source.contains($0.name) }
        if selected.isEmpty {
            Console.error("no [inventory NAME] sections in \(config)")
            throw ExitCode(2)
        }
        var reports: [SourceReport] = []
        var yields: [InventoryYield] = []
        for source in selected {
            switch source.read() {
            case let .success(yield):
                yields.append(yield)
                reports.append(SourceReport(name: source.name, type: source.kind.type, location: source.location, ok: true,
                                            devices: yield.entries.map { DeviceRow(name: $0.device.name, host: $0.device.host, port: $0.device.port,
                                                                                   group: $0.device.group, platform: $0.device.platform, origin: $0.origin) },
                                            skipped: yield.skipped))
            case let .failure(error):
                reports.append(SourceReport(name: source.name, type: source.kind.type, location: source.location, ok: false,
                                            error: error.message, devices: [], skipped: []))
            }
        }
        let fleet = FleetInventory(configuration: configuration, yields: yields)
        let report = Report(sources: reports, problems: fleet.problems, devices: fleet.devices.count)
        if json {
            Console.out(String(decoding: try ResultStore.encoder.encode(report), as: UTF8.self))
        } else {
            var lines: [String] = []
            for r in reports {
                lines.append("inventory \(r.name) (\(r.type) \(r.location)): " + (r.ok ? "\(r.devices.count) devices, \(r.skipped.count) skipped" : "FAILED: \(r.error ?? "")"))
                let table = r.devices.map { [$0.name, $0.host, $0.port.map(String.init) ?? "-", $0.group, $0.platform ?? "-", $0.origin] }
                let header = ["device", "host", "port", "group", "platform", "from"]
                let widths = header.indices.map { i in ([header] + table).map { $0[i].count }.max() ?? 0 }
                if !table.isEmpty {
                    for row in [header] + table {
                        lines.append("  " + row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
                    }
                }
                for message in r.skipped { lines.append("  skipped: \(message)") }
            }
            for problem in fleet.problems { lines.append("problem: \(problem)") }
            lines.append("devices scheduled with agent.conf's own: \(fleet.devices.count)")
            // Names, hosts and messages come from the sources: escaped before they reach the terminal.
            Console.out(lines.map(TerminalText.escaped).joined(separator: "\n"))
        }
        if reports.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }
}
