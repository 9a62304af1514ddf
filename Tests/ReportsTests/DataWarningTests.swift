import Foundation
import Junos
@testable import Reports
import Testing
import TestSupport

/// Records that contradict themselves are flagged with what is inconsistent and how they were
/// read; malformed data is reported by file and field and skipped, never fatal.
@Suite struct DataWarningTests {
    func kinds(_ cve: String) -> Set<DataWarning.Kind> { Set(ReportsTestData.advisory(cve).warnings.map(\.kind)) }

    @Test func contradictionsInTheShippedRecordsAreFlagged() {
        // lessThanOrEqual 18.1R3-S9 while the description says "prior to 18.1R3-S9": read as before.
        #expect(kinds("CVE-2020-1617").contains(.disagreesWithDescription))
        let range = ReportsTestData.advisory("CVE-2020-1617").affected[0].ranges.first { $0.start?.train == "18.1" }
        #expect(range?.place(JunosVersion("18.1R3-S9")) == .outside)
        #expect(range?.place(JunosVersion("18.1R3-S8")) == .inside(.affected))
        // 14.2 < 14.1X53-D130: bounded before its start.
        #expect(kinds("CVE-2018-0050").contains(.crossTrainRange))
        // defaultStatus affected would mark listed fixes affected.
        #expect(kinds("CVE-2023-4481").contains(.defaultStatusMarksFixed))
        // "16.2R1 and all subsequent releases have a resolution" with status affected.
        #expect(kinds("CVE-2017-2312").contains(.fixStatementMarkedAffected))
        // lessThan "SigPack 3598".
        #expect(kinds("CVE-2023-28985").contains(.nonReleaseBound))
        // Each warning says how it was read.
        for advisory in ReportsTestData.shipped.advisories {
            for warning in advisory.warnings {
                #expect(warning.reading.hasPrefix("read as") || warning.reading.contains("reported as undecidable"), "\(warning.text)")
            }
        }
    }

    @Test func swappedEmptyAndUnreadableRangesAreFlagged() throws {
        let (swapped, _) = try ReportsTestData.parse(ReportsTestData.record(affected: [[
            "product": "Junos OS", "defaultStatus": "unaffected",
            "versions": [["status": "affected", "version": "21.4R3-S5", "lessThan": "21.4R2", "versionType": "semver"]],
        ]]))
        #expect(swapped.warnings.map(\.kind) == [.swappedRange])
        #expect(swapped.warnings[0].reading == "read as 21.4R2 up to 21.4R3-S5 (exclusive)")
        #expect(swapped.affected[0].ranges[0].place(JunosVersion("21.4R3")) == .inside(.affected))

        let (empty, _) = try ReportsTestData.parse(ReportsTestData.record(affected: [[
            "product": "Junos OS", "defaultStatus": "unaffected",
            "versions": [["status": "affected", "version": "22.2R3", "lessThan": "22.2R3"]],
        ]]))
        #expect(empty.warnings.map(\.kind) == [.emptyRange])
        #expect(BugMatcher.place(JunosVersion("22.2R3"), in: empty.affected[0]).isUnaffected)

        let (freeText, _) = try ReportsTestData.parse(ReportsTestData.record(affected: [[
            "product": "Junos OS", "versions": [["status": "affected", "version": "some 19.1 builds on odd days"]],
        ]]))
        #expect(freeText.warnings.map(\.kind) == [.unreadableVersion])
    }

    @Test func verdictsRestingOnAWarningCarryIt() {
        // 18.1R3-S8 on a PTX1000 is affected by CVE-2020-1617 through the re-read range.
        let device = ReportsTestData.device(model: "ptx1000", versions: ["18.1R3-S8.1"], configuration: "firewall { policer p1 { } }\nprotocols { sflow { } }")
        let advisory = ReportsTestData.advisory("CVE-2020-1617")
        let finding = BugMatcher.evaluate(advisory, requirement: ConfigurationRequirement(prose: advisory.configurationText), on: device)
        #expect(finding?.dataWarning?.hasPrefix("disagrees-with-description:") == true, "\(String(describing: finding))")
    }

