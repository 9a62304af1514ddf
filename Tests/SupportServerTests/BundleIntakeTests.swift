@testable import Bundle
import Foundation
import Reports
@testable import SupportServer
import SupportStore
import Testing
import TestSupport

/// BundleIntake without HTTP: what it answers for cases the agent's uploader never produces.
@Suite struct BundleIntakeTests {
    struct Bench {
        let dir: URL
        let intake: BundleIntake

        init() async throws {
            dir = try TestProfiles.temporaryDirectory()
            let database = try SQLiteSupportDatabase(path: dir.path + "/support.db")
            try await database.migrate()
            _ = try await database.addCustomer("ACME", at: Date())
            _ = try await database.trustKey(customer: "ACME", key: SampleBundles.agentKey.publicKey, at: Date())
            intake = BundleIntake(database: database, files: try BundleFileStore(directory: dir.path + "/store"),
                                  maxBundleSize: 1 << 20, logger: makeTestLogger())
        }

        func upload(_ bytes: [UInt8], claimed: String? = nil, customer: String = "ACME") async throws -> IntakeAnswer {
            let file = try intake.files.newIncomingFile()
            defer { file.discard() }
            try bytes.withUnsafeBytes { try file.write($0) }
            let sha = try file.finish()
            return await intake.accept(file, sha256: sha, name: "r1-SN-20251125-020000.tar.gz", customer: customer, claimedSHA256: claimed)
        }
    }

    /// A report reads each device's newest few bundles, not its history: with its key revoked,
    /// a device's 10 stored bundles cost 6 reads per report (every one of them, before), each
    /// named as refused; another device's bundles are used.
    @Test func aReportReadsEachDevicesNewestFewBundles() async throws {
        let bench = try await Bench()
        defer { try? FileManager.default.removeItem(at: bench.dir) }
        let database = bench.intake.database
        _ = try await database.trustKey(customer: "ACME", key: SampleBundles.strangerKey.publicKey, at: Date())
        for minute in 0 ..< 10 {
            let contents = try SampleBundles.contents(device: "r1", started: SampleBundles.started.addingTimeInterval(Double(minute) * 60))
            #expect(try await bench.upload(try BundleWriter.encode(contents, key: SampleBundles.strangerKey)).status == 201)
        }
        let other = try SampleBundles.contents(device: "r2", started: SampleBundles.started)
        #expect(try await bench.upload(try BundleWriter.encode(other, key: SampleBundles.agentKey)).status == 201)
        _ = try await database.revokeKey(customer: "ACME", key: SampleBundles.strangerKey.publicKey, at: Date())
        let reports = CustomerReports(database: database, files: bench.intake.files, data: ReferenceData(directory: bench.dir),
                                      settings: SupportConfiguration.ReportSettings())
        let devices = try await reports.devices(customer: "ACME")
        #expect(devices.refused.count == CustomerReports.bundlesReadPerDevice)
        #expect(devices.refused.allSatisfy { $0.contains("(r1): refused: untrusted signer") }, "\(devices.refused)")
        #expect(devices.latest.count == 1)
    }

