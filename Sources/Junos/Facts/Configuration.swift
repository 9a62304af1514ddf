import XML

/// What the agent keeps from a configuration (`get-configuration`, XML `<configuration>` or text
/// `<configuration-text>`): identity, the release it was written by, groups, and the
/// ``FeatureProfile``. It holds no secrets: the configuration itself travels (redacted, see
/// ``ConfigurationRedactor``) as raw XML beside the facts.
public struct ConfigurationFacts: JunosFact {
    public static let dataElements = ["configuration", "configuration-text"]

    /// How the configuration was written.
    public enum Format: String, Codable, Sendable { case xml, text }

    public var format: Format
    /// `system/host-name` (top level first, else from an applied group).
    public var hostName: String?
    public var domainName: String?
    /// The `version` statement: the release that last wrote the configuration (`15.1R2.9`).
    public var version: String?
    /// `junos:commit-seconds` / `changed-seconds` of the `<configuration>` element.
    public var commitSeconds: Int?
    /// `junos:commit-user`.
    public var commitUser: String?
    /// Names of all configuration groups defined.
    public var groups: [String]
    /// Names in `apply-groups` anywhere (`${node}` as written).
    public var appliedGroups: [String]
    public var features: FeatureProfile

    public init(format: Format = .xml, hostName: String? = nil, domainName: String? = nil, version: String? = nil,
                commitSeconds: Int? = nil, commitUser: String? = nil, groups: [String] = [], appliedGroups: [String] = [],
                features: FeatureProfile = FeatureProfile()) {
        self.format = format
        self.hostName = hostName
        self.domainName = domainName
        self.version = version
        self.commitSeconds = commitSeconds
        self.commitUser = commitUser
        self.groups = groups
        self.appliedGroups = appliedGroups
        self.features = features
    }

    /// Facts of a configuration tree (from XML or text).
    public init(tree: ConfigurationTree, format: Format) {
        var complete = true
        self.init(tree: tree, format: format, complete: &complete)
    }

    /// `complete`: false when applying groups stopped at ``ConfigurationTree/minimumExpansionBudget``
    /// (the facts are then those of the statements merged so far).
    init(tree: ConfigurationTree, format: Format, complete: inout Bool) {
        let applied = tree.appliedGroupNames
        let expansion = tree.effectiveExpansion(appliedGroups: applied)
        complete = expansion.complete
        let effective = expansion.statement
        self.init(format: format,
                  hostName: effective.value(at: "system/host-name"),
                  domainName: effective.value(at: "system/domain-name"),
                  version: tree.root.value(at: "version"),
                  groups: tree.groupNames,
                  appliedGroups: applied,
                  features: FeatureProfile(effective: effective, appliedGroups: applied))
    }

    /// Facts of curly-brace configuration text.
    public init(text: String) {
        self.init(tree: ConfigurationTree(text: text), format: .text)
    }

    /// ``parse(_:)``, refusing a configuration past a limit: text nested too deep, or groups
    /// that would expand past ``ConfigurationTree/minimumExpansionBudget``.
    public static func parseChecked(_ reply: JunosReply, rpc: String) throws(JunosParseError) -> Self {
        var complete = true
        let facts: Self
        if let section = reply.sections.first(where: { dataElements.contains($0.element.name) }),
           section.element.name == "configuration-text" {
            let tree: ConfigurationTree
            do { tree = try ConfigurationTree(checkingText: section.element.text) }
            catch { throw .limitExceeded(rpc: rpc, error.description) }
            facts = Self(tree: tree, format: .text, complete: &complete)
        } else {
            facts = parse(reply, complete: &complete)
        }
        guard complete else { throw .limitExceeded(rpc: rpc, ConfigurationTree.expansionLimitMessage) }
        return facts
    }

    /// The facts of a configuration reply; where groups would expand past the limit, those of
    /// the statements merged so far (``parseChecked(_:rpc:)`` refuses such a reply instead).
    public static func parse(_ reply: JunosReply) -> Self {
        var complete = true
        return parse(reply, complete: &complete)
    }

    static func parse(_ reply: JunosReply, complete: inout Bool) -> Self {
        guard let section = reply.sections.first(where: { dataElements.contains($0.element.name) }) else { return Self() }
        let element = section.element
        if element.name == "configuration-text" {
            return Self(tree: ConfigurationTree(text: element.text), format: .text, complete: &complete)
        }
        var facts = Self(xml: element) ?? Self(tree: ConfigurationTree(element: element), format: .xml, complete: &complete)
        facts.commitSeconds = (element.attribute("commit-seconds") ?? element.attribute("changed-seconds"))
            .flatMap { Int($0.trimmed) }
        facts.commitUser = element.attribute("commit-user")?.trimmed
        return facts
    }

