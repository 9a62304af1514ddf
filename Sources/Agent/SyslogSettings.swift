import Foundation

/// Where the syslog receiver listens.
public enum SyslogEndpoint: Sendable, Equatable, CustomStringConvertible {
    case udp(host: String, port: Int)
    case tcp(host: String, port: Int)
    /// The sockets systemd passed (`care-agent-syslog.socket`, `LISTEN_FDS`).
    case systemd

    /// `udp:0.0.0.0:5514`, `tcp:[::]:5514`, `systemd`; nil when not one.
    init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "systemd" { self = .systemd; return }
        let parts = t.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == "udp" || parts[0] == "tcp" else { return nil }
        let rest = parts[1]
        let host: Substring, port: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest[rest.index(after: close)...].hasPrefix(":") else { return nil }
            host = rest[rest.index(after: rest.startIndex) ..< close]
            port = rest[rest.index(close, offsetBy: 2)...]
        } else {
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            host = rest[..<colon]
            port = rest[rest.index(after: colon)...]
        }
        guard let number = Int(port), (1 ... 65535).contains(number), SocketAddress(host: String(host), port: number) != nil else { return nil }
        self = parts[0] == "udp" ? .udp(host: String(host), port: number) : .tcp(host: String(host), port: number)
    }

    public var description: String {
        switch self {
        case let .udp(host, port): return "udp:\(host.contains(":") ? "[\(host)]" : host):\(port)"
        case let .tcp(host, port): return "tcp:\(host.contains(":") ? "[\(host)]" : host):\(port)"
        case .systemd: return "systemd"
        }
    }
}

/// One rule turning a syslog message into an event kind: a Junos event tag
/// (`tag = CHASSISD_FRU_OFFLINE_NOTICE fru-offline`) or a glob on the message text
/// (`text = *core dumped* core-dump`).
public struct SyslogRule: Sendable, Equatable {
    public enum Match: Sendable, Equatable {
        case tag(String)
        case text(String)
    }

    public var match: Match
    /// The event kind raised: the health poll's kinds (`fru-offline`, `core-dump`, `reboot`,
    /// `switchover`, `alarm`...) make poll and syslog sightings of one incident one event.
    public var kind: String

    /// Whether the operator's own commands and logins (`UI_*` tags: `UI_CMDLINE_READ_LINE` quotes
    /// every command typed) never match: the default text rules' paths also appear in `file
    /// delete /var/tmp/rpd.core.0.gz`, and cleaning up a core raised a core-dump incident.
    public var skipsUserInterface = false

    public init(_ match: Match, kind: String, skipsUserInterface: Bool = false) {
        self.match = match
        self.kind = kind
        self.skipsUserInterface = skipsUserInterface
    }

    /// Whether `message` matches.
    public func matches(_ message: SyslogMessage) -> Bool {
        if skipsUserInterface, let tag = message.eventTag, tag.hasPrefix("UI_") { return false }
        switch match {
        case let .tag(tag): return message.eventTag == tag
        case let .text(pattern):
            // Bounded: the text is at most SyslogMessage.maximumLength, the pattern the operator's.
            return fnmatch(pattern, message.text, 0) == 0
        }
    }

    /// Used when `[syslog]` declares no rule of its own.
    public static let defaults: [SyslogRule] = [
        SyslogRule(.tag("CHASSISD_FRU_OFFLINE_NOTICE"), kind: "fru-offline"),
        SyslogRule(.tag("CHASSISD_FRU_OFFLINE_FAILED"), kind: "fru-offline"),
        SyslogRule(.tag("RPD_SCHED_SLIP"), kind: "rpd-sched-slip"),
        SyslogRule(.tag("KERNEL_PANIC"), kind: "kernel-panic"),
        // "Core dumped" lines and dumpd's "... saved in /var/tmp/rpd.core.0.gz".
        SyslogRule(.text("*/var/tmp/*.core*"), kind: "core-dump", skipsUserInterface: true),
        SyslogRule(.text("*/var/crash/*core*"), kind: "core-dump", skipsUserInterface: true),
    ]
}

/// `[syslog]` of agent.conf: the syslog trigger. Absent: no receiver.
public struct SyslogSettings: Sendable, Equatable {
    public var listen: [SyslogEndpoint] = []
    /// The rules in order (the first match wins); empty: ``SyslogRule/defaults``.
    public var rules: [SyslogRule] = []
    /// Sender address → device, for devices that send syslog from another address than the one
    /// the agent connects to (`source = 192.0.2.10 mx1`).
    public var sources: [String: String] = [:]
    /// Also map by the message's HOSTNAME field when the address matches no device (or several).
    /// Off by default: anyone who can reach the port can write any hostname.
    public var matchHostname = false
    /// Open TCP connections at once; more are closed at once (and counted).
    public var maxConnections = 256
    /// A TCP connection that sends nothing this long is closed.
    public var idleTimeout: Duration = .seconds(3600)

    public init() {}

    /// The rules in force.
    public var effectiveRules: [SyslogRule] { rules.isEmpty ? SyslogRule.defaults : rules }

    /// The event kind of `message`, or nil when no rule matches.
    public func kind(of message: SyslogMessage) -> String? {
        effectiveRules.first { $0.matches(message) }?.kind
    }
}

/// `[events]` of agent.conf.
public struct EventSettings: Sendable, Equatable {
    /// Receives a JSON ``EventNotice`` per event bundle (POST), over `[upload]`'s proxy, and over
    /// its TLS and token settings when it is on the support server (see ``delivery(over:)``);
    /// nil: no webhook.
    public var webhook: String?
    /// `token-file`: the bearer token for a webhook elsewhere (a ticketing or chat receiver).
    public var tokenFile: String?
    /// `ca-file`: the CA that signs a webhook elsewhere, when not one the system trusts.
    public var caFile: String?

