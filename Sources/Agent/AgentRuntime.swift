import Bundle
import Foundation
import Junos
import Logging

/// The running agent's state shared by the scheduler, the control socket and reloads: the
/// configuration in force (the last good one), its collector, and what happened lately.
public actor AgentRuntime {
    /// The configuration in force, its devices merged with those of the `[inventory]` sources.
    public private(set) var configuration: AgentConfiguration
    /// agent.conf as read, before the sources' devices are merged in.
    private var fileConfiguration: AgentConfiguration
    /// The last good read of each source (by name).
    private var sourceYields: [String: InventoryYield] = [:]
    /// How each source stands, for `status`.
    public private(set) var inventoryStatus: [String: InventorySourceStatus] = [:]
    /// Problems logged (skipped devices, duplicates): each is logged once while it lasts, not at every refresh.
    private var loggedInventoryProblems: Set<String> = []
    /// Source reads block (files, libcurl): on a thread of their own.
    private let inventoryThread = SerialWorkThread(name: "care-inventory")
    private let environment: [String: String]
    public let configurationPath: String?
    private var collector: Collector
    private let makeSink: @Sendable (AgentConfiguration) -> any CollectionSink
    private let logger: Logger
    private let inFlight = DevicesInFlight()
    /// One set of limits for the agent's life: every collector (one per reload) shares them.
    private let limits: CollectionLimits
    public private(set) var lastReloadError: String?
    /// The scheduler's last run of each group (what its next run is planned from).
    public private(set) var lastRun: [String: Date] = [:]
    /// The last `collect now` through the control socket that included devices of each group;
    /// shown by `status`, never counted by the scheduler (an on-demand run does not delay the next).
    public private(set) var lastRequestedRun: [String: Date] = [:]
    public private(set) var lastCollection: Date?
    public private(set) var collectionsRunning = 0
    /// Counters since start, written to `metrics-file` after each collection.
    public private(set) var metrics = AgentMetrics()
    /// The configured outbox (a reload may move it); the uploader, metrics and `status` read it.
    public private(set) var outbox: FileOutbox
    /// Bumped on every successful reload so that the scheduler recomputes its plan.
    public private(set) var generation = 0
    /// Bumped whenever the devices change (a reload, an inventory refresh), for what is indexed
    /// by device (the syslog receiver's senders).
    public private(set) var devicesGeneration = 0

    /// The configuration with the devices' generation, read together.
    public var configurationWithDevicesGeneration: (AgentConfiguration, Int) { (configuration, devicesGeneration) }
    /// The redaction rules in force (the default ones and `[agent] redact-*`), for text that leaves
    /// the machine outside a collection (syslog evidence).
    public var redactor: ConfigurationRedactor { collector.redactor }

    public init(configuration: AgentConfiguration, configurationPath: String?, logger: Logger,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                makeSink: @escaping @Sendable (AgentConfiguration) -> any CollectionSink) throws {
        // The fleet is known from the first moment: the sources' last good inventories, until
        // the first refresh (``InventoryRefresher``) reads them again.
        var yields: [String: InventoryYield] = [:]
        var statuses: [String: InventorySourceStatus] = [:]
        Self.loadLastGood(configuration, yields: &yields, statuses: &statuses)
        var merged = configuration
        merged.devices = FleetInventory(configuration: configuration, yields: configuration.inventorySources.compactMap { yields[$0.name] }).devices
        self.configuration = merged
        fileConfiguration = configuration
        sourceYields = yields
        inventoryStatus = statuses
        self.environment = environment
        self.configurationPath = configurationPath
        self.makeSink = makeSink
        self.logger = logger
        limits = CollectionLimits(configuration: configuration)
        outbox = FileOutbox(directory: configuration.agent.outbox, keepsSent: configuration.upload.keepSent)
        collector = try Collector(configuration: configuration, sink: makeSink(configuration), logger: logger, inFlight: inFlight, limits: limits)
        scheduledRuns = ScheduledRuns.load(stateDirectory: configuration.agent.stateDirectory)
        lastRun = scheduledRuns.groups.mapValues(\.started)
    }

    /// Re-reads the configuration file; on any error the configuration in force stays, and the
    /// error is returned (and kept for `status`).
    @discardableResult
    public func reload() async -> String? {
        guard let configurationPath else { return nil }
        do {
            let fresh = try AgentConfiguration.load(path: configurationPath)
            limits.register(fresh)
            collector = try Collector(configuration: fresh, sink: makeSink(fresh), logger: logger, inFlight: inFlight, limits: limits)
            warnOfBundlesLeftBehind(from: configuration.agent.outbox, to: fresh.agent.outbox)
            // Sources removed, or pointed elsewhere, no longer contribute; the others keep their
            // devices until the refresh below reads them again.
            let kept = Dictionary(fresh.inventorySources.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for (name, status) in inventoryStatus where kept[name].map({ $0.kind.type != status.type || $0.location != status.location }) ?? true {
                inventoryStatus[name] = nil
                sourceYields[name] = nil
            }
            fileConfiguration = fresh
            configuration = fresh
            // A group the reload removed: its schedule and its metric series go with it (status
            // and the metrics file showed it until the next restart).
            let groups = Set(fresh.groups.keys)
            lastRun = lastRun.filter { groups.contains($0.key) }
            lastRequestedRun = lastRequestedRun.filter { groups.contains($0.key) }
            metrics.keepGroups(groups)
            loadLastGoodInventories()
            mergeInventory()
            // The same outbox: the same instance, whose memory of each bundle's manifest spares
            // the next scan reading them all again (tens of seconds at the quota's 2 GiB).
            if outbox.directory != fresh.agent.outbox || outbox.keepsSent != fresh.upload.keepSent {
                outbox = FileOutbox(directory: fresh.agent.outbox, keepsSent: fresh.upload.keepSent)
            }
            lastReloadError = nil
            generation += 1
            let mine = generation
            logger.notice("configuration reloaded", metadata: ["devices": "\(fresh.devices.count)", "groups": "\(fresh.groups.count)"])
            // A fixed [upload] url or token is tried now, not after the uploader's backoff, and
            // an upload turned on starts now, not after the interval it was off for.
            reloadWake.signal()
            uploadWake.signal()
            // Resized in place: runs started before this reload take the new limits too, and the
            // cap holds across old and new runs together.
            await limits.apply(fresh)
            // A reload that overtook this one while it resized: its limits are the ones in force.
            if generation != mine { await limits.apply(configuration) }
            // SIGHUP reads every source again, as the operator expects after editing NetBox; in
            // the background, so that a slow source of truth does not hold the reload's answer
            // (systemd waits for READY=1 after RELOADING=1).
            Task { await self.refreshInventory(force: true) }
            return nil
        } catch {
            lastReloadError = "\(error)"
            logger.error("configuration not reloaded, keeping the previous one", metadata: ["error": "\(error)"])
            return "\(error)"
        }
    }

    /// Takes each source's inventory kept on disk when nothing newer is in memory.
    private func loadLastGoodInventories() {
        Self.loadLastGood(fileConfiguration, yields: &sourceYields, statuses: &inventoryStatus)
    }

    private static func loadLastGood(_ configuration: AgentConfiguration, yields sourceYields: inout [String: InventoryYield],
                                     statuses inventoryStatus: inout [String: InventorySourceStatus]) {
        let cache = InventoryCache(stateDirectory: configuration.agent.stateDirectory)
        for source in configuration.inventorySources where sourceYields[source.name] == nil {
            var status = inventoryStatus[source.name] ?? InventorySourceStatus(source: source)
            if let record = cache.load(source) {
                sourceYields[source.name] = record.yield
                status.devices = record.yield.entries.count
                status.lastSuccess = record.fetched
                status.fromLastGood = true
                status.skipped = Array(record.yield.skipped.prefix(100))
                status.skippedCount = record.yield.skipped.count
            }
            inventoryStatus[source.name] = status
        }
    }

    /// The fleet in force: agent.conf's devices, then each source's last good devices.
    private func mergeInventory() {
        let yields = fileConfiguration.inventorySources.compactMap { sourceYields[$0.name] }
        let fleet = FleetInventory(configuration: fileConfiguration, yields: yields)
        configuration.devices = fleet.devices
        devicesGeneration += 1
        for source in fileConfiguration.inventorySources {
            inventoryStatus[source.name]?.devices = sourceYields[source.name]?.entries.count ?? 0
        }
        // Each problem logged once while it lasts (one that goes and comes back is logged again),
        // so that the set stays as small as the problems of the moment.
        let current = yields.flatMap(\.skipped) + fleet.problems
        for problem in current where !loggedInventoryProblems.contains(problem) {
            logger.warning("\(problem)")
        }
        loggedInventoryProblems = Set(current)
    }

    /// Reads the sources due (all with `force`: start and SIGHUP) and merges their devices. A
    /// source that fails keeps its last good inventory (in memory, else from disk), with a
    /// warning in the log and in `status`; a device that left a source is no longer scheduled.
    public func refreshInventory(force: Bool) async {
        // One refresh at a time: a SIGHUP during a refresh asks for another one right after it,
        // so that the sources are read again after the operator's change, not before; callers
        // meanwhile return when the refresh in progress (and that one) is done.
        guard !refreshing else {
            if force { refreshAgain = true }
            await withCheckedContinuation { refreshWaiters.append($0) }
            return
        }
        refreshing = true
        var force = force
        repeat {
            refreshAgain = false
            await refreshOnce(force: force, now: Date())
            force = true
        } while refreshAgain
        refreshing = false
        let waiters = refreshWaiters
        refreshWaiters = []
        waiters.forEach { $0.resume() }
    }

    private var refreshing = false
    private var refreshAgain = false
    private var refreshWaiters: [CheckedContinuation<Void, Never>] = []

    private func refreshOnce(force: Bool, now: Date) async {
        let sources = fileConfiguration.inventorySources
        let cache = InventoryCache(stateDirectory: fileConfiguration.agent.stateDirectory)
        let environment = self.environment
        for source in sources {
            var status = inventoryStatus[source.name] ?? InventorySourceStatus(source: source)
            if !force, let last = status.lastRefresh, now < last.addingTimeInterval(source.refresh.seconds) { continue }
            status.lastRefresh = now
            var result = await inventoryThread.run { source.read(environment: environment) }
            // A reload while this read ran may have removed or changed the source.
            guard fileConfiguration.inventorySources.contains(source) else { continue }
            // A source that answers with no devices where it had some (a token that lost its
            // permissions, a filter typed wrong, an export cut short) would unschedule its whole
            // fleet and overwrite the last good inventory with nothing: kept as a failure.
            if case let .success(yield) = result, yield.entries.isEmpty {
                let had = sourceYields[source.name]?.entries.count ?? cache.load(source)?.yield.entries.count ?? 0
                if had > 0 {
                    result = .failure(InventorySourceError(source: source.name, "the source answered with no devices where it had \(had): "
                        + "its last good inventory is kept (if its devices are really gone, remove the source from agent.conf)"))
                }
            }
            switch result {
            case let .success(yield):
                sourceYields[source.name] = yield
                status.lastSuccess = now
                status.error = nil
                status.fromLastGood = false
                status.devices = yield.entries.count
                status.skipped = Array(yield.skipped.prefix(100))
                status.skippedCount = yield.skipped.count
                let saved: String? = await inventoryThread.run {
                    do { try cache.save(source, yield: yield, fetched: now); return nil } catch { return "\(error)" }
                }
                if let error = saved {
                    logger.warning("cannot keep the inventory on disk", metadata: ["inventory": "\(source.name)", "error": "\(error)"])
                }
                logger.info("inventory refreshed", metadata: ["inventory": "\(source.name)", "devices": "\(yield.entries.count)", "skipped": "\(yield.skipped.count)"])
            case let .failure(error):
                status.error = error.message
                if sourceYields[source.name] == nil, let record = cache.load(source) {
                    sourceYields[source.name] = record.yield
                    status.lastSuccess = record.fetched
                    status.fromLastGood = true
                }
                if let yield = sourceYields[source.name] {
                    status.devices = yield.entries.count
                    logger.warning("inventory source failed: keeping its last good inventory", metadata: [
                        "inventory": "\(source.name)", "error": "\(error.message)", "devices": "\(yield.entries.count)",
                        "last-good": "\(status.lastSuccess.map { ISO8601DateFormatter().string(from: $0) } ?? "?")",
                    ])
                } else {
                    status.devices = 0
                    logger.error("inventory source failed and no last good inventory is kept: none of its devices is scheduled", metadata: [
                        "inventory": "\(source.name)", "error": "\(error.message)",
                    ])
                }
            }
            inventoryStatus[source.name] = status
        }
        mergeInventory()
    }

    /// When the next source is due for a refresh (nil: no sources).
    public func nextInventoryRefresh() -> Date? {
        fileConfiguration.inventorySources.map { source in
            inventoryStatus[source.name]?.lastRefresh.map { $0.addingTimeInterval(source.refresh.seconds) } ?? .distantPast
        }.min()
    }

    /// The uploader sends only from the configured outbox: bundles waiting in one a reload moved
    /// away from would wait forever, unseen by `status`. Say where they are and what to do.
    /// `byRunningCollection`: said when a collection that started before the move ends (it went on
    /// writing into the outbox it started with).
    private func warnOfBundlesLeftBehind(from old: String, to new: String, byRunningCollection: Bool = false) {
        guard old != new else { return }
        // Names only: reading each manifest of an outage's backlog would hold the actor for seconds.
        let waiting = FileOutbox.bundleFiles(in: old)
        guard !waiting.isEmpty else { return }
        let message: Logger.Message = byRunningCollection
            ? "outbox moved: a collection that started before the move wrote its bundles into the previous outbox, no longer uploaded; move them into the new one"
            : "outbox moved: bundles left in the previous outbox are no longer uploaded; move them into the new one"
        logger.warning(message, metadata: [
            "outbox.previous": "\(old)", "outbox.new": "\(new)", "bundles": "\(waiting.count)",
        ])
    }

    /// Collects the devices of `groups` plus `devices` (everything when both are empty).
    /// `onSelected` learns how many devices were selected before the collection starts.
    public func collect(groups: [String], devices: [String], trigger: CollectionCause,
                        onSelected: @Sendable (Int) -> Void = { _ in },
                        onEvent: @escaping @Sendable (CollectionEvent) -> Void = { _ in }) async throws -> [DeviceResult] {
        let selected = try configuration.select(groups: groups, devices: devices)
        onSelected(selected.count)
        return await collect(selected, trigger: trigger, onEvent: onEvent)
    }

    /// Collects `devices`; each result is recorded in the results store as its device finishes.
    /// The results returned (in the order given) hold no facts and no log: those are in the
    /// results store and the bundle, and a scheduled run of thousands of devices must not hold
    /// them all until the last device is done.
    public func collect(_ devices: [Device], trigger: CollectionCause, event: TriggerEvent? = nil,
                        onEvent: @escaping @Sendable (CollectionEvent) -> Void = { _ in }) async -> [DeviceResult] {
        let collector = self.collector
        let store = ResultStore(stateDirectory: configuration.agent.stateDirectory)
        // The outbox this run's bundles go to: a reload while it runs may move the configured one.
        let runOutbox = configuration.agent.outbox
        collectionsRunning += 1
        if trigger == .request {
            let now = Date()
            for group in Set(devices.map(\.group)) { lastRequestedRun[group] = now }
        }
        let kept = CollectedResults(count: devices.count)
        let logger = self.logger
        // Slowest last time first; results still come back in the order given.
        await collector.collectEach(devices, trigger: trigger, event: event, order: collectionOrder, onEvent: onEvent) { index, result in
            if result.status.attempted {
                do { try store.save(result) } catch {
                    logger.error("cannot record the result", metadata: ["device": "\(result.device.name)", "error": "\(error)"])
                }
            }
            kept.set(index, result.withoutFacts)
        }
        let results = kept.all
        recordDurations(results)
        // Written after the reload's warning counted what waited there: said again, with them.
        if runOutbox != configuration.agent.outbox, results.contains(where: { $0.stored?.hasPrefix(runOutbox + "/") == true }) {
            warnOfBundlesLeftBehind(from: runOutbox, to: configuration.agent.outbox, byRunningCollection: true)
        }
        collectionsRunning -= 1
        if results.contains(where: { $0.status.attempted }) { lastCollection = Date() }
        metrics.record(results)
        // Here too, not only before an upload pass: an uploader backing off from an outage
        // sleeps through collections, and the quota must hold all the same.
        // One scan of the outbox for both the quota and the metrics.
        let outboxTotals = results.contains(where: { $0.status.attempted }) ? enforceOutboxQuotaCounting() : nil
        writeMetrics(outbox: outboxTotals)
        uploadWake.signal()
        return results
    }

    /// Each device's last duration, for the next runs' start order, from the state directory.
    private lazy var collectionOrder = CollectionOrder.load(stateDirectory: configuration.agent.stateDirectory)

    private func recordDurations(_ results: [DeviceResult]) {
        guard results.contains(where: { $0.status.attempted }) else { return }
        collectionOrder.record(results.map(DeviceSummary.init))
        collectionOrder.keep(only: Set(configuration.devices.map(\.name)))
        do { try collectionOrder.save(stateDirectory: configuration.agent.stateDirectory) } catch {
            logger.warning("cannot record the devices' durations for the next run's order", metadata: ["error": "\(error)"])
        }
    }

    /// One health poll of `device` (see ``Collector/poll(_:facts:)``).
    public func poll(_ device: Device, facts: [FactKind]) async -> DeviceResult? {
        let collector = self.collector
        return await collector.poll(device, facts: facts)
    }

    /// Counts the events of an incident response: those that triggered a bundle, those the rate
    /// limit held back, and those another source had already reported.
    public func recordEvents(admitted: [TriggerEvent], failed: [TriggerEvent] = [], limited: [TriggerEvent], duplicates: [TriggerEvent] = []) {
        guard !admitted.isEmpty || !failed.isEmpty || !limited.isEmpty || !duplicates.isEmpty else { return }
        metrics.recordEvents(admitted: admitted, failed: failed, limited: limited, duplicates: duplicates)
        writeMetrics()
    }

    /// Counts syslog messages by what became of them (see ``AgentMetrics/recordSyslog(_:)``).
    public func recordSyslog(_ result: SyslogResult, count: Int = 1) {
        metrics.recordSyslog(result, count: count)
    }

    /// The webhook's last delivery (for `status`).
    public private(set) var webhookLastSuccess: Date?
    public private(set) var webhookLastError: String?
    /// Where the syslog receiver listens (empty: no receiver), for `status`.
    public private(set) var syslogListening: [String] = []

    public func setSyslogListening(_ names: [String]) { syslogListening = names }

    /// Counts one webhook delivery attempt and the notices still queued.
    public func recordWebhook(_ outcome: UploadOutcome?, pending: Int) {
        switch outcome {
        case .accepted?: webhookLastSuccess = Date(); webhookLastError = nil
        case let .rejected(status, body)?: webhookLastError = "HTTP \(status), notice moved to webhook/rejected/: \(body.prefix(200))"
        case let .failed(reason)?: webhookLastError = reason
        case nil: break
        }
        if let outcome { metrics.recordWebhook(outcome) }
        metrics.webhookPending = pending
        writeMetrics()
    }

    /// Signalled when an event notice is queued so that the webhook sender posts it promptly.
    public nonisolated let webhookWake = UploadWake()

    /// Drops what exceeds `outbox-max` and `outbox-max-age` (each eviction logged), counts it in
    /// the metrics, and rewrites the metrics file when anything went.
    @discardableResult
    public func enforceOutboxQuota(now: Date = Date()) -> [OutboxEviction] {
        redateAfterClockStep()
        let pass = outbox.enforceQuotaCounting(configuration.agent.outboxQuota, now: now, logger: logger)
        guard !pass.evicted.isEmpty || !pass.discarded.isEmpty else { return [] }
        metrics.record(pass)
        writeMetrics(outbox: pass.remaining)
        return pass.evicted
    }

    /// ``enforceOutboxQuota(now:)`` without its metrics file rewrite: what stays in the outbox,
    /// for the caller's own.
    private func enforceOutboxQuotaCounting() -> OutboxTotals {
        redateAfterClockStep()
        let pass = outbox.enforceQuotaCounting(configuration.agent.outboxQuota, logger: logger)
        metrics.record(pass)
        return pass.remaining
    }

    /// Watches the wall clock against the boot-time one, from the agent's start.
    private var clockSteps = WallClockSteps()

    /// Before any age is judged: when the wall clock was stepped forward since the last look (NTP
    /// correcting a VM that booted with its clock behind), the bundles written before the step
    /// are dated that much later, so that `outbox-max-age` counts the time they really waited.
    /// (A step while the agent was stopped is not seen: the unit starts after time-sync.target.)
    func redateAfterClockStep(wall: Date = Date(), boot: ContinuousClock.Instant = .now) {
        guard let step = clockSteps.observe(wall: wall, boot: boot) else { return }
        let redated = outbox.redate(before: step.datedBefore, by: step.seconds)
        logger.warning("the wall clock was stepped forward: bundles written before the step keep the age they really have", metadata: [
            "step.seconds": "\(Int(step.seconds))", "bundles": "\(redated)", "outbox": "\(outbox.directory)",
        ])
    }

    /// Rewrites the metrics file (a failure is logged: metrics never stop collections). With the
    /// outbox's `totals` the caller has just counted: at once. Without: soon, from a scan of the
    /// outbox made at most every ``metricsScanInterval`` (an upload, a webhook notice or a syslog
    /// burst each asked for a scan and an fsync: draining a backlog of N bundles scanned the
    /// outbox N times). The last request is always written.
    public func writeMetrics(outbox totals: OutboxTotals? = nil) {
        guard configuration.agent.metricsPath != nil else { return }
        if let totals {
            lastMetricsScan = .now
            writeMetricsFile(totals)
            return
        }
        guard !metricsFlushScheduled else { return }
        metricsFlushScheduled = true
        let due = lastMetricsScan.map { $0 + Self.metricsScanInterval - .now } ?? .zero
        Task {
            try? await Task.sleep(for: max(.milliseconds(200), due))
            await self.flushMetrics()
        }
    }

    /// The least time between two scans of the outbox for the metrics file.
    static let metricsScanInterval: Duration = .seconds(5)
    private var metricsFlushScheduled = false
    private var lastMetricsScan: ContinuousClock.Instant?

    /// Writes the metrics file now if a rewrite is waiting (at shutdown: the process ends before
    /// the scheduled one).
    public func flushPendingMetrics() {
        if metricsFlushScheduled { flushMetrics() }
    }

    private func flushMetrics() {
        guard metricsFlushScheduled else { return }
        metricsFlushScheduled = false
        lastMetricsScan = .now
        writeMetricsFile(outbox.totals)
    }

    private func writeMetricsFile(_ totals: OutboxTotals) {
        guard let path = configuration.agent.metricsPath else { return }
        do {
            try metrics.write(to: path, outbox: totals)
        } catch {
            logger.warning("cannot write the metrics file", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    /// The scheduled runs started lately (the last 100), oldest first.
    public private(set) var recentRuns: [(group: String, at: Date)] = []

    /// When each group runs next, as the scheduler planned it (for `status`).
    public private(set) var nextRuns: [String: Date] = [:]

    public func setNextRuns(_ runs: [String: Date]) { nextRuns = runs }

    public func markRun(group: String, at date: Date) {
        lastRun[group] = date
        recentRuns.append((group, date))
        if recentRuns.count > 100 { recentRuns.removeFirst(recentRuns.count - 100) }
        scheduledRuns.groups[group] = ScheduledRuns.Run(started: date)
        saveScheduledRuns()
    }

    /// The scheduled run of `group` that started at `started` is over (all its devices done).
    public func markRunFinished(group: String, started: Date, at date: Date = Date()) {
        // The file keeps whole seconds.
        guard let run = scheduledRuns.groups[group], abs(run.started.timeIntervalSince(started)) < 1 else { return }
        scheduledRuns.groups[group]?.finished = date
        saveScheduledRuns()
    }

    /// The scheduled runs as kept in the state directory, read at start.
    public private(set) var scheduledRuns = ScheduledRuns()

    /// Runs a previous process started and did not finish (the scheduler resumes them at its start).
    public func takeInterruptedRuns() -> [String: Date] {
        let interrupted = scheduledRuns.interrupted.filter { configuration.groups[$0.key] != nil }
        return interrupted
    }

    private func saveScheduledRuns() {
        do { try scheduledRuns.save(stateDirectory: configuration.agent.stateDirectory) } catch {
            logger.warning("cannot keep the scheduled runs: a restart may run a group again", metadata: ["error": "\(error)"])
        }
    }
    /// Devices of the collections in progress: queued or being collected.
    public var devicesInFlight: Set<String> { get async { await inFlight.current } }
    /// Devices holding their slots, being collected now.
    public var devicesCollecting: Set<String> { get async { await inFlight.collecting } }
    /// Devices waiting for a concurrency slot.
    public var devicesQueued: Set<String> { get async { await inFlight.queued } }

    /// Signalled after every collection so that the uploader sends new bundles promptly.
    public nonisolated let uploadWake = UploadWake()
    /// Signalled by a reload: ends the uploader's backoff (a corrected url, token or certificate
    /// is tried at once; a new bundle does not end it, a server that is down stays down).
    public nonisolated let reloadWake = UploadWake()

    /// The uploader's last attempts (for `status`); pending and rejected are counted when asked.
    public private(set) var uploadState = UploadStatus()

    /// Records one upload attempt in the status and the metrics, and rewrites the metrics file.
    public func recordUpload(_ outcome: UploadOutcome, url: String?, at date: Date = Date()) {
        uploadState.url = url
        uploadState.lastAttempt = date
        switch outcome {
        case .accepted:
            uploadState.lastSuccess = date
            uploadState.lastError = nil
        case let .rejected(status, body):
            uploadState.lastError = "HTTP \(status), bundle moved to rejected/: \(body.prefix(200).trimmingCharacters(in: .whitespacesAndNewlines))"
        case let .failed(reason):
            uploadState.lastError = reason
        }
        metrics.recordUpload(outcome)
        writeMetrics()
    }

    /// Records a bundle moved to `rejected/`: refused by the server, or failing again and again (for `status`).
    public func recordRejected(_ name: String, why: String) {
        uploadState.lastRejected = "\(name): \(why)"
    }

    public func setUploadNextAttempt(_ date: Date?) { uploadState.nextAttempt = date }
}
