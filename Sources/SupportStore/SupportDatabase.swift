import Bundle
import Crypto
import Foundation
import Logging

/// Why a store operation failed, in words an operator can act on.
public enum SupportStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input was refused (a bad name, key, location).
    case invalid(String)
    case unknownCustomer(String)
    case customerExists(String)
    /// The database could not be opened, migrated or queried; the text says which and why.
    case database(String)
    /// The bundle file area could not be written or read.
    case files(String)
    /// The database was written by a newer care-support.
    case schemaTooNew(found: Int, supported: Int)

    public var description: String {
        switch self {
        case let .invalid(reason): return reason
        case let .unknownCustomer(name): return "no customer \(name): add it with `care-support customer add \(name)`"
        case let .customerExists(name): return "customer \(name) exists already"
        case let .database(reason): return "database: \(reason)"
        case let .files(reason): return "bundle files: \(reason)"
        case let .schemaTooNew(found, supported):
            return "the database schema is version \(found), this care-support knows up to \(supported): upgrade care-support"
        }
    }
}

/// What ``SupportDatabase/insert(_:)`` did.
public enum BundleInsertion: Sendable, Equatable {
    /// A new row was committed.
    case inserted
    /// A bundle with this id is stored already (maybe by another intake process a moment ago).
    case duplicate(existing: StoredBundle)
}

/// Where the database is: `sqlite:PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    public init(_ text: String) throws(SupportStoreError) {
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard path.hasPrefix("/") else { throw .invalid("expected sqlite:/ABSOLUTE/PATH, found \"\(text)\"") }
            self = .sqlite(path: path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            throw .invalid("expected sqlite:/PATH or postgres://USER@HOST:PORT/DATABASE, found \"\(text.prefix(40))\"")
        }
    }

    /// Without the password, for logs and messages.
    public var description: String {
        switch self {
        case let .sqlite(path): return "sqlite:\(path)"
        case let .postgres(url):
            guard var parts = URLComponents(string: url) else { return "postgres://(unparsable)" }
            if parts.password != nil { parts.password = "***" }
            return parts.string ?? "postgres://"
        }
    }
}

/// The support side's records: customers, their upload tokens and trusted agent keys, and the
/// stored bundles with their metadata. One protocol, two implementations
/// (``SQLiteSupportDatabase``, ``PostgresSupportDatabase``), one conformance suite
/// (Tests/SupportStoreTests) that runs against both.
///
/// Idempotence lives here: bundle ids are unique in the schema, so two intake processes
/// inserting the same bundle at once get one `.inserted` and one `.duplicate`.
public protocol SupportDatabase: Sendable {
    /// Applies the schema migrations not applied yet; returns their versions (empty: up to date).
    @discardableResult func migrate() async throws(SupportStoreError) -> [Int]
    /// The schema version applied (0: none).
    func schemaVersion() async throws(SupportStoreError) -> Int

    func addCustomer(_ name: String, at date: Date) async throws(SupportStoreError) -> Customer
    func customers() async throws(SupportStoreError) -> [Customer]
    func customer(named name: String) async throws(SupportStoreError) -> Customer?

    /// Stores a token's id, hash (never the token) and scope.
    func addToken(customer: String, id: String, hash: String, scope: TokenScope, at date: Date) async throws(SupportStoreError)
    /// Returns false when the customer has no live token with this id.
    func revokeToken(customer: String, id: String, at date: Date) async throws(SupportStoreError) -> Bool
    func tokens(customer: String) async throws(SupportStoreError) -> [UploadTokenRecord]
    /// The customer whose live (unrevoked) token of this scope has this hash.
    func customer(forTokenHash hash: String, scope: TokenScope) async throws(SupportStoreError) -> String?

