import Foundation
import IOLoop
import Bundle
import CEpoll
import Junos
import Logging
import NETCONF
import NETCONFSSH
import SSH

/// Progress of a collection, for progress bars and the control socket.
public enum CollectionEvent: Sendable {
    case started(Device)
    case finished(DeviceResult, storedAt: String?)
}

/// Opens a NETCONF session to an endpoint (NETCONF over SSH in the agent).
public typealias DeviceConnector = @Sendable (DeviceEndpoint, Logger) async throws -> NETCONFClient

/// Collects devices: one NETCONF session per device for its whole RPC set, under a global and a
/// per-group concurrency cap, each device bounded by its own timeout so that a hung, slow or
/// refusing device delays nobody else. Every reply is redacted before it is stored or parsed
/// into facts; each device's result goes to the sink.
public final class Collector: Sendable {
    public let configuration: AgentConfiguration
    public let sink: any CollectionSink
    public let inFlight: DevicesInFlight
    let logger: Logger
    let connector: DeviceConnector
    let redactor: ConfigurationRedactor
    let limits: CollectionLimits
    let environment: [String: String]
    let heapReturn = HeapReturn()
    let credentials = CredentialCache()

    /// `limits` are the running agent's (shared across reloads); by default this collector's own,
    /// from `configuration`.
    public init(configuration: AgentConfiguration, sink: any CollectionSink, logger: Logger,
                inFlight: DevicesInFlight = DevicesInFlight(), limits: CollectionLimits? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                connector: @escaping DeviceConnector = { try await NETCONFClient.connect(to: $0, logger: $1) }) throws {
        self.configuration = configuration
        self.sink = sink
        self.logger = logger
        self.inFlight = inFlight
        self.connector = connector
        self.environment = environment
        redactor = try ConfigurationRedactor(extraKeywords: Set(configuration.agent.redactKeywords),
                                             extraPatterns: configuration.agent.redactPatterns,
                                             extraPaths: configuration.agent.redactPaths)
        self.limits = limits ?? CollectionLimits(configuration: configuration)
    }

    /// Collects `devices` concurrently (within the limits) and returns one result per device, in
    /// the order given. Results are stored through the sink as each device finishes. `event` is
    /// the incident behind an `.event` collection, recorded in each result (and bundle).
    public func collect(_ devices: [Device], trigger: CollectionCause, event: TriggerEvent? = nil,
                        onEvent: @escaping @Sendable (CollectionEvent) -> Void = { _ in }) async -> [DeviceResult] {
        let results = CollectedResults(count: devices.count)
        await collectEach(devices, trigger: trigger, event: event, onEvent: onEvent) { results.set($0, $1) }
        return results.all
    }

    /// Like ``collect(_:trigger:event:onEvent:)``, but hands each device's result to `consume`
    /// as soon as it is finished (from the task that collected it, so `consume` must be safe to
    /// call concurrently) and keeps none: memory stays flat in the number of devices instead of
    /// holding every device's facts until the last one is done.
    ///
    /// Every device is claimed at once (so that status shows it queued, and a second run skips
    /// it); then each group's devices take their turns in order, in one waiting task per group.
    /// A task exists per device only while it holds its slots: a task per waiting device cost
    /// ~40 KiB each (its frames stay allocated while it waits; heaptrack, docs/performance.md).
    /// `order`: the devices that took longest last time start first (``CollectionOrder``); the
    /// indices `consume` gets are still those of `devices`.
    public func collectEach(_ devices: [Device], trigger: CollectionCause, event: TriggerEvent? = nil,
                            order: CollectionOrder = CollectionOrder(),
                            onEvent: @escaping @Sendable (CollectionEvent) -> Void = { _ in },
                            consume: @escaping @Sendable (Int, DeviceResult) -> Void) async {
        var queues: [String: [Turn]] = [:]
        var groupOrder: [String] = []
        for index in order.startOrder(devices) {
            let device = devices[index]
            var group = configuration.group(of: device)
            // An incident's own evidence (`[event KIND]`), after the group's set.
            if let event { group.extraRequests += configuration.eventRequests[event.kind] ?? [] }
            // An incident's evidence cannot wait for a device's turn in a long scheduled run: it
            // takes the device over (that run then skips it); a device being collected is waited
            // for by the caller (IncidentResponder).
            let claim: DevicesInFlight.Claim
            switch await inFlight.claim(device.name, overtakingQueued: trigger == .event) {
            case let .claimed(granted):
                claim = granted
            case let .busy(state):
                // Collecting: a second session would only load the device. Queued: the earlier
                // run will collect it, which is what was asked.
                let result = state == .collecting ? skipped(device, group: group, trigger: trigger) : queued(device, group: group, trigger: trigger)
                onEvent(.finished(result, storedAt: nil))
                consume(index, result)
                continue
            }
            if queues[group.name] == nil { groupOrder.append(group.name) }
            queues[group.name, default: []].append(Turn(index: index, device: device, group: group, claim: claim))
        }
        // Discarding: a plain task group keeps every finished child (and its task memory) until
        // the group ends.
        await withDiscardingTaskGroup { groups in
            for name in groupOrder {
                let turns = queues[name] ?? []
                groups.addTask {
                    await self.collectInTurn(turns, trigger: trigger, event: event, onEvent: onEvent, consume: consume)
                }
            }
        }
    }