    /// A served report is computed once for the same bundles, keys and day; a new bundle, a key
    /// revoked, another report or another day computes it again, with what changed in it.
    @Test func aServedReportIsComputedAgainOnlyWhenItsInputsChange() async throws {
        let bench = try await Bench()
        defer { try? FileManager.default.removeItem(at: bench.dir) }
        let database = bench.intake.database
        let first = try SampleBundles.contents(device: "r1", started: SampleBundles.started)
        #expect(try await bench.upload(try BundleWriter.encode(first, key: SampleBundles.agentKey)).status == 201)
        let reports = CustomerReports(database: database, files: bench.intake.files, data: ReferenceData(directory: bench.dir),
                                      settings: SupportConfiguration.ReportSettings())
        let now = Date()
        @Sendable func devices(_ d: CustomerReports.Devices) -> String { d.latest.map(\.device).sorted().joined(separator: ",") + "|\(d.refused.count)" }
        func served(_ report: String = "names", at date: Date = now) async throws -> String {
            try await reports.served(customer: "ACME", report: report, readsConfiguration: false, now: date, render: devices)
        }
        #expect(try await served() == "r1|0")
        #expect(try await served() == "r1|0")
        #expect(await reports.rendered.computed == 1)
        // Identical requests together: one computation.
        async let a = served(), b = served(), c = served()
        #expect(try await [a, b, c] == ["r1|0", "r1|0", "r1|0"])
        #expect(await reports.rendered.computed == 1)

        let second = try SampleBundles.contents(device: "r2", started: SampleBundles.started)
        #expect(try await bench.upload(try BundleWriter.encode(second, key: SampleBundles.agentKey)).status == 201)
        // The new bundle's stored file cannot be read for a moment: answers without it are not kept.
        let stored = try #require(try await database.bundles(customer: "ACME", device: "r2").first)
        let file = bench.intake.files.path(sha256: stored.fileSHA256)
        try FileManager.default.moveItem(atPath: file, toPath: file + ".away")
        #expect(try await served() == "r1|1")
        #expect(try await served() == "r1|1")
        #expect(await reports.rendered.computed == 3)
        try FileManager.default.moveItem(atPath: file + ".away", toPath: file)
        #expect(try await served() == "r1,r2|0")
        #expect(try await served() == "r1,r2|0")
        #expect(await reports.rendered.computed == 4)
        _ = try await database.revokeKey(customer: "ACME", key: SampleBundles.agentKey.publicKey, at: Date())
        #expect(try await served() == "|2")
        #expect(await reports.rendered.computed == 5)
        _ = try await served("other")
        _ = try await served(at: now.addingTimeInterval(86400))
        #expect(await reports.rendered.computed == 7)
    }

    /// The answers kept stay within their count and bytes, the least recently used going first;
    /// one larger than all the bytes allowed is served but not kept.
    @Test func renderedAnswersStayWithinTheirLimits() async throws {
        let kept = RenderedReports(capacity: 3, maximumBytes: 1000)
        func answer(_ key: String, _ size: Int) async throws -> String {
            try await kept.answer(for: key, inputs: "1") { (String(repeating: "x", count: size), keep: true) }
        }
        _ = try await answer("a", 400)
        _ = try await answer("b", 400)
        _ = try await answer("a", 400)
        #expect(await kept.computed == 2)
        // 1,200 bytes: b (least recently used) goes.
        _ = try await answer("c", 400)
        #expect(await kept.keptCount == 2)
        _ = try await answer("a", 400)
        #expect(await kept.computed == 3, "a was kept")
        _ = try await answer("b", 400)
        #expect(await kept.computed == 4, "b was not")
        // Too large to keep at all; the others stay.
        #expect(try await answer("huge", 5000).count == 5000)
        #expect(await kept.keptCount == 2)
        _ = try await answer("huge", 5000)
        #expect(await kept.computed == 6)
        // By count: three at most.
        let many = RenderedReports(capacity: 3, maximumBytes: 1 << 20)
        for key in ["a", "b", "c", "d"] { _ = try await many.answer(for: key, inputs: "1") { ("x", keep: true) } }
        #expect(await many.keptCount == 3)
    }

    /// A refused bundle's device name with control characters is escaped once in the text
    /// notification (it was escaped when listed and again when printed: `\\e`), and kept as it is
    /// in JSON, where the encoder escapes it.
    @Test func refusedBundlesAreEscapedOnceForTheTerminal() async throws {
        let bench = try await Bench()
        defer { try? FileManager.default.removeItem(at: bench.dir) }
        let database = bench.intake.database
        let contents = try SampleBundles.contents(device: "r1\u{1B}[31m", started: SampleBundles.started)
        #expect(try await bench.upload(try BundleWriter.encode(contents, key: SampleBundles.agentKey)).status == 201)
        _ = try await database.revokeKey(customer: "ACME", key: SampleBundles.agentKey.publicKey, at: Date())
        let reports = CustomerReports(database: database, files: bench.intake.files, data: ReferenceData(directory: bench.dir),
                                      settings: SupportConfiguration.ReportSettings())
        let notification = try await CustomerNotification.make(customer: "ACME", reports: reports, dryRun: true)
        let text = notification.text()
        #expect(text.contains("(r1\\e[31m): refused") && !text.contains("\\\\e") && !text.contains("\u{1B}"), "\(text)")
        #expect(notification.refused.first?.contains("(r1\u{1B}[31m)") == true)
    }

