@testable import Agent
import Bundle
import Foundation
import Junos
import Logging
import Testing
import TestSupport

/// The health poll's comparison, on real captured replies edited the way the device's state
/// would change between two polls.
@Suite struct HealthSnapshotTests {
    static let time = Date(timeIntervalSince1970: 1_780_000_000)

    /// Facts parsed from fixtures, each optionally rewritten (`from` → `to`).
    func snapshot(_ replies: [(rpc: String, fixture: String, edits: [(String, String)])]) throws -> HealthSnapshot {
        let raw = try replies.map { reply -> RawReply in
            var text = String(decoding: try Fixtures.bytes(reply.fixture), as: UTF8.self)
            for (from, to) in reply.edits {
                #expect(text.contains(from), "fixture \(reply.fixture) has no \(from)")
                text = text.replacingOccurrences(of: from, with: to)
            }
            return RawReply(rpc: reply.rpc, bytes: Array(text.utf8))
        }
        return HealthSnapshot(facts: DeviceFacts.parsed(from: raw))
    }

    let noAlarms = (rpc: "get-alarm-information", fixture: "get-alarm-information/jsnapy__no-active-alarms.xml", edits: [(String, String)]())
    let minorAlarm = (rpc: "get-alarm-information", fixture: "get-alarm-information/jsnapy__one-minor-plane-offline.xml", edits: [(String, String)]())
    let engines = (rpc: "get-route-engine-information", fixture: "get-route-engine-information/pyez__mx480-dual-re-15.1F5.xml", edits: [(String, String)]())
    let uptime = (rpc: "get-system-uptime-information", fixture: "get-system-uptime-information/rjmcp__vsrx-24.4.xml", edits: [(String, String)]())

    @Test func theSamePollTwiceRaisesNothing() throws {
        let a = try snapshot([minorAlarm, engines, uptime])
        let b = try snapshot([minorAlarm, engines, uptime])
        #expect(b.events(since: a, at: Self.time).isEmpty)
        #expect(a.chassisAlarms == ["Minor: Plane 0 not online"])
        #expect(a.primaryRoutingEngine == "/0")
    }

    @Test func aNewAlarmIsOneEventAndAClearedOneNone() throws {
        let before = try snapshot([noAlarms])
        let after = try snapshot([minorAlarm])
        let events = after.events(since: before, at: Self.time)
        #expect(events == [TriggerEvent(kind: "alarm", source: "poll", time: Self.time, evidence: "new chassis alarm: Minor: Plane 0 not online")])
        #expect(before.events(since: after, at: Self.time).isEmpty)
    }

    @Test func aPollThatMissedAFactRaisesNothingForIt() throws {
        // The alarm RPC failed in the first poll: its alarms are not "new" in the second.
        let before = try snapshot([engines])
        let after = try snapshot([minorAlarm, engines])
        #expect(after.events(since: before, at: Self.time).isEmpty)
        #expect(before.events(since: after, at: Self.time).isEmpty)
    }

    /// A poll that missed the alarms (its RPC timed out) between two that got them: the kept
    /// baseline still has the first poll's alarms, so the third poll's new alarm is raised.
    @Test func aPartialPollKeepsTheBaselineForTheNext() throws {
        let first = try snapshot([noAlarms, engines])
        let partial = try snapshot([engines])
        let third = try snapshot([minorAlarm, engines])
        #expect(partial.events(since: first, at: Self.time).isEmpty)
        let baseline = partial.filling(from: first)
        #expect(baseline.chassisAlarms == first.chassisAlarms && baseline.routingEngineStates == partial.routingEngineStates)
        #expect(third.events(since: baseline, at: Self.time).map(\.evidence) == ["new chassis alarm: Minor: Plane 0 not online"])
        // As kept before: nothing to compare with, nothing raised.
        #expect(third.events(since: partial, at: Self.time).isEmpty)
    }

    @Test func aSwitchoverIsOneEvent() throws {
        let before = try snapshot([engines])
        var swapped = engines
        swapped.edits = [("<mastership-state>master</mastership-state>", "<mastership-state>TMP</mastership-state>"),
                         ("<mastership-state>backup</mastership-state>", "<mastership-state>master</mastership-state>"),
                         ("<mastership-state>TMP</mastership-state>", "<mastership-state>backup</mastership-state>")]
        let after = try snapshot([swapped])
        let events = after.events(since: before, at: Self.time)
        #expect(events.map(\.kind) == ["switchover"])
        #expect(events.first?.evidence == "primary routing engine was /0, now /1")
    }

