import Foundation
import Testing
import Junos
import TestSupport
@testable import Bundle

@Suite struct JSONDiffTests {
    func json(_ text: String) throws -> JSONValue { try JSONValue(json: Array(text.utf8)) }

    @Test func listItemsAreMatchedByName() throws {
        let old = try json(#"{"inventory":{"chassis":[{"name":"Chassis","serialNumber":"C1","modules":[{"name":"FPC 0","serialNumber":"A"},{"name":"FPC 1","serialNumber":"B"}]}]}}"#)
        let new = try json(#"{"inventory":{"chassis":[{"name":"Chassis","serialNumber":"C1","modules":[{"name":"FPC 1","serialNumber":"B2"},{"name":"FPC 2","serialNumber":"C"}]}]}}"#)
        let changes = JSONDiff.changes(from: old, to: new)
        #expect(changes.map(\.description) == [
            "- inventory.chassis[name=Chassis].modules[name=FPC 0]: name=\"FPC 0\" serialNumber=A",
            "~ inventory.chassis[name=Chassis].modules[name=FPC 1].serialNumber: B → B2",
            "+ inventory.chassis[name=Chassis].modules[name=FPC 2]: name=\"FPC 2\" serialNumber=C",
        ])
        #expect(changes.allSatisfy { $0.section == "inventory" })
        #expect(changes.map { BundleComparison.label($0) } == ["FRU removed", "FRU serial changed", "FRU added"])
    }

