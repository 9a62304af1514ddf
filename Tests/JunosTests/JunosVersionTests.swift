import Foundation
import Junos
import Testing

@Suite struct JunosVersionTests {
    /// One expected decomposition; nil fields must be nil.
    struct Case: CustomTestStringConvertible, Sendable {
        var text: String
        var major: Int?, minor: Int?
        var type: JunosVersion.ReleaseType?
        var specialTrain: Int? = nil
        var maintenance: Int? = nil
        var dRelease: Int? = nil
        var serviceRelease: Int? = nil
        var build: Int? = nil
        var label: String? = nil
        var suffix: String? = nil
        var evo = false
        var train: String?
        var testDescription: String { text }
    }

    static let cases: [Case] = [
        Case(text: "12.3R12-S15", major: 12, minor: 3, type: .release, maintenance: 12, serviceRelease: 15, train: "12.3"),
        Case(text: "15.1X49-D160.2", major: 15, minor: 1, type: .specialTrain, specialTrain: 49, dRelease: 160, build: 2, train: "15.1X49"),
        Case(text: "18.4R1-S7.1", major: 18, minor: 4, type: .release, maintenance: 1, serviceRelease: 7, build: 1, train: "18.4"),
        Case(text: "21.4R3-S5.4", major: 21, minor: 4, type: .release, maintenance: 3, serviceRelease: 5, build: 4, train: "21.4"),
        Case(text: "22.4R2-S2", major: 22, minor: 4, type: .release, maintenance: 2, serviceRelease: 2, train: "22.4"),
        Case(text: "23.2R1-S1-EVO", major: 23, minor: 2, type: .release, maintenance: 1, serviceRelease: 1, evo: true, train: "23.2"),
        Case(text: "23.2R1-S1.6-EVO", major: 23, minor: 2, type: .release, maintenance: 1, serviceRelease: 1, build: 6, evo: true, train: "23.2"),
        Case(text: "14.1X53-D47.4", major: 14, minor: 1, type: .specialTrain, specialTrain: 53, dRelease: 47, build: 4, train: "14.1X53"),
        Case(text: "12.3X48-D40.5", major: 12, minor: 3, type: .specialTrain, specialTrain: 48, dRelease: 40, build: 5, train: "12.3X48"),
        Case(text: "12.1X46-D65", major: 12, minor: 1, type: .specialTrain, specialTrain: 46, dRelease: 65, train: "12.1X46"),
        Case(text: "15.1F5.15-C1.12", major: 15, minor: 1, type: .feature, maintenance: 5, build: 15, suffix: "-C1.12", train: "15.1"),
        Case(text: "15.1F5.7", major: 15, minor: 1, type: .feature, maintenance: 5, build: 7, train: "15.1"),
        Case(text: "15.1F-20151115.0", major: 15, minor: 1, type: .feature, build: 0, label: "20151115", train: "15.1"),
        Case(text: "16.1-20160720.0", major: 16, minor: 1, type: .development, build: 0, label: "20160720", train: "16.1"),
        Case(text: "17.4-20170706_dev_common.0", major: 17, minor: 4, type: .development, build: 0, label: "20170706_dev_common", train: "17.4"),
        Case(text: "17.4-20170718_dev_common.1-secure", major: 17, minor: 4, type: .development, build: 1, label: "20170718_dev_common", suffix: "-secure", train: "17.4"),
        Case(text: "15.2I20151126_0126_dsatya", major: 15, minor: 2, type: .internalBuild, label: "20151126_0126_dsatya", train: "15.2"),
        Case(text: "13.3R9-S2.1", major: 13, minor: 3, type: .release, maintenance: 9, serviceRelease: 2, build: 1, train: "13.3"),
        Case(text: "11.4R1.6", major: 11, minor: 4, type: .release, maintenance: 1, build: 6, train: "11.4"),
        Case(text: "14.2R4", major: 14, minor: 2, type: .release, maintenance: 4, train: "14.2"),
        Case(text: "14.1B2.3", major: 14, minor: 1, type: .beta, maintenance: 2, build: 3, train: "14.1"),
        Case(text: " 24.4R1.9\n", major: 24, minor: 4, type: .release, maintenance: 1, build: 9, train: "24.4"),
        Case(text: "14.2", major: 14, minor: 2, type: nil, train: "14.2"),
    ]

