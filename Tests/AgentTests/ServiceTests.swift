import Bundle
@testable import Agent
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

/// A clock that jumps to each wake-up time after giving started collections a moment to finish,
/// and ends the scheduler (by throwing) once `end` is reached.
final class JumpingClock: SchedulerClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    let end: Date

    init(start: Date, end: Date) {
        current = start
        self.end = end
    }

    func now() -> Date { lock.lock(); defer { lock.unlock() }; return current }

    func sleep(until date: Date) async throws {
        // Long enough for a run of devices that fail at once to finish on a loaded machine: a run
        // still going when its group is due again is (rightly) not started twice, and the
        // expected times below would shift.
        try await Task.sleep(for: .milliseconds(200))
        guard date < end else { throw CancellationError() }
        advance(to: date)
    }

    private func advance(to date: Date) {
        lock.lock()
        current = max(current, date)
        lock.unlock()
    }
}

/// A clock that moves forward like ``JumpingClock`` until its first wake-up at or after
/// `stepBackAt`, where it lands `step` seconds earlier instead (the wall clock set back).
final class SteppingBackClock: SchedulerClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    private var stepped: Date?
    var steppedTo: Date? { lock.lock(); defer { lock.unlock() }; return stepped }
    let stepBackAt: Date, step: TimeInterval, maximumWakeUps: Int
    private var wakeUps = 0

    init(start: Date, stepBackAt: Date, step: TimeInterval, maximumWakeUps: Int) {
        current = start
        self.stepBackAt = stepBackAt
        self.step = step
        self.maximumWakeUps = maximumWakeUps
    }

    func now() -> Date { lock.lock(); defer { lock.unlock() }; return current }

    func sleep(until date: Date) async throws {
        try await Task.sleep(for: .milliseconds(60))
        guard wake(at: date) else { throw CancellationError() }
    }

    private func wake(at date: Date) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        wakeUps += 1
        guard wakeUps <= maximumWakeUps else { return false }
        if stepped == nil, date >= stepBackAt {
            current = date.addingTimeInterval(-step)
            stepped = current
        } else {
            current = max(current, date)
        }
        return true
    }
}

@Suite struct SchedulerTests {
    @Test func wallClockSetBackDoesNotHoldTheScheduleBack() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: """
        [group hourly]
        schedule = every 1h
        jitter = 10m
        [device a]
        host = 192.0.2.1
        group = hourly
        """))
        config.agent.stateDirectory = dir.path
        let runtime = try AgentRuntime(configuration: config, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: dir.appendingPathComponent("out").path) })
        let start = ISO8601DateFormatter().date(from: "2026-11-25T00:00:00Z")!
        // After the first run (00:05) the clock is set back ten hours.
        let clock = SteppingBackClock(start: start, stepBackAt: start.addingTimeInterval(3600), step: 10 * 3600, maximumWakeUps: 4)
        let scheduler = Scheduler(runtime: runtime, clock: clock, logger: Logger.test, recheck: 3600, random: { 0.5 })
        await #expect(throws: CancellationError.self) { try await scheduler.loop() }
        let runs = await runtime.recentRuns.map(\.at)
        let stepped = try #require(clock.steppedTo)
        #expect(runs.first == start.addingTimeInterval(5 * 60))
        // The next run comes one interval (plus half the jitter) after the step, not ten hours later.
        #expect(runs.count >= 2)
        #expect(runs.dropFirst().first == stepped.addingTimeInterval(65 * 60))
    }

    @Test func groupsRunOnTheirOwnSchedulesWithJitter() async throws {
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        // Devices whose credentials are missing fail at once, without the network.
        let conf = """
        [group hourly]
        schedule = every 1h
        jitter = 10m
        [group nightly]
        schedule = daily 02:00-04:00
        [group manual]
        schedule = manual
        [device a]
        host = 192.0.2.1
        group = hourly
        [device b]
        host = 192.0.2.2
        group = nightly
        [device c]
        host = 192.0.2.3
        group = manual
        """
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        config.agent.stateDirectory = dir.path
        let runtime = try AgentRuntime(configuration: config, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: dir.appendingPathComponent("out").path) })
        let start = ISO8601DateFormatter().date(from: "2026-11-25T00:00:00Z")!
        let clock = JumpingClock(start: start, end: start.addingTimeInterval(86400))
        let scheduler = Scheduler(runtime: runtime, clock: clock, calendar: utc, logger: Logger.test, recheck: 3600, random: { 0.5 })
        await #expect(throws: CancellationError.self) { try await scheduler.loop() }
        let runs = await runtime.recentRuns
        let offsets = { (group: String) in runs.filter { $0.group == group }.map { Int($0.at.timeIntervalSince(start) / 60) } }
        // Every 60 min plus half the 10 min jitter, from 00:05.
        #expect(offsets("hourly") == Array(stride(from: 5, through: 1435, by: 65)))
        // Once, in the middle of its window.
        #expect(offsets("nightly") == [180])
        #expect(offsets("manual").isEmpty)
        // The runs collected (and recorded) their devices.
        #expect(ResultStore(stateDirectory: dir.path).loadAll().map(\.device.name).sorted() == ["a", "b"])
        // What `status` shows as next runs: after the day's last run (1435), the one after it,
        // never the run that just started (a time in the past for up to `recheck`).
        let next = await runtime.nextRuns
        #expect(next["hourly"].map { Int($0.timeIntervalSince(start) / 60) } == 1500)
        #expect(next["manual"] == nil)
    }
}

