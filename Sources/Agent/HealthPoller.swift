import Bundle
import Foundation
import Logging
import ServiceLifecycle

/// The health poll (`poll = 5m` in a group, off by default): every interval, a short session per
/// device asks for ``HealthSnapshot/pollFacts`` and compares them with the device's previous
/// poll; a new alarm, core dump, switchover, reboot or lost part triggers an immediate diagnostic
/// collection (`trigger: event`, the incident in the manifest), which the outbox uploads first.
/// The first poll of a device never polled only records its state; the baselines outlive restarts.
public final class HealthPoller: Service, @unchecked Sendable {
    let runtime: AgentRuntime
    let logger: Logger
    /// How often due devices are looked for.
    let tick: Duration
    private let lock = NSLock()
    private var snapshots: [String: HealthSnapshot] = [:]
    /// On the monotonic clock: a wall clock stepped (NTP, either way) neither puts polls off nor
    /// brings every device's poll into the same second.
    private var nextPoll: [String: ContinuousClock.Instant] = [:]
    private var polling: Set<String> = []
    /// Whether `snapshots` changed since they were last written to the state directory.
    private var baselinesChanged = false
    /// Shared with the syslog receiver: one rate limit, one de-duplication.
    let responder: IncidentResponder

    public init(runtime: AgentRuntime, logger: Logger, tick: Duration = .seconds(1), responder: IncidentResponder? = nil) {
        self.runtime = runtime
        self.logger = logger
        self.tick = tick
        self.responder = responder ?? IncidentResponder(runtime: runtime, logger: logger)
    }