    @Test func aDigestHeaderThatDisagreesIsABadRequest() async throws {
        let bench = try await Bench()
        defer { try? FileManager.default.removeItem(at: bench.dir) }
        let bytes = try BundleWriter.encode(try SampleBundles.contents(device: "r1", started: SampleBundles.started), key: SampleBundles.agentKey)
        let answer = try await bench.upload(bytes, claimed: String(repeating: "0", count: 64))
        #expect(answer.status == 400 && answer.reason.contains("damaged or cut short in transit"))
        #expect(try await bench.intake.database.bundles(customer: "ACME", device: nil).isEmpty)
    }

    /// An agent whose clock runs ahead: its bundle counts as collected when received, so that it
    /// neither stays the device's latest for good nor escapes retention.
    @Test func aBundleDatedInTheFutureCountsAsCollectedWhenReceived() async throws {
        let bench = try await Bench()
        defer { try? FileManager.default.removeItem(at: bench.dir) }
        let ahead = Date().addingTimeInterval(86_400 * 365 * 70)
        let answer = try await bench.upload(try BundleWriter.encode(try SampleBundles.contents(device: "r1", started: ahead), key: SampleBundles.agentKey))
        #expect(answer.status == 201)
        let stored = try #require(try await bench.intake.database.bundles(customer: "ACME", device: nil).first)
        #expect(stored.collected <= Date() && stored.collected == stored.received, "\(stored.collected)")
        // A bundle a little ahead (clocks drift) keeps its own time.
        let drift = Date().addingTimeInterval(60)
        #expect(try await bench.upload(try BundleWriter.encode(try SampleBundles.contents(device: "r2", started: drift), key: SampleBundles.agentKey)).status == 201)
        let r2 = try #require(try await bench.intake.database.bundles(customer: "ACME", device: "r2").first)
        #expect(abs(r2.collected.timeIntervalSince(drift)) < 1)
    }

    /// The one line an upload is answered with stays one line without terminal escapes, whatever
    /// the bundle's device is called.
    @Test func theAnswerLineEscapesWhatTheBundleSays() {
        let body = IntakeServer.line("stored bundle X of r1\n2026-12-06 notice forged\u{1B}]0;pwn\u{07}")
        #expect(body == "stored bundle X of r1\\n2026-12-06 notice forged\\e]0;pwn\\x07\n", "\(body)")
    }

    @Test func theSameIdWithOtherBytesIs409AndNotStored() async throws {
        let bench = try await Bench()
        defer { try? FileManager.default.removeItem(at: bench.dir) }
        var contents = try SampleBundles.contents(device: "r1", started: SampleBundles.started)
        let first = try BundleWriter.encode(contents, key: SampleBundles.agentKey)
        contents.log = "a different log\n"
        let second = try BundleWriter.encode(contents, key: SampleBundles.agentKey)
        #expect(try await bench.upload(first).status == 201)
        #expect(try await bench.upload(first).status == 200)
        let conflict = try await bench.upload(second)
        #expect(conflict.status == 409 && conflict.reason.contains("bundle id \(contents.bundleId) cannot be stored: the id is taken"))
        #expect(try await bench.intake.database.bundles(customer: "ACME", device: nil).map(\.fileSHA256).count == 1)
        // An event bundle under the taken id is refused the same way and opens no case: the
        // case would have told of an incident nobody stored, under another bundle's id.
        contents.trigger = .event
        contents.event = TriggerEvent(kind: "core-dump", source: "health-poll", time: SampleBundles.started, evidence: "forged")
        let forged = try await bench.upload(try BundleWriter.encode(contents, key: SampleBundles.agentKey))
        #expect(forged.status == 409)
        #expect(try await bench.intake.database.cases(customer: "ACME", includeClosed: true).isEmpty)
    }

