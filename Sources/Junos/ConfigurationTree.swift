import XML

/// One statement of a Junos configuration, read from XML (`<bgp>`, `<group><name>x</name>…`) or
/// from curly-brace text (`group x { … }`), with inactive statements already dropped.
///
/// XML and text shape lists differently: XML says `<interface><name>ge-0/0/0</name>`, text says
/// `ge-0/0/0 { … }` directly under `interfaces`. ``ConfigurationTree/statements(at:)`` therefore
/// takes `*` for "any one level", and rules are written as `interfaces/*/unit/family/inet6`.
public struct ConfigStatement: Sendable, Equatable {
    /// The statement's keyword: the element name, or the first word of a text statement.
    public var keyword: String
    /// The list key: the `<name>` child in XML, the words after the keyword of a text container.
    public var identifier: String?
    /// A leaf's value: the element text, or the words after the keyword of a text leaf.
    public var value: String?
    public var children: [ConfigStatement]

    public init(keyword: String, identifier: String? = nil, value: String? = nil, children: [ConfigStatement] = []) {
        self.keyword = keyword
        self.identifier = identifier
        self.value = value
        self.children = children
    }

    /// The children with this keyword.
    public func children(_ keyword: String) -> [ConfigStatement] { children.filter { $0.keyword == keyword } }
}

/// A whole configuration as statements, with `groups` set apart and applied the way Junos applies them.
public struct ConfigurationTree: Sendable, Equatable {
    /// The top-level statements as written, `groups` included.
    public var root: ConfigStatement

    public init(root: ConfigStatement) { self.root = root }

    // MARK: Reading XML

    /// Reads a `<configuration>` element. Statements marked `inactive="inactive"` are dropped with
    /// everything below them; `<undocumented>` wrappers are transparent.
    public init(element: XMLElement) {
        root = ConfigurationTree.statement(element) ?? ConfigStatement(keyword: element.name)
    }

    static func statement(_ element: XMLElement) -> ConfigStatement? {
        if element.attribute("inactive") == "inactive" { return nil }
        var children: [ConfigStatement] = []
        for child in element.children {
            if child.name == "undocumented" {
                if child.attribute("inactive") == "inactive" { continue }
                children += child.children.compactMap(statement)
            } else if let s = statement(child) {
                children.append(s)
            }
        }
        let leaf = children.isEmpty
        return ConfigStatement(keyword: element.name,
                               identifier: leaf ? nil : element.value("name")?.collapsingWhitespace,
                               value: leaf ? element.value?.collapsingWhitespace : nil,
                               children: children)
    }

    /// The defined groups that `name` applies.
    static func groups(named name: String, in groups: [XMLElement]) -> [XMLElement] {
        groups.filter { group in group.value("name").map { applies(name, toGroup: $0.collapsingWhitespace) } ?? false }
    }

    /// Whether `apply-groups name` applies the group `id`: `${node}` (chassis cluster) applies
    /// node0, node1, ...; any other name only its own group.
    static func applies(_ name: String, toGroup id: String) -> Bool {
        if name == "${node}" { return id.hasPrefix("node") && !id.dropFirst(4).isEmpty && id.dropFirst(4).allSatisfy(\.isNumber) }
        return id == name
    }

    // MARK: Reading text

    /// Reads curly-brace text (`show configuration`). Comments (`/* */`, `#` to the line end) are skipped,
    /// `inactive:` statements dropped. The reader never fails: a brace that closes no open block
    /// is ignored when its indentation shows it is stray (hand-edited captures have such braces),
    /// and blocks still open at the end are closed.
    /// Blocks nested deeper than ``ConfigurationTextParser/maximumDepth`` are left out (see
    /// ``init(checkingText:)`` for a reader that refuses them).
    public init(text: String) {
        var parser = ConfigurationTextParser(tokens: ConfigurationTextTokenizer.tokens(text))
        root = ConfigStatement(keyword: "configuration",
                               children: Self.splittingEntries(parser.parseBlock(indent: -1, isTop: true)))
    }

