import ArgumentParser
import Foundation
import Junos
import XML

/// `care-agent parse FILE... [--json]`: reads captured RPC replies and prints their facts.
struct ParseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Parse captured Junos RPC replies (XML) and print their facts.",
        discussion: """
        The RPC is detected from the reply's data element (<environment-information>, ...). \
        <alarm-information> detects as chassis alarms; pass --rpc get-system-alarm-information for system alarms.
        """
    )

    @Argument(help: "Reply files (XML), as saved from NETCONF or `| display xml`.")
    var files: [String]

    @Flag(help: "Print the facts as JSON.")
    var json = false

    @Option(help: "The RPC the replies answer, instead of detecting it (e.g. get-system-alarm-information).")
    var rpc: String?

    func validate() throws {
        if let rpc, FactKind(rpc: rpc) == nil {
            let known = FactKind.allCases.map(\.rpc).joined(separator: ", ")
            throw ValidationError("unknown RPC '\(rpc)'; known: \(known)")
        }
    }

    func run() throws {
        var documents: [String] = []
        var failed = false
        for file in files {
            do {
                let (kind, facts) = try Self.facts(inFile: file, rpc: rpc.flatMap(FactKind.init(rpc:)))
                if json {
                    documents.append(try FactRendering.json(file: file, kind: kind, facts: facts))
                } else {
                    if files.count > 1 { print("== \(file)") }
                    print(FactRendering.text(kind: kind, facts: facts), terminator: "")
                }
            } catch {
                CLIError.report("parse", file: file, error)
                failed = true
            }
        }
        if json && !documents.isEmpty {
            print(documents.count == 1 && files.count == 1 ? documents[0] : "[\n" + documents.joined(separator: ",\n") + "\n]")
        }
        if failed { throw ExitCode(1) }
    }

    /// Reads and parses one file; every failure is a ``CLIError`` with a one-line message.
    static func facts(inFile file: String, rpc kind: FactKind?) throws -> (FactKind, DeviceFacts) {
        let bytes = try CLIError.read(file)
        let reply: JunosReply
        do { reply = try JunosReply(bytes: bytes) } catch { throw CLIError.message("reply is \(error)") }
        guard let kind = kind ?? FactKind.detect(reply) else {
            if !reply.errors.isEmpty {
                throw CLIError.message("device returned an error: " + reply.errors.map(\.description).joined(separator: "; "))
            }
            if let text = reply.output.first {
                throw CLIError.message("device returned text instead of XML data: \(text.collapsingWhitespace)")
            }
            if let found = reply.sections.first {
                throw CLIError.message("unknown reply: <\(found.element.name)> is not a data element care-agent reads")
            }
            throw CLIError.message("reply holds no data")
        }
        var facts = DeviceFacts()
        do { try facts.absorb(reply, as: kind) } catch { throw CLIError.message(error.description) }
        return (kind, facts)
    }
}

/// A failure of a CLI command on one input, printed as one line on stderr.
enum CLIError: Error, CustomStringConvertible {
    case message(String)

    var description: String {
        switch self { case let .message(text): return text }
    }

    /// Largest file `parse` and `redact` read: the XML parser's own limit, checked before
    /// reading so that a huge file is refused without being loaded.
    static let maximumFileSize = XMLLimits.defaultMaximumSize

    static func read(_ file: String) throws -> [UInt8] {
        if let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int, size > maximumFileSize {
            throw CLIError.message("file of \(size) bytes is larger than the \(maximumFileSize >> 20) MiB limit")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CLIError.message(FileManager.default.fileExists(atPath: file) ? "cannot read file" : "no such file")
        }
        return Array(data)
    }