/// The scheduler's runs survive a restart (`scheduled-runs.json` in the state directory).
@Suite struct ScheduledRunsTests {
    static let conf = """
    [group nightly]
    schedule = daily 02:00-04:00
    [device a]
    host = 192.0.2.1
    group = nightly
    [device b]
    host = 192.0.2.2
    group = nightly
    """

    func runtime(_ dir: URL) throws -> AgentRuntime {
        var config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: Self.conf))
        config.agent.stateDirectory = dir.path
        return try AgentRuntime(configuration: config, configurationPath: nil, logger: Logger.test,
                                makeSink: { _ in DirectorySink(root: dir.appendingPathComponent("out").path) })
    }

    /// Restarted inside the window after its run: the group is not collected a second time.
    @Test func aRestartInsideTheWindowDoesNotRunTheGroupAgain() async throws {
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let day = ISO8601DateFormatter().date(from: "2026-11-25T00:00:00Z")!
        let first = try runtime(dir)
        let before = JumpingClock(start: day.addingTimeInterval(2 * 3600), end: day.addingTimeInterval(3 * 3600 + 600))
        await #expect(throws: CancellationError.self) {
            try await Scheduler(runtime: first, clock: before, calendar: utc, logger: Logger.test, recheck: 600, random: { 0.5 }).loop()
        }
        #expect(await first.recentRuns.map { Int($0.at.timeIntervalSince(day) / 60) } == [180])
        // A new process, later in the same window.
        let second = try runtime(dir)
        #expect(await second.lastRun["nightly"] == day.addingTimeInterval(3 * 3600))
        #expect(await second.takeInterruptedRuns().isEmpty, "that run finished")
        let after = JumpingClock(start: day.addingTimeInterval(3 * 3600 + 900), end: day.addingTimeInterval(6 * 3600))
        await #expect(throws: CancellationError.self) {
            try await Scheduler(runtime: second, clock: after, calendar: utc, logger: Logger.test, recheck: 600, random: { 0.5 }).loop()
        }
        #expect(await second.recentRuns.isEmpty, "collected once today already")
        #expect(await second.nextRuns["nightly"] == day.addingTimeInterval(86400 + 3 * 3600))
    }

    /// A run the restart cut short: its remaining devices are collected at the next start, the
    /// ones it finished are not.
    @Test func aRunARestartInterruptedResumesWithItsRemainingDevices() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try runtime(dir)
        let started = Date().addingTimeInterval(-60)
        await first.markRun(group: "nightly", at: started)
        // b was collected in that run (its credentials are missing: it fails at once, recorded);
        // then the process died.
        let configuration = await first.configuration
        _ = await first.collect(configuration.devices.filter { $0.name == "b" }, trigger: .schedule)
        let results = ResultStore(stateDirectory: dir.path)
        let bFinished = try #require(results.load("b")?.finished)
        #expect(results.load("a") == nil)

        let second = try runtime(dir)
        let interrupted = await second.takeInterruptedRuns()
        #expect(interrupted.keys.sorted() == ["nightly"] && abs(interrupted["nightly"]!.timeIntervalSince(started)) < 1)
        let clock = JumpingClock(start: Date(), end: Date().addingTimeInterval(1))
        await #expect(throws: CancellationError.self) {
            try await Scheduler(runtime: second, clock: clock, logger: Logger.test, recheck: 600, random: { 0.5 }).loop()
        }
        for _ in 0..<50 where results.load("a") == nil { try await Task.sleep(for: .milliseconds(100)) }
        #expect(results.load("a") != nil, "the remaining device was collected")
        #expect(results.load("b")?.finished == bFinished, "the device done in that run was not collected again")
        for _ in 0..<50 where await !second.takeInterruptedRuns().isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(ScheduledRuns.load(stateDirectory: dir.path).groups["nightly"]?.finished != nil)
    }
}

