import Foundation
import Junos
import NETCONF
import NETCONFSSH
import SSH

/// Where the SSH login for a group comes from. agent.conf never holds a secret itself: a password
/// or passphrase is read from a file (mode 0600) or from a systemd credential
/// (`LoadCredential=NAME` in the unit loads `/etc/credstore/NAME` → `$CREDENTIALS_DIRECTORY/NAME`).
public struct CredentialSource: Sendable, Hashable {
    public var user: String?
    public var keyFile: String?
    public var passphraseFile: String?
    public var passwordFile: String?
    /// A systemd credential holding the password.
    public var passwordCredential: String?
    /// A systemd credential holding the key's passphrase.
    public var passphraseCredential: String?

    public init(user: String? = nil, keyFile: String? = nil, passphraseFile: String? = nil, passwordFile: String? = nil,
                passwordCredential: String? = nil, passphraseCredential: String? = nil) {
        self.user = user
        self.keyFile = keyFile
        self.passphraseFile = passphraseFile
        self.passwordFile = passwordFile
        self.passwordCredential = passwordCredential
        self.passphraseCredential = passphraseCredential
    }

    /// Reads the secrets and returns SSH credentials. `environment` supplies `CREDENTIALS_DIRECTORY`.
    public func resolve(group: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(CredentialError) -> SSHCredentials {
        guard let user, !user.isEmpty else { throw .missing(group: group, what: "user") }
        guard keyFile != nil || passwordFile != nil || passwordCredential != nil else {
            throw .missing(group: group, what: "key-file, password-file or password-credential")
        }
        func read(file: String?, credential: String?, what: String) throws(CredentialError) -> String? {
            if let file { return try Self.readSecret(path: file, what: what, group: group) }
            if let credential {
                guard let directory = environment["CREDENTIALS_DIRECTORY"] else {
                    throw .noCredentialsDirectory(group: group, name: credential)
                }
                // systemd skips a credential it did not find: the file is missing, not unreadable.
                guard FileManager.default.fileExists(atPath: directory + "/" + credential) else {
                    throw .credentialNotLoaded(group: group, name: credential)
                }
                return try Self.readSecret(path: directory + "/" + credential, what: what, group: group)
            }
            return nil
        }
        if let keyFile, !FileManager.default.isReadableFile(atPath: keyFile) {
            throw .unreadable(group: group, what: "key file", path: keyFile)
        }
        if let keyFile {
            do { try SecretFile.checkPermissions(keyFile, what: "private key file") } catch { throw .tooOpen(group: group, error) }
        }
        return SSHCredentials(user: user, privateKeyPath: keyFile,
                              passphrase: try read(file: passphraseFile, credential: passphraseCredential, what: "passphrase file"),
                              password: try read(file: passwordFile, credential: passwordCredential, what: "password file"))
    }

    /// The first line of a secret file, without its line end.
    static func readSecret(path: String, what: String, group: String) throws(CredentialError) -> String {
        let line: String?
        do { line = try SecretFile.firstLine(path, what: what) } catch { throw .tooOpen(group: group, error) }
        guard let line else { throw .unreadable(group: group, what: what, path: path) }
        return line
    }
}

/// Why a group's credentials cannot be used. Never contains a secret.
public enum CredentialError: Error, Sendable, Equatable, CustomStringConvertible {
    case missing(group: String, what: String)
    case unreadable(group: String, what: String, path: String)
    case noCredentialsDirectory(group: String, name: String)
    /// A secret file other users can read (``SecretFile``).
    case tooOpen(group: String, SecretFile.Refusal)
    case credentialNotLoaded(group: String, name: String)

