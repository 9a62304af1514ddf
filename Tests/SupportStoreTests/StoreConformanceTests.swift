import Bundle
import Foundation
import Junos
import SupportStore
import Testing
import TestSupport

/// The databases the conformance suite runs against.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// A fresh, migrated database and a second handle on the same one (another intake process).
    func make() async throws -> (any SupportDatabase, any SupportDatabase, cleanup: @Sendable () -> Void) {
        switch self {
        case .sqlite:
            let dir = try TestProfiles.temporaryDirectory()
            let path = dir.appendingPathComponent("support.db").path
            let first = try SQLiteSupportDatabase(path: path)
            try await first.migrate()
            return (first, try SQLiteSupportDatabase(path: path), { try? FileManager.default.removeItem(at: dir) })
        case .postgres:
            let harness = try PostgresHarness.shared.get()
            let url = try harness.createDatabase()
            let first = try await DatabaseLocation(url).open()
            try await first.migrate()
            return (first, try await DatabaseLocation(url).open(), {})
        }
    }
}

func key(_ byte: UInt8) -> AgentPublicKey {
    try! AgentKey(rawRepresentation: [UInt8](repeating: byte, count: 32)).publicKey
}

/// A bundle record as the intake would make it.
func record(customer: String = "ACME", device: String = "r1", collected: Date, id: UUID = UUID(),
            sha: String = String(repeating: "a", count: 64)) -> StoredBundle {
    StoredBundle(
        id: id, customer: customer, agent: "agent-1", agentVersion: "0.1.0", signer: key(7).fingerprint, device: device,
        address: "192.0.2.1:830", hostname: device + ".example.net", model: "mx480", serial: "SN-\(device)",
        version: "21.4R3-S5", releases: ["21.4R3-S5"], trigger: "scheduled", collected: collected,
        finished: collected.addingTimeInterval(30), received: Date(),
        failedRPCs: ["get-system-core-dumps"], rpcCount: 9,
        outcomes: [RPCOutcome(rpc: "get-system-core-dumps", status: .timeout, message: "no reply", durationSeconds: 60)],
        frus: try! JSONDecoder().decode([FieldReplaceableUnit].self, from: Data("""
            [{"path": "FPC 0", "depth": 1, "version": "REV 10", "partNumber": "750-1", "serialNumber": "CAB1", "description": "MPC7E"}]
            """.utf8)),
        fileSHA256: sha, fileSize: 1234, fileName: "\(device)-SN-20261204-000000.tar.gz")
}

/// One suite, run against SQLite and against a real PostgreSQL server the test starts.
@Suite struct StoreConformanceTests {
    let t0 = Date(timeIntervalSince1970: 1_764_036_000.25)

