import Foundation
import Junos

/// The configuration an advisory needs, read from its prose: the Junos hierarchy paths it names
/// (`[system services web-management http]`, `[edit chassis redundancy] graceful-switchover;`,
/// `set services ssl proxy profile ...`), whether any one or all of them must be present, or that
/// no configuration is needed. Prose that is not a plain statement list is read for what it
/// surely says and no more: see ``mixed``, ``absenceCaveat`` and ``presenceCaveat``.
public struct ConfigurationRequirement: Sendable {
    public enum Kind: Sendable, Equatable {
        /// The record says no configuration is needed.
        case none(String)
        /// These statements; `any`: one is enough, else all are needed.
        case statements([StatementPath], any: Bool)
        /// Prose the extraction cannot read, or no prose at all (the requirement is unknown).
        case unreadable(String)
    }

    public var kind: Kind
    /// Set when the prose combines alternatives and requirements in a way the reader does not
    /// take apart (`[a] and either [b] or [c]`): only "all present" and "all absent" decide.
    public var mixed: String?
    /// Why the absence of the listed statements does not show the device unexposed (the prose
    /// says the feature is on by default, or that its statements are only some examples).
    public var absenceCaveat: String?
    /// Why the presence of the statements does not show the device exposed (the prose names a
    /// condition outside the configuration, such as which process runs).
    public var presenceCaveat: String?

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

    /// Phrases that say no configuration is needed.
    static let noConfigurationPhrases = ["no minimum configuration", "no minimal configuration", "no specific configuration",
                                         "no configuration is required", "no special configuration", "no particular configuration"]

