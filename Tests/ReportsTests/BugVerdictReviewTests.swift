import Foundation
import Junos
@testable import Reports
import Testing
import TestSupport

/// Verdicts a review of 48 advisories found wrong (session 17), each on the record's own text:
/// exposure hidden by a title read as a platform, a path read only at the top of the
/// configuration, an options list read as all required, a keyword read as a name, a line card
/// or series spelled otherwise, fixes of several lines of one X train, an "unaffected before"
/// carve-out, and development builds no range can hold.
@Suite struct BugVerdictReviewTests {
    func finding(_ cve: String, model: String, version: String, configuration: String? = nil,
                 inventory: ChassisInventory? = nil) -> BugFinding? {
        let advisory = ReportsTestData.advisory(cve)
        let device = ReportsTestData.device(model: model, versions: [version], configuration: configuration, inventory: inventory)
        return BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(advisory: advisory), on: device)
    }

    @Test func aFeatureInTheTitleIsNoPlatform() {
        #expect(PlatformPattern("J-Web") == nil)
        #expect(PlatformPattern("EX4300-48MP") != nil && PlatformPattern("PTX10001-36MR") != nil)
        // CVE-2024-39565 (J-Web, 8.8) was dropped for every device.
        let found = finding("CVE-2024-39565", model: "srx345", version: "21.4R3-S4.8",
                            configuration: "system { services { web-management { https { system-generated-certificate; } } } }")
        #expect(found?.verdict == .exposed, "\(String(describing: found?.reason))")
    }

    @Test func topLevelPathsAlsoRunInRoutingInstancesAndLogicalSystems() {
        let vrf = "routing-instances { VRF1 { instance-type vrf; protocols { bgp { group g { neighbor 192.0.2.1; } } } } }"
        #expect(finding("CVE-2023-44204", model: "mx960", version: "21.4R3-S3.4", configuration: vrf)?.verdict == .exposed)
        let lsys = "logical-systems { LS1 { protocols { bgp { group g { neighbor 192.0.2.1; } } } } }"
        #expect(finding("CVE-2023-44204", model: "mx960", version: "21.4R3-S3.4", configuration: lsys)?.verdict == .exposed)
        // Without BGP anywhere: still not exposed by configuration.
        #expect(finding("CVE-2023-44204", model: "mx960", version: "21.4R3-S3.4", configuration: "protocols { ospf { area 0 { interface ge-0/0/0.0; } } }")?.verdict == .notExposedConfig)
    }

    @Test func anOptionsListIsAlternatives() {
        // "DHCP snooping is enabled when the following options are configured: [relay] [local-server]".
        guard case let .statements(paths, any) = ConfigurationRequirement(advisory: ReportsTestData.advisory("CVE-2024-39526")).kind else {
            Issue.record("not read as statements"); return
        }
        #expect(paths.count == 2 && any)
        let relay = "forwarding-options { dhcp-relay { server-group { s1 { 192.0.2.9; } } } }"
        #expect(finding("CVE-2024-39526", model: "mx304", version: "22.2R3-S1", configuration: relay)?.verdict == .exposed)
        // A sample of several statements is not "every one of them required".
        let lldp = ConfigurationRequirement(advisory: ReportsTestData.advisory("CVE-2024-30380"))
        #expect(lldp.absenceCaveat?.contains("sample") == true, "\(String(describing: lldp.absenceCaveat))")
    }

    @Test func aStatementAfterAListKeywordIsNoName() throws {
        let pvlan = try #require(StatementPath("vlans private-vlan isolated"))
        #expect(pvlan.text == "vlans <name> private-vlan isolated", "\(pvlan.text)")
        #expect(pvlan.isPresent(in: ConfigurationTree(text: "vlans { V100 { private-vlan isolated; } }").effective))
        let output = try #require(StatementPath("interfaces <interface> unit <unit> family <family> filter output <filter_name>"))
        #expect(!output.isPresent(in: ConfigurationTree(text: "interfaces { ge-0/0/0 { unit 0 { family inet { filter { input f1; } } } } }").effective))
        #expect(output.isPresent(in: ConfigurationTree(text: "interfaces { ge-0/0/0 { unit 0 { family inet { filter { output f1; } } } } }").effective))
    }

    @Test func interfaceStatementsAlsoSitOnTheUnit() throws {
        let pppoe = try #require(StatementPath("interfaces <name> encapsulation ppp-over-ether"))
        #expect(pppoe.isPresent(in: ConfigurationTree(text: "interfaces { ge-0/0/1 { unit 0 { encapsulation ppp-over-ether; } } }").effective))
        #expect(!pppoe.isPresent(in: ConfigurationTree(text: "interfaces { ge-0/0/1 { unit 0 { family inet; } } }").effective))
    }

    @Test func seriesAndLineCardsAsInventoriesSpellThem() {
        func card(_ name: String, _ description: String, _ model: String? = nil) -> ChassisInventory {
            ChassisInventory(chassis: [InventoryChassis(description: "chassis", modules: [
                InventoryItem(name: name, partNumber: "750-000000", serialNumber: "X1", description: description, modelNumber: model),
            ])])
        }
        #expect(PlatformMatch.check(["EX9200"], source: "platforms", model: "ex9208", inventory: nil).isMatch)
        #expect(!PlatformMatch.check(["EX9200"], source: "platforms", model: "ex4300-48t", inventory: nil).isMatch)
        #expect(PlatformMatch.check(["EX9200-15C"], source: "platforms", model: "ex9208", inventory: card("FPC 3", "EX9200-15C")).isMatch)
        #expect(!PlatformMatch.check(["EX9200-15C"], source: "platforms", model: "ex9208", inventory: card("FPC 3", "EX9200-40T")).isMatch)
        // SPC2 is "SRX5k SPC II" in inventories, and "SPC II" is not "SPC III".
        #expect(PlatformMatch.check(["SRX 5000 Series with SPC2"], source: "platforms", model: "srx5800", inventory: card("FPC 2", "SRX5k SPC II", "SRX5K-SPC-4-15-320")).isMatch)
        #expect(!PlatformMatch.check(["SRX 5000 Series with SPC2"], source: "platforms", model: "srx5800", inventory: card("FPC 2", "SRX5k SPC III", "SRX5K-SPC3")).isMatch)
        // "MX Series with MPC10", "MPC11", "LC9600": the bare cards join the entry.
        #expect(PlatformMatch.check(["MX Series with MPC10", "MPC11", "LC9600"], source: "platforms", model: "mx2020", inventory: card("FPC 0", "MPC11E 3D 40x100GE", "MX2K-MPC11E")).isMatch)
    }

    @Test func aReleaseBetweenTheFixesOfTwoLinesOfAnXTrainIsUndecided() {
        let range = AffectedRange(status: .affected, start: JunosVersion("15.1X53"),
                                  fixes: ["15.1X53-D63", "15.1X53-D70", "15.1X53-D230"].map { .release(JunosVersion($0)) }, text: "15.1X53 < D63, D70, D230")
        guard case .undecidable = range.place(JunosVersion("15.1X53-D210.3")) else { Issue.record("D210 must be undecided"); return }
        guard case .undecidable = range.place(JunosVersion("15.1X53-D65")) else { Issue.record("D65 must be undecided"); return }
        #expect(range.place(JunosVersion("15.1X53-D50")) == .inside(.affected))
        #expect(range.place(JunosVersion("15.1X53-D230")) == .outside && range.place(JunosVersion("15.1X53-D70")) == .outside)
        #expect(finding("CVE-2017-2312", model: "qfx10002-36q", version: "15.1X53-D210.3")?.verdict == .possiblyExposed)
    }

    @Test func anUnaffectedBeforeCarveOutDecides() {
        // CVE-2023-36831: "unaffected: unspecified < 22.2R2" beside "affected: 22.2 < 22.2R3".
        #expect(finding("CVE-2023-36831", model: "srx345", version: "22.2R1.9") == nil)
        #expect(finding("CVE-2023-36831", model: "srx345", version: "22.2R2-S1") != nil)
    }

    /// A device whose release is not known was counted as 163 "unaffected pairs" and looked clean.
    @Test func aDeviceWithNoKnownReleaseIsNotEvaluatedNotClean() throws {
        var unknown = ReportsTestData.device("mystery", versions: ["21.4R3-S5"])
        unknown.facts.software = nil
        let report = BugReport(devices: [unknown, ReportsTestData.device("known", versions: ["21.4R3-S5"])], data: ReportsTestData.shipped)
        #expect(report.notEvaluated.map(\.device) == ["mystery"])
        #expect(report.unaffectedCount + report.findings.count == ReportsTestData.shipped.advisories.count, "only the known device's pairs")
        #expect(try ReportRenderer.render(report, as: .text).contains("NOT EVALUATED mystery: its software release is not known"))
        #expect(try ReportRenderer.render(report, as: .html).contains("<h2>Devices not evaluated</h2>"))
    }

    @Test func aDevelopmentBuildOfATrainNoRangeTouchesIsUnaffected() {
        #expect(finding("CVE-2025-21598", model: "mx240", version: "14.2-20141220.0") == nil)
        // One whose train the ranges do touch stays undecided.
        #expect(finding("CVE-2024-39565", model: "srx345", version: "21.4-20230101.0",
                        configuration: "system { services { web-management { https; } } }")?.verdict == .possiblyExposed)
    }
}

extension PlatformVerdict {
    var isMatch: Bool { if case .matches = self { true } else { false } }
}