    /// The same bytes again are answered from the stored row, not verified again: with the
    /// signer revoked since, they are still "stored already" (a new bundle of that signer is
    /// refused, so the answer cannot have come from verification); another customer's upload of
    /// the same bytes is verified (and refused: it does not trust the key).
    @Test func theSameBytesAgainAreAnsweredWithoutVerifyingThemAgain() async throws {
        let bench = try await Bench()
        defer { try? FileManager.default.removeItem(at: bench.dir) }
        let bytes = try BundleWriter.encode(try SampleBundles.contents(device: "r1", started: SampleBundles.started), key: SampleBundles.agentKey)
        #expect(try await bench.upload(bytes).status == 201)
        _ = try await bench.intake.database.revokeKey(customer: "ACME", key: SampleBundles.agentKey.publicKey, at: Date())
        let again = try await bench.upload(bytes)
        #expect(again.status == 200 && again.reason.contains("is stored already"), "\(again)")
        let fresh = try BundleWriter.encode(try SampleBundles.contents(device: "r1", started: SampleBundles.started.addingTimeInterval(60)),
                                            key: SampleBundles.agentKey)
        #expect(try await bench.upload(fresh).status == 403)
        _ = try await bench.intake.database.addCustomer("BETA", at: Date())
        #expect(try await bench.upload(bytes, customer: "BETA").status == 403)
        #expect(try await bench.intake.database.bundles(customer: nil, device: nil).count == 1)
    }

    @Test func aManifestDisagreeingWithItsFactsIsRefused() async throws {
        let bench = try await Bench()
        defer { try? FileManager.default.removeItem(at: bench.dir) }
        var contents = try SampleBundles.contents(device: "r1", started: SampleBundles.started)
        contents.device.chassisSerial = "NOT-THE-SERIAL"
        let answer = try await bench.upload(try BundleWriter.encode(contents, key: SampleBundles.agentKey))
        #expect(answer.status == 422 && answer.reason.contains("the manifest says chassis serial NOT-THE-SERIAL"))
    }

    @Test func theVerificationGateAdmitsAtMostItsLimit() async {
        let gate = ConcurrencyGate(limit: 2)
        actor Count {
            var now = 0, most = 0
            func up() { now += 1; most = max(most, now) }
            func down() { now -= 1 }
        }
        let count = Count()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    await gate.enter()
                    await count.up()
                    try? await Task.sleep(for: .milliseconds(20))
                    await count.down()
                    await gate.leave()
                }
            }
        }
        #expect(await count.most == 2)
    }

    /// One customer's burst waits behind its own: customers take turns at the verification gate.
    @Test func customersTakeTurnsAtTheVerificationGate() async throws {
        let gate = ConcurrencyGate(limit: 1)
        actor Order {
            var admitted: [String] = []
            func add(_ name: String) { admitted.append(name) }
        }
        let order = Order()
        await gate.enter(customer: "first")
        try await withThrowingTaskGroup(of: Void.self) { group in
            // ACME queues five, then BETA one, then ACME one more, each in turn.
            for (index, customer) in ["ACME", "ACME", "ACME", "ACME", "ACME", "BETA", "ACME", "GAMMA"].enumerated() {
                group.addTask {
                    await gate.enter(customer: customer)
                    await order.add("\(customer)\(index)")
                    await gate.leave()
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            await gate.leave()
            try await group.waitForAll()
        }
        #expect(await order.admitted == ["ACME0", "BETA5", "GAMMA7", "ACME1", "ACME2", "ACME3", "ACME4", "ACME6"])
    }
}
