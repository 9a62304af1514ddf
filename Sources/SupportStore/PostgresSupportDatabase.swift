import Bundle
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// PostgreSQL, for a support organisation with several intake hosts: they share this database and
/// nothing else but the bundle file area (see docs/support.md). Uniqueness and transactions are
/// the database's, so concurrent intakes stay consistent.
///
/// The URL is `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require][&host=/socket/dir]`;
/// without a password in it, `$PGPASSWORD` is used. TLS is required (and verified against the
/// system's CAs) unless the host is loopback or `sslmode=disable`.
public final class PostgresSupportDatabase: SupportDatabase {
    let client: PostgresClient
    let logger: Logger
    let runner: Task<Void, Never>
    let location: String
    /// The same server, for one connection of its own that says why the pool's do not come.
    let probeConfiguration: PostgresConnection.Configuration
    /// How long a request waits for a pooled connection. With the server down the pool retries
    /// for a minute (its circuit breaker) before failing a request, and says nothing of why: an
    /// intake's PUT outlived its client's timeout, and `customer list` took 67 s to say
    /// "connectionCreationCircuitBreakerTripped".
    static let connectionWait: Duration = .seconds(10)

    public init(url: String, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) throws(SupportStoreError) {
        location = DatabaseLocation.postgres(url: url).description
        guard let parts = URLComponents(string: url), let user = parts.user, !user.isEmpty else {
            throw .invalid("expected postgres://USER@HOST:PORT/DATABASE, found \(location)")
        }
        let database = parts.path.hasPrefix("/") ? String(parts.path.dropFirst()) : parts.path
        let query = Dictionary((parts.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let password = parts.password ?? environment["PGPASSWORD"]
        var configuration: PostgresClient.Configuration
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            let port = parts.port ?? 5432
            configuration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password,
                                  database: database.isEmpty ? nil : database)
            probeConfiguration = .init(unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password,
                                       database: database.isEmpty ? nil : database)
        } else {
            guard let host = parts.host, !host.isEmpty else { throw .invalid("no host in \(location)") }
            let loopback = ["127.0.0.1", "::1", "localhost"].contains(host)
            let tls: PostgresClient.Configuration.TLS
            let mode = query["sslmode"] ?? (loopback ? "disable" : "require")
            switch mode {
            case "disable": tls = .disable
            case "require", "verify-full": tls = .require(.makeClientConfiguration())
            case let other: throw .invalid("sslmode \(other) in \(location): expected disable or require")
            }
            configuration = .init(host: host, port: parts.port ?? 5432, username: user, password: password,
                                  database: database.isEmpty ? nil : database, tls: tls)
            let probeTLS: PostgresConnection.Configuration.TLS
            if mode == "disable" {
                probeTLS = .disable
            } else {
                do { probeTLS = .require(try NIOSSLContext(configuration: .makeClientConfiguration())) } catch {
                    throw .invalid("cannot set up TLS for \(location): \(error)")
                }
            }
            probeConfiguration = .init(host: host, port: parts.port ?? 5432, username: user, password: password,
                                       database: database.isEmpty ? nil : database, tls: probeTLS)
        }
        configuration.options.minimumConnections = 0
        configuration.options.maximumConnections = Self.maximumConnections
        let client = PostgresClient(configuration: configuration)
        self.client = client
        self.logger = logger
        runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    public func close() async {
        runner.cancel()
        _ = await runner.value
    }

    /// `?` placeholders renumbered `$1`, `$2`... with their values bound.
    static func query(_ sql: String, _ values: [SQLValue]) -> PostgresQuery {
        var text = ""
        var number = 0
        for character in sql {
            if character == "?" {
                number += 1
                text += "$\(number)"
            } else {
                text.append(character)
            }
        }
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case let .text(string): binds.append(string)
            case let .integer(number): binds.append(number)
            case .null: binds.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: text, binds: binds)
    }

