/// A feature a configuration turns on. The raw values are stable: security advisories are matched
/// against them ("when BGP is configured" → `bgp`, "if J-Web is enabled" → `web-management-http`
/// or `web-management-https`). Add cases; never rename one.
public enum ConfiguredFeature: String, Codable, Sendable, CaseIterable, Comparable {
    // Routing protocols.
    case bgp, ospf, ospf3, isis, rip, ripng, mpls, ldp, rsvp, bfd, lldp
    case evpn, vxlan, vrrp
    case pim, igmp, igmpSnooping = "igmp-snooping", mld, msdp, multicast
    // Layer 2 and redundancy.
    case ethernetSwitching = "ethernet-switching", dot1x
    case aggregatedEthernet = "aggregated-ethernet", lacp, mcLag = "mc-lag"
    case chassisCluster = "chassis-cluster", virtualChassis = "virtual-chassis"
    // Management services.
    case webManagementHTTP = "web-management-http", webManagementHTTPS = "web-management-https"
    case telnet, ftp, ssh, netconf, xnmClearText = "xnm-clear-text", xnmSSL = "xnm-ssl"
    case restAPI = "rest-api", extensionService = "extension-service"
    case snmp, snmpV3 = "snmp-v3", ntp, dhcpServer = "dhcp-server", dhcpRelay = "dhcp-relay"
    case syslogHosts = "syslog-hosts", radius, tacacs, scripts
    // Security (SRX).
    case securityPolicies = "security-policies", securityZones = "security-zones", securityScreen = "security-screen"
    case nat, ipsec, ike, idp, utm
    // Instances, filters, traffic monitoring.
    case routingInstances = "routing-instances", vrf, virtualRouter = "virtual-router", virtualSwitch = "virtual-switch"
    case vpls, l2circuit, logicalSystems = "logical-systems"
    case firewallFilters = "firewall-filters", flowMonitoring = "flow-monitoring", sflow, ipv6

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// The set of features a configuration has, derived from its active statements (inactive ones
/// ignored, applied groups included, unapplied groups not). Encoded as a sorted array of raw values.
public struct FeatureProfile: Codable, Sendable, Equatable {
    public var features: Set<ConfiguredFeature>

    public init(_ features: Set<ConfiguredFeature> = []) { self.features = features }

    public func contains(_ feature: ConfiguredFeature) -> Bool { features.contains(feature) }

    /// Raw values, sorted.
    public var names: [String] { features.sorted().map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode([String].self)
        // Unknown names from a newer agent are skipped rather than failing the whole decode.
        features = Set(raw.compactMap(ConfiguredFeature.init(rawValue:)))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(names)
    }

    /// Derives the profile of a configuration tree.
    public init(tree: ConfigurationTree) {
        let applied = tree.appliedGroupNames
        self.init(effective: tree.effective(appliedGroups: applied), appliedGroups: applied)
    }

    /// The profile of an already group-expanded configuration (see ``ConfigurationTree/effective``).
    public init(effective config: ConfigStatement, appliedGroups: [String]) {
        self.init(paths: StatementPaths(config), appliedGroups: appliedGroups)
    }