    /// Reads curly-brace text like ``init(text:)``, but refuses text whose blocks nest deeper
    /// than ``ConfigurationTextParser/maximumDepth``: no real configuration comes near, and the
    /// walks over statements would otherwise be as deep as the text decides.
    public init(checkingText text: String) throws(ConfigurationTextDepthError) {
        var parser = ConfigurationTextParser(tokens: ConfigurationTextTokenizer.tokens(text))
        let statements = parser.parseBlock(indent: -1, isTop: true)
        if let line = parser.tooDeepAtOffset { throw ConfigurationTextDepthError(limit: ConfigurationTextParser.maximumDepth, offset: line) }
        root = ConfigStatement(keyword: "configuration", children: Self.splittingEntries(statements))
    }

    /// Text writes `groups { node0 { … } }` and `logical-systems { LS1 { … } }`; XML writes one
    /// `<groups><name>node0</name>…` per group and one `<logical-systems><name>LS1</name>…` per
    /// logical system. Splits the text the XML way so that paths agree, at the top and in groups.
    static func splittingEntries(_ statements: [ConfigStatement]) -> [ConfigStatement] {
        var split: [ConfigStatement] = []
        for statement in statements {
            if (statement.keyword == "groups" || statement.keyword == "logical-systems") && statement.identifier == nil {
                for entry in statement.children {
                    let children = statement.keyword == "groups" ? splittingEntries(entry.children) : entry.children
                    split.append(ConfigStatement(keyword: statement.keyword, identifier: entry.keyword, children: children))
                }
            } else {
                split.append(statement)
            }
        }
        return split
    }

    // MARK: Groups

    /// Names of the configuration groups defined.
    public var groupNames: [String] { root.children("groups").compactMap(\.identifier) }

