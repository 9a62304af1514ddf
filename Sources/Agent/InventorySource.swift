import Foundation

/// One `[inventory NAME]` section of agent.conf: a place the fleet is read from (a NetBox or
/// Nautobot server, a CSV file, an Ansible inventory, an Oxidized router.db) and how its
/// records become devices. Devices of every source are merged (``FleetInventory``).
public struct InventorySource: Sendable, Equatable {
    /// What kind of source, with the settings only that kind has.
    public enum Kind: Sendable, Equatable {
        case netbox(SourceOfTruthSettings)
        case nautobot(SourceOfTruthSettings)
        case csv(path: String)
        case ansible(AnsibleSettings)
        case oxidized(RouterDBSettings)

        /// The `type =` word.
        public var type: String {
            switch self {
            case .netbox: "netbox"
            case .nautobot: "nautobot"
            case .csv: "csv"
            case .ansible: "ansible"
            case .oxidized: "oxidized"
            }
        }
    }

    public var name: String
    public var kind: Kind
    /// The care-agent group of devices whose record names none.
    public var group: String = AgentConfiguration.defaultGroup
    /// How often the source is read again (`refresh = 15m`); SIGHUP reads it at once as well.
    public var refresh: Duration = .seconds(900)
    /// At most this many devices are taken from the source; the rest are reported, not scheduled.
    public var maximumDevices: Int = 20_000
    /// Where agent.conf declared the source (`agent.conf:40`), for messages.
    public var declaredAt: String = ""

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// The file or URL read, for `status` and messages.
    public var location: String {
        switch kind {
        case let .netbox(s), let .nautobot(s): s.url
        case let .csv(path): path
        case let .ansible(s): s.path
        case let .oxidized(s): s.path
        }
    }

    /// A name usable as a file name (the last good inventory is kept as `<NAME>.json`).
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.first != "." && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }
}

/// Settings of a NetBox or Nautobot source.
public struct SourceOfTruthSettings: Sendable, Equatable {
    /// The server's base URL (`https://netbox.example.net`); `/api/dcim/devices/` is appended.
    public var url: String
    /// The API token comes from a file or a systemd credential, never from agent.conf.
    public var tokenFile: String?
    public var tokenCredential: String?
    /// PEM certificates that verify the server; nil: the system store.
    public var caFile: String?
    /// An HTTP proxy; nil: libcurl's environment (`https_proxy`, `no_proxy`).
    public var proxy: String?
    /// `user:password` for the proxy, read from this file at each refresh (`proxy-credentials-file`).
    public var proxyCredentialsFile: String?
    /// Query parameters passed as written (`status=active`, `platform=junos`); a key given
    /// several times, or a comma-separated value, filters on any of the values.
    public var filters: [(key: String, value: String)] = []
    /// Devices asked for per page (`limit=`); the server may cap it (NetBox's MAX_PAGE_SIZE).
    public var pageSize: Int = 100
    /// Pages followed at most: a server that keeps answering `next` cannot keep the agent reading.
    public var maximumPages: Int = 1000
    /// Largest answer accepted for one page, in bytes.
    public var maximumResponseSize: Int = 16 << 20
    /// One request: connect, TLS, answer.
    public var timeout: Duration = .seconds(60)
    /// Custom field (then config-context key) holding the device's NETCONF port.
    public var portField: String = "netconf_port"
    /// Custom field (then config-context key) holding the device's care-agent group.
    public var groupField: String = "care_agent_group"
    /// Also read the fields from each device's config context (asks the server to include it).
    public var configContext: Bool = false
    /// Platforms taken (slug, name or Nautobot network driver, case-insensitive); empty: any
    /// platform, and devices without one.
    public var platforms: [String] = SourceOfTruthSettings.junosPlatforms

    /// The names Junos platforms go by in NetBox (slug `junos`, name `Junos` or `Juniper Junos`)
    /// and Nautobot (network driver `juniper_junos`).
    public static let junosPlatforms = ["junos", "junos-evo", "juniper-junos", "juniper_junos", "juniper junos"]

    public init(url: String) { self.url = url }

    public static func == (a: SourceOfTruthSettings, b: SourceOfTruthSettings) -> Bool {
        a.url == b.url && a.tokenFile == b.tokenFile && a.tokenCredential == b.tokenCredential && a.caFile == b.caFile
            && a.proxy == b.proxy && a.proxyCredentialsFile == b.proxyCredentialsFile && a.filters.map { "\($0.key)=\($0.value)" } == b.filters.map { "\($0.key)=\($0.value)" }
            && a.pageSize == b.pageSize && a.maximumPages == b.maximumPages && a.maximumResponseSize == b.maximumResponseSize
            && a.timeout == b.timeout && a.portField == b.portField && a.groupField == b.groupField
            && a.configContext == b.configContext && a.platforms == b.platforms
    }

