@testable import Bundle
import Foundation
import Simulator
import Testing
import TestSupport

/// `care-agent report` as a user runs it, over bundles collected from the simulator's fleet
/// (every shipped profile) behind real sshd: JSON contracts, the HTML page in headless Chromium,
/// the CycloneDX VEX against the official schema, and refusal of a tampered bundle.
@Suite(.serialized) struct ReportCommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let dataDirectory = Fixtures.packageRoot.appendingPathComponent("data").path
    /// Kept after the run (the issue asks for the screenshot as a test artifact).
    static let artifacts = Fixtures.packageRoot.appendingPathComponent(".build/test-artifacts/reports")

    func run(_ program: String, _ arguments: [String], in dir: URL) throws -> Run {
        let tag = UUID().uuidString.prefix(6)
        let out = dir.appendingPathComponent("stdout-\(tag)").path, err = dir.appendingPathComponent("stderr-\(tag)").path
        let child = try ChildProcess(program, arguments, stdout: out, stderr: err)
        let status = child.wait()
        return Run(status: status, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    /// Collects one bundle per shipped profile from a simulated fleet; returns the bundle paths.
    func collectFleet(in scratch: URL, executable: String) throws -> [String] {
        let profiles = Fixtures.packageRoot.appendingPathComponent("profiles")
        let count = try FileManager.default.contentsOfDirectory(atPath: profiles.path).filter { !$0.hasPrefix(".") }.count
        let fleet = try FleetProcess(executable: executable, devices: count, in: scratch)
        defer { fleet.stop() }
        let out = scratch.appendingPathComponent("bundles").path
        let collect = try run(executable, ["collect", "now", "--standalone"] + (try fleet.collectArguments()) + [
            "--state", scratch.appendingPathComponent("agent-state").path, "--out", out, "--timeout", "60",
        ], in: scratch)
        #expect(collect.status == 0, "\(collect.stdout)\n\(collect.stderr)")
        let bundles = try FileManager.default.contentsOfDirectory(atPath: out).filter(BundleFileName.isBundle).sorted().map { "\(out)/\($0)" }
        #expect(bundles.count == count)
        return bundles
    }

    @Test func reportsOverTheSimulatedFleetInEveryFormat() throws {
        let executable = try careAgentExecutable()
        let scratch = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let bundles = try collectFleet(in: scratch, executable: executable)
        let devices = try bundles.map { try BundleReader().read(contentsOf: URL(fileURLWithPath: $0)).contents.device.name }

        // bugs, JSON: the contract's fields on every row, every verdict kind present across the fleet.
        let bugs = try run(executable, ["report", "bugs", "--format", "json", "--data", Self.dataDirectory] + bundles, in: scratch)
        #expect(bugs.status == 0, "\(bugs.stderr)")
        // No --pubkey/--keys: the report says whose keys it did not check, as every bundle tool does.
        #expect(bugs.stderr.contains("were checked only against the keys embedded in them"), "\(bugs.stderr)")
        let signer = try BundleReader().read(contentsOf: URL(fileURLWithPath: bundles[0])).signer.base64
        let checked = try run(executable, ["report", "bugs", "--format", "json", "--data", Self.dataDirectory, "--pubkey", signer] + bundles, in: scratch)
        #expect(checked.status == 0 && !checked.stderr.contains("embedded"), "\(checked.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(bugs.stdout.utf8)) as? [[String: Any]])
        #expect(!rows.isEmpty)
        for row in rows {
            for key in ["device", "hostname", "model", "version", "versions", "cve", "jsa", "verdict", "reason", "fixed_in", "severity", "data_warning"] {
                #expect(row.keys.contains(key), "\(key) missing in \(row)")
            }
            #expect(["exposed", "not-exposed-config", "possibly-exposed"].contains(row["verdict"] as? String ?? ""))
            #expect(!(row["reason"] as? String ?? "").isEmpty)
        }
        #expect(Set(rows.compactMap { $0["verdict"] as? String }) == ["exposed", "not-exposed-config", "possibly-exposed"])
        #expect(Set(rows.compactMap { $0["device"] as? String }).isSubset(of: Set(devices)))

        // --since against itself: nothing is news.
        let previous = scratch.appendingPathComponent("previous.json").path
        try bugs.stdout.write(toFile: previous, atomically: true, encoding: .utf8)
        let since = try run(executable, ["report", "bugs", "--format", "json", "--data", Self.dataDirectory, "--since", previous] + bundles, in: scratch)
        #expect(since.status == 0, "\(since.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(since.stdout.utf8)) as? [Any])?.isEmpty == true, "\(since.stdout.prefix(200))")

        // text: grouped per advisory; CSV: one header line.
        let text = try run(executable, ["report", "bugs", "--data", Self.dataDirectory] + bundles, in: scratch)
        #expect(text.stdout.hasPrefix("Bug report: \(bundles.count) devices; "), "\(text.stdout.prefix(200))")
        let csv = try run(executable, ["report", "bugs", "--format", "csv", "--data", Self.dataDirectory] + bundles, in: scratch)
        #expect(csv.stdout.split(separator: "\n").first == "device,hostname,model,version,cve,jsa,verdict,severity,cvss,fixed_in,reason,data_warning,title")

        // eol: a software and a chassis row per device, statuses from the four, dates ISO or null.
        let eol = try run(executable, ["report", "eol", "--format", "json", "--within", "12m", "--data", Self.dataDirectory] + bundles, in: scratch)
        #expect(eol.status == 0, "\(eol.stderr)")
        let items = try #require(try JSONSerialization.jsonObject(with: Data(eol.stdout.utf8)) as? [[String: Any]])
        for device in devices {
            #expect(items.contains { $0["device"] as? String == device && $0["kind"] as? String == "software" }, "\(device): no software row")
            #expect(items.contains { $0["device"] as? String == device && $0["kind"] as? String == "chassis" }, "\(device): no chassis row")
        }
        for item in items {
            #expect(["supported", "within", "past", "unknown"].contains(item["status"] as? String ?? ""))
            for key in ["end_of_support", "end_of_engineering", "eol_announce", "last_order"] {
                if let date = item[key] as? String { #expect(date.count == 10 && date.split(separator: "-").count == 3, "\(key) = \(date)") }
            }
        }

        // health: JSON rows with severity, fact, value.
        let health = try run(executable, ["report", "health", "--format", "json", "--data", Self.dataDirectory] + bundles, in: scratch)
        #expect(health.status == 0, "\(health.stderr)")
        let findings = try #require(try JSONSerialization.jsonObject(with: Data(health.stdout.utf8)) as? [[String: Any]])
        #expect(findings.allSatisfy { $0["severity"] != nil && $0["fact"] != nil && $0["value"] != nil && $0["device"] != nil })

        // HTML: one self-contained file, rendered by headless Chromium with every row present.
        let html = scratch.appendingPathComponent("bugs.html").path
        let htmlRun = try run(executable, ["report", "bugs", "--format", "html", "--out", html, "--data", Self.dataDirectory] + bundles, in: scratch)
        #expect(htmlRun.status == 0 && htmlRun.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == html, "\(htmlRun.stdout) \(htmlRun.stderr)")
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(!page.contains("http://") && !page.contains("https://cdn") && !page.contains("<link") && !page.contains("src="), "external resource in the page")
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let chromium = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(scratch.path)/chromium"]
        let dom = try run("/usr/bin/chromium", chromium + ["--dump-dom", "file://\(html)"], in: scratch)
        #expect(dom.status == 0, "\(dom.stderr.suffix(500))")
        #expect(dom.stdout.components(separatedBy: "<tr class=\"").count - 1 >= rows.count)
        for row in rows.prefix(40) {
            let cve = row["cve"] as! String, device = row["device"] as! String
            #expect(dom.stdout.contains("<td>\(cve)</td>") && dom.stdout.contains("<td>\(device)</td>"))
        }
        #expect(dom.stdout.contains("<div class=\"summary\" id=\"summary\"><div class=\"card\"><b>\(bundles.count)</b>devices</div>"))
        // The filter runs in the browser: with #filter=DEVICE, only that device's rows stay visible.
        let target = try #require(rows.first?["device"] as? String)
        let filtered = try run("/usr/bin/chromium", chromium + ["--dump-dom", "file://\(html)#filter=\(target)"], in: scratch)
        let bugRows = filtered.stdout.components(separatedBy: "<tbody>")[1].components(separatedBy: "</tbody>")[0]
            .components(separatedBy: "<tr ").dropFirst()
        let visible = bugRows.filter { !$0.contains("display: none") }
        #expect(visible.count == rows.filter { $0["device"] as? String == target }.count, "\(visible.count) visible")
        #expect(visible.allSatisfy { $0.contains("<td>\(target)</td>") })
        #expect(bugRows.count == rows.count)
        // #sort=-Severity sorts by the score in the browser, worst first ("MEDIUM 6.9" is not
        // above "CRITICAL 9.8"), and rows without a severity go last.
        func cells(_ row: Substring) -> [String] {
            row.components(separatedBy: "<td").dropFirst().map { cell in
                let text = cell.drop { $0 != ">" }.dropFirst()
                return String(text.prefix { $0 != "<" })
            }
        }
        let sorted = try run("/usr/bin/chromium", chromium + ["--dump-dom", "file://\(html)#sort=-Severity"], in: scratch)
        let severities = sorted.stdout.components(separatedBy: "<tbody>")[1].components(separatedBy: "</tbody>")[0]
            .components(separatedBy: "<tr ").dropFirst().map { cells(Substring($0))[6] }
        func score(_ text: String) -> Double? {
            let parts = text.split(separator: " ")
            guard let word = parts.first, let rank = ["NONE": 0.0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4][word.uppercased()] else { return nil }
            return rank * 100 + (parts.count > 1 ? Double(parts[1]) ?? 0 : 0)
        }
        let scores = severities.map(score)
        let known = scores.prefix { $0 != nil }.compactMap { $0 }
        #expect(known == known.sorted(by: >) && scores.dropFirst(known.count).allSatisfy { $0 == nil }, "\(severities.prefix(30))")
        #expect(known.count > 10)
        let screenshot = Self.artifacts.appendingPathComponent("bugs.png").path
        try? FileManager.default.removeItem(atPath: screenshot)
        let shot = try run("/usr/bin/chromium", chromium + ["--screenshot=\(screenshot)", "--window-size=1400,1000", "file://\(html)"], in: scratch)
        #expect(shot.status == 0 && FileManager.default.fileExists(atPath: screenshot), "\(shot.stderr.suffix(500))")
        try? FileManager.default.removeItem(atPath: Self.artifacts.appendingPathComponent("bugs.html").path)
        try FileManager.default.copyItem(atPath: html, toPath: Self.artifacts.appendingPathComponent("bugs.html").path)

        // The EOL page too: a software row per device, the window in the summary.
        let eolHTML = scratch.appendingPathComponent("eol.html").path
        #expect(try run(executable, ["report", "eol", "--format", "html", "--out", eolHTML, "--data", Self.dataDirectory] + bundles, in: scratch).status == 0)
        let eolDOM = try run("/usr/bin/chromium", chromium + ["--dump-dom", "file://\(eolHTML)"], in: scratch)
        #expect(eolDOM.stdout.contains("end of support within 12 months</div>"), "\(eolDOM.stdout.prefix(600))")
        for device in devices {
            #expect(eolDOM.stdout.contains("<td>\(device)</td><td>software</td>"), "\(device): no software row in the rendered EOL page")
        }
        // One row per item in the items table (the data problems have their own table after it).
        let itemsTable = eolDOM.stdout.components(separatedBy: "<h2>Data problems")[0]
        #expect(itemsTable.components(separatedBy: "<tr class=\"").count - 1 == items.count)
        _ = try run("/usr/bin/chromium", chromium + ["--screenshot=\(Self.artifacts.appendingPathComponent("eol.png").path)", "--window-size=1400,1000", "file://\(eolHTML)"], in: scratch)

        // CycloneDX VEX, validated against the official 1.5 schema; an invalid edit is caught.
        let vex = scratch.appendingPathComponent("vex.json").path
        let vexRun = try run(executable, ["report", "bugs", "--format", "cyclonedx", "--out", vex, "--data", Self.dataDirectory] + bundles, in: scratch)
        #expect(vexRun.status == 0, "\(vexRun.stderr)")
        let validator = Fixtures.packageRoot.appendingPathComponent("scripts/validate-cyclonedx.py").path
        let valid = try run("/usr/bin/env", ["python3", validator, vex, "1.5"], in: scratch)
        #expect(valid.status == 0, "\(valid.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: vex))) as? [String: Any])
        let vulnerabilities = try #require(document["vulnerabilities"] as? [[String: Any]])
        #expect(vulnerabilities.count == rows.count)
        let states = Set(vulnerabilities.compactMap { ($0["analysis"] as? [String: Any])?["state"] as? String })
        #expect(states == ["exploitable", "not_affected", "in_triage"])
        #expect(vulnerabilities.filter { ($0["analysis"] as? [String: Any])?["state"] as? String == "not_affected" }
            .allSatisfy { ($0["analysis"] as? [String: Any])?["justification"] as? String == "requires_configuration" })
        var broken = document
        broken["specVersion"] = "1.5"
        var first = vulnerabilities[0]
        first["analysis"] = ["state": "maybe"]
        broken["vulnerabilities"] = [first]
        let brokenPath = scratch.appendingPathComponent("broken.json").path
        try JSONSerialization.data(withJSONObject: broken).write(to: URL(fileURLWithPath: brokenPath))
        #expect(try run("/usr/bin/env", ["python3", validator, brokenPath, "1.5"], in: scratch).status == 1)

        // Without bundles: the agent's latest collections, from its outbox, else its results.
        let conf = scratch.appendingPathComponent("agent.conf").path
        let outbox = URL(fileURLWithPath: bundles[0]).deletingLastPathComponent().path
        try "[agent]\noutbox = \(outbox)\nstate-directory = \(scratch.appendingPathComponent("agent-state").path)\n[reports]\ndata-directory = \(Self.dataDirectory)\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let fromOutbox = try run(executable, ["report", "bugs", "--config", conf, "--format", "json"], in: scratch)
        #expect(fromOutbox.status == 0, "\(fromOutbox.stderr)")
        #expect(fromOutbox.stdout == bugs.stdout)
        try "[agent]\noutbox = \(scratch.appendingPathComponent("empty-outbox").path)\nstate-directory = \(scratch.appendingPathComponent("agent-state").path)\n[reports]\ndata-directory = \(Self.dataDirectory)\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let fromResults = try run(executable, ["report", "eol", "--config", conf, "--format", "json"], in: scratch)
        #expect(fromResults.status == 0, "\(fromResults.stderr)")
        let resultItems = try #require(try JSONSerialization.jsonObject(with: Data(fromResults.stdout.utf8)) as? [[String: Any]])
        #expect(Set(resultItems.compactMap { $0["device"] as? String }) == Set(devices))
        let resultBugs = try run(executable, ["report", "bugs", "--config", conf, "--format", "json"], in: scratch)
        #expect(resultBugs.status == 0, "\(resultBugs.stderr)")
        #expect(resultBugs.stdout.contains("feature profile") || resultBugs.stdout.contains("configured: [protocols"), "\(resultBugs.stdout.prefix(400))")

        // A bundle whose signature fails is refused, named, and nothing is reported.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: bundles[0])))
        let tampered = scratch.appendingPathComponent("tampered.tar.gz").path
        let plain = try Gzip.decompress(bytes, limit: 64 << 20)
        // One hex digit of a digest inside the signed manifest.json: the signature no longer matches.
        var edited = plain
        let marker = Array("\"sha256\"".utf8)
        let at = try #require((0..<(edited.count - marker.count)).first { Array(edited[$0..<$0 + marker.count]) == marker })
        let digit = try #require((at + marker.count..<edited.count).first { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(edited[$0]) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(edited[$0]) })
        edited[digit] = edited[digit] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        bytes = try Gzip.compress(edited)
        try Data(bytes).write(to: URL(fileURLWithPath: tampered))
        let refused = try run(executable, ["report", "bugs", "--data", Self.dataDirectory, tampered, bundles[1]], in: scratch)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("\(tampered): refused: ") && refused.stderr.contains("signature"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty)
        // And an untrusted signer with --pubkey.
        let otherKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        let untrusted = try run(executable, ["report", "eol", "--data", Self.dataDirectory, "--pubkey", otherKey, bundles[0]], in: scratch)
        #expect(untrusted.status == 1 && untrusted.stderr.contains("\(bundles[0]): refused: "), "\(untrusted.stderr)")
    }

    @Test func reportsSectionOfAgentConfSetsTheDataDirectoryAndThresholds() throws {
        let executable = try careAgentExecutable()
        let scratch = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let bundle = Fixtures.url("bundles/baku-JN1249018AFB-20251125-020000.tar.gz").path
        let conf = scratch.appendingPathComponent("agent.conf").path
        try "[agent]\nstate-directory = \(scratch.path)\n[reports]\ndata-directory = \(Self.dataDirectory)\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let eol = try run(executable, ["report", "eol", "--config", conf, "--format", "json", bundle], in: scratch)
        #expect(eol.status == 0, "\(eol.stderr)")
        #expect(eol.stdout.contains("\"train\" : \"15.1\""), "\(eol.stdout.prefix(300))")

        // The fixture has a minor chassis alarm: a warning by default.
        let health = try run(executable, ["report", "health", "--config", conf, "--format", "csv", bundle], in: scratch)
        #expect(health.stdout.contains("baku,warning,alarm,chassisAlarms,Minor,,"), "\(health.stdout)")

        try "[reports]\ndata-directory = \(Self.dataDirectory)\ncpu-warnings = 50\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let typo = try run(executable, ["report", "health", "--config", conf, bundle], in: scratch)
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("\(conf):3:1: unknown key \"cpu-warnings\" in [reports]"), "\(typo.stderr)")

        // A warning above its critical threshold would never be raised; a percentage past 100 is no percentage.
        try "[reports]\ndata-directory = \(Self.dataDirectory)\ncpu-warning = 97\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let contradiction = try run(executable, ["report", "health", "--config", conf, bundle], in: scratch)
        #expect(contradiction.status == 2 && contradiction.stderr.contains("cpu-warning (97) is above cpu-critical (95)"), "\(contradiction.stderr)")
        try "[reports]\ndata-directory = \(Self.dataDirectory)\nstorage-critical = 900\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let range = try run(executable, ["report", "health", "--config", conf, bundle], in: scratch)
        #expect(range.status == 2 && range.stderr.contains("storage-critical = 900: expected a whole number from 0 to 100"), "\(range.stderr)")

        // A data directory that is not one is named.
        let missing = try run(executable, ["report", "bugs", "--data", scratch.appendingPathComponent("nodata").path, bundle], in: scratch)
        #expect(missing.status == 1 && missing.stderr.contains("nodata is not a data directory"), "\(missing.stderr)")
    }

    /// The agent's own results: a device whose latest collection failed is reported from its last
    /// good facts, and the report says the collection failed and how old those facts are.
    @Test func aDeviceWhoseLatestCollectionFailedIsReportedAsSuch() throws {
        let executable = try careAgentExecutable()
        let scratch = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let state = scratch.appendingPathComponent("agent-state").path
        let fleet = try FleetProcess(executable: executable, devices: 1, in: scratch)
        let arguments = try fleet.collectArguments()
        let first = try run(executable, ["collect", "now", "--standalone"] + arguments + ["--state", state, "--out", scratch.appendingPathComponent("b1").path,
                                                                                        "--timeout", "60"], in: scratch)
        #expect(first.status == 0, "\(first.stderr)")
        fleet.stop()
        let second = try run(executable, ["collect", "now", "--standalone"] + arguments + ["--state", state, "--out", scratch.appendingPathComponent("b2").path,
                                                                                         "--timeout", "5"], in: scratch)
        #expect(second.status != 0)
        let conf = scratch.appendingPathComponent("agent.conf").path
        try "[agent]\nstate-directory = \(state)\noutbox = \(scratch.appendingPathComponent("empty").path)\n[reports]\ndata-directory = \(Self.dataDirectory)\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        let health = try run(executable, ["report", "health", "--config", conf, "--format", "json"], in: scratch)
        #expect(health.status == 0, "\(health.stderr)")
        let findings = try #require(try JSONSerialization.jsonObject(with: Data(health.stdout.utf8)) as? [[String: Any]])
        let collection = findings.filter { $0["check"] as? String == "collection" }
        #expect(collection.count == 1 && (collection.first?["message"] as? String)?.contains("what follows is from the collection of") == true, "\(findings)")
        #expect(findings.allSatisfy { $0["action"] != nil }, "every finding has its action field")
    }
}