    /// Notes an upload signed by an untrusted key (enrollment); the key waits for approval. At
    /// most ``PendingKeyRecord/limitPerCustomer`` keys wait per customer, this one always among
    /// them: returns the fingerprints of the least recently seen others it pushed out.
    @discardableResult
    func recordPending(customer: String, key: AgentPublicKey, agent: String, device: String, at date: Date) async throws(SupportStoreError) -> [String]
    /// Keys waiting for approval, of one customer or all.
    func pendingKeys(customer: String?) async throws(SupportStoreError) -> [PendingKeyRecord]

    /// Trusts a key for a customer (again, if it was revoked) and clears it from the pending
    /// list. Returns false when it was trusted already.
    func trustKey(customer: String, key: AgentPublicKey, at date: Date) async throws(SupportStoreError) -> Bool
    /// Returns false when the key was not trusted for that customer.
    func revokeKey(customer: String, key: AgentPublicKey, at date: Date) async throws(SupportStoreError) -> Bool
    /// Every key ever trusted for the customer, revoked ones included.
    func keys(customer: String) async throws(SupportStoreError) -> [TrustedKeyRecord]

    /// Lets a client certificate with this subject (RFC 4514, `CN=agent-1,O=ACME`) upload for the
    /// customer: pinned to `pin`'s public key, or any key the CA signed. Returns false when it may
    /// already, so pinned; fails when the subject belongs to another customer.
    func allowSubject(customer: String, subject: String, pin: SubjectPin, at date: Date) async throws(SupportStoreError) -> Bool
    /// Returns false when the subject was not allowed for that customer.
    func revokeSubject(customer: String, subject: String, at date: Date) async throws(SupportStoreError) -> Bool
    /// Every subject ever allowed for the customer, revoked ones included.
    func subjects(customer: String) async throws(SupportStoreError) -> [ClientSubjectRecord]
    /// The customer a live client-certificate subject belongs to, and the public key it is pinned to.
    func clientAccess(forSubject subject: String) async throws(SupportStoreError) -> ClientAccess?

    /// Commits the row of a bundle whose file is stored already.
    func insert(_ bundle: StoredBundle) async throws(SupportStoreError) -> BundleInsertion
    func bundle(id: UUID) async throws(SupportStoreError) -> StoredBundle?
    /// A bundle of `customer` stored from a file with this SHA-256 (the same bytes again).
    func bundle(customer: String, fileSHA256: String) async throws(SupportStoreError) -> StoredBundle?
    /// Newest collection first; nil filters match everything. `limit`: at most that many; `after`:
    /// the page that follows the row at that cursor (``ListCursor``).
    func bundles(customer: String?, device: String?, limit: Int?, after: ListCursor?) async throws(SupportStoreError) -> [StoredBundle]
    /// A customer's newest `perDevice` bundles of each device, newest collection first: what a
    /// report reads, whatever the length of the history kept.
    func recentBundles(customer: String, perDevice: Int) async throws(SupportStoreError) -> [StoredBundle]
    /// Each device's latest bundle, by customer then device name.
    func devices(customer: String?) async throws(SupportStoreError) -> [DeviceSummary]

    /// Retention: deletes the customer's bundles collected before `before`, except each device's
    /// latest, and returns what it deleted (their files are the caller's, see
    /// ``BundleFileStore/removeUnreferenced(database:grace:now:)``).
    /// `batch`: bundles deleted per statement (each its own transaction, so that intakes write
    /// between them); ``prune(customer:before:)`` uses 1,000.
    func prune(customer: String, before: Date, batch: Int) async throws(SupportStoreError) -> [StoredBundle]
    /// Retention of the rest of a customer's history: deletes its notifications recorded before
    /// `before` and its cases closed before it (open cases stay, however old); returns how many
    /// of each went. What each item was last notified as stays: it is what keeps an unchanged
    /// item from being notified again.
    func pruneHistory(customer: String, before: Date) async throws(SupportStoreError) -> (notifications: Int, cases: Int)
    /// Whether any stored bundle's file has this SHA-256.
    func isReferenced(sha256: String) async throws(SupportStoreError) -> Bool

