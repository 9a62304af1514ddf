import Foundation

/// A bug report as a CycloneDX 1.5 VEX document: each device a component (with its Junos OS as
/// a sub-component), each (device, advisory) verdict a vulnerability analysis on it:
/// `exposed` → `exploitable`, `not-exposed-config` → `not_affected` / `requires_configuration`,
/// `possibly-exposed` → `in_triage`; the reason in `detail`.
enum CycloneDXExport {
    static func vex(_ report: BugReport) -> String {
        var devices: [String: BugFinding] = [:]
        for f in report.findings where devices[f.device] == nil { devices[f.device] = f }
        func ref(_ device: String) -> String { "device:\(device)" }
        func osRef(_ device: String) -> String { "device:\(device):junos" }
        let components: [[String: Any]] = devices.keys.sorted().map { name in
            let f = devices[name]!
            var device: [String: Any] = ["type": "device", "bom-ref": ref(name), "name": name]
            if let model = f.model { device["description"] = "Juniper \(model)" }
            var properties: [[String: Any]] = []
            if let hostname = f.hostname { properties.append(["name": "care-agent:hostname", "value": hostname]) }
            if let model = f.model { properties.append(["name": "care-agent:model", "value": model]) }
            if !properties.isEmpty { device["properties"] = properties }
            var os: [String: Any] = ["type": "operating-system", "bom-ref": osRef(name), "name": "Junos OS", "supplier": ["name": "Juniper Networks"]]
            if let version = f.version { os["version"] = version }
            if let versions = f.versions { os["properties"] = versions.map { ["name": "care-agent:routing-engine-version", "value": $0] } }
            device["components"] = [os]
            return device
        }
        let vulnerabilities: [[String: Any]] = report.findings.map { f in
            var v: [String: Any] = ["bom-ref": "\(f.cve):\(f.device)", "id": f.cve]
            var source: [String: Any] = ["name": "Juniper Networks"]
            if let jsa = f.jsa { source["url"] = "https://supportportal.juniper.net/\(jsa)" }
            v["source"] = source
            if let score = f.cvss, let severity = f.severity {
                let rating = severity.split(separator: " ").first.map { $0.lowercased() } ?? "unknown"
                var entry: [String: Any] = ["score": score, "severity": ["critical", "high", "medium", "low", "info", "none"].contains(rating) ? rating : "unknown"]
                if severity.contains("CVSS 4.0") { entry["method"] = "CVSSv4" } else if severity.contains("CVSS 3.1") { entry["method"] = "CVSSv31" } else if severity.contains("CVSS 3.0") { entry["method"] = "CVSSv3" }
                v["ratings"] = [entry]
            }
            if let jsa = f.jsa { v["advisories"] = [["title": jsa, "url": "https://supportportal.juniper.net/\(jsa)"]] }
            v["description"] = f.title
            if let fix = f.fixedIn { v["recommendation"] = "Upgrade to \(fix) or later." }
            if let workaround = f.workaround, !workaround.isEmpty { v["workaround"] = workaround }
            var analysis: [String: Any] = [:]
            var detail = f.reason
            if let warning = f.dataWarning { detail += " [data warning: \(warning)]" }
            switch f.verdict {
            case .exposed:
                analysis["state"] = "exploitable"
                if f.fixedIn != nil { analysis["response"] = ["update"] }
            case .notExposedConfig:
                analysis["state"] = "not_affected"
                analysis["justification"] = "requires_configuration"
            case .possiblyExposed:
                analysis["state"] = "in_triage"
            }
            analysis["detail"] = detail
            v["analysis"] = analysis
            v["affects"] = [["ref": osRef(f.device)]]
            return v
        }
        let formatter = ISO8601DateFormatter()
        let document: [String: Any] = [
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "serialNumber": "urn:uuid:\(UUID().uuidString.lowercased())",
            "version": 1,
            "metadata": [
                "timestamp": formatter.string(from: report.generated),
                "tools": ["components": [["type": "application", "name": "care-agent", "description": "care-agent report bugs"]]],
            ],
            "components": components,
            "vulnerabilities": vulnerabilities,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else {
            return "{}\n"
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