    @Test(arguments: Backend.allCases)
    func migrationsAreVersionedAndAppliedOnce(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        #expect(try await db.schemaVersion() == 8)
        #expect(try await db.migrate() == [])
        #expect(try await other.migrate() == [])
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func customersAreUniqueAndNamesChecked(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("beta-net", at: t0)
        await #expect(throws: SupportStoreError.customerExists("ACME")) { _ = try await other.addCustomer("ACME", at: t0) }
        await #expect(throws: SupportStoreError.self) { _ = try await db.addCustomer("../etc", at: t0) }
        #expect(try await other.customers().map(\.name) == ["ACME", "beta-net"])
        #expect(try await db.customer(named: "ACME")?.created == t0)
        #expect(try await db.customer(named: "nobody") == nil)
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func tokensAreFoundByHashUntilRevoked(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        let (id, token) = UploadToken.generate()
        #expect(token.hasPrefix(id + ".") && token.count > 40)
        try await db.addToken(customer: "ACME", id: id, hash: UploadToken.hash(token), scope: .upload, at: t0)
        let (readId, readToken) = UploadToken.generate()
        try await db.addToken(customer: "ACME", id: readId, hash: UploadToken.hash(readToken), scope: .read, at: t0)
        #expect(try await other.customer(forTokenHash: UploadToken.hash(token), scope: .upload) == "ACME")
        #expect(try await other.customer(forTokenHash: UploadToken.hash(token), scope: .read) == nil)
        #expect(try await other.customer(forTokenHash: UploadToken.hash(readToken), scope: .read) == "ACME")
        #expect(try await other.customer(forTokenHash: UploadToken.hash(readToken), scope: .upload) == nil)
        #expect(try await other.customer(forTokenHash: UploadToken.hash(token + "x"), scope: .upload) == nil)
        #expect(try await db.revokeToken(customer: "ACME", id: id, at: t0) == true)
        #expect(try await db.revokeToken(customer: "ACME", id: id, at: t0) == false)
        #expect(try await other.customer(forTokenHash: UploadToken.hash(token), scope: .upload) == nil)
        let listed = try await db.tokens(customer: "ACME")
        #expect(Set(listed.map(\.id)) == [id, readId])
        #expect(listed.first { $0.id == id }?.revoked != nil && listed.first { $0.id == readId }?.scope == .read)
        await #expect(throws: SupportStoreError.unknownCustomer("nobody")) {
            try await db.addToken(customer: "nobody", id: "x", hash: "y", scope: .upload, at: t0)
        }
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func keysAreTrustedPerCustomerAndRevocable(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        #expect(try await db.trustKey(customer: "ACME", key: key(1), at: t0) == true)
        #expect(try await other.trustKey(customer: "ACME", key: key(1), at: t0) == false)
        #expect(try await db.trustKey(customer: "ACME", key: key(2), at: t0) == true)
        #expect(try await db.trustedKeys(customer: "ACME") == [key(1), key(2)])
        #expect(try await db.trustedKeys(customer: "BETA") == [])
        #expect(try await db.revokeKey(customer: "ACME", key: key(1), at: t0) == true)
        #expect(try await db.revokeKey(customer: "ACME", key: key(1), at: t0) == false)
        #expect(try await other.trustedKeys(customer: "ACME") == [key(2)])
        #expect(try await db.trustKey(customer: "ACME", key: key(1), at: t0) == true)
        #expect(try await db.trustedKeys(customer: "ACME") == [key(1), key(2)])
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func pendingKeysCountUploadsAndTrustingClearsThem(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        try await db.recordPending(customer: "ACME", key: key(3), agent: "agent-1", device: "r1", at: t0)
        try await other.recordPending(customer: "ACME", key: key(3), agent: "agent-1", device: "r2", at: t0.addingTimeInterval(60))
        try await other.recordPending(customer: "BETA", key: key(4), agent: "agent-9", device: "x", at: t0)
        let acme = try await db.pendingKeys(customer: "ACME")
        #expect(acme == [PendingKeyRecord(customer: "ACME", key: key(3), agent: "agent-1", device: "r2", firstSeen: t0,
                                          lastSeen: t0.addingTimeInterval(60), uploads: 2)])
        #expect(try await db.pendingKeys(customer: nil).map(\.customer) == ["ACME", "BETA"])
        #expect(try await other.trustKey(customer: "ACME", key: key(3), at: t0) == true)
        #expect(try await db.pendingKeys(customer: "ACME") == [])
        #expect(try await db.trustedKeys(customer: "ACME") == [key(3)])
        await db.close(); await other.close()
    }