    @Test func malformedRecordsAndRowsAreReportedByFileAndFieldAndSkipped() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("juniper-advisories"), withIntermediateDirectories: true)
        for name in ["junos-release-milestones.tsv", "junos-release-milestone-exceptions.tsv", "hardware-eol-detail.tsv"] {
            var text = try String(contentsOf: ReportsTestData.dataDirectory.appendingPathComponent(name), encoding: .utf8)
            if name == "junos-release-milestones.tsv" { text += "99.9\tnot-a-date\t2030-01-01\t2031-01-01\tEOL\ttest\nshort row\n" }
            try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try fm.copyItem(at: ReportsTestData.dataDirectory.appendingPathComponent("juniper-advisories/CVE-2023-4481.json"),
                        to: dir.appendingPathComponent("juniper-advisories/CVE-2023-4481.json"))
        try fm.copyItem(at: ReportsTestData.dataDirectory.appendingPathComponent("juniper-advisories/SHA256SUMS"),
                        to: dir.appendingPathComponent("juniper-advisories/SHA256SUMS"))
        try Data("{ not json".utf8).write(to: dir.appendingPathComponent("juniper-advisories/CVE-2099-0001.json"))
        try ReportsTestData.record(cve: "CVE-2099-0002", affected: [[
            "product": "Junos OS",
            "versions": [["status": "sometimes", "version": "21.4"], ["status": "affected", "version": "22.1", "lessThan": "22.1R3"]],
        ]]).write(to: dir.appendingPathComponent("juniper-advisories/CVE-2099-0002.json"))

        var data = try ReferenceData.load(directory: dir)
        #expect(data.advisories.map(\.cve).sorted() == ["CVE-2023-4481", "CVE-2099-0002"])
        // The published record matches its checksum; the new one is read but reported.
        #expect(!data.problems.contains { $0.file.hasSuffix("CVE-2023-4481.json") })
        #expect(data.problems.contains { $0.description == "juniper-advisories/CVE-2099-0002.json: sha256: not listed in juniper-advisories/SHA256SUMS; read anyway" })
        let problems = data.problems.map(\.description)
        #expect(problems.contains("juniper-advisories/CVE-2099-0001.json: (document): not a JSON object; record skipped"), "\(problems)")
        #expect(problems.contains("juniper-advisories/CVE-2099-0002.json: containers.cna.affected[0].versions[0].status: \"sometimes\" is not affected, unaffected or unknown; entry skipped"), "\(problems)")
        #expect(problems.contains { $0.hasPrefix("junos-release-milestones.tsv: line ") && $0.contains("frs_date: \"not-a-date\" is not a YYYY-MM-DD date") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("junos-release-milestones.tsv: line ") && $0.contains("1 fields, the header has 6; row skipped") }, "\(problems)")
        // The good parts still work: the second range of the damaged record, and 99.9's other dates.
        #expect(data.advisories.first { $0.cve == "CVE-2099-0002" }?.affected[0].ranges.count == 1)
        #expect(data.milestones["99.9"]?.endOfSupport == LifecycleDate("2031-01-01"))

        // An edited published record: still read, and reported.
        let edited = dir.appendingPathComponent("juniper-advisories/CVE-2023-4481.json")
        try (try String(contentsOf: edited, encoding: .utf8)).replacingOccurrences(of: "BGP UPDATE", with: "BGP update").write(to: edited, atomically: true, encoding: .utf8)
        data = try ReferenceData.load(directory: dir)
        #expect(data.advisories.contains { $0.cve == "CVE-2023-4481" })
        #expect(data.problems.contains { $0.description == "juniper-advisories/CVE-2023-4481.json: sha256: differs from juniper-advisories/SHA256SUMS (edited or replaced); read anyway" })

        // A missing directory is the one fatal case, with a message naming it.
        #expect(throws: ReferenceDataError.self) { try ReferenceData.load(directory: dir.appendingPathComponent("nope")) }
    }
}

extension BugMatcher.ReleaseOutcome {
    var isUnaffected: Bool { if case .unaffected = self { true } else { false } }
}
