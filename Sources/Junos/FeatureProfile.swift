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
        // Protocols and services can also live in routing instances and logical systems.
        var scopes = [config]
        scopes += config.statements(at: "routing-instances/*")
        let logicalSystems = config.statements(at: "logical-systems/*")
        scopes += logicalSystems
        scopes += logicalSystems.flatMap { $0.statements(at: "routing-instances/*") }

        func any(_ paths: String...) -> Bool {
            scopes.contains { scope in paths.contains { scope.has($0) } }
        }
        func anyValue(_ path: String, _ values: Set<String>) -> Bool {
            scopes.contains { scope in
                scope.statements(at: path).contains { values.contains(($0.value ?? $0.identifier ?? "").lowercased()) }
            }
        }
        // Keywords that count wherever they appear, found in one walk of the whole tree.
        let anywhere = ["bfd-liveness-detection", "vxlan", "vrrp-group", "vrrp-inet6-group", "ieee-802.3ad", "802.3ad", "mc-ae"]
        let keywords = config.keywordsPresent(anywhere)
        func keyword(_ k: String) -> Bool {
            assert(anywhere.contains(k), "add \(k) to the keywords searched for")
            return config.keyword == k || keywords.contains(k)
        }

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

        set(.ethernetSwitching, config.has("interfaces/*/unit/family/ethernet-switching")
            || config.has("interfaces/*/*/unit/family/ethernet-switching") || config.has("vlans/*"))
        set(.ipv6, config.has("interfaces/*/unit/family/inet6"))
        set(.lacp, config.has("interfaces/*/aggregated-ether-options/lacp"))
        set(.aggregatedEthernet, f.contains(.lacp) || config.has("chassis/aggregated-devices/ethernet")
            || config.has("interfaces/*/aggregated-ether-options") || keyword("ieee-802.3ad") || keyword("802.3ad"))
        set(.mcLag, any("protocols/iccp") || keyword("mc-ae") || any("multi-chassis"))
        set(.chassisCluster, config.has("chassis/cluster") || appliedGroups.contains("${node}"))
        set(.virtualChassis, config.has("virtual-chassis"))

        set(.webManagementHTTP, config.has("system/services/web-management/http"))
        set(.webManagementHTTPS, config.has("system/services/web-management/https"))
        set(.telnet, config.has("system/services/telnet"))
        set(.ftp, config.has("system/services/ftp"))
        set(.ssh, config.has("system/services/ssh"))
        set(.netconf, config.has("system/services/netconf"))
        set(.xnmClearText, config.has("system/services/xnm-clear-text"))
        set(.xnmSSL, config.has("system/services/xnm-ssl"))
        set(.restAPI, config.has("system/services/rest"))
        set(.extensionService, config.has("system/services/extension-service"))
        set(.snmp, config.has("snmp/community") || config.has("snmp/v3") || config.has("snmp/trap-group"))
        set(.snmpV3, config.has("snmp/v3"))
        set(.ntp, config.has("system/ntp"))
        set(.dhcpServer, any("system/services/dhcp", "system/services/dhcp-local-server", "system/services/dhcp-server"))
        set(.dhcpRelay, any("forwarding-options/dhcp-relay", "forwarding-options/helpers/bootp"))
        set(.syslogHosts, config.has("system/syslog/host"))
        set(.radius, config.has("system/radius-server") || config.has("access/radius-server"))
        set(.tacacs, config.has("system/tacplus-server"))
        set(.scripts, config.has("system/scripts/commit/file") || config.has("system/scripts/op/file")
            || config.has("event-options/event-script"))

        set(.securityPolicies, any("security/policies/policy", "security/policies/global"))
        set(.securityZones, any("security/zones/security-zone"))
        set(.securityScreen, any("security/screen/ids-option"))
        set(.nat, any("security/nat", "services/nat"))
        set(.ipsec, any("security/ipsec"))
        set(.ike, any("security/ike"))
        set(.idp, any("security/idp"))
        set(.utm, any("security/utm"))

        set(.routingInstances, config.has("routing-instances/*"))
        set(.vrf, anyValue("instance-type", ["vrf"]))
        set(.virtualRouter, anyValue("instance-type", ["virtual-router"]))
        set(.virtualSwitch, anyValue("instance-type", ["virtual-switch"]))
        set(.logicalSystems, config.has("logical-systems/*"))
        set(.firewallFilters, any("firewall/filter", "firewall/family/*/filter"))
        set(.flowMonitoring, config.has("forwarding-options/sampling") || config.has("services/flow-monitoring"))
        features = f
    }
}