    public var description: String {
        switch self {
        case let .missing(group, what):
            return "group \(group): no \(what) configured"
        case let .unreadable(group, what, path):
            return "group \(group): cannot read the \(what) \(path) (missing, or not readable by this user)"
        case let .noCredentialsDirectory(group, name):
            return "group \(group): credential \(name) needs $CREDENTIALS_DIRECTORY (set by systemd's LoadCredential=); not running under systemd?"
        case let .tooOpen(group, refusal):
            return "group \(group): \(refusal)"
        case let .credentialNotLoaded(group, name):
            return "group \(group): systemd passed no credential \(name): put the secret in /etc/credstore/\(name) (root, mode 0600) "
                + "and restart care-agent; a name the unit does not load needs LoadCredential=\(name) in a drop-in (systemctl edit care-agent)"
        }
    }
}

/// Settings shared by the devices of one group: login, schedule, limits, timeouts, and what to collect.
public struct GroupSettings: Sendable {
    public var name: String
    public var credentials: CredentialSource
    public var port: Int
    public var schedule: Schedule
    /// Each run starts up to this much later than scheduled, so that agents do not start in step.
    public var jitter: Duration
    /// How many of this group's devices are collected at once.
    public var concurrency: Int
    public var connectTimeout: Duration
    public var rpcTimeout: Duration
    /// The whole device: connect, every RPC, close.
    public var deviceTimeout: Duration
    /// Further connection attempts after a transport failure (refused, unreachable, timed out).
    public var retries: Int
    /// The wait before the first retry; doubled for each further one.
    public var retryBackoff: Duration
    public var knownHosts: String
    public var hostKeyPolicy: HostKeyPolicy
    /// Jump hosts to reach the devices through (`proxy-jump = user@bastion[:port], ...`), first
    /// hop first; empty: directly. Each hop's host key is checked against `knownHosts` under
    /// `hostKeyPolicy`, like the devices'.
    public var proxyJump: [JumpHost]
    /// The key for the jump hosts (`proxy-jump-key-file`); nil: the group's `key-file`. A hop
    /// without `user@` logs in as the group's `user`.
    public var proxyJumpKeyFile: String?
    /// Tunnels one jump host session carries at once (`proxy-jump-tunnels`); more devices wait.
    public var proxyJumpTunnels: Int
    /// RPCs and commands collected besides the default set, declared as data.
    public var extraRequests: [RPCRequest]
    /// Facts of the default set left out for this group.
    public var skippedFacts: Set<FactKind>
    /// Largest NETCONF message (hello or reply) accepted from a device, in bytes: a device that
    /// sends more fails alone, naming the RPC and this limit.
    public var maximumReplySize: Int
    /// Health poll interval (`poll = 5m`); nil (the default, `off`): no health poll.
    public var poll: Duration?
    /// At most one event bundle per device and event kind within this window (`event-window`),
    /// so that a flapping alarm yields one bundle, not one per poll.
    public var eventWindow: Duration

    public init(name: String) {
        self.name = name
        credentials = CredentialSource()
        port = 830
        schedule = .interval(.seconds(6 * 3600))
        jitter = .seconds(300)
        concurrency = 16
        connectTimeout = .seconds(15)
        rpcTimeout = .seconds(120)
        deviceTimeout = .seconds(600)
        retries = 2
        retryBackoff = .seconds(5)
        knownHosts = "/var/lib/care-agent/known_hosts"
        hostKeyPolicy = .strict
        proxyJump = []
        proxyJumpKeyFile = nil
        proxyJumpTunnels = 10
        extraRequests = []
        skippedFacts = []
        maximumReplySize = FrameDecoder.defaultMaximumMessageSize
        poll = nil
        eventWindow = .seconds(3600)
    }
}

/// One device to collect.
public struct Device: Sendable, Hashable, Codable {
    public var name: String
    public var host: String
    /// nil: the group's port.
    public var port: Int?
    public var group: String
    /// Jump hosts for this device alone (`proxy-jump` in its [device] section; empty: directly);
    /// nil: the group's.
    public var proxyJump: [JumpHost]?
    /// The platform a source of truth gives the device (NetBox's or Nautobot's platform name),
    /// kept for reports; nil for devices from agent.conf and files.
    public var platform: String?