    /// A claimed device waiting for its turn.
    private struct Turn: Sendable {
        let index: Int
        let device: Device
        let group: GroupSettings
        let claim: DevicesInFlight.Claim
    }

    /// One group's devices, in order: each waits for the group's slot, then a global one (so
    /// that a device waiting for its group holds no global slot), and is then collected in its
    /// own task. Cancelled while waiting: the devices not yet started are released and reported
    /// as not collected.
    private func collectInTurn(_ turns: [Turn], trigger: CollectionCause, event: TriggerEvent?,
                               onEvent: @escaping @Sendable (CollectionEvent) -> Void,
                               consume: @escaping @Sendable (Int, DeviceResult) -> Void) async {
        guard let first = turns.first else { return }
        let groupLimit = limits.group(first.group.name)
        let globalLimit = limits.global
        await withDiscardingTaskGroup { running in
            for (position, turn) in turns.enumerated() {
                guard await Self.acquire(groupLimit, globalLimit) else {
                    for rest in turns[position...] {
                        await inFlight.release(rest.device.name, claim: rest.claim)
                        let result = cancelled(rest.device, group: rest.group, trigger: trigger)
                        onEvent(.finished(result, storedAt: nil))
                        consume(rest.index, result)
                    }
                    return
                }
                guard await inFlight.start(turn.device.name, claim: turn.claim) else {
                    // An incident's collection took the device over while it waited: its event
                    // bundle is the fresher evidence, and one session at a time.
                    await globalLimit.release()
                    await groupLimit?.release()
                    let result = overtaken(turn.device, group: turn.group, trigger: trigger)
                    onEvent(.finished(result, storedAt: nil))
                    consume(turn.index, result)
                    continue
                }
                // The device's task runs on an I/O loop, which its session then uses
                // (IOLoopGroup.forSession()): each reply is handled, and the next request sent, on
                // the thread that read it, without a thread switch per RPC; sealing the bundle
                // there too frees its memory on the thread that allocated it (sealing on the pool
                // cost ~8% more CPU: cross-arena frees). What blocks goes elsewhere: the bundle's
                // fsyncs to the store thread, the caller's result file (an fsync) and malloc_trim
                // to the pool.
                running.addTask(executorPreference: IOLoopGroup.shared.next()) {
                    let result = await self.collectAdmitted(turn.device, group: turn.group, claim: turn.claim, trigger: trigger, event: event, onEvent: onEvent) {
                        await globalLimit.release()
                        await groupLimit?.release()
                    }
                    await withTaskExecutorPreference(globalConcurrentExecutor) {
                        consume(turn.index, result)
                        self.heapReturn.deviceFinished()
                    }
                }
            }
        }
    }

    /// Takes the group's slot, then a global one; false, holding neither, when cancelled.
    private static func acquire(_ groupLimit: ConcurrencyLimit?, _ globalLimit: ConcurrencyLimit) async -> Bool {
        do {
            try Task.checkCancellation()
            try await groupLimit?.acquire()
        } catch {
            return false
        }
        do {
            try await globalLimit.acquire()
        } catch {
            await groupLimit?.release()
            return false
        }
        return true
    }

