import ConfigurationSyntax
import Foundation
import Reports
import SupportStore

/// support.conf: where the intake listens and with which certificates, and where bundles and
/// the database are kept.
///
/// ```
/// [server]
/// listen = 127.0.0.1:8443
/// tls-certificate = /etc/care-support/server.crt
/// tls-key = /etc/care-support/server.key
/// client-ca = /etc/care-support/clients-ca.crt   # optional: mTLS
/// base-path = /bundles/                           # default
/// max-bundle-size = 64M                           # default
/// enrollment = off                                # or pending: unknown agent keys wait for approval
/// idle-timeout = 60s                              # default: a connection silent this long is closed
///
/// [store]
/// directory = /var/lib/care-support               # bundle files
/// database = sqlite:/var/lib/care-support/support.db   # default: sqlite:DIRECTORY/support.db
/// keep = 400d                                     # retention; default: forever
///
/// [customer ACME]
/// keep = 800d                                     # this customer's own retention
///
/// [reports]
/// data-directory = /usr/local/share/care-agent/data   # default: the installed data
/// eol-window = 12m                                # "within" = end of support in 12 months
/// cpu-warning = 80                                # health thresholds, as care-agent's [reports]
/// ```
public struct SupportConfiguration: Sendable, Equatable {
    /// `[server]`.
    public struct Server: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 8443
        public var tlsCertificate: String?
        public var tlsKey: String?
        /// CA whose client certificates are accepted (mutual TLS); nil: bearer tokens only.
        public var clientCA: String?
        /// Always starts and ends with "/".
        public var basePath = "/bundles/"
        /// Bodies larger than this are refused with 413 (and never written whole).
        public var maxBundleSize = 64 << 20
        /// `enrollment = pending`: a valid bundle of an authenticated customer signed by an unknown
        /// key puts the key on the pending list for `care-support agent approve` (still refused until then).
        public var enrollment = false
        /// A connection that sends nothing for this long (no TLS handshake, no request, a body that
        /// stalls) is closed: an agent whose link died mid-upload, or a client that connects and
        /// waits, would otherwise hold a descriptor (and a partial upload) for good.
        public var idleTimeout: Duration = .seconds(60)