    /// Facts read in one walk of the XML into its keyword paths, with applied groups added where
    /// `apply-groups` names them; nil when an applied group itself applies groups or a statement
    /// says `apply-groups-except`, which the statement tree handles.
    init?(xml element: XMLElement) {
        var paths = XMLNamePaths(document: element.document, leavingOut: ("inactive", "inactive"),
                                 transparent: "undocumented", recording: configurationValueKeywords + ["apply-groups"])
        var groups: [XMLElement] = []
        var version: String?
        func readTop(_ parent: XMLElement) {
            parent.forEachChild { child in
                guard child.attribute("inactive") != "inactive" else { return }
                if child.hasName("groups") {
                    groups.append(child)
                } else if child.hasName("undocumented") {
                    readTop(child)
                } else {
                    if version == nil, child.hasName("version"), child.isLeaf { version = child.value?.collapsingWhitespace }
                    paths.add(child)
                }
            }
        }
        readTop(element)
        // Taking paths back out of the trie for `apply-groups-except` would cost more than the
        // statement tree, which handles it.
        guard paths.nodes(named: "apply-groups-except").isEmpty else { return nil }

        // Every `apply-groups`, in document order (as ConfigurationTree.appliedGroupNames lists them).
        let uses = paths.nodes(named: "apply-groups")
            .flatMap { node in paths.elements(at: node).map { (node: node, element: $0) } }
            .sorted { $0.element.precedes($1.element) }
        var applied: [String] = []
        for use in uses {
            applied += ConfigurationTree.groupNames(in: ConfigStatement(keyword: "apply-groups", value: use.element.value?.collapsingWhitespace))
        }
        var seen = Set<String>()
        applied = applied.filter { seen.insert($0).inserted }

        /// The groups a use names, or nil when one of them applies groups itself.
        func groupsApplied(by use: XMLElement) -> [XMLElement]? {
            let names = ConfigurationTree.groupNames(in: ConfigStatement(keyword: "apply-groups", value: use.value?.collapsingWhitespace))
            let found = names.flatMap { ConfigurationTree.groups(named: $0, in: groups) }
            return found.contains { $0.firstDescendant("apply-groups") != nil } ? nil : found
        }
        // Below the top first, then the top: the order in which ConfigurationTree.effective merges
        // (statements, then what the top-level groups add), which decides the first host-name.
        var appliedAt: [XMLNamePaths.Node: Set<String>] = [:]
        for use in uses where paths.depth(of: use.node) > 1 {
            guard let parent = paths.parent(of: use.node), let applying = groupsApplied(by: use.element) else { return nil }
            let path = paths.names(of: parent)
            // A group applied on 10,000 interfaces adds the same paths each time: add them once.
            for group in applying where appliedAt[parent, default: []].insert(group.value("name") ?? "").inserted {
                for match in Self.elements(at: path, in: group) { match.forEachChild { paths.add($0, under: parent) } }
            }
        }
        for use in uses where paths.depth(of: use.node) == 1 {
            guard let applying = groupsApplied(by: use.element) else { return nil }
            for group in applying { group.forEachChild { if !$0.hasName("name") { paths.add($0) } } }
        }
        self.init(format: .xml,
                  hostName: paths.firstValue(at: ["system", "host-name"]),
                  domainName: paths.firstValue(at: ["system", "domain-name"]),
                  version: version,
                  groups: groups.compactMap { $0.value("name")?.collapsingWhitespace },
                  appliedGroups: applied,
                  features: FeatureProfile(paths: paths, appliedGroups: applied))
    }

    /// The active elements at a keyword path below a group (`<undocumented>` unwrapped).
    static func elements(at path: [String], in group: XMLElement) -> [XMLElement] {
        var current = [group]
        for keyword in path {
            var next: [XMLElement] = []
            func collect(_ parent: XMLElement) {
                parent.forEachChild { child in
                    guard child.attribute("inactive") != "inactive" else { return }
                    if child.hasName("undocumented") { collect(child) } else if child.hasName(keyword) { next.append(child) }
                }
            }
            current.forEach(collect)
            current = next
        }
        return current
    }
}
