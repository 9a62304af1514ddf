@testable import Agent
import Bundle
import Foundation
import Junos
import Logging
import Testing
import TestSupport

/// A simulated MX480 on its own sshd, and an agent.conf text for devices on it.
struct SimulatedDevice {
    let sshd: SSHDHarness

    init(dir: URL, simulatorArguments: String = "") throws {
        let profile = try TestProfiles.write(fullProfile, named: "mx480-\(UUID().uuidString.prefix(4))", under: dir)
        sshd = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) \(simulatorArguments)"))
    }

    func configuration(_ devices: [String], agent: String = "", defaults: String = "") throws -> AgentConfiguration {
        try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text(devices, agent: agent, defaults: defaults)))
    }

    func text(_ devices: [String], agent: String = "", defaults: String = "") -> String {
        var text = """
        [agent]
        \(agent)
        [defaults]
        user = \(sshd.user)
        key-file = \(sshd.clientKeys["ed25519"]!)
        known-hosts = \(sshd.knownHostsPath)
        \(defaults)

        """
        for device in devices { text += "[device \(device)]\nhost = \(sshd.addresses[0])\nport = \(sshd.port)\n" }
        return text
    }

    func stop() { sshd.stop() }
}

/// A bundle that cannot be written makes the device's collection a failure everywhere it shows.
@Suite(.serialized) struct StoreFailureTests {
    @Test func aCollectionWhoseBundleCannotBeWrittenIsFailedInStatusAndMetrics() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = try SimulatedDevice(dir: dir)
        defer { device.stop() }
        // An outbox under a regular file: mkdir fails with ENOTDIR, for root too.
        let blocker = dir.appendingPathComponent("not-a-directory").path
        FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        var config = try device.configuration(["r1"], defaults: "skip = configuration, storage, coreDumps")
        config.agent.outbox = blocker + "/outbox"
        config.agent.stateDirectory = dir.appendingPathComponent("state").path
        let key = try AgentKey.loadOrCreate(stateDirectory: dir)
        let runtime = try AgentRuntime(configuration: config, configurationPath: nil, logger: Logger.test, makeSink: {
            BundleSink(outbox: $0.agent.outbox, key: key, agent: AgentIdentity(id: "t", version: "t"))
        })
        let result = try #require(await runtime.collect(config.devices, trigger: .request).first)
        #expect(result.status == .failed)
        #expect(result.failureKind == .notStored)
        #expect(result.reason?.hasPrefix("not stored: mkdir \(blocker): Not a directory") == true, "\(result.reason ?? "")")
        // What the device answered is kept: the facts were collected, only the bundle is missing.
        #expect(result.reason?.contains("(collected ok)") == true)
        #expect(result.facts.software == nil, "the runtime's results hold no facts: they are in the results store")
        let recorded = ResultStore(stateDirectory: config.agent.stateDirectory).load("r1")
        #expect(recorded?.facts.software?.model == "mx480")

