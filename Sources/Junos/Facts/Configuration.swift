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
        var facts: Self
        let use = ConfigurationTree.groupUse(xml: element)
        if use.onlyTopLevel {
            // Groups, if any, apply at the top: read the shape and the few values the facts need
            // straight from the XML instead of building the statement tree (large configurations
            // are mostly interfaces).
            let valueNames: Set<String> = ["system", "routing-instances", "logical-systems", "protocols"]
            var values = ConfigurationTree.topLevel(element, keeping: valueNames)
            var shape = ConfigurationShape(configuration: element)
            for name in use.applied {
                for group in ConfigurationTree.groups(named: name, in: use.groups) {
                    shape.addGroupContents(group)
                    values.children += ConfigurationTree.topLevel(group, keeping: valueNames).children
                }
            }
            facts = Self(format: .xml,
                         hostName: values.value(at: "system/host-name"),
                         domainName: values.value(at: "system/domain-name"),
                         version: ConfigurationTree.topLevel(element, keeping: ["version"]).value(at: "version"),
                         groups: use.groups.compactMap { $0.value("name")?.collapsingWhitespace },
                         appliedGroups: use.applied,
                         features: FeatureProfile(shape: shape, values: values, appliedGroups: use.applied))
        } else {
            facts = Self(tree: ConfigurationTree(element: element), format: .xml)
        }
        facts.commitSeconds = (element.attribute("commit-seconds") ?? element.attribute("changed-seconds"))
            .flatMap { Int($0.trimmed) }
        facts.commitUser = element.attribute("commit-user")?.trimmed
        return facts
    }
}
