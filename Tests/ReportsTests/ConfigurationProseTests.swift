import Foundation
import Junos
@testable import Reports
import Testing

/// Configuration prose of the shipped records as written, against devices whose configuration
/// does or does not hold what the prose asks for. Where the prose cannot be read for sure, the
/// verdict is possibly-exposed with the reason, never a confident one from a misreading.
@Suite struct ConfigurationProseTests {
    func evaluate(_ cve: String, _ device: DeviceSnapshot) -> BugFinding? {
        let advisory = ReportsTestData.advisory(cve)
        return BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(advisory: advisory), on: device)
    }

    func device(_ version: String, model: String = "mx480", _ configuration: String) -> DeviceSnapshot {
        ReportsTestData.device(model: model, versions: [version], configuration: configuration)
    }

    /// A device whose configuration is XML, as NETCONF returns it.
    func xmlDevice(_ version: String, model: String = "mx480", _ xml: String) throws -> DeviceSnapshot {
        let element = try #require(try JunosReply(bytes: Array("<rpc-reply><configuration>\(xml)</configuration></rpc-reply>".utf8)).sections.first?.element)
        var snapshot = ReportsTestData.device(model: model, versions: [version])
        snapshot.configuration = ConfigurationTree(element: element).effective
        return snapshot
    }

    /// "either at the top level, under [logical-systems], or [routing-instances]": the brackets
    /// say where the traceoptions may sit; a VRF or a logical system alone is not the requirement.
    @Test func bracketsOfAHierarchyPhraseArePlacesNotStatements() throws {
        // 22.2R3-S3 is inside every record's `22.2 < 22.2R3-S4` (or later) range.
        let noTraceoptions = """
            routing-instances { VRF1 { instance-type vrf; protocols { bgp { group ce { neighbor 192.0.2.9; } } } } }
            logical-systems { LS1 { interfaces { ge-0/0/1 { unit 0; } } } }
            protocols { bgp { group ext { neighbor 192.0.2.1; } } }
            """
        for cve in ["CVE-2024-39515", "CVE-2024-39516", "CVE-2024-39525", "CVE-2025-21600"] {
            let finding = try #require(evaluate(cve, device("22.2R3-S3.1", noTraceoptions)))
            #expect(finding.verdict == .notExposedConfig, "\(cve): \(finding.reason)")
            #expect(!finding.reason.contains("[routing-instances]") && !finding.reason.contains("[logical-systems]"), "\(cve): \(finding.reason)")
        }
        // The statements under a routing instance, a logical system, or an instance of one: exposed.
        let inInstance = device("22.2R3-S3.1", "routing-instances { VRF1 { protocols { bgp { traceoptions { file bgp.log; } } } } }")
        #expect(evaluate("CVE-2024-39515", inInstance)?.verdict == .exposed)
        let inLogicalSystem = device("22.2R3-S3.1", "logical-systems { LS1 { protocols { bgp { group ext { traceoptions { flag update detail; } } } } } }")
        #expect(evaluate("CVE-2024-39516", inLogicalSystem)?.verdict == .exposed)
        let nested = try xmlDevice("22.2R3-S3.1", """
            <logical-systems><name>LS1</name><routing-instances><instance><name>VRF1</name><protocols><bgp><group><name>g</name>
            <neighbor><name>192.0.2.1</name><traceoptions><flag><name>packets</name><detail/></flag></traceoptions></neighbor>
            </group></bgp></protocols></instance></routing-instances></logical-systems>
            """)
        #expect(evaluate("CVE-2025-21600", nested)?.verdict == .exposed)
    }

    /// Brackets split over lines are read whole; `traceoptions packets detail` is Junos's
    /// `traceoptions flag packets detail`, in text and in XML.
    @Test func bracketsOverSeveralLinesAndTraceoptionsFlags() throws {
        let paths = ConfigurationRequirement.extractPaths(try #require(ReportsTestData.advisory("CVE-2024-39516").configurationText)).map(\.text)
        #expect(paths.contains("protocols bgp group <name> traceoptions flag packets detail"), "\(paths)")
        #expect(paths.contains("protocols bgp group <name> neighbor <name> traceoptions flag update detail"), "\(paths)")
        let text = device("22.2R3-S3.1", "protocols { bgp { group ext { traceoptions { flag packets detail; } neighbor 192.0.2.1; } } }")
        #expect(evaluate("CVE-2024-39516", text)?.verdict == .exposed)
        let xml = try xmlDevice("22.2R3-S3.1", """
            <protocols><bgp><group><name>ext</name><traceoptions><flag><name>update</name><detail/></flag></traceoptions></group></bgp></protocols>
            """)
        #expect(evaluate("CVE-2024-39516", xml)?.verdict == .exposed)
        // Another flag is not the one named.
        let otherFlag = device("22.2R3-S3.1", "protocols { bgp { group ext { traceoptions { flag state; } } } }")
        #expect(evaluate("CVE-2024-39516", otherFlag)?.verdict == .notExposedConfig)
    }

    /// "one or more of the following", "like in the following examples": any one is enough.
    @Test func oneOrMoreAndAlternativeExamplesNeedOnlyOne() {
        // CVE-2024-47498: QFX5000 Series, Junos OS Evolved 22.2 before 22.2R3-S5-EVO.
        let qfx = device("22.2R3-S4-EVO", model: "qfx5120-48y-8c", "protocols { l2-learning { global-mac-limit 1000; } }")
        #expect(evaluate("CVE-2024-47498", qfx)?.verdict == .exposed)
        // CVE-2024-39536: 22.2 before 22.2R3-S4; BFD authentication under a protocol only.
        let bfd = device("22.2R3-S3.1", "protocols { bgp { group ext { bfd-liveness-detection { authentication { key-chain bfd-kc; } } } } }")
        #expect(evaluate("CVE-2024-39536", bfd)?.verdict == .exposed)
        #expect(evaluate("CVE-2024-39536", device("22.2R3-S3.1", "protocols { bgp { group ext { bfd-liveness-detection { minimum-interval 300; } } } }"))?.verdict == .notExposedConfig)
    }

    /// `route-filter destination-prefix match-type` names the route-filter's values, not keywords.
    @Test func documentationValueNamesAreNotKeywords() throws {
        // CVE-2024-30382: 21.4 before 21.4R3.
        let cbf = try xmlDevice("21.4R2-S2.3", """
            <policy-options><policy-statement><name>cbf</name><term><name>1</name>
            <from><route-filter><address>10.0.0.0/8</address><orlonger/></route-filter></from>
            <then><cos-next-hop-map>map1</cos-next-hop-map></then></term></policy-statement></policy-options>
            """)
        #expect(evaluate("CVE-2024-30382", cbf)?.verdict == .exposed, "\(evaluate("CVE-2024-30382", cbf)?.reason ?? "")")
        // `ae<number>` is one name (CVE-2024-30388's `[ interfaces ae<number> aggregated-ether-options lacp ]`).
        let lacp = try #require(StatementPath("interfaces ae<number> aggregated-ether-options lacp"))
        #expect(lacp.text == "interfaces <name> aggregated-ether-options lacp")
        #expect(lacp.isPresent(in: ConfigurationTree(text: "interfaces { ae0 { aggregated-ether-options { lacp { active; } } } }").effective))
        // `[interfaces unit family mpls]` leaves the names out: the words are statements (CVE-2023-44196).
        let mpls = try #require(StatementPath("interfaces unit family mpls"))
        #expect(mpls.isPresent(in: ConfigurationTree(text: "interfaces { ge-0/0/0 { unit 0 { family mpls; } } }").effective), "\(mpls.text)")
    }

    /// `hmac-sha-384/hmac-sha-512` is two keywords, and a value with digits is compared.
    @Test func slashAlternativesWithDigits() {
        // CVE-2024-30391: SRX Series, 21.1 before 21.1R3.
        let sha256 = device("21.1R2-S2.2", model: "srx345", "security { ipsec { proposal p1 { authentication-algorithm hmac-sha-256-128; } } }")
        #expect(evaluate("CVE-2024-30391", sha256)?.verdict == .notExposedConfig)
        let sha512 = device("21.1R2-S2.2", model: "srx345", "security { ipsec { proposal p1 { authentication-algorithm hmac-sha-512; } } }")
        #expect(evaluate("CVE-2024-30391", sha512)?.verdict == .exposed)
    }

    /// "No minimal configuration" from the CLI, SNMP for the SNMP route; "in effect by default";
    /// "enabled by default" next to named statements: none of these is a simple statement list.
    @Test func proseThatIsNotAStatementListIsOnlyPossible() throws {
        // CVE-2024-47505/47508/47509: Junos OS Evolved 22.1R1 is inside each (22.1 before 22.1R1-S1-EVO or later); no SNMP.
        for cve in ["CVE-2024-47505", "CVE-2024-47508", "CVE-2024-47509"] {
            let finding = try #require(evaluate(cve, device("22.1R1-EVO", model: "ptx10001-36mr", "system { services { ssh; } }")))
            #expect(finding.verdict == .possiblyExposed, "\(cve): \(finding.reason)")
            #expect(finding.reason.contains("no minimal configuration"), "\(finding.reason)")
        }
        // CVE-2024-30390: 22.2-EVO before 22.2R3-S2-EVO; the limits are defaults.
        let defaults = try #require(evaluate("CVE-2024-30390", device("22.2R3-S1-EVO", model: "ptx10001-36mr", "system { services { ssh; } }")))
        #expect(defaults.verdict == .possiblyExposed && defaults.reason.contains("in effect by default"), "\(defaults.reason)")
        let explicit = device("22.2R3-S1-EVO", model: "ptx10001-36mr", "system { services { ssh { connection-limit 10; rate-limit 5; } } }")
        #expect(evaluate("CVE-2024-30390", explicit)?.verdict == .exposed)
        // CVE-2024-39561 (SRX5000 Series, 22.2 before 22.2R3-S4): no-syn-check and Express Path,
        // which is on by default from 21.2R1: not "no configuration needed".
        let srx = try #require(evaluate("CVE-2024-39561", device("22.2R3-S3.1", model: "srx5800", "security { flow { tcp-session { no-syn-check; } } }")))
        #expect(srx.verdict == .possiblyExposed && srx.reason.contains("enabled by default"), "\(srx.reason)")
        #expect(!srx.reason.contains("no configuration needed"))
        // Alone, such a phrase still says none is needed.
        if case .none = ConfigurationRequirement(prose: "No specific configuration is required.").kind {} else { Issue.record("none") }
        if case .none = ConfigurationRequirement(prose: "The service is enabled by default.").kind {} else { Issue.record("default") }
    }

    /// A record with no configuration text has not said that none is needed.
    @Test func silenceIsAnUnknownRequirement() throws {
        // CVE-2024-39549: 22.2 before 22.2R3-S4, no configuration text; a device without BGP.
        #expect(ReportsTestData.advisory("CVE-2024-39549").configurationText == nil)
        let finding = try #require(evaluate("CVE-2024-39549", device("22.2R3-S3.1", "system { services { ssh; } }")))
        #expect(finding.verdict == .possiblyExposed)
        #expect(finding.reason.contains("unknown configuration requirement"), "\(finding.reason)")
        #expect(!finding.reason.contains("no configuration needed"))
    }

    /// Alternatives joined with further requirements (`[a] and either [b] or [c]`): only all
    /// present or all absent decide.
    @Test func mixedAlternativesDecideOnlyWhenAllAgree() throws {
        // CVE-2024-39541 (22.4 before 22.4R3-S1): SPRING TE database, and OSPF or IS-IS TE.
        #expect(ConfigurationRequirement(advisory: ReportsTestData.advisory("CVE-2024-39541")).mixed != nil)
        let ospfOnly = try #require(evaluate("CVE-2024-39541", device("22.4R3.5", "protocols { ospf { traffic-engineering; } }")))
        #expect(ospfOnly.verdict == .possiblyExposed && ospfOnly.reason.contains("configured: [protocols ospf traffic-engineering]"), "\(ospfOnly.reason)")
        let all = device("22.4R3.5", "protocols { source-packet-routing { traffic-engineering { database; } } ospf { traffic-engineering; } isis { traffic-engineering; } }")
        #expect(evaluate("CVE-2024-39541", all)?.verdict == .exposed)
        #expect(evaluate("CVE-2024-39541", device("22.4R3.5", "protocols { bgp { group g { neighbor 192.0.2.1; } } }"))?.verdict == .notExposedConfig)
    }
}
