import Foundation
import Junos
@testable import Reports
import Testing

/// Records whose ranges contradict one another or their own prose, read the way the prose
/// and the solution say, with a warning; where nothing says which way, undecidable.
@Suite struct RangeContradictionTests {
    func outcome(_ advisory: Advisory, _ version: String) -> String {
        let release = JunosVersion(version)
        let outcomes = advisory.affected.filter { $0.isEvolved == release.isEvolved }.map { BugMatcher.place(release, in: $0) }
        if outcomes.contains(where: { if case .affected = $0 { true } else { false } }) { return "affected" }
        if outcomes.contains(where: { if case .undecidable = $0 { true } else { false } }) { return "undecidable" }
        return "unaffected"
    }

    /// CVE-2023-0026 writes `22.2 < 22.3R2-S2, 22.3R3-S1` and `22.3 < 22.2R3-S2`; its description
    /// and solution say 22.2 is fixed in 22.2R3-S2 and 22.3 in 22.3R2-S2 / 22.3R3-S1.
    @Test func boundsWrittenOnEachOthersLinesAreExchanged() throws {
        let advisory = ReportsTestData.advisory("CVE-2023-0026")
        #expect(advisory.description.contains("22.2 versions prior to 22.2R3-S2;"))
        #expect(advisory.solutionReleases.map(\.raw).contains("22.2R3-S2"))
        let warning = try #require(advisory.warnings.first { $0.kind == .swappedBounds })
        #expect(warning.reading == "read as 22.2 < 22.2R3-S2 and 22.3 < 22.3R2-S2, 22.3R3-S1 (as the description says)", "\(warning.text)")
        // The cross-train reading of the second line alone is replaced, not kept beside it.
        #expect(!advisory.warnings.contains { $0.kind == .crossTrainRange })
        #expect(outcome(advisory, "22.2R3-S2.8") == "unaffected")
        #expect(outcome(advisory, "22.2R3-S1.3") == "affected")
        #expect(outcome(advisory, "22.3R2-S1") == "affected")
        #expect(outcome(advisory, "22.3R2-S2.5") == "unaffected")
        #expect(outcome(advisory, "22.3R3.8") == "affected")
        #expect(outcome(advisory, "22.3R3-S1.3") == "unaffected")
        // The row names the fix of the device's own train, and carries the warning.
        let device = ReportsTestData.device(versions: ["22.2R3-S1.3"], configuration: "protocols { bgp { group g { neighbor 192.0.2.1; } } }")
        let finding = try #require(BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(advisory: advisory), on: device))
        #expect(finding.fixedIn == "22.2R3-S2")
        #expect(finding.dataWarning?.hasPrefix("swapped-bounds:") == true, "\(finding.dataWarning ?? "")")
        // The Evolved entries are written correctly and are left alone.
        #expect(outcome(advisory, "22.2R3-S2-EVO") == "unaffected" && outcome(advisory, "22.2R3-S1-EVO") == "affected")
    }