    public init(name: String, host: String, port: Int? = nil, group: String = AgentConfiguration.defaultGroup, platform: String? = nil) {
        self.name = name
        self.host = host
        self.port = port
        self.group = group
        self.platform = platform
    }
}

/// Agent-wide settings: where things go, the global concurrency cap, redaction.
public struct AgentSettings: Sendable {
    /// Results of collections waiting to be sent: one bundle (or directory) per device per collection.
    public var outbox: String = "/var/lib/care-agent/outbox"
    /// How large and old the outbox may grow (`outbox-max`, `outbox-max-age`); see ``OutboxQuota``.
    public var outboxQuota = OutboxQuota()
    public var stateDirectory: String = "/var/lib/care-agent"
    /// Prometheus text-format metrics, rewritten after every collection (for node_exporter's
    /// textfile collector); nil: `<state-directory>/metrics.prom`; "" (`none`): not written.
    public var metricsFile: String?
    /// Where metrics go, resolved.
    public var metricsPath: String? {
        guard let metricsFile else { return stateDirectory + "/metrics.prom" }
        return metricsFile.isEmpty ? nil : metricsFile
    }
    /// Holds the control socket.
    public var runtimeDirectory: String = "/run/care-agent"
    /// Devices collected at once across all groups.
    public var concurrency: Int = 32
    /// SSH session set-ups in progress at once, all groups together (``HandshakeAdmission``);
    /// nil: a quarter of ``concurrency``.
    public var handshakes: Int?
    /// ``handshakes`` as it applies.
    public var handshakeLimit: Int { handshakes ?? max(1, (concurrency + 3) / 4) }
    public var inventoryFiles: [String] = []
    /// Extra regular expressions and leaf names whose values are removed from every stored reply.
    public var redactPatterns: [String] = []
    public var redactKeywords: [String] = []
    /// Extra statement paths (`snmp/trap-group/name`, see `SecretPath`) whose values are removed.
    public var redactPaths: [String] = []
    /// This installation's name in bundles (default: the host name).
    public var agentID: String = AgentSettings.localHostName
    public init() {}

    /// gethostname(2), without the DNS lookups ProcessInfo.hostName may make.
    static let localHostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "care-agent" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "care-agent" : name
    }()
}

/// The agent's whole configuration: agent.conf plus the inventory files it names.
public struct AgentConfiguration: Sendable {
    public static let defaultGroup = "default"
    public static let defaultPath = "/etc/care-agent/agent.conf"

    public var agent: AgentSettings
    /// Where finished bundles are sent (`[upload]`); uploading is off when its url is nil.
    public var upload: UploadSettings = UploadSettings()
    /// By name; always holds ``defaultGroup``.
    public var groups: [String: GroupSettings]
    public var devices: [Device]
    /// Event kind (`alarm`, `core-dump`, ...) → RPCs and commands an event collection of that
    /// kind adds to its group's set (`[event KIND]` sections, `rpc` and `command` keys).
    public var eventRequests: [String: [RPCRequest]] = [:]
    /// `[inventory NAME]` sections, in file order: their devices are read at start, on every
    /// `refresh` and on SIGHUP, and merged after ``devices`` (see ``FleetInventory``).
    public var inventorySources: [InventorySource] = []
    /// Where each of ``devices`` was defined (`agent.conf:40`, `inventory.csv:7`), for the
    /// message naming both places when a source lists the same device.
    public var deviceOrigins: [String: String] = [:]
    /// `[syslog]`: the syslog receiver; nil (no section): none.
    public var syslog: SyslogSettings?
    /// `[events]`: the webhook for event notices.
    public var events = EventSettings()

    public init(agent: AgentSettings = AgentSettings(), groups: [GroupSettings] = [], devices: [Device] = []) {
        self.agent = agent
        var byName: [String: GroupSettings] = [AgentConfiguration.defaultGroup: GroupSettings(name: AgentConfiguration.defaultGroup)]
        for group in groups { byName[group.name] = group }
        self.groups = byName
        self.devices = devices
    }

    /// The settings that apply to `device`.
    public func group(of device: Device) -> GroupSettings {
        groups[device.group] ?? groups[AgentConfiguration.defaultGroup] ?? GroupSettings(name: device.group)
    }

    /// Reads agent.conf and the inventory files it names.
    public static func load(path: String) throws(ConfigurationError) -> AgentConfiguration {
        try AgentConfiguration(file: ConfigurationFile(path: path))
    }

