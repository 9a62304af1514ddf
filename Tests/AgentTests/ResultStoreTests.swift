@testable import Agent
import Bundle
import Foundation
import Junos
import Logging
import Testing
import TestSupport

/// The results file reuses the facts.json bytes written into the bundle instead of encoding the
/// facts a second time: what it holds must be exactly what encoding the whole result gives.
@Suite struct ResultStoreTests {
    func result() throws -> DeviceResult {
        var facts = DeviceFacts()
        facts.software = try SoftwareInformation.parse(bytes: Fixtures.bytes("get-software-information/pyez__m320-dual-re-14.1R1.xml"),
                                                       rpc: "get-software-information")
        facts.inventory = try ChassisInventory.parse(bytes: Fixtures.bytes("get-chassis-inventory/\(try firstFixture("get-chassis-inventory"))"),
                                                     rpc: "get-chassis-inventory")
        // Strings with quotes, slashes and newlines: escaped in both encodings.
        facts.parseErrors = ["get-system-storage": "no \"filesystem\" at /var\nsecond line"]
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        var result = DeviceResult(device: Device(name: "r1", host: "192.0.2.1"), host: "192.0.2.1", port: 830, trigger: .schedule,
                                  started: start, finished: start.addingTimeInterval(5), status: .ok, failureKind: nil, reason: nil,
                                  attempts: 1, rpcs: [RPCResult(name: "get-software-information", status: .ok, durationMilliseconds: 12)],
                                  facts: facts, log: "+0ms info collecting\n")
        result.stored = "/var/spool/care-agent/outbox/r1.tar.gz"
        result.factsJSON = try BundleWriter.factsJSON(facts)
        return result
    }

    func firstFixture(_ rpc: String) throws -> String {
        try #require(try FileManager.default.contentsOfDirectory(atPath: Fixtures.directory.appendingPathComponent(rpc).path)
            .filter { $0.hasSuffix(".xml") }.sorted().first)
    }

    func object(_ data: Data) throws -> NSDictionary {
        try #require(try JSONSerialization.jsonObject(with: data) as? NSDictionary)
    }

    /// `status` shows the last result of each device in the fleet now: one that left the
    /// inventory keeps its file, but is not shown (nor read).
    @Test func statusShowsTheDevicesOfTheFleetNow() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var configuration = AgentConfiguration(devices: [Device(name: "r2", host: "192.0.2.2"), Device(name: "r1", host: "192.0.2.1"),
                                                         Device(name: "r3", host: "192.0.2.3"), Device(name: "r4", host: "192.0.2.4")])
        configuration.agent.stateDirectory = dir.path
        let store = ResultStore(stateDirectory: dir.path)
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        for name in ["r1", "gone", "r2"] {
            try store.save(DeviceResult(device: Device(name: name, host: "192.0.2.9"), host: "192.0.2.9", port: 830, trigger: .schedule,
                                        started: start, finished: start.addingTimeInterval(5), status: .ok, failureKind: nil, reason: nil,
                                        attempts: 1, rpcs: [], facts: DeviceFacts(), log: ""))
        }
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger(label: "test"),
                                       makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        // r4's results cannot be read (a directory where its file goes stands for any unreadable
        // file: root reads a mode 000 file); r3 has never been collected.
        try FileManager.default.createDirectory(atPath: store.path("r4"), withIntermediateDirectories: true)
        let status = await AgentStatus(runtime: runtime)
        #expect(status.results.map(\.name) == ["r1", "r2"])
        #expect(status.notCollected == ["r3"] && status.unreadableResults == ["r4"], "every device of the fleet is accounted for")
        let wire = try object(try ResultStore.encoder.encode(status))
        #expect(wire["notCollected"] as? [String] == ["r3"] && wire["unreadableResults"] as? [String] == ["r4"])
        #expect(store.loadAll().map(\.device.name).sorted() == ["gone", "r1", "r2"], "the file stays")
    }

    /// Names that map to the same safe file name (`core/r1`, `core r1`, from NetBox) keep one
    /// result each; a device's file from before (the safe name alone) is replaced, not doubled.
    @Test func namesThatLookAlikeOnDiskKeepTheirOwnResults() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ResultStore(stateDirectory: dir.path)
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        func result(_ name: String, _ host: String) -> DeviceResult {
            DeviceResult(device: Device(name: name, host: host), host: host, port: 830, trigger: .schedule, started: start,
                         finished: start.addingTimeInterval(5), status: .ok, failureKind: nil, reason: nil, attempts: 1, rpcs: [],
                         facts: DeviceFacts(), log: "")
        }
        // As an earlier version stored "core/r1": under the safe name alone.
        try FileManager.default.createDirectory(atPath: store.directory, withIntermediateDirectories: true)
        try ResultStore.encode(result("core/r1", "192.0.2.9")).write(to: URL(fileURLWithPath: store.directory + "/core_r1.json"))
        // Read from there until the device has a file of its own (its last good facts survive).
        #expect(store.load("core/r1")?.host == "192.0.2.9")
        #expect(store.load("core r1") == nil)
        try store.save(result("core/r1", "192.0.2.1"))
        try store.save(result("core r1", "192.0.2.2"))
        try store.save(result("core_r1", "192.0.2.3"))
        #expect(store.load("core/r1")?.host == "192.0.2.1")
        #expect(store.load("core r1")?.host == "192.0.2.2")
        #expect(store.load("core_r1")?.host == "192.0.2.3")
        #expect(store.loadAll().map(\.device.name).sorted() == ["core r1", "core/r1", "core_r1"])
    }

    @Test func theSplicedFileIsTheWholeResult() throws {
        let result = try result()
        let spliced = try ResultStore.encode(result)
        let whole = try ResultStore.encoder.encode(result)
        #expect(spliced != whole, "the facts were encoded again instead of reused")
        #expect(try object(spliced) == object(whole))
        let decoded = try ResultStore.decoder.decode(DeviceResult.self, from: spliced)
        #expect(decoded.facts == result.facts)
        #expect(decoded.stored == result.stored && decoded.rpcs.count == 1 && decoded.log == result.log)
    }

    @Test func changedFactsAreNeverWrittenFromStaleBytes() throws {
        var result = try result()
        result.facts.software = nil
        #expect(result.factsJSON == nil)
        let decoded = try ResultStore.decoder.decode(DeviceResult.self, from: try ResultStore.encode(result))
        #expect(decoded.facts.software == nil && decoded.facts.inventory != nil)
    }

    @Test func saveAndLoadKeepTheLastGoodFacts() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ResultStore(stateDirectory: dir.path)
        let good = try result()
        try store.save(good)
        #expect(store.load("r1")?.facts == good.facts)
        // A failed run: no facts of its own, the last good ones beside it.
        var failed = good
        failed.facts = DeviceFacts()
        failed.status = .failed
        try store.save(failed)
        let loaded = try #require(store.load("r1"))
        #expect(loaded.status == .failed && loaded.facts.software == nil)
        #expect(loaded.lastGood?.facts == good.facts)
    }
}