        let status = await AgentStatus(runtime: runtime)
        #expect(status.results.map(\.status) == [.failed])
        #expect(status.results.first?.failure == .notStored)
        let metrics = await runtime.metrics.render(outboxDepth: 0)
        #expect(metrics.contains("care_agent_collections_total{group=\"default\",result=\"failed\"} 1\n"))
        #expect(metrics.contains("care_agent_collections_total{group=\"default\",result=\"ok\"} 0\n"))
        #expect(metrics.contains("care_agent_collection_failures_total{group=\"default\",cause=\"not-stored\"} 1\n"))
    }

    /// A user outside the care-agent group reading the service's state is told so (and how to
    /// join), not that nothing was collected or no event happened.
    @Test(.enabled(if: geteuid() == 0, "needs root to run as another user"))
    func readingTheStateWithoutPermissionSaysSo() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        chmod(dir.path, 0o755)
        let state = dir.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: state + "/results", withIntermediateDirectories: true)
        try "{}\n".write(toFile: state + "/events.jsonl", atomically: true, encoding: .utf8)
        chmod(state, 0o750)
        let asNobody = ["--reuid", "65534", "--regid", "65534", "--clear-groups", try careAgentExecutable()]
        for command in [["inventory"], ["events"]] {
            let run = try CollectCommandTests().careAgent(asNobody + command + ["--state", state], in: dir, program: "/usr/bin/setpriv")
            #expect(run.status == 2, "\(command): \(run.stdout)\(run.stderr)")
            #expect(run.stderr.contains("cannot read \(state): permission denied") && run.stderr.contains("usermod -aG care-agent"),
                    "\(command): \(run.stderr)")
        }
        // Root reads it: nothing collected is said as before.
        let root = try CollectCommandTests().careAgent(["inventory", "--state", state], in: dir)
        #expect(root.status == 1 && root.stderr.contains("nothing collected yet"), "\(root.stderr)")
    }

    /// Root collecting into the service's directories would leave root's files there (bundles the
    /// service cannot upload, results status cannot read): refused before anything is written.
    @Test(.enabled(if: geteuid() == 0, "the refusal is root's"))
    func rootIsRefusedTheServicesDirectories() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inventory = dir.appendingPathComponent("inventory.csv").path
        try "name,host,port\nr1,127.0.0.1,1\n".write(toFile: inventory, atomically: true, encoding: .utf8)
        let state = dir.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        #expect(chown(state, 65534, 65534) == 0)
        let out = dir.appendingPathComponent("out").path
        let run = try CollectCommandTests().careAgent(["collect", "now", "--standalone", "--inventory", inventory, "--user", "u",
                                                       "--state", state, "--out", out], in: dir)
        #expect(run.status == 2, "\(run.stdout)\(run.stderr)")
        #expect(run.stderr.contains("refusing to collect as root into \(state)") && run.stderr.contains("sudo -u "), "\(run.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: state).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func collectNowStandaloneExitsNonZeroWhenNothingCouldBeStored() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = try SimulatedDevice(dir: dir)
        defer { device.stop() }
        let h = device.sshd
        let inventory = dir.appendingPathComponent("inventory.csv").path
        try "name,host,port\nr1,\(h.addresses[0]),\(h.port)\n".write(toFile: inventory, atomically: true, encoding: .utf8)
        let blocker = dir.appendingPathComponent("not-a-directory").path
        FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        let common = ["collect", "now", "--standalone", "--inventory", inventory, "--user", h.user, "--key", h.clientKeys["ed25519"]!,
                      "--known-hosts", h.knownHostsPath, "--state", dir.appendingPathComponent("state").path, "--out", blocker + "/outbox"]
        let text = try CollectCommandTests().careAgent(common, in: dir)
        #expect(text.status == 1, "\(text.stdout)\(text.stderr)")
        #expect(text.stdout.contains("1 devices: 0 ok, 0 partial, 1 failed"), "\(text.stdout)")
        #expect(text.stdout.contains("  FAILED r1 (\(h.addresses[0]):\(h.port)): not stored: mkdir \(blocker): Not a directory"), "\(text.stdout)")
        let json = try CollectCommandTests().careAgent(common + ["--json"], in: dir)
        #expect(json.status == 1)
        let summaries = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(summaries?.first?["status"] as? String == "failed")
        #expect(summaries?.first?["failure"] as? String == "not-stored")
    }
}

/// A failed or cancelled run does not wipe what the last good run learnt about a device.
@Suite(.serialized) struct LastGoodFactsTests {
    @Test func aFailedRunKeepsTheLastGoodInventory() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = try SimulatedDevice(dir: dir)
        defer { device.stop() }
        let h = device.sshd
        let state = dir.appendingPathComponent("state").path
        let good = dir.appendingPathComponent("good.csv").path
        try "name,host,port\nr1,\(h.addresses[0]),\(h.port)\n".write(toFile: good, atomically: true, encoding: .utf8)
        // The same device, unreachable: nothing listens on that port.
        let closed = try SSHDHarness.freePort(on: "127.0.0.1")
        let down = dir.appendingPathComponent("down.csv").path
        try "name,host,port\nr1,127.0.0.1,\(closed)\n".write(toFile: down, atomically: true, encoding: .utf8)
        let common = ["collect", "now", "--standalone", "--user", h.user, "--key", h.clientKeys["ed25519"]!,
                      "--known-hosts", h.knownHostsPath, "--state", state, "--out", dir.appendingPathComponent("out").path]
        let cli = CollectCommandTests()