    /// The profile from a configuration's keyword paths: every rule of ``FeatureRule/all`` is
    /// asked of the paths once, none walks the configuration.
    init<Paths: ConfigurationPaths>(paths: Paths, appliedGroups: [String]) {
        // Protocols and services can also live in routing instances and logical systems.
        var scopes = [paths.root]
        for path in FeatureRule.scopePaths { scopes += paths.nodes(at: path[...], from: paths.root) }

        var f = Set<ConfiguredFeature>()
        // Plain loops: each rule is asked once, and stops at its first match.
        rules: for rule in FeatureRule.all {
            for implying in rule.impliedBy where f.contains(implying) { f.insert(rule.feature); continue rules }
            for path in rule.paths where paths.reaches(path[...], from: paths.root) { f.insert(rule.feature); continue rules }
            for path in rule.scopedPaths {
                for scope in scopes where paths.reaches(path[...], from: scope) { f.insert(rule.feature); continue rules }
            }
            for keyword in rule.keywords where paths.containsKeyword(keyword) { f.insert(rule.feature); continue rules }
            for (path, accepted) in rule.scopedValues {
                for scope in scopes {
                    for node in paths.nodes(at: path[...], from: scope) {
                        for value in paths.values(at: node) where accepted.contains(value.lowercased()) {
                            f.insert(rule.feature)
                            continue rules
                        }
                    }
                }
            }
        }
        // Chassis-cluster configurations apply their per-node groups with `${node}`.
        if appliedGroups.contains("${node}") { f.insert(.chassisCluster) }
        features = f
    }
}

/// How one feature shows in a configuration: any one of its conditions is enough.
struct FeatureRule: Sendable {
    var feature: ConfiguredFeature
    /// Paths from the top level (`*` matches any one keyword).
    var paths: [[String]]
    /// Paths from the top and from every routing instance and logical system.
    var scopedPaths: [[String]]
    /// Keywords anywhere in the configuration.
    var keywords: [String]
    /// A leaf at a scoped path with one of these values (lowercase). Only leaves named in
    /// ``configurationValueKeywords`` have their values kept.
    var scopedValues: [(path: [String], values: Set<String>)]
    /// Features that imply this one; they come earlier in ``all``.
    var impliedBy: [ConfiguredFeature]

    init(_ feature: ConfiguredFeature, top: [String] = [], scoped: [String] = [], keywords: [String] = [],
         values: [(String, Set<String>)] = [], impliedBy: [ConfiguredFeature] = []) {
        func split(_ path: String) -> [String] { path.split(separator: "/").map(String.init) }
        self.feature = feature
        paths = top.map(split)
        scopedPaths = scoped.map(split)
        self.keywords = keywords
        scopedValues = values.map { (split($0.0), $0.1) }
        self.impliedBy = impliedBy
    }

    /// Where protocols and services can be configured besides the top level. A logical system is
    /// `<logical-systems><name>LS1</name><protocols>…` (text is split the same way), a routing
    /// instance `<routing-instances><instance><name>…` (text: `routing-instances { R1 { … } }`).
    static let scopePaths: [[String]] = ["routing-instances/*", "logical-systems", "logical-systems/routing-instances/*"]
        .map { $0.split(separator: "/").map(String.init) }

