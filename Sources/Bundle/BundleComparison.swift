import Foundation
import Junos

/// What changed on a device between two bundles (`care-agent bundle diff A B`): RPC outcomes,
/// every fact section (FRUs added/removed, alarms raised/cleared, new core dumps, version,
/// storage and RE changes) and the configuration as a `show | compare` style diff.
public struct BundleComparison: Sendable, Codable {
    public struct OutcomeChange: Sendable, Codable, Equatable {
        public var rpc: String
        public var old: String?
        public var new: String?
    }

    /// One fact change with the words a support engineer uses for it ("FRU added", "alarm raised").
    public struct LabelledChange: Sendable, Codable, Equatable {
        public var section: String
        public var label: String
        public var change: JSONChange
    }

    public var oldBundle: UUID
    public var newBundle: UUID
    public var sameDevice: Bool
    public var deviceChanges: [JSONChange]
    public var outcomeChanges: [OutcomeChange]
    public var factChanges: [LabelledChange]
    /// FRUs whose serial number is in both captures but in another place (an optic or card moved
    /// to another slot, or to the other cluster node / VC member).
    public var fruMoves: [FRUMove] = []
    /// Empty when the configurations are identical; nil when either bundle has no configuration.
    public var configurationDiff: String?

    /// Fields that change on every capture (clocks, uptime counters, short-term load): left out
    /// unless asked for, so a diff shows what an engineer would call a change. A reboot still
    /// shows, as a changed boot or start time.
    public static let volatileFields: Set<String> = [
        "currentTime", "uptimeSeconds", "uptimeText", "uptime", "loadAverage1", "loadAverage5",
        "activeUsers", "timeSeconds", "dateSeconds", "startTimeEpoch",
    ]

    /// One FRU found at a new place by its serial number.
    public struct FRUMove: Sendable, Codable, Equatable {
        public var serialNumber: String
        public var partNumber: String?
        public var description: String?
        public var from: String
        public var to: String
    }

    /// Serial numbers seen exactly once in each capture, at different identities.
    static func moves(old: ChassisInventory?, new: ChassisInventory?) -> [FRUMove] {
        guard let old, let new else { return [] }
        func bySerial(_ frus: [FieldReplaceableUnit]) -> [String: FieldReplaceableUnit] {
            // Shared serials (an EX's chassis serial on its FPC and RE) cannot be tracked.
            let grouped = Dictionary(grouping: frus.filter { ($0.serialNumber ?? "").count > 2 }, by: { $0.serialNumber! })
            return grouped.compactMapValues { $0.count == 1 ? $0[0] : nil }
        }
        let before = bySerial(old.frus), after = bySerial(new.frus)
        return before.keys.sorted().compactMap { serial in
            guard let a = before[serial], let b = after[serial], a.identity != b.identity else { return nil }
            return FRUMove(serialNumber: serial, partNumber: b.partNumber, description: b.description, from: a.identity, to: b.identity)
        }
    }

    public init(old: VerifiedBundle, new: VerifiedBundle, includeVolatile: Bool = false) {
        fruMoves = Self.moves(old: old.contents.facts.inventory, new: new.contents.facts.inventory)
        oldBundle = old.manifest.bundleId
        newBundle = new.manifest.bundleId
        let oldSerial = old.manifest.device.chassisSerial, newSerial = new.manifest.device.chassisSerial
        sameDevice = oldSerial != nil && oldSerial == newSerial || old.manifest.device.name == new.manifest.device.name
        deviceChanges = Self.deviceChanges(old.manifest.device, new.manifest.device)

        let oldOutcomes = Dictionary(old.manifest.outcomes.map { ($0.rpc, $0) }, uniquingKeysWith: { $1 })
        let newOutcomes = Dictionary(new.manifest.outcomes.map { ($0.rpc, $0) }, uniquingKeysWith: { $1 })
        var outcomeChanges: [OutcomeChange] = []
        for rpc in Set(oldOutcomes.keys).union(newOutcomes.keys).sorted() {
            let a = oldOutcomes[rpc].map(Self.describe), b = newOutcomes[rpc].map(Self.describe)
            if oldOutcomes[rpc]?.status != newOutcomes[rpc]?.status { outcomeChanges.append(OutcomeChange(rpc: rpc, old: a, new: b)) }
        }
        self.outcomeChanges = outcomeChanges

        let oldFacts = (try? JSONValue(json: old.factsJSON)) ?? .object([])
        let newFacts = (try? JSONValue(json: new.factsJSON)) ?? .object([])
        factChanges = JSONDiff.changes(from: oldFacts, to: newFacts)
            .filter { includeVolatile || !Self.isVolatile($0.path) }
            .map { LabelledChange(section: $0.section, label: Self.label($0), change: $0) }

        let oldConfig = old.member("raw/get-configuration.xml").flatMap(ConfigurationText.init(reply:))
        let newConfig = new.member("raw/get-configuration.xml").flatMap(ConfigurationText.init(reply:))
        if let oldConfig, let newConfig {
            configurationDiff = ConfigurationDiff.render(from: oldConfig, to: newConfig)
        }
    }

    static func isVolatile(_ path: String) -> Bool {
        let last = path.split(separator: ".").last.map(String.init) ?? path
        let field = last.split(separator: "[").first.map(String.init) ?? last
        return volatileFields.contains(field) || path.contains("currentTime.")
    }

    static func describe(_ outcome: RPCOutcome) -> String {
        outcome.message.map { "\(outcome.status.rawValue) (\($0))" } ?? outcome.status.rawValue
    }

