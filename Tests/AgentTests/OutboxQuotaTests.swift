@testable import Agent
import Bundle
import Foundation
import Logging
import Testing
import TestSupport

/// `outbox-max` and `outbox-max-age`: read from agent.conf, enforced by the running agent, each
/// eviction logged and counted in the metrics file.
@Suite struct OutboxQuotaTests {
    func parse(_ text: String) throws -> AgentConfiguration {
        try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text))
    }

    @Test func keysDefaultsAndErrors() throws {
        #expect(try parse("[agent]\n").agent.outboxQuota == OutboxQuota(maxBytes: 2 << 30, maxAge: 30 * 86400))
        #expect(try parse("[agent]\noutbox-max = 500MiB\noutbox-max-age = 7d\n").agent.outboxQuota
            == OutboxQuota(maxBytes: 500 << 20, maxAge: 7 * 86400))
        #expect(try parse("[agent]\noutbox-max = none\noutbox-max-age = none\n").agent.outboxQuota == OutboxQuota(maxBytes: nil, maxAge: nil))
        func error(_ text: String) -> String {
            do { _ = try parse(text); return "no error" } catch { return "\(error)" }
        }
        #expect(error("[agent]\noutbox-max = lots\n") == "agent.conf:2:14: expected a size of at least 1MiB such as 2GiB or 500MiB, or none, found \"lots\"")
        #expect(error("[agent]\noutbox-max = 10KiB\n").hasPrefix("agent.conf:2:14: expected a size of at least 1MiB"))
        #expect(error("[agent]\noutbox-max-age = 5m\n").hasPrefix("agent.conf:2:18: expected a duration of at least 1h"))
        // The example documents both keys with their defaults.
        let example = Fixtures.packageRoot.appendingPathComponent("agent.conf.example").path
        let text = try String(contentsOfFile: example, encoding: .utf8)
        #expect(text.contains("\noutbox-max = 2GiB\n") && text.contains("\noutbox-max-age = 30d\n"))
        #expect(try AgentConfiguration.load(path: example).agent.outboxQuota == OutboxQuota())
    }

    @Test func theRuntimeEvictsLogsAndCounts() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outboxPath = dir.appendingPathComponent("outbox").path
        var configuration = AgentConfiguration()
        configuration.agent.outbox = outboxPath
        configuration.agent.stateDirectory = dir.appendingPathComponent("state").path
        configuration.agent.metricsFile = dir.appendingPathComponent("metrics.prom").path
        let lines = LineStore()
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) }
        let root = dir.appendingPathComponent("out").path
        let outbox = FileOutbox(directory: outboxPath, key: OutboxSample.key)
        let event = try outbox.add(OutboxSample.contents("e", trigger: .event, event: OutboxSample.coreDump, padding: 10_000))
        let scheduled = try outbox.add(OutboxSample.contents("s", trigger: .scheduled, padding: 10_000))
        let stale = try outbox.add(OutboxSample.contents("old", trigger: .onDemand))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-31 * 86400)], ofItemAtPath: outbox.path(of: stale.name))
        // Room for the event bundle only.
        configuration.agent.outboxQuota = OutboxQuota(maxBytes: event.size + 100, maxAge: 30 * 86400)
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: logger,
                                       makeSink: { _ in DirectorySink(root: root) })

        let dropped = await runtime.enforceOutboxQuota()
        #expect(dropped.map(\.entry.name) == [stale.name, scheduled.name])
        #expect(dropped.map(\.reason) == [.age, .size])
        #expect(outbox.pending().map(\.name) == [event.name])
        let logged = lines.lines.filter { $0.contains("outbox quota: bundle evicted unsent") }
        #expect(logged.count == 2)
        #expect(logged.contains { $0.contains("bundle=\(stale.name)") && $0.contains("reason=age") && $0.contains("trigger=on-demand") })
        #expect(logged.contains { $0.contains("bundle=\(scheduled.name)") && $0.contains("reason=size") && $0.contains("trigger=scheduled") })
        let metrics = try String(contentsOfFile: configuration.agent.metricsFile!, encoding: .utf8)
        #expect(metrics.contains("care_agent_outbox_evictions_total{trigger=\"on-demand\",reason=\"age\"} 1\n"))
        #expect(metrics.contains("care_agent_outbox_evictions_total{trigger=\"scheduled\",reason=\"size\"} 1\n"))
        #expect(metrics.contains("care_agent_outbox_evictions_total{trigger=\"event\",reason=\"size\"} 0\n"))
        #expect(metrics.contains("care_agent_outbox_bundles 1\n"))
        #expect(metrics.contains("care_agent_outbox_bytes \(event.size)\n"))
        // Within the quota now: nothing more goes.
        #expect(await runtime.enforceOutboxQuota().isEmpty)
    }

    /// A full disk (the outbox on a 256 KiB tmpfs of the test's own; the tests run as root): a new
    /// incident bundle takes the room of a kept sent copy and the oldest scheduled bundle, no
    /// more, instead of being lost; a scheduled bundle that older ones cannot make room for fails
    /// and removes nothing; the next quota pass counts what went.
    @Test func aFullDiskMakesRoomForANewBundleWithOlderLowerRankedOnes() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outboxPath = dir.appendingPathComponent("outbox").path
        try FileManager.default.createDirectory(atPath: outboxPath, withIntermediateDirectories: true)
        guard mount("tmpfs", outboxPath, "tmpfs", 0, "size=256k,mode=0750") == 0 else {
            Issue.record("cannot mount a tmpfs for the outbox (the tests run as root): \(String(cString: strerror(errno)))")
            return
        }
        defer { umount2(outboxPath, Int32(MNT_DETACH)) }
        let lines = LineStore()
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) }
        let outbox = FileOutbox(directory: outboxPath, key: OutboxSample.key, keepsSent: true, logger: logger)
        func add(_ device: String, _ trigger: CollectionTrigger) throws -> OutboxEntry {
            try outbox.add(OutboxSample.contents(device, trigger: trigger, event: trigger == .event ? OutboxSample.coreDump : nil,
                                                 padding: 20_000))
        }
        let delivered = try add("delivered", .scheduled)
        try outbox.accept(delivered.name)
        let oldest = try add("oldest", .scheduled)
        let older = try add("older", .scheduled)
        let incident = try add("incident", .event)
        func fill() {
            let fd = open(outboxPath + "/filler", O_WRONLY | O_CREAT | O_APPEND, 0o600)
            let chunk = [UInt8](repeating: 0x55, count: 1024)
            while write(fd, chunk, chunk.count) == chunk.count {}
            close(fd)
        }
        fill()
        #expect(outbox.setAside().map(\.name) == [delivered.name])

        let second = try add("second-incident", .event)
        #expect(Set(outbox.pending().map(\.name)) == [older.name, incident.name, second.name])
        #expect(outbox.setAside().isEmpty)
        #expect(FileManager.default.fileExists(atPath: outboxPath + "/filler"), "a file the outbox does not own is never touched")
        let evicted = lines.lines.filter { $0.contains("disk full: bundle evicted unsent to make room for a new one") }
        #expect(evicted.count == 1 && evicted.allSatisfy { $0.contains("bundle=\(oldest.name)") && $0.contains("new.trigger=event") }, "\(evicted)")
        #expect(lines.lines.contains { $0.contains("disk full: kept bundle removed") && $0.contains("bundle=\(delivered.name)") })

        // Full again; a scheduled bundle may take the room of older scheduled ones only, and the
        // one there is not enough: it fails, naming the disk, and nothing is removed.
        fill()
        do {
            _ = try add("scheduled", .scheduled)
            Issue.record("a bundle was written to a full disk")
        } catch {
            #expect("\(error)".contains("No space left on device") && "\(error)".contains("do not free enough"), "\(error)")
        }
        #expect(Set(outbox.pending().map(\.name)) == [older.name, incident.name, second.name])
        for name in [older.name, incident.name, second.name] {
            _ = try BundleReader(trust: .keys([OutboxSample.key.publicKey])).read(contentsOf: URL(fileURLWithPath: outbox.path(of: name)))
        }

        // The agent's own quota pass (through another instance on the same directory) counts them.
        var configuration = AgentConfiguration()
        configuration.agent.outbox = outboxPath
        configuration.agent.stateDirectory = dir.appendingPathComponent("state").path
        configuration.agent.metricsFile = dir.appendingPathComponent("metrics.prom").path
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: logger,
                                       makeSink: { _ in DirectorySink(root: dir.appendingPathComponent("out").path) })
        let reported = await runtime.enforceOutboxQuota()
        #expect(reported.map(\.entry.name) == [oldest.name] && reported.map(\.reason) == [.diskFull])
        let metrics = try String(contentsOfFile: configuration.agent.metricsFile!, encoding: .utf8)
        #expect(metrics.contains("care_agent_outbox_evictions_total{trigger=\"scheduled\",reason=\"disk-full\"} 1\n"), "\(metrics)")
        #expect(metrics.contains("care_agent_outbox_kept_removed_total{folder=\"sent\",reason=\"disk-full\"} 1\n"))
        #expect(metrics.contains("care_agent_outbox_bundles 3\n"))
        #expect(await runtime.enforceOutboxQuota().isEmpty, "counted once")
    }

    /// No inode left (the blocks free say there is room): the write fails all the same, and the
    /// new incident bundle takes an older scheduled one's place. Computed from the free blocks
    /// alone, nothing was removed and the bundle was lost.
    @Test func noInodeLeftMakesRoomToo() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outboxPath = dir.appendingPathComponent("outbox").path
        try FileManager.default.createDirectory(atPath: outboxPath, withIntermediateDirectories: true)
        guard mount("tmpfs", outboxPath, "tmpfs", 0, "size=4m,nr_inodes=16,mode=0750") == 0 else {
            Issue.record("cannot mount a tmpfs for the outbox (the tests run as root): \(String(cString: strerror(errno)))")
            return
        }
        defer { umount2(outboxPath, Int32(MNT_DETACH)) }
        let outbox = FileOutbox(directory: outboxPath, key: OutboxSample.key)
        let oldest = try outbox.add(OutboxSample.contents("oldest", trigger: .scheduled, padding: 2_000))
        let newer = try outbox.add(OutboxSample.contents("newer", trigger: .scheduled, padding: 2_000))
        var fillers = 0
        while open(outboxPath + "/.filler-\(fillers)", O_WRONLY | O_CREAT, 0o600) >= 0 { fillers += 1 }
        #expect(errno == ENOSPC && fillers < 16)
        var fs = statvfs()
        #expect(statvfs(outboxPath, &fs) == 0 && Int64(fs.f_bavail) * Int64(fs.f_frsize) > 1 << 20, "blocks are free")
        let incident = try outbox.add(OutboxSample.contents("incident", trigger: .event, event: OutboxSample.coreDump, padding: 2_000))
        let pending = Set(outbox.pending().map(\.name))
        #expect(pending.contains(incident.name) && !pending.contains(oldest.name), "\(pending)")
        #expect(pending.contains(newer.name) || pending.count == 1)
    }

    /// A VM booted with its clock a year behind, collected, then NTP stepped the clock: the
    /// bundles written before the step are not a year old, and must not be evicted for age.
    /// Without a step, the same dates are old, and go.
    @Test(arguments: [true, false])
    func aForwardClockStepDoesNotAgeTheBundlesWrittenBeforeIt(stepped: Bool) async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var configuration = AgentConfiguration()
        configuration.agent.outbox = dir.appendingPathComponent("outbox").path
        configuration.agent.stateDirectory = dir.appendingPathComponent("state").path
        configuration.agent.outboxQuota = OutboxQuota(maxBytes: nil, maxAge: 30 * 86400)
        let lines = LineStore()
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) }
        let year: TimeInterval = 365 * 86400
        let outbox = FileOutbox(directory: configuration.agent.outbox, key: OutboxSample.key)
        let written = try outbox.add(OutboxSample.contents("rebooted", trigger: .event, event: OutboxSample.coreDump))
        // Written an hour ago by the clock of the moment, which was a year behind.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-year - 3600)],
                                              ofItemAtPath: outbox.path(of: written.name))
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: logger,
                                       makeSink: { _ in DirectorySink(root: dir.appendingPathComponent("out").path) })
        if stepped {
            // The runtime started (its baseline) before the step: a year's jump of the wall
            // clock against the boot-time clock.
            await runtime.redateAfterClockStep(wall: Date().addingTimeInterval(-year))
            await runtime.redateAfterClockStep()
        }
        let dropped = await runtime.enforceOutboxQuota()
        if stepped {
            #expect(dropped.isEmpty)
            #expect(outbox.pending().map(\.name) == [written.name])
            #expect(abs(outbox.pending()[0].added.timeIntervalSinceNow + 3600) < 5)
            #expect(lines.lines.contains { $0.contains("the wall clock was stepped forward") && $0.contains("bundles=1") })
        } else {
            #expect(dropped.map(\.entry.name) == [written.name] && dropped.map(\.reason) == [.age])
        }
    }
}