    /// Every rule, in an order where implied features come after those implying them.
    static let all: [FeatureRule] = {
        var rules: [FeatureRule] = []
        let protocols: [(ConfiguredFeature, String)] = [
            (.bgp, "bgp"), (.ospf, "ospf"), (.ospf3, "ospf3"), (.isis, "isis"), (.rip, "rip"), (.ripng, "ripng"),
            (.mpls, "mpls"), (.ldp, "ldp"), (.rsvp, "rsvp"), (.lldp, "lldp"), (.pim, "pim"), (.igmp, "igmp"),
            (.igmpSnooping, "igmp-snooping"), (.mld, "mld"), (.msdp, "msdp"), (.dot1x, "dot1x"),
            (.l2circuit, "l2circuit"), (.sflow, "sflow"),
        ]
        for (feature, name) in protocols { rules.append(FeatureRule(feature, scoped: ["protocols/\(name)"])) }
        let services: [(ConfiguredFeature, String)] = [
            (.webManagementHTTP, "web-management/http"), (.webManagementHTTPS, "web-management/https"),
            (.telnet, "telnet"), (.ftp, "ftp"), (.ssh, "ssh"), (.netconf, "netconf"),
            (.xnmClearText, "xnm-clear-text"), (.xnmSSL, "xnm-ssl"), (.restAPI, "rest"),
            (.extensionService, "extension-service"),
        ]
        for (feature, name) in services { rules.append(FeatureRule(feature, top: ["system/services/\(name)"])) }
        let instanceTypes: [(ConfiguredFeature, String)] = [
            (.vrf, "vrf"), (.virtualRouter, "virtual-router"), (.virtualSwitch, "virtual-switch"),
        ]
        for (feature, type) in instanceTypes { rules.append(FeatureRule(feature, values: [("instance-type", [type])])) }
        rules += [
            FeatureRule(.bfd, keywords: ["bfd-liveness-detection"]),
            FeatureRule(.evpn, scoped: ["protocols/evpn"], values: [("instance-type", ["evpn", "mac-vrf"])]),
            FeatureRule(.vxlan, scoped: ["switch-options/vtep-source-interface"], keywords: ["vxlan"],
                        values: [("protocols/evpn/encapsulation", ["vxlan"])]),
            FeatureRule(.vrrp, keywords: ["vrrp-group", "vrrp-inet6-group"]),
            FeatureRule(.multicast, scoped: ["routing-options/multicast"], impliedBy: [.pim, .igmp, .mld, .msdp, .igmpSnooping]),
            FeatureRule(.vpls, scoped: ["protocols/vpls"], values: [("instance-type", ["vpls"])]),
            FeatureRule(.ethernetSwitching, top: ["interfaces/*/unit/family/ethernet-switching",
                                                  "interfaces/*/*/unit/family/ethernet-switching", "vlans/*"]),
            FeatureRule(.ipv6, top: ["interfaces/*/unit/family/inet6"]),
            FeatureRule(.lacp, top: ["interfaces/*/aggregated-ether-options/lacp"]),
            FeatureRule(.aggregatedEthernet, top: ["chassis/aggregated-devices/ethernet", "interfaces/*/aggregated-ether-options"],
                        keywords: ["ieee-802.3ad", "802.3ad"], impliedBy: [.lacp]),
            FeatureRule(.mcLag, scoped: ["protocols/iccp", "multi-chassis"], keywords: ["mc-ae"]),
            FeatureRule(.chassisCluster, top: ["chassis/cluster"]),
            FeatureRule(.virtualChassis, top: ["virtual-chassis"]),
            FeatureRule(.snmp, top: ["snmp/community", "snmp/v3", "snmp/trap-group"]),
            FeatureRule(.snmpV3, top: ["snmp/v3"]),
            FeatureRule(.ntp, top: ["system/ntp"]),
            FeatureRule(.dhcpServer, scoped: ["system/services/dhcp", "system/services/dhcp-local-server", "system/services/dhcp-server"]),
            FeatureRule(.dhcpRelay, scoped: ["forwarding-options/dhcp-relay", "forwarding-options/helpers/bootp"]),
            FeatureRule(.syslogHosts, top: ["system/syslog/host"]),
            FeatureRule(.radius, top: ["system/radius-server", "access/radius-server"]),
            FeatureRule(.tacacs, top: ["system/tacplus-server"]),
            FeatureRule(.scripts, top: ["system/scripts/commit/file", "system/scripts/op/file", "event-options/event-script"]),
            FeatureRule(.securityPolicies, scoped: ["security/policies/policy", "security/policies/global"]),
            FeatureRule(.securityZones, scoped: ["security/zones/security-zone"]),
            FeatureRule(.securityScreen, scoped: ["security/screen/ids-option"]),
            FeatureRule(.nat, scoped: ["security/nat", "services/nat"]),
            FeatureRule(.ipsec, scoped: ["security/ipsec"]),
            FeatureRule(.ike, scoped: ["security/ike"]),
            FeatureRule(.idp, scoped: ["security/idp"]),
            FeatureRule(.utm, scoped: ["security/utm"]),
            FeatureRule(.routingInstances, top: ["routing-instances/*"]),
            FeatureRule(.logicalSystems, top: ["logical-systems"]),
            FeatureRule(.firewallFilters, scoped: ["firewall/filter", "firewall/family/*/filter"]),
            FeatureRule(.flowMonitoring, top: ["forwarding-options/sampling", "services/flow-monitoring"]),
        ]
        return rules
    }()
}