    static func deviceChanges(_ a: DeviceIdentity, _ b: DeviceIdentity) -> [JSONChange] {
        let fields: [(String, String?, String?)] = [
            ("name", a.name, b.name), ("address", a.address, b.address), ("hostname", a.hostname, b.hostname),
            ("chassisSerial", a.chassisSerial, b.chassisSerial), ("model", a.model, b.model),
        ]
        return fields.compactMap { name, x, y in
            x == y ? nil : JSONChange(kind: .changed, path: "device.\(name)", section: "device", old: x ?? "unknown", new: y ?? "unknown", isElement: false)
        }
    }

    /// The support engineer's word for a change, from its section and shape.
    static func label(_ change: JSONChange) -> String {
        let path = change.path.lowercased()
        switch (change.section, change.kind) {
        case ("inventory", .added) where change.isElement: return "FRU added"
        case ("inventory", .removed) where change.isElement: return "FRU removed"
        case ("inventory", .changed) where path.hasSuffix("serial") || path.hasSuffix("serialnumber") || path.hasSuffix("serial-number"):
            return "FRU serial changed"
        case ("chassisAlarms", .added), ("systemAlarms", .added): return "alarm raised"
        case ("chassisAlarms", .removed), ("systemAlarms", .removed): return "alarm cleared"
        case ("coreDumps", .added): return "new core dump"
        case ("coreDumps", .removed): return "core dump gone"
        case ("software", .changed) where path.contains("version"): return "version changed"
        case ("parseErrors", .added): return "now fails to parse"
        case ("parseErrors", .removed): return "parses again"
        default: return change.kind.rawValue
        }
    }

    public var isEmpty: Bool {
        deviceChanges.isEmpty && outcomeChanges.isEmpty && factChanges.isEmpty && fruMoves.isEmpty && (configurationDiff ?? "").isEmpty
    }

    /// For a terminal: every value the bundles supplied (host names, outcomes, facts, the
    /// configuration) has its control characters escaped, so a line is one line and no value
    /// can recolour, retitle or clear the terminal, or fake a line of its own.
    public var text: String {
        let e = TerminalText.escaped
        var out = ""
        if !sameDevice { out += "warning: the bundles are from different devices\n\n" }
        if !deviceChanges.isEmpty {
            out += "Device\n" + deviceChanges.map { "  \(e(String($0.path.dropFirst(7)))): \(e($0.old ?? "")) → \(e($0.new ?? ""))\n" }.joined() + "\n"
        }
        if !outcomeChanges.isEmpty {
            out += "RPC outcomes\n"
            for change in outcomeChanges { out += "  \(e(change.rpc)): \(e(change.old ?? "not collected")) → \(e(change.new ?? "not collected"))\n" }
            out += "\n"
        }
        if !fruMoves.isEmpty {
            out += "FRUs moved (same serial number, another place)\n"
            for move in fruMoves {
                let what = [move.description, move.partNumber].compactMap { $0 }.joined(separator: " ")
                out += "  > \(e(move.serialNumber))\(what.isEmpty ? "" : " (\(e(what)))"): \(e(move.from)) → \(e(move.to))\n"
            }
            out += "\n"
        }
        let grouped = Dictionary(grouping: factChanges, by: \.section)
        let order = FactSections.titles.map(\.key) + grouped.keys.filter { key in !FactSections.titles.contains { $0.key == key } }.sorted()
        for section in order {
            guard let changes = grouped[section], !changes.isEmpty else { continue }
            out += FactSections.title(section) + "\n"
            // A Junos upgrade changes every package's version: one line per RE says so.
            let packageChanges = Dictionary(grouping: changes.filter { $0.change.path.contains(".packages") }) {
                String($0.change.path[..<$0.change.path.range(of: ".packages")!.lowerBound])
            }
            for (owner, items) in packageChanges.sorted(by: { $0.key < $1.key }) {
                let counts = [JSONChange.Kind.added, .removed, .changed].compactMap { kind -> String? in
                    let n = items.filter { $0.change.kind == kind }.count
                    return n == 0 ? nil : "\(n) \(kind.rawValue)"
                }
                let path = owner.hasPrefix(section + ".") ? String(owner.dropFirst(section.count + 1)) : owner
                out += "  ~ \(e(path)).packages: \(counts.joined(separator: ", ")) (--json lists them)\n"
            }
            for item in changes where !item.change.path.contains(".packages") {
                let change = item.change
                let path = change.path.hasPrefix(section + ".") ? String(change.path.dropFirst(section.count + 1)) : change.path
                switch change.kind {
                case .added: out += "  + \(e(item.label)): \(e(path)): \(e(change.new ?? ""))\n"
                case .removed: out += "  - \(e(item.label)): \(e(path)): \(e(change.old ?? ""))\n"
                case .changed: out += "  ~ \(item.label == "changed" ? "" : e(item.label) + ": ")\(e(path)): \(e(change.old ?? "")) → \(e(change.new ?? ""))\n"
                }
            }
            out += "\n"
        }
        if let diff = configurationDiff, !diff.isEmpty {
            // Line by line: the diff's own lines stay lines, what is on them is escaped.
            out += "Configuration (show | compare)\n" + diff.split(separator: "\n", omittingEmptySubsequences: false).map { e(String($0)) }.joined(separator: "\n") + "\n"
        } else if configurationDiff == nil {
            out += "Configuration: not in both bundles\n\n"
        }
        if isEmpty { out += "no differences\n" }
        return out
    }
}
