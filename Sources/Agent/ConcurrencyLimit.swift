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

/// The devices being collected right now, so that a device is never collected twice at once
/// (a scheduled run and a `collect now` overlapping).
public actor DevicesInFlight {
    private var names: Set<String> = []

    public init() {}

    /// Marks `name` as in flight; false if it already was.
    public func claim(_ name: String) -> Bool { names.insert(name).inserted }
    public func release(_ name: String) { names.remove(name) }
    public var current: Set<String> { names }
}
