import Bundle
import Foundation
import Junos

/// A value bound to a statement parameter, the same for both databases.
enum SQLValue: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case null

    init(_ text: String?) { self = text.map(SQLValue.text) ?? .null }
    init(_ date: Date?) { self = date.map { .integer(SupportSchema.milliseconds($0)) } ?? .null }
}

/// Reads one column of a result row by name; each database adapts its row type to it, so that
/// rows map to records in one place (``StoredBundle/init(row:)``).
protocol ColumnReader {
    func text(_ column: String) throws(SupportStoreError) -> String?
    func integer(_ column: String) throws(SupportStoreError) -> Int64?
}

extension ColumnReader {
    func requiredText(_ column: String) throws(SupportStoreError) -> String {
        guard let value = try text(column) else { throw .database("column \(column) is NULL") }
        return value
    }

    func requiredDate(_ column: String) throws(SupportStoreError) -> Date {
        guard let value = try integer(column) else { throw .database("column \(column) is NULL") }
        return SupportSchema.date(value)
    }

    func date(_ column: String) throws(SupportStoreError) -> Date? {
        try integer(column).map(SupportSchema.date)
    }

    func json<T: Decodable>(_ column: String, as type: T.Type) throws(SupportStoreError) -> T {
        let text = try requiredText(column)
        do {
            return try SupportSchema.decoder.decode(T.self, from: Data(text.utf8))
        } catch {
            throw .database("column \(column) holds unreadable JSON: \(error)")
        }
    }
}