    /// Polls until graceful shutdown, which cancels the polls in progress. The baselines are
    /// read from the state directory first and kept there (``HealthBaselines``), so that what
    /// changed while the agent was stopped or upgraded (a reboot, a new alarm) is still seen.
    public func run() async throws {
        let stateDirectory = await runtime.configuration.agent.stateDirectory
        let loaded = HealthBaselines.load(stateDirectory: stateDirectory)
        lock.withLock { snapshots = loaded.merging(snapshots) { _, polled in polled } }
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                var saved = ContinuousClock.now
                while !Task.isCancelled {
                    for (device, interval) in await self.due() {
                        group.addTask { await self.poll(device, interval: interval) }
                    }
                    if saved.duration(to: .now) >= HealthBaselines.saveInterval {
                        self.saveBaselines(stateDirectory)
                        saved = .now
                    }
                    try? await Task.sleep(for: self.tick)
                }
            }
        }
        saveBaselines(stateDirectory)
    }

    /// Writes the baselines when they changed since the last write.
    private func saveBaselines(_ stateDirectory: String) {
        let changed: [String: HealthSnapshot]? = lock.withLock {
            guard baselinesChanged else { return nil }
            baselinesChanged = false
            return snapshots
        }
        guard let changed else { return }
        do { try HealthBaselines.save(changed, stateDirectory: stateDirectory) } catch {
            logger.warning("cannot keep the health baselines: a restart would not see what changed meanwhile", metadata: ["error": "\(error)"])
        }
    }

    /// When each device is polled next (for tests).
    func nextPollTimes() -> [String: ContinuousClock.Instant] { lock.withLock { nextPoll } }

    /// The device's last poll (nil before its first successful one).
    func snapshot(of device: String) -> HealthSnapshot? { lock.withLock { snapshots[device] } }

    /// Devices whose poll is due and not running, marked as running.
    func due(now: ContinuousClock.Instant = .now) async -> [(Device, Duration)] {
        let configuration = await runtime.configuration
        return lock.withLock {
            // Devices a reload removed, or whose group no longer polls, are forgotten: polled
            // again later, their first poll only records the state.
            let polled = Set(configuration.devices.filter { configuration.group(of: $0).poll != nil }.map(\.name))
            let kept = snapshots.filter { polled.contains($0.key) }
            if kept.count != snapshots.count { baselinesChanged = true }
            snapshots = kept
            nextPoll = nextPoll.filter { polled.contains($0.key) }
            var due: [(Device, Duration)] = []
            for device in configuration.devices {
                guard let interval = configuration.group(of: device).poll, !polling.contains(device.name) else { continue }
                guard let next = nextPoll[device.name] else {
                    // First sight: a random moment within the interval, so that a thousand devices
                    // are not polled in the same second.
                    nextPoll[device.name] = now + interval * Double.random(in: 0 ..< 1)
                    continue
                }
                // Further away than one interval: the interval was shortened by a reload.
                if next > now, now.duration(to: next) <= interval { continue }
                // The device keeps its moment within the interval (polls stay spread out), one
                // interval on, or as many as were missed (the agent was suspended).
                let behind = next < now ? (next.duration(to: now) / interval).rounded(.down) : 0
                nextPoll[device.name] = next > now ? now + interval : next + interval * (behind + 1)
                polling.insert(device.name)
                due.append((device, interval))
            }
            return due
        }
    }

    /// Keeps `snapshot` as the device's latest and returns its events since the previous one,
    /// and that previous one.
    private func compare(_ snapshot: HealthSnapshot, device: String, now: Date) -> (events: [TriggerEvent], previous: HealthSnapshot?) {
        lock.withLock {
            let previous = snapshots[device]
            snapshots[device] = previous.map { snapshot.filling(from: $0) } ?? snapshot
            baselinesChanged = true
            return (previous.map { snapshot.events(since: $0, at: now) } ?? [], previous)
        }
    }

    /// How soon a poll that found no free slot (a collection holds them, or the device is being
    /// collected) is tried again: a tenth of the interval, at most 30 s. Put off a whole interval,
    /// the same devices' polls met the same busy moments again and again.
    static func retryDelay(_ interval: Duration) -> Duration { min(interval / 10, .seconds(30)) }

    /// Polls one device, compares, and hands what happened to the responder.
    func poll(_ device: Device, interval: Duration) async {
        defer { _ = lock.withLock { polling.remove(device.name) } }
        guard let result = await runtime.poll(device, facts: HealthSnapshot.pollFacts) else {
            logger.debug("health poll skipped: device being collected or no free slot; tried again shortly", metadata: ["device": "\(device.name)"])
            lock.withLock { nextPoll[device.name] = .now + Self.retryDelay(interval) }
            return
        }
        guard result.status != .failed else {
            logger.info("health poll failed", metadata: ["device": "\(device.name)", "error": "\(result.reason ?? "")"])
            return
        }
        let now = Date()
        let (events, previous) = compare(HealthSnapshot(facts: result.facts), device: device.name, now: now)
        let response = await responder.respond(to: events, device: device, now: now)
        // The incident's bundle could not be collected: the baseline goes back to before it, so
        // that the next poll sees the change again and the responder tries again (a few times a
        // window). Kept, the incident would be the device's normal state from now on.
        if !response.admitted.isEmpty, response.bundle == nil, let previous {
            lock.withLock {
                snapshots[device.name] = previous
                baselinesChanged = true
            }
        }
    }
}

/// The health poll's baselines as the state directory keeps them (`health-baselines.json`):
/// each device's last poll. In memory only, a restart made the first poll a new baseline, and
/// whatever happened while the agent was down (a reboot during its upgrade) was never raised.
enum HealthBaselines {
    static let saveInterval: Duration = .seconds(30)

    static func path(stateDirectory: String) -> String { stateDirectory + "/health-baselines.json" }

    static func load(stateDirectory: String) -> [String: HealthSnapshot] {
        guard let data = FileManager.default.contents(atPath: path(stateDirectory: stateDirectory)),
              let snapshots = try? ResultStore.decoder.decode([String: HealthSnapshot].self, from: data) else { return [:] }
        return snapshots
    }

    static func save(_ snapshots: [String: HealthSnapshot], stateDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try writeAtomically(Array(try encoder.encode(snapshots)), to: path(stateDirectory: stateDirectory), mode: 0o640,
                            what: "the health baselines")
    }
}