    func error(_ what: String, _ error: any Error) -> SupportStoreError {
        if let error = error as? SupportStoreError { return error }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return .database("\(what) in \(location): \(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))")
            }
            if let underlying = error.underlying { return .database("\(what) in \(location): \(underlying)") }
            return .database("\(what) in \(location): \(error.code)")
        }
        return .database("\(what) in \(location): \(error)")
    }

    static func sqlState(_ error: any Error) -> String? { (error as? PSQLError)?.serverInfo?[.sqlState] }

    /// Runs one statement and returns its rows.
    func rows(_ what: String, _ sql: String, _ values: [SQLValue] = []) async throws(SupportStoreError) -> [PostgresRandomAccessRow] {
        let logger = logger
        let query = Self.query(sql, values)
        do {
            return try await leased(what) { connection in
                var result: [PostgresRandomAccessRow] = []
                for try await row in try await connection.query(query, logger: logger) {
                    result.append(row.makeRandomAccess())
                }
                return result
            }
        } catch {
            if Self.sqlState(error) == "23503" { throw .database("\(what): the customer does not exist") }
            throw self.error(what, error)
        }
    }

    /// No pooled connection within ``connectionWait``.
    struct NoConnectionInTime: Error {}

    /// Whether a request got its connection (set from the pool's task, read by the timer's).
    final class LeaseFlag: Sendable {
        private let state = Mutex(false)
        func set() { state.withLock { $0 = true } }
        var isSet: Bool { state.withLock { $0 } }
    }

    /// `body` on a pooled connection, waited for at most ``connectionWait``; past it, the error
    /// says why a connection of its own could not be made (refused, no such database, a password
    /// refused), else that all were busy.
    func leased<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = client
        let gotOne = LeaseFlag()
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        gotOne.set()
                        return try await body(connection)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: Self.connectionWait)
                    if gotOne.isSet { return nil }
                    throw NoConnectionInTime()
                }
                while let next = try await group.next() {
                    if let value = next {
                        group.cancelAll()
                        return value
                    }
                }
                throw CancellationError()
            }
        } catch is NoConnectionInTime {
            throw await connectionFailure(what)
        }
    }

    /// Why no connection comes: one made apart from the pool, and its error.
    func connectionFailure(_ what: String) async -> SupportStoreError {
        do {
            let connection = try await PostgresConnection.connect(configuration: probeConfiguration, id: 0, logger: logger)
            try? await connection.close()
        } catch {
            return self.error("\(what): cannot connect", error)
        }
        return .database("\(what) in \(location): no connection free within \(Self.connectionWait.components.seconds) s (all \(Self.maximumConnections) busy)")
    }

    static let maximumConnections = 16

    func requireCustomer(_ name: String) async throws(SupportStoreError) {
        guard try await !rows("reading customer \(name)", "SELECT 1 FROM customers WHERE name = ?", [.text(name)]).isEmpty else {
            throw .unknownCustomer(name)
        }
    }

    public func migrate() async throws(SupportStoreError) -> [Int] {
        let logger = logger
        // Every command and the server start here: a server that is not there, a database or
        // role that does not exist, is said at once, not after the pool's wait.
        do {
            let connection = try await PostgresConnection.connect(configuration: probeConfiguration, id: 0, logger: logger)
            try? await connection.close()
        } catch {
            throw self.error("connecting", error)
        }
        do {
            return try await leased("migrating") { connection -> [Int] in try await connection.withTransaction(logger: logger) { connection -> [Int] in
                // Two intakes starting at once: the second waits here, then finds nothing to do.
                try await connection.query("SELECT pg_advisory_xact_lock(7260714)", logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: SupportSchema.createMigrationsTable), logger: logger)
                var current = 0
                for try await version in try await connection.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", logger: logger)
                    .decode(Int.self) { current = version }
                guard current <= SupportSchema.latestVersion else {
                    throw SupportStoreError.schemaTooNew(found: current, supported: SupportSchema.latestVersion)
                }
                var applied: [Int] = []
                for migration in SupportSchema.migrations where migration.version > current {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(Self.query("INSERT INTO schema_migrations (version, applied) VALUES (?, ?)",
                                                           [.integer(Int64(migration.version)), SQLValue(Date())]), logger: logger)
                    applied.append(migration.version)
                }
                return applied
            } }
        } catch let error as PostgresTransactionError {
            throw self.error("migrating", error.closureError ?? error.beginError ?? error.commitError ?? error)
        } catch {
            throw self.error("migrating", error)
        }
    }

    public func schemaVersion() async throws(SupportStoreError) -> Int {
        let exists = try await rows("reading the schema version", "SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        guard let present = exists.first, (try? present["present"].decode(Bool.self)) == true else { return 0 }
        let rows = try await rows("reading the schema version", "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
        return Int(try PostgresColumns(row: rows[0]).integer("version") ?? 0)
    }

    public func addCustomer(_ name: String, at date: Date) async throws(SupportStoreError) -> Customer {
        try Customer.validate(name: name)
        let inserted = try await rows("adding customer \(name)",
                                      "INSERT INTO customers (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING name",
                                      [.text(name), SQLValue(date)])
        guard !inserted.isEmpty else { throw .customerExists(name) }
        return Customer(name: name, created: SupportSchema.stored(date))
    }

    public func customers() async throws(SupportStoreError) -> [Customer] {
        try await rows("listing customers", "SELECT name, created FROM customers ORDER BY name").map { row throws(SupportStoreError) in
            let columns = PostgresColumns(row: row)
            return Customer(name: try columns.requiredText("name"), created: try columns.requiredDate("created"))
        }
    }

    public func customer(named name: String) async throws(SupportStoreError) -> Customer? {
        try await rows("reading customer \(name)", "SELECT name, created FROM customers WHERE name = ?", [.text(name)])
            .first.map { row throws(SupportStoreError) in
                let columns = PostgresColumns(row: row)
                return Customer(name: try columns.requiredText("name"), created: try columns.requiredDate("created"))
            }
    }

    public func addToken(customer: String, id: String, hash: String, scope: TokenScope, at date: Date) async throws(SupportStoreError) {
        try await requireCustomer(customer)
        _ = try await rows("adding a token of \(customer)", "INSERT INTO upload_tokens (id, customer, hash, created, scope) VALUES (?, ?, ?, ?, ?)",
                           [.text(id), .text(customer), .text(hash), SQLValue(date), .text(scope.rawValue)])
    }

    public func revokeToken(customer: String, id: String, at date: Date) async throws(SupportStoreError) -> Bool {
        try await requireCustomer(customer)
        return try await !rows("revoking a token of \(customer)",
                               "UPDATE upload_tokens SET revoked = ? WHERE customer = ? AND id = ? AND revoked IS NULL RETURNING id",
                               [SQLValue(date), .text(customer), .text(id)]).isEmpty
    }

    public func tokens(customer: String) async throws(SupportStoreError) -> [UploadTokenRecord] {
        try await requireCustomer(customer)
        return try await rows("listing tokens of \(customer)",
                              "SELECT id, customer, scope, created, revoked FROM upload_tokens WHERE customer = ? ORDER BY created, id",
                              [.text(customer)]).map { row throws(SupportStoreError) in
            let columns = PostgresColumns(row: row)
            return UploadTokenRecord(id: try columns.requiredText("id"), customer: customer,
                                     scope: TokenScope(rawValue: try columns.requiredText("scope")) ?? .upload,
                                     created: try columns.requiredDate("created"), revoked: try columns.date("revoked"))
        }
    }

    public func customer(forTokenHash hash: String, scope: TokenScope) async throws(SupportStoreError) -> String? {
        try await rows("checking a token", "SELECT customer FROM upload_tokens WHERE hash = ? AND scope = ? AND revoked IS NULL",
                       [.text(hash), .text(scope.rawValue)])
            .first.map { row throws(SupportStoreError) in try PostgresColumns(row: row).requiredText("customer") }
    }

    public func trustKey(customer: String, key: AgentPublicKey, at date: Date) async throws(SupportStoreError) -> Bool {
        try await requireCustomer(customer)
        let added = try await !rows("trusting a key for \(customer)", """
            INSERT INTO agent_keys (customer, public_key, fingerprint, added) VALUES (?, ?, ?, ?)
            ON CONFLICT (customer, public_key) DO UPDATE SET revoked = NULL, added = excluded.added
            WHERE agent_keys.revoked IS NOT NULL RETURNING customer
            """, [.text(customer), .text(key.base64), .text(key.fingerprint), SQLValue(date)]).isEmpty
        _ = try await rows("clearing a pending key of \(customer)", "DELETE FROM pending_keys WHERE customer = ? AND public_key = ?",
                           [.text(customer), .text(key.base64)])
        return added
    }

    @discardableResult
    public func recordPending(customer: String, key: AgentPublicKey, agent: String, device: String, at date: Date) async throws(SupportStoreError) -> [String] {
        try await requireCustomer(customer)
        _ = try await rows("recording a pending key of \(customer)", SupportSchema.recordPending,
                           [.text(customer), .text(key.base64), .text(key.fingerprint), .text(agent), .text(device), SQLValue(date), SQLValue(date)])
        return try await rows("trimming the pending keys of \(customer)", SupportSchema.trimPending,
                              [.text(customer), .text(key.base64), .text(customer), .text(key.base64)])
            .map { row throws(SupportStoreError) in try PostgresColumns(row: row).requiredText("fingerprint") }
    }

    public func pendingKeys(customer: String?) async throws(SupportStoreError) -> [PendingKeyRecord] {
        let filter = customer == nil ? "" : " WHERE customer = ?"
        return try await rows("listing pending keys", SupportSchema.selectPending + filter + " ORDER BY customer, first_seen, public_key",
                              customer.map { [.text($0)] } ?? []).map { row throws(SupportStoreError) in
            let columns = PostgresColumns(row: row)
            let key: AgentPublicKey
            do {
                key = try AgentPublicKey(base64: try columns.requiredText("public_key"))
            } catch {
                throw .database("a pending key is invalid: \(error)")
            }
            return PendingKeyRecord(customer: try columns.requiredText("customer"), key: key, agent: try columns.requiredText("agent"),
                                    device: try columns.requiredText("device"), firstSeen: try columns.requiredDate("first_seen"),
                                    lastSeen: try columns.requiredDate("last_seen"), uploads: Int(try columns.integer("uploads") ?? 0))
        }
    }

    public func revokeKey(customer: String, key: AgentPublicKey, at date: Date) async throws(SupportStoreError) -> Bool {
        try await requireCustomer(customer)
        return try await !rows("revoking a key of \(customer)",
                               "UPDATE agent_keys SET revoked = ? WHERE customer = ? AND public_key = ? AND revoked IS NULL RETURNING customer",
                               [SQLValue(date), .text(customer), .text(key.base64)]).isEmpty
    }

    public func keys(customer: String) async throws(SupportStoreError) -> [TrustedKeyRecord] {
        try await requireCustomer(customer)
        return try await rows("listing keys of \(customer)",
                              "SELECT public_key, added, revoked FROM agent_keys WHERE customer = ? ORDER BY added, public_key",
                              [.text(customer)]).map { row throws(SupportStoreError) in
            let columns = PostgresColumns(row: row)
            let key: AgentPublicKey
            do {
                key = try AgentPublicKey(base64: try columns.requiredText("public_key"))
            } catch {
                throw .database("a stored key of \(customer) is invalid: \(error)")
            }
            return TrustedKeyRecord(customer: customer, key: key, added: try columns.requiredDate("added"),
                                    revoked: try columns.date("revoked"))
        }
    }

    public func allowSubject(customer: String, subject: String, pin: SubjectPin, at date: Date) async throws(SupportStoreError) -> Bool {
        try await requireCustomer(customer)
        let existing = try await rows("allowing a client subject", "SELECT customer, public_key_sha256 FROM client_subjects WHERE subject = ?", [.text(subject)])
            .first.map({ row throws(SupportStoreError) in
                let columns = PostgresColumns(row: row)
                return (owner: try columns.requiredText("customer"), pin: try columns.text("public_key_sha256"))
            })
        if let existing, existing.owner != customer {
            throw .invalid("client subject \(subject) belongs to customer \(existing.owner)")
        }
        return try await !rows("allowing a client subject for \(customer)", SupportSchema.allowSubject + " RETURNING subject",
                               [.text(subject), .text(customer), SQLValue(date), SQLValue(pin.applied(to: existing?.pin))]).isEmpty
    }

    public func revokeSubject(customer: String, subject: String, at date: Date) async throws(SupportStoreError) -> Bool {
        try await requireCustomer(customer)
        return try await !rows("revoking a client subject of \(customer)",
                               "UPDATE client_subjects SET revoked = ? WHERE customer = ? AND subject = ? AND revoked IS NULL RETURNING subject",
                               [SQLValue(date), .text(customer), .text(subject)]).isEmpty
    }

    public func subjects(customer: String) async throws(SupportStoreError) -> [ClientSubjectRecord] {
        try await requireCustomer(customer)
        return try await rows("listing client subjects of \(customer)",
                              "SELECT subject, added, revoked, public_key_sha256 FROM client_subjects WHERE customer = ? ORDER BY added, subject",
                              [.text(customer)]).map { row throws(SupportStoreError) in
            let columns = PostgresColumns(row: row)
            return ClientSubjectRecord(customer: customer, subject: try columns.requiredText("subject"),
                                       added: try columns.requiredDate("added"), revoked: try columns.date("revoked"),
                                       publicKeySHA256: try columns.text("public_key_sha256"))
        }
    }

    public func clientAccess(forSubject subject: String) async throws(SupportStoreError) -> ClientAccess? {
        try await rows("checking a client subject", "SELECT customer, public_key_sha256 FROM client_subjects WHERE subject = ? AND revoked IS NULL",
                       [.text(subject)]).first.map { row throws(SupportStoreError) in
            let columns = PostgresColumns(row: row)
            return ClientAccess(customer: try columns.requiredText("customer"), publicKeySHA256: try columns.text("public_key_sha256"))
        }
    }

    public func insert(_ bundle: StoredBundle) async throws(SupportStoreError) -> BundleInsertion {
        try await requireCustomer(bundle.customer)
        let inserted = try await rows("storing bundle \(bundle.id)", SupportSchema.insertBundle + " RETURNING id",
                                      try SupportSchema.values(bundle))
        if !inserted.isEmpty { return .inserted }
        guard let existing = try await self.bundle(id: bundle.id) else {
            throw .database("bundle \(bundle.id) was neither inserted nor found")
        }
        return .duplicate(existing: existing)
    }

    public func bundle(id: UUID) async throws(SupportStoreError) -> StoredBundle? {
        try await rows("reading bundle \(id)", SupportSchema.selectBundles + " WHERE id = ?", [.text(id.uuidString.lowercased())])
            .first.map { row throws(SupportStoreError) in try StoredBundle(row: PostgresColumns(row: row)) }
    }

    public func bundle(customer: String, fileSHA256: String) async throws(SupportStoreError) -> StoredBundle? {
        try await rows("looking up a bundle file of \(customer)", SupportSchema.selectBundles + " WHERE file_sha256 = ? AND customer = ? LIMIT 1",
                       [.text(fileSHA256), .text(customer)])
            .first.map { row throws(SupportStoreError) in try StoredBundle(row: PostgresColumns(row: row)) }
    }

    public func bundles(customer: String?, device: String?, limit: Int?, after: ListCursor?) async throws(SupportStoreError) -> [StoredBundle] {
        let (sql, values) = SupportSchema.bundlesQuery(customer: customer, device: device, limit: limit, after: after)
        return try await rows("listing bundles", sql, values).map { row throws(SupportStoreError) in
            try StoredBundle(row: PostgresColumns(row: row))
        }
    }

    public func recentBundles(customer: String, perDevice: Int) async throws(SupportStoreError) -> [StoredBundle] {
        try await rows("listing recent bundles", SupportSchema.recentBundlesQuery, [.text(customer), .integer(Int64(perDevice))])
            .map { row throws(SupportStoreError) in try StoredBundle(row: PostgresColumns(row: row)) }
    }

    public func devices(customer: String?) async throws(SupportStoreError) -> [DeviceSummary] {
        let (sql, values) = SupportSchema.devicesQuery(customer: customer)
        return try await rows("listing devices", sql, values).map { row throws(SupportStoreError) in
            let columns = PostgresColumns(row: row)
            let latest = try StoredBundle(row: columns)
            return DeviceSummary(customer: latest.customer, latest: latest, bundleCount: Int(try columns.integer("bundle_count") ?? 0))
        }
    }
}

extension PostgresSupportDatabase {
    public func prune(customer: String, before: Date, batch: Int) async throws(SupportStoreError) -> [StoredBundle] {
        var deleted: [StoredBundle] = []
        while true {
            let some = try await rows("pruning bundles of \(customer)", SupportSchema.pruneBundles,
                                      [.text(customer), SQLValue(before), .integer(Int64(batch))])
                .map { row throws(SupportStoreError) in try StoredBundle(row: PostgresColumns(row: row)) }
            deleted += some
            if some.count < batch { return deleted }
        }
    }

    public func pruneHistory(customer: String, before: Date) async throws(SupportStoreError) -> (notifications: Int, cases: Int) {
        let values: [SQLValue] = [.text(customer), SQLValue(before)]
        return (try await rows("pruning the notifications of \(customer)", SupportSchema.pruneNotifications, values).count,
                try await rows("pruning the closed cases of \(customer)", SupportSchema.pruneClosedCases, values).count)
    }

    public func isReferenced(sha256: String) async throws(SupportStoreError) -> Bool {
        try await !rows("checking a bundle file", "SELECT 1 FROM bundles WHERE file_sha256 = ?", [.text(sha256)]).isEmpty
    }

    public func notifiedStates(customer: String) async throws(SupportStoreError) -> [String: String] {
        var states: [String: String] = [:]
        for row in try await rows("reading notified items of \(customer)", "SELECT item, state FROM notified_items WHERE customer = ?", [.text(customer)]) {
            let columns = PostgresColumns(row: row)
            states[try columns.requiredText("item")] = try columns.requiredText("state")
        }
        return states
    }

    public func recordNotification(customer: String, id: UUID, at date: Date, claims: [NotificationClaim],
                                   document: @escaping @Sendable (Set<String>) throws -> String) async throws(SupportStoreError) -> Set<String> {
        try await requireCustomer(customer)
        let logger = logger
        do {
            return try await leased("recording a notification for \(customer)") { connection -> Set<String> in
                try await connection.withTransaction(logger: logger) { connection -> Set<String> in
                var claimed = Set<String>()
                for claim in claims {
                    let (sql, values) = SupportSchema.claimStatement(claim, customer: customer, at: date)
                    for try await _ in try await connection.query(Self.query(sql, values), logger: logger) { claimed.insert(claim.key) }
                }
                guard !claimed.isEmpty else { return claimed }
                try await connection.query(Self.query(SupportSchema.insertNotification, [
                    .text(id.uuidString.lowercased()), .text(customer), SQLValue(date), .integer(Int64(claimed.count)), .text(try document(claimed)),
                ]), logger: logger)
                return claimed
            } }
        } catch let error as PostgresTransactionError {
            throw self.error("recording a notification for \(customer)", error.closureError ?? error.beginError ?? error.commitError ?? error)
        } catch {
            throw self.error("recording a notification for \(customer)", error)
        }
    }

    public func notifications(customer: String, limit: Int) async throws(SupportStoreError) -> [StoredNotification] {
        try await rows("listing notifications of \(customer)", SupportSchema.selectNotifications, [.text(customer), .integer(Int64(limit))])
            .map { row throws(SupportStoreError) in try StoredNotification(row: PostgresColumns(row: row)) }
    }

    public func openCase(_ record: SupportCase) async throws(SupportStoreError) -> Bool {
        try await requireCustomer(record.customer)
        return try await !rows("opening a case for bundle \(record.bundle)", SupportSchema.insertCase + " RETURNING id",
                               SupportSchema.values(record)).isEmpty
    }

    public func cases(customer: String, includeClosed: Bool, limit: Int?, after: ListCursor?) async throws(SupportStoreError) -> [SupportCase] {
        let (sql, values) = SupportSchema.casesQuery(customer: customer, all: includeClosed, limit: limit, after: after)
        return try await rows("listing cases", sql, values).map { row throws(SupportStoreError) in try SupportCase(row: PostgresColumns(row: row)) }
    }

    public func closeCase(customer: String?, id: UUID, at date: Date) async throws(SupportStoreError) -> Bool {
        let (sql, values) = SupportSchema.closeCase(customer: customer, id: id, at: date)
        return try await !rows("closing case \(id)", sql + " RETURNING id", values).isEmpty
    }
}

/// A PostgresNIO row read by column name.
struct PostgresColumns: ColumnReader {
    let row: PostgresRandomAccessRow

    func text(_ column: String) throws(SupportStoreError) -> String? {
        guard row.contains(column) else { throw .database("no column \(column)") }
        do {
            return try row[column].decode(String?.self)
        } catch {
            throw .database("column \(column): \(error)")
        }
    }

    func integer(_ column: String) throws(SupportStoreError) -> Int64? {
        guard row.contains(column) else { throw .database("no column \(column)") }
        do {
            return try row[column].decode(Int64?.self)
        } catch {
            throw .database("column \(column): \(error)")
        }
    }
}