    /// Group names named by `apply-groups` anywhere outside the groups themselves, as written
    /// (`${node}` included).
    public var appliedGroupNames: [String] {
        var names: [String] = []
        func walk(_ s: ConfigStatement) {
            for child in s.children {
                if child.keyword == "apply-groups" { names += ConfigurationTree.groupNames(in: child) }
                else if child.keyword != "groups" { walk(child) }
            }
        }
        walk(root)
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    static func groupNames(in applyGroups: ConfigStatement) -> [String] {
        (applyGroups.value ?? "").split(whereSeparator: { $0 == " " || $0 == "[" || $0 == "]" })
            .map { String($0).trimmingQuotes }
            .filter { !$0.isEmpty }
    }

    /// The configuration as Junos uses it: statements of applied groups merged in at the level
    /// where `apply-groups` names them, unapplied groups ignored, the `groups` stanzas removed.
    /// `apply-groups ${node}` (chassis cluster) applies every group named `node0`, `node1`, ...
    /// Group contents are merged by appending; duplicates are harmless for feature detection.
    /// `apply-groups-except G` keeps G's statements out of its hierarchy and everything below: a
    /// group statement that would land only on such hierarchies is left out.
    /// Approximations, all on the side of reporting a feature: a group statement that lands on no
    /// statement is added as written, and for nested groups (a group applied below the top level)
    /// wildcard names (`<ge-*>`) match every name at their level.
    public var effective: ConfigStatement { effective(appliedGroups: appliedGroupNames) }

    /// ``effective`` when the caller already has ``appliedGroupNames`` (saves a walk).
    public func effective(appliedGroups: [String]) -> ConfigStatement {
        effectiveExpansion(appliedGroups: appliedGroups).statement
    }

    /// Applying groups adds at most this many statements, or four times the configuration's
    /// own if that is more. A group whose statements apply groups again (or the same group
    /// several times over at each of many levels) would otherwise grow the tree exponentially:
    /// a few kilobytes of hostile configuration, millions of statements.
    public static let minimumExpansionBudget = 200_000

    /// What the limit says when it stops an expansion.
    public static let expansionLimitMessage =
        "applying configuration groups would add more than \(minimumExpansionBudget) statements (or 4 times the configuration's own): groups applied within groups, many times over"

    /// ``effective``, and whether every applied group could be merged in within the budget
    /// (``minimumExpansionBudget``); when not, the statements merged so far.
    public func effectiveExpansion(appliedGroups: [String]) -> (statement: ConfigStatement, complete: Bool) {
        let definedGroups = root.children("groups")
        var base = root
        base.children.removeAll { $0.keyword == "groups" }
        // Nothing applied: no walk needed (large configurations often apply no group).
        if definedGroups.isEmpty || appliedGroups.isEmpty { return (base, true) }
        var budget = max(Self.minimumExpansionBudget, 4 * root.size)
        var complete = true

        func groups(named name: String) -> [ConfigStatement] {
            definedGroups.filter { $0.identifier.map { ConfigurationTree.applies(name, toGroup: $0) } ?? false }
        }

        func contents(of group: ConfigStatement, at path: [String]) -> [ConfigStatement] {
            var nodes = [group]
            for component in path {
                nodes = nodes.flatMap { node in
                    // `<ge-*>` in a group matches any name at that level.
                    node.children.filter { $0.keyword == component || $0.keyword.hasPrefix("<") }
                }
            }
            return nodes.flatMap { node in path.isEmpty ? node.children.filter { $0.keyword != "name" } : node.children }
        }

        let excepting = base.contains { $0.keyword == "apply-groups-except" }

        func expand(_ node: inout ConfigStatement, path: [String], depth: Int) {
            // Only statements with apply-groups somewhere below them can change.
            guard depth < 64, complete, node.containsApplyGroups else { return }
            // Each group once per level, however often it is named there.
            var names: [String] = []
            for child in node.children where child.keyword == "apply-groups" {
                for name in ConfigurationTree.groupNames(in: child) where !names.contains(name) { names.append(name) }
            }
            var added: [ConfigStatement] = []
            merging: for name in names {
                for group in groups(named: name) {
                    var statements = contents(of: group, at: path)
                    if excepting { statements = statements.compactMap { $0.applied(to: node.children, group: group.identifier ?? "") } }
                    let cost = statements.reduce(0) { $0 + $1.size }
                    guard cost <= budget else {
                        complete = false
                        break merging
                    }
                    budget -= cost
                    added += statements
                }
            }
            node.children += added
            for i in node.children.indices where node.children[i].keyword != "apply-groups" {
                let keyword = node.children[i].keyword
                expand(&node.children[i], path: path + [keyword], depth: depth + 1)
            }
        }
        expand(&base, path: [], depth: 0)
        return (base, complete)
    }
}

extension ConfigStatement {
    /// The number of statements in this one's subtree, itself included (counted without
    /// recursion: the depth is the input's).
    var size: Int {
        var count = 0
        var stack = [self]
        while let statement = stack.popLast() {
            count += 1
            stack += statement.children
        }
        return count
    }

    /// Whether this statement or one below it is `apply-groups`.
    var containsApplyGroups: Bool {
        children.contains { $0.keyword == "apply-groups" || $0.containsApplyGroups }
    }

    /// Whether this statement or one below it satisfies `predicate`.
    func contains(where predicate: (ConfigStatement) -> Bool) -> Bool {
        children.contains { predicate($0) || $0.contains(where: predicate) }
    }

    /// This group statement as it applies among `siblings` (the statements of the level its group
    /// is applied to): nil when every statement it lands on says `apply-groups-except` for the
    /// group; else with its children pruned the same way, one level down.
    func applied(to siblings: [ConfigStatement], group id: String) -> ConfigStatement? {
        let targets = siblings.filter { lands(on: $0) }
        if targets.isEmpty { return self }
        let open = targets.filter { !$0.excepts(group: id) }
        if open.isEmpty { return nil }
        var kept = self
        // A child is kept when it applies below one of the statements it lands on.
        kept.children = children.compactMap { child in open.lazy.compactMap { child.applied(to: $0.children, group: id) }.first }
        return kept
    }

    /// Whether this group statement merges into `target`: the same keyword and name, where a
    /// group's `<pattern>` keyword (text) or name (XML) matches by wildcard.
    func lands(on target: ConfigStatement) -> Bool {
        func same(_ pattern: String?, _ name: String?) -> Bool {
            guard let pattern, let name else { return pattern == nil && name == nil }
            let unquoted = pattern.trimmingQuotes
            if unquoted.hasPrefix("<") && unquoted.hasSuffix(">") {
                return Wildcard.matches(Array(unquoted.dropFirst().dropLast()), Array(name.trimmingQuotes))
            }
            return pattern == name
        }
        return same(keyword, target.keyword) && same(identifier, target.identifier)
    }