        #expect(try cli.careAgent(common + ["--inventory", good], in: dir).status == 0)
        let before = try cli.careAgent(["inventory", "--state", state, "--csv"], in: dir).stdout
        #expect(before.hasPrefix("device,host,model,serial,version,collected\nr1,\(h.addresses[0]),mx480,"), "\(before)")
        let goodStart = try #require(ResultStore(stateDirectory: state).load("r1")).started

        for _ in 0..<2 {
            let failed = try cli.careAgent(common + ["--inventory", down, "--device-timeout", "3"], in: dir)
            #expect(failed.status == 1)
        }
        let last = try #require(ResultStore(stateDirectory: state).load("r1"))
        #expect(last.status == .failed && last.failureKind == .unreachable)
        // Carried over twice: still the first run's facts and time.
        #expect(last.lastGood?.facts.software?.model == "mx480")
        #expect(last.lastGood?.collected == goodStart)
        // `inventory` shows the same model, serial and version (host is the device's current one).
        let after = try cli.careAgent(["inventory", "--state", state, "--csv"], in: dir).stdout
        let fields = { (text: String) in text.split(separator: "\n").last.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? [] }
        #expect(fields(after).count == 6)
        #expect(Array(fields(after)[2...]) == Array(fields(before)[2...]), "\(before)\n\(after)")
        let json = try cli.careAgent(["inventory", "--state", state, "--json"], in: dir).stdout
        let rows = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]
        #expect(rows?.first?["lastStatus"] as? String == "failed")
        #expect(rows?.first?["serial"] as? String == last.lastGood?.facts.inventory?.chassisSerial)
        let frus = try cli.careAgent(["inventory", "--state", state, "--fru", "--csv"], in: dir).stdout
        #expect(frus.split(separator: "\n").count > 5, "\(frus)")
    }

    /// A run whose chassis inventory failed (software answered) keeps the last serial and FRUs.
    @Test func aRunMissingItsInventoryKeepsTheLastOne() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ResultStore(stateDirectory: dir.path)
        func result(at seconds: TimeInterval, software: String?, serial: String?) -> DeviceResult {
            var facts = DeviceFacts()
            facts.software = software.map { SoftwareInformation(hostname: "r1", model: "mx480", version: JunosVersion($0)) }
            facts.inventory = serial.map { ChassisInventory(chassis: [InventoryChassis(serialNumber: $0)]) }
            let start = Date(timeIntervalSince1970: seconds)
            return DeviceResult(device: Device(name: "r1", host: "192.0.2.1"), host: "192.0.2.1", port: 830, trigger: .standalone,
                                started: start, finished: start.addingTimeInterval(5), status: serial == nil ? .partial : .ok,
                                failureKind: nil, reason: nil, attempts: 1, rpcs: [], facts: facts, log: "")
        }
        try store.save(result(at: 1000, software: "21.4R3-S5.4", serial: "JN-OLD"))
        try store.save(result(at: 2000, software: "22.4R2-S2", serial: nil))
        let partial = try #require(store.load("r1"))
        #expect(partial.bestFacts.facts.inventory?.chassisSerial == "JN-OLD")
        #expect(partial.bestFacts.facts.software?.version?.raw == "22.4R2-S2", "this run's software wins")
        // Then nothing at all: the merged best of the run before is what is kept.
        try store.save(result(at: 3000, software: nil, serial: nil))
        let failed = try #require(store.load("r1"))
        #expect(failed.bestFacts.facts.inventory?.chassisSerial == "JN-OLD")
        #expect(failed.bestFacts.facts.software?.version?.raw == "22.4R2-S2")
    }

    @Test func devicesThatNeverStartedAreNotRecordedAsCancelled() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let healthy = try SimulatedDevice(dir: dir)
        let hung = try SimulatedDevice(dir: dir, simulatorArguments: "--fault hang")
        defer { healthy.stop(); hung.stop() }
        let state = dir.appendingPathComponent("state").path
        let names = ["d1", "d2", "d3"]
        func runtime(_ device: SimulatedDevice) throws -> (AgentRuntime, [Device]) {
            var config = try device.configuration(names, agent: "concurrency = 1", defaults: "rpc-timeout = 60s")
            config.agent.stateDirectory = state
            let out = dir.appendingPathComponent("out").path
            return (try AgentRuntime(configuration: config, configurationPath: nil, logger: Logger.test,
                                     makeSink: { _ in DirectorySink(root: out) }), config.devices)
        }
        let (first, devices) = try runtime(healthy)
        #expect(await first.collect(devices, trigger: .request).allSatisfy { $0.status == .ok })
        let store = ResultStore(stateDirectory: state)
        let goodStarts = names.map { store.load($0)?.started }

        // One at a time, and d1 hangs: d2 and d3 wait for their turn when the run is cancelled.
        // In inventory order: without the first run's durations, which would put the slowest first.
        try FileManager.default.removeItem(atPath: state + "/collection-order.json")
        let (second, sameDevices) = try runtime(hung)
        let run = Task { await second.collect(sameDevices, trigger: .schedule) }
        let deadline = ContinuousClock.now + .seconds(10)
        while await (second.devicesCollecting.count, second.devicesQueued.count) != (1, 2) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(500))
        run.cancel()
        let results = await run.value
        #expect(results.map(\.status) == [.failed, .skipped, .skipped], "\(results.map { $0.reason ?? "" })")
        #expect(results[0].reason?.contains("cancelled: the agent is stopping") == true, "\(results[0].reason ?? "")")
        #expect(results[1].failureKind == .cancelled)
        #expect(results[1].reason?.contains("cancelled before its turn") == true)
        // d1 did start: its failure is recorded, with the last good facts beside it.
        let d1 = try #require(store.load("d1"))
        #expect(d1.status == .failed && d1.lastGood?.facts.software?.model == "mx480")
        // d2 and d3 never started: their last results are still the good ones.
        #expect(store.load("d2")?.status == .ok && store.load("d2")?.started == goodStarts[1])
        #expect(store.load("d3")?.status == .ok && store.load("d3")?.started == goodStarts[2])
        let metrics = await second.metrics.render(outboxDepth: 0)
        #expect(metrics.contains("care_agent_collections_total{group=\"default\",result=\"skipped\"} 2\n"))
    }
}

