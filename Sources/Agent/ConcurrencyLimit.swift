/// An async counting semaphore: at most `limit` holders at once; waiters are served in order and
/// leave the queue when their task is cancelled. Tasks wait suspended, so a thousand queued
/// devices cost a thousand small continuations, not threads.
public actor ConcurrencyLimit {
    public let limit: Int
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

    public func release() {
        if waiters.isEmpty {
            holders -= 1
        } else {
            // The slot passes straight to the first waiter.
            waiters.removeFirst().continuation.resume()
        }
    }

    public var inUse: Int { holders }

    private func cancelWaiter(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
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

    private var states: [String: State] = [:]

    public init() {}

    /// Marks `name` as queued and returns nil; when it already was in flight, changes nothing and
    /// returns its state.
    public func claim(_ name: String) -> State? {
        if let state = states[name] { return state }
        states[name] = .queued
        return nil
    }

    /// The device got its slots and is being collected now.
    public func start(_ name: String) { states[name] = .collecting }
    public func release(_ name: String) { states[name] = nil }
    /// Queued and collecting.
    public var current: Set<String> { Set(states.keys) }
    public var collecting: Set<String> { Set(states.filter { $0.value == .collecting }.keys) }
    public var queued: Set<String> { Set(states.filter { $0.value == .queued }.keys) }
}
