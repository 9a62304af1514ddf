import Bundle
import Foundation
import Logging

/// The one path from an incident to a diagnostic bundle, shared by the health poll and the syslog
/// receiver: per device and event kind, the first event within `event-window` collects a bundle
/// (`trigger: event`); the same kind seen again by the same source is rate-limited (a flapping
/// alarm yields one bundle per window); seen by another source (a syslog FRU-offline, then the
/// next poll's) it is the same incident: recorded on that incident's entry in the event log, no
/// second bundle. Each bundle also queues a notice for the `[events] webhook`.
public actor IncidentResponder {
    let runtime: AgentRuntime
    let logger: Logger

    /// The incident of one device and kind still within its window.
    struct OpenIncident {
        var id: String
        var opened: Date
        var sources: Set<String>
        /// Sightings by other sources while its bundle is still being collected (its log entry
        /// is written when the collection ends).
        var pendingSightings: [TriggerEvent] = []
        var recorded = false
        /// Its collection failed (device unreachable, ...): another source's sighting collects
        /// anew instead of being added to a bundle that does not exist.
        var failed = false
        /// Rate-limited repeats seen, and when one was last written to the events log and the
        /// journal: a chatty device repeats a message every second, and one record per repeat
        /// pushed every real record out of the (trimmed) events log.
        var repeats = 0
        var repeatRecorded: Date?
        /// Collections tried for this incident in its window (a failed one is tried again).
        var attempts = 1
    }

    /// Collections tried per incident and window when they fail: the poll that saw it keeps it
    /// unresolved and sees it again (``HealthPoller``), and a device that was briefly unreachable
    /// still gets its bundle; a device that stays so is not tried at every poll.
    static let attemptsPerWindow = 3

    /// Whether `now` is within `window` seconds after `opened`. An incident "opened" after now
    /// (the wall clock went back) is not: its window would otherwise hold every event back for
    /// the length of the step as well.
    static func within(_ window: TimeInterval, of opened: Date, now: Date) -> Bool {
        let age = now.timeIntervalSince(opened)
        // A few seconds back is the clock being slewed or stepped a little, not a new incident.
        return age >= -5 && age < window
    }

    /// Rate-limited repeats of an incident are recorded (events log, journal) at most this often,
    /// each naming how many came since the incident opened; all are counted in the metrics.
    static let repeatRecordInterval: TimeInterval = 60

    /// device → event kind → its open incident.
    private var open: [String: [String: OpenIncident]] = [:]

    public init(runtime: AgentRuntime, logger: Logger) {
        self.runtime = runtime
        self.logger = logger
    }

    /// What became of the events of one ``respond(to:device:)``.
    public struct Response: Sendable, Equatable {
        public var admitted: [TriggerEvent] = []
        public var rateLimited: [TriggerEvent] = []
        /// Rate-limited repeats counted but not recorded (within ``repeatRecordInterval`` of the
        /// last one recorded).
        public var quietRepeats: [TriggerEvent] = []
        public var duplicates: [TriggerEvent] = []
        /// The bundle collected for the admitted events (nil when none or the collection failed).
        public var bundle: String?
    }

    /// Sorts `events` of `device` (all noticed at once: one poll, one syslog message) into new
    /// incidents, rate-limited repeats and duplicates from another source, collects one bundle
    /// for the new ones (the first names it, the others are evidence) and records everything.
    @discardableResult
    public func respond(to events: [TriggerEvent], device: Device, now: Date = Date()) async -> Response {
        guard !events.isEmpty else { return Response() }
        let configuration = await runtime.configuration
        let window = configuration.group(of: device).eventWindow.seconds
        var response = Response()
        var ids: [String] = []
        var newKinds = Set<String>()
        var sightings: [(id: String, recorded: Bool, event: TriggerEvent)] = []
        for event in events {
            if var incident = open[device.name]?[event.kind], Self.within(window, of: incident.opened, now: now), !newKinds.contains(event.kind),
               !(incident.failed && (incident.attempts < Self.attemptsPerWindow || !incident.sources.contains(event.source))) {
                if incident.sources.contains(event.source) {
                    incident.repeats += 1
                    if incident.repeatRecorded.map({ now.timeIntervalSince($0) >= Self.repeatRecordInterval }) ?? true {
                        incident.repeatRecorded = now
                        var noted = event
                        if incident.repeats > 1 { noted.evidence += " (repeat \(incident.repeats) within this window)" }
                        response.rateLimited.append(noted)
                    } else {
                        response.quietRepeats.append(event)
                    }
                    open[device.name]?[event.kind] = incident
                } else {
                    incident.sources.insert(event.source)
                    if !incident.recorded { incident.pendingSightings.append(event) }
                    sightings.append((incident.id, incident.recorded, event))
                    open[device.name]?[event.kind] = incident
                    response.duplicates.append(event)
                }
                continue
            }
            let id = UUID().uuidString.lowercased()
            // A retry after a failed collection keeps the sources that already tried: each
            // source gets one attempt per window, however they alternate.
            var sources: Set<String> = [event.source]
            var attempts = 1
            if let failed = open[device.name]?[event.kind], failed.failed, Self.within(window, of: failed.opened, now: now) {
                sources.formUnion(failed.sources)
                attempts = failed.attempts + 1
            }
            open[device.name, default: [:]][event.kind] = OpenIncident(id: id, opened: now, sources: sources, attempts: attempts)
            newKinds.insert(event.kind)
            response.admitted.append(event)
            ids.append(id)
        }
        // Windows long past are forgotten, so that the map stays as small as the recent incidents.
        for (name, kinds) in open {
            let kept = kinds.filter { Self.within(max(window, 86400), of: $0.value.opened, now: now) }
            open[name] = kept.isEmpty ? nil : kept
        }

        for event in response.rateLimited {
            logger.info("event within its rate-limit window: no new bundle", metadata: [
                "device": "\(device.name)", "event.kind": "\(event.kind)", "event.source": "\(event.source)",
                "evidence": "\(event.evidence)", "window": "\(Int(window))s",
            ])
        }
        for (_, _, event) in sightings {
            logger.notice("the same incident seen by another source: recorded, no second bundle", metadata: [
                "device": "\(device.name)", "event.kind": "\(event.kind)", "event.source": "\(event.source)", "evidence": "\(event.evidence)",
            ])
        }
        // Admitted events are counted once their collection has ended (bundle or failed).
        await runtime.recordEvents(admitted: [], limited: response.rateLimited + response.quietRepeats, duplicates: response.duplicates)
        let log = EventLog(stateDirectory: configuration.agent.stateDirectory)
        write(log) { try log.append(response.rateLimited.map { EventRecord(device: device.name, event: $0, action: .rateLimited) }) }
        for (id, recorded, event) in sightings where recorded {
            write(log) {
                if try !log.amend(id: id, with: event) {
                    logger.info("the incident's log entry is gone (trimmed); sighting not recorded", metadata: ["device": "\(device.name)", "event.kind": "\(event.kind)"])
                }
            }
        }
        guard let first = response.admitted.first else { return response }

        for event in response.admitted {
            logger.notice("incident: collecting a diagnostic bundle now", metadata: [
                "device": "\(device.name)", "event.kind": "\(event.kind)", "event.source": "\(event.source)", "evidence": "\(event.evidence)",
            ])
        }
        var trigger = first
        if response.admitted.count > 1 {
            trigger.evidence += response.admitted.dropFirst().map { "; also \($0.kind): \($0.evidence)" }.joined()
        }
        let collected = await collect(device, trigger: trigger, patience: configuration.group(of: device).deviceTimeout)
        let bundle = collected?.stored.map { ($0 as NSString).lastPathComponent }
        // A collection that got no session still stores a bundle (its log says why), but holds
        // no evidence: recorded as failed, and it may be tried again. So is one that did not run
        // (skipped: the agent stopping cancelled it), which was logged as a success.
        let evidence = collected.map { $0.status == .ok || $0.status == .partial } ?? false
        let failed = bundle == nil || !evidence ? (collected?.reason ?? "not collected") : nil
        if let failed {
            logger.error("event collection failed", metadata: ["device": "\(device.name)", "event.kind": "\(first.kind)", "error": "\(failed)"])
        }
        // What the doc says and the poll relies on: nil when the collection failed (a bundle
        // stored with only its log of why is no evidence), so that the incident is tried again.
        response.bundle = failed == nil ? bundle : nil
        await runtime.recordEvents(admitted: failed == nil ? response.admitted : [], failed: failed == nil ? [] : response.admitted, limited: [])
        // Sightings that arrived while collecting go into the entry as it is written.
        var records: [EventRecord] = []
        for (event, id) in zip(response.admitted, ids) {
            var pending: [TriggerEvent] = []
            if var incident = open[device.name]?[event.kind], incident.id == id {
                pending = incident.pendingSightings
                incident.pendingSightings = []
                incident.recorded = true
                incident.failed = failed != nil
                open[device.name]?[event.kind] = incident
            }
            records.append(EventRecord(device: device.name, event: event, action: failed == nil ? .bundle : .failed, bundle: bundle,
                                       reason: failed, id: id, alsoSeen: pending.isEmpty ? nil : pending))
        }
        write(log) { try log.append(records) }
        if let bundle, let stored = collected?.stored, let webhook = configuration.events.webhook {
            // The manifest's id, under which the intake stores the bundle and its case.
            let id = BundleReader(decodesFacts: false).manifestID(of: stored)
            let notice = EventNotice(agent: configuration.agent.agentID, device: device.name, kind: first.kind, source: first.source,
                                     time: first.time, bundle: bundle, bundleID: id,
                                     evidence: String(trigger.evidence.prefix(EventNotice.maximumEvidence)))
            do {
                try WebhookQueue(stateDirectory: configuration.agent.stateDirectory).add(notice)
                runtime.webhookWake.signal()
            } catch {
                logger.error("cannot queue the event notice for the webhook", metadata: ["url": "\(WebhookQueue.displayURL(webhook))", "bundle": "\(bundle)", "error": "\(error)"])
            }
        }
        return response
    }

    /// Collects the event bundle. A device only waiting for its turn in another run is taken
    /// over and collected now (that run skips it). A device being collected already (the
    /// scheduled run that a restart began, a `collect now`) is waited for, then collected for the
    /// event: that run's bundle is not an event bundle, and the incident is still fresh. Bounded
    /// by `patience` (the group's device-timeout) per attempt and three attempts.
    private func collect(_ device: Device, trigger: TriggerEvent, patience: Duration) async -> DeviceResult? {
        var result = await runtime.collect([device], trigger: .event, event: trigger).first
        var attempts = 1
        while let busy = result, busy.status == .skipped || busy.status == .queued, attempts < 3 {
            logger.info("incident: device being collected; the event bundle follows that collection", metadata: [
                "device": "\(device.name)", "event.kind": "\(trigger.kind)",
            ])
            let deadline = ContinuousClock.now + patience
            while await runtime.devicesInFlight.contains(device.name), ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(500))
            }
            if Task.isCancelled { break }
            result = await runtime.collect([device], trigger: .event, event: trigger).first
            attempts += 1
        }
        return result
    }

    /// A failure to write the history is logged: it never stops the response to an incident.
    private func write(_ log: EventLog, _ body: () throws -> Void) {
        do { try body() } catch {
            logger.warning("cannot record events", metadata: ["path": "\(log.path)", "error": "\(error)"])
        }
    }
}

extension BundleReader {
    /// The bundle id in the manifest of the bundle at `path` (nil when it cannot be read).
    func manifestID(of path: String) -> UUID? {
        try? read(contentsOf: URL(fileURLWithPath: path)).manifest.bundleId
    }
}