/// Devices waiting for a concurrency slot are queued, not "being collected".
@Suite(.serialized) struct QueuedDevicesTests {
    @Test func aRequestForAQueuedDeviceIsAnsweredQueuedAndStatusTellsQueuedFromCollecting() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // About 1.5 s per device: time to look while one is collected and two wait.
        let device = try SimulatedDevice(dir: dir, simulatorArguments: "--latency-ms 200")
        defer { device.stop() }
        var config = try device.configuration(["d1", "d2", "d3"], agent: "concurrency = 1",
                                              defaults: "skip = configuration, storage, coreDumps, uptime, environment")
        config.agent.stateDirectory = dir.appendingPathComponent("state").path
        let out = dir.appendingPathComponent("out").path
        let runtime = try AgentRuntime(configuration: config, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: out) })
        let run = Task { await runtime.collect(config.devices, trigger: .schedule) }
        let deadline = ContinuousClock.now + .seconds(10)
        var status = await AgentStatus(runtime: runtime)
        while (status.inFlight.count, status.queued.count) != (1, 2) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            status = await AgentStatus(runtime: runtime)
        }
        #expect(status.inFlight.count == 1 && status.queued.count == 2, "collecting \(status.inFlight), queued \(status.queued)")
        #expect(Set(status.inFlight + status.queued) == ["d1", "d2", "d3"])
        let collecting = try #require(status.inFlight.first)
        let waiting = try #require(status.queued.last)

        // `collect now --device` for a queued device: satisfied by the run that has it queued.
        let asked = ContinuousClock.now
        let answer = try await runtime.collect(groups: [], devices: [waiting], trigger: .request)
        #expect(ContinuousClock.now - asked < .milliseconds(500), "answered at once, without waiting for a slot")
        #expect(answer.map(\.status) == [.queued], "\(answer.map { $0.reason ?? "" })")
        #expect(answer.first?.reason?.hasPrefix("queued: ") == true)
        // For the one being collected: skipped, as before.
        let busy = try await runtime.collect(groups: [], devices: [collecting], trigger: .request)
        #expect(busy.map(\.status) == [.skipped])
        #expect(busy.first?.reason?.contains("already being collected") == true)

        let results = await run.value
        #expect(results.allSatisfy { $0.status == .ok }, "\(results.map { $0.reason ?? "" })")
        // The queued answer is neither recorded over the real result nor counted as a collection.
        #expect(ResultStore(stateDirectory: config.agent.stateDirectory).load(waiting)?.status == .ok)
        let metrics = await runtime.metrics.render(outboxDepth: 0)
        #expect(metrics.contains("care_agent_collections_total{group=\"default\",result=\"ok\"} 3\n"))
        #expect(metrics.contains("care_agent_collections_total{group=\"default\",result=\"skipped\"} 1\n"))
        let idle = await AgentStatus(runtime: runtime)
        #expect(idle.inFlight.isEmpty && idle.queued.isEmpty)
    }
}