    @Test("parses every Junos version form", arguments: cases)
    func parses(_ c: Case) {
        let v = JunosVersion(c.text)
        #expect(v.raw == c.text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(v.isParsed)
        #expect(v.major == c.major)
        #expect(v.minor == c.minor)
        #expect(v.type == c.type)
        #expect(v.specialTrain == c.specialTrain)
        #expect(v.maintenance == c.maintenance)
        #expect(v.dRelease == c.dRelease)
        #expect(v.serviceRelease == c.serviceRelease)
        #expect(v.build == c.build)
        #expect(v.developmentLabel == c.label)
        #expect(v.suffix == c.suffix)
        #expect(v.isEvolved == c.evo)
        #expect(v.train == c.train)
    }

    @Test("text that is not a version keeps its raw form", arguments: ["", "ZZZ", "Junos", "v21.4R3", "21", "21.", ".4R3", "JUNOS 21.4"])
    func unparsed(_ text: String) {
        let v = JunosVersion(text)
        #expect(!v.isParsed)
        #expect(v.raw == text)
        #expect(v.major == nil)
        #expect(v.train == nil)
        #expect(v.description == text)
    }

    @Test func optionalInitializerSkipsEmptyText() {
        #expect(JunosVersion(optional: nil) == nil)
        #expect(JunosVersion(optional: "  ") == nil)
        #expect(JunosVersion(optional: "21.4R3")?.maintenance == 3)
    }

    /// Each list is in ascending order; every pair must compare that way.
    static let ascending: [[String]] = [
        ["21.4R3", "21.4R3-S1", "21.4R3-S5.4", "21.4R4"],
        ["21.4R3.13", "21.4R3-S1.3", "21.4R3-S2", "21.4R3-S10.1", "21.4R4.1"],
        ["12.3R12-S15", "13.3R9-S2.1", "18.4R1-S7.1", "21.4R3-S5.4", "22.4R2-S2", "23.2R1-S1-EVO"],
        ["15.1X49-D100.6", "15.1X49-D160.2", "15.1X49-D170"],
        ["12.3X48-D40.5", "12.3X48-D105", "15.1X49-D10"],
        ["11.4R1.6", "11.4R2", "11.4R10"],
        ["15.1F5.7", "15.1F5.15", "15.1F6"],
        ["16.1-20160720.0", "16.1-20160801.0", "16.1R1.11"],
        ["15.1R7", "15.1F5", "15.1X49-D10"],
        ["23.2R1-S1", "23.2R1-S1-EVO", "23.2R1-S2"],
        ["9.6R1", "10.4R1", "12.1X44-D40"],
        ["24.4R1.9", "garbage", "not-a-version"],
    ]

    @Test("orders versions as Juniper numbers them", arguments: ascending)
    func ordering(_ list: [String]) {
        let versions = list.map(JunosVersion.init)
        for i in versions.indices {
            for j in versions.indices where i < j {
                #expect(versions[i] < versions[j], "\(versions[i]) < \(versions[j])")
                #expect(!(versions[j] < versions[i]), "not \(versions[j]) < \(versions[i])")
            }
        }
        #expect(versions.shuffled().sorted() == versions)
    }

    @Test func equalityFollowsTheText() {
        #expect(JunosVersion("21.4R3-S5.4") == JunosVersion(" 21.4R3-S5.4 "))
        #expect(JunosVersion("21.4R3.13") != JunosVersion("21.4R3.14"))
        let a = JunosVersion("15.1F5.15-C1.12"), b = JunosVersion("15.1F5.15")
        #expect(a != b)
        #expect(b < a, "a customer build sorts after the build it is based on")
        #expect(!(a < a))
    }

    @Test func codesAsItsString() throws {
        let v = JunosVersion("15.1X49-D160.2")
        let data = try JSONEncoder().encode(["version": v])
        #expect(String(decoding: data, as: UTF8.self) == #"{"version":"15.1X49-D160.2"}"#)
        let back = try JSONDecoder().decode([String: JunosVersion].self, from: data)
        #expect(back["version"] == v)
        #expect(back["version"]?.dRelease == 160)
    }

