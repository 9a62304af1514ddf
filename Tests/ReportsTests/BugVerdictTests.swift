import Bundle
import Foundation
import Junos
@testable import Reports
import Testing
import TestSupport

/// One golden test per verdict kind: the whole JSON row as consumers see it.
@Suite struct BugVerdictTests {
    /// J-Web on MX, fixed in 21.4R3-S5; needs web-management http or https.
    static let jweb = try! ReportsTestData.parse(ReportsTestData.record(
        cve: "CVE-2099-1000", title: "Junos OS: MX Series: J-Web test issue",
        affected: [["product": "Junos OS", "platforms": ["MX Series"], "defaultStatus": "unaffected",
                    "versions": [["status": "affected", "version": "21.4", "lessThan": "21.4R3-S5", "versionType": "semver"]]]],
        configuration: "The following minimal configuration must be present:\n\n[system services web-management http]or\n\n[system services web-management https]",
        solution: "The following software releases have been updated to resolve this specific issue: 21.4R3-S5, 22.1R3, and all subsequent releases.")).0

    static let spc3 = try! ReportsTestData.parse(ReportsTestData.record(
        cve: "CVE-2099-1001", title: "Junos OS: MX Series with SPC3: test",
        affected: [["product": "Junos OS", "platforms": ["MX Series with SPC3"], "defaultStatus": "unaffected",
                    "versions": [["status": "affected", "version": "0", "lessThan": "22.2R3"]]]],
        configuration: "No specific configuration is required.")).0

    func json(_ finding: BugFinding?) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(try #require(finding)), as: UTF8.self)
    }