    /// Collects a device holding its slots, gives them back (`release`), stores the collection.
    private func collectAdmitted(_ device: Device, group: GroupSettings, claim: DevicesInFlight.Claim, trigger: CollectionCause, event: TriggerEvent?,
                                 onEvent: @escaping @Sendable (CollectionEvent) -> Void,
                                 release: () async -> Void) async -> DeviceResult {
        onEvent(.started(device))
        let collection = await collectOne(device, group: group, trigger: trigger, event: event)
        await release()
        // Released before returning (not in a deferred task), so that a collection asked for right
        // after this one finds the device free.
        await inFlight.release(device.name, claim: claim)
        return await store(collection, device: device, onEvent: onEvent)
    }

    /// Stores a finished collection and reports it. Never inlined into ``collectAdmitted``: what
    /// storing holds across its waits (the sealed bundle, the result) then takes task memory only
    /// while storing, not for the whole collection (the caller's async frame was 5 KiB).
    @inline(never)
    private func store(_ collection: consuming DeviceCollection, device: Device,
                       onEvent: @escaping @Sendable (CollectionEvent) -> Void) async -> DeviceResult {
        var result = collection.result
        var storedAt: String?
        // An incident's collection that never ran (the agent stopping cancelled it) is no
        // diagnostic bundle: stored, it went up first with nothing in it.
        if result.status == .skipped, result.trigger == .event {
            onEvent(.finished(result, storedAt: nil))
            return result
        }
        do {
            storedAt = try await sink.store(consume collection)
            result.stored = storedAt
            // Info: the operator tells support which bundle to look at from this line.
            logger.info("collection stored", metadata: ["device": "\(device.name)", "bundle": "\((storedAt.map { ($0 as NSString).lastPathComponent }) ?? "")",
                                                      "status": "\(result.status.rawValue)"])
        } catch {
            // A collection that is not in the outbox is lost: the result says so, so that
            // status, metrics and the exit code of `collect now` show it.
            logger.error("cannot store the collection", metadata: ["device": "\(device.name)", "error": "\(error)", "failure": "\(FailureKind.notStored.rawValue)"])
            result.markNotStored(error)
        }
        onEvent(.finished(result, storedAt: storedAt))
        return result
    }

    /// One health poll of `device`: a short session for `facts` only, within the same concurrency
    /// limits as collections. It takes only a free slot, never queues: a collection waits for a
    /// poll at most the poll's own duration, and is never skipped for it. Nil when the device is
    /// being collected or queued (that collection is the fresher evidence) or no slot is free
    /// (the next interval polls again). Nothing is stored.
    public func poll(_ device: Device, facts: [FactKind]) async -> DeviceResult? {
        guard await !inFlight.current.contains(device.name) else { return nil }
        var group = configuration.group(of: device)
        group.skippedFacts = Set(FactKind.allCases).subtracting(facts)
        group.extraRequests = []
        // A poll that cannot get through soon is worthless: the next one comes anyway.
        group.retries = 0
        let groupLimit = limits.group(group.name)
        if let groupLimit, await !groupLimit.tryAcquire() { return nil }
        guard await limits.global.tryAcquire() else {
            await groupLimit?.release()
            return nil
        }
        let collection = await collectOne(device, group: group, trigger: .poll)
        await limits.global.release()
        await groupLimit?.release()
        return collection.result
    }

    /// Collects one device now, ignoring the concurrency limits (the caller holds them).
    /// `event`: the incident that triggered it, recorded in the result.
    public func collectOne(_ device: Device, group: GroupSettings, trigger: CollectionCause,
                           event: TriggerEvent? = nil) async -> DeviceCollection {
        var run = DeviceRun(device: device, group: group, trigger: trigger, logger: logger)
        await run.perform(connector: connector, redactor: redactor, credentialCache: credentials, environment: environment,
                          handshakes: limits.handshakes)
        var collection = run.finish()
        collection.result.event = event
        return collection
    }

    private func skipped(_ device: Device, group: GroupSettings, trigger: CollectionCause) -> DeviceResult {
        var run = DeviceRun(device: device, group: group, trigger: trigger, logger: logger)
        run.fail(.busy, "already being collected (an earlier collection of this device is still running)", status: .skipped)
        return run.finish().result
    }

    private func queued(_ device: Device, group: GroupSettings, trigger: CollectionCause) -> DeviceResult {
        var run = DeviceRun(device: device, group: group, trigger: trigger, logger: logger)
        run.fail(.busy, "queued: an earlier collection has this device waiting for its turn and will collect it", status: .queued)
        return run.finish().result
    }

