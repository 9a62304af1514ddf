import Foundation
import Junos

/// The configuration an advisory needs, read from its prose: the Junos hierarchy paths it names
/// (`[system services web-management http]`, `[edit chassis redundancy] graceful-switchover;`,
/// `set services ssl proxy profile ...`), whether any one or all of them must be present, or that
/// no configuration is needed.
public struct ConfigurationRequirement: Sendable {
    public enum Kind: Sendable, Equatable {
        /// The record names no configuration, or says none is needed.
        case none(String)
        /// These statements; `any`: one is enough, else all are needed.
        case statements([StatementPath], any: Bool)
        /// Prose the extraction cannot read.
        case unreadable(String)
    }

    public var kind: Kind

    /// The requirement of an advisory: its configuration prose, else a feature its product name
    /// carries (`Junos OS with LDP enabled` → `[protocols ldp]`).
    public init(advisory: Advisory) {
        if advisory.configurationText == nil {
            for product in advisory.affected.map({ $0.product.lowercased() }) {
                guard let with = product.range(of: " with "), product.hasSuffix(" enabled") else { continue }
                let feature = product[with.upperBound...].dropLast(" enabled".count).trimmingCharacters(in: .whitespaces)
                if feature.range(of: #"^[a-z0-9-]+$"#, options: .regularExpression) != nil, let path = StatementPath("protocols \(feature)") {
                    self.init(kind: .statements([path], any: false))
                    return
                }
            }
        }
        self.init(prose: advisory.configurationText)
    }

    public init(kind: Kind) { self.kind = kind }