    static func report(_ command: String, file: String, _ error: any Error) {
        let line = "care-agent \(command): \(file): \(error)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// Text and JSON output of parsed facts.
enum FactRendering {
    /// One parsed file as JSON output.
    struct ParsedFile: Encodable {
        var file: String
        var fact: String
        var rpc: String
        var facts: DeviceFacts
    }

    static func json(file: String, kind: FactKind, facts: DeviceFacts) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(ParsedFile(file: file, fact: kind.rawValue, rpc: kind.rpc, facts: facts))
        return String(decoding: data, as: UTF8.self)
    }

    static func text(kind: FactKind, facts: DeviceFacts) -> String {
        var out = ""
        func line(_ s: String) { out += s.trimmingTrailingWhitespace + "\n" }
        func section(_ name: String?) { if let name { line("[\(name)]") } }
        func opt(_ value: (some CustomStringConvertible)?) -> String { value.map(\.description) ?? "-" }

        switch kind {
        case .environment:
            for s in facts.environment?.sections ?? [] {
                section(s.routingEngine)
                line("\(s.sensors.count) sensors")
                for sensor in s.sensors {
                    var parts = [sensor.name.padded(32), opt(sensor.sensorClass).padded(8), opt(sensor.status).padded(8)]
                    if let c = sensor.celsius { parts.append("\(c) °C") }
                    if let comment = sensor.comment { parts.append(comment) }
                    line("  " + parts.joined(separator: " ").trimmingTrailingWhitespace)
                }
            }
        case .chassisAlarms, .systemAlarms:
            let report = kind == .chassisAlarms ? facts.chassisAlarms : facts.systemAlarms
            for s in report?.sections ?? [] {
                section(s.routingEngine)
                if s.noActiveAlarms { line("No alarms currently active"); continue }
                line("\(opt(s.activeAlarmCount)) alarms currently active (\(s.alarms.count) listed)")
                for a in s.alarms {
                    line("  \(opt(a.timeText))  \(opt(a.alarmClass).padded(5)) \(opt(a.type).padded(13)) \(opt(a.description))")
                }
            }
        case .storage:
            for s in facts.storage?.sections ?? [] {
                section(s.routingEngine)
                line("Filesystem".padded(28) + " " + "Size".padded(8) + " " + "Used".padded(8) + " " + "Avail".padded(8) + " Capacity  Mounted on")
                for fs in s.filesystems {
                    let cols = [fs.total, fs.used, fs.available].map { ($0.formatted ?? $0.text ?? "-").padded(8) }
                    line(fs.name.padded(28) + " " + cols.joined(separator: " ") + " " + (fs.usedPercent.map { "\($0)%" } ?? "-").padded(9) + " " + opt(fs.mountedOn))
                }
            }
        case .coreDumps:
            for s in facts.coreDumps?.sections ?? [] {
                section(s.routingEngine)
                if s.files.isEmpty { line("No core dumps") }
                for f in s.files { line("  \(opt(f.size).padded(12)) \(opt(f.dateText).padded(14)) \(f.name)") }
            }
        case .uptime:
            for s in facts.uptime?.sections ?? [] {
                section(s.routingEngine)
                line("Current time:      \(opt(s.currentTime?.text))")
                line("Time source:       \(opt(s.timeSource))")
                line("System booted:     \(opt(s.systemBooted?.text))")
                line("Protocols started: \(opt(s.protocolsStarted?.text))")
                line("Last configured:   \(opt(s.lastConfigured?.text)) by \(opt(s.lastConfiguredBy))")
                line("Up:                \(opt(s.uptimeText)) (\(opt(s.uptimeSeconds)) s), \(opt(s.activeUsers)) users")
                line("Load averages:     \(opt(s.loadAverage1)), \(opt(s.loadAverage5)), \(opt(s.loadAverage15))")
            }
        case .interfaces:
            for s in facts.interfaces?.sections ?? [] {
                section(s.routingEngine)
                line("Interface".padded(24) + " Admin Link Proto    Local")
                for ifd in s.interfaces {
                    line(ifd.name.padded(24) + " " + opt(ifd.adminStatus).padded(5) + " " + opt(ifd.operStatus).padded(4)
                         + (ifd.description.map { "  \($0)" } ?? ""))
                    for ifl in ifd.logicalInterfaces {
                        let first = ifl.addresses.first
                        line(ifl.name.padded(24) + " " + opt(ifl.adminStatus).padded(5) + " " + opt(ifl.operStatus).padded(4)
                             + " " + opt(first?.family ?? ifl.families.first).padded(8) + " " + opt(first?.local))
                        for address in ifl.addresses.dropFirst() {
                            line(String(repeating: " ", count: 36) + opt(address.family).padded(8) + " " + address.local)
                        }
                    }
                }
            }
        case .configuration:
            if let c = facts.configuration {
                line("Format:      \(c.format.rawValue)")
                line("Host name:   \(opt(c.hostName))")
                line("Domain:      \(opt(c.domainName))")
                line("Version:     \(opt(c.version))")
                if !c.groups.isEmpty { line("Groups:      \(c.groups.joined(separator: ", ")) (applied: \(c.appliedGroups.joined(separator: ", ")))") }
                line("Features:    \(c.features.names.joined(separator: " "))")
            }
        case .software:
            if let sw = facts.software {
                line("Hostname:    \(opt(sw.hostname))")
                line("Model:       \(opt(sw.model))")
                line("Junos:       \(opt(sw.version))\(sw.hasVersionMismatch ? "  (routing engines run different versions)" : "")")
                for re in sw.routingEngines where sw.routingEngines.count > 1 || re.name != nil {
                    line("[\(re.name ?? "-")\(re.name == sw.primaryName ? ", primary" : "")]  \(opt(re.hostname))  \(opt(re.model))  \(opt(re.version))"
                         + (re.versionSource.map { "  (from \($0))" } ?? ""))
                }
                let packages = sw.routingEngines.first?.packages ?? []
                line("Packages:    \(packages.count)\(sw.routingEngines.count > 1 ? " on the first routing engine" : "")")
                for pkg in packages { line("  \(pkg.name.padded(28)) \(opt(pkg.version ?? pkg.comment))") }
            }
        case .inventory:
            for chassis in facts.inventory?.chassis ?? [] {
                section(chassis.member)
                line("\(opt(chassis.name))  serial \(opt(chassis.serialNumber))  \(opt(chassis.description))")
                line("Item".padded(34) + " " + "Version".padded(8) + " " + "Part number".padded(14) + " " + "Serial".padded(16) + " Description")
                for unit in chassis.frus {
                    let name = String(repeating: "  ", count: unit.depth - 1) + (unit.path.split(separator: "/").last.map(String.init) ?? unit.path)
                    var fields = [name.padded(34), opt(unit.version).padded(8), opt(unit.partNumber).padded(14),
                                  opt(unit.serialNumber).padded(16), opt(unit.description)]
                    if let model = unit.modelNumber { fields.append("model \(model)") }
                    if let clei = unit.cleiCode { fields.append("CLEI \(clei)") }
                    line(fields.joined(separator: " "))
                }
            }
        case .routingEngines:
            for re in facts.routingEngines?.routingEngines ?? [] {
                line("[\(re.section ?? re.slot.map { "slot \($0)" } ?? "routing engine")]  \(opt(re.mastershipState))  \(opt(re.model))  serial \(opt(re.serialNumber))")
                line("  CPU:        user \(opt(re.cpuUserPercent))%  background \(opt(re.cpuBackgroundPercent))%  kernel \(opt(re.cpuSystemPercent))%  interrupt \(opt(re.cpuInterruptPercent))%  idle \(opt(re.cpuIdlePercent))%")
                if let idle5 = re.cpuIdle5MinutesPercent {
                    line("  CPU idle:   \(opt(re.cpuIdle1MinutePercent))% (1 min)  \(idle5)% (5 min)  \(opt(re.cpuIdle15MinutesPercent))% (15 min)")
                }
                // Branch SRX print the system pool's total, not a DRAM size.
                let memoryBytes = re.memoryDRAMBytes ?? re.memorySystem?.totalBytes
                line("  Memory:     \(opt(re.memoryUtilizationPercent))% of \(opt(memoryBytes.map { "\($0 / 1_048_576) MB" }))")
                line("  Temperature: \(opt(re.temperatureCelsius)) °C, CPU \(opt(re.cpuTemperatureCelsius)) °C")
                line("  Started:    \(opt(re.startTime))  up \(opt(re.uptime)) (\(opt(re.uptimeSeconds)) s)")
                line("  Last reboot: \(opt(re.lastRebootReason))")
                line("  Load:       \(opt(re.loadAverage1)), \(opt(re.loadAverage5)), \(opt(re.loadAverage15))")
                if let unreadable = re.unreadableValues {
                    line("  Not numbers: " + unreadable.keys.sorted().map { "\($0) \"\(unreadable[$0]!)\"" }.joined(separator: ", "))
                }
            }
        case .virtualChassis:
            if let vc = facts.virtualChassis {
                line("Virtual chassis \(opt(vc.id))  mode \(opt(vc.mode))\(vc.isFabric ? "  fabric" : "")\(vc.isPreprovisioned ? "  preprovisioned" : "")")
                line("Member".padded(7) + " " + "Status".padded(8) + " " + "Serial".padded(14) + " " + "Model".padded(16) + " Prio  Role")
                for m in vc.members {
                    line(opt(m.id).padded(7) + " " + opt(m.status).padded(8) + " " + opt(m.serialNumber).padded(14) + " "
                         + opt(m.model).padded(16) + " " + opt(m.priority).padded(5) + " " + opt(m.role) + (m.isLocal ? " (local)" : ""))
                }
            }
        case .cluster:
            if let cluster = facts.cluster {
                line("Cluster ID: \(opt(cluster.clusterID))")
                for group in cluster.redundancyGroups {
                    line("Redundancy group \(opt(group.id)), failover count \(opt(group.failoverCount))")
                    for node in group.nodes {
                        line("  \(opt(node.name).padded(8)) \(opt(node.priority).padded(6)) \(opt(node.status).padded(10)) preempt \(node.preempt.map { $0 ? "yes" : "no" } ?? "-")"
                             + (node.monitorFailures.map { $0.isEmpty ? "" : "  monitor failures: \($0.joined(separator: ", "))" } ?? ""))
                    }
                }
            }
        }
        return out
    }
}

extension String {
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    var trimmingTrailingWhitespace: String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\n" { s = s.dropLast() }
        return String(s)
    }
}