    /// A customer's token cannot grow the pending list without bound: the least recently seen
    /// keys go, a key still uploading stays, other customers' keys are untouched.
    @Test(arguments: Backend.allCases)
    func pendingKeysAreBoundedPerCustomer(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        try await db.recordPending(customer: "BETA", key: key(200), agent: "b", device: "x", at: t0)
        let limit = PendingKeyRecord.limitPerCustomer
        var dropped: [[String]] = []
        for n in 0..<(limit + 6) {
            dropped.append(try await db.recordPending(customer: "ACME", key: key(UInt8(10 + n)), agent: "a", device: "r\(n)",
                                                      at: t0.addingTimeInterval(Double(n))))
            if n == limit - 1 {
                // The first key uploads again before the list is full: now among the most
                // recently seen, it stays.
                dropped.append(try await other.recordPending(customer: "ACME", key: key(10), agent: "a", device: "r0",
                                                             at: t0.addingTimeInterval(Double(n) + 0.5)))
            }
        }
        #expect(dropped == Array(repeating: [], count: limit + 1) + (11...16).map { [key(UInt8($0)).fingerprint] })
        let kept = Set(try await other.pendingKeys(customer: "ACME").map(\.key))
        #expect(kept.count == limit)
        #expect(kept.contains(key(10)))
        #expect((11...16).allSatisfy { !kept.contains(key(UInt8($0))) })
        #expect(kept.contains(key(17)))
        #expect(kept.contains(key(UInt8(10 + limit + 5))))
        #expect(try await db.pendingKeys(customer: "BETA").map(\.key) == [key(200)])
        // The key just recorded stays even when every other was seen later (a clock stepped
        // back): its upload was told it waits for approval.
        let late = try await db.recordPending(customer: "ACME", key: key(250), agent: "a", device: "late", at: t0.addingTimeInterval(-3600))
        #expect(late.count == 1)
        #expect(try await other.pendingKeys(customer: "ACME").contains { $0.key == key(250) })
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func clientSubjectsNameOneCustomerAndAreRevocable(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        let subject = "CN=agent-1,O=ACME"
        #expect(try await db.allowSubject(customer: "ACME", subject: subject, at: t0) == true)
        #expect(try await other.allowSubject(customer: "ACME", subject: subject, at: t0) == false)
        await #expect(throws: SupportStoreError.invalid("client subject \(subject) belongs to customer ACME")) {
            _ = try await other.allowSubject(customer: "BETA", subject: subject, at: t0)
        }
        #expect(try await other.clientAccess(forSubject: subject)?.customer == "ACME")
        #expect(try await other.clientAccess(forSubject: "CN=agent-1") == nil)
        #expect(try await db.revokeSubject(customer: "ACME", subject: subject, at: t0) == true)
        #expect(try await db.revokeSubject(customer: "ACME", subject: subject, at: t0) == false)
        #expect(try await other.clientAccess(forSubject: subject) == nil)
        #expect(try await db.subjects(customer: "ACME").map(\.subject) == [subject])
        #expect(try await db.allowSubject(customer: "ACME", subject: subject, at: t0) == true)
        #expect(try await other.clientAccess(forSubject: subject)?.customer == "ACME")
        // Pinned to a public key; pinned again to the same: nothing to change; to another: changed;
        // allowed again without saying: still pinned; unpinned only when asked.
        let pin = ClientAccess.pin(subjectPublicKeyInfo: Data("spki-1".utf8)), rotated = ClientAccess.pin(subjectPublicKeyInfo: Data("spki-2".utf8))
        #expect(ClientAccess.normalizedPin(pin) == pin && ClientAccess.normalizedPin("sha256//short") == nil && ClientAccess.normalizedPin("CN=x") == nil)
        #expect(try await db.allowSubject(customer: "ACME", subject: subject, pin: .key(pin), at: t0) == true)
        #expect(try await other.clientAccess(forSubject: subject) == ClientAccess(customer: "ACME", publicKeySHA256: pin))
        #expect(try await other.allowSubject(customer: "ACME", subject: subject, pin: .key(pin), at: t0) == false)
        #expect(try await other.allowSubject(customer: "ACME", subject: subject, pin: .key(rotated), at: t0) == true)
        #expect(try await db.subjects(customer: "ACME").map(\.publicKeySHA256) == [rotated])
        #expect(try await db.allowSubject(customer: "ACME", subject: subject, at: t0) == false)
        #expect(try await db.revokeSubject(customer: "ACME", subject: subject, at: t0) == true)
        #expect(try await db.allowSubject(customer: "ACME", subject: subject, at: t0) == true)
        #expect(try await other.clientAccess(forSubject: subject) == ClientAccess(customer: "ACME", publicKeySHA256: rotated), "still pinned")
        #expect(try await db.allowSubject(customer: "ACME", subject: subject, pin: .anyKey, at: t0) == true)
        #expect(try await other.clientAccess(forSubject: subject) == ClientAccess(customer: "ACME", publicKeySHA256: nil))
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func bundlesReadBackAsStoredAndDuplicatesAreNotStoredTwice(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        let first = record(collected: t0)
        #expect(try await db.insert(first) == .inserted)
        #expect(try await other.insert(first) == .duplicate(existing: first))
        var changed = first
        changed.fileSHA256 = String(repeating: "b", count: 64)
        #expect(try await db.insert(changed) == .duplicate(existing: first))
        #expect(try await other.bundle(id: first.id) == first)
        #expect(try await db.bundle(id: UUID()) == nil)
        // Found by its file for its customer only.
        _ = try await db.addCustomer("BETA", at: t0)
        #expect(try await other.bundle(customer: "ACME", fileSHA256: first.fileSHA256) == first)
        #expect(try await db.bundle(customer: "BETA", fileSHA256: first.fileSHA256) == nil)
        #expect(try await db.bundle(customer: "ACME", fileSHA256: changed.fileSHA256) == nil)
        await #expect(throws: SupportStoreError.unknownCustomer("nobody")) {
            _ = try await db.insert(record(customer: "nobody", collected: t0))
        }
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func listsFilterAndDevicesShowTheLatestBundle(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        let old = record(device: "r1", collected: t0)
        var new = record(device: "r1", collected: t0.addingTimeInterval(3600))
        new.version = "22.4R3"
        new.failedRPCs = []
        let r2 = record(device: "r2", collected: t0.addingTimeInterval(60))
        let beta = record(customer: "BETA", device: "r1", collected: t0.addingTimeInterval(7200))
        for bundle in [old, r2, new, beta] { #expect(try await db.insert(bundle) == .inserted) }

        #expect(try await other.bundles(customer: "ACME", device: nil).map(\.id) == [new.id, r2.id, old.id])
        #expect(try await other.bundles(customer: "ACME", device: "r1").map(\.id) == [new.id, old.id])
        #expect(try await other.bundles(customer: nil, device: "r1").map(\.id) == [beta.id, new.id, old.id])
        let devices = try await other.devices(customer: "ACME")
        #expect(devices.map(\.latest.device) == ["r1", "r2"])
        #expect(devices[0].latest == new && devices[0].bundleCount == 2 && devices[0].latest.result == "ok")
        #expect(devices[1].latest == r2 && devices[1].bundleCount == 1)
        #expect(devices[1].latest.result == "1 of 9 RPCs failed: get-system-core-dumps")
        #expect(try await other.devices(customer: nil).map { "\($0.customer)/\($0.latest.device)" } == ["ACME/r1", "ACME/r2", "BETA/r1"])
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func pruningDeletesOldBundlesButNeverADevicesLatest(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        let day = 86400.0
        let oldest = record(device: "r1", collected: t0, sha: String(repeating: "1", count: 64))
        let older = record(device: "r1", collected: t0.addingTimeInterval(day), sha: String(repeating: "2", count: 64))
        let recent = record(device: "r1", collected: t0.addingTimeInterval(10 * day), sha: String(repeating: "3", count: 64))
        let lone = record(device: "r2", collected: t0, sha: String(repeating: "4", count: 64))
        let beta = record(customer: "BETA", device: "r1", collected: t0, sha: String(repeating: "5", count: 64))
        let betaNewer = record(customer: "BETA", device: "r1", collected: t0.addingTimeInterval(day), sha: String(repeating: "6", count: 64))
        for bundle in [oldest, older, recent, lone, beta, betaNewer] { _ = try await db.insert(bundle) }

        let deleted = try await other.prune(customer: "ACME", before: t0.addingTimeInterval(5 * day))
        #expect(Set(deleted.map(\.id)) == [oldest.id, older.id])
        #expect(try await db.bundles(customer: "ACME", device: nil).map(\.id) == [recent.id, lone.id])
        #expect(try await db.bundles(customer: "BETA", device: nil).count == 2)
        #expect(try await db.isReferenced(sha256: oldest.fileSHA256) == false)
        #expect(try await db.isReferenced(sha256: recent.fileSHA256) == true)
        #expect(try await other.prune(customer: "ACME", before: t0.addingTimeInterval(5 * day)) == [])
        // In batches of one: BETA's older bundle in the first, an empty second ends it.
        #expect(try await db.prune(customer: "BETA", before: t0.addingTimeInterval(5 * day), batch: 1).map(\.id) == [beta.id])
        #expect(try await db.bundles(customer: "BETA", device: nil).map(\.id) == [betaNewer.id])
        await db.close(); await other.close()
    }

    /// What a report reads: each device's newest few bundles, newest first, not the history.
    @Test(arguments: Backend.allCases)
    func recentBundlesAreTheNewestFewOfEachDevice(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        var records: [StoredBundle] = []
        for (i, device) in ["r1", "r1", "r1", "r2", "r1", "r2"].enumerated() {
            let bundle = record(device: device, collected: t0.addingTimeInterval(Double(i) * 60), sha: String(repeating: "\(i)", count: 64))
            records.append(bundle)
            _ = try await db.insert(bundle)
        }
        _ = try await db.insert(record(customer: "BETA", device: "r1", collected: t0.addingTimeInterval(600), sha: String(repeating: "9", count: 64)))
        let recent = try await other.recentBundles(customer: "ACME", perDevice: 2)
        #expect(recent.map(\.id) == [records[5].id, records[4].id, records[3].id, records[2].id])
        #expect(try await db.recentBundles(customer: "ACME", perDevice: 1).map(\.id) == [records[5].id, records[4].id])
        await db.close(); await other.close()
    }

    /// Retention in batches deletes all it should, a batch at a time.
    @Test(arguments: Backend.allCases)
    func pruningInBatchesDeletesEverythingDue(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        let records = (0 ..< 7).map { i in
            record(device: "r1", collected: t0.addingTimeInterval(Double(i) * 3600), sha: String(repeating: "\(i)", count: 64))
        }
        for bundle in records { _ = try await db.insert(bundle) }
        let deleted = try await other.prune(customer: "ACME", before: t0.addingTimeInterval(86400), batch: 2)
        #expect(Set(deleted.map(\.id)) == Set(records.dropLast().map(\.id)), "six due, in batches of 2, 2, 2 and an empty one")
        #expect(try await db.bundles(customer: "ACME", device: nil).map(\.id) == [records.last!.id])
        await db.close(); await other.close()
    }

    /// Two intake processes receiving the same bundle at the same moment: one row, one
    /// `.inserted`, every other attempt a duplicate.
    /// Keyset pages: in the listing's order (newest first, the id breaking ties of equal times),
    /// each page after the last row of the one before, the filters kept; a row stored between two
    /// pages neither repeats nor shifts them. Cases alike.
    @Test(arguments: Backend.allCases)
    func listingsComeAPageAtATime(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        var bundles: [StoredBundle] = []
        for i in 0 ..< 7 {
            // Two pairs share a collection time: the id orders them.
            let bundle = record(device: "r\(i % 2)", collected: t0.addingTimeInterval(Double(i / 2 * 2 + (i == 6 ? 1 : 0)) * 60),
                                sha: String(repeating: "\(i)", count: 64))
            #expect(try await db.insert(bundle) == .inserted)
            bundles.append(bundle)
        }
        _ = try await db.insert(record(customer: "BETA", collected: t0, sha: String(repeating: "b", count: 64)))
        let whole = try await other.bundles(customer: "ACME", device: nil)
        #expect(whole.count == 7)
        func pages(device: String?, size: Int) async throws -> [[UUID]] {
            var pages: [[UUID]] = []
            var after: ListCursor?
            while pages.count < 10 {
                let page = try await other.bundles(customer: "ACME", device: device, limit: size, after: after)
                if page.isEmpty { break }
                pages.append(page.map(\.id))
                after = ListCursor(after: page.last!)
            }
            return pages
        }
        #expect(try await pages(device: nil, size: 3).map(\.count) == [3, 3, 1])
        #expect(try await pages(device: nil, size: 3).flatMap { $0 } == whole.map(\.id))
        #expect(try await pages(device: nil, size: 1).flatMap { $0 } == whole.map(\.id))
        let r1 = try await other.bundles(customer: "ACME", device: "r1")
        #expect(try await pages(device: "r1", size: 2).flatMap { $0 } == r1.map(\.id) && r1.count == 3)
        // A bundle stored after the first page, newer than all: not in the pages that follow.
        let first = try await db.bundles(customer: "ACME", device: nil, limit: 2, after: nil)
        _ = try await db.insert(record(collected: t0.addingTimeInterval(86400), sha: String(repeating: "n", count: 64)))
        let rest = try await db.bundles(customer: "ACME", device: nil, limit: 100, after: ListCursor(after: first.last!))
        #expect((first + rest).map(\.id) == whole.map(\.id))
        // The cursor as the API carries it.
        let cursor = ListCursor(after: first.last!)
        #expect(ListCursor(cursor.description) == cursor && ListCursor("12.not-a-uuid") == nil && ListCursor("") == nil)

        var cases: [SupportCase] = []
        for i in 0 ..< 5 {
            let record = SupportCase(customer: "ACME", device: "r\(i)", eventKind: "alarm", eventSource: "poll", eventTime: t0,
                                     evidence: "", bundle: UUID(), opened: t0.addingTimeInterval(Double(i / 2) * 60))
            #expect(try await db.openCase(record))
            cases.append(record)
        }
        let allCases = try await other.cases(customer: "ACME", includeClosed: true)
        let firstCases = try await other.cases(customer: "ACME", includeClosed: true, limit: 2, after: nil)
        let restCases = try await other.cases(customer: "ACME", includeClosed: true, limit: 10, after: ListCursor(after: firstCases.last!))
        #expect(firstCases.count == 2 && (firstCases + restCases).map(\.id) == allCases.map(\.id) && allCases.count == 5)
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func eventBundlesOpenOneCaseEachThatCanBeClosed(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("beta-net", at: t0)
        let bundle = UUID(), later = UUID()
        let fru = SupportCase(customer: "ACME", device: "r1", eventKind: "fru-offline", eventSource: "syslog", eventTime: t0,
                              evidence: "syslog CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 1 offline", bundle: bundle, opened: t0.addingTimeInterval(60))
        #expect(try await db.openCase(fru))
        // The same bundle again (a re-upload, another intake process): no second case.
        var again = fru
        again.id = UUID()
        #expect(try await !other.openCase(again))
        let core = SupportCase(customer: "ACME", device: "r2", eventKind: "core-dump", eventSource: "poll", eventTime: t0.addingTimeInterval(100),
                               evidence: "new core file /var/tmp/rpd.core.0.gz", bundle: later, opened: t0.addingTimeInterval(200))
        #expect(try await other.openCase(core))
        await #expect(throws: SupportStoreError.unknownCustomer("nobody")) {
            _ = try await db.openCase(SupportCase(customer: "nobody", device: "r1", eventKind: "alarm", eventSource: "poll",
                                                  eventTime: self.t0, evidence: "", bundle: UUID(), opened: self.t0))
        }
        // Newest first, read back exactly (times in whole milliseconds).
        let open = try await db.cases(customer: "ACME", includeClosed: false)
        #expect(open.map(\.id) == [core.id, fru.id])
        #expect(open.last == fru)
        #expect(try await db.cases(customer: "beta-net", includeClosed: true).isEmpty)
        // Another customer cannot close it; closing twice is refused.
        #expect(try await !db.closeCase(customer: "beta-net", id: fru.id, at: t0))
        let closedAt = t0.addingTimeInterval(3600)
        #expect(try await other.closeCase(customer: "ACME", id: fru.id, at: closedAt))
        #expect(try await !db.closeCase(customer: "ACME", id: fru.id, at: closedAt))
        #expect(try await db.cases(customer: "ACME", includeClosed: false).map(\.id) == [core.id])
        let all = try await db.cases(customer: "ACME", includeClosed: true)
        #expect(all.map(\.id) == [core.id, fru.id])
        #expect(all.last?.closed == closedAt && all.last?.isOpen == false)
        // By id alone (the support engineer's `case close ID`).
        #expect(try await db.closeCase(customer: nil, id: core.id, at: closedAt))
        #expect(try await db.cases(customer: "ACME", includeClosed: false).isEmpty)
        await db.close(); await other.close()
    }

    @Test(arguments: Backend.allCases)
    func concurrentInsertsOfOneBundleStoreItOnce(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        let bundles = (0..<5).map { record(device: "r\($0)", collected: t0.addingTimeInterval(Double($0))) }
        let results = try await withThrowingTaskGroup(of: BundleInsertion.self) { group in
            for bundle in bundles {
                for handle in [db, other, db, other] {
                    group.addTask { try await handle.insert(bundle) }
                }
            }
            var all: [BundleInsertion] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.filter { $0 == .inserted }.count == 5)
        #expect(results.count == 20)
        #expect(try await db.bundles(customer: "ACME", device: nil).count == 5)
        await db.close(); await other.close()
    }

    /// Retention of the rest of the history: notifications recorded and cases closed before the
    /// time go; open cases (however old), later ones and what each item was last told as stay.
    @Test(arguments: Backend.allCases)
    func historyRetentionKeepsOpenCasesAndTheNotifiedStates(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        _ = try await db.addCustomer("BETA", at: t0)
        let day = 86400.0
        for (customer, at) in [("ACME", t0), ("ACME", t0.addingTimeInterval(10 * day)), ("BETA", t0)] {
            _ = try await db.recordNotification(customer: customer, id: UUID(), at: at,
                                                claims: [NotificationClaim(key: "bug|r1|CVE-\(at.timeIntervalSince1970)", expected: nil, state: "exposed")]) { _ in "{}" }
        }
        func openCase(_ customer: String = "ACME", closed: Date?) async throws -> UUID {
            let record = SupportCase(customer: customer, device: "r1", eventKind: "alarm", eventSource: "poll", eventTime: t0,
                                     evidence: "new chassis alarm", bundle: UUID(), opened: t0)
            _ = try await db.openCase(record)
            if let closed { _ = try await db.closeCase(customer: customer, id: record.id, at: closed) }
            return record.id
        }
        let closedEarly = try await openCase(closed: t0.addingTimeInterval(day))
        let stillOpen = try await openCase(closed: nil)
        let closedLate = try await openCase(closed: t0.addingTimeInterval(10 * day))
        let beta = try await openCase("BETA", closed: t0.addingTimeInterval(day))

        let pruned = try await other.pruneHistory(customer: "ACME", before: t0.addingTimeInterval(5 * day))
        #expect(pruned.notifications == 1 && pruned.cases == 1)
        #expect(try await db.notifications(customer: "ACME", limit: 10).count == 1)
        #expect(Set(try await db.cases(customer: "ACME", includeClosed: true).map(\.id)) == [stillOpen, closedLate])
        #expect(!(try await db.cases(customer: "ACME", includeClosed: true).map(\.id)).contains(closedEarly))
        #expect(try await db.notifiedStates(customer: "ACME").count == 2, "the notified states stay")
        #expect(try await db.notifications(customer: "BETA", limit: 10).count == 1)
        #expect(try await db.cases(customer: "BETA", includeClosed: true).map(\.id) == [beta])
        await db.close(); await other.close()
    }

    /// `notify`: each item is told once; a change is claimed only from the state it was read in;
    /// nothing is recorded when nothing is new.
    @Test(arguments: Backend.allCases)
    func notificationsClaimEachItemOnce(backend: Backend) async throws {
        let (db, other, cleanup) = try await backend.make()
        defer { cleanup() }
        _ = try await db.addCustomer("ACME", at: t0)
        let first = [NotificationClaim(key: "bug|r1|CVE-1", expected: nil, state: "exposed"),
                     NotificationClaim(key: "eol|r1|chassis", expected: nil, state: "within")]
        let claimed = try await db.recordNotification(customer: "ACME", id: UUID(), at: t0, claims: first) { keys in
            "{\"items\":\(keys.count)}"
        }
        #expect(claimed == ["bug|r1|CVE-1", "eol|r1|chassis"])
        #expect(try await other.notifiedStates(customer: "ACME") == ["bug|r1|CVE-1": "exposed", "eol|r1|chassis": "within"])
        // The same claims again (a second run that read before the first recorded): nothing.
        let again = try await other.recordNotification(customer: "ACME", id: UUID(), at: t0, claims: first) { _ in "{}" }
        #expect(again.isEmpty)
        #expect(try await db.notifications(customer: "ACME", limit: 10).count == 1)
        // A change from the state read is claimed; from a stale state it is not.
        let change = NotificationClaim(key: "bug|r1|CVE-1", expected: "exposed", state: "")
        let stale = NotificationClaim(key: "eol|r1|chassis", expected: "supported", state: "past")
        let later = t0.addingTimeInterval(60)
        #expect(try await db.recordNotification(customer: "ACME", id: UUID(), at: later, claims: [change, stale]) { _ in "{\"n\":2}" }
                == ["bug|r1|CVE-1"])
        let stored = try await other.notifications(customer: "ACME", limit: 10)
        #expect(stored.map(\.itemCount) == [1, 2])
        #expect(stored.first?.document == "{\"n\":2}")
        #expect(stored.first?.created == later)
        #expect(try await db.notifiedStates(customer: "ACME")["bug|r1|CVE-1"] == "")

        // Two runs at once with the same new item: exactly one tells it.
        let item = NotificationClaim(key: "health|r2|alarm", expected: nil, state: "critical")
        let results = try await withThrowingTaskGroup(of: Set<String>.self) { group in
            for handle in [db, other, db, other] {
                group.addTask { try await handle.recordNotification(customer: "ACME", id: UUID(), at: later, claims: [item]) { _ in "{}" } }
            }
            var all: [Set<String>] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.filter { !$0.isEmpty }.count == 1)
        #expect(try await db.notifications(customer: "ACME", limit: 10).count == 3)
        await #expect(throws: SupportStoreError.self) {
            try await db.recordNotification(customer: "NOBODY", id: UUID(), at: later, claims: [item]) { _ in "{}" }
        }
        await db.close(); await other.close()
    }
}

/// PostgreSQL that is not there, or not as configured: the reason, at once, not the pool's minute
/// of retries ending in "connectionCreationCircuitBreakerTripped".
@Suite struct PostgresConnectionFailureTests {
    func failure(_ url: String) async -> (message: String, seconds: Double) {
        let started = ContinuousClock.now
        do {
            let database = try await DatabaseLocation(url).open()
            _ = try await database.migrate()
            return ("no error", 0)
        } catch {
            let elapsed = ContinuousClock.now - started
            return ("\(error)", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
    }

    @Test func aServerNotListeningOrADatabaseMissingIsSaidAtOnce() async throws {
        let nobody = try SSHDHarness.freePort(on: "127.0.0.1")
        let refused = await failure("postgres://care@127.0.0.1:\(nobody)/care")
        #expect(refused.message.contains("connecting in postgres://care@127.0.0.1:\(nobody)/care") && refused.message.lowercased().contains("refused"),
                "\(refused.message)")
        #expect(refused.seconds < 5)
        let harness = try PostgresHarness.shared.get()
        let missing = await failure("postgres://postgres@127.0.0.1:\(harness.port)/no_such_database")
        #expect(missing.message.contains("database \"no_such_database\" does not exist"), "\(missing.message)")
        #expect(missing.seconds < 5)
    }

    /// The server stops under a running store (the intake's): a request fails after the pool's
    /// wait (10 s), saying why, where it took the pool's minute and said nothing.
    @Test func aServerThatStopsFailsRequestsSayingWhy() async throws {
        let own = try PostgresHarness()
        let database = try await DatabaseLocation(try own.createDatabase()).open()
        _ = try await database.migrate()
        _ = try await database.addCustomer("ACME", at: Date())
        own.stop()
        let started = ContinuousClock.now
        do {
            _ = try await database.customers()
            Issue.record("a stopped server answered")
        } catch {
            #expect("\(error)".contains("cannot connect") && "\(error)".lowercased().contains("refused"), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(20))
    }
}

@Suite struct DatabaseLocationTests {
    @Test func locationsAreParsedAndPasswordsHidden() throws {
        #expect(try DatabaseLocation("sqlite:/var/lib/care-support/support.db") == .sqlite(path: "/var/lib/care-support/support.db"))
        let pg = try DatabaseLocation("postgres://care:s3cret@db.example.net:5432/care")
        #expect(pg.description == "postgres://care:***@db.example.net:5432/care")
        #expect(throws: SupportStoreError.self) { try DatabaseLocation("sqlite:relative.db") }
        #expect(throws: SupportStoreError.self) { try DatabaseLocation("mysql://x") }
    }
}

/// A device's last result as `devices` shows it.
@Suite struct StoredBundleResultTests {
    @Test func resultSaysWhatWasCollected() {
        var bundle = record(collected: Date(timeIntervalSince1970: 0))
        #expect(bundle.result == "1 of 9 RPCs failed: get-system-core-dumps")
        bundle.failedRPCs = []
        #expect(bundle.result == "ok")
        // No RPC at all: the session never came up (authentication, host key, unreachable).
        bundle.rpcCount = 0
        bundle.outcomes = []
        #expect(bundle.result.hasPrefix("nothing collected"))
    }
}
