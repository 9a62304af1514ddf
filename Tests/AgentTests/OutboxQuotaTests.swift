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