        public init() {}
    }

    /// `[store]`.
    public struct Store: Sendable, Equatable {
        public var directory: String
        public var database: DatabaseLocation
        /// Retention: bundles collected longer ago are deleted (never a device's latest); nil keeps all.
        public var keep: TimeInterval?

        public init(directory: String, database: DatabaseLocation? = nil) {
            self.directory = directory
            self.database = database ?? .sqlite(path: directory + "/support.db")
        }
    }

    /// `[reports]`: what `report`, `notify` and the served reports use.
    public struct ReportSettings: Sendable, Equatable {
        /// nil: the installed data directory or the source tree's (``ReferenceData/locate(explicit:configured:)``).
        public var dataDirectory: String?
        /// End of support within this many months counts as "within" the EOL window.
        public var eolWindowMonths = 12
        public var thresholds = HealthThresholds()

        public init() {}
    }

    public var path: String
    public var server: Server
    public var store: Store
    public var reports = ReportSettings()
    /// `[customer NAME] keep = ...`: a customer's own retention (nil: keep all), over `[store] keep`.
    public var customerKeep: [String: TimeInterval?]

    public static let grammar = SectionGrammar(
        kinds: [.init("server"), .init("store"), .init("customer", takesName: true, example: "[customer ACME]"), .init("reports")],
        summary: "server, store, customer NAME or reports", firstSection: "[server]")

    public init(path: String, server: Server = Server(), store: Store, customerKeep: [String: TimeInterval?] = [:]) {
        self.path = path
        self.server = server
        self.store = store
        self.customerKeep = customerKeep
    }

    /// How long a customer's bundles are kept (nil: forever).
    public func keep(customer: String) -> TimeInterval? {
        if let own = customerKeep[customer] { return own }
        return store.keep
    }

    /// Reads support.conf.
    public init(path: String) throws(ConfigurationError) {
        try self.init(file: ConfigurationFile(path: path, grammar: Self.grammar))
    }

    public init(file: ConfigurationFile) throws(ConfigurationError) {
        func fail(_ entry: ConfigurationFile.Entry, _ message: String, atKey: Bool = false) -> ConfigurationError {
            ConfigurationError(file: file.path, line: entry.line, column: atKey ? 1 : entry.valueColumn, message: message)
        }
        var server = Server()
        var directory: String?
        var database: DatabaseLocation?
        var keep: TimeInterval?
        var customerKeep: [String: TimeInterval?] = [:]
        var reports = ReportSettings()
        var seen: [String: Int] = [:]
        for section in file.sections {
            let header = section.name.map { "\(section.kind) \($0)" } ?? section.kind
            for entry in section.entries {
                let v = entry.value
                if let first = seen["\(header).\(entry.key)"] {
                    throw fail(entry, "\(entry.key) is set twice in [\(header)] (first on line \(first))", atKey: true)
                }
                seen["\(header).\(entry.key)"] = entry.line
                func retention() throws(ConfigurationError) -> TimeInterval? {
                    if v == "forever" { return nil }
                    guard let days = Self.days(v) else {
                        throw fail(entry, "expected a retention such as 400d, 12w or forever, found \"\(v)\"")
                    }
                    return days
                }
                func path() throws(ConfigurationError) -> String {
                    guard v.hasPrefix("/") else { throw fail(entry, "expected an absolute file path, found \"\(v)\"") }
                    return v
                }
                switch (section.kind, entry.key) {
                case ("server", "listen"):
                    guard let (host, port) = Self.hostPort(v) else {
                        throw fail(entry, "expected HOST:PORT such as 127.0.0.1:8443 or [::]:8443, found \"\(v)\"")
                    }
                    server.host = host
                    server.port = port
                case ("server", "tls-certificate"): server.tlsCertificate = try path()
                case ("server", "tls-key"): server.tlsKey = try path()
                case ("server", "client-ca"): server.clientCA = try path()
                case ("server", "base-path"):
                    guard v.hasPrefix("/"), !v.contains("//"), !v.contains("?"), !v.contains("#"), !v.contains(" "),
                          !v.split(separator: "/").contains(where: { $0 == ".." || $0 == "." || $0.hasPrefix(":") }) else {
                        throw fail(entry, "expected a URL path such as /bundles/, found \"\(v)\"")
                    }
                    server.basePath = v.hasSuffix("/") ? v : v + "/"
                case ("server", "max-bundle-size"):
                    guard let size = Self.size(v), size > 0 else {
                        throw fail(entry, "expected a size such as 64M, 512k or 1G, found \"\(v)\"")
                    }
                    server.maxBundleSize = size
                case ("server", "enrollment"):
                    switch v {
                    case "off": server.enrollment = false
                    case "pending": server.enrollment = true
                    default: throw fail(entry, "expected off or pending, found \"\(v)\"")
                    }
                case ("server", "idle-timeout"):
                    guard let timeout = parseDuration(v), timeout >= .seconds(1), timeout <= .seconds(3600) else {
                        throw fail(entry, "expected a time from 1s to 60m such as 60s or 2m, found \"\(v)\"")
                    }
                    server.idleTimeout = timeout
                case ("store", "keep"): keep = try retention()
                case ("customer", "keep"):
                    let name = section.name ?? ""
                    do {
                        try Customer.validate(name: name)
                    } catch {
                        throw ConfigurationError(file: file.path, line: section.line, column: 11, message: error.description)
                    }
                    customerKeep[name] = .some(try retention())
                case ("reports", "data-directory"): reports.dataDirectory = try path()
                case ("reports", "eol-window"):
                    guard let months = LifecycleReport.windowMonths(v) else {
                        throw fail(entry, "expected a number of months (12m) or years (2y), found \"\(v)\"")
                    }
                    reports.eolWindowMonths = months
                case ("reports", let key) where HealthThresholds.keyNames.contains(key):
                    let range = HealthThresholds.range(of: key)
                    guard let value = Int(v), range.contains(value) else {
                        throw fail(entry, "expected a whole number from \(range.lowerBound) to \(range.upperBound) for \(key), found \"\(v)\"")
                    }
                    _ = reports.thresholds.set(key, to: value)
                case ("reports", _):
                    throw fail(entry, "unknown key \"\(entry.key)\" in [reports]; expected data-directory, eol-window, \(HealthThresholds.keyNames.joined(separator: ", "))", atKey: true)
                case ("customer", _):
                    throw fail(entry, "unknown key \"\(entry.key)\" in [customer \(section.name ?? "")]; expected keep", atKey: true)
                case ("store", "directory"): directory = try path()
                case ("store", "database"):
                    do {
                        database = try DatabaseLocation(v)
                    } catch {
                        throw fail(entry, error.description)
                    }
                case ("server", _):
                    throw fail(entry, "unknown key \"\(entry.key)\" in [server]; expected listen, tls-certificate, tls-key, client-ca, base-path, max-bundle-size, enrollment or idle-timeout", atKey: true)
                default:
                    throw fail(entry, "unknown key \"\(entry.key)\" in [store]; expected directory, database or keep", atKey: true)
                }
            }
        }
        guard let directory else {
            throw ConfigurationError(file: file.path, line: 0, column: 0,
                                     message: "expected [store] directory = DIR (where bundle files are kept)")
        }
        if let contradiction = reports.thresholds.contradiction {
            let line = file.sections.first { $0.kind == "reports" }?.entries.first?.line ?? 0
            throw ConfigurationError(file: file.path, line: line, column: 1, message: "[reports]: \(contradiction): the warning would never be raised")
        }
        var store = Store(directory: directory, database: database)
        store.keep = keep
        self.init(path: file.path, server: server, store: store, customerKeep: customerKeep)
        self.reports = reports
    }

    /// What `serve` needs beyond the store: the certificate and key.
    public func validateForServing() throws(ConfigurationError) {
        guard server.tlsCertificate != nil, server.tlsKey != nil else {
            throw ConfigurationError(file: path, line: 0, column: 0,
                                     message: "expected tls-certificate = FILE and tls-key = FILE in [server]: the intake serves HTTPS only")
        }
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(" "), let port = Int(portText), (1...65535).contains(port) else { return nil }
        return (String(host), port)
    }

    /// "400d", "12w", "36h" → seconds.
    static func days(_ text: String) -> TimeInterval? {
        let units: [Character: TimeInterval] = ["h": 3600, "d": 86400, "w": 7 * 86400]
        guard let last = text.last, let unit = units[last], let count = Int(text.dropLast()), count > 0, count < 100_000 else { return nil }
        return TimeInterval(count) * unit
    }

    /// "64M", "512k", "1G", "1000" → bytes.
    static func size(_ text: String) -> Int? {
        let units: [Character: Int] = ["k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30, "G": 1 << 30]
        if let last = text.last, let unit = units[last] {
            return Int(text.dropLast()).flatMap { $0 <= Int.max / unit ? $0 * unit : nil }
        }
        return Int(text)
    }
}
