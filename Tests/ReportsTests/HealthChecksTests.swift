import Bundle
import Foundation
import Junos
@testable import Reports
import Testing
import TestSupport

/// `report health` as a NOC reads it: nothing checked is never "healthy", old facts say they are
/// old, averages rather than a sample, Junos's own sensor thresholds, and the HA states (cluster,
/// virtual chassis, routing engines) that matter; hostile numbers never trap.
@Suite struct HealthChecksTests {
    static let now = Date(timeIntervalSince1970: 1_750_000_000)

    /// A device whose every health fact is present and clean, so that each test sees only its own.
    static func clean(_ name: String = "edge-1") -> DeviceSnapshot {
        var device = ReportsTestData.device(name, versions: ["21.4R3-S5"], collected: now)
        var re = RoutingEngineStatus(section: nil, slot: 0)
        re.cpuIdlePercent = 90
        re.uptimeSeconds = 90 * 86_400
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [re])
        device.facts.storage = StorageReport(sections: [])
        device.facts.chassisAlarms = AlarmReport(sections: [])
        device.facts.systemAlarms = AlarmReport(sections: [])
        device.facts.coreDumps = CoreDumpReport(sections: [])
        device.facts.environment = EnvironmentReport(sections: [])
        return device
    }

    static func findings(_ device: DeviceSnapshot, previous: DeviceSnapshot? = nil, _ thresholds: HealthThresholds = HealthThresholds()) -> [HealthFinding] {
        HealthReport(devices: [(device, previous)], thresholds: thresholds, now: now).findings
    }

    static func parse<F: JunosFact>(_ type: F.Type, _ path: String) throws -> F {
        try F.parse(bytes: Fixtures.bytes(path), rpc: String(path.split(separator: "/")[0]))
    }

    @Test func aCleanDeviceIsListedAsCheckedWithNoFinding() throws {
        let report = HealthReport(devices: [(Self.clean(), nil)], now: Self.now)
        #expect(report.findings.isEmpty)
        #expect(report.devices.map(\.device) == ["edge-1"] && report.devices[0].worst == nil && report.devices[0].notChecked.isEmpty)
        let text = try ReportRenderer.render(report, as: .text)
        #expect(text.contains("edge-1 (mx480)") && text.contains("no findings"), "\(text)")
        let html = try ReportRenderer.render(report, as: .html)
        #expect(html.contains("<h2>Devices</h2>") && html.contains("everything"))
    }

    @Test func missingFactsAreNotCheckedAndSaySo() {
        var device = Self.clean()
        device.facts.chassisAlarms = nil
        device.facts.storage = nil
        device.facts.coreDumps = nil
        device.facts.environment = nil
        device.facts.parseErrors["get-system-storage"] = "unexpected element <foo>"
        device.askedRPCs = Set(FactKind.allCases.map(\.rpc)).subtracting(["get-system-core-dumps"])
        device.failedRPCs["get-alarm-information"] = "rpc-error: permission denied"
        let found = Self.findings(device).filter { $0.check == "not-collected" }
        let byFact = Dictionary(uniqueKeysWithValues: found.map { ($0.fact, $0) })
        #expect(byFact["chassisAlarms"]?.severity == .warning && byFact["chassisAlarms"]?.message.contains("permission denied") == true)
        #expect(byFact["storage"]?.severity == .warning && byFact["storage"]?.message.contains("unexpected element") == true)
        #expect(byFact["coreDumps"]?.severity == .info && byFact["coreDumps"]?.value == "not asked")
        #expect(byFact["environment"]?.severity == .warning && byFact["environment"]?.value == "absent")
        #expect(byFact["systemAlarms"] == nil && byFact["routingEngines"] == nil)
        let report = HealthReport(devices: [(device, nil)], now: Self.now)
        #expect(Set(report.devices[0].notChecked) == ["chassisAlarms", "storage", "coreDumps", "environment"])
        // A failed cluster status is said; one not asked (not an SRX) is not; nor a standalone
        // SRX's "chassis cluster is not enabled" (an error reply; rpc-error in older bundles).
        var srx = Self.clean()
        srx.failedRPCs["get-chassis-cluster-status"] = "timeout"
        #expect(Self.findings(srx).map(\.fact) == ["cluster"])
        srx.failedRPCs["get-chassis-cluster-status"] = "rpc-error: error: Chassis cluster is not enabled."
        srx.facts.parseErrors["get-chassis-cluster-status"] = "get-chassis-cluster-status: the device answered with an error: Chassis cluster is not enabled."
        #expect(Self.findings(srx).isEmpty)
    }

    /// A bundle lists the RPCs it sent: after a hung session the health facts missing from it
    /// were not sent. They read as failures, not as "left out by configuration" (info, which a
    /// customer is never told).
    @Test func aLostSessionsUnsentRPCsAreFailuresNotChoices() {
        let hung = DeviceSnapshot.gaps([RPCOutcome(rpc: "get-software-information", status: .ok, durationSeconds: 0.2),
                                        RPCOutcome(rpc: "get-chassis-inventory", status: .timeout, message: "no reply within 3 s", durationSeconds: 3)])
        #expect(hung.asked == nil)
        #expect(hung.failed["get-alarm-information"] == "not sent: the session ended at get-chassis-inventory (timeout)")
        var device = Self.clean()
        device.facts.chassisAlarms = nil
        device.facts.cluster = nil
        (device.askedRPCs, device.failedRPCs) = hung
        let found = Self.findings(device)
        #expect(found.map { "\($0.severity.rawValue) \($0.fact)" } == ["warning chassisAlarms"], "\(found)")
        // Nothing at all (no session): every check is a failure too.
        #expect(DeviceSnapshot.gaps([]).asked == nil && DeviceSnapshot.gaps([]).failed.count == FactKind.allCases.count)
        // A whole collection: what is missing was not asked.
        let whole = DeviceSnapshot.gaps([RPCOutcome(rpc: "get-software-information", status: .ok, durationSeconds: 0.1)])
        #expect(whole.asked == ["get-software-information"] && whole.failed.isEmpty)
    }

    @Test func oldFactsAndAFailedLatestCollectionAreSaid() {
        var device = Self.clean()
        device.collected = Self.now.addingTimeInterval(-10 * 86_400)
        device.latestFailure = ("authentication failed for user care", Self.now.addingTimeInterval(-3600))
        let found = Self.findings(device)
        #expect(found.map(\.check) == ["collection", "collection"])
        #expect(found[0].message.contains("authentication failed") && found[0].message.contains("what follows is from the collection of"))
        #expect(found[1].value == "10 days ago" && found[1].threshold == ">= 7 days")
        var patient = HealthThresholds()
        _ = patient.set("stale-after-days", to: 30)
        #expect(Self.findings(device, patient).count == 1)
    }

    @Test func hostileNumbersNeverTrap() {
        var device = Self.clean()
        var re = RoutingEngineStatus(section: nil, slot: 0)
        re.cpuIdlePercent = Int.min + 1
        re.cpuIdle5MinutesPercent = -5
        re.memoryUtilizationPercent = Int.max
        re.temperatureCelsius = Int.min
        re.uptimeSeconds = Int.min + 1
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [re])
        device.facts.storage = StorageReport(sections: [.init(filesystems: [.init(name: "/dev/da0", usedPercent: Int.max, mountedOn: "/var")])])
        var thresholds = HealthThresholds()
        let known = thresholds.set("reboot-within-hours", to: Int.max)
        #expect(known)
        #expect(thresholds.recentRebootHours == 87_600)
        #expect(Self.findings(device, thresholds).isEmpty)
        // With a real uptime the clamped window still works.
        re.uptimeSeconds = 3600
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [re])
        #expect(Self.findings(device, thresholds).map(\.check) == ["reboot"])
    }

    @Test func cpuIsJudgedOnTheFiveMinuteAverage() throws {
        // A real SRX cluster reply: node0's sample is 0% idle (our own session), its averages 66%.
        var device = Self.clean()
        device.facts.routingEngines = try Self.parse(RoutingEngineReport.self, "get-route-engine-information/jexp__srx-cluster-multi-re-anon.xml")
        #expect(device.facts.routingEngines?.routingEngines.contains { $0.cpuIdlePercent == 0 && $0.cpuIdle5MinutesPercent == 66 } == true)
        #expect(!Self.findings(device).contains { $0.check == "cpu" })
        // Idle in the sample, busy for five minutes: critical.
        var re = RoutingEngineStatus(section: nil, slot: 0)
        re.cpuIdlePercent = 96
        re.cpuIdle1MinutePercent = 3
        re.cpuIdle5MinutesPercent = 2
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [re])
        let cpu = Self.findings(device).filter { $0.check == "cpu" }
        #expect(cpu.map(\.severity) == [.critical] && cpu[0].fact == "routingEngines[re0].cpuIdle5MinutesPercent")
        #expect(cpu[0].message.contains("over the last 5 minutes"))
        // A release that prints only the sample (EX4200 13.3: 0% idle while our session runs):
        // at most a warning, saying so.
        var sampled = RoutingEngineStatus(section: nil, slot: 0)
        sampled.cpuIdlePercent = 0
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [sampled])
        let sample = Self.findings(device).filter { $0.check == "cpu" }
        #expect(sample.map(\.severity) == [.warning] && sample[0].message.contains("single sample"))
    }

    @Test func sensorsAreJudgedByTheirStatusNotOneTemperature() throws {
        // MX10003: every sensor OK, ASIC and HMC dies at 76 °C by design.
        var device = Self.clean()
        device.facts.environment = try Self.parse(EnvironmentReport.self, "get-environment-information/napalm__mx10003-no-ns.xml")
        #expect(device.facts.environment!.sensors.contains { ($0.celsius ?? 0) >= 75 })
        #expect(Self.findings(device).isEmpty)
        // PTX5000: the CPU die at 76 °C is not the RE's temperature.
        device.facts.routingEngines = try Self.parse(RoutingEngineReport.self, "get-route-engine-information/pyez__ptx5000-dual-re.xml")
        #expect(!Self.findings(device).contains { $0.check == "temperature" })
    }

    @Test func clusterSplitBrainHoldAndFailover() throws {
        var device = Self.clean()
        // A real reply: RG1 primary on node1 (priority 150) while node0 (200) is secondary, 3 failovers.
        device.facts.cluster = try Self.parse(ChassisClusterStatus.self, "get-chassis-cluster-status/jexp__srx-23.4-rg1-on-node1.xml")
        let failover = Self.findings(device)
        #expect(failover.map(\.severity) == [.warning] && failover[0].fact == "cluster.redundancyGroups[1].primary")
        #expect(failover[0].message.contains("node1 (priority 150), not on node0 (priority 200): 3 failovers"), "\(failover[0].message)")

        func group(_ nodes: [(String, Int, String?)]) -> ChassisClusterStatus {
            ChassisClusterStatus(redundancyGroups: [RedundancyGroup(id: 1, nodes: nodes.map { RedundancyGroupNode(name: $0.0, priority: $0.1, status: $0.2) })])
        }
        device.facts.cluster = group([("node0", 200, "primary"), ("node1", 100, "primary")])
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.value)" } == ["critical 2 primaries"])
        device.facts.cluster = group([("node0", 200, "primary"), ("node1", 100, "secondary-hold")])
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.value)" } == ["warning secondary-hold"])
        device.facts.cluster = group([("node0", 200, "primary"), ("node1", 0, "secondary")])
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.fact)" } == ["warning cluster.redundancyGroups[1].node1.priority"])
        device.facts.cluster = group([("node0", 200, "primary"), ("node1", 100, nil)])
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.value)" } == ["warning ?"])
        device.facts.cluster = group([("node0", 200, "primary"), ("node1", 100, "lost")])
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.value)" } == ["critical lost"])
    }

    @Test func virtualChassisSplitAndNoBackup() throws {
        var device = Self.clean()
        // A real mixed-mode VC: a QFX master and an EX linecard, no backup.
        device.facts.virtualChassis = try Self.parse(VirtualChassisStatus.self, "get-virtual-chassis-information/pyez__qfx5100-mixed-mode.xml")
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.value) \($0.fact)" } == ["warning no backup virtualChassis.backup"])
        var vc = device.facts.virtualChassis!
        vc.members[1].role = .master
        device.facts.virtualChassis = vc
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.value)" } == ["critical 2 masters", "warning no backup"])
    }

    @Test func routingEngineStateAndMastership() {
        var device = Self.clean()
        var master = RoutingEngineStatus(section: nil, slot: 0)
        master.mastershipState = "master"
        master.status = "OK"
        var backup = RoutingEngineStatus(section: nil, slot: 1)
        backup.mastershipState = "disabled"
        backup.status = "Failed"
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [master, backup])
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.fact)" }
            == ["critical routingEngines[re1].status", "critical routingEngines[re1].mastershipState"])
        backup.mastershipState = "master"
        backup.status = "Testing"
        device.facts.routingEngines = RoutingEngineReport(routingEngines: [master, backup])
        #expect(Self.findings(device).map { "\($0.severity.rawValue) \($0.value)" } == ["info Testing", "critical 2 masters"])
    }

    @Test func thresholdsOutOfRangeOrContradictoryAreRefused() {
        var t = HealthThresholds()
        #expect(t.contradiction == nil)
        _ = t.set("cpu-warning", to: 97)
        #expect(t.contradiction == "cpu-warning (97) is above cpu-critical (95)")
        #expect(HealthThresholds.range(of: "cpu-critical") == 0...100 && HealthThresholds.range(of: "stale-after-days") == 1...3_650)
    }
}
