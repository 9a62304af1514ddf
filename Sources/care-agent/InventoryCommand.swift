import Agent
import ArgumentParser
import Bundle
import Foundation
import Junos

/// `care-agent inventory`: the devices' hardware and software from their last results.
struct InventoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory",
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
        let results = ResultStore(stateDirectory: state).loadAll()
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