    public init() {}

    /// The settings `webhook` is posted with. On the support server (`[upload] url`'s scheme,
    /// host and port) they are `[upload]`'s: its token, CA and client certificate. Elsewhere the
    /// upload token and client certificate would be handed to a third party, and the upload CA
    /// (a private one, replacing the system's) would refuse a public receiver: only `[upload]`'s
    /// proxy is kept, with this section's `token-file` and `ca-file` (none: no token, the system's
    /// trust). A `token-file` or `ca-file` given here is used in either case.
    public func delivery(over upload: UploadSettings) -> UploadSettings {
        var settings = upload
        if let webhook, let url = upload.url, Self.origin(webhook) != nil, Self.origin(webhook) == Self.origin(url) {
            if let tokenFile { settings.tokenFile = tokenFile; settings.tokenCredential = nil }
            if let caFile { settings.caFile = caFile }
            return settings
        }
        settings.tokenFile = tokenFile
        settings.tokenCredential = nil
        settings.caFile = caFile
        settings.clientCertificate = nil
        settings.clientKey = nil
        return settings
    }

    /// Scheme, host and port of `url` (the default port filled in), lowercased.
    static func origin(_ url: String) -> String? {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), let host = parts.host?.lowercased() else { return nil }
        let port = parts.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 0)
        return "\(scheme)://\(host):\(port)"
    }
}

extension AgentConfiguration {
    static func apply(_ entry: ConfigurationFile.Entry, to syslog: inout SyslogSettings,
                      fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) {
        let v = entry.value
        func words() -> [String] { v.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        func isKind(_ word: String) -> Bool {
            !word.isEmpty && word.count <= 64 && word.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        }
        switch entry.key {
        case "listen":
            for item in v.split(separator: ",") {
                guard let endpoint = SyslogEndpoint(parsing: String(item)) else {
                    throw fail(entry, "expected udp:ADDRESS:PORT, tcp:ADDRESS:PORT or systemd (comma separated), such as udp:0.0.0.0:5514, tcp:0.0.0.0:5514; found \"\(item.trimmingCharacters(in: .whitespaces))\"", false)
                }
                syslog.listen.append(endpoint)
            }
        case "tag":
            let w = words()
            guard w.count == 2, SyslogMessage.isTag(w[0]), isKind(w[1]) else {
                throw fail(entry, "expected an event tag and an event kind, such as CHASSISD_FRU_OFFLINE_NOTICE fru-offline; found \"\(v)\"", false)
            }
            syslog.rules.append(SyslogRule(.tag(w[0]), kind: w[1]))
        case "text":
            guard let space = v.lastIndex(of: " "), isKind(String(v[v.index(after: space)...])) else {
                throw fail(entry, "expected a text pattern (* and ? wildcards) and an event kind, such as */var/tmp/*.core* core-dump; found \"\(v)\"", false)
            }
            let pattern = v[..<space].trimmingCharacters(in: .whitespaces)
            guard !pattern.isEmpty, pattern.count <= 256 else { throw fail(entry, "expected a text pattern of 1 to 256 characters", false) }
            syslog.rules.append(SyslogRule(.text(pattern), kind: String(v[v.index(after: space)...])))
        case "source":
            let w = words()
            guard w.count == 2, SocketAddress(host: w[0], port: 514) != nil else {
                throw fail(entry, "expected a sender IP address and a device name, such as 192.0.2.10 mx1; found \"\(v)\"", false)
            }
            syslog.sources[SocketAddress(host: w[0], port: 514)!.host] = w[1]
        case "match-hostname":
            switch v.lowercased() {
            case "yes", "true", "on": syslog.matchHostname = true
            case "no", "false", "off": syslog.matchHostname = false
            default: throw fail(entry, "expected yes or no, found \"\(v)\"", false)
            }
        case "max-connections":
            guard let n = Int(v), (1 ... 10000).contains(n) else { throw fail(entry, "expected a number of connections from 1 to 10000, found \"\(v)\"", false) }
            syslog.maxConnections = n
        case "idle-timeout": syslog.idleTimeout = try positiveDuration(entry, fail: fail)
        default:
            throw fail(entry, "unknown key \"\(entry.key)\" in [syslog]; expected listen, tag, text, source, match-hostname, max-connections or idle-timeout", true)
        }
    }

    static func apply(_ entry: ConfigurationFile.Entry, to events: inout EventSettings,
                      fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) {
        let v = entry.value
        switch entry.key {
        case "webhook":
            if v.isEmpty { events.webhook = nil; return }
            let authority = v.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(2).first ?? ""
            guard !authority.contains("@") else {
                throw fail(entry, "expected a URL without user:password@; the webhook's token comes from token-file in [events] (or [upload]'s, on the support server)", false)
            }
            guard v.lowercased().hasPrefix("https://") || v.lowercased().hasPrefix("http://"),
                  let parsed = URLComponents(string: v), let host = parsed.host, !host.isEmpty else {
                throw fail(entry, "expected an https:// URL such as https://support.example.net/care/events, found \"\(v)\"", false)
            }
            events.webhook = v
        case "token-file": events.tokenFile = v.isEmpty ? nil : v
        case "ca-file": events.caFile = v.isEmpty ? nil : v
        default:
            throw fail(entry, "unknown key \"\(entry.key)\" in [events]; expected webhook, token-file or ca-file", true)
        }
    }
}