    @Test func aRoutingEngineGoingOfflineIsAnFRUEvent() throws {
        let before = try snapshot([engines])
        var offline = engines
        // The second RE's status (the first <status>OK</status> after slot 1).
        offline.edits = [("<slot>1</slot>\n            <mastership-state>backup</mastership-state>", "<slot>1</slot>\n            <mastership-state>backup</mastership-state>\n            <status>Offline</status>")]
        let text = String(decoding: try Fixtures.bytes(engines.fixture), as: UTF8.self)
        // Drop the second RE's own status line so the inserted one is its only one.
        let lines = text.components(separatedBy: "\n")
        let slot1 = try #require(lines.firstIndex { $0.contains("<slot>1</slot>") })
        let status1 = try #require(lines[slot1...].firstIndex { $0.contains("<status>OK</status>") })
        offline.edits.append((lines[status1] + "\n", ""))
        let after = try snapshot([offline])
        let events = after.events(since: before, at: Self.time)
        #expect(events.map(\.kind) == ["fru-offline"])
        #expect(events.first?.evidence == "routing engine /1 was OK, now Offline")
    }

    @Test func aRebootShowsAsANewBootTime() throws {
        let before = try snapshot([uptime])
        var rebooted = uptime
        rebooted.edits = [("junos:seconds=\"1779727872\"", "junos:seconds=\"1779840000\""), ("<up-time junos:seconds=\"115200\">", "<up-time junos:seconds=\"300\">")]
        let after = try snapshot([rebooted])
        let events = after.events(since: before, at: Self.time)
        #expect(events.map(\.kind) == ["reboot"])
        #expect(events.first?.evidence == "local: uptime 300 s, was 115200 s", "\(events)")
    }

    /// A switchover is not a reboot: the session now reaches the other RE, whose boot time the
    /// uptime reply's single section shows; each RE's own uptime (routing-engine reply) went on.
    @Test func aSwitchoverIsNotAReboot() throws {
        let before = try snapshot([engines, uptime])
        var swapped = engines
        swapped.edits = [("<mastership-state>master</mastership-state>", "<mastership-state>TMP</mastership-state>"),
                         ("<mastership-state>backup</mastership-state>", "<mastership-state>master</mastership-state>"),
                         ("<mastership-state>TMP</mastership-state>", "<mastership-state>backup</mastership-state>")]
        var otherEngine = uptime
        otherEngine.edits = [("junos:seconds=\"1779727872\"", "junos:seconds=\"1779727000\""), ("<up-time junos:seconds=\"115200\">", "<up-time junos:seconds=\"110000\">")]
        let after = try snapshot([swapped, otherEngine])
        #expect(after.events(since: before, at: Self.time).map(\.kind) == ["switchover"])
        // Without the routing-engine reply's uptimes the single section is still not taken for a reboot.
        let noUptimes = [("<up-time junos:seconds=\"858432\">9 days, 22 hours, 27 minutes, 12 seconds</up-time>", ""),
                         ("<up-time junos:seconds=\"858408\">9 days, 22 hours, 26 minutes, 48 seconds</up-time>", "")]
        var bareEngines = engines, bareSwapped = swapped
        bareEngines.edits += noUptimes
        bareSwapped.edits += noUptimes
        let bare = try snapshot([bareEngines, uptime]), bareAfter = try snapshot([bareSwapped, otherEngine])
        #expect(bare.engineUptimes.isEmpty && !bare.engineBootTimes.isEmpty)
        #expect(bareAfter.events(since: bare, at: Self.time).map(\.kind) == ["switchover"])
    }

    /// The backup RE rebooting: its own uptime fell; the master's uptime reply says nothing of it.
    @Test func aBackupRoutingEngineRebootIsSeen() throws {
        let before = try snapshot([engines, uptime])
        var backupRebooted = engines
        backupRebooted.edits = [("<up-time junos:seconds=\"858408\">", "<up-time junos:seconds=\"120\">")]
        let after = try snapshot([backupRebooted, uptime])
        let events = after.events(since: before, at: Self.time)
        #expect(events.map(\.kind) == ["reboot"])
        #expect(events.first?.evidence == "routing engine /1: uptime 120 s, was 858408 s", "\(events)")
    }

    let clusterHealthy = (rpc: "get-chassis-cluster-status", fixture: "get-chassis-cluster-status/librenms__srx-24.4R2-healthy.xml", edits: [(String, String)]())

