import Foundation
import Junos
@testable import Reports
import Testing

/// `report eol` (train milestones with exceptions, chassis and FRUs, unknown where the data has
/// nothing) and `report health` (findings against configurable thresholds).
@Suite struct LifecycleAndHealthTests {
    static func date(_ text: String) -> Date {
        let f = ISO8601DateFormatter()
        return f.date(from: text + "T12:00:00Z")!
    }

    @Test func softwareTrainWithPlatformExceptions() {
        let data = ReportsTestData.shipped
        // 12.3 on an EX2200: the exception extends support to 2024-06-30.
        let ex = ReportsTestData.device("access-1", model: "ex2200-48t-4g", versions: ["12.3R12-S15"])
        let report = LifecycleReport(devices: [ex], data: data, withinMonths: 12, today: Self.date("2024-01-15"))
        let software = report.items.first { $0.kind == .software }
        #expect(software?.train == "12.3")
        #expect(software?.endOfSupport == LifecycleDate("2024-06-30"))
        #expect(software?.status == .within)
        #expect(software?.source.hasPrefix("exception \"model =~ ^EX-?2200(-C)?\"") == true, "\(software?.source ?? "")")
        // The same release on an MX has the train's own dates: past.
        let mx = ReportsTestData.device("core-1", versions: ["12.3R12-S15"])
        let mxItem = LifecycleReport(devices: [mx], data: data, today: Self.date("2024-01-15")).items.first { $0.kind == .software }
        #expect(mxItem?.endOfSupport == LifecycleDate("2016-07-31") && mxItem?.status == .past)
        // X train by longest prefix; supported when EOS is beyond the window.
        let srx = ReportsTestData.device("fw-1", model: "srx345", versions: ["21.4R3-S5.4"])
        let srxItem = LifecycleReport(devices: [srx], data: data, withinMonths: 6, today: Self.date("2024-06-01")).items.first { $0.kind == .software }
        #expect(srxItem?.train == "21.4" && srxItem?.endOfSupport == LifecycleDate("2025-06-20") && srxItem?.status == .supported)
    }