final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// Polls `condition` every 10 ms for up to 5 s.
func eventually(_ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while !(await condition()) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
}

/// A reload changes the concurrency limits in place: one cap for the runs before and after it.
@Suite(.serialized) struct SharedLimitTests {
    @Test func newGroupsHaveTheirLimitBeforeTheReloadSuspends() async throws {
        let before = try AgentConfiguration(file: ConfigurationFile(path: "a.conf", text: "[group core]\nconcurrency = 2\n"))
        let after = try AgentConfiguration(file: ConfigurationFile(path: "a.conf", text: "[group core]\nconcurrency = 3\n[group edge]\nconcurrency = 1\n"))
        let limits = CollectionLimits(configuration: before)
        #expect(limits.group("edge") == nil)
        limits.register(after)
        // At once, with no await: the new group is capped; the old one waits for apply to resize.
        let edge = try #require(limits.group("edge"))
        #expect(await edge.limit == 1)
        #expect(await limits.group("core")?.limit == 2)
        await limits.apply(after)
        #expect(await limits.group("core")?.limit == 3)
        #expect(limits.group("edge") === edge, "apply keeps the limit register made")
    }

    @Test func resizingLetsWaitersInWhenRaisedAndPassesNoSlotOnAboveALoweredLimit() async throws {
        let limit = ConcurrencyLimit(limit: 2)
        try await limit.acquire()
        try await limit.acquire()
        let entered = LockedCount()
        let waiters = (0..<3).map { _ in Task { try await limit.acquire(); entered.add() } }
        try await eventually { await limit.waiting == 3 }
        #expect(entered.value == 0)

        await limit.resize(to: 3)
        try await eventually { entered.value == 1 }
        #expect(await (limit.inUse, limit.waiting) == (3, 2))

        // Lowered to 1 with three holders: nobody is interrupted, and the freed slots are kept
        // back until fewer than one hold it.
        await limit.resize(to: 1)
        await limit.release()
        await limit.release()
        try await Task.sleep(for: .milliseconds(100))
        #expect(entered.value == 1)
        #expect(await (limit.inUse, limit.waiting) == (1, 2))
        await limit.release()
        try await eventually { entered.value == 2 }
        #expect(await (limit.inUse, limit.waiting) == (1, 1))
        await limit.resize(to: 0)
        #expect(await limit.limit == 1)
        await limit.resize(to: 4)
        for waiter in waiters { try await waiter.value }
        let inUse = await limit.inUse
        #expect(entered.value == 3 && inUse == 2)
    }

    @Test func runsBeforeAndAfterAReloadShareTheGlobalCap() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = try SimulatedDevice(dir: dir, simulatorArguments: "--latency-ms 100")
        defer { device.stop() }
        let names = (1...6).map { "d\($0)" }
        let path = dir.appendingPathComponent("agent.conf").path
        let text = device.text(names, agent: "concurrency = 2\nstate-directory = \(dir.path)/state\noutbox = \(dir.path)/outbox",
                               defaults: "concurrency = 10\nskip = configuration, storage, coreDumps, uptime, environment")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try AgentConfiguration.load(path: path)
        let out = dir.appendingPathComponent("out").path
        let runtime = try AgentRuntime(configuration: config, configurationPath: path, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: out) })
        let before = Task { await runtime.collect(Array(config.devices[0..<3]), trigger: .schedule) }
        try await eventually { await runtime.devicesCollecting.count == 2 }
        // The same limits again (a reload for another reason): a new collector, not new limits.
        #expect(await runtime.reload() == nil)
        let after = Task { await runtime.collect(Array(config.devices[3..<6]), trigger: .request) }
        let results = await before.value + after.value
        #expect(results.allSatisfy { $0.status == .ok }, "\(results.map { $0.reason ?? "" })")
        // At most two devices at once over both runs, from each result's own start and end.
        #expect(highestOverlap(results) == 2)

        // Raised by a reload: the run in progress gets the room at once.
        try text.replacingOccurrences(of: "concurrency = 2", with: "concurrency = 3").write(toFile: path, atomically: true, encoding: .utf8)
        let wide = Task { await runtime.collect(Array(config.devices[0..<3]), trigger: .schedule) }
        try await eventually { await runtime.devicesCollecting.count == 2 }
        #expect(await runtime.reload() == nil)
        try await eventually { await runtime.devicesCollecting.count == 3 }
        #expect(await runtime.devicesCollecting.count == 3)
        _ = await wide.value
    }
}

