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
        // One walk builds the configuration's shape; every "is X configured" question below is
        // then answered from it without walking a large configuration again.
        self.init(shape: ConfigurationShape(config), values: config, appliedGroups: appliedGroups)
    }

    /// The profile from a configuration's shape, and statements holding at least the
    /// `routing-instances`, `logical-systems` and `protocols` whose values some features need.
    init(shape: ConfigurationShape, values config: ConfigStatement, appliedGroups: [String]) {
        // Protocols and services can also live in routing instances and logical systems.
        let shapeScopes = shape.scopes(at: ["", "routing-instances/*", "logical-systems/*", "logical-systems/*/routing-instances/*"])
        var scopes = [config]
        scopes += config.statements(at: "routing-instances/*")
        let logicalSystems = config.statements(at: "logical-systems/*")
        scopes += logicalSystems
        scopes += logicalSystems.flatMap { $0.statements(at: "routing-instances/*") }

        func any(_ paths: String...) -> Bool {
            paths.contains { path in shapeScopes.contains { shape.has(path, in: $0) } }
        }
        func anyValue(_ path: String, _ values: Set<String>) -> Bool {
            scopes.contains { scope in
                scope.statements(at: path).contains { values.contains(($0.value ?? $0.identifier ?? "").lowercased()) }
            }
        }
        func keyword(_ k: String) -> Bool { config.keyword == k || shape.keywords.contains(k) }

        var f = Set<ConfiguredFeature>()
        func set(_ feature: ConfiguredFeature, _ on: Bool) { if on { f.insert(feature) } }

        for (feature, name) in [(ConfiguredFeature.bgp, "bgp"), (.ospf, "ospf"), (.ospf3, "ospf3"), (.isis, "isis"),
                                (.rip, "rip"), (.ripng, "ripng"), (.mpls, "mpls"), (.ldp, "ldp"), (.rsvp, "rsvp"),
                                (.lldp, "lldp"), (.pim, "pim"), (.igmp, "igmp"), (.igmpSnooping, "igmp-snooping"),
                                (.mld, "mld"), (.msdp, "msdp"), (.dot1x, "dot1x"), (.l2circuit, "l2circuit"),
                                (.sflow, "sflow")] {
            set(feature, any("protocols/\(name)"))
        }
        set(.bfd, keyword("bfd-liveness-detection"))
        set(.evpn, any("protocols/evpn") || anyValue("instance-type", ["evpn", "mac-vrf"]))
        set(.vxlan, keyword("vxlan") || any("switch-options/vtep-source-interface")
            || anyValue("protocols/evpn/encapsulation", ["vxlan"]))
        set(.vrrp, keyword("vrrp-group") || keyword("vrrp-inet6-group"))
        set(.multicast, f.contains(.pim) || f.contains(.igmp) || f.contains(.mld) || f.contains(.msdp)
            || f.contains(.igmpSnooping) || any("routing-options/multicast"))
        set(.vpls, any("protocols/vpls") || anyValue("instance-type", ["vpls"]))

        set(.ethernetSwitching, shape.has("interfaces/*/unit/family/ethernet-switching")
            || shape.has("interfaces/*/*/unit/family/ethernet-switching") || shape.has("vlans/*"))
        set(.ipv6, shape.has("interfaces/*/unit/family/inet6"))
        set(.lacp, shape.has("interfaces/*/aggregated-ether-options/lacp"))
        set(.aggregatedEthernet, f.contains(.lacp) || shape.has("chassis/aggregated-devices/ethernet")
            || shape.has("interfaces/*/aggregated-ether-options") || keyword("ieee-802.3ad") || keyword("802.3ad"))
        set(.mcLag, any("protocols/iccp") || keyword("mc-ae") || any("multi-chassis"))
        set(.chassisCluster, shape.has("chassis/cluster") || appliedGroups.contains("${node}"))
        set(.virtualChassis, shape.has("virtual-chassis"))

        set(.webManagementHTTP, shape.has("system/services/web-management/http"))
        set(.webManagementHTTPS, shape.has("system/services/web-management/https"))
        set(.telnet, shape.has("system/services/telnet"))
        set(.ftp, shape.has("system/services/ftp"))
        set(.ssh, shape.has("system/services/ssh"))
        set(.netconf, shape.has("system/services/netconf"))
        set(.xnmClearText, shape.has("system/services/xnm-clear-text"))
        set(.xnmSSL, shape.has("system/services/xnm-ssl"))
        set(.restAPI, shape.has("system/services/rest"))
        set(.extensionService, shape.has("system/services/extension-service"))
        set(.snmp, shape.has("snmp/community") || shape.has("snmp/v3") || shape.has("snmp/trap-group"))
        set(.snmpV3, shape.has("snmp/v3"))
        set(.ntp, shape.has("system/ntp"))
        set(.dhcpServer, any("system/services/dhcp", "system/services/dhcp-local-server", "system/services/dhcp-server"))
        set(.dhcpRelay, any("forwarding-options/dhcp-relay", "forwarding-options/helpers/bootp"))
        set(.syslogHosts, shape.has("system/syslog/host"))
        set(.radius, shape.has("system/radius-server") || shape.has("access/radius-server"))
        set(.tacacs, shape.has("system/tacplus-server"))
        set(.scripts, shape.has("system/scripts/commit/file") || shape.has("system/scripts/op/file")
            || shape.has("event-options/event-script"))

        set(.securityPolicies, any("security/policies/policy", "security/policies/global"))
        set(.securityZones, any("security/zones/security-zone"))
        set(.securityScreen, any("security/screen/ids-option"))
        set(.nat, any("security/nat", "services/nat"))
        set(.ipsec, any("security/ipsec"))
        set(.ike, any("security/ike"))
        set(.idp, any("security/idp"))
        set(.utm, any("security/utm"))

        set(.routingInstances, shape.has("routing-instances/*"))
        set(.vrf, anyValue("instance-type", ["vrf"]))
        set(.virtualRouter, anyValue("instance-type", ["virtual-router"]))
        set(.virtualSwitch, anyValue("instance-type", ["virtual-switch"]))
        set(.logicalSystems, shape.has("logical-systems/*"))
        set(.firewallFilters, any("firewall/filter", "firewall/family/*/filter"))
        set(.flowMonitoring, shape.has("forwarding-options/sampling") || shape.has("services/flow-monitoring"))
        features = f
    }
}