    /// Interprets a parsed file; inventory files are read relative to the file's directory.
    public init(file: ConfigurationFile) throws(ConfigurationError) {
        agent = AgentSettings()
        groups = [:]
        devices = []
        let path = file.path
        func fail(_ entry: ConfigurationFile.Entry, _ message: String, atKey: Bool = false) -> ConfigurationError {
            ConfigurationError(file: path, line: entry.line, column: atKey ? 1 : entry.valueColumn, message: message)
        }
        let base = (path as NSString).deletingLastPathComponent

        // [defaults] first, wherever it is written, so that groups inherit from it.
        var defaults = GroupSettings(name: AgentConfiguration.defaultGroup)
        for section in file.sections where section.kind == "defaults" {
            for entry in section.entries { try Self.apply(entry, to: &defaults, fail: fail) }
        }
        groups[AgentConfiguration.defaultGroup] = defaults
        var inlineDevices: [(Device, Int, (line: Int, column: Int)?)] = []
        var syslogSourceLines: [ConfigurationFile.Entry] = []
        for section in file.sections {
            switch section.kind {
            case "agent":
                for entry in section.entries { try Self.apply(entry, to: &agent, base: base, fail: fail) }
            case "upload":
                for entry in section.entries { try Self.apply(entry, to: &upload, fail: fail) }
                if upload.url != nil, let entry = section.entries.first(where: { $0.key == "client-key" }), upload.clientCertificate == nil {
                    throw fail(entry, "client-key needs client-certificate as well", atKey: true)
                }
            case "group":
                let name = section.name!
                if name != AgentConfiguration.defaultGroup, groups[name] != nil {
                    throw ConfigurationError(file: path, line: section.line, column: 1, message: "group \(name) is defined twice")
                }
                var group = defaults
                group.name = name
                for entry in section.entries { try Self.apply(entry, to: &group, fail: fail) }
                groups[name] = group
            case "syslog":
                var settings = syslog ?? SyslogSettings()
                for entry in section.entries {
                    try Self.apply(entry, to: &settings, fail: fail)
                    if entry.key == "source" { syslogSourceLines.append(entry) }
                }
                if settings.listen.isEmpty {
                    throw ConfigurationError(file: path, line: section.line, column: 1,
                                             message: "[syslog] needs listen = udp:0.0.0.0:5514, tcp:0.0.0.0:5514 (or systemd, with care-agent-syslog.socket)")
                }
                syslog = settings
            case "events":
                for entry in section.entries { try Self.apply(entry, to: &events, fail: fail) }
            case "event":
                let kind = section.name!
                guard eventRequests[kind] == nil else {
                    throw ConfigurationError(file: path, line: section.line, column: 1, message: "event \(kind) is defined twice")
                }
                var requests: [RPCRequest] = []
                for entry in section.entries {
                    switch entry.key {
                    case "rpc":
                        do { requests.append(try RPCRequest.parse(entry.value)) } catch {
                            throw fail(entry, "expected an RPC name (get-interface-information) or an XML element (<get-route-summary-information/>): \(error)")
                        }
                    case "command":
                        guard !entry.value.isEmpty else { throw fail(entry, "expected a Junos CLI command such as show system processes extensive") }
                        requests.append(.command(entry.value))
                    default: throw fail(entry, "unknown key \"\(entry.key)\" in [event \(kind)]; expected rpc or command", atKey: true)
                    }
                }
                eventRequests[kind] = requests
            case "device":
                var device = Device(name: section.name!, host: "")
                var groupAt: (line: Int, column: Int)?
                for entry in section.entries {
                    switch entry.key {
                    case "host": device.host = entry.value
                    case "port": device.port = try Self.port(entry, fail: fail)
                    case "group":
                        device.group = entry.value
                        groupAt = (entry.line, entry.valueColumn)
                    case "proxy-jump":
                        if entry.value == "none" { device.proxyJump = []; break }
                        guard let hops = JumpHost.chain(entry.value) else {
                            throw fail(entry, "expected jump hosts as user@host[:port], comma separated (first hop first), or none; found \"\(entry.value)\"")
                        }
                        device.proxyJump = hops
                    default: throw fail(entry, "unknown key \"\(entry.key)\" in [device]; expected host, port, group or proxy-jump", atKey: true)
                    }
                }
                if device.host.isEmpty {
                    throw ConfigurationError(file: path, line: section.line, column: 1, message: "device \(device.name) needs host = ADDRESS")
                }
                inlineDevices.append((device, section.line, groupAt))
            case "inventory":
                let source = try Self.inventorySource(section, path: path, base: base, fail: fail)
                if let other = inventorySources.first(where: { $0.name == source.name }) {
                    throw ConfigurationError(file: path, line: section.line, column: 1, message: "inventory \(source.name) is already defined at \(other.declaredAt)")
                }
                inventorySources.append(source)
            default:
                break
            }
        }
        var seen: [String: String] = [:]
        for (device, line, groupAt) in inlineDevices {
            guard groups[device.group] != nil else {
                // At its `group =` line, the mistake's place (a typo, or a section to add).
                throw ConfigurationError(file: path, line: groupAt?.line ?? line, column: groupAt?.column ?? 1,
                                         message: "device \(device.name) is in group \(device.group), which no [group \(device.group)] section defines; add one, or correct the name")
            }
            if let other = seen[device.name] {
                throw ConfigurationError(file: path, line: line, column: 1, message: "device \(device.name) is already defined at \(other)")
            }
            seen[device.name] = "\(path):\(line)"
            deviceOrigins[device.name] = "\(path):\(line)"
            devices.append(device)
        }
        for source in inventorySources where groups[source.group] == nil {
            let line = Int(source.declaredAt.split(separator: ":").last ?? "") ?? 0
            throw ConfigurationError(file: path, line: line, column: 1, message: "inventory \(source.name) puts its devices in group \(source.group), which no [group \(source.group)] section defines")
        }
        for inventory in agent.inventoryFiles {
            let resolved = inventory.hasPrefix("/") || base.isEmpty ? inventory : base + "/" + inventory
            try addInventory(InventoryFile(path: resolved))
        }
        let names = Set(devices.map(\.name))
        // Devices an [inventory] source brings are known only once it is fetched: a name not here
        // may be one of them (a message from that address is then matched, or logged as from an
        // unknown sender).
        for entry in syslogSourceLines where inventorySources.isEmpty {
            let device = entry.value.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init) ?? ""
            guard names.contains(device) else { throw fail(entry, "no device \(device) in the inventory") }
        }
    }

    /// Adds an inventory's devices; a name already present or an undefined group is an error at its line.
    public mutating func addInventory(_ inventory: InventoryFile) throws(ConfigurationError) {
        var names = Set(devices.map(\.name))
        for row in inventory.rows {
            guard groups[row.device.group] != nil else {
                throw ConfigurationError(file: inventory.path, line: row.line, column: 1,
                                         message: "device \(row.device.name) is in group \(row.device.group), which agent.conf does not define: add a [group \(row.device.group)] section (an empty one takes the [defaults])")
            }
            guard names.insert(row.device.name).inserted else {
                throw ConfigurationError(file: inventory.path, line: row.line, column: 1, message: "device \(row.device.name) is listed twice")
            }
            deviceOrigins[row.device.name] = "\(inventory.path):\(row.line)"
            devices.append(row.device)
        }
    }

    static let clearTextSecretKeys: Set<String> = ["password", "passphrase", "secret", "key-passphrase", "community"]

    static func apply(_ entry: ConfigurationFile.Entry, to group: inout GroupSettings,
                      fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) {
        let v = entry.value
        switch entry.key {
        case "user": group.credentials.user = v
        case "key-file": group.credentials.keyFile = v
        case "passphrase-file": group.credentials.passphraseFile = v
        case "password-file": group.credentials.passwordFile = v
        case "password-credential": group.credentials.passwordCredential = v
        case "passphrase-credential": group.credentials.passphraseCredential = v
        case "port": group.port = try port(entry, fail: fail)
        case "schedule":
            do { group.schedule = try Schedule(parsing: v) } catch { throw fail(entry, error.message, false) }
        case "jitter": group.jitter = try duration(entry, fail: fail)
        case "poll":
            if v == "off" { group.poll = nil; break }
            let interval = try duration(entry, fail: fail)
            guard interval >= .seconds(30) else { throw fail(entry, "expected a poll interval of at least 30s such as 5m, or off, found \"\(v)\"", false) }
            group.poll = interval
        case "event-window":
            let window = try duration(entry, fail: fail)
            // Shorter would make every repeat of a chatty syslog message a full event bundle.
            guard window >= .seconds(60) else { throw fail(entry, "expected an event window of at least 1m such as 30m, found \"\(v)\"", false) }
            group.eventWindow = window
        case "concurrency": group.concurrency = try positive(entry, fail: fail)
        // Zero would fail every device, with a message about some other limit.
        case "connect-timeout": group.connectTimeout = try positiveDuration(entry, fail: fail)
        case "rpc-timeout": group.rpcTimeout = try positiveDuration(entry, fail: fail)
        case "device-timeout": group.deviceTimeout = try positiveDuration(entry, fail: fail)
        case "retries":
            guard let n = Int(v), n >= 0, n <= 10 else { throw fail(entry, "expected a number of retries from 0 to 10, found \"\(v)\"", false) }
            group.retries = n
        case "retry-backoff": group.retryBackoff = try duration(entry, fail: fail)
        case "maximum-reply-size":
            guard let size = parseByteSize(v), size >= 1 << 16, size <= 2 << 30 else {
                throw fail(entry, "expected a size from 64KiB to 2GiB such as 32MiB or 256MiB, found \"\(v)\"", false)
            }
            group.maximumReplySize = size
        case "known-hosts": group.knownHosts = v
        case "proxy-jump":
            if v == "none" { group.proxyJump = []; break }
            guard let hops = JumpHost.chain(v) else {
                throw fail(entry, "expected jump hosts as user@host[:port], comma separated (first hop first), or none; found \"\(v)\"", false)
            }
            group.proxyJump = hops
        case "proxy-jump-key-file": group.proxyJumpKeyFile = v
        case "proxy-jump-tunnels": group.proxyJumpTunnels = try positive(entry, fail: fail)
        case "host-key-policy":
            guard let policy = HostKeyPolicy(rawValue: v) else { throw fail(entry, "expected strict or accept-new, found \"\(v)\"", false) }
            group.hostKeyPolicy = policy
        case "rpc":
            do { group.extraRequests.append(try RPCRequest.parse(v)) } catch {
                throw fail(entry, "expected an RPC name (get-interface-information) or an XML element (<get-route-summary-information/>): \(error)", false)
            }
            // Configuration is redacted by its structure in XML, text and set form; as JSON only
            // crypt-looking tokens would be found, and plain secrets (SNMP communities) would leave.
            let lower = v.lowercased()
            if lower.contains("get-configuration"), lower.range(of: #"format\s*=\s*["']json"#, options: .regularExpression) != nil {
                throw fail(entry, "configuration as JSON cannot be redacted by its structure (plain-text secrets would leave the machine): ask for format=\"xml\", \"text\" or \"set\"", false)
            }
        case "command":
            guard !v.isEmpty else { throw fail(entry, "expected a Junos CLI command such as show system users", false) }
            let lower = v.lowercased()
            if lower.contains("configuration"), lower.range(of: #"\|\s*display\s+json"#, options: .regularExpression) != nil {
                throw fail(entry, "configuration as JSON cannot be redacted by its structure (plain-text secrets would leave the machine): use | display set, or no display option", false)
            }
            group.extraRequests.append(.command(v))
        case "skip":
            for word in v.split(whereSeparator: { $0 == "," || $0 == " " }) {
                guard let kind = FactKind(rawValue: String(word)) ?? FactKind(rpc: String(word)) else {
                    throw fail(entry, "expected fact names from \(FactKind.allCases.map(\.rawValue).joined(separator: ", ")), found \"\(word)\"", false)
                }
                group.skippedFacts.insert(kind)
            }
        case let key where clearTextSecretKeys.contains(key):
            throw fail(entry, "clear-text secrets are refused in agent.conf: put the \(key) in a file only care-agent can read and set \(key == "passphrase" || key == "key-passphrase" ? "passphrase-file" : "password-file"), or use \(key == "passphrase" || key == "key-passphrase" ? "passphrase-credential" : "password-credential") with systemd LoadCredential=", true)
        default:
            throw fail(entry, "unknown key \"\(entry.key)\" in a group section; see agent.conf.example for the keys", true)
        }
    }

    static func apply(_ entry: ConfigurationFile.Entry, to agent: inout AgentSettings, base: String,
                      fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) {
        let v = entry.value
        switch entry.key {
        case "outbox": agent.outbox = v
        case "outbox-max":
            if v == "none" { agent.outboxQuota.maxBytes = nil; break }
            guard let size = parseByteSize(v), size >= 1 << 20 else {
                throw fail(entry, "expected a size of at least 1MiB such as 2GiB or 500MiB, or none, found \"\(v)\"", false)
            }
            agent.outboxQuota.maxBytes = Int64(size)
        case "outbox-max-age":
            if v == "none" { agent.outboxQuota.maxAge = nil; break }
            let age = try duration(entry, fail: fail)
            guard age >= .seconds(3600) else {
                throw fail(entry, "expected a duration of at least 1h such as 30d, or none, found \"\(v)\"", false)
            }
            agent.outboxQuota.maxAge = age.seconds
        case "agent-id":
            guard !v.isEmpty else { throw fail(entry, "expected a name for this agent", false) }
            agent.agentID = v
        case "state-directory": agent.stateDirectory = v
        case "metrics-file": agent.metricsFile = v == "none" ? "" : v
        case "runtime-directory": agent.runtimeDirectory = v
        case "concurrency": agent.concurrency = try positive(entry, fail: fail)
        case "handshakes": agent.handshakes = try positive(entry, fail: fail)
        case "inventory": agent.inventoryFiles.append(v)
        case "redact-pattern":
            do { _ = try Regex(v) } catch { throw fail(entry, "expected a regular expression: \(error)", false) }
            agent.redactPatterns.append(v)
        case "redact-keyword": agent.redactKeywords.append(v)
        case "redact-path":
            do { _ = try SecretPath(v) } catch { throw fail(entry, error.description, false) }
            agent.redactPaths.append(v)
        case let key where clearTextSecretKeys.contains(key):
            throw fail(entry, "clear-text secrets are refused in agent.conf; use password-file or password-credential in a group", true)
        default:
            throw fail(entry, "unknown key \"\(entry.key)\" in [agent]; expected agent-id, outbox, outbox-max, outbox-max-age, state-directory, metrics-file, runtime-directory, concurrency, handshakes, inventory, redact-pattern, redact-keyword or redact-path", true)
        }
    }

    static func port(_ entry: ConfigurationFile.Entry, fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) -> Int {
        guard let n = Int(entry.value), (1...65535).contains(n) else {
            throw fail(entry, "expected a TCP port from 1 to 65535, found \"\(entry.value)\"", false)
        }
        return n
    }

    static func positive(_ entry: ConfigurationFile.Entry, fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) -> Int {
        guard let n = Int(entry.value), n > 0 else { throw fail(entry, "expected a positive whole number, found \"\(entry.value)\"", false) }
        return n
    }

    static func duration(_ entry: ConfigurationFile.Entry, fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) -> Duration {
        guard let d = parseDuration(entry.value) else {
            throw fail(entry, "expected a duration such as 30s, 5m, 6h or 1d, found \"\(entry.value)\"", false)
        }
        return d
    }
}

/// `1048576`, `512KiB`, `32MiB`, `1GiB` (also `K`/`M`/`G`, `KB`/`MB`/`GB`, all powers of
/// 1024) → bytes; nil when not one.
public func parseByteSize(_ text: String) -> Int? {
    let t = text.trimmingCharacters(in: .whitespaces).uppercased()
    let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("KB", 1 << 10), ("MB", 1 << 20),
                                  ("GB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
    for (suffix, factor) in units where t.hasSuffix(suffix) {
        guard let n = Int(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), n >= 0,
              n <= Int.max / factor else { return nil }
        return n * factor
    }
    return Int(t).flatMap { $0 >= 0 ? $0 : nil }
}