    /// `unaffected unspecified < 15.1R1` within `affected unspecified < 20.4R3-S8`: the narrower
    /// range is the more specific statement (the description: "15.1R1 and later versions").
    @Test func theNarrowerOfAnAffectedAndAnUnaffectedRangeDecides() throws {
        let advisory = ReportsTestData.advisory("CVE-2023-0026")
        #expect(advisory.description.contains("15.1R1 and later versions prior to 20.4R3-S8"))
        #expect(outcome(advisory, "12.3R12-S15.1") == "unaffected")
        #expect(outcome(advisory, "14.1X53-D47.4") == "unaffected")
        #expect(outcome(advisory, "15.1R7-S6") == "affected")
        #expect(outcome(advisory, "20.4R3-S7") == "affected")
        // Neither within the other: undecidable, with a warning naming both.
        let (overlap, _) = try ReportsTestData.parse(ReportsTestData.record(affected: [[
            "product": "Junos OS", "defaultStatus": "unaffected",
            "versions": [["status": "affected", "version": "21.4", "lessThan": "21.4R3"],
                         ["status": "unaffected", "version": "21.4R2", "lessThan": "22.1R1"]],
        ]]))
        guard case let .undecidable(why, warning) = BugMatcher.place(JunosVersion("21.4R2-S1"), in: overlap.affected[0]) else {
            Issue.record("a release in crossing affected and unaffected ranges must be undecidable"); return
        }
        #expect(why.contains("21.4 < 21.4R3") && why.contains("21.4R2 < 22.1R1"), "\(why)")
        #expect(warning?.kind == .conflictingStatus && warning?.cve == "CVE-2099-0001")
        #expect(outcome(overlap, "21.4R1") == "affected" && outcome(overlap, "21.4R3-S1") == "unaffected")
        let finding = try #require(BugMatcher.evaluate(overlap, requirement: ConfigurationRequirement(prose: nil), on: ReportsTestData.device(versions: ["21.4R2-S1"])))
        #expect(finding.verdict == .possiblyExposed && finding.dataWarning?.hasPrefix("conflicting-status:") == true)
    }

    /// 15.1F (feature) releases are not ordered against 15.1R releases: `15.1 < 15.1R7-S9` is
    /// undecidable for them, as X trains are, never silently unaffected.
    @Test func featureReleasesAgainstRBoundsAreUndecidable() throws {
        let overlayd = ReportsTestData.advisory("CVE-2021-0254")
        #expect(overlayd.affected[0].ranges.contains { $0.text == "15.1 < 15.1R7-S9" })
        #expect(outcome(overlayd, "15.1F6-S4.2") == "undecidable")
        #expect(outcome(overlayd, "15.1F5.15") == "undecidable")
        #expect(outcome(overlayd, "15.1R7-S8.1") == "affected" && outcome(overlayd, "15.1R7-S9") == "unaffected")
        let finding = try #require(BugMatcher.evaluate(overlayd, requirement: ConfigurationRequirement(advisory: overlayd),
                                                       on: ReportsTestData.device(versions: ["15.1F6-S4.2"])))
        #expect(finding.verdict == .possiblyExposed && finding.reason.contains("F (feature) and an R release"), "\(finding.reason)")
        // F and R fix points on one line (CVE-2017-2312: 15.1F2-S14, 15.1F6-S4, 15.1F7, 15.1R4-S7, 15.1R5):
        // each release is placed against its own kind.
        let ldp = ReportsTestData.advisory("CVE-2017-2312")
        #expect(ldp.affected[0].ranges.contains { $0.text.contains("15.1F6-S4") && $0.text.contains("15.1R5") })
        #expect(outcome(ldp, "15.1R7") == "unaffected")
        #expect(outcome(ldp, "15.1R4-S6") == "affected")
        #expect(outcome(ldp, "15.1F6-S3") == "affected" && outcome(ldp, "15.1F6-S4") == "unaffected")
    }

    /// `lessThanOrEqual` holds the builds of its bound; a bound the solution calls fixed is flagged.
    @Test func anInclusiveBoundHoldsItsBuilds() throws {
        // CVE-2024-30406: 23.1R1-EVO <= 23.2R2-EVO; its solution lists 23.2R2-EVO as fixed.
        let paa = ReportsTestData.advisory("CVE-2024-30406")
        #expect(paa.affected[0].ranges.map(\.text) == ["23.1R1-EVO <= 23.2R2-EVO"])
        #expect(paa.solutionReleases.map(\.raw).contains("23.2R2-EVO"))
        #expect(outcome(paa, "23.2R2-EVO") == "affected")
        #expect(outcome(paa, "23.2R2.21-EVO") == "affected")
        #expect(outcome(paa, "23.2R2-S1-EVO") == "unaffected")
        let warning = try #require(paa.warnings.first { $0.kind == .boundListedAsFixed })
        #expect(warning.detail.contains("23.2R2-EVO") && warning.reading.hasPrefix("read as the range says"))
    }
}
