@testable import Agent
import Bundle
import Foundation
import Logging
import NETCONF
import Testing
import TestSupport

/// The health poll against a simulated MX480 behind the real OpenSSH sshd, whose state changes
/// while the agent runs: each `simulate netconf` session reads its profile afresh, so editing the
/// profile's replies between polls is the device changing state.
@Suite(.serialized) struct HealthPollTests {
    /// Event bundles in `outbox`, read and verified, oldest first.
    func eventBundles(_ outbox: String) throws -> [BundleContents] { try EventEvidence.bundles(outbox) }

    func waitFor(_ seconds: Double, _ condition: () throws -> Bool) throws -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    @Test func eachIncidentYieldsOneEventBundleAndAFlappingAlarmNoMore() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var profileFiles = fullProfile
        profileFiles["get-alarm-information"] = "get-alarm-information/jsnapy__no-active-alarms.xml"
        let profile = try TestProfiles.write(profileFiles, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["r1"])
        var configuration = try AgentConfiguration.load(path: conf)
        // Seconds instead of minutes (agent.conf allows 30 s at least); the window stays an hour.
        configuration.groups[AgentConfiguration.defaultGroup]?.poll = .milliseconds(700)
        // What agent.conf's [event alarm] would add: an alarm's bundle carries the extra evidence.
        configuration.eventRequests["alarm"] = [.command("show chassis alarms"), try RPCRequest.parse("get-system-alarm-information")]
        let outbox = configuration.agent.outbox
        let lines = LineStore()
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) }
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: logger,
                                       makeSink: { BundleSink(outbox: $0.agent.outbox, key: OutboxSample.key, agent: AgentIdentity(id: "t", version: "0.1.0")) })
        let poller = HealthPoller(runtime: runtime, logger: logger, tick: .milliseconds(100))
        let task = Task { try await poller.run() }
        defer { task.cancel() }
        func replace(_ rpc: String, with fixture: String, edits: [(String, String)] = []) throws {
            var text = String(decoding: try Fixtures.bytes(fixture), as: UTF8.self)
            for (from, to) in edits { text = text.replacingOccurrences(of: from, with: to) }
            // Atomically, as a session may be reading it.
            try text.write(toFile: profile + "/\(rpc).xml", atomically: true, encoding: .utf8)
            chmod(profile + "/\(rpc).xml", 0o644)
        }

        // A few quiet polls: no incident, no bundle (the first only records the state). On a
        // loaded machine the first poll can take long: the state changes only after it.
        #expect(try waitFor(60) { poller.snapshot(of: "r1") != nil }, "no poll succeeded: \(lines.lines.suffix(10))")
        try await Task.sleep(for: .seconds(2))
        #expect(try eventBundles(outbox).isEmpty)
        #expect(try FileOutbox(directory: outbox).pending().isEmpty)

        // A new minor alarm: exactly one event bundle, within a poll plus a collection.
        try replace("get-alarm-information", with: "get-alarm-information/jsnapy__one-minor-plane-offline.xml")
        #expect(try waitFor(60) { try eventBundles(outbox).count == 1 }, "\(lines.lines.suffix(20))")
        let first = try #require(try eventBundles(outbox).first)
        #expect(first.trigger == .event && first.event?.kind == "alarm" && first.event?.source == "poll")
        #expect(first.event?.evidence == "new chassis alarm: Minor: Plane 0 not online")
        // A full diagnostic collection, not the poll's few RPCs.
        #expect(first.facts.software != nil && first.facts.inventory != nil)
        // Plus the alarm's own requests, after the default set.
        let asked = first.outcomes.map(\.rpc)
        #expect(asked.contains("command-show_chassis_alarms"), "\(asked)")
        #expect(asked.filter { $0.hasPrefix("get-system-alarm-information") }.count == 2, "\(asked)")

        // The alarm flaps (clears, comes back, twice): within event-window, no further bundle.
        // Each change is waited for until a poll saw it, so that the test holds on a loaded machine.
        for _ in 0 ..< 2 {
            try replace("get-alarm-information", with: "get-alarm-information/jsnapy__no-active-alarms.xml")
            #expect(try waitFor(60) { poller.snapshot(of: "r1")?.chassisAlarms == [] })
            try replace("get-alarm-information", with: "get-alarm-information/jsnapy__one-minor-plane-offline.xml")
            #expect(try waitFor(60) { poller.snapshot(of: "r1")?.chassisAlarms?.isEmpty == false })
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try eventBundles(outbox).count == 1)
        #expect(lines.lines.contains { $0.contains("event within its rate-limit window") && $0.contains("event.kind=alarm") })
        #expect(await runtime.metrics.render(outboxDepth: 0).contains("care_agent_events_total{kind=\"alarm\",action=\"bundle\"} 1\n"))

        // A routing-engine switchover is another kind: its own bundle.
        try replace("get-route-engine-information", with: "get-route-engine-information/pyez__mx480-dual-re-15.1F5.xml", edits: [
            ("<mastership-state>master</mastership-state>", "<mastership-state>TMP</mastership-state>"),
            ("<mastership-state>backup</mastership-state>", "<mastership-state>master</mastership-state>"),
            ("<mastership-state>TMP</mastership-state>", "<mastership-state>backup</mastership-state>"),
        ])
        #expect(try waitFor(60) { try eventBundles(outbox).count == 2 })
        let second = try eventBundles(outbox).last
        #expect(second?.outcomes.contains { $0.rpc == "command-show_chassis_alarms" } == false, "only alarm bundles ask for it")
        #expect(second?.event?.kind == "switchover" && second?.event?.evidence == "primary routing engine was /0, now /1")
        // A new core file: one bundle.
        let cores = { (files: [String]) in
            """
            <rpc-reply xmlns:junos="http://xml.juniper.net/junos/21.4R3/junos">
            <directory-list root-path="/var/crash/*core*" junos:style="detail"><directory><directory-name>/var/tmp/</directory-name>\(
                files.map { "<file-information><file-name>\($0)</file-name><file-size>1048576</file-size></file-information>" }.joined())</directory>
            </directory-list></rpc-reply>
            """
        }
        try cores([]).write(toFile: profile + "/get-system-core-dumps.xml", atomically: true, encoding: .utf8)
        chmod(profile + "/get-system-core-dumps.xml", 0o644)
        try await Task.sleep(for: .seconds(2))
        #expect(try eventBundles(outbox).count == 2, "an empty core listing replacing the 'no such file' one is not an incident")
        try cores(["/var/tmp/rpd.core.0.gz"]).write(toFile: profile + "/get-system-core-dumps.xml", atomically: true, encoding: .utf8)
        #expect(try waitFor(60) { try eventBundles(outbox).count == 3 })
        let third = try eventBundles(outbox).last
        #expect(third?.event?.kind == "core-dump" && third?.event?.evidence.hasSuffix("/var/tmp/rpd.core.0.gz") == true, "\(String(describing: third?.event))")

        // A reboot (a new boot time, the uptime back to minutes): one bundle.
        try replace("get-system-uptime-information", with: "get-system-uptime-information/librenms__ex4650-localre.xml", edits: [
            ("<date-time junos:seconds=\"1786824747\">", "<date-time junos:seconds=\"1789729000\">"),
            ("<up-time junos:seconds=\"2905140\">", "<up-time junos:seconds=\"894\">"),
        ])
        #expect(try waitFor(60) { try eventBundles(outbox).count == 4 })
        let fourth = try eventBundles(outbox).last
        #expect(fourth?.event?.kind == "reboot" && fourth?.event?.evidence.contains("uptime 894 s, was 2905140 s") == true,
                "\(String(describing: fourth?.event))")
        try await Task.sleep(for: .seconds(2))
        #expect(try eventBundles(outbox).count == 4, "each incident yields exactly one bundle")

        // `care-agent events`: each incident, what it did, the bundle it produced; counts per kind.
        let listing = try EventEvidence.listing(state: configuration.agent.stateDirectory, device: "r1", dir: dir)
        let bundles = listing.events.filter { $0.action == .bundle }
        #expect(bundles.map(\.event.kind) == ["alarm", "switchover", "core-dump", "reboot"])
        let names = Set(try FileOutbox(directory: outbox).pending().map(\.name))
        #expect(bundles.allSatisfy { $0.bundle.map(names.contains) == true }, "\(bundles.map(\.bundle))")
        #expect(listing.kinds["alarm"]?["bundle"] == 1 && (listing.kinds["alarm"]?["rate-limited"] ?? 0) >= 1)
        #expect(listing.events.allSatisfy { $0.device == "r1" })

        // Polls never wrote bundles of their own: every bundle is an event bundle.
        #expect(try FileOutbox(directory: outbox).pending().allSatisfy { $0.trigger == .event })
    }
}