    @Test func unknownWhereTheDataHasNothing() throws {
        let data = ReportsTestData.shipped
        let inventory = ChassisInventory(chassis: [InventoryChassis(serialNumber: "JN0001", description: "MX10003", modules: [
            InventoryItem(name: "FPC 0", partNumber: "750-020503", serialNumber: "CAAB1234", description: "DPCE 2x 10GE R", modelNumber: "DPCE-R-2XGE-XFP"),
            InventoryItem(name: "Power Supply 0", partNumber: "740-999999", serialNumber: "PS1", description: "PSM"),
        ])])
        let evo = ReportsTestData.device("ptx-1", model: "ptx10001-36mr", versions: ["23.2R1-S1-EVO"], inventory: inventory)
        let later = ReportsTestData.device("mx-2", versions: ["24.2R1.17"])
        let report = LifecycleReport(devices: [evo, later], data: data, today: Self.date("2025-01-01"))
        let rows = Dictionary(report.items.map { ("\($0.device)/\($0.kind.rawValue)/\($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(rows["ptx-1/software/23.2R1-S1-EVO"]?.status == .unknown)
        #expect(rows["ptx-1/software/23.2R1-S1-EVO"]?.source == "Junos OS Evolved trains are not in the release milestone data")
        #expect(rows["mx-2/software/24.2R1.17"]?.status == .unknown)
        #expect(rows["mx-2/software/24.2R1.17"]?.source == "train 24.2 is not in the release milestone data")
        #expect(rows["ptx-1/chassis/Chassis"]?.status == .unknown)
        #expect(rows["ptx-1/chassis/Chassis"]?.serial == "JN0001")
        #expect(rows["ptx-1/fru/Power Supply 0"]?.status == .unknown)
        #expect(rows["ptx-1/fru/Power Supply 0"]?.source == "part 740-999999 / model (none) is not in the hardware EOL data")
        // A device without inventory still gets a chassis row saying so.
        #expect(rows["mx-2/chassis/Chassis"]?.source == "the chassis inventory was not collected")
        // The FRU that is in the data: by part number, with every date.
        let fpc = try #require(rows["ptx-1/fru/FPC 0"])
        #expect(fpc.status == .past && fpc.endOfSupport == LifecycleDate("2017-07-31") && fpc.eolAnnounce == LifecycleDate("2011-07-18")
                && fpc.lastOrder == LifecycleDate("2012-07-31"))
        #expect(fpc.source.hasPrefix("part number 750-020503: hardware-eol-detail.tsv line "), "\(fpc.source)")
        // JSON: the contract's keys, dates as YYYY-MM-DD, null when unknown.
        let json = ReportRenderer.json([fpc])
        for key in ["\"device\"", "\"kind\" : \"fru\"", "\"name\" : \"FPC 0\"", "\"part_number\" : \"750-020503\"", "\"model\"", "\"serial\"",
                    "\"train\" : null", "\"end_of_engineering\"", "\"end_of_support\" : \"2017-07-31\"", "\"eol_announce\" : \"2011-07-18\"",
                    "\"last_order\" : \"2012-07-31\"", "\"replacement\" : null", "\"status\" : \"past\"", "\"source\""] {
            #expect(json.contains(key), "\(key) missing in \(json)")
        }
    }

    /// An X train is a train of its own: without its own row its dates are unknown, not the
    /// base train's (18.2X75 has no row; 18.2 has).
    @Test func anXTrainWithoutItsOwnRowIsUnknown() {
        let data = ReportsTestData.shipped
        #expect(data.milestones["18.2X75"] == nil && data.milestones["18.2"] != nil)
        let ptx = ReportsTestData.device("ptx-1", model: "ptx5000", versions: ["18.2X75-D12.5"])
        let item = LifecycleReport(devices: [ptx], data: data, today: Self.date("2024-01-15")).items.first { $0.kind == .software }
        #expect(item?.status == .unknown && item?.endOfSupport == nil, "\(String(describing: item))")
        #expect(item?.source == "train 18.2X75 is not in the release milestone data")
        // An X train with its own row keeps it.
        let srx = ReportsTestData.device("fw-1", model: "srx345", versions: ["15.1X49-D170.4"])
        let x49 = LifecycleReport(devices: [srx], data: data, today: Self.date("2024-01-15")).items.first { $0.kind == .software }
        #expect(x49?.train == "15.1X49" && x49?.endOfSupport == data.milestones["15.1X49"]?.endOfSupport)
    }

    /// A part number on two rows with different dates (740-005022: RE-600-2048-BB and
    /// RE-M40-600-2048-S): the row whose SKU is the FRU's model number, else unknown, and the
    /// conflict is reported.
    @Test func aPartNumberOnSeveralRowsIsChosenByModelNumberOrUnknown() throws {
        let data = ReportsTestData.shipped
        let rows = data.hardware.filter { $0.partNumber == "740-005022" }
        #expect(Set(rows.map(\.product)) == ["RE-600-2048-BB", "RE-M40-600-2048-S"])
        let bb = try #require(rows.first { $0.product == "RE-600-2048-BB" })
        let m40 = try #require(rows.first { $0.product == "RE-M40-600-2048-S" })
        #expect(bb.endOfSupport != m40.endOfSupport)
        let inventory = ChassisInventory(chassis: [InventoryChassis(description: "M40e", modules: [
            InventoryItem(name: "Routing Engine 0", partNumber: "740-005022", serialNumber: "RE0", description: "RE-600", modelNumber: "RE-M40-600-2048-S"),
            InventoryItem(name: "Routing Engine 1", partNumber: "740-005022", serialNumber: "RE1", description: "RE-600", modelNumber: "RE-600-2048-BB"),
            InventoryItem(name: "Routing Engine 2", partNumber: "740-005022 REV 05", serialNumber: "RE2", description: "RE-600"),
        ])])
        let report = LifecycleReport(devices: [ReportsTestData.device("m40", model: "m40e", versions: ["9.3R4"], inventory: inventory)],
                                     data: data, today: Self.date("2024-01-15"))
        let items = Dictionary(report.items.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(items["Routing Engine 0"]?.endOfSupport == m40.endOfSupport)
        #expect(items["Routing Engine 1"]?.endOfSupport == bb.endOfSupport)
        let unknown = try #require(items["Routing Engine 2"])
        #expect(unknown.status == .unknown && unknown.endOfSupport == nil)
        #expect(unknown.source.contains("RE-600-2048-BB") && unknown.source.contains("RE-M40-600-2048-S"), "\(unknown.source)")
        #expect(report.dataProblems.contains { $0.field == "part_number 740-005022" && $0.message.contains(bb.location) && $0.message.contains(m40.location) })
    }

    /// eol-scanner rows give end of new Junos release support, not end of (software) engineering:
    /// its own field. BUILTIN parts and a fixed chassis's own boards are not counted again.
    @Test func newJunosReleaseSupportAndBuiltinParts() throws {
        let data = ReportsTestData.shipped
        let dpc = try #require(data.hardware.first { $0.partNumber == "750-020503" })
        #expect(dpc.endOfEngineering == nil && dpc.endOfNewJunosReleaseSupport != nil)
        let mx = ReportsTestData.device("mx-1", versions: ["21.4R3-S5.4"], inventory: ChassisInventory(chassis: [InventoryChassis(description: "MX960", modules: [
            InventoryItem(name: "FPC 0", partNumber: "750-020503", serialNumber: "CAAB1234", description: "DPCE 2x 10GE R", modelNumber: "DPCE-R-2XGE-XFP"),
        ])]))
        let fpc = try #require(LifecycleReport(devices: [mx], data: data, today: Self.date("2024-01-15")).items.first { $0.name == "FPC 0" })
        #expect(fpc.endOfNewJunosReleaseSupport == dpc.endOfNewJunosReleaseSupport && fpc.endOfEngineering == nil)
        let json = ReportRenderer.json([fpc])
        #expect(json.contains("\"end_of_new_junos_release_support\" : \"\(dpc.endOfNewJunosReleaseSupport!)\""), "\(json)")
        #expect(try ReportRenderer.render(LifecycleReport(devices: [mx], data: data), as: .html).contains("End of new Junos release support"))

        // One EX4200: the chassis row and its power supply, not its RE/FPC boards or BUILTIN PIC again.
        let ex = ReportsTestData.device("ex-1", model: "ex4200-48t", versions: ["12.3R12-S15"], inventory: ChassisInventory(chassis: [InventoryChassis(description: "EX4200-48T", modules: [
            InventoryItem(name: "Routing Engine 0", partNumber: "750-021254", serialNumber: "BM1", description: "EX4200-48T, 8 POE", modelNumber: "EX4200-48T"),
            InventoryItem(name: "FPC 0", partNumber: "750-021254", serialNumber: "BM1", description: "EX4200-48T, 8 POE", modelNumber: "EX4200-48T", children: [
                InventoryItem(name: "PIC 0", partNumber: "BUILTIN", serialNumber: "BUILTIN", description: "48x 10/100/1000 Base-T", modelNumber: "EX4200-48T", depth: 2),
            ]),
            InventoryItem(name: "Power Supply 0", partNumber: "740-020957", serialNumber: "PS1", description: "PS 320W AC", modelNumber: "EX-PWR-320-AC"),
        ])]))
        let report = LifecycleReport(devices: [ex], data: data, today: Self.date("2025-01-15"))
        let hardware = report.items.filter { $0.kind != .software }
        // Each part is as far past end of support as the unit that covers it: not "unknown".
        #expect(hardware.filter { $0.status == .past }.map(\.name) == ["Chassis", "Routing Engine 0", "FPC 0", "FPC 0/PIC 0", "Power Supply 0"],
                "\(hardware.map { "\($0.name) \($0.status)" })")
        let chassis = try #require(hardware.first { $0.name == "Chassis" })
        let pic = try #require(hardware.first { $0.name == "FPC 0/PIC 0" })
        #expect(pic.source.contains("BUILTIN") && pic.source.contains("the dates of FPC 0") && pic.endOfSupport == chassis.endOfSupport, "\(pic.source)")
        let board = try #require(hardware.first { $0.name == "FPC 0" })
        #expect(board.source.contains("chassis's own SKU: the dates of Chassis") && board.endOfSupport == chassis.endOfSupport, "\(board.source)")
        #expect(board.replacement == nil, "a board's replacement is not the chassis's")
        // Covered parts are the chassis's end of support, not more items to act on.
        #expect(board.coveredBy == "Chassis" && pic.coveredBy == "FPC 0")
        #expect(report.count(.past) == 3, "12.3, Chassis and Power Supply 0")
    }

    /// Where two sources disagree on a train's dates (the exceptions file's "(base release)"
    /// rows), the report says so; where they put the release in different states, unknown.
    @Test func releaseSourcesThatDisagreeAreSaid() throws {
        let data = ReportsTestData.shipped
        let other = try #require(data.contradictions["15.1"]?.first)
        let mx = ReportsTestData.device("mx-1", versions: ["15.1R7.9"])
        // 2026: both sources put 15.1 past its end of support; the disagreement is still said.
        let late = try #require(LifecycleReport(devices: [mx], data: data, today: Self.date("2026-12-06")).items.first { $0.kind == .software })
        #expect(late.status == .past && late.source.contains("the data contradicts itself") && late.source.contains(other.source), "\(late.source)")
        // 2020: one source says past (2018-12-05), the other supported until 2024: unknown.
        let early = try #require(LifecycleReport(devices: [mx], data: data, today: Self.date("2020-01-15")).items.first { $0.kind == .software })
        #expect(early.status == .unknown && early.source.hasPrefix("status unknown, the sources disagree"), "\(early.source)")
    }

    /// Where the hardware data contradicts itself, or a lookup would pick silently, unknown and said.
    @Test func hardwareRowsThatDisagreeAreSaid() throws {
        let data = ReportsTestData.shipped
        let index = HardwareIndex(data.hardware)
        // 750-000617 is the -E PIC's part (EOS 2009-04-30); the FRU's own model row says 2004-12-31.
        guard case let .ambiguous(why) = index.fru(partNumber: "750-000617", modelNumber: "I-1OC48-SON-SMIR") else {
            Issue.record("a part whose model's own row disagrees was matched silently"); return
        }
        #expect(why.contains("contradicts itself"), "\(why)")
        // A padded SKU in the data (`PB-PM3 `) still meets its model number.
        guard case .found(let row, _) = index.fru(partNumber: nil, modelNumber: "PB-PM3") else { Issue.record("PB-PM3 not found"); return }
        #expect(row.endOfSupport == LifecycleDate("2015-06-30"))
        // EX4500-40F begins listed SKUs with three different end-of-support dates: not the
        // family's "remaining SKUs" row (2021-05-01), unknown and why.
        #expect(index.chassis(model: "EX4500-40F") == nil)
        #expect(index.chassisAmbiguity(model: "EX4500-40F")?.contains("EX4500-40F-BF") == true)
        // EX4550-32F: every listed EX4550-32F-* row agrees.
        #expect(index.chassis(model: "EX4550-32F")?.0.endOfSupport == LifecycleDate("2024-06-30"))
        let vc = ReportsTestData.device("vc-1", model: "ex4500-40f", versions: ["15.1R6.7"], inventory: ChassisInventory(chassis: [InventoryChassis(description: "EX4500-40F")]))
        let chassis = try #require(LifecycleReport(devices: [vc], data: data, today: Self.date("2024-01-15")).items.first { $0.kind == .chassis })
        #expect(chassis.status == .unknown && chassis.source.contains("start of"), "\(chassis.source)")
    }

    /// Platform exceptions apply in file order; a specific row after a catch-all ("(other EX)")
    /// that also matches contradicts it, which the report says.
    @Test func overlappingPlatformExceptionsAreSaid() throws {
        let data = ReportsTestData.shipped
        let ex8200 = ReportsTestData.device("core-ex", model: "ex8200", versions: ["12.3R12.4"])
        let late = try #require(LifecycleReport(devices: [ex8200], data: data, today: Self.date("2024-01-15")).items.first { $0.kind == .software })
        #expect(late.status == .past && late.source.contains("^EX8200") && late.source.contains("contradicts itself"), "\(late.source)")
        let early = try #require(LifecycleReport(devices: [ex8200], data: data, today: Self.date("2020-01-15")).items.first { $0.kind == .software })
        #expect(early.status == .unknown, "one row says past (2019-07-31), the other supported (2021-05-01): \(early.source)")
        // A specific row before the catch-all is no contradiction (12.3 on an EX2200).
        let ex2200 = ReportsTestData.device("acc", model: "ex2200-48t-4g", versions: ["12.3R12-S15"])
        let item = try #require(LifecycleReport(devices: [ex2200], data: data, today: Self.date("2024-01-15")).items.first { $0.kind == .software })
        #expect(!item.source.contains("contradicts"))
    }

    /// A mixed virtual chassis: each member's model decides its release's platform exception.
    @Test func eachMemberOfAMixedVirtualChassisHasItsOwnSoftwareRow() throws {
        var vc = ReportsTestData.device("vc-1", model: "ex4500-40f", versions: ["15.1R6.7"])
        let v = JunosVersion("15.1R6.7")
        vc.facts.software?.routingEngines = [RoutingEngineSoftware(name: "fpc0", hostname: "vc-1", model: "ex4500-40f", version: v),
                                             RoutingEngineSoftware(name: "fpc1", hostname: "vc-1", model: "ex4200-24p", version: v)]
        let rows = LifecycleReport(devices: [vc], data: ReportsTestData.shipped, today: Self.date("2026-01-15")).items.filter { $0.kind == .software }
        #expect(rows.map(\.model) == ["ex4500-40f", "ex4200-24p"])
        #expect(rows.map(\.endOfSupport) == [LifecycleDate("2021-05-01"), LifecycleDate("2018-12-05")], "\(rows.map(\.source))")
        #expect(rows.map(\.name) == ["fpc0: 15.1R6.7", "fpc1: 15.1R6.7"])
        // Members whose models share the dates: one row for the release, as for any device.
        vc.facts.software?.routingEngines = [RoutingEngineSoftware(name: "fpc0", hostname: "vc-1", model: "ex4300-48p", version: JunosVersion("21.4R3-S5.4")),
                                             RoutingEngineSoftware(name: "fpc1", hostname: "vc-1", model: "ex4300-48t", version: JunosVersion("21.4R3-S5.4"))]
        let one = LifecycleReport(devices: [vc], data: ReportsTestData.shipped, today: Self.date("2026-01-15")).items.filter { $0.kind == .software }
        #expect(one.map(\.name) == ["21.4R3-S5.4"], "\(one.map(\.name))")
    }

    @Test func chassisSKUVariantsAndFamilyFallback() {
        let index = HardwareIndex(ReportsTestData.shipped.hardware)
        #expect(index.chassis(model: "EX4200-48T")?.0.endOfSupport == LifecycleDate("2024-06-30"))
        #expect(index.chassis(model: "ex4200-48t")?.1 == "SKU EX4200-48T")
        #expect(index.chassis(model: "MX204") == nil)
    }

    @Test func healthFindingsAgainstConfigurableThresholds() {
        var device = ReportsTestData.device(versions: ["21.4R3-S5"])
        var re = RoutingEngineStatus(section: nil, slot: 0)
        re.cpuIdlePercent = 12
        re.memoryUtilizationPercent = 70
        re.uptimeSeconds = 3600
        re.lastRebootReason = "Router rebooted after a normal shutdown."
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [re])
        device.facts.storage = StorageReport(sections: [.init(routingEngine: "re0", filesystems: [
            .init(name: "/dev/gpt/var", usedPercent: 91, mountedOn: "/var"), .init(name: "/dev/gpt/junos", usedPercent: 40, mountedOn: "/.mount"),
            // Read-only images are full by design: never a finding.
            .init(name: "/dev/md0.uzip", usedPercent: 100, mountedOn: "/"), .init(name: "/var/log", usedPercent: 100, mountedOn: "/.mount/packages/mnt/jweb/jail/var/log"),
        ])])
        device.facts.chassisAlarms = AlarmReport(sections: [.init(alarms: [.init(alarmClass: "Major", description: "PEM 1 Not OK")])])
        device.facts.coreDumps = CoreDumpReport(sections: [.init(routingEngine: "re0", files: [.init(name: "/var/crash/core-rpd.0"), .init(name: "/var/crash/core-rpd.1")])])
        device.facts.environment = EnvironmentReport(sections: [.init(sensors: [
            .init(name: "PEM 1", sensorClass: "Power", status: "Failed"), .init(name: "FPC 0 CPU", sensorClass: "Temp", status: "OK", celsius: 70),
        ])])
        var previous = device
        previous.facts.coreDumps = CoreDumpReport(sections: [.init(routingEngine: "re0", files: [.init(name: "/var/crash/core-rpd.0")])])

        re.temperatureCelsius = 70
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [re])
        device.facts.systemAlarms = AlarmReport(sections: [])
        previous.facts.systemAlarms = AlarmReport(sections: [])

        let report = HealthReport(devices: [(device, previous)], now: device.collected)
        let lines = report.findings.map { "\($0.severity.rawValue) \($0.check) \($0.value) \($0.threshold ?? "-")" }
        // The environment sensor at 70 °C is an FPC CPU die: judged by Junos's own thresholds
        // (its status, chassis alarms), not ours; the RE's board temperature is ours.
        #expect(lines == [
            "warning cpu 88% used >= 80%", "warning temperature 70 °C >= 65 °C", "warning reboot 1 h 0 min < 24 h",
            "critical storage 91% >= 90%", "critical alarm Major -", "warning core-dump /var/crash/core-rpd.0 -",
            "warning core-dump /var/crash/core-rpd.1 -", "critical environment Failed OK",
        ], "\(lines)")
        #expect(report.findings.first { $0.check == "reboot" }?.message.contains("normal shutdown") == true)
        // A core file stays a warning until it is gone; the new one says so in what to do.
        let cores = report.findings.filter { $0.check == "core-dump" }
        #expect(cores.map { $0.action?.hasPrefix("new since the previous collection") == true } == [false, true])
        #expect(report.findings.allSatisfy { $0.action?.isEmpty == false }, "every finding says what to do")
        #expect(report.findings.first { $0.check == "cpu" }?.message.contains("single sample") == true)

        var relaxed = HealthThresholds()
        let accepted = [relaxed.set("cpu-warning", to: 90), relaxed.set("storage-critical", to: 95), relaxed.set("temperature-warning", to: 71)]
        let refused = relaxed.set("no-such-key", to: 1)
        #expect(accepted == [true, true, true] && !refused)
        let second = HealthReport(devices: [(device, previous)], thresholds: relaxed)
        #expect(!second.findings.contains { $0.check == "cpu" })
        #expect(second.findings.first { $0.check == "storage" }?.severity == .warning)
        #expect(!second.findings.contains { $0.check == "temperature" })
    }
}

