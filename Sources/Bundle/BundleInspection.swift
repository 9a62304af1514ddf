import Foundation
import Junos

/// Human titles and display order of the DeviceFacts fields; fields not listed (added by a later
/// parser) are shown after these under their own key.
enum FactSections {
    static let titles: [(key: String, title: String)] = [
        ("software", "Software"),
        ("inventory", "Hardware inventory"),
        ("routingEngines", "Routing engines"),
        ("environment", "Environment"),
        ("chassisAlarms", "Chassis alarms"),
        ("systemAlarms", "System alarms"),
        ("storage", "Storage"),
        ("coreDumps", "Core dumps"),
        ("uptime", "Uptime"),
        ("virtualChassis", "Virtual chassis"),
        ("cluster", "Chassis cluster"),
        ("configuration", "Configured features"),
        ("interfaces", "Interfaces"),
        ("parseErrors", "Parse errors"),
    ]

    static func title(_ key: String) -> String { titles.first { $0.key == key }?.title ?? key }

    static func ordered(_ facts: JSONValue) -> [(key: String, value: JSONValue)] {
        guard case let .object(pairs) = facts else { return [] }
        let known = titles.compactMap { entry in pairs.first { $0.key == entry.key } }
        let other = pairs.filter { pair in !titles.contains { $0.key == pair.key } }
        return known + other
    }
}

/// What `care-agent bundle inspect` shows: who, when, what was asked and how it went, then every
/// fact section, rendered from facts.json generically so bundles from any version display.
public enum BundleInspection {
    public static func text(_ bundle: VerifiedBundle) -> String {
        let m = bundle.manifest
        var out = ""
        out += "Bundle     \(m.bundleId.uuidString.lowercased())  (format \(m.formatVersion), signed by \(bundle.signer.fingerprint))\n"
        // Every string below came from the bundle (the device or whoever made the file): each
        // line is escaped as a whole, so no control character reaches the terminal.
        var device = "\(m.device.name) (\(m.device.address))"
        if let host = m.device.hostname, host != m.device.name { device += ", host name \(host)" }
        device += ", model \(m.device.model ?? "unknown"), chassis serial \(m.device.chassisSerial ?? "unknown")"
        out += line("Device     \(device)")
        out += line("Agent      \(m.agent.id), care-agent \(m.agent.version)")
        let seconds = m.collection.finished.timeIntervalSince(m.collection.started)
        out += "Collected  \(UTCTime.string(m.collection.started)) to \(UTCTime.string(m.collection.finished))"
        out += " (\(String(format: "%.1f", seconds)) s), trigger \(m.collection.trigger.rawValue)\n"
        if let derived = m.derivedFrom {
            out += line("Derived    from bundle \(derived.bundleId.uuidString.lowercased()) signed by \(derived.originalSigner): \(derived.reason)")
        }
        out += "\nRPC outcomes\n"
        out += outcomes(m.outcomes)
        if let error = bundle.factsDecodingError {
            out += "\nnote: facts.json was written by another version of the parsers (\(TerminalText.escaped(error))); shown as stored,"
            out += " `care-agent bundle reparse` rebuilds it\n"
        }
        let facts = (try? JSONValue(json: bundle.factsJSON)) ?? .object([])
        for (key, value) in FactSections.ordered(facts) {
            out += "\n" + line(FactSections.title(key))
            let body = (key == "inventory" ? hardwareTable(value) : nil) ?? render(value, indent: 1)
            out += body.isEmpty ? "  (none)\n" : body
        }
        return out
    }

