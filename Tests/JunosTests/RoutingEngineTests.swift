import Foundation
import Junos
import Testing
import TestSupport

@Suite struct RoutingEngineTests {
    static let rpc = "get-route-engine-information"
    static let mb: Int64 = 1 << 20

    static func fixture(_ name: String) throws -> RoutingEngineReport {
        try RoutingEngineReport.parse(bytes: Fixtures.bytes("\(rpc)/\(name)"), rpc: rpc)
    }

    static func parse(_ xml: String) throws -> RoutingEngineReport {
        try RoutingEngineReport.parse(bytes: Array(xml.utf8), rpc: rpc)
    }

    @Test func memorySizesWithUnitsAndInstalledText() throws {
        let re = try #require(try Self.fixture("pyez__vmx-16.1R1.xml").routingEngines.first)
        #expect(re.memoryDRAMBytes == 4058 * Self.mb)
        #expect(re.memoryInstalledBytes == 4096 * Self.mb)
        #expect(re.memoryUtilizationPercent == 15)
        #expect(re.mastershipPriority == "master (default)")
        #expect(re.startTimeEpoch == 1480612496)
        #expect(re.uptimeSeconds == 2587295)
        #expect(re.uptime == "29 days, 22 hours, 41 minutes, 35 seconds")
        #expect(re.lastRebootReason == "Router rebooted after a normal shutdown.")
        #expect(re.loadAverage1 == 0.49)
        #expect(re.loadAverage5 == 0.36)
        #expect(re.loadAverage15 == 0.37)
    }

    @Test func plainNumbersOnHighEndSRXAreMegabytes() throws {
        let re = try #require(try Self.fixture("pyez__srx-high-end-12.3X48.xml").routingEngines.first)
        #expect(re.memoryDRAMBytes == 1023 * Self.mb)
        #expect(re.memoryInstalledBytes == 1023 * Self.mb)
        #expect(re.temperatureCelsius == nil)
        #expect(re.serialNumber == nil)
        #expect(re.status == nil)
    }

    @Test func branchSRXMemoryPools() throws {
        let report = try Self.fixture("pyez__srx210he2-branch.xml")
        let re = try #require(report.routingEngines.first)
        #expect(re.slot == nil)
        #expect(re.memorySystem == MemoryPool(totalBytes: 2048 * Self.mb, usedBytes: 1044 * Self.mb, utilizationPercent: 51))
        #expect(re.memoryControlPlane == MemoryPool(totalBytes: 1088 * Self.mb, usedBytes: 511 * Self.mb, utilizationPercent: 47))
        #expect(re.memoryDataPlane == MemoryPool(totalBytes: 960 * Self.mb, usedBytes: 528 * Self.mb, utilizationPercent: 55))
        #expect(re.memoryUtilizationPercent == 51, "falls back to memory-system-total-util")
        #expect(re.memoryDRAMBytes == nil)
        #expect(re.cpuUserPercent == 13)
        #expect(re.cpuSystemPercent == 15)
        #expect(re.cpuIdlePercent == 72)
        #expect(re.temperatureCelsius == 56)
        #expect(report.master == re, "a lone RE without mastership is the master")
    }

    @Test func dualREMastership() throws {
        let report = try Self.fixture("pyez__m320-dual-re.xml")
        #expect(report.routingEngines.map(\.slot) == [0, 1])
        #expect(report.routingEngines.map(\.mastershipState) == ["master", "backup"])
        #expect(report.master?.slot == 0)
        #expect(report.routingEngines[1].isMaster == false)
    }

    @Test func clusterNodesKeepTheirSectionNames() throws {
        let report = try Self.fixture("jexp__srx-cluster-multi-re-anon.xml")
        #expect(report.routingEngines.map(\.section) == ["node0", "node1"])
        #expect(report.routingEngines.map(\.cpuTemperatureCelsius) == [35, 36])
        // Neither RE says master; the reply's banner `{primary:node0}` names the primary node.
        #expect(report.primarySection == "node0")
        #expect(report.master?.section == "node0")
        let raw = try String(decoding: Fixtures.bytes("get-route-engine-information/jexp__srx-cluster-multi-re-anon.xml"), as: UTF8.self)
        #expect(raw.contains("<banner>{primary:node0}</banner>"))
        let failedOver = try RoutingEngineReport.parse(bytes: Array(raw.replacingOccurrences(of: "{primary:node0}", with: "{primary:node1}").utf8),
                                                       rpc: "get-route-engine-information")
        #expect(failedOver.master?.section == "node1")
        #expect(failedOver.master?.cpuTemperatureCelsius == 36)
        let noBanner = try RoutingEngineReport.parse(bytes: Array(raw.replacingOccurrences(of: "<banner>{primary:node0}</banner>", with: "").utf8),
                                                     rpc: "get-route-engine-information")
        #expect(noBanner.master == nil, "two REs, neither says master, no banner")
        let napalm = try Self.fixture("napalm__srx345-cluster-node0-no-ns.xml")
        #expect(napalm.routingEngines.first?.section == "node0")
        #expect(napalm.routingEngines.first?.cpuTemperatureCelsius == 63, "unprefixed celsius attribute")
    }