    /// A device an incident's collection took over while it waited for its turn here.
    private func overtaken(_ device: Device, group: GroupSettings, trigger: CollectionCause) -> DeviceResult {
        var run = DeviceRun(device: device, group: group, trigger: trigger, logger: logger)
        run.fail(.busy, "collected meanwhile for an incident (its event bundle) while it waited for its turn here", status: .skipped)
        return run.finish().result
    }

    /// A device whose turn never came: skipped, not failed, so that it is not recorded over the
    /// device's last real result (SIGTERM would otherwise mark every queued device failed).
    private func cancelled(_ device: Device, group: GroupSettings, trigger: CollectionCause) -> DeviceResult {
        var run = DeviceRun(device: device, group: group, trigger: trigger, logger: logger)
        run.fail(.cancelled, "not collected: the collection was cancelled before its turn (the agent is stopping)", status: .skipped)
        return run.finish().result
    }
}

/// One device's collection in progress: its session, outcomes, facts, replies and log.
struct DeviceRun {
    let device: Device
    let group: GroupSettings
    let trigger: CollectionCause
    var logger: Logger
    let started = Date()
    let clockStart = ContinuousClock.now
    let deadline: ContinuousClock.Instant
    var outcomes: [RPCResult] = []
    var replies: [CollectedReply] = []
    var facts = DeviceFacts()
    var transcript: [String] = []
    var attempts = 0
    var status: DeviceStatus?
    var failureKind: FailureKind?
    var reason: String?

    init(device: Device, group: GroupSettings, trigger: CollectionCause, logger: Logger) {
        self.device = device
        self.group = group
        self.trigger = trigger
        var logger = logger
        logger[metadataKey: "device"] = "\(device.name)"
        logger[metadataKey: "group"] = "\(group.name)"
        self.logger = logger
        deadline = clockStart + group.deviceTimeout
    }

    var port: Int { device.port ?? group.port }
    var remaining: Duration { deadline - ContinuousClock.now }

    /// Logs to the agent's logger and to the device's own collection log.
    mutating func log(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata = [:]) {
        logger.log(level: level, "\(message)", metadata: metadata)
        let elapsed = (ContinuousClock.now - clockStart).milliseconds
        let extra = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        transcript.append("+\(elapsed)ms \(level) \(message)\(extra.isEmpty ? "" : " " + extra)")
    }

    mutating func fail(_ kind: FailureKind, _ message: String, status: DeviceStatus = .failed) {
        failureKind = kind
        reason = message
        self.status = status
        log(status.attempted ? .warning : .notice, message, ["failure": "\(kind.rawValue)"])
    }

    mutating func perform(connector: @escaping DeviceConnector, redactor: ConfigurationRedactor, credentialCache: CredentialCache,
                          environment: [String: String], handshakes: (any HandshakeAdmission)?) async {
        log(.info, "collecting", ["host": "\(device.host)", "port": "\(port)", "trigger": "\(trigger.rawValue)"])
        let credentials: SSHCredentials
        do {
            credentials = try credentialCache.credentials(group: group.name, source: group.credentials, environment: environment)
        } catch {
            fail(.credentials, error.description)
            return
        }
        guard let client = await connect(credentials: credentials, connector: connector, handshakes: handshakes) else { return }
        var model: String?
        var lostSession: String?
        for step in CollectionPlan.steps(for: group) {
            let name = step.request.name
            if let lostSession {
                outcomes.append(RPCResult(name: name, status: .notRun, message: lostSession))
                continue
            }
            if let kind = step.fact, step.mayBeAbsent, CollectionPlan.applies(kind, toModel: model) == false {
                outcomes.append(RPCResult(name: name, status: .notApplicable, message: "not asked: model \(model ?? "") has no \(kind == .cluster ? "chassis cluster" : "virtual chassis")"))
                continue
            }
            let budget = min(group.rpcTimeout, remaining)
            guard budget > .milliseconds(50) else {
                lostSession = "not sent: the device timeout of \(Self.format(group.deviceTimeout)) was reached"
                outcomes.append(RPCResult(name: name, status: .notRun, message: lostSession))
                continue
            }
            let sent = ContinuousClock.now
            do {
                let reply = try await client.rpc(step.request, timeout: budget)
                // Handed over (consumed), so that the client's tree can go before redaction builds its own.
                record(consume reply, of: step, sent: sent, model: &model, redactor: redactor)
            } catch {
                let ms = (ContinuousClock.now - sent).milliseconds
                let status: RPCStatus = isTimeout(error) ? .timeout : .transportError
                // Cancelled: the agent is stopping (SIGTERM) and gives up on this device.
                let message = Task.isCancelled ? "cancelled: the agent is stopping (\(error))" : "\(error)"
                outcomes.append(RPCResult(name: name, status: status, message: message, durationMilliseconds: ms))
                log(.warning, "rpc \(status.rawValue)", ["rpc": "\(name)", "duration-ms": "\(ms)", "message": "\(error)"])
                // The client tears the session down after a timeout or transport error.
                lostSession = "not sent: the session was lost at \(name)"
            }
        }
        await client.close(timeout: max(.milliseconds(100), min(.seconds(5), remaining)))
        summarise()
    }