    /// Whether this statement says `apply-groups-except` for the group `id`.
    func excepts(group id: String) -> Bool {
        children.contains { child in
            child.keyword == "apply-groups-except"
                && ConfigurationTree.groupNames(in: child).contains { ConfigurationTree.applies($0, toGroup: id) }
        }
    }

    /// Statements at a slash-separated keyword path below this one; `*` matches any one keyword.
    public func statements(at path: String) -> [ConfigStatement] {
        var nodes = [self]
        for component in path.split(separator: "/") {
            let c = String(component)
            nodes = nodes.flatMap { node in node.children.filter { c == "*" || $0.keyword == c } }
            if nodes.isEmpty { return [] }
        }
        return nodes
    }

    /// The first value (or identifier) found at `path`.
    public func value(at path: String) -> String? {
        statements(at: path).lazy.compactMap { $0.value ?? $0.identifier }.first
    }
}

/// Junos group wildcards (`<ge-*>`, `<xe-0/0/[0-3]>`): `*` any run, `?` any one character,
/// `[…]` one of a set (`a-z` ranges, `!` or `^` first to negate).
enum Wildcard {
    static func matches(_ pattern: [Character], _ name: [Character]) -> Bool {
        matches(pattern[...], name[...])
    }

    private static func matches(_ pattern: ArraySlice<Character>, _ name: ArraySlice<Character>) -> Bool {
        guard let p = pattern.first else { return name.isEmpty }
        switch p {
        case "*":
            var rest = name
            while true {
                if matches(pattern.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        case "?":
            return !name.isEmpty && matches(pattern.dropFirst(), name.dropFirst())
        case "[":
            guard let c = name.first, let close = pattern.dropFirst(2).firstIndex(of: "]") else { break }
            var set = pattern[(pattern.startIndex + 1)..<close]
            let negated = set.first == "!" || set.first == "^"
            if negated { set = set.dropFirst() }
            var found = false
            var i = set.startIndex
            while i < set.endIndex {
                if i + 2 < set.endIndex, set[i + 1] == "-" {
                    if set[i] <= c && c <= set[i + 2] { found = true }
                    i += 3
                } else {
                    if set[i] == c { found = true }
                    i += 1
                }
            }
            return found != negated && matches(pattern[(close + 1)...], name.dropFirst())
        default:
            break
        }
        return name.first == p && matches(pattern.dropFirst(), name.dropFirst())
    }
}

extension String {
    var trimmingQuotes: String {
        if count >= 2, hasPrefix("\""), hasSuffix("\"") { return String(dropFirst().dropLast()) }
        return self
    }
}

// MARK: - Curly-brace text

/// A token of curly-brace configuration text or `set` commands, with where it is.
struct ConfigurationTextToken: Equatable {
    enum Kind: Equatable { case word, open, close, semicolon }
    var kind: Kind
    /// The token as written; a quoted word keeps its quotes and backslashes.
    var text: String
    /// Where the token is, in unicode scalars of the text (a quoted word's quotes included).
    var range: Range<Int>
    /// Column of the token when it is the first on its line, else nil.
    var lineIndent: Int?

    var isQuoted: Bool { kind == .word && text.hasPrefix("\"") }

    /// A word as Junos reads it: quotes removed, backslash escapes resolved.
    var unquoted: String {
        guard isQuoted else { return text }
        var out = String.UnicodeScalarView()
        var escaped = false
        for c in text.unicodeScalars.dropFirst().dropLast() {
            if c == "\\" && !escaped { escaped = true; continue }
            escaped = false
            out.append(c)
        }
        return String(out)
    }
}

/// Splits configuration text into tokens, one at a time, for both the statement parser and the
/// redactor, so that both see the same statements. Skipped: `/* … */` where a statement may start
/// (Junos prints annotations on a line of their own), and `#` to the end of the line at the start
/// of a line, or as `##` then a blank after a blank (Junos writes `## SECRET-DATA` after secret
/// leaves). Anywhere else `/*` and `#` are part of a value (`community ##x`, `community /*x`), and
/// so is a `#` inside a word or a quoted string. `[` and `]` starting a token are words of their
/// own (list brackets).
struct ConfigurationTextTokenizer: IteratorProtocol {
    private let chars: [Unicode.Scalar]
    private var i = 0
    private var atLineStart = true
    private var column = 0
    /// Whether the last token ended a statement or opened a block (or there was none yet).
    private var atStatementStart = true

    init(_ scalars: [Unicode.Scalar]) { chars = scalars }

    static func tokens(_ text: String) -> [ConfigurationTextToken] {
        var tokenizer = ConfigurationTextTokenizer(Array(text.unicodeScalars))
        var result: [ConfigurationTextToken] = []
        while let token = tokenizer.next() { result.append(token) }
        return result
    }

    private static func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\r" }

    mutating func next() -> ConfigurationTextToken? {
        while i < chars.count {
            let c = chars[i]
            if c == "\n" { atLineStart = true; column = 0; i += 1; continue }
            if Self.isBlank(c) { column += 1; i += 1; continue }
            let indent = atLineStart ? column : nil
            atLineStart = false
            // After a keyword `/*` is a value: a comment there would hide it (`community /*x;`).
            if c == "/" && i + 1 < chars.count && chars[i + 1] == "*" && (indent != nil || atStatementStart) {
                i += 2
                while i + 1 < chars.count && !(chars[i] == "*" && chars[i + 1] == "/") { i += 1 }
                i = min(i + 2, chars.count)
                continue
            }
            // `#` at a line start, or `##` then a blank or the line end after a blank (Junos's
            // `## SECRET-DATA`): `#abc` and `##abc` after a blank are values, such as communities.
            if c == "#" && (indent != nil || (i > 0 && Self.isBlank(chars[i - 1]) && i + 1 < chars.count && chars[i + 1] == "#"
                                               && (i + 2 == chars.count || Self.isBlank(chars[i + 2]) || chars[i + 2] == "\n"))) {
                while i < chars.count && chars[i] != "\n" { i += 1 }
                continue
            }
            let start = i
            func token(_ kind: ConfigurationTextToken.Kind, _ text: String) -> ConfigurationTextToken {
                atStatementStart = kind != .word
                return ConfigurationTextToken(kind: kind, text: text, range: start..<i, lineIndent: indent)
            }
            switch c {
            case "{": i += 1; return token(.open, "{")
            case "}": i += 1; return token(.close, "}")
            case ";": i += 1; return token(.semicolon, ";")
            case "[", "]": i += 1; return token(.word, String(c))
            case "\"":
                var word = "\""
                i += 1
                while i < chars.count && chars[i] != "\"" {
                    if chars[i] == "\\" && i + 1 < chars.count { word.unicodeScalars.append(chars[i]); i += 1 }
                    word.unicodeScalars.append(chars[i])
                    i += 1
                }
                word += "\""
                i = min(i + 1, chars.count)
                return token(.word, word)
            default:
                var word = ""
                while i < chars.count {
                    let d = chars[i]
                    if Self.isBlank(d) || d == "\n" || d == "{" || d == "}" || d == ";" || d == "\"" { break }
                    word.unicodeScalars.append(d)
                    i += 1
                }
                return token(.word, word)
            }
        }
        return nil
    }
}

/// Curly-brace text nested deeper than the limit (``ConfigurationTree/init(checkingText:)``).
public struct ConfigurationTextDepthError: Error, Sendable, Equatable, CustomStringConvertible {
    public let limit: Int
    /// Offset (in unicode scalars) of the first `{` past the limit.
    public let offset: Int
    public var description: String {
        "configuration text nested deeper than \(limit) blocks (at character \(offset)) is refused: no real configuration comes near that depth"
    }
}

struct ConfigurationTextParser {
    /// Deepest block nesting read. `parseBlock` recurses once per open block, so this bounds
    /// the recursion; the limit is the XML parser's, so text and XML agree.
    static let maximumDepth = XMLLimits.maximumDepth
    var tokens: [ConfigurationTextToken]
    var position = 0
    /// Indentation of the statement line of each open block, innermost last.
    var openIndents: [Int] = []
    /// Where the first block past ``maximumDepth`` opened, if one did.
    var tooDeepAtOffset: Int?

    init(tokens: [ConfigurationTextToken]) { self.tokens = tokens }

    /// Reads statements until the `}` that closes the block opened at `indent`.
    mutating func parseBlock(indent: Int, isTop: Bool) -> [ConfigStatement] {
        var statements: [ConfigStatement] = []
        var words: [String] = []
        var wordsIndent: Int?
        while position < tokens.count {
            let token = tokens[position]
            position += 1
            switch token.kind {
            case .word:
                if words.isEmpty { wordsIndent = token.lineIndent }
                words.append(token.text)
            case .semicolon:
                if let s = Self.statement(words, children: nil) { statements.append(s) }
                words = []
            case .open:
                if openIndents.count >= Self.maximumDepth {
                    // Skip the block whole, iteratively: nothing past the limit is read.
                    if tooDeepAtOffset == nil { tooDeepAtOffset = token.range.lowerBound }
                    var open = 1
                    while position < tokens.count, open > 0 {
                        if tokens[position].kind == .open { open += 1 } else if tokens[position].kind == .close { open -= 1 }
                        position += 1
                    }
                    words = []
                    continue
                }
                let blockIndent = wordsIndent ?? token.lineIndent ?? (indent + 4)
                openIndents.append(blockIndent)
                let children = parseBlock(indent: blockIndent, isTop: false)
                if let s = Self.statement(words, children: children) { statements.append(s) }
                words = []
            case .close:
                if !words.isEmpty, let s = Self.statement(words, children: nil) { statements.append(s) }
                words = []
                if isTop { continue } // a stray brace at the top: nothing to close
                if let braceIndent = token.lineIndent, braceIndent != indent,
                   !openIndents.contains(braceIndent), braceIndent > indent {
                    continue // deeper than the open block and matching none: stray, ignore
                }
                openIndents.removeLast()
                return statements
            }
        }
        if !words.isEmpty, let s = Self.statement(words, children: nil) { statements.append(s) }
        if !isTop, !openIndents.isEmpty { openIndents.removeLast() }
        return statements
    }

    /// Builds a statement from its words; nil for `inactive:` statements and empty word lists.
    /// Words that mark the statement they start rather than being part of it.
    static let statementPrefixes: Set<String> = ["inactive:", "protect:", "replace:"]

    static func statement(_ words: [String], children: [ConfigStatement]?) -> ConfigStatement? {
        var words = words
        while let first = words.first, statementPrefixes.contains(first) {
            if first == "inactive:" { return nil }
            words.removeFirst()
        }
        guard let keyword = words.first else { return nil }
        let rest = words.dropFirst().filter { $0 != "[" && $0 != "]" }.map(\.trimmingQuotes)
        let argument = rest.isEmpty ? nil : rest.joined(separator: " ")
        // `family inet6 { … }` is `<family><inet6>…` in XML: split it so that paths agree.
        if keyword == "family", let sub = rest.first {
            let inner = ConfigStatement(keyword: sub, identifier: nil,
                                        value: children == nil && rest.count > 1 ? rest.dropFirst().joined(separator: " ") : nil,
                                        children: children ?? [])
            return ConfigStatement(keyword: "family", children: [inner])
        }
        // `from-zone a to-zone b { policy p { … } }` is `<policy><from-zone-name>a</from-zone-name>
        // <to-zone-name>b</to-zone-name><policy><name>p</name>…` in XML: read it that way.
        if keyword == "from-zone", let children, rest.count == 3, rest[1] == "to-zone" {
            return ConfigStatement(keyword: "policy", children: [ConfigStatement(keyword: "from-zone-name", value: rest[0]),
                                                                 ConfigStatement(keyword: "to-zone-name", value: rest[2])] + children)
        }
        if let children {
            return ConfigStatement(keyword: keyword, identifier: argument, children: children)
        }
        return ConfigStatement(keyword: keyword, value: argument)
    }
}