/// Device-supplied text in the text reports is escaped (a device name with ESC sequences or a
/// newline cannot recolour the terminal or forge a line), and a CSV cell a spreadsheet would run
/// as a formula is kept as text.
@Suite struct ReportOutputSafetyTests {
    @Test func deviceTextIsEscapedInTextAndInertInCSV() throws {
        var report = HealthReport(devices: [])
        report.findings = [HealthFinding(device: "r1\u{1B}]52;c;aGk=\u{07}", severity: .critical, check: "alarms", fact: "alarms",
                                         value: "1\nOK: all clear", threshold: nil, message: "=HYPERLINK(\"http://x\")")]
        let text = try ReportRenderer.render(report, as: .text)
        #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 })
        #expect(text.contains("r1\\e]52;c;aGk=\\x07") && text.contains("1\\nOK: all clear"))
        #expect(!text.split(separator: "\n").contains { $0.hasPrefix("OK") })
        let csv = try ReportRenderer.render(report, as: .csv)
        #expect(csv.contains(",\"'=HYPERLINK(\"\"http://x\"\")\""), "\(csv)")
        #expect(ReportRenderer.csvField("-cmd|' /C calc'!A0") == "'-cmd|' /C calc'!A0" && ReportRenderer.csvField("@SUM(A1)") == "'@SUM(A1)")
        // Numbers stay numbers (optical power in dBm, a temperature below zero).
        #expect(ReportRenderer.csvField("-12.5") == "-12.5" && ReportRenderer.csvField("+3") == "+3")
        #expect(ReportRenderer.csvField("mx480-r1") == "mx480-r1")
    }
}