    @Test func withoutAUniqueIdentityListsCompareByPosition() throws {
        let old = try json(#"{"x":[{"v":1},{"v":2}]}"#)
        let new = try json(#"{"x":[{"v":1},{"v":3},{"v":4}]}"#)
        #expect(JSONDiff.changes(from: old, to: new).map(\.description) == ["~ x[1].v: 2 → 3", "+ x[2]: v=4"])
    }

    @Test func scalarListsCompareAsSets() throws {
        let old = try json(#"{"configuration":{"features":["bgp","ospf"]}}"#)
        let new = try json(#"{"configuration":{"features":["ospf","isis","bgp"]}}"#)
        #expect(JSONDiff.changes(from: old, to: new).map(\.description) == ["+ configuration.features: isis"])
    }

    @Test func alarmsRaisedAndClearedAndNewCores() throws {
        let old = try json(#"{"chassisAlarms":{"sections":[{"alarms":[{"alarmClass":"Minor","description":"PEM 0 Not OK"}]}]},"coreDumps":{"sections":[{"files":[]}]}}"#)
        let new = try json(#"{"chassisAlarms":{"sections":[{"alarms":[{"alarmClass":"Major","description":"FPC 1 Hard errors"}]}]},"coreDumps":{"sections":[{"files":[{"name":"/var/crash/rpd.core.0.gz","size":1024}]}]}}"#)
        let labels = JSONDiff.changes(from: old, to: new).map { "\(BundleComparison.label($0)) \($0.path)" }
        #expect(labels == [
            "alarm cleared chassisAlarms.sections[0].alarms[description=PEM 0 Not OK]",
            "alarm raised chassisAlarms.sections[0].alarms[description=FPC 1 Hard errors]",
            "new core dump coreDumps.sections[0].files[name=/var/crash/rpd.core.0.gz]",
        ])
    }

    @Test func identicalDocumentsHaveNoChanges() throws {
        let facts = try JSONValue(json: try Sample.contents().facts.jsonBytes())
        #expect(JSONDiff.changes(from: facts, to: facts).isEmpty)
        #expect(try json("1.0") == json("1"))
    }
}

@Suite struct ConfigurationDiffTests {
    @Test func xmlConfigurationRendersOneStatementPerLine() throws {
        let xml = """
        <rpc-reply><configuration>
          <system><host-name>r1</host-name><services><ssh/></services></system>
          <interfaces>
            <interface><name>ge-0/0/0</name><description>to core 1</description>
              <unit><name>0</name></unit></interface>
            <interface inactive="inactive"><name>ge-0/0/1</name><disable/></interface>
          </interfaces>
        </configuration></rpc-reply>
        """
        let config = try #require(ConfigurationText(reply: Array(xml.utf8)))
        #expect(config.text == """
        system {
            host-name r1;
            services {
                ssh;
            }
        }
        interfaces {
            interface ge-0/0/0 {
                description "to core 1";
                unit 0;
            }
            inactive: interface ge-0/0/1 {
                disable;
            }
        }

        """)
        #expect(config.lines[9].hierarchy == ["interfaces", "interface ge-0/0/0"])
    }

    @Test func changesAreShownUnderTheirEditHierarchy() throws {
        func config(_ host: String, _ extra: String) -> ConfigurationText {
            ConfigurationText(reply: Array("<configuration><system><host-name>\(host)</host-name><ntp><server><name>192.0.2.1</name></server>\(extra)</ntp></system></configuration>".utf8))!
        }
        let diff = ConfigurationDiff.render(from: config("r1", ""), to: config("r2", "<server><name>192.0.2.2</name></server>"))
        #expect(diff == """
        [edit system]
        -  host-name r1;
        +  host-name r2;
        [edit system ntp]
        +  server 192.0.2.2;

        """)
        #expect(ConfigurationDiff.render(from: config("r1", ""), to: config("r1", "")).isEmpty)
    }

    @Test func anAddedBlockIsShownWholeUnderOneHeader() throws {
        let old = ConfigurationText(reply: Array("<configuration><system><host-name>r1</host-name></system></configuration>".utf8))!
        let new = ConfigurationText(reply: Array("<configuration><system><host-name>r1</host-name><ntp><server><name>192.0.2.1</name><prefer/></server></ntp></system></configuration>".utf8))!
        #expect(ConfigurationDiff.render(from: old, to: new) == """
        [edit system]
        +  ntp {
        +      server 192.0.2.1 {
        +          prefer;
        +      }
        +  }

        """)
    }

    @Test func textConfigurationFollowsBraces() throws {
        let xml = "<rpc-reply><configuration-text>system {\n  host-name r1;\n  login {\n    user a;\n  }\n}\n</configuration-text></rpc-reply>"
        let config = try #require(ConfigurationText(reply: Array(xml.utf8)))
        #expect(config.lines.map(\.hierarchy) == [[], ["system"], ["system"], ["system", "login"], ["system"], []])
        #expect(config.lines[3].text == "        user a;")
    }

    @Test func realCapturesParse() throws {
        for file in try Fixtures.files(in: "get-configuration") {
            let bytes = Array(try Data(contentsOf: file))
            guard let config = ConfigurationText(reply: bytes) else { continue }
            #expect(!config.lines.isEmpty, "\(file.lastPathComponent)")
            #expect(ConfigurationDiff.render(from: config, to: config).isEmpty)
        }
    }

    /// The edit script is a shortest one: checked against a dynamic-programming LCS on many random inputs.
    @Test func editScriptIsMinimalAndRebuildsTheNewText() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0 ..< 300 {
            let a = (0 ..< Int.random(in: 0 ... 12, using: &generator)).map { _ in ["a", "b", "c", "d"].randomElement(using: &generator)! }
            let b = (0 ..< Int.random(in: 0 ... 12, using: &generator)).map { _ in ["a", "b", "c", "d"].randomElement(using: &generator)! }
            let edits = ConfigurationDiff.edits(a, b)
            var rebuilt: [String] = []
            var kept = 0
            for edit in edits {
                switch edit {
                case let .same(i, j):
                    #expect(a[i] == b[j])
                    rebuilt.append(a[i])
                    kept += 1
                case .removed: break
                case let .added(j): rebuilt.append(b[j])
                }
            }
            #expect(rebuilt == b, "a=\(a) b=\(b)")
            #expect(kept == lcs(a, b), "a=\(a) b=\(b)")
            #expect(edits.filter { if case .removed = $0 { return true } else { return false } }.count == a.count - kept)
        }
    }

    private func lcs(_ a: [String], _ b: [String]) -> Int {
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                table[i][j] = a[i] == b[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
            }
        }
        return table[0][0]
    }

    @Test func hugeDifferencesFallBackToReplaceAll() {
        let a = (0 ..< 300).map { "a\($0)" }, b = (0 ..< 300).map { "b\($0)" }
        let edits = ConfigurationDiff.edits(a, b, maximumEdits: 50)
        #expect(edits.count == 600)
    }
}

@Suite struct BundleComparisonTests {
    @Test func outcomesAndDeviceChangesAreReported() throws {
        let old = try BundleReader().read(bytes: try Sample.encoded())
        var changed = try Sample.contents()
        changed.outcomes[7] = RPCOutcome(rpc: "get-system-core-dumps", status: .ok, durationSeconds: 1)
        changed.device.address = "192.0.2.11:830"
        let new = try BundleReader().read(bytes: try BundleWriter.encode(changed, key: Sample.key))
        let comparison = BundleComparison(old: old, new: new)
        #expect(comparison.sameDevice)
        #expect(comparison.outcomeChanges == [.init(rpc: "get-system-core-dumps", old: "timeout (no reply within 60 s)", new: "ok")])
        #expect(comparison.deviceChanges.map(\.description) == ["~ device.address: 192.0.2.10:830 → 192.0.2.11:830"])
        #expect(comparison.configurationDiff == "")
        #expect(comparison.text.contains("get-system-core-dumps: timeout (no reply within 60 s) → ok"))
    }

    @Test func factChangesAreGroupedUnderTheirSection() throws {
        let base = try BundleReader().read(bytes: try Sample.encoded())
        var old = base, new = base
        old.factsJSON = Array(#"{"coreDumps":{"files":[]},"software":{"version":"21.4R3"},"parseErrors":{}}"#.utf8)
        new.factsJSON = Array(#"{"coreDumps":{"files":[{"name":"/var/crash/rpd.core.1.gz"}]},"software":{"version":"22.2R1"},"parseErrors":{}}"#.utf8)
        let text = BundleComparison(old: old, new: new).text
        #expect(text.contains("Software\n  ~ version changed: version: 21.4R3 → 22.2R1\n"))
        #expect(text.contains("Core dumps\n  + new core dump: files[name=/var/crash/rpd.core.1.gz]: name=/var/crash/rpd.core.1.gz\n"))
    }

    /// What the bundles say is escaped in the text a terminal shows: a host name carrying a
    /// title-setting escape, a clear-screen and a newline with a forged line stays on its line.
    @Test func theTextEscapesWhatTheBundlesSay() throws {
        let base = try BundleReader().read(bytes: try Sample.encoded())
        var old = base, new = base
        old.factsJSON = Array(#"{"software":{"hostname":"baku"},"parseErrors":{}}"#.utf8)
        new.factsJSON = Array(#"{"software":{"hostname":"baku\u001b]0;PWNED\u0007\u001b[2J\nOK: forged line"},"parseErrors":{}}"#.utf8)
        let text = BundleComparison(old: old, new: new).text
        #expect(!text.contains("\u{1B}") && !text.contains("\u{07}"), "\(text)")
        #expect(!text.contains("\nOK: forged line") && text.contains("\\nOK: forged line"), "\(text)")
    }

    @Test func identicalBundlesSayNoDifferences() throws {
        let bundle = try BundleReader().read(bytes: try Sample.encoded())
        let comparison = BundleComparison(old: bundle, new: bundle)
        #expect(comparison.isEmpty)
        #expect(comparison.text.hasSuffix("no differences\n"))
    }
}

extension Junos.DeviceFacts {
    func jsonBytes() throws -> [UInt8] { try BundleWriter.factsJSON(self) }
}

@Suite struct VolatileFieldTests {
    @Test func clocksAndUptimeCountersAreLeftOutUnlessAsked() throws {
        let base = try BundleReader().read(bytes: try Sample.encoded())
        var old = base, new = base
        old.factsJSON = Array(#"{"uptime":{"sections":[{"currentTime":{"seconds":100,"text":"a"},"uptimeSeconds":50,"systemBooted":{"seconds":50}}]}}"#.utf8)
        new.factsJSON = Array(#"{"uptime":{"sections":[{"currentTime":{"seconds":200,"text":"b"},"uptimeSeconds":20,"systemBooted":{"seconds":180}}]}}"#.utf8)
        let quiet = BundleComparison(old: old, new: new)
        #expect(quiet.factChanges.map(\.change.path) == ["uptime.sections[0].systemBooted.seconds"])
        let all = BundleComparison(old: old, new: new, includeVolatile: true)
        #expect(all.factChanges.count == 4)
    }
}

@Suite struct InspectionRenderingTests {
    @Test func inventoryIsShownLikeShowChassisHardware() throws {
        let inventory = try JSONValue(json: Array(#"""
        {"chassis":[{"name":"Chassis","serialNumber":"JN1249018AFB","description":"MX480","modules":[
          {"name":"FPC 0","version":"REV 56","partNumber":"750-045715","serialNumber":"CADG7246","description":"MPC5E","depth":1,"children":[
            {"name":"PIC 0","partNumber":"BUILTIN","serialNumber":"BUILTIN","description":"12X10GE SFPP OTN","depth":2,"children":[]}]}]}]}
        """#.utf8))
        let table = try #require(BundleInspection.hardwareTable(inventory))
        #expect(table == """
          Item       Version  Part number  Serial number  Description
          Chassis                          JN1249018AFB   MX480
            FPC 0    REV 56   750-045715   CADG7246       MPC5E
              PIC 0           BUILTIN      BUILTIN        12X10GE SFPP OTN

        """)
        #expect(BundleInspection.hardwareTable(.object([])) == nil)
    }

    @Test func listsRenderOneLinePerItemAndWrappersAreUnfolded() throws {
        let facts = try JSONValue(json: Array(#"""
        {"environment":{"sections":[{"sensors":[{"name":"PEM 0","status":"OK","celsius":50}]}]},
         "configuration":{"features":["bgp","ospf"]},
         "software":{"routingEngines":[{"name":"re0","version":"21.4R3","packages":[{"name":"a"},{"name":"b"}]}]}}
        """#.utf8))
        let text = BundleInspection.render(facts, indent: 0)
        #expect(text.contains("  sections:\n    sensors:\n      - name=\"PEM 0\" celsius=50 status=OK\n"))
        #expect(text.contains("  features: bgp, ospf\n"))
        #expect(text.contains("    - name=re0 version=21.4R3\n        packages: 2 (listed by --json)\n"))
    }

    @Test func aNewSectionIsListedItemByItem() throws {
        let old = try JSONValue(json: Array(#"{"environment":null}"#.utf8))
        let new = try JSONValue(json: Array(#"{"environment":{"sections":[{"sensors":[{"name":"PEM 0","status":"OK"},{"name":"PEM 1","status":"Check"}]}]}}"#.utf8))
        #expect(JSONDiff.changes(from: old, to: new).map(\.description) == [
            "+ environment.sections[0].sensors[name=PEM 0]: name=\"PEM 0\" status=OK",
            "+ environment.sections[0].sensors[name=PEM 1]: name=\"PEM 1\" status=Check",
        ])
    }
}

@Suite struct FRUMoveTests {
    func inventory(_ modules: String) throws -> ChassisInventory {
        try ChassisInventory.parse(bytes: Array("<rpc-reply><chassis-inventory><chassis><name>Chassis</name><serial-number>JN1</serial-number>\(modules)</chassis></chassis-inventory></rpc-reply>".utf8), rpc: "get-chassis-inventory")
    }

    @Test func anOpticMovedToAnotherPortIsOneMoveNotAnUnrelatedAddAndRemove() throws {
        let before = try inventory("""
            <chassis-module><name>FPC 0</name><serial-number>F0</serial-number>
              <chassis-sub-module><name>PIC 0</name><serial-number>BUILTIN</serial-number>
                <chassis-sub-sub-module><name>Xcvr 0</name><part-number>740-031980</part-number><serial-number>MSR0YWA</serial-number><description>SFP+-10G-SR</description></chassis-sub-sub-module>
              </chassis-sub-module>
              <chassis-sub-module><name>PIC 1</name><serial-number>BUILTIN</serial-number></chassis-sub-module>
            </chassis-module>
            """)
        let after = try inventory("""
            <chassis-module><name>FPC 0</name><serial-number>F0</serial-number>
              <chassis-sub-module><name>PIC 0</name><serial-number>BUILTIN</serial-number></chassis-sub-module>
              <chassis-sub-module><name>PIC 1</name><serial-number>BUILTIN</serial-number>
                <chassis-sub-sub-module><name>Xcvr 2</name><part-number>740-031980</part-number><serial-number>MSR0YWA</serial-number><description>SFP+-10G-SR</description></chassis-sub-sub-module>
              </chassis-sub-module>
            </chassis-module>
            """)
        let moves = BundleComparison.moves(old: before, new: after)
        // BUILTIN is shared by two PICs: not trackable, not reported.
        #expect(moves == [BundleComparison.FRUMove(serialNumber: "MSR0YWA", partNumber: "740-031980", description: "SFP+-10G-SR",
                                                   from: "FPC 0/PIC 0/Xcvr 0", to: "FPC 0/PIC 1/Xcvr 2")])
        #expect(BundleComparison.moves(old: before, new: before).isEmpty)
    }
}