    @Test func trainMatchPicksTheVersionsOwnTrainOnly() {
        let table = ["15.1": "mainline", "15.1X49": "x49", "12.3X48": "x48", "21.4": "21.4", "15.10": "wrong", "18.2": "18.2"]
        #expect(JunosVersion("15.1X49-D160.2").trainMatch(in: table)?.value == "x49")
        #expect(JunosVersion("15.1R7-S6").trainMatch(in: table)?.value == "mainline")
        #expect(JunosVersion("15.1F5.15").trainMatch(in: table)?.value == "mainline")
        // An X train without its own key is unknown, not its base train (14.1X53, 18.2X75 have their own dates).
        #expect(JunosVersion("15.1X53-D47.4").trainMatch(in: table) == nil)
        #expect(JunosVersion("18.2X75-D12.5").trainMatch(in: table) == nil)
        #expect(JunosVersion("12.3X48-D40.5").trainMatch(in: table)?.value == "x48")
        #expect(JunosVersion("12.3R12").trainMatch(in: table) == nil)
        #expect(JunosVersion("15.10R1").trainMatch(in: table)?.value == "wrong")
        #expect(JunosVersion("junk").trainMatch(in: table) == nil)
    }

    /// Every version form from the fixtures plus odd text, for the order-law checks.
    static let zoo: [String] = cases.map(\.text) + ascending.flatMap { $0 } + [
        "", "garbage", "14.2", "14.2R", "14.2R-S", "14.2R1-S", "14.2R1-S1-S2", "15.1X", "15.1X49-D", "15.1X49-D1-D2",
        "16.1-2016", "16.1-20160720", "1.2-EVO", "-EVO", "99999999999.1R1", "21.4R3-S5.4-EVO", "21.4R3-S5.4.1",
        "6.0R2-THIN.0", "15.1F-20151115.0", "17.4-20170718_dev_common.1-secure", "15.2I0",
    ]

    @Test func orderIsAStrictTotalOrder() {
        let versions = Self.zoo.map(JunosVersion.init)
        for a in versions {
            #expect(!(a < a), "irreflexive: \(a)")
            for b in versions {
                let relations = [a < b, b < a, a == b].filter { $0 }.count
                #expect(relations == 1, "exactly one of <, >, == for \(a) and \(b)")
            }
        }
        let sorted = versions.sorted()
        for i in sorted.indices.dropFirst() {
            #expect(!(sorted[i] < sorted[i - 1]), "sorted order is consistent at \(sorted[i])")
        }
        for (i, a) in sorted.enumerated() {
            for b in sorted[(i + 1)...] where a != b {
                #expect(a < b, "transitive: \(a) < \(b)")
            }
        }
    }

    @Test func arbitraryTextNeverCrashesAndKeepsItsRawForm() {
        // A fixed-seed generator over the characters versions are made of.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let alphabet = Array("0123456789.RSXDFIBEVO-_ ")
        for _ in 0..<2000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let length = Int(state >> 59)
            var text = ""
            for k in 0..<length {
                let index = Int((state >> UInt64(k % 50)) % UInt64(alphabet.count))
                text.append(alphabet[index])
            }
            let v = JunosVersion(text)
            #expect(v.raw == text.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(v.isParsed == (v.train != nil))
        }
    }

    // PyEZ's SRX cluster capture: a throttle build dated with dashes.
    @Test func dashedDateDevelopmentBuilds() {
        let v = JunosVersion("17.3-2017-07-02.0_RELEASE_173_THROTTLE")
        #expect(v.type == .development)
        #expect(v.developmentLabel == "2017-07-02")
        #expect(v.build == 0)
        #expect(v.suffix == "_RELEASE_173_THROTTLE")
        #expect(JunosVersion("17.3-20170701.0") < v)
        #expect(v < JunosVersion("17.3-20170703.0"))
        #expect(v < JunosVersion("17.3R1"))
        #expect(JunosVersion("17.3-2017-7-02.0").type == nil, "not a date: stays unrecognised")
    }
}