/// The schema and statements both databases share. The SQL is written once, in the common
/// subset of SQLite and PostgreSQL: times are BIGINT milliseconds since 1970 (UTC), lists are
/// JSON text; parameters are `?` (PostgreSQL's driver gets them renumbered `$1`, `$2`...).
enum SupportSchema {
    /// Versioned migrations, applied in order, each in the same transaction as its record in
    /// `schema_migrations`. Never edit a released one: add the next.
    static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            """
            CREATE TABLE customers (
                name TEXT PRIMARY KEY,
                created BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE upload_tokens (
                id TEXT PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers(name),
                hash TEXT NOT NULL UNIQUE,
                created BIGINT NOT NULL,
                revoked BIGINT
            )
            """,
            """
            CREATE TABLE agent_keys (
                customer TEXT NOT NULL REFERENCES customers(name),
                public_key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                added BIGINT NOT NULL,
                revoked BIGINT,
                PRIMARY KEY (customer, public_key)
            )
            """,
            """
            CREATE TABLE bundles (
                id TEXT PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers(name),
                agent TEXT NOT NULL,
                agent_version TEXT NOT NULL,
                signer TEXT NOT NULL,
                device TEXT NOT NULL,
                address TEXT NOT NULL,
                hostname TEXT,
                model TEXT,
                serial TEXT,
                version TEXT,
                releases TEXT NOT NULL,
                collection_trigger TEXT NOT NULL,
                collected BIGINT NOT NULL,
                finished BIGINT NOT NULL,
                received BIGINT NOT NULL,
                failed_rpcs TEXT NOT NULL,
                rpc_count INTEGER NOT NULL,
                outcomes TEXT NOT NULL,
                frus TEXT NOT NULL,
                file_sha256 TEXT NOT NULL,
                file_size BIGINT NOT NULL,
                file_name TEXT NOT NULL
            )
            """,
            "CREATE INDEX bundles_by_device ON bundles (customer, device, collected)",
            "CREATE INDEX bundles_by_file ON bundles (file_sha256)",
        ]),
        // Client-certificate subjects (mutual TLS), each naming one customer.
        (2, [
            """
            CREATE TABLE client_subjects (
                subject TEXT PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers(name),
                added BIGINT NOT NULL,
                revoked BIGINT
            )
            """,
        ]),
        // Keys that signed an upload of an authenticated customer without being trusted, when
        // support.conf allows enrollment: waiting for `care-support agent approve`.
        (3, [
            """
            CREATE TABLE pending_keys (
                customer TEXT NOT NULL REFERENCES customers(name),
                public_key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                agent TEXT NOT NULL,
                device TEXT NOT NULL,
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                uploads INTEGER NOT NULL,
                PRIMARY KEY (customer, public_key)
            )
            """,
        ]),
        // Read-only API tokens beside upload tokens (the table keeps its first name).
        (4, ["ALTER TABLE upload_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'upload'"]),
        // `care-support notify`: the state each item (a device's verdict for an advisory, an EOL
        // status, a health finding) had when the customer was last told, and each notification sent.
        (5, [
            """
            CREATE TABLE notified_items (
                customer TEXT NOT NULL REFERENCES customers(name),
                item TEXT NOT NULL,
                state TEXT NOT NULL,
                updated BIGINT NOT NULL,
                PRIMARY KEY (customer, item)
            )
            """,
            """
            CREATE TABLE notifications (
                id TEXT PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers(name),
                created BIGINT NOT NULL,
                item_count INTEGER NOT NULL,
                document TEXT NOT NULL
            )
            """,
            "CREATE INDEX notifications_by_customer ON notifications (customer, created)",
        ]),
        // Cases opened by event bundles. No foreign key to bundles: retention may prune the bundle
        // while its case is still worked.
        (6, [
            """
            CREATE TABLE cases (
                id TEXT PRIMARY KEY,
                customer TEXT NOT NULL REFERENCES customers(name),
                device TEXT NOT NULL,
                event_kind TEXT NOT NULL,
                event_source TEXT NOT NULL,
                event_time BIGINT NOT NULL,
                evidence TEXT NOT NULL,
                bundle_id TEXT NOT NULL UNIQUE,
                opened BIGINT NOT NULL,
                closed BIGINT
            )
            """,
            "CREATE INDEX cases_by_customer ON cases (customer, opened)",
        ]),
        // A customer's bundles and cases newest first, a page at a time (the API's listings):
        // without them, every page sorted all of the customer's rows.
        (7, [
            "CREATE INDEX bundles_by_customer ON bundles (customer, collected, id)",
            "CREATE INDEX bundles_by_customer_device ON bundles (customer, device, collected, id)",
            "CREATE INDEX cases_by_customer_time ON cases (customer, opened, id)",
        ]),
        // A client certificate's public key, pinned with its subject: a CA that is not the
        // intake's alone (a company's) issues any subject to anyone who asks.
        (8, [
            "ALTER TABLE client_subjects ADD COLUMN public_key_sha256 TEXT",
        ]),
    ]

    static var latestVersion: Int { migrations.last?.version ?? 0 }

    static let createMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied BIGINT NOT NULL
        )
        """

    static let bundleColumns = [
        "id", "customer", "agent", "agent_version", "signer", "device", "address", "hostname", "model", "serial",
        "version", "releases", "collection_trigger", "collected", "finished", "received", "failed_rpcs", "rpc_count",
        "outcomes", "frus", "file_sha256", "file_size", "file_name",
    ]

    /// Allows a subject again after revocation; never moves it to another customer (checked first).
    /// The same subject allowed again with another pin (a rotated key, or none) takes that pin.
    static let allowSubject = """
        INSERT INTO client_subjects (subject, customer, added, public_key_sha256) VALUES (?, ?, ?, ?)
        ON CONFLICT (subject) DO UPDATE SET revoked = NULL, added = excluded.added, public_key_sha256 = excluded.public_key_sha256
        WHERE client_subjects.customer = excluded.customer AND (client_subjects.revoked IS NOT NULL
            OR COALESCE(client_subjects.public_key_sha256, '') <> COALESCE(excluded.public_key_sha256, ''))
        """

    static let recordPending = """
        INSERT INTO pending_keys (customer, public_key, fingerprint, agent, device, first_seen, last_seen, uploads)
        VALUES (?, ?, ?, ?, ?, ?, ?, 1)
        ON CONFLICT (customer, public_key) DO UPDATE SET last_seen = excluded.last_seen, agent = excluded.agent,
            device = excluded.device, uploads = pending_keys.uploads + 1
        """

    /// Keeps the key just recorded (arguments: customer, that key, twice) and the most recently
    /// seen others up to the limit; returns the fingerprints removed.
    static let trimPending = """
        DELETE FROM pending_keys WHERE customer = ? AND public_key <> ? AND public_key NOT IN (
            SELECT public_key FROM pending_keys WHERE customer = ? AND public_key <> ?
            ORDER BY last_seen DESC, public_key LIMIT \(PendingKeyRecord.limitPerCustomer - 1))
        RETURNING fingerprint
        """

    static let selectPending = "SELECT customer, public_key, agent, device, first_seen, last_seen, uploads FROM pending_keys"

    static var selectBundles: String { "SELECT \(bundleColumns.joined(separator: ", ")) FROM bundles" }

    /// `ON CONFLICT DO NOTHING`: a second insert of the same id (another process, a retry) is
    /// no error; the caller sees that nothing changed and reads the stored row.
    static var insertBundle: String {
        "INSERT INTO bundles (\(bundleColumns.joined(separator: ", "))) VALUES (\(bundleColumns.map { _ in "?" }.joined(separator: ", "))) ON CONFLICT (id) DO NOTHING"
    }

    static func values(_ bundle: StoredBundle) throws(SupportStoreError) -> [SQLValue] {
        [
            .text(bundle.id.uuidString.lowercased()), .text(bundle.customer), .text(bundle.agent), .text(bundle.agentVersion),
            .text(bundle.signer), .text(bundle.device), .text(bundle.address), SQLValue(bundle.hostname),
            SQLValue(bundle.model), SQLValue(bundle.serial), SQLValue(bundle.version), .text(try json(bundle.releases)),
            .text(bundle.trigger), SQLValue(bundle.collected), SQLValue(bundle.finished), SQLValue(bundle.received),
            .text(try json(bundle.failedRPCs)), .integer(Int64(bundle.rpcCount)), .text(try json(bundle.outcomes)),
            .text(try json(bundle.frus)), .text(bundle.fileSHA256), .integer(Int64(bundle.fileSize)), .text(bundle.fileName),
        ]
    }

    /// Bundles newest first, optionally of one customer and/or device, one page of them.
    static func bundlesQuery(customer: String?, device: String?, limit: Int? = nil, after: ListCursor? = nil) -> (String, [SQLValue]) {
        var conditions: [String] = []
        var values: [SQLValue] = []
        if let customer { conditions.append("customer = ?"); values.append(.text(customer)) }
        if let device { conditions.append("device = ?"); values.append(.text(device)) }
        let (page, pageValues) = self.page(time: "collected", limit: limit, after: after)
        if let after = page.after { conditions.append(after) }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return (selectBundles + filter + " ORDER BY collected DESC, id DESC" + page.limit, values + pageValues)
    }

    /// A newest-first page's condition (rows after the cursor, in `ORDER BY time DESC, id DESC`)
    /// and its LIMIT clause, with their values in that order. A row-value comparison, which both
    /// SQLite and PostgreSQL read as one backward range of the (customer, time, id) index: with
    /// `time < ? OR (time = ? AND id > ?)` neither did, and the thousandth page scanned every row
    /// of the pages before it.
    static func page(time: String, limit: Int?, after: ListCursor?) -> ((after: String?, limit: String), [SQLValue]) {
        var values: [SQLValue] = []
        var condition: String?
        if let after {
            condition = "(\(time), id) < (?, ?)"
            values += [.integer(after.milliseconds), .text(after.id.uuidString.lowercased())]
        }
        var clause = ""
        if let limit {
            clause = " LIMIT ?"
            values.append(.integer(Int64(max(0, limit))))
        }
        return ((condition, clause), values)
    }

    /// A customer's newest bundles, at most `?` per device, newest first.
    static var recentBundlesQuery: String {
        """
        SELECT \(bundleColumns.joined(separator: ", ")) FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY device ORDER BY collected DESC, id DESC) AS recency
            FROM bundles WHERE customer = ?) ranked
        WHERE recency <= ? ORDER BY collected DESC, id DESC
        """
    }

    /// Each device's newest bundle (by collection time; the bundle id breaks ties) and its count.
    static func devicesQuery(customer: String?) -> (String, [SQLValue]) {
        let filter = customer == nil ? "" : " WHERE customer = ?"
        let sql = """
            SELECT \(bundleColumns.map { "b." + $0 }.joined(separator: ", ")), c.bundle_count FROM bundles b
            JOIN (SELECT customer AS c_customer, device AS c_device, COUNT(*) AS bundle_count FROM bundles\(filter)
                  GROUP BY customer, device) c ON c.c_customer = b.customer AND c.c_device = b.device
            WHERE NOT EXISTS (SELECT 1 FROM bundles n WHERE n.customer = b.customer AND n.device = b.device
                              AND (n.collected > b.collected OR (n.collected = b.collected AND n.id > b.id)))
            ORDER BY b.customer, b.device
            """
        return (sql, customer.map { [.text($0)] } ?? [])
    }

    /// Deletes at most `?` (the third argument) of a customer's bundles collected before a time,
    /// never the latest of a device, and returns them. In batches: the first retention of a large
    /// store deleted everything in one statement, holding SQLite's writer (every intake waiting,
    /// 503 after the busy timeout) and every deleted row in memory.
    static var pruneBundles: String {
        """
        DELETE FROM bundles WHERE id IN (
            SELECT b.id FROM bundles b WHERE b.customer = ? AND b.collected < ? AND EXISTS (
                SELECT 1 FROM bundles n WHERE n.customer = b.customer AND n.device = b.device
                AND (n.collected > b.collected OR (n.collected = b.collected AND n.id > b.id)))
            LIMIT ?)
        RETURNING \(bundleColumns.joined(separator: ", "))
        """
    }

    /// Bundles one retention statement deletes.
    static let pruneBatch = 1000

    /// A customer's notifications recorded before a time (retention).
    static let pruneNotifications = "DELETE FROM notifications WHERE customer = ? AND created < ? RETURNING id"
    /// A customer's cases closed before a time (retention); open cases stay.
    static let pruneClosedCases = "DELETE FROM cases WHERE customer = ? AND closed IS NOT NULL AND closed < ? RETURNING id"

    static let caseColumns = ["id", "customer", "device", "event_kind", "event_source", "event_time", "evidence", "bundle_id", "opened", "closed"]

    /// A second case for the same bundle (a re-upload, two intakes) is no error and no case.
    static var insertCase: String {
        "INSERT INTO cases (\(caseColumns.joined(separator: ", "))) VALUES (\(caseColumns.map { _ in "?" }.joined(separator: ", "))) ON CONFLICT (bundle_id) DO NOTHING"
    }

    static func values(_ record: SupportCase) -> [SQLValue] {
        [.text(record.id.uuidString.lowercased()), .text(record.customer), .text(record.device), .text(record.eventKind),
         .text(record.eventSource), SQLValue(record.eventTime), .text(record.evidence), .text(record.bundle.uuidString.lowercased()),
         SQLValue(record.opened), SQLValue(record.closed)]
    }

    /// A customer's cases, newest first; open ones only unless `all`.
    static func casesQuery(customer: String, all: Bool, limit: Int? = nil, after: ListCursor? = nil) -> (String, [SQLValue]) {
        let (page, pageValues) = self.page(time: "opened", limit: limit, after: after)
        return ("SELECT \(caseColumns.joined(separator: ", ")) FROM cases WHERE customer = ?" + (all ? "" : " AND closed IS NULL")
            + (page.after.map { " AND " + $0 } ?? "") + " ORDER BY opened DESC, id DESC" + page.limit, [.text(customer)] + pageValues)
    }

    /// Closes an open case, of one customer when given.
    static func closeCase(customer: String?, id: UUID, at date: Date) -> (String, [SQLValue]) {
        ("UPDATE cases SET closed = ? WHERE id = ? AND closed IS NULL" + (customer == nil ? "" : " AND customer = ?"),
         [SQLValue(date), .text(id.uuidString.lowercased())] + (customer.map { [.text($0)] } ?? []))
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    /// The date the database gives back for `date`: whole milliseconds.
    static func stored(_ date: Date) -> Date { self.date(milliseconds(date)) }
    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    static func json(_ value: some Encodable) throws(SupportStoreError) -> String {
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw .database("cannot encode \(type(of: value)): \(error)")
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let decoder = JSONDecoder()
}

extension SupportCase {
    init(row: some ColumnReader) throws(SupportStoreError) {
        let idText = try row.requiredText("id"), bundleText = try row.requiredText("bundle_id")
        guard let id = UUID(uuidString: idText), let bundle = UUID(uuidString: bundleText) else {
            throw .database("case \(idText) or its bundle \(bundleText) is not a UUID")
        }
        self.init(id: id, customer: try row.requiredText("customer"), device: try row.requiredText("device"),
                  eventKind: try row.requiredText("event_kind"), eventSource: try row.requiredText("event_source"),
                  eventTime: try row.requiredDate("event_time"), evidence: try row.requiredText("evidence"), bundle: bundle,
                  opened: try row.requiredDate("opened"), closed: try row.date("closed"))
    }
}

extension StoredBundle {
    init(row: some ColumnReader) throws(SupportStoreError) {
        let idText = try row.requiredText("id")
        guard let id = UUID(uuidString: idText) else { throw .database("bundle id \(idText) is not a UUID") }
        self.init(
            id: id, customer: try row.requiredText("customer"), agent: try row.requiredText("agent"),
            agentVersion: try row.requiredText("agent_version"), signer: try row.requiredText("signer"),
            device: try row.requiredText("device"), address: try row.requiredText("address"),
            hostname: try row.text("hostname"), model: try row.text("model"), serial: try row.text("serial"),
            version: try row.text("version"), releases: try row.json("releases", as: [String].self),
            trigger: try row.requiredText("collection_trigger"), collected: try row.requiredDate("collected"),
            finished: try row.requiredDate("finished"), received: try row.requiredDate("received"),
            failedRPCs: try row.json("failed_rpcs", as: [String].self), rpcCount: Int(try row.integer("rpc_count") ?? 0),
            outcomes: try row.json("outcomes", as: [RPCOutcome].self),
            frus: try row.json("frus", as: [FieldReplaceableUnit].self),
            fileSHA256: try row.requiredText("file_sha256"), fileSize: Int(try row.integer("file_size") ?? 0),
            fileName: try row.requiredText("file_name"))
    }
}

/// Notification statements, shared by both databases.
extension SupportSchema {
    /// A first notification of an item: nothing when another run recorded it first.
    static let claimNewItem = """
        INSERT INTO notified_items (customer, item, state, updated) VALUES (?, ?, ?, ?)
        ON CONFLICT (customer, item) DO NOTHING RETURNING item
        """
    /// A change of an item: only when it still has the state this run read.
    static let claimChangedItem = "UPDATE notified_items SET state = ?, updated = ? WHERE customer = ? AND item = ? AND state = ? RETURNING item"
    static let insertNotification = "INSERT INTO notifications (id, customer, created, item_count, document) VALUES (?, ?, ?, ?, ?)"
    static let selectNotifications = "SELECT id, customer, created, item_count, document FROM notifications WHERE customer = ? ORDER BY created DESC, id LIMIT ?"

    static func claimStatement(_ claim: NotificationClaim, customer: String, at date: Date) -> (String, [SQLValue]) {
        if let expected = claim.expected {
            return (claimChangedItem, [.text(claim.state), SQLValue(date), .text(customer), .text(claim.key), .text(expected)])
        }
        return (claimNewItem, [.text(customer), .text(claim.key), .text(claim.state), SQLValue(date)])
    }
}

extension StoredNotification {
    init(row: some ColumnReader) throws(SupportStoreError) {
        guard let id = UUID(uuidString: try row.requiredText("id")) else { throw .database("notification id is not a UUID") }
        self.init(id: id, customer: try row.requiredText("customer"), created: try row.requiredDate("created"),
                  itemCount: Int(try row.integer("item_count") ?? 0), document: try row.requiredText("document"))
    }
}