    /// Junos keeps listing a lost node (status `lost`): it is out of service all the same.
    @Test func aClusterNodeListedAsLostIsOneEvent() throws {
        let before = try snapshot([clusterHealthy])
        var lost = clusterHealthy
        lost.edits = [("<device-priority>1</device-priority>\n                <redundancy-group-status>secondary</redundancy-group-status>",
                       "<device-priority>0</device-priority>\n                <redundancy-group-status>lost</redundancy-group-status>")]
        let after = try snapshot([lost])
        let events = after.events(since: before, at: Self.time)
        #expect(events.map(\.kind) == ["cluster-node-lost"])
        #expect(events.first?.evidence == "chassis cluster node node1 out of service (redundancy group 0: secondary → lost, 1: secondary → lost)", "\(events)")
        // The real capture of a lost node reads the same way.
        let captured = try snapshot([(rpc: "get-chassis-cluster-status", fixture: "get-chassis-cluster-status/pyez__srx-12.1X44-node1-lost.xml", edits: [])])
        #expect(captured.events(since: before, at: Self.time).map(\.evidence) == ["chassis cluster node node1 out of service (redundancy group 0: secondary → lost)"])
    }

    @Test func aRedundancyGroupFailoverIsOneEvent() throws {
        let before = try snapshot([clusterHealthy])
        let after = try snapshot([(rpc: "get-chassis-cluster-status", fixture: "get-chassis-cluster-status/jexp__srx-23.4-rg1-on-node1.xml", edits: [])])
        let events = after.events(since: before, at: Self.time)
        #expect(events.map(\.kind) == ["cluster-failover"])
        #expect(events.first?.evidence == "redundancy group 1: primary was node0, now node1")
    }

    @Test func aNewCoreFileIsOneEvent() throws {
        let listing = { (files: String) in
            """
            <rpc-reply xmlns:junos="http://xml.juniper.net/junos/21.4R3/junos">
            <directory-list root-path="/var/crash/*core*" junos:style="detail">
            <directory><directory-name>/var/tmp/</directory-name>\(files)</directory>
            </directory-list></rpc-reply>
            """
        }
        let file = { (name: String) in "<file-information><file-name>\(name)</file-name><file-size>1048576</file-size></file-information>" }
        let before = HealthSnapshot(facts: DeviceFacts.parsed(from: [RawReply(rpc: "get-system-core-dumps", bytes: Array(listing(file("/var/tmp/rpd.core.0.gz")).utf8))]))
        let after = HealthSnapshot(facts: DeviceFacts.parsed(from: [RawReply(rpc: "get-system-core-dumps",
            bytes: Array(listing(file("/var/tmp/rpd.core.0.gz") + file("/var/tmp/chassisd.core.1.gz")).utf8))]))
        #expect(try #require(before.coreFiles).count == 1)
        let events = after.events(since: before, at: Self.time)
        #expect(events.map(\.kind) == ["core-dump"])
        #expect(events.first?.evidence.hasSuffix("/var/tmp/chassisd.core.1.gz") == true, "\(events)")
    }
}

/// The baselines survive a restart (`health-baselines.json`): a reboot during the agent's own
/// upgrade is compared against the poll before it, not taken as the first poll's state.
@Suite struct HealthBaselineTests {
    @Test func baselinesAreKeptInTheStateDirectoryAndReadAtStart() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try [("get-route-engine-information", "get-route-engine-information/pyez__mx480-dual-re-15.1F5.xml"),
                       ("get-virtual-chassis-information", "get-virtual-chassis-information/pyez__ex4200-single-member.xml"),
                       ("get-chassis-cluster-status", "get-chassis-cluster-status/librenms__srx-24.4R2-healthy.xml")]
            .map { RawReply(rpc: $0.0, bytes: try Fixtures.bytes($0.1)) }
        let snapshot = HealthSnapshot(facts: DeviceFacts.parsed(from: raw))
        #expect(!snapshot.engineUptimes.isEmpty && !snapshot.virtualChassisMembers.isEmpty && !snapshot.clusterNodeStates.isEmpty)
        try HealthBaselines.save(["r1": snapshot, "gone": snapshot], stateDirectory: dir.path)
        #expect(HealthBaselines.load(stateDirectory: dir.path)["r1"] == snapshot)

        var configuration = AgentConfiguration(devices: [Device(name: "r1", host: "127.0.0.1", port: 9)])
        configuration.agent.stateDirectory = dir.path
        configuration.groups[AgentConfiguration.defaultGroup]?.poll = .seconds(3600)
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        let poller = HealthPoller(runtime: runtime, logger: Logger.test, tick: .milliseconds(20))
        let running = Task { try await poller.run() }
        for _ in 0..<100 where poller.snapshot(of: "r1") == nil { try await Task.sleep(for: .milliseconds(20)) }
        #expect(poller.snapshot(of: "r1") == snapshot, "read at start: the first poll compares with it")
        try await Task.sleep(for: .milliseconds(100))
        running.cancel()
        try await running.value
        // Written back at stop, without the device that left the inventory.
        #expect(HealthBaselines.load(stateDirectory: dir.path).keys.sorted() == ["r1"])
    }
}