    func evaluate(_ advisory: Advisory, _ device: DeviceSnapshot) -> BugFinding? {
        BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(prose: advisory.configurationText), on: device)
    }

    @Test func exposed() throws {
        let device = ReportsTestData.device(versions: ["21.4R3-S3.4"], configuration: """
            system { host-name edge-1; services { ssh; web-management { https { system-generated-certificate; } } } }
            """)
        #expect(try json(evaluate(Self.jweb, device)) == #"{"cve":"CVE-2099-1000","cvss":7.5,"data_warning":null,"device":"edge-1","fixed_in":"21.4R3-S5","hostname":"edge-1","jsa":"JSA99999","model":"mx480","reason":"21.4R3-S3.4 is affected (Junos OS in range 21.4 < 21.4R3-S5); mx480 is MX Series (platforms); configured: [system services web-management https]","severity":"HIGH 7.5 (CVSS 3.1)","title":"Junos OS: MX Series: J-Web test issue","verdict":"exposed","version":"21.4R3-S3.4","versions":null,"workaround":"Disable the feature."}"#)
    }

    /// A JSU installed on the affected routing engine may carry the fix: exposed becomes possibly
    /// exposed, naming the JSU. One on the other RE does not cover this one.
    @Test func aSoftwareUpdateOnTheAffectedEngineMakesExposedOnlyPossible() throws {
        let advisory = try ReportsTestData.parse(ReportsTestData.record(
            cve: "CVE-2099-1002", title: "Junos OS: MX Series: test issue",
            affected: [["product": "Junos OS", "platforms": ["MX Series"], "defaultStatus": "unaffected",
                        "versions": [["status": "affected", "version": "15.1", "lessThan": "15.1F6"]]]],
            configuration: "No specific configuration is required.")).0
        let capture = String(decoding: try Fixtures.bytes("get-software-information/pyez__mx480-dual-re-15.1F5.xml"), as: UTF8.self)
        let jsu = "<package-information><name>jsu-15.1F5-J3</name><comment>JUNOS Software Update [15.1F5-J3]</comment></package-information>"
        func device(jsuOn engine: String?) -> DeviceSnapshot {
            var xml = capture
            if let engine, let item = xml.range(of: "<re-name>\(engine)</re-name>"),
               let version = xml.range(of: "</junos-version>", range: item.upperBound..<xml.endIndex) {
                xml.insert(contentsOf: jsu, at: version.upperBound)
            }
            let facts = DeviceFacts.parsed(from: [RawReply(rpc: "get-software-information", bytes: Array(xml.utf8))])
            return DeviceSnapshot(device: "baku", hostname: "baku", collected: Date(), facts: facts, source: "test")
        }
        #expect(device(jsuOn: "re0").facts.software?.softwareUpdates(on: "re0").map(\.name) == ["jsu-15.1F5-J3"])
        #expect(device(jsuOn: "re0").facts.software?.softwareUpdates(on: "re1").isEmpty == true)
        #expect(evaluate(advisory, device(jsuOn: nil))?.verdict == .exposed)
        let withJSU = try #require(evaluate(advisory, device(jsuOn: "re0")))
        #expect(withJSU.verdict == .possiblyExposed)
        #expect(withJSU.reason.contains("re0") && withJSU.reason.contains("JUNOS Software Update [15.1F5-J3]") && withJSU.reason.contains("release notes"), "\(withJSU.reason)")
        #expect(evaluate(advisory, device(jsuOn: "re1"))?.verdict == .exposed)
        // Named by its comment alone, and not confused with other packages.
        #expect(SoftwarePackage(name: "junos-fixes", comment: "JSU package for PR 1234567 [21.4R3-S5-J2]").isSoftwareUpdate)
        #expect(!SoftwarePackage(name: "jservices-jflow", comment: "JUNOS Services Jflow Container package [15.1F5.15-C1.12]").isSoftwareUpdate)
        #expect(!device(jsuOn: nil).facts.software!.routingEngines.flatMap { $0.packages }.contains { $0.isSoftwareUpdate })
    }

    @Test func notExposedConfig() throws {
        // J-Web configured but inactive, and in a group that is not applied: neither counts.
        let device = ReportsTestData.device(versions: ["21.4R3-S3.4"], configuration: """
            groups { unused { system { services { web-management { http; } } } } }
            system { services { ssh; inactive: web-management { https; } } }
            """)
        #expect(try json(evaluate(Self.jweb, device)) == #"{"cve":"CVE-2099-1000","cvss":7.5,"data_warning":null,"device":"edge-1","fixed_in":"21.4R3-S5","hostname":"edge-1","jsa":"JSA99999","model":"mx480","reason":"21.4R3-S3.4 is affected (Junos OS in range 21.4 < 21.4R3-S5); mx480 is MX Series (platforms); configuration absent: [system services web-management http] or [system services web-management https] not configured","severity":"HIGH 7.5 (CVSS 3.1)","title":"Junos OS: MX Series: J-Web test issue","verdict":"not-exposed-config","version":"21.4R3-S3.4","versions":null,"workaround":"Disable the feature."}"#)
        // The same statement through an applied group is configured.
        let applied = ReportsTestData.device(versions: ["21.4R3-S3.4"], configuration: """
            groups { mgmt { system { services { web-management { http; } } } } }
            apply-groups mgmt;
            system { services { ssh; } }
            """)
        #expect(evaluate(Self.jweb, applied)?.verdict == .exposed)
    }

    @Test func possiblyExposedWhenConfigurationOrPlatformCannotBeDecided() throws {
        // Two REs on different releases: both listed in `versions`; configuration not collected.
        let device = ReportsTestData.device(versions: ["21.4R3-S3.4", "21.4R3-S4"])
        #expect(try json(evaluate(Self.jweb, device)) == #"{"cve":"CVE-2099-1000","cvss":7.5,"data_warning":null,"device":"edge-1","fixed_in":"21.4R3-S5","hostname":"edge-1","jsa":"JSA99999","model":"mx480","reason":"re0 21.4R3-S3.4 is affected (Junos OS in range 21.4 < 21.4R3-S5); mx480 is MX Series (platforms); configuration undecided: the configuration was not collected (looked for [system services web-management http] or [system services web-management https])","severity":"HIGH 7.5 (CVSS 3.1)","title":"Junos OS: MX Series: J-Web test issue","verdict":"possibly-exposed","version":"21.4R3-S3.4","versions":["re0: 21.4R3-S3.4","re1: 21.4R3-S4"],"workaround":"Disable the feature."}"#)
        // A line-card limit with no inventory to check it against.
        let noInventory = ReportsTestData.device(versions: ["21.4R3-S3.4"], configuration: "system { services { ssh; } }")
        let finding = evaluate(Self.spc3, noInventory)
        #expect(finding?.verdict == .possiblyExposed)
        #expect(finding?.reason == "21.4R3-S3.4 is affected (Junos OS in range 0 < 22.2R3); platform undecided: the record limits it to MX Series with SPC3 and the chassis inventory was not collected")
        // With an inventory holding an SPC3 card, the platform matches.
        let inventory = ChassisInventory(chassis: [InventoryChassis(description: "MX480", modules: [
            InventoryItem(name: "FPC 2", partNumber: "750-073435", description: "SPC3"),
        ])])
        let withCard = ReportsTestData.device(versions: ["21.4R3-S3.4"], configuration: "system { services { ssh; } }", inventory: inventory)
        #expect(evaluate(Self.spc3, withCard)?.verdict == .exposed)
        #expect(evaluate(Self.spc3, withCard)?.reason.contains("FPC 2 is SPC3") == true)
    }

    @Test func plainlyUnaffectedPairsAreCountedNotListed() {
        let data = ReferenceData(directory: URL(fileURLWithPath: "/"), advisories: [Self.jweb, Self.spc3])
        let devices = [
            ReportsTestData.device("fixed", versions: ["21.4R3-S5.4"], configuration: "system { services { web-management { http; } } }"),
            ReportsTestData.device("srx", model: "srx345", versions: ["21.4R3-S3.4"], configuration: "system { services { web-management { http; } } }"),
            ReportsTestData.device("hit", versions: ["21.4R3-S3.4"], configuration: "system { services { web-management { http; } } }"),
        ]
        let report = BugReport(devices: devices, data: data)
        #expect(report.findings.map { "\($0.device) \($0.cve) \($0.verdict.rawValue)" } == [
            "hit CVE-2099-1000 exposed", "fixed CVE-2099-1001 possibly-exposed", "hit CVE-2099-1001 possibly-exposed",
        ])
        // Unaffected: fixed/J-Web (fixed release), srx/both (another platform).
        #expect(report.unaffectedCount + report.findings.count == 6)
        #expect(report.deviceCount == 3)

        // --since: only what changed.
        let before = report.findings
        let upgraded = BugReport(devices: [ReportsTestData.device("hit", versions: ["21.4R3-S5"], configuration: "system { services { web-management { http; } } }")], data: data)
        #expect(upgraded.since(before).findings.map { "\($0.device) \($0.cve) \($0.version ?? "")" } == ["hit CVE-2099-1001 21.4R3-S5"])
        #expect(report.since(before).findings.isEmpty)
    }

    @Test func configurationProseIsReadIntoHierarchyPaths() {
        func paths(_ prose: String) -> [String] {
            if case let .statements(found, _) = ConfigurationRequirement(prose: prose).kind { return found.map(\.text) }
            return []
        }
        #expect(paths("To be exposed:\n\n [ vlans <vlan> vxlan ]\n\n [ routing-instances <routing-instance> vxlan ]") == ["vlans <name> vxlan", "routing-instances <name> vxlan"])
        #expect(paths("Nonstop Active Routing:\n\n [edit chassis redundancy]\ngraceful-switchover;\n\n[edit routing-options]\nnonstop-routing;") == ["chassis redundancy graceful-switchover", "routing-options nonstop-routing"])
        #expect(paths("[edit policy-options]\nset policy-statement my-cos term 1 then cos-next-hop-map map-name") == ["policy-options policy-statement <my-cos> term <1> then cos-next-hop-map map-name"])
        #expect(paths("[ protocols (stp | mstp | rstp | vstp) interface <interface> ]") == ["protocols (stp|mstp|rstp|vstp) interface <name>"])
        // All needed, but a path that extends another listed one is an example of it (CVE-2023-44175).
        #expect(paths("This issue is applicable to devices where PIM is enabled.\n\n[protocols pim]\n[protocols pim rp config]\n[protocols pim interface ]") == ["protocols pim"])
        #expect(paths("[protocols rsvp]\n[protocols mpls interface]") == ["protocols rsvp", "protocols mpls interface"])
        if case .none = ConfigurationRequirement(prose: "There is no minimum configuration required to be vulnerable to this issue.").kind {} else { Issue.record("no-config prose") }
        if case .unreadable = ConfigurationRequirement(prose: "The following minimal configuration is required:\n  firewall policer\nand\n  sflow").kind {} else { Issue.record("unreadable prose") }
        // Relative paths match anywhere; `...` spans levels; alternatives.
        let config = ConfigurationTree(text: """
            interfaces { ge-0/0/1 { encapsulation ethernet-ccc; unit 0; } }
            protocols { rstp { interface ge-0/0/2; } bgp { group ext { neighbor 192.0.2.1 { import pol; } } } }
            """).effective
        #expect(StatementPath("encapsulation ethernet-ccc")!.isPresent(in: config))
        #expect(!StatementPath("encapsulation vlan-ccc")!.isPresent(in: config))
        #expect(StatementPath("protocols (stp|mstp|rstp) interface <interface>")!.isPresent(in: config))
        #expect(StatementPath("protocols bgp ... import <policy>")!.isPresent(in: config))
        #expect(!StatementPath("protocols bgp ... export <policy>")!.isPresent(in: config))
    }
}