    /// What one reply gives: its outcome, its facts, its redacted bytes. Synchronous and never
    /// inlined into ``perform``: its many temporaries then live on the thread's stack, not in the
    /// collection's async frame, which is allocated for as long as the device is collected.
    @inline(never)
    mutating func record(_ received: consuming RPCReply, of step: CollectionStep, sent: ContinuousClock.Instant,
                         model: inout String?, redactor: ConfigurationRedactor) {
        let name = step.request.name
        // Optional so that the client's tree can be released before redaction builds its own.
        var reply: RPCReply? = received
        // A large reply's share of the process's reply memory covers the redactor's tree too.
        let memory = reply?.memory
        defer { withExtendedLifetime(memory) {} }
        let ms = (ContinuousClock.now - sent).milliseconds
        var outcome = RPCResult(name: name, status: .ok, durationMilliseconds: ms)
        // Errors and warnings quote what the device chose to say, configuration included.
        if !reply!.errors.isEmpty {
            let text = redactor.redact(message: reply!.errors.map(\.description).joined(separator: "; "))
            outcome.status = step.mayBeAbsent ? .notApplicable : .rpcError
            outcome.message = step.mayBeAbsent ? "not applicable: the device answered \(text)" : text
        } else if !reply!.warnings.isEmpty {
            outcome.message = "warnings: " + redactor.redact(message: reply!.warnings.map(\.description).joined(separator: "; "))
        }
        // Facts come from the client's tree; only redacted values are kept from it. An error
        // beside data ("could not connect to re0" and re1's answer) still gives the data's facts.
        let errorBesideData = outcome.status == .rpcError && !reply!.data.isEmpty
        if outcome.status == .ok || errorBesideData, let kind = step.fact {
            do {
                try facts.absorb(JunosReply(document: reply!.document), as: kind)
                if kind == .software { model = facts.software?.model }
                if kind == .configuration, let configuration = facts.configuration {
                    facts.configuration = redactor.redact(configuration)
                }
                if errorBesideData { outcome.message = (outcome.message ?? "") + "; facts read from the data beside the error" }
            } catch where error.isLimitRefusal {
                // Past a limit no real device comes near: refused, and not kept for
                // anyone downstream to trip over.
                outcome.status = .refused
                outcome.message = redactor.redact(message: "\(error)")
                if let recorded = facts.parseErrors[kind.rpc] { facts.parseErrors[kind.rpc] = redactor.redact(message: recorded) }
                log(.warning, "reply refused", ["rpc": "\(name)", "error": "\(outcome.message ?? "")"])
            } catch {
                // A parse error quotes the reply (`text instead of XML data: set snmp community ...`).
                let problem = redactor.redact(message: "\(error)")
                if let recorded = facts.parseErrors[kind.rpc] { facts.parseErrors[kind.rpc] = redactor.redact(message: recorded) }
                outcome.message = [outcome.message, "no facts: \(problem)"].compactMap { $0 }.joined(separator: "; ")
                log(.notice, "reply gave no facts", ["rpc": "\(name)", "error": "\(problem)"])
            }
        }
        if outcome.status == .refused {
            outcomes.append(outcome)
            return
        }
        let raw = reply!.raw
        reply = nil
        // Redact before anything is stored; a reply that cannot be redacted is not stored.
        do {
            let redacted = try redactor.redact(xml: raw)
            let file = String(format: "%02d-", replies.count + 1) + Self.fileName(for: name)
            replies.append(CollectedReply(rpc: name, file: file, bytes: redacted))
            outcome.bytes = redacted.count
            outcome.file = file
        } catch {
            outcome.message = [outcome.message, "reply not stored: cannot redact it: \(error)"].compactMap { $0 }.joined(separator: "; ")
        }
        outcomes.append(outcome)
        log(outcome.status == .ok || outcome.status == .notApplicable ? .info : .warning, "rpc \(outcome.status.rawValue)", [
            "rpc": "\(name)", "duration-ms": "\(ms)", "bytes": "\(outcome.bytes)",
        ].merging(outcome.status == .ok ? [:] : ["message": "\(outcome.message ?? "")"]) { a, _ in a })
    }