    /// Extracts the requirement from `configurations[].value`.
    public init(prose: String?) {
        // A record that says nothing about configuration has not said "none needed".
        guard let prose else {
            kind = .unreadable("unknown configuration requirement: the record has no configuration text")
            return
        }
        let text = Self.joiningBrackets(prose.replacingOccurrences(of: "\u{a0}", with: " "))
        let lower = text.lowercased()
        let layout = Self.extract(text)
        var paths = layout.paths
        // "No ... configuration" and "enabled by default" decide only when they are the whole
        // statement: prose that also names statements says something narrower (CVE-2024-47505:
        // none from the CLI, SNMP for the SNMP route; CVE-2024-39561: no-syn-check and Express Path).
        if let phrase = Self.noConfigurationPhrases.first(where: { lower.contains($0) }) {
            if paths.isEmpty { kind = .none("the record says \"\(phrase)\""); return }
            kind = .unreadable("the record says \"\(phrase)\" and also names \(paths.map { "[\($0.text)]" }.joined(separator: ", ")): which applies to this device cannot be read from the prose")
            return
        }
        let byDefault = Self.defaultPhrase(lower)
        guard !paths.isEmpty else {
            if let byDefault, !lower.contains("not \(byDefault)") { kind = .none("the record says \"\(byDefault)\""); return }
            let excerpt = text.trimmingCharacters(in: .whitespacesAndNewlines).prefix(160)
            kind = .unreadable("no Junos hierarchy path in the configuration prose: \"\(excerpt)\(text.count > 160 ? "..." : "")\"")
            return
        }
        var absence: [String] = []
        if let byDefault { absence.append("the record says \"\(byDefault)\"") }
        for phrase in ["other examples", "refer to your product documentation", "refer to product documentation"] where lower.contains(phrase) {
            absence.append("the record says its statements are examples (\"\(phrase)\")")
            break
        }
        // A sample of several statements that are all read as needed: a device without one of
        // them is not shown unaffected by it (CVE-2023-36832's 14-line sample, CVE-2024-30380's
        // LLDP sample with an interface of the writer's lab).
        let samplePhrase = ["sample configuration", "example configuration", "for example", "configuration like the following",
                            "configuration such as", "sample "].first { lower.contains($0) }
        if !layout.unparsed.isEmpty {
            absence.append("the prose has bracketed text that is not read as a statement: \(layout.unparsed.prefix(3).map { "\"[\($0)]\"" }.joined(separator: ", "))")
        }
        for phrase in ["needs to run ", "is running on the device", "agent is running"] where lower.contains(phrase) {
            presenceCaveat = "the record also needs a condition the configuration does not show (\"\(phrase.trimmingCharacters(in: .whitespaces))\")"
            break
        }
        var structure = Self.structure(layout)
        // An example statement with one of the alternatives another statement lists (`(version-ipfix
        // | version9)`, then `flow-server x.x.x.x version9 template 1`) stands for all of them.
        paths = Self.widened(paths)
        if structure == .all, Self.areVariants(paths, intro: layout.intro) { structure = .any }
        if let samplePhrase, structure == .all, paths.filter({ path in !paths.contains { $0 != path && $0.isPrefix(of: path) } }).count > 1 {
            absence.append("the record's statements are a sample (\"\(samplePhrase.trimmingCharacters(in: .whitespaces))\"), each not necessarily needed")
        }
        absenceCaveat = absence.isEmpty ? nil : absence.joined(separator: "; ")
        switch structure {
        case .all:
            // When all are needed and one path extends another listed one (`[protocols pim]`,
            // `[protocols pim rp config]`), the longer one is an example of the shorter: the shorter
            // decides. Reading examples as requirements would hide exposed devices.
            kind = .statements(paths.filter { path in !paths.contains { $0 != path && $0.isPrefix(of: path) } }, any: false)
        case .any:
            kind = .statements(paths, any: true)
        case let .mixed(why):
            kind = .statements(paths, any: false)
            mixed = why
        }
    }

    /// `paths` with each single keyword that another listed statement gives among parenthesised
    /// alternatives (`(version-ipfix|version9)`) widened to those alternatives. Slash pairs are
    /// not: `application/application-set` is a choice at one place, not a set of equivalents.
    static func widened(_ paths: [StatementPath]) -> [StatementPath] {
        var groups: [String: [String]] = [:]
        for path in paths {
            for case let .keyword(options) in path.components where options.count > 1
                && path.text.split(separator: " ").contains(Substring("(" + options.joined(separator: "|") + ")")) {
                for option in options where groups[option] == nil { groups[option] = options }
            }
        }
        guard !groups.isEmpty else { return paths }
        return paths.map { path in
            var path = path
            var words = path.text.split(separator: " ").map(String.init)
            for (index, component) in path.components.enumerated() {
                guard case let .keyword(options) = component, options.count == 1, let group = groups[options[0]] else { continue }
                path.components[index] = .keyword(group)
                if let at = words.firstIndex(of: options[0]) { words[at] = "(" + group.joined(separator: "|") + ")" }
            }
            path.text = words.joined(separator: " ")
            return path
        }
    }

    /// Whether `paths` are variants of one statement shown as a sample (CVE-2024-39555: `family
    /// inet segment-routing-te` (IPv4), `family inet6 ...` (IPv6)): the prose calls them a sample
    /// or an example, and every two differ in exactly one keyword. Either one is the feature. Two
    /// statements differing in names only (two interfaces of an example) are both needed.
    static func areVariants(_ paths: [StatementPath], intro: String) -> Bool {
        guard paths.count > 1, intro.range(of: #"\b(sample|example)\b"#, options: [.regularExpression, .caseInsensitive]) != nil else { return false }
        for (i, a) in paths.enumerated() {
            for b in paths[(i + 1)...] {
                guard a.anchored == b.anchored, a.components.count == b.components.count else { return false }
                let differing = zip(a.components, b.components).filter { $0 != $1 }
                guard differing.count == 1, case .keyword = differing[0].0, case .keyword = differing[0].1 else { return false }
            }
        }
        return true
    }

    /// "enabled by default", "in effect by default", "implicitly / by default": the phrase found.
    static func defaultPhrase(_ lower: String) -> String? {
        guard let range = lower.range(of: #"(?:[a-z]+ )?[a-z]+ (?:/ )?by default"#, options: .regularExpression) else { return nil }
        return String(lower[range])
    }

    /// Bracketed text that runs over lines (`[protocols bgp group <group-name> traceoptions\n\n packets detail]`)
    /// put on one line, so that each bracket is read whole. A bracket still open after 400
    /// characters, or at another `[`, is left as written.
    static func joiningBrackets(_ text: String) -> String {
        var result = ""
        var pending: String?
        for character in text {
            if var open = pending {
                if character == "]" {
                    result += open + "]"
                    pending = nil
                } else if character == "[" || open.count > 400 {
                    result += open
                    pending = character == "[" ? "[" : nil
                    if pending == nil { result.append(character) }
                } else {
                    open.append(character.isNewline ? " " : character)
                    pending = open
                }
            } else if character == "[" {
                pending = "["
            } else {
                result.append(character)
            }
        }
        return result + (pending ?? "")
    }

    /// How the listed statements combine.
    enum Structure: Equatable { case all, any, mixed(String) }

    /// Reads the prose around the statements: before the first (the introduction) and between
    /// them (the gaps). "Either", "one of", "one or more of", "at least one", "the following
    /// examples", or `or` between every two statements: any one is enough. None of these: all are
    /// needed. Alternatives and "and" together, alternatives only for part of the list, or a
    /// second "either" between statements: mixed.
    static func structure(_ layout: Layout) -> Structure {
        guard layout.paths.count > 1 else { return .all }
        let anyWords = ["either", "one of", "one or more of", "at least one of", "following examples", "any of the following",
                        "following options", "one of the following"]
        func hasAny(_ s: String) -> Bool { anyWords.contains { s.contains($0) } }
        func isOr(_ s: String) -> Bool {
            let words = s.split(whereSeparator: { !$0.isLetter }).map(String.init)
            return words == ["or"] || s.contains("also vulnerable") || s.contains("also affected")
        }
        func isAnd(_ s: String) -> Bool {
            s.range(of: #"\b(and|both)\b"#, options: .regularExpression) != nil
        }
        let intro = layout.intro.lowercased()
        let gaps = layout.gaps.map { $0.lowercased() }
        let adjacencies = layout.paths.count - 1
        let orGaps = gaps.filter(isOr).count
        let andGaps = gaps.filter { !isOr($0) && isAnd($0) }
        let anyGaps = gaps.filter { !isOr($0) && hasAny($0) }
        let introAny = hasAny(intro)
        if !introAny && orGaps == 0 && anyGaps.isEmpty { return .all }
        if let and = andGaps.first {
            return .mixed("the prose lists alternatives and also joins statements with \"\(and.trimmingCharacters(in: .whitespaces).prefix(80))\"")
        }
        if let second = anyGaps.first {
            return .mixed("the prose opens another set of alternatives between the statements (\"\(second.trimmingCharacters(in: .whitespaces).prefix(80))\")")
        }
        if introAny || orGaps == adjacencies { return .any }
        return .mixed("\"or\" separates only some of the listed statements")
    }

    /// The statements of the prose in order, with the prose before, between and after them.
    struct Layout {
        var paths: [StatementPath] = []
        /// Prose before the first statement.
        var intro = ""
        /// Prose between consecutive statements (only the non-blank gaps).
        var gaps: [String] = []
        /// Bracketed text that looks like a statement but could not be read as one.
        var unparsed: [String] = []
        /// Paths the statements may also sit under ("at the top level, under [logical-systems], or [routing-instances]").
        var prefixes: [StatementPath] = []
        private var pendingGap = ""

        mutating func prose(_ text: String) {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { return }
            if paths.isEmpty { intro += (intro.isEmpty ? "" : " ") + trimmed } else { pendingGap += (pendingGap.isEmpty ? "" : " ") + trimmed }
        }

        mutating func add(_ raw: String) {
            guard let path = StatementPath(raw) else {
                let trimmed = raw.trimmingCharacters(in: .whitespaces)
                if trimmed.first?.isLetter == true { unparsed.append(trimmed) }
                return
            }
            guard !paths.contains(where: { $0.text == path.text }) else { return }
            if !paths.isEmpty, !pendingGap.isEmpty { gaps.append(pendingGap) }
            pendingGap = ""
            paths.append(path)
        }
    }

    /// Bracketed paths, `[edit X]` followed by `statement;` lines, and `set ...` lines.
    static func extractPaths(_ text: String) -> [StatementPath] { extract(joiningBrackets(text)).paths }

    static func extract(_ text: String) -> Layout {
        var layout = Layout()
        let lines = text.components(separatedBy: "\n")
        var editContext: String?
        for line in lines.prefix(400) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { editContext = nil; continue }
            // "either at the top level, under [logical-systems], or [routing-instances]": those
            // brackets are where the listed statements may sit, not statements of their own.
            let lowerLine = trimmed.lowercased()
            let hierarchyPhrase = lowerLine.contains("top level") && lowerLine.contains("under [")
            var rest = Substring(trimmed)
            var sawBracket = false
            while let open = rest.firstIndex(of: "["), let close = rest[open...].firstIndex(of: "]") {
                layout.prose(String(rest[..<open]))
                let inside = rest[rest.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
                sawBracket = true
                if hierarchyPhrase {
                    if let prefix = StatementPath(inside) { layout.prefixes.append(prefix) }
                    layout.prose("[\(inside)]")
                } else if inside.hasPrefix("edit ") {
                    editContext = String(inside.dropFirst(5))
                    // `[edit interfaces interface-name]` alone names a statement too.
                } else if let context = editContext, !inside.hasPrefix("set "), inside.hasSuffix(";") {
                    layout.add(context + " " + inside)
                } else if !inside.isEmpty {
                    layout.add(inside)
                }
                rest = rest[rest.index(after: close)...]
            }
            if sawBracket { layout.prose(String(rest)); continue }
            if trimmed.hasPrefix("set ") {
                // `[edit policy-options]` then `set policy-statement ...`: the set is relative to the edit level.
                layout.add((editContext.map { $0 + " " } ?? "") + trimmed.dropFirst(4))
            } else if let context = editContext, trimmed.hasSuffix(";") {
                layout.add(context + " " + trimmed)
            } else {
                layout.prose(trimmed)
            }
        }
        // An `[edit X]` with no statement under it still names X.
        if layout.paths.isEmpty {
            for line in lines {
                if let open = line.range(of: "[edit "), let close = line[open.upperBound...].firstIndex(of: "]") {
                    layout.add(String(line[open.upperBound..<close]))
                }
            }
        }
        if !layout.prefixes.isEmpty {
            for index in layout.paths.indices where layout.paths[index].anchored { layout.paths[index].prefixes = layout.prefixes }
        }
        return layout
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
    /// Where else an anchored path may start besides the top level: each prefix's entries
    /// (`logical-systems <name>`, `routing-instances <name>`), and the prefixes within one another.
    public var prefixes: [StatementPath] = []

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
        // A name written into a word (`ae<number>`, `irb.<number>`, `<name>.<unit>`) is one placeholder.
        text = text.replacingOccurrences(of: #"(?:[A-Za-z0-9_.-]*<[^>]*>)+[A-Za-z0-9_.-]*"#, with: " <> ", options: .regularExpression)
        text = text.replacingOccurrences(of: #"\.\.\.(?=[a-z])"#, with: "... ", options: .regularExpression)
        text = text.replacingOccurrences(of: #"\(\s*([^)]*?)\s*\)"#, with: "($1)", options: .regularExpression)
        text = text.replacingOccurrences(of: #"\s*\|\s*"#, with: "|", options: .regularExpression)
        text = Self.firstWordOfEachAlternative(text)
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        words = words.map { $0.hasSuffix(";") ? String($0.dropLast()) : $0 }.filter { !$0.isEmpty && $0 != "set" && $0 != "edit" }
        // Prose writes `traceoptions packets detail`; Junos has `traceoptions flag packets detail`.
        var index = 0
        while index + 1 < words.count {
            if words[index] == "traceoptions", !Self.traceoptionsStatements.contains(words[index + 1]),
               Self.isKeywordLike(words[index + 1]) {
                words.insert("flag", at: index + 1)
            }
            index += 1
        }
        guard let first = words.first, words.count <= 24 else { return nil }
        // Only statement-like text: a first word that is a Junos keyword.
        guard first.range(of: #"^[a-z][a-z0-9-]*$"#, options: .regularExpression) != nil else { return nil }
        var components: [Component] = []
        var shown: [String] = []
        var previous = ""
        var valuesLeft = 0
        for word in words {
            defer { previous = word }
            if valuesLeft > 0, word != "...", word != "<>" {
                // The documentation's names for a statement's values (`route-filter destination-prefix
                // match-type`): any value, not keywords the configuration must hold.
                valuesLeft -= 1
                components.append(.placeholder); shown.append("<\(word)>")
                continue
            }
            valuesLeft = Self.valueStatements[word] ?? 0
            if Self.listKeywords.contains(previous), Self.statementsRightAfter.contains(word) {
                // `filter output <name>`: a statement of the keyword's own, never an example name.
                components.append(.keyword([word])); shown.append(word)
            } else if Self.listKeywords.contains(previous), Self.statementsNeverNames.contains(word) {
                // `interfaces unit family mpls`: the prose left the names out; the word is the next statement.
                components.append(.placeholder); shown.append("<name>")
                valuesLeft = Self.valueStatements[word] ?? 0
                components.append(.keyword([word])); shown.append(word)
            } else if Self.listKeywords.contains(previous), word != "<>", word != "...", !word.hasPrefix("(") {
                // An example name after a list keyword (`policy-statement my-policy`).
                components.append(.placeholder); shown.append("<\(word)>")
            } else if word == "..." || word == ".." {
                components.append(.gap); shown.append("...")
            } else if word == "<>" {
                components.append(.placeholder); shown.append("<name>")
            } else if word.hasPrefix("("), word.hasSuffix(")") {
                let options = word.dropFirst().dropLast().split(separator: "|").map(String.init)
                components.append(.keyword(options)); shown.append(word)
            } else if word.range(of: #"^[a-z][a-z0-9-]*(/[a-z][a-z0-9-]*)+$"#, options: .regularExpression) != nil {
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

    /// Statements that the prose writes right after a list keyword when it leaves the entry's
    /// name out (`[interfaces unit family mpls]`); never an example name.
    static let statementsNeverNames: Set<String> = ["unit", "family", "interface", "neighbor", "group", "term", "from", "then", "instance-type",
                                                    "private-vlan", "vlan-id"]

    /// Statements of a list keyword's own that the prose writes right after it (`filter input`,
    /// `filter output-list`): neither an example name nor after one.
    static let statementsRightAfter: Set<String> = ["input", "output", "input-list", "output-list"]

    /// The statements directly under `traceoptions`; any other word after it is a flag.
    static let traceoptionsStatements: Set<String> = ["flag", "file", "level", "no-remote-trace", "filter", "size", "files"]

    /// Statements whose following words are values the documentation names (`route-filter
    /// destination-prefix match-type`), with how many.
    static let valueStatements: [String: Int] = ["route-filter": 2, "prefix-list-filter": 2, "route-filter-list": 2]

    /// `(finger|rest control|tftp-server)` → `(finger|rest|tftp-server)`: an alternative is one
    /// keyword; of a multi-word one only the first is kept (it then matches less, never more).
    static func firstWordOfEachAlternative(_ text: String) -> String {
        var result = ""
        var group: String?
        for character in text {
            if var open = group {
                if character == ")" {
                    let options = open.split(separator: "|").compactMap { $0.split(separator: " ").first.map(String.init) }
                    result += "(" + options.joined(separator: "|") + ")"
                    group = nil
                } else {
                    open.append(character)
                    group = open
                }
            } else if character == "(" {
                group = ""
            } else {
                result.append(character)
            }
        }
        if let group { result += "(" + group }
        return result
    }

    /// Whether the (group-expanded, inactive-free) configuration has this statement. The walk is
    /// iterative and bounded: a path has at most 24 components, and at most `limit` statements are visited.
    public func isPresent(in root: ConfigStatement, limit: Int = 2_000_000) -> Bool {
        isPresent(in: ConfigurationIndex(root), limit: limit)
    }

    /// As ``isPresent(in:limit:)``, with the statements indexed once per device.
    public func isPresent(in index: ConfigurationIndex, limit: Int = 2_000_000) -> Bool {
        // `[edit interfaces interface-name] encapsulation ppp-over-ether`: Junos has most such
        // statements on the logical unit as well; the prose leaves `unit <n>` out.
        if anchored, components.count > 2, components[0] == .keyword(["interfaces"]), components[1] == .placeholder,
           case let .keyword(next) = components[2], !next.contains("unit") {
            var onUnit = self
            onUnit.components.insert(contentsOf: [.keyword(["unit"]), .placeholder], at: 2)
            if onUnit.presentOnce(in: index, limit: limit / 2) { return true }
            return presentOnce(in: index, limit: limit / 2)
        }
        return presentOnce(in: index, limit: limit)
    }

    /// Where a path the prose writes at the top (`[protocols bgp]`) also runs when the prose
    /// names no place: in routing instances and logical systems, as the feature profile reads it.
    static let scopedTopLevel: Set<String> = ["protocols", "routing-options", "policy-options", "firewall", "interfaces",
                                              "forwarding-options", "bridge-domains", "vlans", "class-of-service", "switch-options",
                                              "multicast-snooping-options", "services", "access"]
    static let defaultPrefixes: [StatementPath] = [StatementPath("routing-instances"), StatementPath("logical-systems")].compactMap { $0 }

    private func presentOnce(in index: ConfigurationIndex, limit: Int) -> Bool {
        var budget = limit
        var work: [(ConfigStatement, Int, Bool)]
        if anchored {
            var scoped = self
            if prefixes.isEmpty, case let .keyword(first)? = components.first, first.contains(where: Self.scopedTopLevel.contains) {
                scoped.prefixes = Self.defaultPrefixes
            }
            work = scoped.startingStatements(index.root).map { ($0, 0, false) }
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
                // XML keeps `flag update detail` as `<flag><name>update</name><detail/></flag>`.
                if byKeyword, let identifier = node.identifier, options.contains(identifier) { work.append((node, index + 1, false)) }
                if byKeyword, node.children.isEmpty, let value = node.value, components.count - index <= 2,
                   Self.value(value, matches: components[index...]) {
                    return true
                }
            }
        }
        return false
    }

    /// A leaf reached by its keyword: the remaining components are its value's words. A
    /// keyword-like word must be one of the options; other values (`5000`, `ge-0/0/0`) are
    /// examples, unless the options themselves carry digits (`hmac-sha-384`): then the word is
    /// compared too. A keyword with no word left for it is missing.
    static func value(_ value: String, matches remaining: ArraySlice<Component>) -> Bool {
        let words = value.split(separator: " ")
        for (offset, component) in remaining.enumerated() {
            switch component {
            case .gap: return true
            case .placeholder: continue
            case let .keyword(options):
                guard offset < words.count else { return false }
                let word = String(words[offset])
                let compared = isKeywordLike(word) || options.contains { $0.contains(where: \.isNumber) }
                if compared, !options.contains(word) { return false }
            }
        }
        return true
    }

    /// The statements an anchored path may start at: the top, and each entry of a prefix
    /// (`logical-systems LS1`, `routing-instances VRF1`), also one within another.
    func startingStatements(_ root: ConfigStatement) -> [ConfigStatement] {
        guard !prefixes.isEmpty else { return [root] }
        var starts = [root]
        var frontier = [root]
        for _ in 0..<2 {
            var next: [ConfigStatement] = []
            for node in frontier {
                for prefix in prefixes { next += prefix.entries(under: node) }
            }
            starts += next
            frontier = next
            if starts.count > 100_000 { break }
        }
        return starts
    }

    /// The entries this keyword-only path names under `node`: a list entry with its name
    /// (`<logical-systems><name>LS1</name>`), or each child of a container (`routing-instances { VRF1 {...} }`).
    func entries(under node: ConfigStatement) -> [ConfigStatement] {
        var level = [node]
        for component in components {
            guard case let .keyword(options) = component else { return [] }
            level = level.flatMap { $0.children.filter { options.contains($0.keyword) } }
        }
        return level.flatMap { entry in entry.identifier != nil ? [entry] : entry.children }
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
        // The feature profile knows only the top level, not logical systems or instances.
        guard anchored, prefixes.isEmpty else { return nil }
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