    /// The state each item had when the customer was last notified ("" once resolved).
    func notifiedStates(customer: String) async throws(SupportStoreError) -> [String: String]
    /// Records a notification in one transaction: each claim moves its item from the state it
    /// expects to the new one, and only the claims that still find their expected state are
    /// kept (so two `notify` runs at once never tell the same item twice). `document` renders
    /// the notification from the claimed items; nothing is recorded when no claim holds.
    /// Returns the claimed item keys.
    func recordNotification(customer: String, id: UUID, at date: Date, claims: [NotificationClaim],
                            document: @escaping @Sendable (Set<String>) throws -> String) async throws(SupportStoreError) -> Set<String>
    /// Notifications recorded for the customer, newest first.
    func notifications(customer: String, limit: Int) async throws(SupportStoreError) -> [StoredNotification]
    /// Records the case an event bundle opens; false when that bundle has one already.
    func openCase(_ record: SupportCase) async throws(SupportStoreError) -> Bool
    /// A customer's cases, newest first: open ones, or all with `includeClosed`.
    func cases(customer: String, includeClosed: Bool, limit: Int?, after: ListCursor?) async throws(SupportStoreError) -> [SupportCase]
    /// Closes an open case (only the customer's, when `customer` is given); false when there is
    /// no such open case.
    func closeCase(customer: String?, id: UUID, at date: Date) async throws(SupportStoreError) -> Bool

    /// Closes connections (PostgreSQL); the database is unusable afterwards.
    func close() async
}

extension SupportDatabase {
    /// Keys a bundle of this customer may be signed by.
    public func trustedKeys(customer: String) async throws(SupportStoreError) -> Set<AgentPublicKey> {
        Set(try await keys(customer: customer).filter { $0.revoked == nil }.map(\.key))
    }
}

