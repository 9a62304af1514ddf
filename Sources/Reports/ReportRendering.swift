import Bundle
import Foundation

/// Output formats of `care-agent report`.
public enum ReportFormat: String, Sendable, CaseIterable {
    case text, csv, json, html, cyclonedx
}

/// Why a report cannot be rendered in a format.
public struct ReportRenderError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Renders the three reports as text, CSV, JSON, HTML (one self-contained page) and, for bugs,
/// CycloneDX 1.5 VEX.
public enum ReportRenderer {
    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: (try? encoder.encode(value)) ?? Data("[]".utf8), as: UTF8.self) + "\n"
    }

    static func csvField(_ s: String?) -> String {
        guard var s else { return "" }
        // A cell a spreadsheet would run as a formula (a device named `=HYPERLINK(...)`) is
        // kept as text (OWASP's CSV injection advice).
        if let first = s.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first), Double(s) == nil { s = "'" + s }
        return s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// Device- or bundle-supplied text on one line of a text report (``TerminalText``).
    static func t(_ s: String?) -> String { s.map(TerminalText.escaped) ?? "" }

    static func csv(_ header: [String], _ rows: [[String?]]) -> String {
        ([header.map(csvField)] + rows.map { $0.map(csvField) }).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    // MARK: bugs

    public static func render(_ report: BugReport, as format: ReportFormat) -> String {
        switch format {
        case .json: return json(report.findings)
        case .csv:
            return csv(["device", "hostname", "model", "version", "cve", "jsa", "verdict", "severity", "cvss", "fixed_in", "reason", "data_warning", "title"],
                       report.findings.map { f in
                           [f.device, f.hostname, f.model, f.versions?.joined(separator: " ") ?? f.version, f.cve, f.jsa, f.verdict.rawValue,
                            f.severity, f.cvss.map { String($0) }, f.fixedIn, f.reason, f.dataWarning, f.title]
                       })
        case .text: return bugText(report)
        case .html: return HTMLReport.bugs(report)
        case .cyclonedx: return CycloneDXExport.vex(report)
        }
    }

    static func bugText(_ r: BugReport) -> String {
        var out = "Bug report: \(r.deviceCount) devices; \(r.count(.exposed)) exposed, \(r.count(.possiblyExposed)) possibly exposed, \(r.count(.notExposedConfig)) not exposed (configuration); \(r.unaffectedCount) device/advisory pairs unaffected\n"
        for (device, reason) in r.notEvaluated { out += "NOT EVALUATED \(t(device)): \(t(reason))\n" }
        var byCVE: [String: [BugFinding]] = [:]
        for f in r.findings { byCVE[f.cve, default: []].append(f) }
        let order = byCVE.keys.sorted { a, b in
            let sa = byCVE[a]!.first?.cvss ?? 0, sb = byCVE[b]!.first?.cvss ?? 0
            return sa != sb ? sa > sb : a < b
        }
        for cve in order {
            let rows = byCVE[cve]!
            let first = rows[0]
            out += "\n\(cve) \(first.jsa ?? "") \(first.severity ?? "severity not given")\n  \(first.title)\n"
            for verdict in BugVerdict.allCases {
                let matching = rows.filter { $0.verdict == verdict }
                guard !matching.isEmpty else { continue }
                out += "  \(verdict.rawValue) (\(matching.count)):\n"
                for f in matching {
                    out += "    \(t(f.device)) \(t(f.model)) \(t(f.version))\(f.fixedIn.map { " -> upgrade to \($0)" } ?? "")\n      \(t(f.reason))\n"
                    if let w = f.dataWarning { out += "      data warning: \(w)\n" }
                }
            }
            if let workaround = first.workaround, !workaround.isEmpty { out += "  workaround: \(workaround.replacingOccurrences(of: "\n", with: " "))\n" }
        }
        if !r.dataWarnings.isEmpty {
            out += "\nData warnings (records that contradict themselves):\n"
            for w in r.dataWarnings { out += "  \(w.cve): \(w.text)\n" }
        }
        if !r.dataProblems.isEmpty {
            out += "\nData problems (skipped):\n"
            for p in r.dataProblems { out += "  \(p)\n" }
        }
        return out
    }

    // MARK: eol

    public static func render(_ report: LifecycleReport, as format: ReportFormat) throws(ReportRenderError) -> String {
        switch format {
        case .json: return json(report.items)
        case .csv:
            return csv(["device", "kind", "name", "part_number", "model", "serial", "train", "end_of_engineering",
                        "end_of_new_junos_release_support", "end_of_support", "eol_announce", "last_order", "replacement", "status", "source"],
                       report.items.map { i in
                           [i.device, i.kind.rawValue, i.name, i.partNumber, i.model, i.serial, i.train, i.endOfEngineering?.description,
                            i.endOfNewJunosReleaseSupport?.description, i.endOfSupport?.description, i.eolAnnounce?.description, i.lastOrder?.description, i.replacement, i.status.rawValue, i.source]
                       })
        case .text:
            var out = "EOL report (\(report.today), window \(report.windowMonths) months): \(report.deviceCount) devices; \(report.count(.past)) past, \(report.count(.within)) within, \(report.count(.supported)) supported, \(report.count(.unknown)) unknown\n"
            var devices: [String] = []
            for i in report.items where !devices.contains(i.device) { devices.append(i.device) }
            for device in devices {
                out += "\n\(t(device))\n"
                for i in report.items where i.device == device && (i.kind != .fru || i.status != .unknown) {
                    out += "  \(i.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(i.kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(t(i.name))\(i.model.map { " [\(t($0))]" } ?? "")\(i.train.map { " train \(t($0))" } ?? "") EOS \(i.endOfSupport?.description ?? "unknown")\(i.replacement.map { " -> \(t($0))" } ?? "")\n"
                }
                let unknownFRUs = report.items.filter { $0.device == device && $0.kind == .fru && $0.status == .unknown }.count
                if unknownFRUs > 0 { out += "  unknown   fru      \(unknownFRUs) FRUs without dates in the hardware EOL data (see --format csv/json for each)\n" }
            }
            if !report.dataProblems.isEmpty {
                out += "\nData problems (\(report.dataProblems.count)):\n"
                for p in report.dataProblems { out += "  \(t(p.description))\n" }
            }
            return out
        case .html: return HTMLReport.lifecycle(report)
        case .cyclonedx: throw ReportRenderError(description: "--format cyclonedx is for report bugs (VEX); use json, csv, text or html")
        }
    }

    // MARK: health

    public static func render(_ report: HealthReport, as format: ReportFormat) throws(ReportRenderError) -> String {
        switch format {
        case .json: return json(report.findings)
        case .csv:
            return csv(["device", "severity", "check", "fact", "value", "threshold", "message", "action"],
                       report.findings.map { [$0.device, $0.severity.rawValue, $0.check, $0.fact, $0.value, $0.threshold, $0.message, $0.action] })
        case .text:
            var out = "Health report: \(report.deviceCount) devices; \(report.count(.critical)) critical, \(report.count(.warning)) warning, \(report.count(.info)) info\n"
            let dateFormat = ISO8601DateFormatter()
            // Every device, a clean one too: "no findings" is an answer, a missing device is not.
            var names = report.devices.map(\.device), seen = Set(names)
            for f in report.findings where seen.insert(f.device).inserted { names.append(f.device) }
            let byDevice = Dictionary(grouping: report.findings, by: \.device)
            let summaries = Dictionary(report.devices.map { ($0.device, $0) }, uniquingKeysWith: { a, _ in a })
            for name in names {
                let device = summaries[name]
                out += "\n\(t(name))\(device?.model.map { " (\(t($0)))" } ?? "")\(device.map { ", collected \(dateFormat.string(from: $0.collected))" } ?? "")\n"
                let own = byDevice[name] ?? []
                if own.isEmpty { out += "  no findings\n" }
                for f in own {
                    out += "  \(f.severity.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(t(f.message)) [\(t(f.fact)) = \(t(f.value))\(f.threshold.map { ", threshold \(t($0))" } ?? "")]\n"
                    if let action = f.action { out += "           → \(t(action))\n" }
                }
            }
            return out
        case .html: return HTMLReport.health(report)
        case .cyclonedx: throw ReportRenderError(description: "--format cyclonedx is for report bugs (VEX); use json, csv, text or html")
        }
    }
}
