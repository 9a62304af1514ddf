import Foundation
import NETCONFSSH

/// An async counting semaphore: at most `limit` holders at once; waiters are served in order and
/// leave the queue when their task is cancelled. Tasks wait suspended, so a thousand queued
/// devices cost a thousand small continuations, not threads. The limit can change while it is
/// in use (a reload), so that every run shares one cap.
public actor ConcurrencyLimit {
    public private(set) var limit: Int
    private var holders = 0
    private var waiters: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextID = 0

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Waits for a slot; throws CancellationError if the task is cancelled while waiting.
    public func acquire() async throws {
        if holders < limit, waiters.isEmpty {
            holders += 1
            return
        }
        let id = nextID
        nextID += 1
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiters.append((id, continuation))
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    /// Takes a slot only if one is free and nobody waits: for work that must never queue ahead
    /// of the waiters (a health poll yields to collections).
    public func tryAcquire() -> Bool {
        guard holders < limit, waiters.isEmpty else { return false }
        holders += 1
        return true
    }

    public func release() {
        if waiters.isEmpty || holders > limit {
            // Above a lowered limit, a freed slot is not passed on.
            holders -= 1
        } else {
            // The slot passes straight to the first waiter.
            waiters.removeFirst().continuation.resume()
        }
    }

    /// Changes the limit in place. Raised: waiters take the new slots at once, in order. Lowered:
    /// nobody is interrupted; freed slots are not passed on until the holders are under the limit.
    public func resize(to newLimit: Int) {
        limit = max(1, newLimit)
        while holders < limit, !waiters.isEmpty {
            holders += 1
            waiters.removeFirst().continuation.resume()
        }
    }

    /// Tasks waiting for a slot.
    public var waiting: Int { waiters.count }

    public var inUse: Int { holders }

    private func cancelWaiter(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }
}

/// Turns for SSH session set-ups, taken in order.
extension ConcurrencyLimit: HandshakeAdmission {
    public func admit() async throws { try await acquire() }
    public func leave() { release() }
}

/// The agent's concurrency limits, `[agent] concurrency`, `[agent] handshakes` and each group's
/// `concurrency`, shared by every ``Collector`` the agent makes. A reload resizes them in place
/// instead of making new ones, so that a run started before the reload and one started after it
/// still share one cap.
public final class CollectionLimits: @unchecked Sendable {
    public let global: ConcurrencyLimit
    /// SSH session set-ups in progress (a device holds a turn from its SSH key exchange to its
    /// `netconf` subsystem, inside its collection slot).
    public let handshakes: ConcurrencyLimit
    private let lock = NSLock()
    private var groups: [String: ConcurrencyLimit]

    public init(configuration: AgentConfiguration) {
        global = ConcurrencyLimit(limit: configuration.agent.concurrency)
        handshakes = ConcurrencyLimit(limit: configuration.agent.handshakeLimit)
        groups = configuration.groups.mapValues { ConcurrencyLimit(limit: $0.concurrency) }
    }

    /// The limit of group `name` (nil for a group the configuration never had).
    public func group(_ name: String) -> ConcurrencyLimit? {
        lock.withLock { groups[name] }
    }

    /// Gives the new groups of `configuration` their limits, synchronously: a caller on an actor
    /// does this before publishing the configuration, so that no run of a new group, started in
    /// the moment ``apply(_:)`` suspends, finds none.
    public func register(_ configuration: AgentConfiguration) {
        lock.withLock {
            for (name, settings) in configuration.groups where groups[name] == nil {
                groups[name] = ConcurrencyLimit(limit: settings.concurrency)
            }
        }
    }

    /// Takes the limits of `configuration`: existing ones are resized, new groups get theirs.
    /// A group that went away keeps its limit for the runs still using it.
    public func apply(_ configuration: AgentConfiguration) async {
        register(configuration)
        let resized: [(ConcurrencyLimit, Int)] = lock.withLock {
            configuration.groups.compactMap { name, settings in groups[name].map { ($0, settings.concurrency) } }
        }
        await global.resize(to: configuration.agent.concurrency)
        await handshakes.resize(to: configuration.agent.handshakeLimit)
        for (limit, size) in resized { await limit.resize(to: size) }
    }
}

/// The devices of the collections in progress, waiting for their turn (queued) or being
/// collected, so that a device is never collected twice at once (a scheduled run and a
/// `collect now` overlapping).
public actor DevicesInFlight {
    public enum State: Sendable, Equatable {
        /// Waiting for a concurrency slot.
        case queued
        /// Holding its slots: a session is open or being opened.
        case collecting
    }

    /// A collection's hold on a device: only the holder starts and releases it.
    public struct Claim: Sendable, Hashable {
        let id: UInt64
    }

    /// What ``claim(_:overtakingQueued:)`` got.
    public enum Admission: Sendable, Equatable {
        /// The device is this collection's to collect.
        case claimed(Claim)
        /// Another collection has it, in this state.
        case busy(State)
    }

    /// `yields`: a queued claim another run may take over (not an incident's own).
    private struct Held {
        var state: State
        var claim: Claim
        var yields: Bool
        /// The queued claim this one took over: given back if this one ends without starting
        /// (its run cancelled), so that the run it came from still collects the device.
        var tookOver: Claim?
    }

    private var states: [String: Held] = [:]
    private var issued: UInt64 = 0

    public init() {}

    /// Marks `name` as queued for a new claim; when it already was in flight, changes nothing
    /// and returns its state. `overtakingQueued` (an incident's collection): a device only
    /// waiting for its turn in another run is taken over, collected now; that run skips it when
    /// its turn comes (``start(_:claim:)``). A device being collected is never taken, nor one
    /// queued for another incident (that one collects it).
    public func claim(_ name: String, overtakingQueued: Bool = false) -> Admission {
        let held = states[name]
        if let held, !(overtakingQueued && held.state == .queued && held.yields) { return .busy(held.state) }
        issued += 1
        let claim = Claim(id: issued)
        states[name] = Held(state: .queued, claim: claim, yields: !overtakingQueued, tookOver: held?.claim)
        return .claimed(claim)
    }

    /// The device got its slots and is being collected now under `claim`; false when another
    /// collection took it over meanwhile (this one must not collect it).
    public func start(_ name: String, claim: Claim) -> Bool {
        guard let held = states[name], held.claim == claim else {
            // The run it was taken from gives the device up (it reports it overtaken): nothing to
            // give back to any more.
            if states[name]?.tookOver == claim { states[name]?.tookOver = nil }
            return false
        }
        states[name] = Held(state: .collecting, claim: claim, yields: false, tookOver: nil)
        return true
    }

    /// Done with the device; a claim taken over releases nothing. A takeover that never started
    /// gives the device back to the claim it took it from.
    public func release(_ name: String, claim: Claim) {
        guard let held = states[name], held.claim == claim else {
            if states[name]?.tookOver == claim { states[name]?.tookOver = nil }
            return
        }
        if held.state == .queued, let previous = held.tookOver {
            states[name] = Held(state: .queued, claim: previous, yields: true, tookOver: nil)
        } else {
            states[name] = nil
        }
    }

    /// Queued and collecting.
    public var current: Set<String> { Set(states.keys) }
    public var collecting: Set<String> { Set(states.filter { $0.value.state == .collecting }.keys) }
    public var queued: Set<String> { Set(states.filter { $0.value.state == .queued }.keys) }
}