    /// Connects, retrying transport failures with doubling backoff within the device's time.
    mutating func connect(credentials: SSHCredentials, connector: @escaping DeviceConnector,
                          handshakes: (any HandshakeAdmission)?) async -> NETCONFClient? {
        var backoff = group.retryBackoff
        while true {
            attempts += 1
            let budget = min(group.connectTimeout, remaining)
            let verifier = HostKeyVerifier(knownHostsPath: group.knownHosts, policy: group.hostKeyPolicy)
            var jumpRoute: JumpRoute?
            let hops = device.proxyJump ?? group.proxyJump
            if !hops.isEmpty {
                // The jump hosts' own login: a key (theirs or the group's), never the device password.
                let jumpCredentials = SSHCredentials(user: credentials.user, privateKeyPath: group.proxyJumpKeyFile ?? credentials.privateKeyPath,
                                                     passphrase: group.proxyJumpKeyFile == nil ? credentials.passphrase : nil)
                jumpRoute = JumpRoute(hops: hops, credentials: jumpCredentials, hostKeyVerifier: verifier,
                                      maximumTunnels: group.proxyJumpTunnels)
            }
            let endpoint = DeviceEndpoint(
                host: device.host, port: port, credentials: credentials, hostKeyVerifier: verifier,
                sshTimeouts: SSHTimeouts(connect: budget, authentication: min(group.connectTimeout * 2, remaining)),
                netconfTimeouts: NETCONFTimeouts(hello: min(group.connectTimeout, remaining), rpc: min(group.rpcTimeout, remaining)),
                maximumMessageSize: group.maximumReplySize,
                jumpRoute: jumpRoute, handshakeAdmission: handshakes)
            let t = ContinuousClock.now
            do {
                // In a child task of its own: the session set-up (SSH handshake, authentication,
                // NETCONF hello) has the deepest async frames of a collection, and a task keeps its
                // allocator's slabs until it ends; the child's go when the session is up.
                // Each stage has its own timeout (TCP, SSH, the subsystem, the hello); together
                // they may not outlast the device's time: past it the set-up is cancelled.
                let setUpEnds = deadline
                let peer = "\(device.host):\(port)"
                let deviceTimeout = group.deviceTimeout
                let client = try await withThrowingTaskGroup(of: NETCONFClient?.self) { group in
                    group.addTask { [logger] in try await connector(endpoint, logger) }
                    group.addTask {
                        try await Task.sleep(until: setUpEnds)
                        return nil
                    }
                    let first = try await group.next()!
                    group.cancelAll()
                    if let client = first { return client }
                    // The set-up may have finished as the time ran out: not left open.
                    if let late = try? await group.next(), let client = late { await client.close() }
                    throw SSHError.timeout(peer: peer, operation: "session set-up within the device timeout",
                                           seconds: Double(deviceTimeout.components.seconds))
                }
                log(.info, "session established", ["attempt": "\(attempts)", "duration-ms": "\((ContinuousClock.now - t).milliseconds)"])
                return client
            } catch {
                if Task.isCancelled {
                    // As for a device still waiting for its slot: nothing was asked of the device,
                    // and its last result stands.
                    fail(.cancelled, "not collected: the collection was cancelled before its session was set up (the agent is stopping)",
                         status: .skipped)
                    return nil
                }
                let (kind, retryable) = Self.classify(error)
                let canRetry = retryable && attempts <= group.retries && remaining > backoff + .milliseconds(100)
                if !canRetry {
                    fail(kind, "\(error)" + (attempts > 1 ? " (after \(attempts) attempts)" : ""))
                    return nil
                }
                log(.notice, "connection failed, retrying", ["attempt": "\(attempts)", "retry-in": "\(Self.format(backoff))", "error": "\(error)"])
                do {
                    try await Task.sleep(for: backoff)
                } catch {
                    fail(kind, "\(error): cancelled while waiting to retry")
                    return nil
                }
                backoff = backoff * 2
            }
        }
    }