    /// The API token, read now so that a rotated token is used at the next refresh.
    func token(source: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(InventorySourceError) -> String {
        let path: String
        if let tokenFile {
            path = tokenFile
        } else if let tokenCredential {
            guard let directory = environment["CREDENTIALS_DIRECTORY"] else {
                throw InventorySourceError(source: source, "token-credential \(tokenCredential) needs $CREDENTIALS_DIRECTORY (set by systemd's LoadCredential=); not running under systemd?")
            }
            path = directory + "/" + tokenCredential
        } else {
            throw InventorySourceError(source: source, "no token-file or token-credential: the API needs a token (read-only is enough)")
        }
        let line: String?
        do { line = try SecretFile.firstLine(path, what: "API token file") } catch {
            throw InventorySourceError(source: source, "\(error)")
        }
        guard let token = line?.trimmingCharacters(in: .whitespaces), !token.isEmpty else {
            throw InventorySourceError(source: source, tokenCredential != nil && tokenFile == nil
                ? "systemd passed no credential \(tokenCredential!): put the token in /etc/credstore/\(tokenCredential!) (root, mode 0600), "
                    + "load it with a drop-in (systemctl edit care-agent: [Service] LoadCredential=\(tokenCredential!); the unit loads no inventory token itself) and restart care-agent"
                : "cannot read a token from \(path) (missing, empty, or not readable by this user)")
        }
        return token
    }
}

/// Settings of an Ansible inventory source (INI or YAML).
public struct AnsibleSettings: Sendable, Equatable {
    public var path: String
    /// Hosts taken when their `ansible_network_os` is one of these; empty: every host.
    public var networkOS: [String] = ["junipernetworks.junos.junos", "junos", "juniper.junos"]
    /// Only hosts in these Ansible groups (directly or through `children`); empty: every group.
    public var groups: [String] = []
    /// The host variable naming the device's care-agent group.
    public var groupVariable: String = "care_agent_group"
    /// The host variable holding the NETCONF port.
    public var portVariable: String = "ansible_port"
    public init(path: String) { self.path = path }
}

/// Settings of an Oxidized router.db source: a delimited text file whose columns Oxidized's
/// `source.csv.map` names.
public struct RouterDBSettings: Sendable, Equatable {
    public var path: String
    /// Oxidized's `delimiter` (default `:`).
    public var delimiter: String = ":"
    /// Oxidized's `map` and `vars_map`: field → column (0-based). `name` is required; `ip`
    /// (else the name is the host), `model`, `group`, `port` (Oxidized's `ssh_port` var) optional.
    public var fields: [String: Int] = ["name": 0, "model": 1]
    /// Lines taken when their model is one of these; empty: every line.
    public var models: [String] = ["junos"]
    /// Use the group column as the care-agent group (Oxidized's groups are often not care-agent's).
    public var groupsAreCareAgentGroups: Bool = true
    public init(path: String) { self.path = path }
}

/// Why a source could not be read at all (unreachable, refused, garbage): its last good
/// inventory is used instead. Names the source; never contains a token.
public struct InventorySourceError: Error, Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var message: String
    public init(source: String, _ message: String) {
        self.source = source
        self.message = message
    }
    public var description: String { "inventory \(source): \(message)" }
}

/// One device a source yields, with where it was found (`hosts.ini:12`, a device's API URL).
public struct InventoryEntry: Sendable, Equatable, Codable {
    public var device: Device
    public var origin: String
    public init(device: Device, origin: String) {
        self.device = device
        self.origin = origin
    }
}

/// What one read of a source gave: its devices, and the records skipped with why (each message
/// names the device and where it is).
public struct InventoryYield: Sendable, Equatable, Codable {
    public var source: String
    public var entries: [InventoryEntry]
    public var skipped: [String]
    public init(source: String, entries: [InventoryEntry] = [], skipped: [String] = []) {
        self.source = source
        self.entries = entries
        self.skipped = skipped
    }
}