    /// The inventory as `show chassis hardware` lays it out: one row per FRU, indented by depth.
    /// Nil when the facts do not have the chassis → modules → children shape.
    static func hardwareTable(_ inventory: JSONValue) -> String? {
        guard case let .array(chassis)? = inventory["chassis"], !chassis.isEmpty else { return nil }
        var rows: [[String]] = [["Item", "Version", "Part number", "Serial number", "Description"]]
        func text(_ value: JSONValue?) -> String {
            guard let value, value != .null else { return "" }
            return value.description
        }
        func walk(_ item: JSONValue, depth: Int) {
            var name = text(item["name"])
            if depth == 0, let member = item["member"], member != .null { name = "\(member) \(name)" }
            let description = text(item["description"]).isEmpty ? text(item["modelNumber"]) : text(item["description"])
            rows.append([String(repeating: "  ", count: depth) + name, text(item["version"]), text(item["partNumber"]),
                         text(item["serialNumber"]), description])
            for key in ["modules", "children"] {
                if case let .array(children)? = item[key] { children.forEach { walk($0, depth: depth + 1) } }
            }
        }
        chassis.forEach { walk($0, depth: 0) }
        let widths = (0 ..< 4).map { column in rows.map { TerminalText.escaped($0[column]).count }.max() ?? 0 }
        let escapedRows: [[String]] = rows.map { row in row.map { TerminalText.escaped($0) } }
        return escapedRows.map { row in
            "  " + (0 ..< 4).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                + "  " + row[4]
        }.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }.joined(separator: "\n") + "\n"
    }

    /// Lists too long to be useful on a terminal are shown as a count; `--json` has them.
    static let countedLists: Set<String> = ["packages"]

    static func outcomes(_ outcomes: [RPCOutcome]) -> String {
        var out = ""
        let width = outcomes.map(\.status.rawValue.count).max() ?? 2
        for outcome in outcomes {
            let status = outcome.status.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
            let time = String(format: "%7.2f s", outcome.durationSeconds)
            var text = "  \(status)  \(time)  \(outcome.rpc)"
            if let message = outcome.message { text += ": \(message)" }
            out += line(text)
        }
        let failed = outcomes.filter { $0.status.isFailure }.count
        out += failed == 0 ? "  all \(outcomes.count) RPCs answered\n" : "  \(failed) of \(outcomes.count) RPCs failed\n"
        return out
    }

    /// YAML-like indented rendering: scalars inline, list items as `-` entries.
    static func render(_ value: JSONValue, indent: Int) -> String {
        let pad = String(repeating: "  ", count: indent)
        switch value {
        case let .object(pairs):
            var out = ""
            for (key, item) in pairs where item != .null {
                switch item {
                case let .array(items) where countedLists.contains(key):
                    out += line("\(pad)\(key): \(items.count) (listed by --json)")
                case let .array(items) where items.allSatisfy(\.isScalar) && !items.isEmpty:
                    out += line("\(pad)\(key): \(items.map(\.description).joined(separator: ", "))")
                case .object, .array:
                    if item.isEmptyContainer { continue }
                    out += line("\(pad)\(key):") + render(item, indent: indent + 1)
                default:
                    out += line("\(pad)\(key): \(item)")
                }
            }
            return out
        case let .array(items):
            // One line per list item (a FRU, a sensor, a file), its nested lists indented below:
            // the hardware inventory reads as a tree.
            var out = ""
            for item in items {
                guard case let .object(pairs) = item else {
                    out += line("\(pad)- \(item)")
                    continue
                }
                let scalars = pairs.filter { $0.value.isScalar && $0.value != .null && !JSONValue.hiddenInSummary.contains($0.key) }
                if scalars.isEmpty {
                    // A wrapper (one RE's section with only lists in it): show what it wraps.
                    out += render(item, indent: indent)
                    continue
                }
                if scalars.count <= 8 {
                    out += line("\(pad)- \(item.summary(limit: 8))")
                } else {
                    // Many readings (an RE's CPU, memory, temperatures): one per line under its name.
                    out += line("\(pad)- \(item.summary(limit: 1).replacingOccurrences(of: " …", with: ""))")
                    let shown = item.summary(limit: 1)
                    for (key, value) in scalars where !shown.hasPrefix("\(key)=") {
                        out += line("\(pad)    \(key): \(value)")
                    }
                }
                for (key, nested) in pairs where !nested.isScalar && !nested.isEmptyContainer {
                    if case let .array(list) = nested, countedLists.contains(key) {
                        out += line("\(pad)    \(key): \(list.count) (listed by --json)")
                    } else {
                        out += line("\(pad)    \(key):") + render(nested, indent: indent + 3)
                    }
                }
            }
            return out
        default:
            return line("\(pad)\(value)")
        }
    }

    /// One output line: bundle-supplied text escaped (``TerminalText``), then the newline.
    static func line(_ text: String) -> String { TerminalText.escaped(text) + "\n" }

    /// `--json`: the manifest, the signer and facts.json as stored, when it is one JSON value. The
    /// bytes are the signer's, and whoever signed may be anyone (a key embedded in the bundle):
    /// pasted unchecked, `{}, "signer" : "SHA256:..."` would add a second, forged `signer` that
    /// `jq` and Python read instead of the real one. Anything else is left out, saying why.
    public static func json(_ bundle: VerifiedBundle) -> String {
        let manifest = (try? BundleManifest.encoder().encode(bundle.manifest)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
        var facts = "null"
        var factsError = ""
        if !bundle.factsJSON.isEmpty {
            if (try? JSONSerialization.jsonObject(with: Data(bundle.factsJSON), options: [.fragmentsAllowed])) != nil {
                facts = String(decoding: bundle.factsJSON, as: UTF8.self)
            } else {
                factsError = ",\n\"facts_error\" : \"facts.json is not one JSON value: left out\""
            }
        }
        return """
        {
        "manifest" : \(manifest),
        "facts" : \(facts)\(factsError),
        "signer" : \(JSONValue.quoted(bundle.signer.fingerprint))
        }

        """
    }
}
