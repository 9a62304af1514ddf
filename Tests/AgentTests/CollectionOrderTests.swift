@testable import Agent
import Foundation
import Junos
import Testing
import TestSupport

/// ``CollectionOrder``: slowest last time first.
@Suite struct CollectionOrderTests {
    func devices(_ names: [String]) -> [Device] { names.map { Device(name: $0, host: "192.0.2.1") } }

    @Test func withoutHistoryTheInventoryOrderStands() {
        #expect(CollectionOrder().startOrder(devices(["a", "b", "c"])) == [0, 1, 2])
    }

    @Test func theSlowestStartFirstAndNewDevicesCountAsTheMedian() {
        let order = CollectionOrder(seconds: ["a": 3.4, "b": 11.2, "c": 3.4, "d": 0.2, "e": 5])
        // f is unknown: the median (3.4), after e, among a and c in inventory order.
        let list = devices(["a", "b", "c", "d", "e", "f"])
        #expect(order.startOrder(list).map { list[$0].name } == ["b", "e", "a", "c", "f", "d"])
    }

    @Test func durationsAreRecordedKeptAndReadBack() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        func result(_ name: String, seconds: Double, status: DeviceStatus) -> DeviceSummary {
            DeviceSummary(DeviceResult(device: Device(name: name, host: "192.0.2.1"), host: "192.0.2.1", port: 830, trigger: .schedule,
                                       started: start, finished: start.addingTimeInterval(seconds), status: status,
                                       failureKind: nil, reason: nil, attempts: 1, rpcs: [], facts: DeviceFacts(), log: ""))
        }
        var order = CollectionOrder()
        order.record([result("hung", seconds: 11.5, status: .failed), result("quick", seconds: 3.25, status: .ok),
                      result("busy", seconds: 0, status: .skipped)])
        #expect(order.seconds == ["hung": 11.5, "quick": 3.25], "a device not attempted has no duration")
        order.keep(only: ["hung", "quick", "other"])
        try order.save(stateDirectory: dir.path)
        #expect(CollectionOrder.load(stateDirectory: dir.path) == order)
        order.keep(only: ["quick"])
        #expect(order.seconds == ["quick": 3.25])
        // Another process (the service, a standalone run) sharing the state directory: each
        // writes what it recorded or forgot over what the other wrote, not its whole old copy.
        var service = CollectionOrder.load(stateDirectory: dir.path)
        var standalone = CollectionOrder.load(stateDirectory: dir.path)
        standalone.record([result("new", seconds: 7, status: .ok)])
        try standalone.save(stateDirectory: dir.path)
        service.record([result("quick", seconds: 4, status: .ok)])
        service.keep(only: ["quick", "new"])
        try service.save(stateDirectory: dir.path)
        #expect(CollectionOrder.load(stateDirectory: dir.path).seconds == ["quick": 4, "new": 7])
        // Damaged: no history, not an error.
        try Data("{not json".utf8).write(to: dir.appendingPathComponent("collection-order.json"))
        #expect(CollectionOrder.load(stateDirectory: dir.path) == CollectionOrder())
    }

    /// A real fleet behind sshd, one device hanging until the RPC timeout, collected one at a
    /// time by `collect now --standalone` twice with the same state: the first run takes the
    /// inventory's order, the second starts the device that hung before the others.
    @Test func theDeviceThatHungLastTimeStartsFirst() throws {
        let executable = try careAgentExecutable()
        let scratch = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let fleet = try FleetProcess(executable: executable, devices: 4, in: scratch,
                                     arguments: ["--faults", "hang:1", "--seed", "1", "--latency-ms", "10"])
        defer { fleet.stop() }
        let planned = try #require(try fleet.plan()["devices"] as? [[String: Any]])
        let hung = try #require(planned.first { $0["fault"] as? String == "hang" }?["name"] as? String)
        // The seed puts it after the first device: the second run's order is the history's doing.
        try #require(planned.first?["name"] as? String != hung)
        let agentState = scratch.appendingPathComponent("agent").path

        struct Summary: Decodable { var name: String; var status: String; var started: Date }
        func collect(_ run: Int) throws -> [Summary] {
            let stdout = scratch.appendingPathComponent("collect\(run).out").path, stderr = scratch.appendingPathComponent("collect\(run).err").path
            let process = try ChildProcess(executable, ["collect", "now", "--standalone"] + (try fleet.collectArguments()) + [
                "--out", scratch.appendingPathComponent("bundles").path, "--state", agentState,
                "--concurrency", "1", "--timeout", "3", "--json",
            ], stdout: stdout, stderr: stderr)
            #expect(waitUntil(.seconds(90)) { !process.isRunning })
            #expect(process.wait() == 1, "the hung device fails: \(readText(stderr))")
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode([Summary].self, from: Data(readText(stdout).utf8))
        }
        let first = try collect(1)
        // Summaries in the inventory's order either way.
        #expect(first.map(\.name) == planned.compactMap { $0["name"] as? String })
        // The first run: the inventory's order, the device after the hung one waiting for it.
        let hungFirstRun = try #require(first.first { $0.name == hung }?.started)
        #expect(first[0].started <= hungFirstRun && first.last!.started.timeIntervalSince(hungFirstRun) >= 2, "\(first)")
        let history = CollectionOrder.load(stateDirectory: agentState)
        let hungSeconds = try #require(history.seconds[hung])
        #expect(hungSeconds >= 3 && history.seconds.count == 4)
        #expect(history.seconds.filter { $0.key != hung }.values.allSatisfy { $0 < hungSeconds })

        let second = try collect(2)
        let hungStart = try #require(second.first { $0.name == hung }?.started)
        // One at a time: every other device waited for its RPC timeout (3 s; the summaries'
        // times are whole seconds).
        for other in second where other.name != hung {
            #expect(other.started.timeIntervalSince(hungStart) >= 2, "\(other.name) started before the device that hung last time")
        }
    }
}
