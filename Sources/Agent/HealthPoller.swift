import Bundle
import Foundation
import Logging
import ServiceLifecycle

/// Per device and event kind, when the last event bundle was asked for: a flapping alarm yields
/// one bundle per `event-window`, not one per poll.
struct EventRateLimit: Sendable {
    private var last: [String: [String: Date]] = [:]

    /// The events of `device` that may trigger a bundle now; marks their kinds as used.
    mutating func admit(_ events: [TriggerEvent], device: String, window: TimeInterval, now: Date) -> (admitted: [TriggerEvent], limited: [TriggerEvent]) {
        var admitted: [TriggerEvent] = [], limited: [TriggerEvent] = []
        var used = Set<String>()
        for event in events {
            if let previous = last[device]?[event.kind], now.timeIntervalSince(previous) < window, !used.contains(event.kind) {
                limited.append(event)
                continue
            }
            admitted.append(event)
            used.insert(event.kind)
            last[device, default: [:]][event.kind] = now
        }
        return (admitted, limited)
    }
}

/// The health poll (`poll = 5m` in a group, off by default): every interval, a short session per
/// device asks for ``HealthSnapshot/pollFacts`` and compares them with the device's previous
/// poll; a new alarm, core dump, switchover, reboot or lost part triggers an immediate diagnostic
/// collection (`trigger: event`, the incident in the manifest), which the outbox uploads first.
/// The first poll of a device (after a start or reload) only records its state.
public final class HealthPoller: Service, @unchecked Sendable {
    let runtime: AgentRuntime
    let logger: Logger
    /// How often due devices are looked for.
    let tick: Duration
    private let lock = NSLock()
    private var snapshots: [String: HealthSnapshot] = [:]
    private var nextPoll: [String: Date] = [:]
    private var polling: Set<String> = []
    private var rateLimit = EventRateLimit()

    public init(runtime: AgentRuntime, logger: Logger, tick: Duration = .seconds(1)) {
        self.runtime = runtime
        self.logger = logger
        self.tick = tick
    }

    /// Polls until graceful shutdown, which cancels the polls in progress.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    for (device, interval) in await self.due(now: Date()) {
                        group.addTask { await self.poll(device, interval: interval) }
                    }
                    try? await Task.sleep(for: self.tick)
                }
            }
        }
    }

    /// The device's last poll (nil before its first successful one).
    func snapshot(of device: String) -> HealthSnapshot? { lock.withLock { snapshots[device] } }

    /// Devices whose poll is due and not running, marked as running.
    private func due(now: Date) async -> [(Device, Duration)] {
        let configuration = await runtime.configuration
        return lock.withLock {
            // Devices a reload removed, or whose group no longer polls, are forgotten: polled
            // again later, their first poll only records the state.
            let polled = Set(configuration.devices.filter { configuration.group(of: $0).poll != nil }.map(\.name))
            snapshots = snapshots.filter { polled.contains($0.key) }
            nextPoll = nextPoll.filter { polled.contains($0.key) }
            var due: [(Device, Duration)] = []
            for device in configuration.devices {
                guard let interval = configuration.group(of: device).poll, !polling.contains(device.name) else { continue }
                guard let next = nextPoll[device.name] else {
                    // First sight: a random moment within the interval, so that a thousand devices
                    // are not polled in the same second.
                    nextPoll[device.name] = now.addingTimeInterval(Double.random(in: 0 ..< interval.seconds))
                    continue
                }
                if next > now { continue }
                nextPoll[device.name] = now.addingTimeInterval(interval.seconds)
                polling.insert(device.name)
                due.append((device, interval))
            }
            return due
        }
    }

    /// Keeps `snapshot` as the device's latest and returns its events since the previous one,
    /// split by the rate limit.
    private func compare(_ snapshot: HealthSnapshot, device: String, window: TimeInterval, now: Date) -> (admitted: [TriggerEvent], limited: [TriggerEvent]) {
        lock.withLock {
            let previous = snapshots[device]
            snapshots[device] = snapshot
            let events = previous.map { snapshot.events(since: $0, at: now) } ?? []
            return rateLimit.admit(events, device: device, window: window, now: now)
        }
    }

    /// Polls one device, compares, and collects when something happened.
    func poll(_ device: Device, interval: Duration) async {
        defer { _ = lock.withLock { polling.remove(device.name) } }
        guard let result = await runtime.poll(device, facts: HealthSnapshot.pollFacts) else {
            logger.debug("health poll skipped: device being collected or no free slot", metadata: ["device": "\(device.name)"])
            return
        }
        guard result.status != .failed else {
            logger.info("health poll failed", metadata: ["device": "\(device.name)", "error": "\(result.reason ?? "")"])
            return
        }
        let now = Date()
        let snapshot = HealthSnapshot(facts: result.facts)
        let window = await runtime.configuration.group(of: device).eventWindow.seconds
        let (admitted, limited) = compare(snapshot, device: device.name, window: window, now: now)
        for event in limited {
            logger.info("event within its rate-limit window: no new bundle", metadata: [
                "device": "\(device.name)", "event.kind": "\(event.kind)", "evidence": "\(event.evidence)", "window": "\(Int(window))s",
            ])
        }
        await runtime.recordEvents(admitted: admitted, limited: limited)
        await record(limited.map { EventRecord(device: device.name, event: $0, action: .rateLimited) })
        guard let first = admitted.first else { return }
        for event in admitted {
            logger.notice("incident: collecting a diagnostic bundle now", metadata: [
                "device": "\(device.name)", "event.kind": "\(event.kind)", "event.source": "\(event.source)", "evidence": "\(event.evidence)",
            ])
        }
        // One bundle for what one poll found: its first event names it, the others are evidence.
        var trigger = first
        if admitted.count > 1 {
            trigger.evidence += admitted.dropFirst().map { "; also \($0.kind): \($0.evidence)" }.joined()
        }
        let collected = await runtime.collect([device], trigger: .event, event: trigger).first
        let bundle = collected?.stored.map { ($0 as NSString).lastPathComponent }
        let failed = bundle == nil ? (collected?.reason ?? "not collected") : nil
        if let failed {
            logger.error("event collection failed", metadata: ["device": "\(device.name)", "event.kind": "\(first.kind)", "error": "\(failed)"])
        }
        await record(admitted.map { EventRecord(device: device.name, event: $0, action: failed == nil ? .bundle : .failed, bundle: bundle, reason: failed) })
    }

    /// Appends to `<state-directory>/events.jsonl` for `care-agent events` (a failure is logged:
    /// the history never stops the poll).
    private func record(_ records: [EventRecord]) async {
        guard !records.isEmpty else { return }
        let log = EventLog(stateDirectory: await runtime.configuration.agent.stateDirectory)
        do { try log.append(records) } catch {
            logger.warning("cannot record events", metadata: ["path": "\(log.path)", "error": "\(error)"])
        }
    }
}