/// Polls take free slots only: they never queue ahead of collections.
@Suite struct PollSlotTests {
    @Test func tryAcquireTakesOnlyAFreeSlotNobodyWaitsFor() async throws {
        let limit = ConcurrencyLimit(limit: 1)
        #expect(await limit.tryAcquire())
        #expect(await !limit.tryAcquire())
        let waiter = Task { try await limit.acquire() }
        while await limit.waiting == 0 { await Task.yield() }
        await limit.release()  // passes to the waiter
        try await waiter.value
        #expect(await !limit.tryAcquire())
        await limit.release()
        #expect(await limit.tryAcquire())
    }

    @Test func aPollWithNoFreeSlotIsSkippedAtOnce() async throws {
        var configuration = AgentConfiguration(devices: [Device(name: "r1", host: "192.0.2.1")])
        configuration.agent.concurrency = 1
        let collector = try Collector(configuration: configuration, sink: DirectorySink(root: "/nonexistent"), logger: Logger.test)
        try await collector.limits.global.acquire()
        let started = ContinuousClock.now
        #expect(await collector.poll(configuration.devices[0], facts: HealthSnapshot.pollFacts) == nil)
        #expect(ContinuousClock.now - started < .seconds(2), "skipped, not waiting for the slot nor connecting")
        #expect(await collector.limits.global.inUse == 1)
        let group = try #require(collector.limits.group(AgentConfiguration.defaultGroup))
        #expect(await group.inUse == 0, "the group slot it took was given back")
        await collector.limits.global.release()
    }
}