    @Test func malformedAndWrappedValues() throws {
        let xml = """
        <route-engine-information><route-engine>
          <slot>
            1
          </slot>
          <mastership-state>  master </mastership-state>
          <cpu-idle>9x7</cpu-idle>
          <cpu-user>abc</cpu-user>
          <memory-dram-size>lots</memory-dram-size>
          <memory-buffer-utilization>12 percent</memory-buffer-utilization>
          <temperature>45 degrees C / 113 degrees F</temperature>
          <up-time>2 days</up-time>
          <start-time junos:seconds="x" xmlns:junos="http://xml.juniper.net/junos/1/junos">then</start-time>
          <load-average-one>n/a</load-average-one>
        </route-engine></route-engine-information>
        """
        let re = try #require(try Self.parse(xml).routingEngines.first)
        #expect(re.slot == 1)
        #expect(re.mastershipState == "master")
        #expect(re.isMaster)
        #expect(re.cpuIdlePercent == nil)
        #expect(re.cpuUserPercent == nil)
        #expect(re.memoryDRAMBytes == nil)
        #expect(re.memoryUtilizationPercent == 12)
        #expect(re.temperatureCelsius == 45)
        #expect(re.uptimeSeconds == nil)
        #expect(re.uptime == "2 days")
        #expect(re.startTimeEpoch == nil)
        #expect(re.startTime == "then")
        #expect(re.loadAverage1 == nil)
        #expect(re.memorySystem == nil)
    }

    @Test func roundTripsThroughJSON() throws {
        for url in try Fixtures.files(in: Self.rpc) {
            let report = try RoutingEngineReport.parse(bytes: Array(Data(contentsOf: url)), rpc: Self.rpc)
            #expect(!report.routingEngines.isEmpty, "\(url.lastPathComponent)")
            let back = try JSONDecoder().decode(RoutingEngineReport.self, from: JSONEncoder().encode(report))
            #expect(back == report, "\(url.lastPathComponent)")
        }
    }

    // Shaped after PyEZ's MX virtual chassis capture: each member section reports its own local
    // master RE; the banner `{master:member1-re0}` says which one is the VC's.
    @Test func mxVirtualChassisMasterIsTheREtheBannerNames() throws {
        func re(_ slot: Int, _ state: String, _ serial: String) -> String {
            "<route-engine><slot>\(slot)</slot><mastership-state>\(state)</mastership-state><serial-number>\(serial)</serial-number></route-engine>"
        }
        let body = """
        <rpc-reply><multi-routing-engine-results>
          <multi-routing-engine-item><re-name>member0</re-name><route-engine-information>
            \(re(0, "backup", "M0RE0"))\(re(1, "master", "M0RE1"))</route-engine-information></multi-routing-engine-item>
          <multi-routing-engine-item><re-name>member1</re-name><route-engine-information>
            \(re(0, "master", "M1RE0"))\(re(1, "backup", "M1RE1"))</route-engine-information></multi-routing-engine-item>
        </multi-routing-engine-results>BANNER</rpc-reply>
        """
        let vc = try Self.parse(body.replacingOccurrences(of: "BANNER", with: "<cli><banner>{master:member1-re0}</banner></cli>"))
        #expect(vc.primarySection == "member1")
        #expect(vc.primarySlot == 0)
        #expect(vc.master?.serialNumber == "M1RE0")
        // The banner may name the member's backup RE slot: the slot wins over mastership state.
        let re1 = try Self.parse(body.replacingOccurrences(of: "BANNER", with: "<cli><banner>{master:member1-re1}</banner></cli>"))
        #expect(re1.master?.serialNumber == "M1RE1")
        // Without a banner the first RE that says master is all there is to go on.
        #expect(try Self.parse(body.replacingOccurrences(of: "BANNER", with: "")).master?.serialNumber == "M0RE1")
    }

    @Test func malformedNumbersKeepTheirText() throws {
        let report = try Self.parse("""
        <route-engine-information><route-engine><slot>0</slot>
          <memory-dram-size> 6r75</memory-dram-size><cpu-idle>n/a</cpu-idle>
          <temperature junos:celsius="x" xmlns:junos="urn:j">hot</temperature>
          <load-average-one>0.5</load-average-one><memory-installed-size>99999999999999 MB</memory-installed-size>
        </route-engine></route-engine-information>
        """)
        let re = try #require(report.routingEngines.first)
        #expect(re.memoryDRAMBytes == nil && re.cpuIdlePercent == nil && re.temperatureCelsius == nil)
        #expect(re.memoryInstalledBytes == nil, "a size beyond 64 bits is malformed, not a crash")
        #expect(re.unreadableValues == [
            "memory-dram-size": "6r75", "cpu-idle": "n/a", "temperature": "hot",
            "memory-installed-size": "99999999999999 MB",
        ])
        #expect(re.slot == 0 && re.loadAverage1 == 0.5)
        #expect(try Self.fixture("pyez__vmx-16.1R1.xml").routingEngines.allSatisfy { $0.unreadableValues == nil })
    }
}