@Suite struct StatusCompatibilityTests {
    /// A `status` binary newer than the running agent reads its answer, which has no `queued`.
    @Test func anAnswerWithoutQueuedDevicesDecodes() throws {
        let json = #"{"devices":2,"inFlight":["r1"],"groups":[],"results":[],"outboxBundles":0}"#
        let status = try JSONDecoder().decode(AgentStatus.self, from: Data(json.utf8))
        #expect(status.queued.isEmpty && status.inFlight == ["r1"])
        let withQueued = #"{"devices":2,"inFlight":[],"queued":["r2"],"groups":[],"results":[],"outboxBundles":0}"#
        #expect(try JSONDecoder().decode(AgentStatus.self, from: Data(withQueued.utf8)).queued == ["r2"])
    }
}

@Suite struct ReloadTests {
    @Test func movingTheOutboxSaysWhereBundlesWereLeft() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("agent.conf").path
        func write(outbox: String) throws {
            try "[agent]\noutbox = \(dir.path)/\(outbox)\nstate-directory = \(dir.path)/state\n".write(toFile: conf, atomically: true, encoding: .utf8)
        }
        try write(outbox: "old")
        let store = LineStore()
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: store) }
        let runtime = try AgentRuntime(configuration: try AgentConfiguration.load(path: conf), configurationPath: conf, logger: logger,
                                       makeSink: { _ in DirectorySink(root: dir.appendingPathComponent("out").path) })
        try FileManager.default.createDirectory(atPath: "\(dir.path)/old", withIntermediateDirectories: true)
        for name in ["r1-SN1-20261202T010000Z.tar.gz", "r2-SN2-20261202T010000Z.tar.gz", "notes.txt"] {
            FileManager.default.createFile(atPath: "\(dir.path)/old/\(name)", contents: Data([1]))
        }
        try write(outbox: "new")
        #expect(await runtime.reload() == nil)
        let warning = store.lines.first { $0.contains("outbox moved") }
        #expect(warning?.contains("bundles=2") == true, "\(store.lines)")
        #expect(warning?.contains("outbox.previous=\(dir.path)/old") == true)
        // A reload that keeps the outbox says nothing of it.
        #expect(await runtime.reload() == nil)
        #expect(store.lines.filter { $0.contains("outbox moved") }.count == 1)
    }

    /// A collection running when a reload moves the outbox goes on writing into the one it
    /// started with: when it ends, the agent says so, counting what it wrote there.
    @Test func aCollectionRunningThroughTheMoveSaysWhereItsBundlesWent() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("agent.conf").path
        func write(outbox: String) throws {
            try ("[agent]\noutbox = \(dir.path)/\(outbox)\nstate-directory = \(dir.path)/state\n[defaults]\nretries = 0\n"
                 + "[group g]\n[device r1]\ngroup = g\nhost = 127.0.0.1\nport = 1\n").write(toFile: conf, atomically: true, encoding: .utf8)
        }
        try write(outbox: "old")
        let store = LineStore()
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: store) }
        let gate = AsyncGate()
        let runtime = try AgentRuntime(configuration: try AgentConfiguration.load(path: conf), configurationPath: conf, logger: logger,
                                       makeSink: { OutboxFileSink(outbox: $0.agent.outbox, gate: gate) })
        let run = Task { try await runtime.collect(groups: [], devices: [], trigger: .request) }
        // The device has failed (nothing listens on port 1) and its bundle waits for the gate.
        while !gate.isWaiting { try await Task.sleep(for: .milliseconds(20)) }
        try write(outbox: "new")
        #expect(await runtime.reload() == nil)
        #expect(!store.lines.contains { $0.contains("outbox moved") }, "nothing waited in the old outbox at the reload")
        gate.open()
        _ = try await run.value
        let warning = store.lines.first { $0.contains("outbox moved: a collection that started before the move") }
        #expect(warning?.contains("bundles=1") == true && warning?.contains("outbox.previous=\(dir.path)/old") == true, "\(store.lines)")
        #expect(FileOutbox(directory: "\(dir.path)/old").pending().count == 1)
    }

    /// A group a reload removes leaves status and the metrics file with it.
    @Test func aRemovedGroupLeavesStatusAndMetrics() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("agent.conf").path
        func write(_ groups: [String]) throws {
            try (["[agent]", "outbox = \(dir.path)/outbox", "state-directory = \(dir.path)/state", "[defaults]", "retries = 0"]
                 + groups.map { "[group \($0)]" })
                .joined(separator: "\n").write(toFile: conf, atomically: true, encoding: .utf8)
        }
        try write(["core", "edge"])
        let runtime = try AgentRuntime(configuration: try AgentConfiguration.load(path: conf), configurationPath: conf, logger: Logger(label: "test"),
                                       makeSink: { _ in DirectorySink(root: dir.appendingPathComponent("out").path) })
        // A refused connection (port 1 on loopback) is a quick failed collection, counted per group.
        for group in ["core", "edge"] {
            await runtime.markRun(group: group, at: Date())
            _ = await runtime.collect([Device(name: "\(group)1", host: "127.0.0.1", port: 1, group: group)], trigger: .request)
        }
        #expect(await runtime.metrics.render(outboxDepth: 0).contains("group=\"edge\""))
        try write(["core"])
        #expect(await runtime.reload() == nil)
        #expect(await runtime.lastRun.keys.sorted() == ["core"])
        let text = await runtime.metrics.render(outboxDepth: 0)
        #expect(text.contains("group=\"core\"") && !text.contains("group=\"edge\""))
    }
}

