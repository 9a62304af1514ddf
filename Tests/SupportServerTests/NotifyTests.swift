import Foundation
import Junos
import Reports
@testable import SupportServer
import Testing
import TestSupport

/// `care-support notify`, the reports API and the per-customer HTML pages, on both stores.
@Suite(.serialized) struct NotifyTests {
    static let data = Fixtures.packageRoot.appendingPathComponent("data").path

    func notify(_ intake: IntakeHarness, _ extra: String...) throws -> [String: Any] {
        let output = try intake.cli(["notify", "--customer", "ACME", "--format", "json", "--data", Self.data] + extra)
        return try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
    }

    func items(_ notification: [String: Any]) -> [[String: Any]] { notification["items"] as? [[String: Any]] ?? [] }

    @Test(arguments: StoreKind.allCases)
    func eachItemIsToldOnceAndChangesAreToldAgain(store: StoreKind) async throws {
        let intake = try await IntakeHarness(database: try store.database())
        defer { intake.close() }
        try intake.start()
        try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        try SampleBundles.write(device: "r2", minutesAfter: 1, into: intake.outbox)
        #expect(await intake.pass().outcomes.count == 2)

        // A dry run shows and records nothing: the same items twice.
        let preview = try notify(intake, "--dry-run")
        #expect(preview["recorded"] as? Bool == false)
        let previewKeys = Set(items(preview).compactMap { $0["key"] as? String })
        #expect(Set(items(try notify(intake, "--dry-run")).compactMap { $0["key"] as? String }) == previewKeys)
        // 15.1F5 on an MX480: advisories hit it, and the 15.1 train is past end of support.
        #expect(items(preview).contains { $0["kind"] as? String == "bug" && ["exposed", "possibly-exposed"].contains($0["state"] as? String ?? "") })
        #expect(items(preview).contains { $0["kind"] as? String == "eol" && $0["state"] as? String == "past" })
        #expect(Set(items(preview).compactMap { $0["device"] as? String }) == ["r1", "r2"])
        #expect(items(preview).allSatisfy { $0["change"] as? String == "new" && $0["summary"] != nil })

        // The first real run tells them all and records them; the next one has nothing to tell.
        let first = try notify(intake)
        #expect(first["recorded"] as? Bool == true)
        #expect(Set(items(first).compactMap { $0["key"] as? String }) == previewKeys)
        let second = try notify(intake)
        #expect(second["recorded"] as? Bool == false)
        #expect(items(second).isEmpty)
        let text = try intake.cli("notify", "--customer", "ACME", "--data", Self.data)
        #expect(text.contains("nothing new since the last notification"), "\(text)")

        // r1 is upgraded: only r1's items change (some advisories resolved or new, the software
        // EOL item too); r2 has nothing new.
        try SampleBundles.write(device: "r1", minutesAfter: 120, into: intake.outbox, software: "get-software-information/pyez__vmx-16.1R1-single-re-wrapped.xml")
        #expect(await intake.pass().outcomes.count == 1)
        let third = try notify(intake)
        let changed = items(third)
        #expect(!changed.isEmpty)
        #expect(changed.allSatisfy { $0["device"] as? String == "r1" }, "\(changed)")
        #expect(changed.contains { $0["change"] as? String == "resolved" && $0["state"] as? String == "" && $0["previous"] != nil })
        // A resolved item was told before; a new one was not, or was resolved since.
        let told = Set(items(first).compactMap { $0["key"] as? String })
        for item in changed {
            let key = item["key"] as? String ?? ""
            switch item["change"] as? String {
            case "resolved", "changed": #expect(told.contains(key), "\(item)")
            default: #expect(!told.contains(key), "\(item)")
            }
        }

        // The history, through the API with a read token, newest first.
        let read = String(try intake.cli("token", "create", "ACME", "--read").split(separator: "\n").last!)
        let history = try intake.get("/customers/ACME/notifications", token: read)
        #expect(history.status == 200)
        let recorded = try JSONSerialization.jsonObject(with: history.body) as? [[String: Any]] ?? []
        #expect(recorded.compactMap { $0["id"] as? String } == [third["id"], first["id"]].compactMap { $0 as? String })
        #expect(recorded.allSatisfy { $0["recorded"] as? Bool == true })
        #expect(items(recorded[1]).count == items(first).count)
    }