    /// The failure class of a connection error, and whether another attempt may help: only for
    /// transport trouble, never for authentication or host keys (retrying cannot fix them and
    /// may lock the account).
    static func classify(_ error: any Error) -> (FailureKind, retryable: Bool) {
        // A jump host's failure is classed by its cause (unreachable, host key, authentication);
        // a tunnel it would not open means the device is unreachable from there.
        if let jump = error as? JumpHostError {
            if case SSHError.channel = jump.underlying { return (.unreachable, true) }
            return classify(jump.underlying)
        }
        if let ssh = error as? SSHError {
            switch ssh {
            case .connect, .connectionRefused, .connectTimeout: return (.unreachable, true)
            case .timeout: return (.timeout, true)
            case .handshake, .tunnelsRetired: return (.session, true)
            case .resolve: return (.unreachable, false)
            case .hostKeyUnknown, .hostKeyChanged, .hostKeyRevoked, .knownHostsUnreadable, .knownHostsUnwritable: return (.hostKey, false)
            case .authenticationFailed, .privateKey: return (.authentication, false)
            case .channel, .closed, .libssh2: return (.session, false)
            }
        }
        if let netconf = error as? NETCONFError {
            if case .timeout = netconf { return (.timeout, true) }
            return (.session, false)
        }
        return (.session, false)
    }

    mutating func summarise() {
        guard status == nil else { return }
        let failures = outcomes.filter { $0.status.isFailure }
        let successes = outcomes.filter { $0.status == .ok }
        if failures.isEmpty {
            status = .ok
            log(.info, "collected", ["rpcs": "\(outcomes.count)"])
            return
        }
        let first = failures.first { $0.status != .notRun } ?? failures[0]
        let kind: FailureKind = first.status == .timeout ? .timeout : first.status == .rpcError ? .rpcErrors : .session
        // What failed and what was never sent after it, apart: "1 of 12 RPCs failed and 11 were
        // not sent" says a hung session, "12 of 12 failed" would not.
        let notSent = failures.filter { $0.status == .notRun }.count
        let failed = failures.count - notSent
        let summary = failed == 0
            ? "\(notSent) of \(outcomes.count) RPCs not sent; first: \(first.name): \(first.message ?? first.status.rawValue)"
            : "\(failed) of \(outcomes.count) RPCs failed\(notSent > 0 ? " and \(notSent) were not sent" : ""); first: \(first.name): \(first.message ?? first.status.rawValue)"
        fail(kind, successes.isEmpty ? "nothing collected: " + summary : summary, status: successes.isEmpty ? .failed : .partial)
    }

    mutating func finish() -> DeviceCollection {
        if status == nil { summarise() }
        var result = DeviceResult(
            device: device, host: device.host, port: port, trigger: trigger, started: started, finished: Date(),
            status: status ?? .failed, failureKind: failureKind, reason: reason, attempts: attempts, rpcs: outcomes,
            facts: facts, log: transcript.joined(separator: "\n") + "\n")
        // Once, for the bundle and the results file (JSONEncoder was a tenth of the CPU per device).
        result.factsJSON = try? BundleWriter.factsJSON(facts)
        return DeviceCollection(result: result, replies: replies)
    }

    static func fileName(for rpc: String) -> String {
        let cleaned = rpc.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" ? Character($0) : "_" }
        return String(String(cleaned).prefix(80)) + ".xml"
    }

    static func format(_ d: Duration) -> String {
        let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s)
    }
}

func isTimeout(_ error: any Error) -> Bool {
    if let e = error as? NETCONFError, case .timeout = e { return true }
    if let e = error as? SSHError { return e.isTimeout }
    return false
}

extension Duration {
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}

/// Results of a collection by position, filled concurrently as devices finish.
final class CollectedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [DeviceResult?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: DeviceResult) { lock.withLock { results[index] = result } }

    var all: [DeviceResult] { lock.withLock { results.compactMap { $0 } } }
}

/// Hands freed heap memory back to the kernel every few finished devices. Each collection
/// allocates and frees its replies, trees and bundle on whichever thread it ran; glibc keeps
/// the freed pages in per-thread arenas, and over a large fleet the process grew by
/// fragmentation (the live heap stayed flat: heaptrack, docs/performance.md).
final class HeapReturn: @unchecked Sendable {
    private let lock = NSLock()
    private var finished = 0
    static let interval = 64

    func deviceFinished() {
        let due = lock.withLock {
            finished += 1
            return finished % Self.interval == 0
        }
        if due { malloc_trim(0) }
    }
}