/// `poll` and `event-window` in a group.
@Suite struct HealthPollConfigurationTests {
    func parse(_ text: String) throws -> AgentConfiguration {
        try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text))
    }

    @Test func eventSectionsAddRequestsPerKind() throws {
        let configuration = try parse("[event core-dump]\nrpc = <get-system-core-dumps><detail/></get-system-core-dumps>\ncommand = show system processes extensive\n[event alarm]\nrpc = get-alarm-information\n")
        #expect(configuration.eventRequests["core-dump"]?.count == 2)
        #expect(configuration.eventRequests["alarm"]?.map(\.name) == ["get-alarm-information"])
        #expect(configuration.eventRequests["reboot"] == nil)
        do {
            _ = try parse("[event alarm]\nschedule = every 1h\n")
            Issue.record("a schedule in an event section was accepted")
        } catch {
            #expect("\(error)" == "agent.conf:2:1: unknown key \"schedule\" in [event alarm]; expected rpc or command")
        }
    }

    @Test func pollIsOffByDefaultAndReadPerGroup() throws {
        let configuration = try parse("[defaults]\nuser = u\n[group core]\npoll = 5m\nevent-window = 30m\n[group edge]\npoll = off\n")
        #expect(configuration.groups[AgentConfiguration.defaultGroup]?.poll == nil)
        #expect(configuration.groups["core"]?.poll == .seconds(300))
        #expect(configuration.groups["core"]?.eventWindow == .seconds(1800))
        #expect(configuration.groups["edge"]?.poll == nil)
        #expect(configuration.groups["edge"]?.eventWindow == .seconds(3600))
        do {
            _ = try parse("[defaults]\npoll = 5s\n")
            Issue.record("a 5 s poll was accepted")
        } catch {
            #expect("\(error)".contains("expected a poll interval of at least 30s"), "\(error)")
        }
        do {
            _ = try parse("[defaults]\nevent-window = 0s\n")
            Issue.record("an event window of 0 s (no rate limit) was accepted")
        } catch {
            #expect("\(error)".contains("agent.conf:2:16: expected an event window of at least 1m"), "\(error)")
        }
        let example = try AgentConfiguration.load(path: Fixtures.packageRoot.appendingPathComponent("agent.conf.example").path)
        #expect(example.eventRequests["core-dump"]?.map(\.name) == ["get-system-core-dumps", "command \"show system processes extensive\"", "get-log"])
        #expect(example.eventRequests["fru-offline"]?.map(\.name) == ["command \"show chassis fpc detail\"", "get-environment-information", "get-log"])
        #expect(example.groups[AgentConfiguration.defaultGroup]?.poll == nil)
        #expect(example.groups[AgentConfiguration.defaultGroup]?.eventWindow == .seconds(3600))
    }
}
