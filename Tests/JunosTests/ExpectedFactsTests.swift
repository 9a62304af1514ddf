import Foundation
import Junos
import Testing
import TestSupport

/// Golden facts for every real capture: each `Tests/Fixtures/<rpc>/<name>.xml` has a
/// `<name>.expected.json` beside it, written by reading the XML (not from this parser's output).
///
/// Schema of an expected file:
/// ```
/// { "rpc": "<rpc folder>",
///   "error": { "kind": "deviceError", "messageContains": "..." }   // only for error replies
///   "<fact>": { ...subset of the fact view below... } }           // software, inventory, ...
/// ```
/// Matching: every key in an expected object must exist in the fact view and match (`null`
/// means the fact must be absent); arrays must have the same length and match element-wise;
/// numbers compare numerically. Objects keyed by identity (inventory `frus`) select a subset.
@Suite struct ExpectedFactsTests {
    static let rpcs = [
        "get-software-information", "get-chassis-inventory", "get-route-engine-information",
        "get-virtual-chassis-information", "get-chassis-cluster-status",
    ]

    @Test("every fixture parses to its expected facts", arguments: rpcs)
    func fixturesMatchExpectedFacts(rpc: String) throws {
        let fixtures = try Fixtures.files(in: rpc)
        #expect(!fixtures.isEmpty, "no fixtures found in \(rpc)")
        for xml in fixtures {
            let name = "\(rpc)/\(xml.lastPathComponent)"
            let expectedURL = xml.deletingPathExtension().appendingPathExtension("expected.json")
            guard FileManager.default.fileExists(atPath: expectedURL.path) else {
                Issue.record("\(name): missing \(expectedURL.lastPathComponent)")
                continue
            }
            let expected = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: expectedURL))
            guard case .object(let top) = expected else {
                Issue.record("\(name): expected file is not a JSON object")
                continue
            }
            #expect(top["rpc"] == .string(rpc), "\(name): expected file names rpc \(String(describing: top["rpc"]))")
            let bytes = try Array(Data(contentsOf: xml))
            for problem in Self.check(rpc: rpc, bytes: bytes, expected: top) {
                Issue.record("\(name): \(problem)")
            }
        }
    }

    @Test("no expected file without its fixture", arguments: rpcs)
    func noOrphanExpectedFiles(rpc: String) throws {
        let dir = Fixtures.url(rpc)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        for json in names where json.hasSuffix(".expected.json") {
            let xml = String(json.dropLast(".expected.json".count)) + ".xml"
            #expect(names.contains(xml), "\(rpc)/\(json) has no \(xml)")
        }
    }

    /// Parses `bytes` as `rpc` and returns every difference from `expected`.
    static func check(rpc: String, bytes: [UInt8], expected: [String: JSONValue]) -> [String] {
        let view: Result<(String, JSONValue), JunosParseError>
        switch rpc {
        case "get-software-information":
            view = capture { () throws(JunosParseError) in ("software", softwareView(try SoftwareInformation.parse(bytes: bytes, rpc: rpc))) }
        case "get-chassis-inventory":
            view = capture { () throws(JunosParseError) in ("inventory", inventoryView(try ChassisInventory.parse(bytes: bytes, rpc: rpc))) }
        case "get-route-engine-information":
            view = capture { () throws(JunosParseError) in ("routingEngines", routingEngineView(try RoutingEngineReport.parse(bytes: bytes, rpc: rpc))) }
        case "get-virtual-chassis-information":
            view = capture { () throws(JunosParseError) in ("virtualChassis", virtualChassisView(try VirtualChassisStatus.parse(bytes: bytes, rpc: rpc))) }
        case "get-chassis-cluster-status":
            view = capture { () throws(JunosParseError) in ("cluster", clusterView(try ChassisClusterStatus.parse(bytes: bytes, rpc: rpc))) }
        default:
            return ["no fact view for \(rpc)"]
        }

        switch (view, expected["error"]) {
        case (.success, .some):
            return ["expected an error, but the reply parsed"]
        case (.failure(let error), .none):
            return ["parse threw: \(error)"]
        case (.failure(let error), .some(let expectedError)):
            return errorMismatches(error, expected: expectedError)
        case (.success(let (key, actual)), .none):
            guard let facts = expected[key] else { return ["expected file has no \"\(key)\" facts"] }
            return mismatches(expected: facts, actual: actual, path: key)
        }
    }

    static func capture<T>(_ body: () throws(JunosParseError) -> T) -> Result<T, JunosParseError> {
        do { return .success(try body()) } catch { return .failure(error) }
    }

    static func errorMismatches(_ error: JunosParseError, expected: JSONValue) -> [String] {
        guard case .object(let fields) = expected else { return ["\"error\" must be an object"] }
        var problems: [String] = []
        let kind: String
        switch error {
        case .malformedXML: kind = "malformedXML"
        case .deviceError: kind = "deviceError"
        case .outputInsteadOfData: kind = "outputInsteadOfData"
        case .emptyReply: kind = "emptyReply"
        case .limitExceeded: kind = "limitExceeded"
        case .unexpectedData: kind = "unexpectedData"
        }
        if let want = fields["kind"], want != .string(kind) { problems.append("error kind \(kind), expected \(want)") }
        if case .string(let fragment)? = fields["messageContains"], !error.description.contains(fragment) {
            problems.append("error \"\(error)\" lacks \"\(fragment)\"")
        }
        return problems
    }

    /// Differences between an expected subset and the actual view, each with its JSON path.
    static func mismatches(expected: JSONValue, actual: JSONValue, path: String) -> [String] {
        switch (expected, actual) {
        case (.object(let want), .object(let have)):
            return want.keys.sorted().flatMap { key -> [String] in
                guard let value = have[key] else { return ["\(path).\(key): no such fact in the view"] }
                return mismatches(expected: want[key]!, actual: value, path: "\(path).\(key)")
            }
        case (.array(let want), .array(let have)):
            guard want.count == have.count else { return ["\(path): \(have.count) items, expected \(want.count)"] }
            return zip(want, have).enumerated().flatMap { index, pair in
                mismatches(expected: pair.0, actual: pair.1, path: "\(path)[\(index)]")
            }
        case (.number(let want), .number(let have)):
            return abs(want - have) < 1e-9 ? [] : ["\(path): \(have), expected \(want)"]
        default:
            return expected == actual ? [] : ["\(path): \(actual), expected \(expected)"]
        }
    }

    // MARK: Fact views (the names the expected files use)

    static func softwareView(_ s: SoftwareInformation) -> JSONValue {
        JSONValue([
            "hostname": s.hostname, "model": s.model, "productName": s.productName,
            "version": s.version?.raw, "primaryName": s.primaryName,
            "routingEngines": s.routingEngines.map { re -> Any? in
                [
                    "name": re.name, "hostname": re.hostname, "model": re.model, "productName": re.productName,
                    "osName": re.osName, "version": re.version?.raw, "versionSource": re.versionSource,
                    "packageCount": re.packages.count,
                ] as [String: Any?]
            },
        ] as [String: Any?])
    }

    static func inventoryView(_ inventory: ChassisInventory) -> JSONValue {
        let frus = inventory.frus
        var byIdentity: [String: Any?] = [:]
        for fru in frus {
            byIdentity[fru.identity] = [
                "partNumber": fru.partNumber, "serialNumber": fru.serialNumber, "description": fru.description,
                "modelNumber": fru.modelNumber, "version": fru.version, "cleiCode": fru.cleiCode,
                "depth": fru.depth,
            ] as [String: Any?]
        }
        return JSONValue([
            "chassisSerial": inventory.chassisSerial, "chassisDescription": inventory.chassisDescription,
            "chassisCount": inventory.chassis.count, "fruCount": frus.count,
            "deepestDepth": frus.map(\.depth).max() ?? 0, "frus": byIdentity,
        ] as [String: Any?])
    }

    static func routingEngineView(_ report: RoutingEngineReport) -> JSONValue {
        JSONValue([
            "masterSlot": report.master?.slot, "hasMaster": report.master != nil,
            "masterSection": report.master?.section,
            "routingEngines": report.routingEngines.map { re -> Any? in
                [
                    "section": re.section, "slot": re.slot, "mastershipState": re.mastershipState,
                    "mastershipPriority": re.mastershipPriority, "status": re.status, "model": re.model,
                    "serialNumber": re.serialNumber, "memoryDRAMBytes": re.memoryDRAMBytes,
                    "memoryInstalledBytes": re.memoryInstalledBytes,
                    "memoryUtilizationPercent": re.memoryUtilizationPercent,
                    "memorySystemBytes": re.memorySystem?.totalBytes,
                    "memoryControlPlaneBytes": re.memoryControlPlane?.totalBytes,
                    "memoryDataPlaneBytes": re.memoryDataPlane?.totalBytes,
                    "cpuUserPercent": re.cpuUserPercent, "cpuIdlePercent": re.cpuIdlePercent, "cpuIdle1MinutePercent": re.cpuIdle1MinutePercent,
                    "cpuIdle5MinutesPercent": re.cpuIdle5MinutesPercent, "cpuIdle15MinutesPercent": re.cpuIdle15MinutesPercent,
                    "uptimeSeconds": re.uptimeSeconds, "startTimeEpoch": re.startTimeEpoch,
                    "temperatureCelsius": re.temperatureCelsius, "cpuTemperatureCelsius": re.cpuTemperatureCelsius,
                    "lastRebootReason": re.lastRebootReason,
                    "loadAverage1": re.loadAverage1, "loadAverage5": re.loadAverage5, "loadAverage15": re.loadAverage15,
                ] as [String: Any?]
            },
        ] as [String: Any?])
    }

    static func virtualChassisView(_ vc: VirtualChassisStatus) -> JSONValue {
        JSONValue([
            "id": vc.id, "mode": vc.mode, "isFabric": vc.isFabric, "isPreprovisioned": vc.isPreprovisioned,
            "masterMemberID": vc.master?.id, "nextMemberID": vc.nextMemberID,
            "members": vc.members.map { m -> Any? in
                [
                    "id": m.id, "status": m.status, "serialNumber": m.serialNumber, "model": m.model,
                    "priority": m.priority, "role": m.role?.description, "isLocal": m.isLocal,
                    "mixedMode": m.mixedMode, "routeMode": m.routeMode, "neighborCount": m.neighbors.count,
                    "firstFPCSlot": m.firstFPCSlot, "lastFPCSlot": m.lastFPCSlot,
                ] as [String: Any?]
            },
        ] as [String: Any?])
    }

    static func clusterView(_ cluster: ChassisClusterStatus) -> JSONValue {
        JSONValue([
            "clusterID": cluster.clusterID,
            "redundancyGroups": cluster.redundancyGroups.map { rg -> Any? in
                [
                    "id": rg.id, "failoverCount": rg.failoverCount,
                    "nodes": rg.nodes.map { node -> Any? in
                        [
                            "name": node.name, "priority": node.priority, "status": node.status,
                            "preempt": node.preempt, "manualFailover": node.manualFailover,
                            "monitorFailures": node.monitorFailures,
                        ] as [String: Any?]
                    },
                ] as [String: Any?]
            },
        ] as [String: Any?])
    }
}

/// A JSON value, decoded from expected files and built from fact views.
indirect enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// Converts view values: nil, Bool, integers, Double, String, arrays and string-keyed dictionaries.
    init(_ any: Any?) {
        switch any {
        case nil: self = .null
        case let value as Bool: self = .bool(value)
        case let value as Int: self = .number(Double(value))
        case let value as Int64: self = .number(Double(value))
        case let value as Double: self = .number(value)
        case let value as String: self = .string(value)
        case let value as [String]: self = .array(value.map { JSONValue($0) })
        case let value as [Any?]: self = .array(value.map { JSONValue($0) })
        case let value as [String: Any?]: self = .object(value.mapValues { JSONValue($0) })
        case let value?:
            // A type the views do not use: shown as text so a mismatch message still says what it was.
            self = .string("\(value)")
        }
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { "\($0): \(o[$0]!.description)" }.joined(separator: ", ") + "}"
        }
    }
}
