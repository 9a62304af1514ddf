import Synchronization

/// How many bytes of large replies the process parses and holds at once. A reply becomes a
/// libxml2 tree of about 14 times its size (docs/security.md, "Memory ceiling"): four 31 MiB
/// configurations arriving together were 1.7 GiB of trees, past the unit's `MemoryMax`, and the
/// whole service was killed with every other device's work. A reply of ``threshold`` bytes or
/// more reserves its size before it is parsed and keeps the reservation for as long as its tree
/// lives (``ReplyMemoryReservation`` goes with the reply); others wait their turn, first come
/// first served. A reply larger than the whole budget is parsed alone. Small replies (every
/// ordinary one) never wait.
public final class ReplyMemoryBudget: Sendable {
    /// The agent's budget: 64 MiB of replies, about 900 MiB of trees.
    public static let shared = ReplyMemoryBudget(bytes: 64 << 20)
    /// Replies smaller than this are not counted (1 MiB: eight times the largest ordinary reply).
    public static let threshold = 1 << 20

    public let total: Int
    private struct State: ~Copyable {
        var available: Int
        var waiters: [(id: Int, size: Int, continuation: CheckedContinuation<Void, Never>)] = []
        /// Waiters given their bytes, until they see it.
        var granted: Set<Int> = []
        var nextID = 0
    }
    private let state: Mutex<State>

    public init(bytes: Int) {
        total = max(1, bytes)
        state = Mutex(State(available: max(1, bytes)))
    }

    /// Bytes not reserved now.
    public var available: Int { state.withLock { $0.available } }

    /// Reserves `size` bytes (at most the whole budget), waiting for earlier reservations to be
    /// released. A cancelled wait returns an empty reservation, which the caller must not parse
    /// under (``NETCONFClient`` gives the reply up).
    public func reserve(_ size: Int) async -> ReplyMemoryReservation {
        // First come, first served: only when nobody waits may a reply take its share at once.
        if let now = reserveNow(size) { return now }
        let wanted = min(max(size, 0), total)
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let (resumeNow, ready): (Bool, [CheckedContinuation<Void, Never>]) = state.withLock { state in
                    if Task.isCancelled { return (true, []) }
                    state.waiters.append((id, wanted, continuation))
                    // Released since `reserveNow`: this one may fit already.
                    return (false, Self.grant(&state))
                }
                if resumeNow { continuation.resume() }
                for waiter in ready { waiter.resume() }
            }
        } onCancel: {
            // Gone from the queue: those behind it that fit now go too.
            let (waiter, ready): (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return (nil, []) }
                let removed = state.waiters.remove(at: index).continuation
                return (removed, Self.grant(&state))
            }
            waiter?.resume()
            for other in ready { other.resume() }
        }
        // Granted (its bytes reserved), or cancelled before its turn (nothing reserved).
        let granted = state.withLock { $0.granted.remove(id) != nil }
        return ReplyMemoryReservation(size: granted ? wanted : 0, budget: self)
    }

    /// `size` bytes (at most the whole budget) if they are free and nobody waits; nil otherwise.
    public func reserveNow(_ size: Int) -> ReplyMemoryReservation? {
        let wanted = min(max(size, 0), total)
        let taken: Bool = state.withLock { state in
            guard state.waiters.isEmpty && state.available >= wanted else { return false }
            state.available -= wanted
            return true
        }
        return taken ? ReplyMemoryReservation(size: wanted, budget: self) : nil
    }

    func release(_ size: Int) {
        guard size > 0 else { return }
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.available += size
            return Self.grant(&state)
        }
        for continuation in ready { continuation.resume() }
    }

    /// Takes the waiters that fit now, in order, off the queue (their bytes reserved).
    @discardableResult
    private static func grant(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        var ready: [CheckedContinuation<Void, Never>] = []
        while let first = state.waiters.first, first.size <= state.available {
            state.available -= first.size
            state.granted.insert(first.id)
            ready.append(state.waiters.removeFirst().continuation)
        }
        return ready
    }
}

/// Bytes of a ``ReplyMemoryBudget`` held until this goes (with the reply whose tree they stand for).
public final class ReplyMemoryReservation: Sendable {
    public let size: Int
    private let budget: ReplyMemoryBudget

    init(size: Int, budget: ReplyMemoryBudget) {
        self.size = size
        self.budget = budget
    }

    deinit { budget.release(size) }
}