@Suite struct SystemdNotifierTests {
    /// A datagram socket standing in for systemd's notify socket.
    func listen(_ path: String, abstract: Bool = false) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard rc == 0 else { throw HarnessError("bind \(path): \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func receive(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }

    @Test func sendsToPathAndAbstractSockets() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("notify").path
        let fd = try listen(path)
        defer { close(fd) }
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": path]).notify("READY=1\nSTATUS=3 devices"))
        #expect(receive(fd) == "READY=1\nSTATUS=3 devices")

        let name = "@care-agent-test-\(UUID().uuidString.prefix(8))"
        let abstract = try listen(name, abstract: true)
        defer { close(abstract) }
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": name]).notify("WATCHDOG=1"))
        #expect(receive(abstract) == "WATCHDOG=1")

        #expect(!SystemdNotifier(environment: [:]).notify("READY=1"))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "120000000"]) == .seconds(60))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "1"]) == nil)
    }
}

/// `care-agent run` as systemd runs it: READY=1 on the notify socket, status and collect over the
/// control socket, SIGHUP reload keeping the last good configuration, SIGTERM stopping it.
@Suite(.serialized) struct RunCommandTests {
    func careAgent(_ arguments: [String], dir: URL) throws -> (Int32, String, String) {
        let out = dir.appendingPathComponent("o-\(UUID().uuidString.prefix(4))").path
        let err = dir.appendingPathComponent("e-\(UUID().uuidString.prefix(4))").path
        let child = try ChildProcess(try careAgentExecutable(), arguments, stdout: out, stderr: err)
        let status = child.wait()
        return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    /// systemd may stop the service the moment it says READY: that stop must be graceful.
    @Test func stopRightAfterReadyIsGraceful() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("agent.conf").path
        try """
        [agent]
        outbox = \(dir.path)/outbox
        state-directory = \(dir.path)/state
        runtime-directory = \(dir.path)/run
        [device r1]
        host = 192.0.2.1
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let notifyPath = dir.appendingPathComponent("notify").path
        let notify = try SystemdNotifierTests().listen(notifyPath)
        defer { close(notify) }
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notifyPath
        for _ in 0..<3 {
            let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf],
                                           stderr: dir.appendingPathComponent("service.log").path, environment: environment)
            defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
            #expect(SystemdNotifierTests().receive(notify).hasPrefix("READY=1\nSTATUS=1 devices"))
            service.signal(SIGTERM)
            #expect(service.wait() == 0, "a SIGTERM right after READY=1 should stop the agent gracefully")
            #expect(SystemdNotifierTests().receive(notify) == "STOPPING=1")
        }
    }

    @Test func serviceLifecycle() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["r1"])
        let good = try String(contentsOfFile: conf, encoding: .utf8)
        let notifyPath = dir.appendingPathComponent("notify").path
        let notify = try SystemdNotifierTests().listen(notifyPath)
        defer { close(notify) }
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notifyPath
        environment["WATCHDOG_USEC"] = "400000"
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf], stderr: dir.appendingPathComponent("service.log").path,
                                       environment: environment)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        #expect(SystemdNotifierTests().receive(notify).hasPrefix("READY=1\nSTATUS=1 devices"))
        #expect(WatchdogService.status(devices: 1500, inFlight: 212, nextRun: nil) == "collecting 212/1500 devices")
        #expect(WatchdogService.status(devices: 1500, inFlight: 212, queued: 1288, nextRun: nil) == "collecting 212/1500 devices, 1288 queued")
        #expect(WatchdogService.status(devices: 1500, inFlight: 0, nextRun: Date(timeIntervalSince1970: 7200)) == "idle, 1500 devices, next run 02:00 UTC")
        let socket = "\(dir.path)/run/control.sock"
        var info = stat()
        #expect(stat(socket, &info) == 0 && info.st_mode & 0o777 == 0o660)

        // collect now without --standalone goes through the service.
        let (collectStatus, collectOut, collectErr) = try careAgent(["collect", "now", "--config", conf, "--json"], dir: dir)
        #expect(collectStatus == 0, "\(collectErr)")
        #expect(collectOut.contains("\"status\" : \"ok\""))
        // The service wrote a signed bundle to its outbox.
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir.path)/outbox").contains { $0.hasSuffix(".tar.gz") })
        // ... and its metrics for node_exporter's textfile collector.
        let metrics = try String(contentsOfFile: "\(dir.path)/state/metrics.prom", encoding: .utf8)
        #expect(metrics.contains("care_agent_collections_total{group=\"default\",result=\"ok\"} 1\n"))
        #expect(metrics.contains("care_agent_outbox_bundles 1\n"))
        // The service selects: an unknown device is its error, passed on.
        let (unknownStatus, _, unknownErr) = try careAgent(["collect", "now", "--socket", socket, "--device", "nope"], dir: dir)
        #expect(unknownStatus == 2)
        // A usage error exits 64 (EX_USAGE) as documented; configuration errors 2.
        let (usageStatus, _, usageErr) = try careAgent(["collect", "now", "--standalone", "--concurrency", "0"], dir: dir)
        #expect(usageStatus == 64, "\(usageErr)")
        #expect(usageErr.contains("--concurrency must be at least 1"))
        let (unknownOptionStatus, _, _) = try careAgent(["collect", "now", "--frobnicate"], dir: dir)
        #expect(unknownOptionStatus == 64)
        #expect(unknownErr.contains("no device nope in the configuration or inventory"))
        let (statusCode, statusOut, _) = try careAgent(["status", "--socket", socket], dir: dir)
        #expect(statusCode == 0)
        #expect(statusOut.contains("devices: 1, being collected: none, queued: none"), "\(statusOut)")
        #expect(statusOut.contains("outbox: 1 bundles waiting"))
        #expect(statusOut.contains("next run not scheduled"), "\(statusOut)") // schedule = manual
        // The on-demand run is shown right away; a scheduled one has not happened.
        #expect(statusOut.contains("last scheduled run not yet, last collect now 20"), "\(statusOut)")
        #expect(statusOut.contains("ok       r1 at "), "\(statusOut)")
        let (_, inventoryOut, _) = try careAgent(["inventory", "--state", "\(dir.path)/state", "--csv"], dir: dir)
        #expect(inventoryOut.hasPrefix("device,host,model,serial,version,collected\nr1,\(h.addresses[0]),mx480,"), "\(inventoryOut)")
        let (_, fruOut, _) = try careAgent(["inventory", "--state", "\(dir.path)/state", "--fru", "--json"], dir: dir)
        let frus = try JSONSerialization.jsonObject(with: Data(fruOut.utf8)) as? [[String: Any]] ?? []
        #expect(frus.count > 5)
        #expect(frus.contains { ($0["item"] as? String)?.contains("FPC") == true && $0["partNumber"] != nil })
        // Progress through the service as with --standalone: not on a terminal, one line per
        // device as it finishes, before the summary; on the wire, the events in order.
        let (plainStatus, plainOut, plainErr) = try careAgent(["collect", "now", "--config", conf], dir: dir)
        #expect(plainStatus == 0, "\(plainErr)")
        let progressLine = try #require(plainOut.range(of: "[1/1] ok r1: "), "\(plainOut)")
        let summaryLine = try #require(plainOut.range(of: "1 devices: 1 ok, 0 partial, 0 failed"), "\(plainOut)")
        #expect(progressLine.lowerBound < summaryLine.lowerBound)
        let events = Mutex<[CollectionProgress]>([])
        let streamed = try ControlClient.request(socket: socket, ControlRequest(command: "collect", devices: ["r1"], progress: true)) { event in
            events.withLock { $0.append(event) }
        }
        #expect(streamed.ok && streamed.results?.map(\.name) == ["r1"])
        let seen = events.withLock { $0 }
        #expect(seen.map(\.event) == [.selected, .started, .finished])
        #expect(seen.first?.devices == 1)
        #expect(seen.dropFirst().allSatisfy { $0.device == "r1" })
        #expect(seen.last?.result?.status == .ok)
        // Without progress the answer is one line, as before.
        let single = try ControlClient.request(socket: socket, ControlRequest(command: "collect", devices: ["r1"])) { _ in
            Issue.record("progress sent although not asked for")
        }
        #expect(single.ok)

        // The signing key's public half beside it (0644), for `key show` by the care-agent group.
        let publicFile = "\(dir.path)/state/agent-ed25519.pub"
        var publicInfo = stat()
        #expect(stat(publicFile, &publicInfo) == 0 && publicInfo.st_mode & 0o777 == 0o644)
        let publicKey = ((try? String(contentsOfFile: publicFile, encoding: .utf8)) ?? "-").trimmingCharacters(in: .whitespacesAndNewlines)
        let (_, keyOut, _) = try careAgent(["key", "show", "--state-dir", "\(dir.path)/state"], dir: dir)
        #expect(keyOut.contains("public key:  \(publicKey)\n"), "\(keyOut)")
        if getuid() == 0 {
            // Someone who may not read the private key (0600) is shown the public one.
            chmod(dir.path, 0o755)
            chmod("\(dir.path)/state", 0o755)
            let out = dir.appendingPathComponent("key-nobody.out").path, err = dir.appendingPathComponent("key-nobody.err").path
            let status = try ChildProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", try careAgentExecutable(),
                                                               "key", "show", "--state-dir", "\(dir.path)/state"], stdout: out, stderr: err).wait()
            let shown = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            #expect(status == 0, "\((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
            #expect(shown.contains("public key:  \(publicKey)\n"), "\(shown)")
        }
        // A second agent on the same socket is refused, and the first keeps serving.
        let (secondStatus, _, secondErr) = try careAgent(["run", "--config", conf], dir: dir)
        #expect(secondStatus == 1)
        #expect(secondErr.contains("another care-agent is already serving \(socket)"))
        // A client that asks and leaves before the answer must not take the service down (SIGPIPE).
        for _ in 0..<5 {
            let fd = Foundation.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in socket.utf8.enumerated() { raw[i] = b } }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(connected == 0)
            let request = Array("{\"command\":\"status\"}\n".utf8)
            _ = send(fd, request, request.count, Int32(MSG_NOSIGNAL))
            close(fd)
        }
        usleep(300_000)
        #expect(service.isRunning)

        // A broken file on SIGHUP: refused, the previous configuration keeps running.
        try (good + "\nretries = many\n").write(toFile: conf, atomically: true, encoding: .utf8)
        service.signal(SIGHUP)
        var reloaded = ""
        var watchdogPings = 0
        for _ in 0..<200 where !reloaded.contains("STATUS=reload") {
            reloaded = SystemdNotifierTests().receive(notify)
            if reloaded.hasPrefix("WATCHDOG=1\nSTATUS=idle, 1 devices, no run scheduled") { watchdogPings += 1 }
        }
        #expect(watchdogPings > 0)
        let brokenLine = good.filter { $0 == "\n" }.count + 2
        #expect(reloaded.contains("reload failed: \(conf):\(brokenLine):1: unknown key \"retries\" in [device]"), "\(reloaded)")
        let (afterReloadStatus, afterReload, _) = try careAgent(["status", "--socket", socket], dir: dir)
        #expect(afterReload.contains("LAST RELOAD FAILED"))
        // A monitoring check sees it: the device is fine, the agent is not.
        #expect(afterReloadStatus == 1)
        #expect(afterReload.contains("devices: 1"))

        service.signal(SIGTERM)
        #expect(service.wait() == 0)
        var last = ""
        for _ in 0..<200 where !last.hasPrefix("STOPPING=1") { last = SystemdNotifierTests().receive(notify); if last.isEmpty { break } }
        #expect(last.hasPrefix("STOPPING=1"))
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    /// A selection the running agent has no device for is an error, as with --standalone: it
    /// printed "0 devices: 0 ok" and exited 0.
    @Test func aSelectionWithNoDeviceIsAnErrorThroughTheServiceToo() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("agent.conf").path
        try """
        [agent]
        outbox = \(dir.path)/outbox
        state-directory = \(dir.path)/state
        runtime-directory = \(dir.path)/run
        [defaults]
        schedule = manual
        user = care
        key-file = /dev/null
        [group spare]
        [device r1]
        host = 192.0.2.1
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf], stderr: dir.appendingPathComponent("service.log").path)
        defer { if service.isRunning { service.signal(SIGTERM); service.wait() } }
        let socket = "\(dir.path)/run/control.sock"
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(50_000) }
        let (status, out, err) = try careAgent(["collect", "now", "--socket", socket, "--group", "spare"], dir: dir)
        #expect(status == 2 && err.contains("no devices to collect") && !out.contains("0 devices"), "\(status) \(out) \(err)")
    }

    /// A typo in the log level is a usage error, not a service silently logging at info.
    @Test func anUnknownLogLevelIsRefused() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (status, _, err) = try careAgent(["run", "--config", dir.appendingPathComponent("none.conf").path, "--log-level", "verbose"], dir: dir)
        #expect(status == 64 && err.contains("--log-level verbose: expected one of trace, debug, info, notice, warning, error, critical"), "\(err)")
    }

    @Test func stopDuringACollectionEndsPromptly() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) --fault hang"))
        defer { h.stop() }
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["hung"], defaults: "schedule = manual\nrpc-timeout = 60s")
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf], stderr: dir.appendingPathComponent("service.log").path)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        let socket = "\(dir.path)/run/control.sock"
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(50_000) }
        let answer = dir.appendingPathComponent("answer").path
        let client = try ChildProcess(try careAgentExecutable(), ["collect", "now", "--config", conf, "--json"], stdout: answer)
        usleep(1_500_000)
        let stopping = ContinuousClock.now
        service.signal(SIGTERM)
        let status = service.wait()
        // Not the 60 s RPC timeout: the hung RPC is cancelled.
        #expect(ContinuousClock.now - stopping < .seconds(10))
        #expect(status == 0)
        #expect(client.wait() == 1)
        let text = try String(contentsOfFile: answer, encoding: .utf8)
        #expect(text.contains("\"status\" : \"failed\""), "\(text)")
        #expect(text.contains("cancelled: the agent is stopping"), "\(text)")
        // The partial collection is a bundle that says what happened.
        let outbox = "\(dir.path)/outbox"
        let files = try FileManager.default.contentsOfDirectory(atPath: outbox).filter { BundleFileName.isBundle($0) }
        #expect(files.count == 1)
        if let file = files.first {
            let bundle = try BundleReader().read(contentsOf: URL(fileURLWithPath: "\(outbox)/\(file)"))
            #expect(bundle.manifest.outcomes.contains { ($0.message ?? "").contains("cancelled: the agent is stopping") })
        }
    }
}

/// Opens once, for every waiter then and later.
final class AsyncGate: @unchecked Sendable {
    private let lock = NSLock()
    private var opened = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    var isWaiting: Bool { lock.withLock { !waiters.isEmpty } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = lock.withLock { () -> Bool in
                if opened { return true }
                waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func open() {
        let all = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            opened = true
            defer { waiters = [] }
            return waiters
        }
        for waiter in all { waiter.resume() }
    }
}

/// Writes a stand-in bundle file (named as a bundle) into `outbox` once `gate` opens.
struct OutboxFileSink: CollectionSink {
    let outbox: String
    let gate: AsyncGate

    func store(_ collection: consuming DeviceCollection) async throws -> String {
        let name = collection.result.device.name
        await gate.wait()
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        let path = "\(outbox)/\(name)-SN1-20261202T010000Z.tar.gz"
        FileManager.default.createFile(atPath: path, contents: Data([1]))
        return path
    }
}
