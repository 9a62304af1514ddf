@testable import Agent
import Bundle
import Foundation
import Testing
import TestSupport

/// The agent's real uploader (libcurl, TLS verified against a test CA) against a real
/// `care-support serve` on loopback, with the store on SQLite (and PostgreSQL when `database`
/// names one).
/// The store behind an intake under test: the embedded default, or a database on the
/// PostgreSQL server the tests start.
enum StoreKind: String, CaseIterable, Sendable {
    case sqlite
    case postgres

    /// The `database =` value (nil: the SQLite default).
    func database() throws -> String? {
        switch self {
        case .sqlite: return nil
        case .postgres: return try PostgresHarness.shared.get().createDatabase()
        }
    }
}

@Suite(.serialized) struct IntakeTests {
    /// A device name with terminal escape sequences (it comes from the agent's inventory, or from
    /// a self-signed upload waiting for approval) is shown escaped by the listing commands.
    @Test func listingsEscapeWhatBundlesSay() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        let hostile = "r1\u{1B}[2J\u{1B}]0;owned\u{07}"
        _ = try SampleBundles.write(device: hostile, minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes.values.allSatisfy { $0 == .accepted(status: 201) })
        for command in [["bundles"], ["devices"]] {
            let out = try intake.cli(command)
            #expect(out.contains("r1\\e[2J\\e]0;owned\\x07"), "\(command): \(out)")
            #expect(!out.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(command)")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func queuedBundlesDrainOnceTheIntakeIsUpAndAreStoredOnce(store: StoreKind) async throws {
        let intake = try await IntakeHarness(database: try store.database())
        defer { intake.close() }
        let a = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        let b = try SampleBundles.write(device: "r2", minutesAfter: 1, into: intake.outbox)
        let c = try SampleBundles.write(device: "r1", minutesAfter: 60, into: intake.outbox)

        // The intake is down: the bundles stay queued.
        let down = await intake.pass()
        #expect(down.failed)
        #expect(intake.pending().count == 3)

        try intake.start()
        let pass = await intake.pass()
        #expect(pass.outcomes == [a.name: .accepted(status: 201), b.name: .accepted(status: 201), c.name: .accepted(status: 201)],
                "\(intake.serverLog)")
        #expect(intake.pending().isEmpty)

        // What the support side shows, by the contract's JSON fields.
        let bundles = try intake.json("bundles", "--customer", "ACME")
        #expect(bundles.compactMap { $0["id"] as? String }.sorted() == [a.id, b.id, c.id].map { $0.uuidString }.sorted())
        #expect(bundles.compactMap { $0["device"] as? String } == ["r1", "r2", "r1"])
        #expect(bundles.first?["collected"] as? String == "2025-11-25T03:00:00.250Z")
        let devices = try intake.json("devices", "--customer", "ACME")
        #expect(devices.compactMap { $0["device"] as? String } == ["r1", "r2"])
        let r1 = try #require(devices.first)
        #expect(r1["model"] as? String == "mx480")
        #expect((r1["serial"] as? String)?.isEmpty == false)
        #expect((r1["version"] as? String)?.hasPrefix("15.1F5") == true)
        #expect(r1["last_bundle"] as? String == "2025-11-25T03:00:00.250Z")
        #expect(r1["last_bundle_id"] as? String == c.id.uuidString)
        #expect(r1["last_result"] as? String == "1 of 3 RPCs failed: get-system-core-dumps")
        #expect(try intake.json("bundles", "--device", "r2").compactMap { $0["id"] as? String } == [b.id.uuidString])

