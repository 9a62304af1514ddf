import Bundle
import Foundation
import GRDB

/// The embedded default: one SQLite file (GRDB, WAL mode) that several intake processes on the
/// same host may share. Commits are fsynced (`synchronous = FULL`), so a 201 survives a power cut.
public final class SQLiteSupportDatabase: SupportDatabase {
    let pool: DatabasePool
    public let path: String

    public init(path: String) throws(SupportStoreError) {
        self.path = path
        var configuration = Configuration()
        // Another process holding the write lock (a second intake, a `care-support` command) is
        // waited for rather than failing the request.
        configuration.busyMode = .timeout(30)
        configuration.foreignKeysEnabled = true
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // 64 MiB of page cache per connection (SQLite's default is 2 MiB): the indexes of a
            // store past 100,000 bundles stay in memory instead of being read back per upload.
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw .database("cannot open sqlite:\(path): \(Self.reason(error))")
        }
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        if let error = error as? SupportStoreError { return error.description }
        return "\(error)"
    }

    static func arguments(_ values: [SQLValue]) -> StatementArguments {
        StatementArguments(values.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case let .text(text): return text
            case let .integer(number): return number
            case .null: return nil
            }
        })
    }

    /// Runs `body` in a write transaction, turning every error into a ``SupportStoreError``.
    func write<T: Sendable>(_ what: String, _ body: @Sendable @escaping (GRDB.Database) throws -> T) async throws(SupportStoreError) -> T {
        do {
            return try await pool.write(body)
        } catch let error as SupportStoreError {
            throw error
        } catch {
            throw .database("\(what) in sqlite:\(path): \(Self.reason(error))")
        }
    }

    func read<T: Sendable>(_ what: String, _ body: @Sendable @escaping (GRDB.Database) throws -> T) async throws(SupportStoreError) -> T {
        do {
            return try await pool.read(body)
        } catch let error as SupportStoreError {
            throw error
        } catch {
            throw .database("\(what) in sqlite:\(path): \(Self.reason(error))")
        }
    }

    static func requireCustomer(_ db: GRDB.Database, _ name: String) throws {
        guard try Row.fetchOne(db, sql: "SELECT 1 FROM customers WHERE name = ?", arguments: [name]) != nil else {
            throw SupportStoreError.unknownCustomer(name)
        }
    }

    public func migrate() async throws(SupportStoreError) -> [Int] {
        try await write("migrating") { db in
            try db.execute(sql: SupportSchema.createMigrationsTable)
            let current = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM schema_migrations") ?? 0
            guard current <= SupportSchema.latestVersion else {
                throw SupportStoreError.schemaTooNew(found: current, supported: SupportSchema.latestVersion)
            }
            var applied: [Int] = []
            for migration in SupportSchema.migrations where migration.version > current {
                for statement in migration.statements { try db.execute(sql: statement) }
                try db.execute(sql: "INSERT INTO schema_migrations (version, applied) VALUES (?, ?)",
                               arguments: [migration.version, SupportSchema.milliseconds(Date())])
                applied.append(migration.version)
            }
            return applied
        }
    }

    public func schemaVersion() async throws(SupportStoreError) -> Int {
        try await read("reading the schema version") { db in
            guard try db.tableExists("schema_migrations") else { return 0 }
            return try Int.fetchOne(db, sql: "SELECT MAX(version) FROM schema_migrations") ?? 0
        }
    }

    public func addCustomer(_ name: String, at date: Date) async throws(SupportStoreError) -> Customer {
        try Customer.validate(name: name)
        return try await write("adding customer \(name)") { db in
            try db.execute(sql: "INSERT INTO customers (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                           arguments: [name, SupportSchema.milliseconds(date)])
            guard db.changesCount == 1 else { throw SupportStoreError.customerExists(name) }
            return Customer(name: name, created: SupportSchema.stored(date))
        }
    }

    public func customers() async throws(SupportStoreError) -> [Customer] {
        try await read("listing customers") { db in
            try Row.fetchAll(db, sql: "SELECT name, created FROM customers ORDER BY name").map { row in
                Customer(name: row["name"], created: SupportSchema.date(row["created"]))
            }
        }
    }

    public func customer(named name: String) async throws(SupportStoreError) -> Customer? {
        try await read("reading customer \(name)") { db in
            try Row.fetchOne(db, sql: "SELECT name, created FROM customers WHERE name = ?", arguments: [name]).map { row in
                Customer(name: row["name"], created: SupportSchema.date(row["created"]))
            }
        }
    }

    public func addToken(customer: String, id: String, hash: String, scope: TokenScope, at date: Date) async throws(SupportStoreError) {
        try await write("adding a token of \(customer)") { db in
            try Self.requireCustomer(db, customer)
            try db.execute(sql: "INSERT INTO upload_tokens (id, customer, hash, created, scope) VALUES (?, ?, ?, ?, ?)",
                           arguments: [id, customer, hash, SupportSchema.milliseconds(date), scope.rawValue])
        }
    }

    public func revokeToken(customer: String, id: String, at date: Date) async throws(SupportStoreError) -> Bool {
        try await write("revoking a token of \(customer)") { db in
            try Self.requireCustomer(db, customer)
            try db.execute(sql: "UPDATE upload_tokens SET revoked = ? WHERE customer = ? AND id = ? AND revoked IS NULL",
                           arguments: [SupportSchema.milliseconds(date), customer, id])
            return db.changesCount == 1
        }
    }

    public func tokens(customer: String) async throws(SupportStoreError) -> [UploadTokenRecord] {
        try await read("listing tokens of \(customer)") { db in
            try Self.requireCustomer(db, customer)
            return try Row.fetchAll(db, sql: "SELECT id, customer, scope, created, revoked FROM upload_tokens WHERE customer = ? ORDER BY created, id",
                                    arguments: [customer]).map { row in
                UploadTokenRecord(id: row["id"], customer: row["customer"], scope: TokenScope(rawValue: row["scope"]) ?? .upload,
                                  created: SupportSchema.date(row["created"]), revoked: (row["revoked"] as Int64?).map(SupportSchema.date))
            }
        }
    }

    public func customer(forTokenHash hash: String, scope: TokenScope) async throws(SupportStoreError) -> String? {
        try await read("checking a token") { db in
            try String.fetchOne(db, sql: "SELECT customer FROM upload_tokens WHERE hash = ? AND scope = ? AND revoked IS NULL",
                                arguments: [hash, scope.rawValue])
        }
    }

    public func trustKey(customer: String, key: AgentPublicKey, at date: Date) async throws(SupportStoreError) -> Bool {
        try await write("trusting a key for \(customer)") { db in
            try Self.requireCustomer(db, customer)
            try db.execute(sql: """
                INSERT INTO agent_keys (customer, public_key, fingerprint, added) VALUES (?, ?, ?, ?)
                ON CONFLICT (customer, public_key) DO UPDATE SET revoked = NULL, added = excluded.added
                WHERE agent_keys.revoked IS NOT NULL
                """, arguments: [customer, key.base64, key.fingerprint, SupportSchema.milliseconds(date)])
            let added = db.changesCount == 1
            try db.execute(sql: "DELETE FROM pending_keys WHERE customer = ? AND public_key = ?", arguments: [customer, key.base64])
            return added
        }
    }

    @discardableResult
    public func recordPending(customer: String, key: AgentPublicKey, agent: String, device: String, at date: Date) async throws(SupportStoreError) -> [String] {
        try await write("recording a pending key of \(customer)") { db in
            try Self.requireCustomer(db, customer)
            let now = SupportSchema.milliseconds(date)
            try db.execute(sql: SupportSchema.recordPending, arguments: [customer, key.base64, key.fingerprint, agent, device, now, now])
            return try String.fetchAll(db, sql: SupportSchema.trimPending, arguments: [customer, key.base64, customer, key.base64])
        }
    }

    public func pendingKeys(customer: String?) async throws(SupportStoreError) -> [PendingKeyRecord] {
        try await read("listing pending keys") { db in
            let filter = customer == nil ? "" : " WHERE customer = ?"
            return try Row.fetchAll(db, sql: SupportSchema.selectPending + filter + " ORDER BY customer, first_seen, public_key",
                                    arguments: customer.map { [$0] } ?? []).map { row in
                PendingKeyRecord(customer: row["customer"], key: try AgentPublicKey(base64: row["public_key"]), agent: row["agent"],
                                 device: row["device"], firstSeen: SupportSchema.date(row["first_seen"]),
                                 lastSeen: SupportSchema.date(row["last_seen"]), uploads: row["uploads"])
            }
        }
    }

    public func revokeKey(customer: String, key: AgentPublicKey, at date: Date) async throws(SupportStoreError) -> Bool {
        try await write("revoking a key of \(customer)") { db in
            try Self.requireCustomer(db, customer)
            try db.execute(sql: "UPDATE agent_keys SET revoked = ? WHERE customer = ? AND public_key = ? AND revoked IS NULL",
                           arguments: [SupportSchema.milliseconds(date), customer, key.base64])
            return db.changesCount == 1
        }
    }

    public func keys(customer: String) async throws(SupportStoreError) -> [TrustedKeyRecord] {
        try await read("listing keys of \(customer)") { db in
            try Self.requireCustomer(db, customer)
            return try Row.fetchAll(db, sql: "SELECT public_key, added, revoked FROM agent_keys WHERE customer = ? ORDER BY added, public_key",
                                    arguments: [customer]).map { row in
                TrustedKeyRecord(customer: customer, key: try AgentPublicKey(base64: row["public_key"]),
                                 added: SupportSchema.date(row["added"]), revoked: (row["revoked"] as Int64?).map(SupportSchema.date))
            }
        }
    }

    public func allowSubject(customer: String, subject: String, pin: SubjectPin, at date: Date) async throws(SupportStoreError) -> Bool {
        try await write("allowing a client subject for \(customer)") { db in
            try Self.requireCustomer(db, customer)
            let existing = try Row.fetchOne(db, sql: "SELECT customer, public_key_sha256 FROM client_subjects WHERE subject = ?", arguments: [subject])
            if let existing, let owner = existing["customer"] as String?, owner != customer {
                throw SupportStoreError.invalid("client subject \(subject) belongs to customer \(owner)")
            }
            let stored = pin.applied(to: existing?["public_key_sha256"] as String?)
            try db.execute(sql: SupportSchema.allowSubject, arguments: [subject, customer, SupportSchema.milliseconds(date), stored])
            return db.changesCount == 1
        }
    }

    public func revokeSubject(customer: String, subject: String, at date: Date) async throws(SupportStoreError) -> Bool {
        try await write("revoking a client subject of \(customer)") { db in
            try Self.requireCustomer(db, customer)
            try db.execute(sql: "UPDATE client_subjects SET revoked = ? WHERE customer = ? AND subject = ? AND revoked IS NULL",
                           arguments: [SupportSchema.milliseconds(date), customer, subject])
            return db.changesCount == 1
        }
    }

    public func subjects(customer: String) async throws(SupportStoreError) -> [ClientSubjectRecord] {
        try await read("listing client subjects of \(customer)") { db in
            try Self.requireCustomer(db, customer)
            return try Row.fetchAll(db, sql: "SELECT subject, added, revoked, public_key_sha256 FROM client_subjects WHERE customer = ? ORDER BY added, subject",
                                    arguments: [customer]).map { row in
                ClientSubjectRecord(customer: customer, subject: row["subject"], added: SupportSchema.date(row["added"]),
                                    revoked: (row["revoked"] as Int64?).map(SupportSchema.date), publicKeySHA256: row["public_key_sha256"])
            }
        }
    }

    public func clientAccess(forSubject subject: String) async throws(SupportStoreError) -> ClientAccess? {
        try await read("checking a client subject") { db in
            try Row.fetchOne(db, sql: "SELECT customer, public_key_sha256 FROM client_subjects WHERE subject = ? AND revoked IS NULL",
                             arguments: [subject]).map { row in ClientAccess(customer: row["customer"], publicKeySHA256: row["public_key_sha256"]) }
        }
    }

    public func insert(_ bundle: StoredBundle) async throws(SupportStoreError) -> BundleInsertion {
        let values = try SupportSchema.values(bundle)
        return try await write("storing bundle \(bundle.id)") { db in
            try Self.requireCustomer(db, bundle.customer)
            try db.execute(sql: SupportSchema.insertBundle, arguments: Self.arguments(values))
            if db.changesCount == 1 { return .inserted }
            guard let row = try Row.fetchOne(db, sql: SupportSchema.selectBundles + " WHERE id = ?",
                                             arguments: [bundle.id.uuidString.lowercased()]) else {
                throw SupportStoreError.database("bundle \(bundle.id) was neither inserted nor found")
            }
            return .duplicate(existing: try StoredBundle(row: GRDBColumns(row: row)))
        }
    }

    public func bundle(id: UUID) async throws(SupportStoreError) -> StoredBundle? {
        try await read("reading bundle \(id)") { db in
            try Row.fetchOne(db, sql: SupportSchema.selectBundles + " WHERE id = ?", arguments: [id.uuidString.lowercased()])
                .map { row in try StoredBundle(row: GRDBColumns(row: row)) }
        }
    }

    public func bundle(customer: String, fileSHA256: String) async throws(SupportStoreError) -> StoredBundle? {
        try await read("looking up a bundle file of \(customer)") { db in
            try Row.fetchOne(db, sql: SupportSchema.selectBundles + " WHERE file_sha256 = ? AND customer = ? LIMIT 1", arguments: [fileSHA256, customer])
                .map { row in try StoredBundle(row: GRDBColumns(row: row)) }
        }
    }

    public func bundles(customer: String?, device: String?, limit: Int?, after: ListCursor?) async throws(SupportStoreError) -> [StoredBundle] {
        let (sql, values) = SupportSchema.bundlesQuery(customer: customer, device: device, limit: limit, after: after)
        return try await read("listing bundles") { db in
            try Row.fetchAll(db, sql: sql, arguments: Self.arguments(values)).map { row in try StoredBundle(row: GRDBColumns(row: row)) }
        }
    }

    public func recentBundles(customer: String, perDevice: Int) async throws(SupportStoreError) -> [StoredBundle] {
        try await read("listing recent bundles") { db in
            try Row.fetchAll(db, sql: SupportSchema.recentBundlesQuery, arguments: [customer, perDevice])
                .map { row in try StoredBundle(row: GRDBColumns(row: row)) }
        }
    }

    public func devices(customer: String?) async throws(SupportStoreError) -> [DeviceSummary] {
        let (sql, values) = SupportSchema.devicesQuery(customer: customer)
        return try await read("listing devices") { db in
            try Row.fetchAll(db, sql: sql, arguments: Self.arguments(values)).map { row in
                let latest = try StoredBundle(row: GRDBColumns(row: row))
                return DeviceSummary(customer: latest.customer, latest: latest, bundleCount: Int(row["bundle_count"] as Int64? ?? 0))
            }
        }
    }

    /// Each batch its own transaction: intakes write between them.
    public func prune(customer: String, before: Date, batch: Int) async throws(SupportStoreError) -> [StoredBundle] {
        var deleted: [StoredBundle] = []
        while true {
            let some = try await write("pruning bundles of \(customer)") { db in
                try Row.fetchAll(db, sql: SupportSchema.pruneBundles, arguments: [customer, SupportSchema.milliseconds(before), batch])
                    .map { row in try StoredBundle(row: GRDBColumns(row: row)) }
            }
            deleted += some
            if some.count < batch { return deleted }
        }
    }

    public func pruneHistory(customer: String, before: Date) async throws(SupportStoreError) -> (notifications: Int, cases: Int) {
        try await write("pruning the history of \(customer)") { db in
            let arguments: StatementArguments = [customer, SupportSchema.milliseconds(before)]
            return (try Row.fetchAll(db, sql: SupportSchema.pruneNotifications, arguments: arguments).count,
                    try Row.fetchAll(db, sql: SupportSchema.pruneClosedCases, arguments: arguments).count)
        }
    }

    public func isReferenced(sha256: String) async throws(SupportStoreError) -> Bool {
        try await read("checking a bundle file") { db in
            try Row.fetchOne(db, sql: "SELECT 1 FROM bundles WHERE file_sha256 = ?", arguments: [sha256]) != nil
        }
    }

    public func notifiedStates(customer: String) async throws(SupportStoreError) -> [String: String] {
        try await read("reading notified items of \(customer)") { db in
            var states: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT item, state FROM notified_items WHERE customer = ?", arguments: [customer]) {
                states[row["item"]] = row["state"]
            }
            return states
        }
    }

    public func recordNotification(customer: String, id: UUID, at date: Date, claims: [NotificationClaim],
                                   document: @escaping @Sendable (Set<String>) throws -> String) async throws(SupportStoreError) -> Set<String> {
        try await write("recording a notification for \(customer)") { db in
            try Self.requireCustomer(db, customer)
            var claimed = Set<String>()
            for claim in claims {
                let (sql, values) = SupportSchema.claimStatement(claim, customer: customer, at: date)
                if try Row.fetchOne(db, sql: sql, arguments: Self.arguments(values)) != nil { claimed.insert(claim.key) }
            }
            guard !claimed.isEmpty else { return claimed }
            try db.execute(sql: SupportSchema.insertNotification, arguments: Self.arguments([
                .text(id.uuidString.lowercased()), .text(customer), SQLValue(date), .integer(Int64(claimed.count)), .text(try document(claimed)),
            ]))
            return claimed
        }
    }

    public func notifications(customer: String, limit: Int) async throws(SupportStoreError) -> [StoredNotification] {
        try await read("listing notifications of \(customer)") { db in
            try Row.fetchAll(db, sql: SupportSchema.selectNotifications, arguments: [customer, limit])
                .map { row in try StoredNotification(row: GRDBColumns(row: row)) }
        }
    }

    public func openCase(_ record: SupportCase) async throws(SupportStoreError) -> Bool {
        let values = SupportSchema.values(record)
        return try await write("opening a case for bundle \(record.bundle)") { db in
            try Self.requireCustomer(db, record.customer)
            try db.execute(sql: SupportSchema.insertCase, arguments: Self.arguments(values))
            return db.changesCount == 1
        }
    }

    public func cases(customer: String, includeClosed: Bool, limit: Int?, after: ListCursor?) async throws(SupportStoreError) -> [SupportCase] {
        let (sql, values) = SupportSchema.casesQuery(customer: customer, all: includeClosed, limit: limit, after: after)
        return try await read("listing cases") { db in
            try Row.fetchAll(db, sql: sql, arguments: Self.arguments(values)).map { row in try SupportCase(row: GRDBColumns(row: row)) }
        }
    }

    public func closeCase(customer: String?, id: UUID, at date: Date) async throws(SupportStoreError) -> Bool {
        let (sql, values) = SupportSchema.closeCase(customer: customer, id: id, at: date)
        return try await write("closing case \(id)") { db in
            try db.execute(sql: sql, arguments: Self.arguments(values))
            return db.changesCount == 1
        }
    }

    public func close() async {
        try? pool.close()
    }
}

/// A GRDB row read by column name.
struct GRDBColumns: ColumnReader {
    let row: Row

    func text(_ column: String) throws(SupportStoreError) -> String? {
        guard row.hasColumn(column) else { throw .database("no column \(column)") }
        return row[column]
    }

    func integer(_ column: String) throws(SupportStoreError) -> Int64? {
        guard row.hasColumn(column) else { throw .database("no column \(column)") }
        return row[column]
    }
}
