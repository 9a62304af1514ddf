import Foundation
import Logging
import ServiceLifecycle

/// The passage of time as the scheduler sees it; tests pass a clock that jumps.
public protocol SchedulerClock: Sendable {
    func now() -> Date
    /// Returns at `date` (or earlier if `date` is past); throws when the task is cancelled.
    func sleep(until date: Date) async throws
    /// Seconds on a clock that never steps (the monotonic clock), to tell a wall-clock step from
    /// time passing.
    func monotonicSeconds() -> Double
}

extension SchedulerClock {
    public func monotonicSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// Wall-clock time.
public struct SystemSchedulerClock: SchedulerClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(until date: Date) async throws {
        let seconds = date.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) }
    }
}

/// Runs each group's collections on its schedule, with jitter; groups run independently, so a
/// slow group never holds up another's schedule. A device still running from the previous
/// run is skipped, not collected twice.
public struct Scheduler: Service {
    let runtime: AgentRuntime
    let clock: any SchedulerClock
    let calendar: Calendar
    let logger: Logger
    /// How long to sleep at most before looking at the configuration again (reloads).
    let recheck: TimeInterval
    let random: @Sendable () -> Double

    public init(runtime: AgentRuntime, clock: any SchedulerClock = SystemSchedulerClock(), calendar: Calendar = .current,
                logger: Logger, recheck: TimeInterval = 60, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.runtime = runtime
        self.clock = clock
        self.calendar = calendar
        self.logger = logger
        self.recheck = recheck
        self.random = random
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await self.loop()
            }
        } catch is CancellationError {
            // Graceful shutdown: no new runs start; running ones end within their device timeouts.
        }
    }

    /// The next run of each group with devices. A group's time, once drawn, is kept until it
    /// runs (or the configuration changes), so that recomputing never moves it.
    func plan(_ configuration: AgentConfiguration, lastRun: [String: Date], now: Date, planned: inout [String: Date]) -> [(group: String, at: Date)] {
        let groupsWithDevices = Set(configuration.devices.map(\.group))
        var plan: [(String, Date)] = []
        for name in groupsWithDevices.sorted() {
            guard let group = configuration.groups[name] else { continue }
            if let at = planned[name] {
                plan.append((name, at))
            } else if let at = group.schedule.nextRun(after: now, lastRun: lastRun[name], jitter: group.jitter, unit: random(), calendar: calendar) {
                planned[name] = at
                plan.append((name, at))
            }
        }
        return plan
    }

    func loop() async throws {
        var planned: [String: Date] = [:]
        var previous: (wall: Date, monotonic: Double)?
        var generation = -1
        let running = RunningGroups()
        // The latest run of each group (earlier ones have finished: a group never runs twice at once).
        var tasks: [String: Task<Void, Never>] = [:]
        defer { tasks.values.forEach { $0.cancel() } }
        // Runs the previous process started and did not finish: their remaining devices now (the
        // ones done are not collected again; the next run is planned from when it started).
        let startConfiguration = await runtime.configuration
        let results = ResultStore(stateDirectory: startConfiguration.agent.stateDirectory)
        for (group, started) in await runtime.takeInterruptedRuns().sorted(by: { $0.key < $1.key }) {
            let devices = ScheduledRuns.remaining(startConfiguration.devices.filter { $0.group == group }, startedAt: started, results: results)
            guard !devices.isEmpty else {
                await runtime.markRunFinished(group: group, started: started)
                continue
            }
            guard await running.start(group) else { continue }
            logger.notice("resuming the scheduled collection a restart interrupted", metadata: [
                "group": "\(group)", "started": "\(ISO8601DateFormatter().string(from: started))", "devices": "\(devices.count)",
            ])
            let runtime = self.runtime
            tasks[group] = Task {
                _ = await runtime.collect(devices, trigger: .schedule)
                if !Task.isCancelled { await runtime.markRunFinished(group: group, started: started) }
                await running.finish(group)
            }
        }
        while !Task.isCancelled {
            let configuration = await runtime.configuration
            if await runtime.generation != generation {
                generation = await runtime.generation
                planned = [:]
            }
            let now = clock.now()
            // The wall clock stepped back (NTP correction, a VM restored from a snapshot): times
            // drawn on the old clock, and last runs now "in the future", would hold schedules back
            // by the size of the step. Plan again, with no last run later than now.
            // Against where the wall clock should be by the monotonic clock, so that a step smaller
            // than the time slept is seen too.
            let monotonic = clock.monotonicSeconds()
            if let previous {
                let expected = previous.wall.addingTimeInterval(monotonic - previous.monotonic)
                if now < expected.addingTimeInterval(-1) {
                    logger.warning("wall clock went back; schedules planned again",
                                   metadata: ["step-seconds": "\(Int(expected.timeIntervalSince(now)))"])
                    planned = [:]
                }
            }
            previous = (now, monotonic)
            let lastRun = (await runtime.lastRun).mapValues { min($0, now) }
            let plan = plan(configuration, lastRun: lastRun, now: now, planned: &planned)
            await runtime.setNextRuns(planned)
            var started = false
            for (group, at) in plan where at <= now {
                // A group whose previous run is still going waits for it: no run is stacked up.
                guard await running.start(group) else { continue }
                planned[group] = nil
                started = true
                await runtime.markRun(group: group, at: now)
                let devices = configuration.devices.filter { $0.group == group }
                logger.info("scheduled collection", metadata: ["group": "\(group)", "devices": "\(devices.count)"])
                let runtime = self.runtime
                tasks[group] = Task {
                    _ = await runtime.collect(devices, trigger: .schedule)
                    // Cancelled (the agent stopping): not finished, resumed at the next start.
                    if !Task.isCancelled { await runtime.markRunFinished(group: group, started: now) }
                    await running.finish(group)
                }
            }
            if started {
                // What status shows as a group's next run is never the run that just started.
                let since = (await runtime.lastRun).mapValues { min($0, now) }
                _ = self.plan(configuration, lastRun: since, now: now, planned: &planned)
                await runtime.setNextRuns(planned)
            }
            let nextDue = plan.filter { $0.at > now }.map(\.at).min() ?? now.addingTimeInterval(recheck)
            try await clock.sleep(until: min(nextDue, now.addingTimeInterval(recheck)))
        }
    }
}

/// The groups whose scheduled run is in progress.
actor RunningGroups {
    private var names: Set<String> = []
    func start(_ group: String) -> Bool { names.insert(group).inserted }
    func finish(_ group: String) { names.remove(group) }
}