extension AgentConfiguration {
    /// Interprets one `[inventory NAME]` section. Relative paths are relative to agent.conf.
    static func inventorySource(_ section: ConfigurationFile.Section, path: String, base: String,
                                fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) -> InventorySource {
        let name = section.name!
        func sectionError(_ message: String) -> ConfigurationError {
            ConfigurationError(file: path, line: section.line, column: 1, message: message)
        }
        guard InventorySource.isValidName(name) else {
            throw sectionError("expected an inventory name of letters, digits, '.', '-' and '_' (it names the file its last good inventory is kept in), found \"\(name)\"")
        }
        guard let typeEntry = section.entries.first(where: { $0.key == "type" }) else {
            throw sectionError("[inventory \(name)] needs type = netbox, nautobot, csv, ansible or oxidized")
        }
        func resolved(_ file: String) -> String { file.hasPrefix("/") || base.isEmpty ? file : base + "/" + file }
        func list(_ value: String) -> [String] {
            value.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        }
        let fileKey: String
        var kind: InventorySource.Kind
        switch typeEntry.value {
        case "netbox": kind = .netbox(SourceOfTruthSettings(url: "")); fileKey = "url"
        case "nautobot": kind = .nautobot(SourceOfTruthSettings(url: "")); fileKey = "url"
        case "csv": kind = .csv(path: ""); fileKey = "file"
        case "ansible": kind = .ansible(AnsibleSettings(path: "")); fileKey = "file"
        case "oxidized": kind = .oxidized(RouterDBSettings(path: "")); fileKey = "file"
        default: throw fail(typeEntry, "expected type = netbox, nautobot, csv, ansible or oxidized, found \"\(typeEntry.value)\"", false)
        }
        var source = InventorySource(name: name, kind: kind)
        source.declaredAt = "\(path):\(section.line)"
        var sot = SourceOfTruthSettings(url: "")
        var ansible = AnsibleSettings(path: "")
        var routerDB = RouterDBSettings(path: "")
        var location: String?
        let isAPI = fileKey == "url"
        let filterKeys: Set<String> = ["platform", "status", "site", "location", "region", "tag", "tags", "role", "tenant",
                                       "manufacturer", "device_type", "platform__network_driver", "q", "name"]
        for entry in section.entries {
            let v = entry.value
            switch (entry.key, source.kind) {
            case ("type", _): break
            case ("group", _):
                guard !v.isEmpty else { throw fail(entry, "expected a care-agent group name", false) }
                source.group = v
            case ("refresh", _):
                let d = try duration(entry, fail: fail)
                guard d >= .seconds(60) else { throw fail(entry, "expected a refresh interval of at least 1m such as 15m, found \"\(v)\"", false) }
                source.refresh = d
            case ("maximum-devices", _): source.maximumDevices = try positive(entry, fail: fail)
            case ("url", .netbox), ("url", .nautobot):
                let lower = v.lowercased()
                let authority = v.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(2).first ?? ""
                guard !authority.contains("@") else {
                    throw fail(entry, "expected a URL without user:password@; give the API token with token-file or token-credential", false)
                }
                guard lower.hasPrefix("https://") || lower.hasPrefix("http://"), let parsed = URLComponents(string: v),
                      let host = parsed.host, !host.isEmpty, parsed.query == nil, parsed.fragment == nil else {
                    throw fail(entry, "expected the server's URL such as https://netbox.example.net (no query), found \"\(v)\"", false)
                }
                location = v.hasSuffix("/") ? String(v.dropLast()) : v
            case ("token-file", .netbox), ("token-file", .nautobot):
                guard !v.isEmpty else { throw fail(entry, "expected a file path", false) }
                sot.tokenFile = resolved(v)
            case ("token-credential", .netbox), ("token-credential", .nautobot):
                guard !v.isEmpty, !v.contains("/") else { throw fail(entry, "expected a credential name (LoadCredential=NAME:...), found \"\(v)\"", false) }
                sot.tokenCredential = v
            case ("token", .netbox), ("token", .nautobot):
                throw fail(entry, "clear-text secrets are refused in agent.conf: put the API token in a file only care-agent can read and set token-file, or use token-credential with systemd LoadCredential=", true)
            case ("ca-file", .netbox), ("ca-file", .nautobot):
                guard !v.isEmpty else { throw fail(entry, "expected a file path", false) }
                sot.caFile = resolved(v)
            case ("proxy", .netbox), ("proxy", .nautobot):
                if v.isEmpty { sot.proxy = nil; break }
                if let problem = ProxyURL.problem(v) { throw fail(entry, problem.message, problem.secret) }
                sot.proxy = v
            case ("proxy-credentials-file", .netbox), ("proxy-credentials-file", .nautobot):
                guard !v.isEmpty else { throw fail(entry, "expected a file path", false) }
                sot.proxyCredentialsFile = resolved(v)
            case ("page-size", .netbox), ("page-size", .nautobot):
                guard let n = Int(v), (1...1000).contains(n) else { throw fail(entry, "expected a page size from 1 to 1000, found \"\(v)\"", false) }
                sot.pageSize = n
            case ("maximum-pages", .netbox), ("maximum-pages", .nautobot): sot.maximumPages = try positive(entry, fail: fail)
            case ("maximum-response-size", .netbox), ("maximum-response-size", .nautobot):
                guard let size = parseByteSize(v), size >= 1 << 16, size <= 1 << 30 else {
                    throw fail(entry, "expected a size from 64KiB to 1GiB such as 16MiB, found \"\(v)\"", false)
                }
                sot.maximumResponseSize = size
            case ("timeout", .netbox), ("timeout", .nautobot): sot.timeout = try positiveDuration(entry, fail: fail)
            case ("port-field", .netbox), ("port-field", .nautobot): sot.portField = v
            case ("group-field", .netbox), ("group-field", .nautobot): sot.groupField = v
            case ("config-context", .netbox), ("config-context", .nautobot): sot.configContext = try yesNo(entry, fail: fail)
            case ("platforms", .netbox), ("platforms", .nautobot):
                sot.platforms = v == "any" ? [] : list(v).map { $0.lowercased() }
            case ("filter", .netbox), ("filter", .nautobot):
                guard let equals = v.firstIndex(of: "="), equals != v.startIndex else {
                    throw fail(entry, "expected filter = KEY=VALUE as the API takes it, such as filter = cf_care_agent=true", false)
                }
                sot.filters.append((String(v[..<equals]), String(v[v.index(after: equals)...])))
            case let (key, .netbox), let (key, .nautobot):
                guard filterKeys.contains(key) else {
                    throw fail(entry, "unknown key \"\(key)\" in [inventory \(name)] (type = \(typeEntry.value)); expected url, token-file, token-credential, ca-file, proxy, proxy-credentials-file, "
                        + "group, refresh, page-size, maximum-pages, maximum-devices, maximum-response-size, timeout, port-field, group-field, config-context, platforms, filter, "
                        + "or a filter: \(filterKeys.sorted().joined(separator: ", "))", true)
                }
                for value in v.split(separator: ",") { sot.filters.append((key, value.trimmingCharacters(in: .whitespaces))) }
            case ("file", .csv), ("file", .ansible), ("file", .oxidized):
                guard !v.isEmpty else { throw fail(entry, "expected a file path", false) }
                location = resolved(v)
            case ("network-os", .ansible): ansible.networkOS = v == "any" ? [] : list(v)
            case ("groups", .ansible): ansible.groups = list(v)
            case ("group-variable", .ansible): ansible.groupVariable = v
            case ("port-variable", .ansible): ansible.portVariable = v
            case ("delimiter", .oxidized):
                guard !v.isEmpty else { throw fail(entry, "expected the field delimiter, such as : or ,", false) }
                routerDB.delimiter = v
            case ("map", .oxidized):
                var fields: [String: Int] = [:]
                for item in list(v) {
                    let parts = item.split(separator: ":")
                    guard parts.count == 2, let index = Int(parts[1]), (0..<64).contains(index),
                          ["name", "ip", "model", "group", "port"].contains(parts[0]) else {
                        throw fail(entry, "expected map = name:0, model:1 (fields name, ip, model, group, port with 0-based columns), found \"\(item)\"", false)
                    }
                    fields[String(parts[0])] = index
                }
                guard fields["name"] != nil else { throw fail(entry, "expected a name column in map, such as name:0", false) }
                routerDB.fields = fields
            case ("models", .oxidized): routerDB.models = v == "any" ? [] : list(v)
            case ("use-groups", .oxidized): routerDB.groupsAreCareAgentGroups = try yesNo(entry, fail: fail)
            case let (key, _) where clearTextSecretKeys.contains(key):
                throw fail(entry, "clear-text secrets are refused in agent.conf", true)
            default:
                let keys: String
                switch source.kind {
                case .csv: keys = "type, file, group, refresh, maximum-devices"
                case .ansible: keys = "type, file, group, refresh, maximum-devices, network-os, groups, group-variable, port-variable"
                case .oxidized: keys = "type, file, group, refresh, maximum-devices, delimiter, map, models, use-groups"
                case .netbox, .nautobot: keys = ""
                }
                throw fail(entry, "unknown key \"\(entry.key)\" in [inventory \(name)] (type = \(typeEntry.value)); expected \(keys)", true)
            }
        }
        guard let location else {
            throw sectionError("[inventory \(name)] needs \(fileKey) = \(isAPI ? "https://..." : "FILE")")
        }
        switch source.kind {
        case .netbox, .nautobot:
            guard sot.tokenFile != nil || sot.tokenCredential != nil else {
                throw sectionError("[inventory \(name)] needs token-file or token-credential (the API token, never in agent.conf)")
            }
            sot.url = location
            source.kind = typeEntry.value == "netbox" ? .netbox(sot) : .nautobot(sot)
        case .csv: source.kind = .csv(path: location)
        case .ansible: ansible.path = location; source.kind = .ansible(ansible)
        case .oxidized: routerDB.path = location; source.kind = .oxidized(routerDB)
        }
        return source
    }

    static func yesNo(_ entry: ConfigurationFile.Entry, fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) -> Bool {
        switch entry.value.lowercased() {
        case "yes", "true", "on": return true
        case "no", "false", "off": return false
        default: throw fail(entry, "expected yes or no, found \"\(entry.value)\"", false)
        }
    }
}
