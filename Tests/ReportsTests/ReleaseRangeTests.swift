import Foundation
import Junos
@testable import Reports
import Testing

/// Release ordering and CVE 5 range evaluation, built from the records' own ranges and prose.
@Suite struct ReleaseRangeTests {
    func v(_ s: String) -> JunosVersion { JunosVersion(s) }

    /// Where `version` stands against every `product` entry of the record matching its EVO-ness.
    func status(_ advisory: Advisory, _ version: String, platformIndex: Int? = nil) -> String {
        let release = v(version)
        let products = platformIndex.map { [advisory.affected[$0]] } ?? advisory.affected.filter { $0.isEvolved == release.isEvolved }
        var results: [String] = []
        for product in products {
            switch BugMatcher.place(release, in: product) {
            case .affected: results.append("affected")
            case .unaffected: results.append("unaffected")
            case .undecidable: results.append("undecidable")
            }
        }
        if results.contains("affected") { return "affected" }
        if results.contains("undecidable") { return "undecidable" }
        return "unaffected"
    }

    @Test func everyReleaseFormOfTheRecordsAndFixturesOrders() {
        // Each list is in Juniper's order.
        let chains: [[String]] = [
            ["12.3R12", "12.3R12-S1", "12.3R12-S15", "12.3R13"],
            ["15.1X49-D160.2", "15.1X49-D170", "15.1X49-D180"],
            ["21.4R2", "21.4R2-S3", "21.4R3", "21.4R3-S5", "21.4R3-S5.4", "21.4R3-S6"],
            ["22.4R2", "22.4R2-S2", "22.4R3"],
            ["17.3-2017-07-02.0_RELEASE_173_THROTTLE", "17.3R1", "17.4R1"],
            ["15.1R7", "15.1F5", "15.1X49-D10"],
        ]
        for chain in chains {
            for (a, b) in zip(chain, chain.dropFirst()) { #expect(v(a) < v(b), "\(a) < \(b)") }
        }
        #expect(v("23.2R1-S1-EVO").isEvolved && v("23.2R1-S1-EVO").serviceRelease == 1 && v("23.2R1-S1-EVO").train == "23.2")
    }

    @Test func commaListOfFixPointsIsFixedOnEachBranch() {
        // CVE-2019-0068: 17.4 versions prior to 17.4R2-S5, 17.4R3.
        let a = ReportsTestData.advisory("CVE-2019-0068")
        #expect(status(a, "17.4R1-S3") == "affected")
        #expect(status(a, "17.4R2-S4") == "affected")
        #expect(status(a, "17.4R2-S5") == "unaffected")
        #expect(status(a, "17.4R2-S9.2") == "unaffected")
        #expect(status(a, "17.4R3") == "unaffected")
        // "17.3" with no bound: every 17.3 release.
        #expect(status(a, "17.3R3-S1") == "affected")
        // X trains: 15.1X49 before D180.
        #expect(status(a, "15.1X49-D170.4") == "affected")
        #expect(status(a, "15.1X49-D180") == "unaffected")
        // A train the record does not list: defaultStatus absent, read as unaffected.
        #expect(status(a, "16.1R7") == "unaffected")
        // Nearest fix for the device's branch.
        let product = a.affected[0]
        #expect(BugMatcher.nearestFix(for: v("17.4R2-S1"), advisory: a, product: product) == "17.4R2-S5")
        #expect(BugMatcher.nearestFix(for: v("17.4R1"), advisory: a, product: product) == "17.4R2-S5")
        #expect(BugMatcher.nearestFix(for: v("15.1X49-D170.4"), advisory: a, product: product) == "15.1X49-D180")
        #expect(BugMatcher.nearestFix(for: v("18.2R2-S1"), advisory: a, product: product) == "18.2R2-S4")
        #expect(status(a, "18.2R3-S1") == "unaffected")
    }

    @Test func wholeTrainWildcardsChangesAndDefaultStatus() {
        // CVE-2023-4481: 21.4 affected before 21.4R3-S7, but unaffected at 21.4R3-S5 and affected again at S6.
        let a = ReportsTestData.advisory("CVE-2023-4481")
        #expect(status(a, "21.4R3-S4") == "affected")
        #expect(status(a, "21.4R3-S5.4") == "unaffected")
        #expect(status(a, "21.4R3-S6") == "affected")
        #expect(status(a, "21.4R3-S7") == "unaffected")
        // `version 21.1R1, lessThanOrEqual 21.*`: all of 21.1.
        #expect(status(a, "21.1R3-S4") == "affected")
        // defaultStatus affected would mark 23.4R1 (a listed fix) affected: read as unaffected, flagged.
        #expect(status(a, "23.4R1") == "unaffected")
        #expect(a.warnings.contains { $0.kind == .defaultStatusMarksFixed })
        // -EVO ranges apply to Evolved releases only.
        #expect(status(a, "21.4R3-S4-EVO") == "affected")
        #expect(status(a, "21.4R3-S5-EVO") == "unaffected")
        #expect(status(a, "22.4R3-EVO") == "unaffected")

        // CVE-2023-36833: lessThan "21.2*" covers the whole 21.2 train.
        let b = ReportsTestData.advisory("CVE-2023-36833")
        let wildcard = b.affected.flatMap(\.ranges).first { $0.text.contains("*") }
        #expect(wildcard != nil)
        if let wildcard, let start = wildcard.start {
            let inTrain = JunosVersion("\(start.major!).\(start.minor!)R3-S9")
            #expect(wildcard.place(inTrain) == .inside(.affected), "\(wildcard.text) \(inTrain)")
        }
        // CVE-2024-21605: {"status":"unaffected","version":"21.4","lessThan":"21.4*"}.
        let c = ReportsTestData.advisory("CVE-2024-21605")
        #expect(c.affected.flatMap(\.ranges).contains { $0.status == .unaffected && $0.text == "21.4 < 21.4*" })
        #expect(status(c, "21.4R3-S5") == "unaffected")
    }

    @Test func startPointsThatAreServiceReleases() {
        // CVE-2024-21605: version 21.2R3-S3, lessThan 21.2R3-S6: introduced in a service release.
        let c = ReportsTestData.advisory("CVE-2024-21605")
        let range = c.affected.flatMap(\.ranges).first { $0.text == "21.2R3-S3 < 21.2R3-S6" }
        #expect(range != nil)
        #expect(range?.place(v("21.2R3-S2")) == .outside)
        #expect(range?.place(v("21.2R3-S3")) == .inside(.affected))
        #expect(range?.place(v("21.2R3-S5.2")) == .inside(.affected))
        #expect(range?.place(v("21.2R3-S6")) == .outside)
    }

    @Test func undecidableReleasesAreReportedNeverGuessed() throws {
        // An X-train release against a bound on the R train of the same major.minor.
        let range = AffectedRange(status: .affected, start: nil, fixes: [.release(v("15.1R7-S4"))], text: "0 < 15.1R7-S4")
        guard case .undecidable = range.place(v("15.1X49-D100")) else { Issue.record("X vs R must be undecidable"); return }
        // A bound that is not a release (CVE-2023-28985: SigPack 3598).
        let sigpack = ReportsTestData.advisory("CVE-2023-28985")
        #expect(status(sigpack, "21.4R3") == "undecidable")
        // Development builds have no place in advisory ranges.
        #expect(v("17.3-2017-07-02.0_RELEASE_173_THROTTLE").rangeProblem != nil)
        // A dated nightly with a release letter and no number (a vPTX capture): read as 15.1F it
        // was "affected, fixed in 15.1F2-S14"; no advisory range can place it.
        #expect(v("15.1F-20151115.0").rangeProblem?.contains("development build") == true)
        #expect(v("15.1F6-S5.1").rangeProblem == nil && v("15.1X49-D170.4").rangeProblem == nil)
        let device = ReportsTestData.device(model: "srx345", versions: ["17.3-2017-07-02.0_RELEASE_173_THROTTLE"])
        let finding = BugMatcher.evaluate(ReportsTestData.advisory("CVE-2019-0068"), requirement: ConfigurationRequirement(prose: nil), on: device)
        #expect(finding?.verdict == .possiblyExposed)
        #expect(finding?.reason.contains("development build") == true, "\(finding?.reason ?? "")")
    }

    /// Every range of every record: its fix points are outside it (or unaffected), and the release
    /// just before each fix on the same branch is inside.
    @Test func everyRecordsOwnFixPointsBoundItsRanges() {
        var checked = 0
        for advisory in ReportsTestData.shipped.advisories {
            for product in advisory.affected {
                for range in product.ranges where range.status == .affected && range.unreadable == nil && range.warning == nil && range.changes.isEmpty {
                    for case let .release(fix) in range.fixes where fix.type == .release || fix.type == .specialTrain {
                        #expect(range.place(fix) == .outside, "\(advisory.cve) \(range.text): fix \(fix.raw) must be outside")
                        guard let before = predecessor(fix) else { continue }
                        if let start = range.start, before < start { continue }
                        // Only where this fix is the one that decides (not an earlier fix of the list on that branch).
                        guard range.nearestFix(for: before) == .release(fix) else { continue }
                        #expect(range.place(before) == .inside(.affected), "\(advisory.cve) \(range.text): \(before.raw) must be inside")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 500, "only \(checked) fix points checked")
    }

    /// The records' prose ("21.4 versions before 21.4R3-S5"): the fix is unaffected, the release
    /// before it affected, on every record whose ranges were not flagged.
    @Test func everyRecordsProseAgreesWithTheEvaluation() {
        var checked = 0
        for advisory in ReportsTestData.shipped.advisories where advisory.warnings.isEmpty {
            for described in Advisory.describedRanges(in: advisory.description) where described.fixes.count == 1 {
                let fix = described.fixes[0]
                guard fix.type == .release, let before = predecessor(fix) else { continue }
                if let train = described.train, before.train != train { continue }
                let products = advisory.affected.filter { $0.isEvolved == fix.isEvolved && $0.platforms.isEmpty }
                guard products.count == 1 else { continue }
                let target = described.evolved ? JunosVersion(fix.raw.hasSuffix("-EVO") ? fix.raw : fix.raw + "-EVO") : fix
                let earlier = described.evolved ? JunosVersion(before.raw + "-EVO") : before
                if case .affected = BugMatcher.place(target, in: products[0]) {
                    Issue.record("\(advisory.cve): \(target.raw) is a fix by the description but evaluates affected")
                }
                if case .affected = BugMatcher.place(earlier, in: products[0]) {} else {
                    Issue.record("\(advisory.cve): \(earlier.raw) is before the fix \(fix.raw) but does not evaluate affected")
                }
                checked += 1
            }
        }
        #expect(checked > 100, "only \(checked) prose statements checked")
        // "all versions of 21.1" style: 21.1 (bare train, no bound) in CVE-2019-0068's "17.3 versions".
        let bare = ReportsTestData.advisory("CVE-2019-0068").affected[0].ranges.first { $0.text == "17.3" }
        #expect(bare?.place(JunosVersion("17.3R1")) == .inside(.affected))
        #expect(bare?.place(JunosVersion("17.4R1")) == .outside)
    }

    /// The release just before `fix` on its branch: S(n-1), R(n-1), D(n-1); nil when there is none.
    func predecessor(_ fix: JunosVersion) -> JunosVersion? {
        let evo = fix.isEvolved ? "-EVO" : ""
        guard let major = fix.major, let minor = fix.minor else { return nil }
        if fix.type == .specialTrain, let x = fix.specialTrain, let d = fix.dRelease, d > 1 {
            return JunosVersion("\(major).\(minor)X\(x)-D\(d - 1)\(evo)")
        }
        guard fix.type == .release, let r = fix.maintenance else { return nil }
        if let s = fix.serviceRelease {
            if fix.build != nil { return JunosVersion("\(major).\(minor)R\(r)-S\(s)\(evo)") }
            return s > 1 ? JunosVersion("\(major).\(minor)R\(r)-S\(s - 1)\(evo)") : JunosVersion("\(major).\(minor)R\(r)\(evo)")
        }
        if fix.build != nil { return nil }
        return r > 1 ? JunosVersion("\(major).\(minor)R\(r - 1)\(evo)") : nil
    }
}
