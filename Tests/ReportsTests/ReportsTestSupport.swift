import Foundation
import Junos
@testable import Reports
import TestSupport

/// The project's data directory, and builders for records and devices in tests.
enum ReportsTestData {
    static let dataDirectory = Fixtures.packageRoot.appendingPathComponent("data")

    /// The shipped reference data, loaded once per test process.
    static let shipped: ReferenceData = {
        do { return try ReferenceData.load(directory: dataDirectory) } catch { fatalError("data/: \(error)") }
    }()

    static func advisory(_ cve: String) -> Advisory {
        guard let found = shipped.advisories.first(where: { $0.cve == cve }) else { fatalError("\(cve) not in data/") }
        return found
    }

    /// A CVE JSON 5 record from its `affected` entries and the few other fields reports read.
    static func record(cve: String = "CVE-2099-0001", title: String = "Junos OS: test record", description: String = "",
                       affected: [[String: Any]], configuration: String? = nil, solution: String? = nil,
                       score: Double = 7.5) -> Data {
        var cna: [String: Any] = [
            "title": title, "affected": affected,
            "descriptions": [["lang": "en", "value": description]],
            "source": ["advisory": "JSA99999"],
            "metrics": [["cvssV3_1": ["baseScore": score, "baseSeverity": "HIGH", "version": "3.1"]]],
            "workarounds": [["lang": "en", "value": "Disable the feature."]],
        ]
        if let configuration { cna["configurations"] = [["lang": "en", "value": configuration]] }
        if let solution { cna["solutions"] = [["lang": "en", "value": solution]] }
        let root: [String: Any] = ["cveMetadata": ["cveId": cve], "containers": ["cna": cna]]
        return try! JSONSerialization.data(withJSONObject: root)
    }

    static func parse(_ data: Data, file: String = "test.json") throws -> (Advisory, [DataProblem]) {
        var problems: [DataProblem] = []
        let advisory = try Advisory(json: data, file: file, problems: &problems)
        return (advisory, problems)
    }

    /// A device running `versions` (one per RE), with a text configuration when given.
    static func device(_ name: String = "edge-1", model: String = "mx480", versions: [String], configuration: String? = nil,
                       inventory: ChassisInventory? = nil, collected: Date = Date(timeIntervalSince1970: 1_750_000_000)) -> DeviceSnapshot {
        var facts = DeviceFacts()
        let engines = versions.enumerated().map { index, v in
            RoutingEngineSoftware(name: versions.count > 1 ? "re\(index)" : nil, hostname: name, model: model, version: JunosVersion(v))
        }
        facts.software = SoftwareInformation(hostname: name, model: model, version: JunosVersion(versions[0]),
                                             primaryName: engines.first?.name, routingEngines: engines)
        facts.inventory = inventory
        var statements: ConfigStatement?
        if let configuration {
            let tree = ConfigurationTree(text: configuration)
            statements = tree.effective
            facts.configuration = ConfigurationFacts(tree: tree, format: .text)
        }
        return DeviceSnapshot(device: name, hostname: name, collected: collected, facts: facts, configuration: statements, source: "test")
    }
}
