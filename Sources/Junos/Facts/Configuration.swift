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
        let applied = tree.appliedGroupNames
        let effective = tree.effective(appliedGroups: applied)
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

    public static func parse(_ reply: JunosReply) -> Self {
        guard let section = reply.sections.first(where: { dataElements.contains($0.element.name) }) else { return Self() }
        let element = section.element
        if element.name == "configuration-text" {
            return Self(text: element.text)
        }
        var facts = Self(xml: element) ?? Self(tree: ConfigurationTree(element: element), format: .xml)
        facts.commitSeconds = (element.attribute("commit-seconds") ?? element.attribute("changed-seconds"))
            .flatMap { Int($0.trimmed) }
        facts.commitUser = element.attribute("commit-user")?.trimmed
        return facts
    }

    /// Facts read in one walk of the XML into its keyword paths, when groups apply only at the top
    /// (applying them is then adding their contents at the top); nil when a group is applied
    /// below the top level or applies other groups, which takes the statement tree.
    init?(xml element: XMLElement) {
        var paths = XMLNamePaths(document: element.document, leavingOut: ("inactive", "inactive"),
                                 transparent: "undocumented", recordingValuesOf: configurationValueKeywords)
        var groups: [XMLElement] = []
        var applied: [String] = []
        var version: String?
        func readTop(_ parent: XMLElement) {
            parent.forEachChild { child in
                guard child.attribute("inactive") != "inactive" else { return }
                if child.hasName("groups") {
                    groups.append(child)
                } else if child.hasName("undocumented") {
                    readTop(child)
                } else {
                    if child.hasName("apply-groups"), let value = child.value?.collapsingWhitespace {
                        applied += ConfigurationTree.groupNames(in: ConfigStatement(keyword: "apply-groups", value: value))
                    } else if version == nil, child.hasName("version"), child.isLeaf {
                        version = child.value?.collapsingWhitespace
                    }
                    paths.add(child)
                }
            }
        }
        readTop(element)
        // `apply-groups` below the top level: applying it means merging at that level.
        if paths.nodes(named: "apply-groups").contains(where: { paths.depth(of: $0) > 1 }) { return nil }
        var seen = Set<String>()
        applied = applied.filter { seen.insert($0).inserted }
        for name in applied {
            for group in ConfigurationTree.groups(named: name, in: groups) {
                if group.firstDescendant("apply-groups") != nil { return nil }
                group.forEachChild { if !$0.hasName("name") { paths.add($0) } }
            }
        }
        self.init(format: .xml,
                  hostName: paths.firstValue(at: ["system", "host-name"])?.collapsingWhitespace,
                  domainName: paths.firstValue(at: ["system", "domain-name"])?.collapsingWhitespace,
                  version: version,
                  groups: groups.compactMap { $0.value("name")?.collapsingWhitespace },
                  appliedGroups: applied,
                  features: FeatureProfile(paths: paths, appliedGroups: applied))
    }
}