    /// `[reports]` in support.conf: the EOL window and a bad key with its line.
    @Test func reportSettingsComeFromSupportConf() async throws {
        let intake = try await IntakeHarness(extraStore: "\n[reports]\ndata-directory = \(Self.data)\neol-window = 1200m\n")
        defer { intake.close() }
        try intake.start()
        // The MX480 capture with its release changed to 23.4R1 (end of support 2029-06-26 in the data).
        let software = intake.dir.path + "/software-23.4.xml"
        try String(decoding: try Fixtures.bytes(SampleBundles.mx480Software), as: UTF8.self)
            .replacingOccurrences(of: "15.1F5", with: "23.4R1").write(toFile: software, atomically: true, encoding: .utf8)
        try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox, software: software)
        #expect(await intake.pass().outcomes.count == 1)
        // No --data: [reports] data-directory; no --within: a 100-year window makes every dated,
        // not yet ended item "within".
        let output = try intake.cli("report", "eol", "--customer", "ACME", "--format", "json")
        let wide = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] ?? []
        let release = { (items: [[String: Any]]) in items.first { $0["kind"] as? String == "software" }?["status"] as? String }
        #expect(release(wide) == "within", "\(wide.prefix(1))")
        let narrow = try JSONSerialization.jsonObject(with: Data(try intake.cli("report", "eol", "--customer", "ACME", "--format", "json", "--within", "0m").utf8)) as? [[String: Any]] ?? []
        #expect(release(narrow) == "supported")

        try String(contentsOfFile: intake.configPath, encoding: .utf8).appending("cpu-warnin = 5\n").write(toFile: intake.configPath, atomically: true, encoding: .utf8)
        do {
            try intake.cli("devices")
            Issue.record("an unknown [reports] key was accepted")
        } catch {
            #expect("\(error)".contains("unknown key \"cpu-warnin\" in [reports]") && "\(error)".contains("support.conf:"), "\(error)")
        }
    }

    /// Item keys join their parts with `|`: a device named with one keeps its own items. `a|b`'s
    /// told item is resolved when `a|b` is reported on, and not when only `a` is.
    @Test func aDeviceNamedWithTheKeySeparatorKeepsItsOwnItems() {
        let bugs = BugReport(findings: [], deviceCount: 2, unaffectedCount: 0, dataWarnings: [], dataProblems: [], generated: Date())
        let key = "bug|\(CustomerNotification.keyPart("a|b"))|CVE-2024-0001"
        #expect(key == "bug|a%7Cb|CVE-2024-0001")
        let resolved = CustomerNotification.changes(current: [:], told: [key: "exposed"], devices: ["a|b"], bugs: bugs)
        #expect(resolved.map(\.device) == ["a|b"] && resolved.first?.summary == "CVE-2024-0001: no longer exposed", "\(resolved)")
        #expect(CustomerNotification.changes(current: [:], told: [key: "exposed"], devices: ["a"], bugs: bugs).isEmpty)
        #expect(CustomerNotification.keyPart("r1") == "r1" && CustomerNotification.keyPartText("50%25 used%7C") == "50% used|")
    }

    /// A core file is told once and stays until it is gone (it was told "cleared" the next day,
    /// when it turned from new to old); an alarm is not "cleared" when the alarm reply failed.
    @Test func healthItemsStayWhileTrueOrUnchecked() {
        let bugs = BugReport(findings: [], deviceCount: 1, unaffectedCount: 0, dataWarnings: [], dataProblems: [], generated: Date())
        let lifecycle = LifecycleReport(devices: [], data: ReferenceData(directory: URL(fileURLWithPath: "/nonexistent")))
        let day = Date(timeIntervalSince1970: 1_750_000_000)
        func snapshot(cores: [String], alarms: AlarmReport?, failedAlarms: Bool = false) -> DeviceSnapshot {
            var facts = DeviceFacts()
            facts.coreDumps = CoreDumpReport(sections: [.init(files: cores.map { .init(name: $0) })])
            facts.chassisAlarms = alarms
            var s = DeviceSnapshot(device: "r1", collected: day, facts: facts, source: "test")
            if failedAlarms { s.failedRPCs["get-alarm-information"] = "timeout" }
            return s
        }
        let alarm = AlarmReport(sections: [.init(alarms: [.init(alarmClass: "Major", description: "PEM 1 Not OK")])])
        let first = snapshot(cores: ["/var/crash/core-rpd.0"], alarms: alarm)
        let told = CustomerNotification.currentItems(bugs: bugs, lifecycle: lifecycle,
                                                     health: HealthReport(devices: [(first, nil)], now: day)).mapValues(\.state)
        #expect(told.keys.contains { $0.hasPrefix("health|r1|core-dump|") } && told.keys.contains { $0.hasPrefix("health|r1|alarm|") })
        // The next day: the same core (no longer new), and the alarm reply timed out.
        let second = snapshot(cores: ["/var/crash/core-rpd.0"], alarms: nil, failedAlarms: true)
        let health = HealthReport(devices: [(second, first)], now: day)
        let current = CustomerNotification.currentItems(bugs: bugs, lifecycle: lifecycle, health: health)
        let unchecked = Dictionary(grouping: health.findings.filter { $0.check == "not-collected" }, by: \.device).mapValues { Set($0.map(\.fact)) }
        let changes = CustomerNotification.changes(current: current, told: told, devices: ["r1"], bugs: bugs, unchecked: unchecked)
        #expect(!changes.contains { $0.change == .resolved }, "\(changes.map(\.summary))")
        #expect(changes.map(\.key).allSatisfy { $0.hasPrefix("health|r1|not-collected|") }, "\(changes.map(\.key))")
        // Without the unchecked facts the alarm would read as cleared: the guard is what keeps it.
        #expect(CustomerNotification.changes(current: current, told: told, devices: ["r1"], bugs: bugs).contains { $0.change == .resolved })
    }

    /// Items told by an earlier release stay the same items after an upgrade: a core file (its
    /// key carried the message), CPU (judged on another field now); a sensor temperature judged
    /// by Junos's own thresholds now is retired quietly, never told "cleared".
    @Test func itemsToldBeforeAnUpgradeStayTheirItems() {
        let bugs = BugReport(findings: [], deviceCount: 1, unaffectedCount: 0, dataWarnings: [], dataProblems: [], generated: Date())
        let lifecycle = LifecycleReport(devices: [], data: ReferenceData(directory: URL(fileURLWithPath: "/nonexistent")))
        let day = Date(timeIntervalSince1970: 1_750_000_000)
        var facts = DeviceFacts()
        facts.coreDumps = CoreDumpReport(sections: [.init(routingEngine: "re0", files: [.init(name: "/var/crash/core-rpd.0")])])
        var re = RoutingEngineStatus(section: nil, slot: 0)
        re.cpuIdlePercent = 50
        re.cpuIdle5MinutesPercent = 10
        facts.routingEngines = RoutingEngineReport(routingEngines: [re])
        let now = DeviceSnapshot(device: "r1", collected: day, facts: facts, source: "test")
        let current = CustomerNotification.currentItems(bugs: bugs, lifecycle: lifecycle, health: HealthReport(devices: [(now, nil)], now: day))
        let k = CustomerNotification.keyPart
        let told = [
            "health|r1|core-dump|coreDumps[re0]|\(k("/var/crash/core-rpd.0"))|\(k("new core file on re0: /var/crash/core-rpd.0"))": "warning",
            "health|r1|cpu|\(k("routingEngines[re0].cpuIdlePercent"))": "warning",
            "health|r1|temperature|\(k("environment.FPC 0 EA1_HMC0 Logic die"))": "critical",
        ]
        let changes = CustomerNotification.changes(current: current, told: told, devices: ["r1"], bugs: bugs)
        // The core file and the CPU (90% over 5 minutes: warning, as told) are the told items;
        // the hot sensor is not "cleared". Only the checks these facts lack are new.
        let others = changes.filter { !$0.key.contains("|not-collected|") }
        #expect(others.isEmpty, "\(others.map { "\($0.change) \($0.key)" })")
    }

    /// The reports as JSON under /api/v1 and as pages at /reports/CUSTOMER/ that a browser opens
    /// with the read token as password; Chromium renders the served page.
    @Test func reportsAreServedAsJSONAndAsPagesPerCustomer() async throws {
        let intake = try await IntakeHarness(extraStore: "\n[reports]\ndata-directory = \(Self.data)\n")
        defer { intake.close() }
        try intake.start()
        try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes.count == 1)
        let read = String(try intake.cli("token", "create", "ACME", "--read").split(separator: "\n").last!)

        let cliBugs = try JSONSerialization.jsonObject(with: Data(try intake.cli("report", "bugs", "--customer", "ACME", "--format", "json").utf8)) as? [[String: Any]] ?? []
        let apiBugs = try intake.get("/customers/ACME/reports/bugs", token: read)
        #expect(apiBugs.status == 200)
        let served = try JSONSerialization.jsonObject(with: apiBugs.body) as? [[String: Any]] ?? []
        #expect(!served.isEmpty)
        #expect(served.compactMap { $0["cve"] as? String } == cliBugs.compactMap { $0["cve"] as? String })
        #expect(try intake.get("/customers/ACME/reports/eol?within=2y", token: read).status == 200)
        #expect(try intake.get("/customers/ACME/reports/eol?within=soon", token: read).status == 400)
        #expect(try intake.get("/customers/ACME/reports/health", token: read).status == 200)
        let preview = try intake.get("/customers/ACME/notifications/preview", token: read)
        let previewObject = try JSONSerialization.jsonObject(with: preview.body) as? [String: Any]
        #expect(preview.status == 200 && previewObject?["recorded"] as? Bool == false)
        // The preview recorded nothing.
        #expect(try intake.get("/customers/ACME/notifications", token: read).body == Data("[]".utf8))
        // Kept while nothing it is computed from changes: the same answer, its id included.
        #expect(try intake.get("/customers/ACME/notifications/preview", token: read).body == preview.body)
        // A notification recorded (by the CLI, another process) changes what it compares against:
        // nothing is new any more.
        #expect(try notify(intake)["recorded"] as? Bool == true)
        let told = try intake.get("/customers/ACME/notifications/preview", token: read)
        let toldObject = try JSONSerialization.jsonObject(with: told.body) as? [String: Any]
        let toldItems = items(toldObject ?? [:]), previewItems = items(previewObject ?? [:])
        #expect(told.body != preview.body && toldItems.isEmpty && !previewItems.isEmpty)
        // A new bundle: computed again (two devices now).
        try SampleBundles.write(device: "r2", minutesAfter: 1, into: intake.outbox)
        #expect(await intake.pass().outcomes.count == 1)
        let grown = try JSONSerialization.jsonObject(with: try intake.get("/customers/ACME/notifications/preview", token: read).body) as? [String: Any]
        #expect(grown?["devices"] as? Int == 2 && toldObject?["devices"] as? Int == 1)
        #expect(try intake.get("/customers/ACME/reports/bugs", token: nil).status == 401)

        // The page: Basic authentication with the token as password; without it the browser is asked.
        let page = intake.dir.path + "/bugs.html"
        let base = "https://127.0.0.1:\(intake.port)/reports/ACME/"
        let headers = intake.dir.path + "/headers"
        let denied = try runProgram("/usr/bin/curl", ["-sS", "--cacert", intake.certificates.caCertificate, "-D", headers, "-o", "/dev/null",
                                                      "-w", "%{http_code}", base + "bugs.html"])
        #expect(denied == "401")
        #expect(try String(contentsOfFile: headers, encoding: .utf8).lowercased().contains("www-authenticate: basic"))
        let status = try runProgram("/usr/bin/curl", ["-sS", "--cacert", intake.certificates.caCertificate, "-u", "noc:\(read)", "-o", page,
                                                      "-D", headers, "-w", "%{http_code}", base + "bugs.html"])
        #expect(status == "200")
        // The page's one script is the one its CSP allows by hash (openssl computes it apart from
        // the server), and nothing inline otherwise: no 'unsafe-inline' for scripts.
        let policy = try #require(try String(contentsOfFile: headers, encoding: .utf8).split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix("content-security-policy:") })
        let pageText = try String(contentsOfFile: page, encoding: .utf8)
        let scripts = pageText.components(separatedBy: "<script>").dropFirst().map { $0.components(separatedBy: "</script>")[0] }
        #expect(scripts.count == 1)
        let script = intake.dir.path + "/script.js"
        try scripts[0].write(toFile: script, atomically: true, encoding: .utf8)
        let digest = try runProgram("/bin/sh", ["-c", "openssl dgst -sha256 -binary '\(script)' | base64"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(policy.contains("script-src 'sha256-\(digest)'") && !policy.contains("script-src 'unsafe-inline'"), "\(policy)")
        let index = try runProgram("/usr/bin/curl", ["-sS", "--cacert", intake.certificates.caCertificate, "-u", "noc:\(read)", base])
        #expect(index.contains("href=\"bugs.html\"") && index.contains("href=\"eol.html\""))
        // Without its slash the index is sent to it (its relative links would miss the customer).
        let slashless = try runProgram("/usr/bin/curl", ["-sS", "--cacert", intake.certificates.caCertificate, "-u", "noc:\(read)", "-D", "-",
                                                         "-o", "/dev/null", String(base.dropLast())]).lowercased()
        #expect(slashless.split(separator: "\r\n").first?.contains(" 308") == true && slashless.contains("location: ./acme/"), "\(slashless)")
        // Never a redirect elsewhere: `/reports/http:evil.example` is not a customer's name.
        let elsewhere = try runProgram("/usr/bin/curl", ["-sS", "--cacert", intake.certificates.caCertificate, "-D", "-", "-o", "/dev/null",
                                                         "https://127.0.0.1:\(intake.port)/reports/http:evil.example"]).lowercased()
        #expect(!elsewhere.contains("location:"), "\(elsewhere)")
        // Another customer's token on these pages: asked again, in this customer's realm.
        _ = try intake.cli("customer", "add", "BETA")
        // A name that differs only in case would be another customer a typo away: refused.
        do {
            try intake.cli("customer", "add", "beta")
            Issue.record("customer beta was added beside BETA")
        } catch {
            #expect("\(error)".contains("customer BETA exists: names that differ only in case are refused"), "\(error)")
        }
        let betaRead = String(try intake.cli("token", "create", "BETA", "--read").split(separator: "\n").last!)
        let wrong = try runProgram("/usr/bin/curl", ["-sS", "--cacert", intake.certificates.caCertificate, "-u", "noc:\(betaRead)", "-D", "-",
                                                     "-o", "/dev/null", base + "bugs.html"])
        #expect(wrong.split(separator: "\r\n").first?.contains(" 401") == true
                && wrong.contains("realm=\"care-support reports ACME\""), "\(wrong)")
        #expect(try intake.get("/customers/ACME/devices", token: betaRead).status == 403, "the API answers 403 as before")
        // Blanks around a bearer token are read as the upload path reads them.
        let spaced = try runProgram("/usr/bin/curl", ["-sS", "--cacert", intake.certificates.caCertificate, "-o", "/dev/null", "-w", "%{http_code}",
                                                      "-H", "Authorization: Bearer  \(read) ", "https://127.0.0.1:\(intake.port)/api/v1/customers/ACME/devices"])
        #expect(spaced == "200")
        let scratch = intake.dir.path + "/chromium"
        let dom = try runProgram("/usr/bin/chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(scratch)", "--dump-dom", "file://\(page)"])
        let firstCVE = try #require(served.first?["cve"] as? String)
        #expect(dom.contains("<table class=\"report\" id=\"bugs\">") && dom.contains(firstCVE))
        #expect(dom.contains("r1"))
    }
}