/// Upload tokens: `<id>.<secret>`, the id public (it names the token in `token list` and
/// `token revoke`), the secret 256 random bits. Only the SHA-256 of the whole token is stored,
/// so a copy of the database lets nobody upload.
public enum UploadToken {
    /// A new token and its id.
    public static func generate() -> (id: String, token: String) {
        var rng = SystemRandomNumberGenerator()
        let idBytes = (0..<6).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let secretBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let id = idBytes.map { String(format: "%02x", $0) }.joined()
        let secret = Data(secretBytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return (id, "\(id).\(secret)")
    }

    /// Lower-case hex SHA-256 of the token text.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

extension DatabaseLocation {
    /// Opens (and for SQLite creates) the database; run ``SupportDatabase/migrate()`` before use.
    public func open(logger: Logger = Logger(label: "care-support.store")) async throws(SupportStoreError) -> any SupportDatabase {
        switch self {
        case let .sqlite(path): return try SQLiteSupportDatabase(path: path)
        case let .postgres(url): return try PostgresSupportDatabase(url: url, logger: logger)
        }
    }
}

/// One item of a notification about to be recorded: `key` moves from `expected` (nil: never
/// notified) to `state`.
public struct NotificationClaim: Sendable, Equatable {
    public var key: String
    public var expected: String?
    public var state: String

    public init(key: String, expected: String?, state: String) {
        self.key = key
        self.expected = expected
        self.state = state
    }
}

/// A notification as recorded: its rendered JSON document and how many items it told.
public struct StoredNotification: Sendable, Equatable {
    public var id: UUID
    public var customer: String
    public var created: Date
    public var itemCount: Int
    /// The notification's JSON, as `care-support notify --format json` printed it.
    public var document: String

    public init(id: UUID, customer: String, created: Date, itemCount: Int, document: String) {
        self.id = id
        self.customer = customer
        self.created = created
        self.itemCount = itemCount
        self.document = document
    }
}

extension SupportDatabase {
    /// ``prune(customer:before:batch:)`` in batches of 1,000.
    public func prune(customer: String, before: Date) async throws(SupportStoreError) -> [StoredBundle] {
        try await prune(customer: customer, before: before, batch: SupportSchema.pruneBatch)
    }
}

extension SupportDatabase {
    /// Every bundle matching, newest collection first.
    public func bundles(customer: String?, device: String?) async throws(SupportStoreError) -> [StoredBundle] {
        try await bundles(customer: customer, device: device, limit: nil, after: nil)
    }

    /// Every case of `customer`, newest first.
    public func cases(customer: String, includeClosed: Bool) async throws(SupportStoreError) -> [SupportCase] {
        try await cases(customer: customer, includeClosed: includeClosed, limit: nil, after: nil)
    }
}

/// Where the next page of a newest-first listing starts: after the row with this time and id,
/// the last of the page before (keyset paging: a page costs the same at the millionth row, and
/// rows stored meanwhile neither repeat nor shift the pages). As text, for API clients, it is
/// opaque: `<milliseconds>.<id>`.
public struct ListCursor: Sendable, Equatable, CustomStringConvertible {
    /// The row's listing time (a bundle's collection, a case's opening), in whole milliseconds.
    public var milliseconds: Int64
    public var id: UUID

    public init(time: Date, id: UUID) {
        milliseconds = SupportSchema.milliseconds(time)
        self.id = id
    }

    /// The cursor after `bundle`.
    public init(after bundle: StoredBundle) { self.init(time: bundle.collected, id: bundle.id) }
    /// The cursor after `record`.
    public init(after record: SupportCase) { self.init(time: record.opened, id: record.id) }

    /// Parses ``description``; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let milliseconds = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else { return nil }
        self.milliseconds = milliseconds
        self.id = id
    }

    public var description: String { "\(milliseconds).\(id.uuidString.lowercased())" }
}

extension SupportDatabase {
    /// Allows `subject`, its pin (if any) as it was.
    public func allowSubject(customer: String, subject: String, at date: Date) async throws(SupportStoreError) -> Bool {
        try await allowSubject(customer: customer, subject: subject, pin: .unchanged, at: date)
    }
}

/// The public key an allowed subject is pinned to, as `certificate allow` changes it.
public enum SubjectPin: Sendable, Equatable {
    /// As it was (none for a new subject): allowing a subject again must not unpin it unasked.
    case unchanged
    /// Only this key (`sha256//BASE64`, ``ClientAccess/pin(subjectPublicKeyInfo:)``).
    case key(String)
    /// Any key the CA signed.
    case anyKey

    /// The pin to store, given the one stored now.
    func applied(to current: String?) -> String? {
        switch self {
        case .unchanged: return current
        case let .key(pin): return pin
        case .anyKey: return nil
        }
    }
}

/// Who a client certificate's subject uploads for, and the public key it must have, if pinned.
public struct ClientAccess: Sendable, Equatable {
    public var customer: String
    /// `sha256//BASE64` of the certificate's SubjectPublicKeyInfo; nil: any key the CA signed.
    public var publicKeySHA256: String?

    public init(customer: String, publicKeySHA256: String?) {
        self.customer = customer
        self.publicKeySHA256 = publicKeySHA256
    }

    /// `sha256//BASE64` of a SubjectPublicKeyInfo in DER (curl's `--pinnedpubkey` form).
    public static func pin(subjectPublicKeyInfo der: some DataProtocol) -> String {
        "sha256//" + Data(SHA256.hash(data: Data(der))).base64EncodedString()
    }

    /// `value` as ``pin(subjectPublicKeyInfo:)`` writes it (the base64 re-encoded, so that it
    /// compares equal to a computed pin), or nil when it is not a SHA-256 pin.
    public static func normalizedPin(_ value: String) -> String? {
        guard value.hasPrefix("sha256//"), let digest = Data(base64Encoded: String(value.dropFirst(8))), digest.count == 32 else { return nil }
        return "sha256//" + digest.base64EncodedString()
    }
}
