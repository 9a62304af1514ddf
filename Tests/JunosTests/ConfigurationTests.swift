import Foundation
import Junos
import Testing
import TestSupport
import XML

/// Feature profile semantics: inactive statements, applied and unapplied groups, text format.
@Suite struct ConfigurationTests {
    static func facts(_ xml: String) throws -> ConfigurationFacts {
        try ConfigurationFacts.parse(bytes: Array(xml.utf8), rpc: "get-configuration")
    }

    /// The facts of an XML configuration as parsed, checked against the statement tree's.
    static func factsAgreeing(_ xml: String) throws -> ConfigurationFacts {
        let parsed = try facts(xml)
        let element = try #require(try JunosReply(bytes: Array(xml.utf8)).sections.first?.element)
        var tree = ConfigurationFacts(tree: ConfigurationTree(element: element), format: .xml)
        tree.commitSeconds = parsed.commitSeconds
        tree.commitUser = parsed.commitUser
        #expect(parsed == tree, "the fast path and the statement tree disagree")
        return parsed
    }

    /// A group that applies itself at every level of a 30-deep stanza, twice over (a few
    /// kilobytes): applying it naively grows by ~3x per level (millions of statements at depth
    /// 12). It is refused at the expansion limit, quickly, naming the limit; the report side's
    /// non-throwing read stops at the limit too; a group named twice at one level is merged once.
    @Test func groupsThatExpandExponentiallyAreRefusedAtTheLimit() throws {
        let depth = 30
        let nested = String(repeating: "<a><apply-groups>G G</apply-groups>", count: depth) + "<b/>" + String(repeating: "</a>", count: depth)
        let xml = "<rpc-reply><configuration><groups><name>G</name>\(nested)</groups><apply-groups>G G</apply-groups>\(nested)</configuration></rpc-reply>"
        let started = ContinuousClock.now
        #expect(throws: JunosParseError.limitExceeded(rpc: "get-configuration", ConfigurationTree.expansionLimitMessage)) {
            _ = try Self.facts(xml)
        }
        let reply = try JunosReply(bytes: Array(xml.utf8))
        let element = try #require(reply.sections.first?.element)
        let expansion = ConfigurationTree(element: element).effectiveExpansion(appliedGroups: ["G"])
        #expect(!expansion.complete)
        #expect(ContinuousClock.now - started < .seconds(10), "\(ContinuousClock.now - started)")
        // The same as text: refused the same way.
        let text = "groups { G { " + String(repeating: "a { apply-groups [ G G ]; ", count: depth) + "b;" + String(repeating: " }", count: depth)
            + " } } apply-groups [ G G ]; " + String(repeating: "a { apply-groups [ G G ]; ", count: depth) + "b;" + String(repeating: " }", count: depth)
        let textReply = "<rpc-reply><configuration-text>\(text)</configuration-text></rpc-reply>"
        #expect(throws: JunosParseError.limitExceeded(rpc: "get-configuration", ConfigurationTree.expansionLimitMessage)) {
            _ = try Self.facts(textReply)
        }
        // A group named twice at one level is merged once.
        let twice = try Self.facts("""
        <configuration><groups><name>B</name><protocols><bgp><group><name>x</name></group></bgp></protocols></groups>
          <apply-groups>B B</apply-groups><apply-groups>B</apply-groups></configuration>
        """)
        #expect(twice.features.names.contains("bgp"))
        let tree = ConfigurationTree(element: try #require(try JunosReply(bytes: Array("""
        <configuration><groups><name>B</name><protocols><bgp><group><name>x</name></group></bgp></protocols></groups>
          <apply-groups>B B</apply-groups><apply-groups>B</apply-groups></configuration>
        """.utf8)).sections.first?.element))
        #expect(tree.effective.children("protocols").count == 1)
    }

    @Test func inactiveStanzasDoNotCount() throws {
        let c = try Self.facts("""
        <rpc-reply><configuration>
          <protocols><bgp inactive="inactive"><group><name>g</name></group></bgp><ospf><area><name>0</name></area></ospf></protocols>
          <system><services><telnet junos:inactive="inactive" xmlns:junos="http://xml.juniper.net/junos/*/junos"/><ssh/></services></system>
        </configuration></rpc-reply>
        """)
        #expect(c.features.names == ["ospf", "ssh"])
    }

    @Test func onlyAppliedGroupsCount() throws {
        let c = try Self.facts("""
        <configuration>
          <groups><name>ON</name><protocols><isis><interface><name>lo0.0</name></interface></isis></protocols>
            <system><services><web-management><https><system-generated-certificate/></https></web-management></services></system></groups>
          <groups><name>OFF</name><protocols><bgp><group><name>x</name></group></bgp></protocols></groups>
          <groups><name>IFACES</name><interfaces><interface><name>&lt;ae*&gt;</name>
            <aggregated-ether-options><lacp><active/></lacp></aggregated-ether-options></interface></interfaces></groups>
          <apply-groups>ON</apply-groups>
          <interfaces><interface><name>ae0</name><apply-groups>IFACES</apply-groups></interface></interfaces>
        </configuration>
        """)
        #expect(c.features.contains(.isis))
        #expect(c.features.contains(.webManagementHTTPS))
        #expect(!c.features.contains(.bgp), "group OFF is not applied")
        #expect(c.features.contains(.lacp), "group applied at interfaces/interface level")
        #expect(c.features.contains(.aggregatedEthernet))
        #expect(c.groups == ["ON", "OFF", "IFACES"])
        #expect(c.appliedGroups == ["ON", "IFACES"])
    }

    @Test func groupAppliedInsideAnInactiveStanzaDoesNotCount() throws {
        let c = try Self.facts("""
        <configuration>
          <groups><name>G</name><protocols><mpls><interface><name>all</name></interface></mpls></protocols></groups>
          <protocols inactive="inactive"><apply-groups>G</apply-groups></protocols>
        </configuration>
        """)
        #expect(!c.features.contains(.mpls))
    }

    @Test func instancesSecurityAndSwitchingFeatures() throws {
        let c = try Self.facts("""
        <configuration>
          <chassis><aggregated-devices><ethernet><device-count>4</device-count></ethernet></aggregated-devices></chassis>
          <interfaces>
            <interface><name>ae1</name><aggregated-ether-options><mc-ae><mc-ae-id>1</mc-ae-id></mc-ae></aggregated-ether-options>
              <unit><name>0</name><family><inet6><address><name>2001:db8::1/64</name></address></inet6></family></unit></interface>
            <interface><name>irb</name><unit><name>1</name><family><inet><address><name>10.0.0.1/24</name>
              <vrrp-group><name>1</name><virtual-address>10.0.0.254</virtual-address></vrrp-group></address></inet></family></unit></interface>
          </interfaces>
          <routing-instances>
            <instance><name>CUST</name><instance-type>vrf</instance-type><protocols><bgp><group><name>ce</name>
              <bfd-liveness-detection><minimum-interval>300</minimum-interval></bfd-liveness-detection></group></bgp></protocols></instance>
            <instance><name>VS</name><instance-type>virtual-switch</instance-type><protocols><evpn><encapsulation>vxlan</encapsulation></evpn></protocols></instance>
          </routing-instances>
          <protocols><iccp><local-ip-addr>1.1.1.1</local-ip-addr></iccp><pim><rp><local/></rp></pim></protocols>
          <security><nat><source><rule-set><name>r</name></rule-set></source></nat><ike><proposal><name>p</name></proposal></ike>
            <ipsec><vpn><name>v</name></vpn></ipsec></security>
          <system><tacplus-server><name>10.1.1.1</name><secret>$9$x</secret></tacplus-server>
            <services><dhcp-local-server><group><name>g</name></group></dhcp-local-server></services></system>
          <forwarding-options><dhcp-relay><server-group><name>s</name></server-group></dhcp-relay></forwarding-options>
          <firewall><family><inet><filter><name>PROTECT-RE</name></filter></inet></family></firewall>
          <virtual-chassis><member><name>0</name></member></virtual-chassis>
          <chassis><cluster><reth-count>2</reth-count></cluster></chassis>
        </configuration>
        """)
        let expected: Set<ConfiguredFeature> = [
            .aggregatedEthernet, .mcLag, .ipv6, .vrrp, .routingInstances, .vrf, .virtualSwitch, .bgp, .bfd, .evpn, .vxlan,
            .pim, .multicast, .nat, .ike, .ipsec, .tacacs, .dhcpServer, .dhcpRelay, .firewallFilters, .virtualChassis,
            .chassisCluster,
        ]
        #expect(c.features.features == expected)
    }

    @Test func textFormatGivesTheSameProfileAsXML() {
        let text = """
        ## Last commit: 2024-01-01 by admin
        version 21.4R3.15;
        groups {
            BASE {
                system {
                    services {
                        ssh;
                        web-management {
                            http;
                        }
                    }
                }
            }
            UNUSED {
                protocols { bgp { group x { type internal; } } }
            }
        }
        apply-groups [ BASE ];
        system {
            host-name core1; /* the core */
            syslog { host 10.0.0.9 { any notice; } }
        }
        interfaces {
            ae0 { aggregated-ether-options { lacp { active; } } unit 0 { family inet6; } }
        }
        protocols {
            inactive: ospf { area 0.0.0.0 { interface lo0.0; } }
            ldp { interface all; }
        }
        routing-instances {
            BLUE { instance-type virtual-router; }
        }
        """
        let c = ConfigurationFacts(text: text)
        #expect(c.format == .text)
        #expect(c.hostName == "core1")
        #expect(c.version == "21.4R3.15")
        #expect(c.groups == ["BASE", "UNUSED"])
        #expect(c.appliedGroups == ["BASE"])
        #expect(c.features.names == ["aggregated-ethernet", "ipv6", "lacp", "ldp", "routing-instances", "ssh",
                                     "syslog-hosts", "virtual-router", "web-management-http"])
    }

    /// Each logical system is one `<logical-systems><name>LS1</name>…` in XML and `LS1 { … }`
    /// inside `logical-systems` in text; protocols and instances inside count in both.
    @Test func featuresInsideLogicalSystemsInXMLAndText() throws {
        let xml = try Self.factsAgreeing("""
        <configuration><logical-systems><name>LS1</name>
          <protocols><bgp><group><name>ibgp</name></group></bgp></protocols>
          <routing-instances><instance><name>CUST</name><instance-type>vrf</instance-type>
            <protocols><ospf><area><name>0.0.0.0</name></area></ospf></protocols></instance></routing-instances>
        </logical-systems></configuration>
        """)
        let text = ConfigurationFacts(text: """
        logical-systems {
            LS1 {
                protocols {
                    bgp {
                        group ibgp;
                    }
                }
                routing-instances {
                    CUST {
                        instance-type vrf;
                        protocols {
                            ospf {
                                area 0.0.0.0;
                            }
                        }
                    }
                }
            }
        }
        """)
        let expected: Set<ConfiguredFeature> = [.logicalSystems, .bgp, .vrf, .ospf]
        #expect(xml.features.features == expected)
        #expect(text.features.features == expected)
    }

    /// Text writes zone policies as `from-zone a to-zone b { policy p { … } }`, XML as
    /// `<policy><from-zone-name>a</from-zone-name>…<policy><name>p</name>`.
    @Test func zonePoliciesInXMLAndText() throws {
        let xml = try Self.factsAgreeing("""
        <configuration><security><policies><policy><from-zone-name>trust</from-zone-name><to-zone-name>untrust</to-zone-name>
          <policy><name>allow</name><match><source-address>any</source-address></match><then><permit/></then></policy>
        </policy></policies></security></configuration>
        """)
        let text = ConfigurationFacts(text: """
        security {
            policies {
                from-zone trust to-zone untrust {
                    policy allow {
                        match {
                            source-address any;
                        }
                        then {
                            permit;
                        }
                    }
                }
            }
        }
        """)
        #expect(xml.features.features == [.securityPolicies])
        #expect(text.features.features == [.securityPolicies])
        let tree = ConfigurationTree(text: "security { policies { from-zone trust to-zone untrust { policy allow { then { permit; } } } } }")
        #expect(tree.root.value(at: "security/policies/policy/from-zone-name") == "trust")
        #expect(tree.root.value(at: "security/policies/policy/to-zone-name") == "untrust")
        #expect(tree.root.statements(at: "security/policies/policy/policy").map(\.identifier) == ["allow"])
    }

    /// `inactive:` in text is `inactive="inactive"` in XML: the statement is not configured.
    @Test func inactiveStatementsInTextAndXMLAgree() throws {
        let xml = try Self.factsAgreeing("""
        <configuration><snmp><community inactive="inactive"><name>public</name></community></snmp>
          <protocols><bgp inactive="inactive"><group><name>g</name></group></bgp><lldp/></protocols></configuration>
        """)
        let text = ConfigurationFacts(text: """
        snmp {
            inactive: community public {
                authorization read-only;
            }
        }
        protocols {
            protect: inactive: bgp {
                group g;
            }
            protect: lldp;
        }
        """)
        #expect(xml.features.features == [.lldp])
        #expect(text.features.features == [.lldp])
    }

    /// `#` after a blank starts a comment (Junos writes `## SECRET-DATA` after secrets); inside a
    /// quoted string it does not.
    @Test func trailingHashCommentsDoNotSwallowTheNextStatement() {
        let c = ConfigurationFacts(text: """
        system {
            root-authentication {
                encrypted-password "$6$abc$DEF"; ## SECRET-DATA
            }
            host-name "r#1"; ## the name
            services {
                ssh;
            }
        }
        """)
        #expect(c.hostName == "r#1")
        #expect(c.features.features == [.ssh])
    }

    /// After a keyword, `##x` and `/*x` are values, not comments: a comment there would swallow
    /// the value and, for `/*`, the rest of the text. Annotations (`/* … */` where a statement
    /// starts), `## Last changed` lines and `## SECRET-DATA` after a statement stay comments.
    @Test func hashAndSlashStarAfterAKeywordAreValues() {
        let tree = ConfigurationTree(text: """
        ## Last changed: 2024-01-01 10:00:00 UTC
        /* the whole snmp stanza */
        snmp {
            community ##pub1 {
                authorization read-only;
            }
            community pub2; /* after a statement */
            community /*pub3;
            location "##x"; ## SECRET-DATA
            community pub4;
        }
        system {
            services {
                ssh;
            }
        }
        """)
        #expect(tree.root.children.map(\.keyword) == ["snmp", "system"])
        let snmp = tree.root.statements(at: "snmp/community")
        #expect(snmp.map { $0.identifier ?? $0.value } == ["##pub1", "pub2", "/*pub3", "pub4"])
        #expect(tree.root.value(at: "snmp/location") == "##x")
        #expect(tree.root.statements(at: "system/services/ssh").count == 1)
    }

    /// `apply-groups-except G` keeps G's statements out of that hierarchy and everything below it.
    @Test func applyGroupsExceptInXMLAndText() throws {
        func xml(secondInterface: Bool) throws -> ConfigurationFacts {
            try Self.factsAgreeing("""
            <configuration>
              <groups><name>G</name>
                <interfaces><interface><name>&lt;*&gt;</name><unit><name>0</name><family><inet6/></family></unit></interface></interfaces>
                <protocols><bgp><group><name>g</name></group></bgp></protocols>
                <system><services><telnet/></services></system></groups>
              <apply-groups>G</apply-groups>
              <interfaces>
                <interface><name>ge-0/0/0</name><apply-groups-except>G</apply-groups-except>
                  <unit><name>0</name><family><inet/></family></unit></interface>
                \(secondInterface ? "<interface><name>ge-0/0/1</name></interface>" : "")
              </interfaces>
              <protocols><apply-groups-except>G</apply-groups-except><ospf><area><name>0</name></area></ospf></protocols>
            </configuration>
            """)
        }
        func text(secondInterface: Bool) -> ConfigurationFacts {
            ConfigurationFacts(text: """
            groups {
                G {
                    interfaces {
                        <*> {
                            unit 0 {
                                family inet6;
                            }
                        }
                    }
                    protocols {
                        bgp {
                            group g;
                        }
                    }
                    system {
                        services {
                            telnet;
                        }
                    }
                }
            }
            apply-groups G;
            interfaces {
                ge-0/0/0 {
                    apply-groups-except G;
                    unit 0 {
                        family inet;
                    }
                }
                \(secondInterface ? "ge-0/0/1;" : "")
            }
            protocols {
                apply-groups-except [ G ];
                ospf {
                    area 0;
                }
            }
            """)
        }
        // Telnet comes from G where nothing excepts it; IPv6 and BGP would only come from G
        // inside the hierarchies that except it.
        for c in [try xml(secondInterface: false), text(secondInterface: false)] {
            #expect(c.features.features == [.telnet, .ospf], "\(c.format)")
        }
        // A second interface that does not except G inherits its IPv6 unit.
        for c in [try xml(secondInterface: true), text(secondInterface: true)] {
            #expect(c.features.features == [.telnet, .ospf, .ipv6], "\(c.format)")
        }
    }

    @Test func malformedTextNeverCrashes() {
        for text in ["", "}", "{{{", "system { host-name", "a \"unterminated", "/* open comment", "x { } } } y;", "inactive: ;"] {
            _ = ConfigurationFacts(text: text)
        }
        // A stray brace deeper than its block is ignored, so `services` stays under `system`.
        let c = ConfigurationFacts(text: "system {\n    login {\n        user a {\n        }\n            }\n    }\n    services {\n        ssh;\n    }\n}\n")
        #expect(c.features.contains(.ssh))
    }

    @Test func clusterNodeGroupsApplyThroughNodeVariable() throws {
        let c = try ConfigurationFacts.parse(bytes: Fixtures.bytes("get-configuration/rjmcp__vsrx-24.4-cluster-node-groups.xml"),
                                             rpc: "get-configuration")
        #expect(c.features.contains(.chassisCluster))
        #expect(c.appliedGroups == ["${node}"])
    }

    @Test func featureProfileEncodesAsSortedNames() throws {
        let profile = FeatureProfile([.ssh, .bgp, .webManagementHTTPS])
        let data = try JSONEncoder().encode(profile)
        #expect(String(decoding: data, as: UTF8.self) == #"["bgp","ssh","web-management-https"]"#)
        let decoded = try JSONDecoder().decode(FeatureProfile.self, from: Data(#"["bgp","from-the-future"]"#.utf8))
        #expect(decoded.features == [.bgp])
        #expect(Set(ConfiguredFeature.allCases.map(\.rawValue)).count == ConfiguredFeature.allCases.count)
    }

    @Test func truncatedCapturesNeverCrash() throws {
        let redactor = ConfigurationRedactor()
        for url in try Fixtures.files(in: "get-configuration") {
            let text = try String(contentsOf: url, encoding: .utf8)
            let scalars = Array(text.unicodeScalars)
            for cut in stride(from: 0, to: scalars.count, by: max(1, scalars.count / 40)) {
                var prefix = String.UnicodeScalarView()
                prefix.append(contentsOf: scalars[..<cut])
                let piece = String(prefix)
                _ = ConfigurationFacts(text: piece)
                let redacted = redactor.redact(text: piece)
                #expect(!redacted.contains("$9$iqPQ/CuEclFnclKMN-Hqm"))
                _ = try? ConfigurationFacts.parse(bytes: Array(piece.utf8), rpc: "get-configuration")
            }
        }
    }
}