/// Sample configurations whose statements stand for one another: read as the record means
/// them, so that a device configured the other listed way is not shown unexposed.
@Suite struct SampleConfigurationTests {
    func requirement(_ cve: String) -> ConfigurationRequirement {
        ConfigurationRequirement(advisory: ReportsTestData.advisory(cve))
    }

    /// The verdict for a device on an affected release with `configuration`.
    func verdict(_ cve: String, model: String, version: String, _ configuration: String) -> BugVerdict? {
        let device = ReportsTestData.device(model: model, versions: [version], configuration: configuration)
        return BugMatcher.evaluate(ReportsTestData.advisory(cve), requirement: requirement(cve), on: device)?.verdict
    }

    /// CVE-2024-39555: "A sample BGP segment routing configuration", `family inet ...` (IPv4) and
    /// `family inet6 ...` (IPv6): either is the feature; IPv4 alone is exposed, neither is not.
    @Test func labelledVariantsOfOneStatementAreAlternatives() {
        let read = requirement("CVE-2024-39555")
        guard case let .statements(paths, any) = read.kind else { Issue.record("\(read.kind)"); return }
        #expect(paths.map(\.text) == ["protocols bgp group <name> family inet segment-routing-te",
                                      "protocols bgp group <name> family inet6 segment-routing-te"])
        #expect(any)
        #expect(verdict("CVE-2024-39555", model: "mx480", version: "21.4R3-S5",
                        "protocols { bgp { group core { family inet { segment-routing-te; } } } }") == .exposed)
        #expect(verdict("CVE-2024-39555", model: "mx480", version: "21.4R3-S5",
                        "protocols { bgp { group core { family inet { unicast; } } } }") == .notExposedConfig)
        // Variants of one statement only when they differ in one keyword: two interfaces of an
        // example (CVE-2023-36834) are both needed, and PIM with MoFRR (CVE-2024-39558) too.
        for cve in ["CVE-2023-36834", "CVE-2024-39558", "CVE-2024-30388"] {
            guard case let .statements(_, any) = requirement(cve).kind else { Issue.record("\(cve)"); continue }
            #expect(!any, "\(cve)")
        }
    }

    /// CVE-2024-39553: inline jflow, `[ services flow-monitoring (version-ipfix|version9) ]`, then
    /// a sampling example with `flow-server x.x.x.x version9 template 1`: version9 there stands for
    /// either, so an IPFIX inline-jflow device is exposed, not cleared for lacking `version9`.
    @Test func aKeywordTheRecordListsAsAlternativesStandsForThemElsewhere() {
        let read = requirement("CVE-2024-39553")
        guard case let .statements(paths, any) = read.kind else { Issue.record("\(read.kind)"); return }
        #expect(!any)
        #expect(paths.contains { $0.text.contains("flow-server x.x.x.x (version-ipfix|version9) template") }, "\(paths.map(\.text))")
        #expect(verdict("CVE-2024-39553", model: "ptx10008", version: "22.2R3-S1-EVO", """
            services { flow-monitoring { version-ipfix { template t4 { ipv4-template; } } } }
            forwarding-options { sampling { instance { jflow { input { rate 1000; }
              family inet { output { flow-server 192.0.2.9 { port 2055; version-ipfix { template { t4; } } } inline-jflow { source-address 192.0.2.1; } } } } } } }
            """) == .exposed)
        #expect(verdict("CVE-2024-39553", model: "ptx10008", version: "22.2R3-S1-EVO",
                        "services { flow-monitoring { version-ipfix { template t4 { ipv4-template; } } } }") == .notExposedConfig)
    }
}

/// Platform text as the records write it, against device models.
@Suite struct PlatformMatchTests {
    func matches(_ platform: String, _ model: String) -> Bool {
        PlatformPattern(platform)?.matchesModel(model) ?? false
    }

    @Test func seriesExactModelsAndSpellings() {
        #expect(matches("SRX Series", "srx345") && matches("SRX Series", "vSRX") && matches("SRX Series", "srx5800"))
        #expect(matches("SRX 5000 Series", "srx5800") && matches("SRX5000 Series", "srx5400") && !matches("SRX 5000 Series", "srx550m"))
        #expect(matches("QFX5k", "qfx5120-48y-8c") && !matches("QFX5k", "qfx10002-36q"))
        #expect(matches("QFX10000 Series", "qfx10002-36q") && !matches("QFX10000 Series", "qfx5100-48s-6q"))
        #expect(matches("EX4300", "ex4300-48t") && !matches("EX4300", "ex43000"))
        #expect(matches("PTX10001-36MR", "ptx10001-36mr") && !matches("PTX10001-36MR", "ptx10001"))
        #expect(matches("PTX1000", "ptx1000") && !matches("PTX1000", "ptx10008"))
        #expect(matches("ACX 7000 Series", "acx7100-48l") && !matches("ACX7000 Series", "acx710"))
        #expect(matches("MX Series", "mx480") && matches("MX Series", "vmx") && !matches("MX Series", "m320"))
        #expect(PlatformPattern("MX Series with SPC3")?.qualifiers == ["SPC3"])
        #expect(PlatformPattern("MX with MPC10/11/LC9600")?.qualifiers == ["MPC10", "MPC11", "LC9600"])
        #expect(PlatformPattern("cRPD") == nil && PlatformPattern("QFabric System") == nil && PlatformPattern("platforms") == nil)
    }

    /// cRPD is a container, never a chassis: a physical device is not it (CVE-2024-39547 on an MX480).
    @Test func containerProductsAreNotChassisModels() throws {
        #expect(PlatformMatch.check(["cRPD"], source: "platforms", model: "mx480", inventory: nil) == .doesNotMatch("mx480 is not cRPD"))
        #expect(PlatformMatch.check(["cRPD"], source: "platforms", model: "cRPD", inventory: nil) == .matches("cRPD is cRPD (platforms)"))
        let advisory = ReportsTestData.advisory("CVE-2024-39547")
        #expect(advisory.affected.allSatisfy { $0.platforms == ["cRPD"] })
        // 22.2R3-S3 is inside its `22.2 < 22.2R3-S4`.
        let mx = ReportsTestData.device(versions: ["22.2R3-S3.1"], configuration: "protocols { bgp { group g { neighbor 192.0.2.1; } } }")
        #expect(BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(advisory: advisory), on: mx) == nil)
        let crpd = ReportsTestData.device(model: "crpd", versions: ["22.2R3-S3.1"], configuration: "protocols { bgp { group g { neighbor 192.0.2.1; } } }")
        #expect(BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(advisory: advisory), on: crpd) != nil)
    }

    /// "EX4300" is not the EX4300-MP (EX4300-48MP), a platform of its own (CVE-2024-30410: "only
    /// affects the EX4300 switch").
    @Test func theEX4300IsNotTheEX4300MP() {
        #expect(matches("EX4300", "ex4300-48t") && matches("EX4300", "ex4300-24p"))
        #expect(!matches("EX4300", "ex4300-48mp") && !matches("EX4300", "ex4300-48mp-s"))
        #expect(matches("EX4300-MP", "ex4300-48mp") && !matches("EX4300-MP", "ex4300-48t"))
        let advisory = ReportsTestData.advisory("CVE-2024-30410")
        #expect(advisory.affected[0].platforms == ["EX4300"] && advisory.description.contains("only affects the EX4300 switch"))
        // 21.4R3-S5 is inside its `21.4 < 21.4R3-S6`.
        let mp = ReportsTestData.device(model: "ex4300-48mp", versions: ["21.4R3-S5.4"], configuration: "firewall { family { inet6 { filter f { term t { then discard; } } } } }")
        #expect(BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(advisory: advisory), on: mp) == nil)
        let t = ReportsTestData.device(model: "ex4300-48t", versions: ["21.4R3-S5.4"], configuration: "firewall { family { inet6 { filter f { term t { then discard; } } } } }")
        #expect(BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(advisory: advisory), on: t)?.verdict == .exposed)
    }

    @Test func everyShippedPlatformStringIsReadOrKnownUnreadable() {
        var unreadable = Set<String>()
        for advisory in ReportsTestData.shipped.advisories {
            for product in advisory.affected { unreadable.formUnion(product.platformSet.unreadable) }
        }
        // Names that are not a platform family; matching falls back to "undecided" for them.
        #expect(unreadable.isSubset(of: ["cRPD", "QFabric System", "Paragon Active Assurance Test Agent", "platforms", "MPC11", "LC9600"]), "\(unreadable)")
    }
}

/// Platform scope stated only in the description.
@Suite struct DescriptionPlatformScopeTests {
    /// CVE-2021-0254 has no platforms field and none in its title; its description says
    /// overlayd runs by default on MX/ACX/QFX, SRX is not vulnerable, others only with VXLAN.
    @Test func aDescriptionThatNamesPlatformsIsNotIgnored() throws {
        let advisory = ReportsTestData.advisory("CVE-2021-0254")
        #expect(advisory.affected.allSatisfy { $0.platforms.isEmpty })
        #expect(advisory.description.contains("The SRX Series does not support VXLAN and is therefore not vulnerable to this issue."))
        func evaluate(_ model: String) -> BugFinding? {
            // 18.2R3-S6 is inside its `18.2 < 18.2R2-S8, 18.2R3-S7`.
            BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(advisory: advisory),
                                on: ReportsTestData.device(model: model, versions: ["18.2R3-S6.5"]))
        }
        #expect(evaluate("srx345") == nil)
        let mx = try #require(evaluate("mx480"))
        #expect(mx.verdict == .possiblyExposed && mx.reason.contains("its description does") && mx.reason.contains("runs by default in MX Series"), "\(mx.reason)")
        #expect(evaluate("ex4300-48t")?.verdict == .possiblyExposed)
        // A record whose platforms field says where it applies is read from that field alone.
        #expect(ReportsTestData.advisory("CVE-2024-30410").affected.allSatisfy { $0.descriptionScope == nil })
    }
}