/// The service starting beside a `collect now --standalone` that is writing into the same outbox.
@Suite(.serialized) struct TemporaryFileCleanupTests {
    /// The state letter of /proc/PID/stat ("T" when stopped).
    func processState(_ pid: pid_t) -> String {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return "" }
        return String(text[close...].dropFirst(2).prefix(1))
    }

    @Test func aStartingServiceLeavesAConcurrentWritersFileAndRemovesADeadOnes() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = try SimulatedDevice(dir: dir)
        defer { device.stop() }
        let h = device.sshd
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["r1"])
        let outbox = "\(dir.path)/outbox"
        // A standalone collection that stops itself half-way through writing its bundle.
        var environment = ProcessInfo.processInfo.environment
        environment[BundleWriter.stopEnvironmentVariable] = BundleWriter.CrashStep.halfWritten.rawValue
        let writerOut = dir.appendingPathComponent("writer.out").path
        let writer = try ChildProcess(try careAgentExecutable(), ["collect", "now", "--standalone", "--config", conf],
                                      stdout: writerOut, stderr: dir.appendingPathComponent("writer.err").path, environment: environment)
        defer { if writer.isRunning { writer.signal(SIGKILL); writer.signal(SIGCONT); writer.wait() } }
        let deadline = ContinuousClock.now + .seconds(15)
        while processState(writer.pid) != "T" && writer.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        try #require(processState(writer.pid) == "T", "the writer did not stop mid-write")
        let temporary = { try FileManager.default.contentsOfDirectory(atPath: outbox).filter(BundleFileName.isTemporary) }
        let live = try temporary()
        #expect(live.count == 1)
        // And a leftover of a writer that died.
        let dead = "\(outbox)/.r9-crashed.tar.gz.999-abc.tmp"
        FileManager.default.createFile(atPath: dead, contents: Data([0x1f, 0x8b, 0x08]))

        let notifyPath = dir.appendingPathComponent("notify").path
        let notify = try SystemdNotifierTests().listen(notifyPath)
        defer { close(notify) }
        var serviceEnvironment = ProcessInfo.processInfo.environment
        serviceEnvironment["NOTIFY_SOCKET"] = notifyPath
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf],
                                       stderr: dir.appendingPathComponent("service.log").path, environment: serviceEnvironment)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        // The clean-up runs before READY=1.
        #expect(SystemdNotifierTests().receive(notify).hasPrefix("READY=1"))
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(try temporary() == live, "the live writer's file was removed")
        // Answering on the control socket: running its services (READY=1 comes just before).
        #expect(try CollectCommandTests().careAgent(["status", "--socket", "\(dir.path)/run/control.sock"], in: dir).status == 0)
        service.signal(SIGTERM)
        #expect(service.wait() == 0)

        // The writer goes on and finishes its bundle.
        writer.signal(SIGCONT)
        #expect(writer.wait() == 0, "\((try? String(contentsOfFile: writerOut, encoding: .utf8)) ?? "")")
        #expect(try temporary().isEmpty)
        let bundles = try FileManager.default.contentsOfDirectory(atPath: outbox).filter(BundleFileName.isBundle)
        #expect(bundles.count == 1)
        for name in bundles { _ = try BundleReader().read(contentsOf: URL(fileURLWithPath: "\(outbox)/\(name)")) }
    }
}