        // The same reports as `care-agent report` (one library), over each device's latest stored
        // bundle, verified again against the customer's trusted keys.
        let data = Fixtures.packageRoot.appendingPathComponent("data").path
        func report(_ kind: String) throws -> [[String: Any]] {
            let text = try intake.cli("report", kind, "--customer", "ACME", "--format", "json", "--data", data)
            return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] ?? []
        }
        let eol = try report("eol")
        #expect(Set(eol.compactMap { $0["device"] as? String }) == ["r1", "r2"])
        #expect(eol.contains { $0["kind"] as? String == "software" && ($0["train"] as? String) == "15.1" }, "\(eol.prefix(2))")
        #expect(eol.contains { $0["kind"] as? String == "chassis" })
        let bugs = try report("bugs")
        #expect(!bugs.isEmpty)
        #expect(Set(bugs.compactMap { $0["device"] as? String }).isSubset(of: ["r1", "r2"]))
        #expect(bugs.allSatisfy { ($0["cve"] as? String)?.hasPrefix("CVE-") == true && $0["verdict"] != nil && $0["reason"] != nil })
        let health = try intake.cli("report", "health", "--customer", "ACME", "--format", "text", "--data", data)
        #expect(health.contains("r1") && health.contains("r2"), "\(health)")
        #expect(throws: (any Error).self) { try intake.cli("report", "bugs", "--customer", "NOBODY") }

        // bundle get gives back the very bytes the agent sent, which the bundle tools read.
        let copy = intake.dir.path + "/copy.tar.gz"
        try intake.cli("bundle", "get", a.id.uuidString.lowercased(), "-o", copy)
        #expect(FileManager.default.contents(atPath: copy) == a.bytes)
        let verified = try BundleReader().read(contentsOf: URL(fileURLWithPath: copy))
        #expect(verified.manifest.bundleId == a.id)
        // `id` is the bundle id exactly as the manifest writes it.
        let manifest = try JSONSerialization.jsonObject(with: Data(try #require(verified.member("manifest.json")))) as? [String: Any]
        #expect(bundles.contains { $0["id"] as? String == manifest?["bundleId"] as? String })

        // The same bundle again: 200, and nothing stored twice.
        try a.bytes.write(to: URL(fileURLWithPath: intake.outbox + "/" + a.name))
        let again = await intake.pass()
        #expect(again.outcomes == [a.name: .accepted(status: 200)])
        #expect(try intake.json("bundles", "--customer", "ACME").count == 3)
        let stored = try FileManager.default.subpathsOfDirectory(atPath: intake.storeDirectory + "/bundles").filter { $0.hasSuffix(".tar.gz") }
        #expect(stored.count == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: intake.storeDirectory + "/incoming") == [])
    }

    @Test(arguments: StoreKind.allCases)
    func brokenAndUntrustedBundlesAreRefusedWithReasons(store: StoreKind) async throws {
        let intake = try await IntakeHarness(database: try store.database())
        defer { intake.close() }
        try intake.start()
        let good = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        let tamperedName = "r1-tampered-20251125-020100.tar.gz"
        try SampleBundles.tampered(good.bytes).write(to: URL(fileURLWithPath: intake.outbox + "/" + tamperedName))
        let truncatedName = "r1-truncated-20251125-020200.tar.gz"
        try good.bytes.prefix(good.bytes.count / 2).write(to: URL(fileURLWithPath: intake.outbox + "/" + truncatedName))
        let junkName = "r1-junk-20251125-020300.tar.gz"
        try Data("not a bundle at all\n".utf8).write(to: URL(fileURLWithPath: intake.outbox + "/" + junkName))
        try FileManager.default.removeItem(atPath: intake.outbox + "/" + good.name)

        let pass = await intake.pass()
        guard case let .rejected(422, tampered)? = pass.outcomes[tamperedName] else {
            Issue.record("tampered: \(String(describing: pass.outcomes[tamperedName]))"); return
        }
        #expect(tampered.contains("tampered bundle: SHA-256 of facts.json does not match the manifest"))
        guard case let .rejected(422, truncated)? = pass.outcomes[truncatedName] else {
            Issue.record("truncated: \(String(describing: pass.outcomes[truncatedName]))"); return
        }
        #expect(truncated.contains("truncated") || truncated.contains("corrupt"), "\(truncated)")
        guard case let .rejected(422, junk)? = pass.outcomes[junkName] else {
            Issue.record("junk: \(String(describing: pass.outcomes[junkName]))"); return
        }
        #expect(junk.contains("not a bundle: the file is not gzip-compressed"))
        #expect(intake.rejected() == [tamperedName, truncatedName, junkName].sorted())

        // Signed by a key not trusted for ACME: 403, kept by the agent, sent once trusted.
        let stranger = try SampleBundles.write(device: "r9", minutesAfter: 5, into: intake.outbox, key: SampleBundles.strangerKey)
        let refused = await intake.pass()
        guard case let .failed(reason)? = refused.outcomes[stranger.name] else {
            Issue.record("untrusted: \(String(describing: refused.outcomes[stranger.name]))"); return
        }
        #expect(reason.contains("HTTP 403") && reason.contains("untrusted signer") && reason.contains(SampleBundles.strangerKey.publicKey.fingerprint))
        #expect(intake.pending() == [stranger.name])
        #expect(try intake.json("bundles", "--customer", "ACME").isEmpty)

        try intake.cli("agent", "trust", "ACME", "--key", SampleBundles.strangerKey.publicKey.base64)
        let trusted = await intake.pass()
        #expect(trusted.outcomes == [stranger.name: .accepted(status: 201)])
        // Revoked again: refused again.
        try intake.cli("agent", "revoke", "ACME", "--key", SampleBundles.strangerKey.publicKey.base64)
        let later = try SampleBundles.write(device: "r9", minutesAfter: 10, into: intake.outbox, key: SampleBundles.strangerKey)
        guard case let .failed(again)? = await intake.pass().outcomes[later.name] else {
            Issue.record("revoked key accepted"); return
        }
        #expect(again.contains("HTTP 403"))
    }

    /// enrollment = pending: an unknown key's valid bundle waits (403) until an engineer approves the key.
    @Test func unknownKeysWaitForApprovalWithEnrollment() async throws {
        let intake = try await IntakeHarness(extraServer: "enrollment = pending")
        defer { intake.close() }
        try intake.start()
        // A tampered bundle signed by an unknown key is not enrolled: it is refused for what it is.
        let tamperedName = "r8-tampered-20251125-020100.tar.gz"
        try SampleBundles.tampered(try SampleBundles.write(device: "r8", minutesAfter: 1, into: intake.dir.path + "/side", key: SampleBundles.otherKey).bytes)
            .write(to: URL(fileURLWithPath: intake.outbox + "/" + tamperedName))
        guard case .rejected(422, _)? = await intake.pass().outcomes[tamperedName] else {
            Issue.record("a tampered bundle of an unknown key was not refused with 422"); return
        }
        #expect(try intake.cli("agent", "pending", "ACME").isEmpty)

        let fingerprint = SampleBundles.strangerKey.publicKey.fingerprint
        let bundle = try SampleBundles.write(device: "r7", minutesAfter: 0, into: intake.outbox, key: SampleBundles.strangerKey)
        guard case let .failed(reason)? = await intake.pass().outcomes[bundle.name] else {
            Issue.record("an unknown key was accepted"); return
        }
        #expect(reason.contains("HTTP 403") && reason.contains("waits for approval") && reason.contains(fingerprint))
        let pending = try intake.cli("agent", "pending", "ACME")
        #expect(pending.contains("ACME  \(fingerprint)  agent agent-acme-1  device r7  1 upload(s)"))

        try intake.cli("agent", "approve", "ACME", fingerprint)
        // The tampered bundle, refused alone until now (nothing to tell a bundle's fault from a
        // server refusing everything), goes to rejected/ once the server takes another.
        let approved = await intake.pass()
        #expect(approved.outcomes[bundle.name] == .accepted(status: 201), "\(approved.outcomes)")
        #expect(intake.rejected() == [tamperedName])
        #expect(try intake.cli("agent", "pending", "ACME").isEmpty)

        // The key is ACME's now: another customer cannot be given it (its devices would be
        // filed, and reported on, under both).
        let base64 = SampleBundles.strangerKey.publicKey.base64
        try intake.cli("customer", "add", "OTHER")
        func failure(_ arguments: String...) -> String {
            do { _ = try intake.cli(arguments); return "no error" } catch { return "\(error)" }
        }
        #expect(failure("agent", "trust", "OTHER", "--key", base64).contains("\(fingerprint) is trusted for customer ACME"))

        // Revoked, its uploads are refused as revoked and never wait for approval again: one
        // approval of the pending list would have trusted it again.
        try intake.cli("agent", "revoke", "ACME", "--key", base64)
        let afterRevocation = try SampleBundles.write(device: "r7", minutesAfter: 5, into: intake.outbox, key: SampleBundles.strangerKey)
        guard case let .failed(refused)? = await intake.pass().outcomes[afterRevocation.name] else {
            Issue.record("a revoked key's bundle was not refused"); return
        }
        #expect(refused.contains("HTTP 403") && refused.contains("revoked signer") && !refused.contains("waits for approval"), "\(refused)")
        #expect(try intake.cli("agent", "pending", "ACME").isEmpty)
        #expect(failure("agent", "approve", "ACME", fingerprint).contains("no pending key"))
        // Trusted again by name, deliberately.
        try intake.cli("agent", "trust", "ACME", "--key", base64)
        #expect(await intake.pass().outcomes == [afterRevocation.name: .accepted(status: 201)])
    }

    @Test func aRevokedTokenGets401AndANewOneWorks() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        let first = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes == [first.name: .accepted(status: 201)])

        try intake.cli("token", "revoke", "ACME", intake.tokenId)
        let second = try SampleBundles.write(device: "r1", minutesAfter: 1, into: intake.outbox)
        guard case let .failed(reason)? = await intake.pass().outcomes[second.name] else {
            Issue.record("a revoked token was accepted"); return
        }
        #expect(reason.contains("HTTP 401") && reason.contains("no valid credentials"))
        #expect(!reason.contains(intake.token))
        #expect(intake.pending() == [second.name])

        let created = try intake.cli("token", "create", "ACME").split(separator: "\n")
        try (String(created.last!) + "\n").write(toFile: intake.upload.tokenFile!, atomically: true, encoding: .utf8)
        chmod(intake.upload.tokenFile!, 0o600)
        #expect(await intake.pass().outcomes == [second.name: .accepted(status: 201)])
        // The database keeps no token in clear.
        for file in ["support.db", "support.db-wal"] {
            let database = FileManager.default.contents(atPath: intake.storeDirectory + "/" + file) ?? Data()
            #expect(database.range(of: Data(created.last!.utf8)) == nil)
            #expect(database.range(of: Data(intake.token.utf8)) == nil)
        }
    }

    @Test func oversizedBodiesAreRefusedWith413AndNeverStored() async throws {
        let intake = try await IntakeHarness(extraServer: "max-bundle-size = 64k")
        defer { intake.close() }
        try intake.start()
        let name = "big-SN-20251125-020000.tar.gz"
        try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: URL(fileURLWithPath: intake.outbox + "/" + name))
        let pass = await intake.pass()
        guard case let .rejected(413, reason)? = pass.outcomes[name] else {
            Issue.record("oversized: \(String(describing: pass.outcomes[name]))"); return
        }
        #expect(reason.contains("too large") && reason.contains("65536"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: intake.storeDirectory + "/incoming") == [])
    }

    @Test func retentionDeletesOldBundlesAndTheirFilesButKeepsEachDevicesLatest() async throws {
        let intake = try await IntakeHarness(extraStore: "keep = 30d")
        defer { intake.close() }
        try intake.start()
        let old = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        let latest = try SampleBundles.write(device: "r1", minutesAfter: 60, into: intake.outbox)
        let lone = try SampleBundles.write(device: "r2", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes.values.allSatisfy { $0 == .accepted(status: 201) })
        #expect(intake.storedFiles().count == 3)
        // The sample bundles are from 2025: all past 30 days; each device keeps its latest.
        // Within the grace period the deleted bundle's file stays (an intake could be storing it again).
        #expect(try intake.cli("db", "prune").contains("ACME: deleted 1 bundle(s)"))
        #expect(intake.storedFiles().count == 3)
        let output = try intake.cli("db", "prune", "--grace", "0")
        #expect(!output.contains("deleted") && output.contains("removed 1 file(s)"))
        let ids = try intake.json("bundles", "--customer", "ACME").compactMap { $0["id"] as? String }
        #expect(Set(ids) == [latest.id.uuidString, lone.id.uuidString])
        #expect(intake.storedFiles().count == 2)
        _ = old
    }

    @Test func aStoppedIntakeKeepsWhatItStoredAndTheNextOneGoesOn() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        let first = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes == [first.name: .accepted(status: 201)])
        intake.stop(signal: SIGKILL)
        let second = try SampleBundles.write(device: "r1", minutesAfter: 1, into: intake.outbox)
        #expect(await intake.pass().failed)
        try intake.start()
        #expect(await intake.pass().outcomes == [second.name: .accepted(status: 201)])
        #expect(try intake.json("bundles", "--customer", "ACME").count == 2)
    }
}