    /// Extracts the requirement from `configurations[].value`.
    public init(prose: String?) {
        guard let prose else { kind = .none("the record names no configuration"); return }
        let text = prose.replacingOccurrences(of: "\u{a0}", with: " ")
        let lower = text.lowercased()
        for phrase in ["no minimum configuration", "no specific configuration", "no configuration is required",
                       "no special configuration", "no particular configuration", "enabled by default"] where lower.contains(phrase) {
            kind = .none("the record says \"\(phrase)\"")
            return
        }
        let paths = Self.extractPaths(text)
        guard !paths.isEmpty else {
            let excerpt = text.trimmingCharacters(in: .whitespacesAndNewlines).prefix(160)
            kind = .unreadable("no Junos hierarchy path in the configuration prose: \"\(excerpt)\(text.count > 160 ? "..." : "")\"")
            return
        }
        let any = lower.contains("either") || lower.range(of: #"\]\s*or\b"#, options: .regularExpression) != nil
            || lower.range(of: #"\n\s*or\s*\n"#, options: .regularExpression) != nil || lower.contains(" one of ")
        // When all are needed and one path extends another listed one (`[protocols pim]`,
        // `[protocols pim rp config]`), the longer one is an example of the shorter: the shorter
        // decides. Reading examples as requirements would hide exposed devices.
        let needed = any ? paths : paths.filter { path in !paths.contains { $0 != path && $0.isPrefix(of: path) } }
        kind = .statements(needed, any: any)
    }

    /// Bracketed paths, `[edit X]` followed by `statement;` lines, and `set ...` lines.
    static func extractPaths(_ text: String) -> [StatementPath] {
        var result: [StatementPath] = []
        func add(_ raw: String) {
            if let path = StatementPath(raw), !result.contains(where: { $0.text == path.text }) { result.append(path) }
        }
        let lines = text.components(separatedBy: "\n")
        var editContext: String?
        for line in lines.prefix(400) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { editContext = nil; continue }
            var rest = Substring(trimmed)
            var sawBracket = false
            while let open = rest.firstIndex(of: "["), let close = rest[open...].firstIndex(of: "]") {
                let inside = rest[rest.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
                sawBracket = true
                if inside.hasPrefix("edit ") {
                    editContext = String(inside.dropFirst(5))
                    // `[edit interfaces interface-name]` alone names a statement too.
                } else if let context = editContext, !inside.hasPrefix("set "), inside.hasSuffix(";") {
                    add(context + " " + inside)
                } else {
                    add(inside)
                }
                rest = rest[rest.index(after: close)...]
            }
            if sawBracket { continue }
            if trimmed.hasPrefix("set ") {
                // `[edit policy-options]` then `set policy-statement ...`: the set is relative to the edit level.
                add((editContext.map { $0 + " " } ?? "") + trimmed.dropFirst(4))
            } else if let context = editContext, trimmed.hasSuffix(";") {
                add(context + " " + trimmed)
            }
        }
        // An `[edit X]` with no statement under it still names X.
        if result.isEmpty {
            for line in lines {
                if let open = line.range(of: "[edit "), let close = line[open.upperBound...].firstIndex(of: "]") {
                    add(String(line[open.upperBound..<close]))
                }
            }
        }
        return result
    }
}

/// One Junos hierarchy path from advisory prose, split into components.
public struct StatementPath: Sendable, Equatable {
    public enum Component: Sendable, Equatable {
        /// A keyword, or alternatives (`(stp | mstp)`, `master/slave`).
        case keyword([String])
        /// `<name>`, `interface-name`, `SSL-PROXY`, `10.0.0.0/24`: any one name or value.
        case placeholder
        /// `...`: any number of levels.
        case gap
    }

    public var components: [Component]
    /// Normalised text (`system services web-management http`), as shown in reasons.
    public var text: String
    /// True when the path starts at a top-level statement; otherwise it may sit anywhere.
    public var anchored: Bool

    static let topLevel: Set<String> = [
        "system", "chassis", "interfaces", "protocols", "routing-options", "routing-instances", "policy-options",
        "firewall", "class-of-service", "security", "services", "snmp", "vlans", "forwarding-options",
        "logical-systems", "access", "event-options", "switch-options", "virtual-chassis", "applications",
        "bridge-domains", "ethernet-switching-options", "multi-chassis", "poe", "groups", "accounting-options",
        "dynamic-profiles", "multicast-snooping-options", "schedulers", "smtp", "tenants", "fabric", "jsrc",
    ]

    /// Keywords whose next word is the entry's name in examples (`group EBGP`, `term 1`).
    static let listKeywords: Set<String> = [
        "group", "neighbor", "policy-statement", "term", "profile", "rule", "rule-set", "pool", "security-zone",
        "from-zone", "to-zone", "filter", "instance", "service-set", "gateway", "proposal", "ca-profile",
        "community", "prefix-list", "peer", "member", "maintenance-domain", "maintenance-association", "vpn",
        "policy", "address-book", "application", "application-set", "storm-control-profiles", "logical-systems",
        "routing-instances", "vlans", "interfaces", "unit", "host", "server", "client", "scheduler-maps",
        "forwarding-class", "traffic-control-profiles", "ike-policy", "ipsec-policy", "user", "class",
    ]

    init?(_ raw: String) {
        var text = raw.replacingOccurrences(of: "\u{a0}", with: " ").replacingOccurrences(of: "…", with: " ... ")
        // `<vlan ID>` → one placeholder; `( stp | mstp )` → one token.
        text = text.replacingOccurrences(of: #"<[^>]*>"#, with: " <> ", options: .regularExpression)
        text = text.replacingOccurrences(of: #"\(\s*([^)]*?)\s*\)"#, with: "($1)", options: .regularExpression)
        text = text.replacingOccurrences(of: #"\s*\|\s*"#, with: "|", options: .regularExpression)
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        words = words.map { $0.hasSuffix(";") ? String($0.dropLast()) : $0 }.filter { !$0.isEmpty && $0 != "set" && $0 != "edit" }
        guard let first = words.first, words.count <= 24 else { return nil }
        // Only statement-like text: a first word that is a Junos keyword.
        guard first.range(of: #"^[a-z][a-z0-9-]*$"#, options: .regularExpression) != nil else { return nil }
        var components: [Component] = []
        var shown: [String] = []
        var previous = ""
        for word in words {
            defer { previous = word }
            if Self.listKeywords.contains(previous), word != "<>", word != "...", !word.hasPrefix("(") {
                // An example name after a list keyword (`policy-statement my-policy`).
                components.append(.placeholder); shown.append("<\(word)>")
            } else if word == "..." || word == ".." {
                components.append(.gap); shown.append("...")
            } else if word == "<>" {
                components.append(.placeholder); shown.append("<name>")
            } else if word.hasPrefix("("), word.hasSuffix(")") {
                let options = word.dropFirst().dropLast().split(separator: "|").map(String.init)
                components.append(.keyword(options)); shown.append(word)
            } else if word.range(of: #"^[a-z][a-z0-9-]*(/[a-z][a-z-]*)+$"#, options: .regularExpression) != nil {
                components.append(.keyword(word.split(separator: "/").map(String.init))); shown.append(word)
            } else if word.range(of: #"^[a-z][a-z0-9-]*$"#, options: .regularExpression) != nil,
                      !(word.hasSuffix("-name") && word != "host-name" && word != "domain-name"), !word.hasSuffix("-value") {
                components.append(.keyword([word])); shown.append(word)
            } else {
                components.append(.placeholder); shown.append(word)
            }
        }
        guard components.contains(where: { if case .keyword = $0 { true } else { false } }) else { return nil }
        self.components = components
        self.text = shown.joined(separator: " ")
        anchored = Self.topLevel.contains(first)
    }

    /// Whether the (group-expanded, inactive-free) configuration has this statement. The walk is
    /// iterative and bounded: a path has at most 24 components, and at most `limit` statements are visited.
    public func isPresent(in root: ConfigStatement, limit: Int = 2_000_000) -> Bool {
        isPresent(in: ConfigurationIndex(root), limit: limit)
    }

    /// As ``isPresent(in:limit:)``, with the statements indexed once per device.
    public func isPresent(in index: ConfigurationIndex, limit: Int = 2_000_000) -> Bool {
        var budget = limit
        var work: [(ConfigStatement, Int, Bool)]
        if anchored {
            work = [(index.root, 0, false)]
        } else {
            // The path may sit anywhere: start at every statement with its first keyword.
            guard case let .keyword(options) = components[0] else { return false }
            work = options.flatMap { index.statements(withKeyword: $0) }.map { ($0, 1, true) }
        }
        // Work items: (statement, next component index, reached by matching a keyword).
        while let (node, index, byKeyword) = work.popLast() {
            budget -= 1
            if budget < 0 { return false }
            if index == components.count { return true }
            // XML keeps a list entry's key as a `name` child; it is the identifier, not a level.
            let levels = node.identifier != nil ? node.children.filter { $0.keyword != "name" } : node.children
            switch components[index] {
            case .gap:
                work.append((node, index + 1, byKeyword))
                for child in levels { work.append((child, index, false)) }
            case .placeholder:
                // A list key (`group <name>`), a leaf value, or any one level (`interfaces <name>`).
                if node.identifier != nil || node.value != nil { work.append((node, index + 1, false)) }
                for child in levels { work.append((child, index + 1, false)) }
            case let .keyword(options):
                for child in levels where options.contains(child.keyword) { work.append((child, index + 1, true)) }
                if byKeyword, node.children.isEmpty, let value = node.value, components.count - index <= 2 {
                    // A leaf reached by its keyword: the remaining words are its value. A single
                    // keyword-like value must be the word; other values (`5000`) are examples.
                    let keywordLike = Self.isKeywordLike(value)
                    if components.count - index == 1 && keywordLike {
                        if options.contains(value) { return true }
                    } else {
                        return true
                    }
                }
            }
        }
        return false
    }

    /// Whether `other` starts with every component of this path.
    func isPrefix(of other: StatementPath) -> Bool {
        components.count < other.components.count && Array(other.components.prefix(components.count)) == components
    }

    /// `[a-z][a-z-]*`: a word that is a Junos keyword rather than a name or number (no regex: hot path).
    static func isKeywordLike(_ value: String) -> Bool {
        var first = true
        for byte in value.utf8 {
            let letter = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
            if first { guard letter else { return false }; first = false; continue }
            guard letter || byte == UInt8(ascii: "-") else { return false }
        }
        return !first
    }

    /// The ``ConfiguredFeature`` that says the same as this path, for devices whose configuration
    /// statements are not at hand but whose feature profile is.
    var feature: ConfiguredFeature? {
        guard anchored else { return nil }
        var words: [String] = []
        for component in components {
            guard case let .keyword(options) = component, options.count == 1 else { break }
            words.append(options[0])
        }
        let joined = words.joined(separator: " ")
        let table: [String: ConfiguredFeature] = [
            "system services web-management http": .webManagementHTTP, "system services web-management https": .webManagementHTTPS,
            "system services telnet": .telnet, "system services ftp": .ftp, "system services ssh": .ssh,
            "system services netconf": .netconf, "system services rest": .restAPI,
            "system services extension-service": .extensionService, "system services xnm-clear-text": .xnmClearText,
            "system services xnm-ssl": .xnmSSL, "security idp": .idp, "security utm": .utm, "security nat": .nat,
            "security ipsec": .ipsec, "security ike": .ike, "chassis cluster": .chassisCluster, "virtual-chassis": .virtualChassis,
        ]
        if let feature = table[joined], words.count == joined.split(separator: " ").count,
           components.count == words.count { return feature }
        if words.count == 2, words[0] == "protocols", components.count == 2, let feature = ConfiguredFeature(rawValue: words[1]) {
            return feature
        }
        return nil
    }
}

/// A configuration's statements by keyword, built once per device in one bounded, iterative walk,
/// so that paths that may sit anywhere (`[encapsulation ethernet-ccc]`) start where they can match.
public struct ConfigurationIndex: Sendable {
    public let root: ConfigStatement
    private var byKeyword: [String: [ConfigStatement]] = [:]
    /// At most this many statements are indexed (a configuration with millions is cut, not fatal).
    public static let maximumStatements = 2_000_000

    public init(_ root: ConfigStatement) {
        self.root = root
        var stack = root.children
        var count = 0
        while let node = stack.popLast(), count < Self.maximumStatements {
            count += 1
            byKeyword[node.keyword, default: []].append(node)
            stack.append(contentsOf: node.children)
        }
    }

    func statements(withKeyword keyword: String) -> [ConfigStatement] { byKeyword[keyword] ?? [] }
}
