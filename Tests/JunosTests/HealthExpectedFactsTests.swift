import Foundation
import Junos
import Testing
import TestSupport

/// Golden facts for every capture of the health RPCs, the configuration and the error replies:
/// each `Tests/Fixtures/<rpc>/<name>.xml` has a `<name>.expected.json` beside it, written by
/// reading the XML (never from this parser's output).
///
/// Schema:
/// ```
/// { "rpc": "<folder>",
///   "facts": { "<key path>": <value>, ... } }      // for data replies
/// { "rpc": "<rpc>", "error": "deviceError" | "outputInsteadOfData" | "emptyReply" | ...,
///   "messages": [...], "tags": [...], "badElements": [...] }   // for rpc-error/
/// ```
/// A key path walks the fact's JSON encoding: `sections[0].sensors[5].celsius`; a final `.count`
/// is an array's length; `null` means absent.
@Suite struct HealthExpectedFactsTests {
    static let folders = [
        "get-environment-information", "get-alarm-information", "get-system-alarm-information",
        "get-system-storage", "get-system-core-dumps", "get-system-uptime-information",
        "get-configuration", "get-interface-information", "rpc-error",
    ]

    @Test("every fixture has expected facts and matches them", arguments: folders)
    func fixturesMatchExpectedFacts(folder: String) throws {
        let fixtures = try Fixtures.files(in: folder)
        #expect(!fixtures.isEmpty, "no fixtures in \(folder)")
        for xml in fixtures {
            let name = "\(folder)/\(xml.lastPathComponent)"
            let expectedURL = xml.deletingPathExtension().appendingPathExtension("expected.json")
            guard FileManager.default.fileExists(atPath: expectedURL.path) else {
                Issue.record("\(name): missing \(expectedURL.lastPathComponent)")
                continue
            }
            let expected = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: expectedURL)) as? [String: Any],
                "\(name): expected file is not a JSON object")
            let bytes = try Array(Data(contentsOf: xml))
            let problems = folder == "rpc-error"
                ? Self.errorMismatches(bytes: bytes, expected: expected)
                : try Self.factMismatches(folder: folder, bytes: bytes, expected: expected)
            for problem in problems { Issue.record("\(name): \(problem)") }
        }
    }

    @Test("no expected file without its fixture", arguments: folders)
    func noOrphanExpectedFiles(folder: String) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Fixtures.url(folder).path)
        for json in names where json.hasSuffix(".expected.json") {
            let xml = String(json.dropLast(".expected.json".count)) + ".xml"
            #expect(names.contains(xml), "\(folder)/\(json) has no \(xml)")
        }
    }

    static func factMismatches(folder: String, bytes: [UInt8], expected: [String: Any]) throws -> [String] {
        guard let kind = FactKind(rpc: folder) else { return ["no fact kind for \(folder)"] }
        guard expected["rpc"] as? String == folder else { return ["expected file names rpc \(expected["rpc"] ?? "nil")"] }
        guard let facts = expected["facts"] as? [String: Any], !facts.isEmpty else { return ["no facts listed"] }
        let reply = try JunosReply(bytes: bytes)
        var device = DeviceFacts()
        do { try device.absorb(reply, as: kind) } catch { return ["parse threw: \(error)"] }
        let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(device)) as? [String: Any]
        guard let fact = encoded?[kind.rawValue] else { return ["no \(kind.rawValue) in the facts"] }
        var problems: [String] = []
        for (path, want) in facts.sorted(by: { $0.key < $1.key }) {
            let got = lookup(fact, path: path)
            if !same(got, want) { problems.append("\(path) is \(describe(got)), expected \(describe(want))") }
        }
        return problems
    }

    static func errorMismatches(bytes: [UInt8], expected: [String: Any]) -> [String] {
        let rpc = expected["rpc"] as? String ?? "?"
        let error: JunosParseError
        do {
            _ = try StorageReport.parse(bytes: bytes, rpc: rpc)
            return ["parsed without error"]
        } catch let e { error = e }
        var problems: [String] = []
        let wantMessages = expected["messages"] as? [String] ?? []
        #expect(error.description.hasPrefix("\(rpc): "), "the message names the RPC: \(error.description)")
        for message in wantMessages where !error.description.contains(message) {
            problems.append("description \"\(error.description)\" lacks \"\(message)\"")
        }
        switch (error, expected["error"] as? String) {
        case let (.deviceError(errorRPC, messages), "deviceError"):
            if errorRPC != rpc { problems.append("rpc \(errorRPC)") }
            if messages.map(\.message) != wantMessages { problems.append("messages \(messages.map(\.message))") }
            if let tags = expected["tags"] as? [String], messages.map(\.tag) != tags {
                problems.append("tags \(messages.map(\.tag))")
            }
            if let bad = expected["badElements"] as? [Any] {
                let want = bad.map { $0 as? String }
                if messages.map(\.badElement) != want { problems.append("bad elements \(messages.map(\.badElement))") }
            }
        case let (.outputInsteadOfData(_, text), "outputInsteadOfData"):
            if [text] != wantMessages { problems.append("text \(text)") }
        case (.emptyReply, "emptyReply"):
            break
        default:
            problems.append("got \(error), expected \(expected["error"] ?? "nil")")
        }
        return problems
    }

    /// Walks `sections[0].sensors[5].celsius`; `.count` of an array is its length; absent is nil.
    static func lookup(_ root: Any, path: String) -> Any? {
        var current: Any? = root
        for part in path.split(separator: ".") {
            var key = Substring(part)
            var indices: [Int] = []
            while let open = key.lastIndex(of: "["), key.hasSuffix("]") {
                guard let index = Int(key[key.index(after: open)..<key.index(before: key.endIndex)]) else { return nil }
                indices.insert(index, at: 0)
                key = key[..<open]
            }
            if key == "count", indices.isEmpty, let array = current as? [Any] {
                current = array.count
                continue
            }
            current = (current as? [String: Any])?[String(key)]
            for index in indices {
                guard let array = current as? [Any], array.indices.contains(index) else { return nil }
                current = array[index]
            }
        }
        return current is NSNull ? nil : current
    }

    static func same(_ got: Any?, _ want: Any) -> Bool {
        if want is NSNull { return got == nil }
        guard let got else { return false }
        if let w = want as? [Any] {
            guard let g = got as? [Any], g.count == w.count else { return false }
            return zip(g, w).allSatisfy { same($0, $1) }
        }
        if let w = want as? String { return got as? String == w }
        if let w = want as? NSNumber, let g = got as? NSNumber {
            return w == g || w.doubleValue == g.doubleValue
        }
        return false
    }

    static func describe(_ value: Any?) -> String {
        guard let value else { return "absent" }
        if let s = value as? String { return "\"\(s)\"" }
        return "\(value)"
    }
}