/// The poll schedule: on the monotonic clock, spread over the interval and kept spread.
@Suite struct HealthPollScheduleTests {
    /// Polls that came late (a tick held up, the agent suspended, a wall clock step, which the
    /// schedule no longer sees) keep each device's moment within the interval: set to "now plus
    /// an interval" they all fell into the same second, and only `concurrency` of them found a
    /// slot in every interval after.
    @Test func latePollsKeepTheirSpread() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var configuration = AgentConfiguration(devices: (0..<100).map { Device(name: "r\($0)", host: "192.0.2.1") })
        configuration.agent.stateDirectory = dir.path
        configuration.groups[AgentConfiguration.defaultGroup]?.poll = .seconds(300)
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        let poller = HealthPoller(runtime: runtime, logger: Logger.test)
        let t = ContinuousClock.now
        #expect(await poller.due(now: t).isEmpty, "first sight: a moment within the interval")
        let first = poller.nextPollTimes().values
        #expect(first.allSatisfy { $0 >= t && $0 < t + .seconds(300) })
        // Looked at again two intervals later: every device is due, once.
        #expect(await poller.due(now: t + .seconds(600)).count == 100)
        let next = poller.nextPollTimes().values
        #expect(next.allSatisfy { $0 > t + .seconds(600) && $0 <= t + .seconds(900) })
        let earliest = next.min()!, latest = next.max()!
        #expect(earliest.duration(to: latest) > .seconds(200), "still spread over the interval")
        // A poll that found no free slot is tried again within a tenth of the interval (30 s at most).
        #expect(HealthPoller.retryDelay(.seconds(300)) == .seconds(30))
        #expect(HealthPoller.retryDelay(.seconds(60)) == .seconds(6))
    }
}
