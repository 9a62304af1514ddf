import Foundation
import Junos
import Testing
import TestSupport

@Suite struct ChassisClusterTests {
    static let rpc = "get-chassis-cluster-status"

    static func fixture(_ name: String) throws -> ChassisClusterStatus {
        try ChassisClusterStatus.parse(bytes: Fixtures.bytes("\(rpc)/\(name)"), rpc: rpc)
    }

    static func parse(_ xml: String) throws -> ChassisClusterStatus {
        try ChassisClusterStatus.parse(bytes: Array(xml.utf8), rpc: rpc)
    }

    @Test func flatSiblingsSplitPerNode() throws {
        let cluster = try Self.fixture("pyez__srx-12.1X44-node1-lost.xml")
        #expect(cluster.clusterID == 1)
        let rg0 = try #require(cluster.redundancyGroup(0))
        #expect(rg0.nodes == [
            RedundancyGroupNode(name: "node0", priority: 100, status: "primary", preempt: false, manualFailover: false),
            RedundancyGroupNode(name: "node1", priority: 0, status: "lost", preempt: nil, manualFailover: nil),
        ])
        #expect(rg0.primary?.name == "node0")
    }

    @Test func redundancyGroupOnTheOtherNode() throws {
        let cluster = try Self.fixture("jexp__srx-23.4-rg1-on-node1.xml")
        #expect(cluster.clusterID == 17)
        #expect(cluster.redundancyGroups.map(\.id) == [0, 1])
        #expect(cluster.redundancyGroup(1)?.failoverCount == 3)
        #expect(cluster.redundancyGroup(1)?.primary?.name == "node1")
        #expect(cluster.redundancyGroup(1)?.nodes.first?.monitorFailures == nil, "not reported")
        #expect(cluster.redundancyGroup(7) == nil)
    }

    @Test func disabledNodeAndMonitorFailures() throws {
        let cluster = try Self.fixture("rjmcp__vsrx-24.4-node1-disabled.xml")
        let rg1 = try #require(cluster.redundancyGroup(1))
        #expect(rg1.nodes.map(\.status) == ["primary", "disabled"])
        #expect(rg1.nodes.map(\.preempt) == [true, true])
        #expect(rg1.nodes.map(\.monitorFailures) == [[], []])
        #expect(rg1.failoverCount == 8)
    }

    @Test func oneDeviceStatsBlockPerNodeAndFailureCodes() throws {
        let xml = """
        <rpc-reply><chassis-cluster-status><cluster-id> 4 </cluster-id>
        <redundancy-group><redundancy-group-id>1</redundancy-group-id><redundancy-group-failover-count>x</redundancy-group-failover-count>
          <device-stats><device-name>node0</device-name><device-priority>abc</device-priority>
            <redundancy-group-status>secondary-hold</redundancy-group-status><monitor-failures>IF CS</monitor-failures></device-stats>
          <device-stats><device-name>node1</device-name><device-priority>200</device-priority>
            <redundancy-group-status>primary</redundancy-group-status><failover-mode>yes</failover-mode></device-stats>
        </redundancy-group></chassis-cluster-status></rpc-reply>
        """
        let rg = try #require(try Self.parse(xml).redundancyGroups.first)
        #expect(rg.failoverCount == nil)
        #expect(rg.nodes.map(\.name) == ["node0", "node1"])
        #expect(rg.nodes[0].priority == nil)
        #expect(rg.nodes[0].monitorFailures == ["IF", "CS"])
        #expect(rg.nodes[1].manualFailover == true)
        #expect(rg.primary?.name == "node1")
    }

    @Test func notEnabledIsATypedError() throws {
        do {
            _ = try Self.fixture("pyez__not-enabled-xnm-error.xml")
            Issue.record("a cluster-not-enabled reply parsed")
        } catch let JunosParseError.deviceError(rpc, messages) {
            #expect(rpc == Self.rpc)
            #expect(messages.count == 1)
            #expect(messages[0].message.contains("Chassis cluster is not enabled"))
            #expect(ChassisClusterStatus.isNotEnabled(.deviceError(rpc: rpc, messages)))
        }
        #expect(!ChassisClusterStatus.isNotEnabled(.emptyReply(rpc: Self.rpc)))
        #expect(!ChassisClusterStatus.isNotEnabled(.deviceError(rpc: Self.rpc, [DeviceMessage(severity: .error, message: "permission denied")])))
    }

    @Test func deviceFactsRecordTheClusterError() throws {
        var facts = DeviceFacts()
        let reply = try JunosReply(bytes: Fixtures.bytes("\(Self.rpc)/pyez__not-enabled-xnm-error.xml"))
        #expect(throws: JunosParseError.self) { try facts.absorb(reply, as: .cluster) }
        #expect(facts.cluster == nil)
        #expect(facts.parseErrors[Self.rpc]?.contains("Chassis cluster is not enabled") == true)

        let ok = try JunosReply(bytes: Fixtures.bytes("\(Self.rpc)/librenms__srx-24.4R2-healthy.xml"))
        #expect(FactKind.detect(ok) == .cluster)
        try facts.absorb(ok, as: .cluster)
        #expect(facts.cluster?.redundancyGroups.count == 2)
        #expect(facts.parseErrors[Self.rpc] == nil)
    }

    @Test func roundTripsThroughJSON() throws {
        for url in try Fixtures.files(in: Self.rpc) where !url.lastPathComponent.contains("not-enabled") {
            let cluster = try ChassisClusterStatus.parse(bytes: Array(Data(contentsOf: url)), rpc: Self.rpc)
            let back = try JSONDecoder().decode(ChassisClusterStatus.self, from: JSONEncoder().encode(cluster))
            #expect(back == cluster, "\(url.lastPathComponent)")
        }
    }
}
