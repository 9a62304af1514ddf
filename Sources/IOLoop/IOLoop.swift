#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CEpoll

/// Readiness a non-blocking step waits for.
public struct IOEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let read = IOEvents(rawValue: UInt32(EPOLLIN.rawValue))
    public static let write = IOEvents(rawValue: UInt32(EPOLLOUT.rawValue))
}

/// What one attempt of a non-blocking operation achieved.
public enum IOStep<Value: Sendable>: Sendable {
    /// Finished with a value.
    case done(Value)
    /// Would block: call again when the descriptor is ready for these events.
    case wait(IOEvents)
}

/// Why a driven operation ended without a value.
public enum IOLoopError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The deadline passed before the operation finished.
    case timedOut
    /// The task was cancelled.
    case cancelled
    /// Another operation is already waiting on this descriptor.
    case busy(fd: Int32)
    /// A system call failed.
    case system(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .timedOut: return "timed out"
        case .cancelled: return "cancelled"
        case let .busy(fd): return "descriptor \(fd) already has an operation in progress"
        case let .system(call, code): return "\(call) failed: \(String(cString: strerror(code)))"
        }
    }
}

/// One event loop thread driving non-blocking operations with epoll, so that thousands of
/// sessions share one thread and Swift's cooperative pool never blocks in a C call.
///
/// An operation is a step closure run on the loop thread: it returns `.done` or `.wait(events)`;
/// the loop re-runs it when the descriptor is ready, on each `tick`, and fails it at its deadline.
/// Every step for one descriptor runs on the loop thread, which also serialises access to
/// non-thread-safe C state such as a libssh2 session.
///
/// The loop is also a `TaskExecutor`: a task that prefers it (a device's collection) runs between
/// its waits on the loop thread, so a reply resumes its reader where it was read, and the next
/// request starts there, without waking a pool thread and the loop again for every step (two
/// thread switches per RPC turn; the scheduler's share of the agent's CPU, docs/performance.md).
/// Such a task must not block: a blocking call stalls every session of the loop.
public final class IOLoop: @unchecked Sendable {
    /// A process-wide loop, started on first use.
    public static let shared = IOLoop(name: "care-agent-io")

    private let epollFD: Int32
    private let wakeFD: Int32
    private let lock = NSLock()
    private var queued: [() -> Void] = []
    /// Jobs of tasks that prefer this loop as their executor.
    private var queuedJobs: [UnownedJob] = []
    // Loop-thread state.
    private var operations: [Int32: PendingOperation] = [:]
    private var registered: Set<Int32> = []
    /// Deadlines and ticks of the waiting operations, earliest first.
    private var timers = TimerHeap()
    private var thread: Thread?

    public init(name: String) {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        precondition(epollFD >= 0 && wakeFD >= 0, "epoll/eventfd unavailable: \(String(cString: strerror(errno)))")
        var event = epoll_event()
        event.events = UInt32(EPOLLIN.rawValue)
        event.data.fd = wakeFD
        _ = epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event)
        let thread = Thread { [unowned self] in
            // Foundation on Linux does not pass Thread.name to the kernel, and a new thread keeps
            // its creator's name (a pool thread's): named here for `top -H`, `ps -L` and perf.
            IOLoop.nameCurrentThread(name)
            self.run()
        }
        thread.name = name
        // Tasks run here too (parsing, redaction, sealing bundles): a thread's usual stack.
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// The kernel keeps 15 bytes of a thread's name. (`pthread_setname_np` is not in Swift's Glibc
    /// module, and `prctl` is variadic.)
    private static func nameCurrentThread(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = write(fd, bytes, bytes.count)
        close(fd)
    }

    /// Whether the caller is on this loop's thread.
    public var inLoop: Bool { IOLoop.current === self }

    /// The loop whose thread the caller is on, if any. A thread-local value: set once by the
    /// loop thread itself, so reading it from any thread races with nothing.
    public static var current: IOLoop? {
        guard let pointer = pthread_getspecific(currentKey) else { return nil }
        return Unmanaged<IOLoop>.fromOpaque(pointer).takeUnretainedValue()
    }

    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// Runs `work` on the loop thread, after everything already queued.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        lock.lock()
        let wasEmpty = queued.isEmpty && queuedJobs.isEmpty
        queued.append(work)
        lock.unlock()
        if wasEmpty { wake() }
    }

    /// Only the work that makes the queue non-empty wakes the loop: the loop takes the whole
    /// queue at once, and checks it again before it sleeps. Under load this spares most of the
    /// eventfd writes (and the loop's reads), ~35 per collected device. Work queued from the loop
    /// thread itself needs no wake at all.
    private func wake() {
        guard !inLoop else { return }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Runs `body` on the loop thread and returns its result (at once when called there).
    public func submit<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        if inLoop { return try body() }
        return try await withCheckedThrowingContinuation { continuation in
            execute { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Drives a non-blocking operation on `fd` to completion on the loop thread.
    /// - Parameters:
    ///   - deadline: when to give up with ``IOLoopError/timedOut`` (nil: never).
    ///   - tick: re-run the step this often even without readiness (keepalives), nil for never.
    ///   - step: one non-blocking attempt; runs only on the loop thread.
    public func drive<T: Sendable>(
        fd: Int32,
        deadline: ContinuousClock.Instant? = nil,
        tick: Duration? = nil,
        _ step: @escaping @Sendable () throws -> IOStep<T>
    ) async throws -> T {
        let operation = PendingOperation(fd: fd, deadline: deadline, tick: tick)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
                operation.attempt = { [unowned operation] in
                    do {
                        switch try step() {
                        case let .done(value):
                            operation.markFinished()
                            continuation.resume(returning: value)
                            return nil
                        case let .wait(events):
                            return events
                        }
                    } catch {
                        operation.markFinished()
                        continuation.resume(throwing: error)
                        return nil
                    }
                }
                operation.fail = { error in continuation.resume(throwing: error) }
                // A task running on this loop starts at once: a step that completes resumes the
                // continuation before the task suspends, so it goes on without a round trip.
                if inLoop {
                    start(operation)
                } else {
                    execute { [self] in self.start(operation) }
                }
            }
        } onCancel: {
            execute { [self] in self.fail(operation, with: .cancelled) }
        }
    }

    /// Deadline and tick entries waiting in the timer heap. Runs on the loop thread.
    var timerCount: Int {
        precondition(inLoop)
        return timers.count
    }

    /// Forgets `fd` before the caller closes it. Runs on the loop thread.
    public func deregister(fd: Int32) {
        precondition(inLoop)
        if registered.remove(fd) != nil {
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        }
        if let operation = operations[fd] {
            forget(operation)
            operation.complete(throwing: IOLoopError.system(call: "close", errno: EBADF))
        }
    }

    // MARK: - Loop thread

    private func start(_ operation: PendingOperation) {
        if let existing = operations[operation.fd], existing !== operation {
            operation.complete(throwing: IOLoopError.busy(fd: operation.fd))
            return
        }
        if operation.cancelled {
            operation.complete(throwing: IOLoopError.cancelled)
            return
        }
        operations[operation.fd] = operation
        if let deadline = operation.deadline { timers.push(TimerHeap.Entry(instant: deadline, operation: operation, isTick: false)) }
        attempt(operation)
    }

    private func attempt(_ operation: PendingOperation) {
        guard let events = operation.attempt?() else {
            forget(operation)
            return
        }
        arm(fd: operation.fd, events: events)
        if let tick = operation.tick {
            timers.setTick(operation, at: ContinuousClock.now + tick)
        }
    }

    private func fail(_ operation: PendingOperation, with error: IOLoopError) {
        operation.cancelled = true
        guard operations[operation.fd] === operation else { return }
        forget(operation)
        operation.complete(throwing: error)
    }

    /// A finished operation leaves the descriptor table and the timer heap.
    private func forget(_ operation: PendingOperation) {
        if operations[operation.fd] === operation { operations[operation.fd] = nil }
        timers.remove(operation)
    }

    private func arm(fd: Int32, events: IOEvents) {
        var event = epoll_event()
        event.events = events.rawValue | UInt32(EPOLLONESHOT.rawValue)
        event.data.fd = fd
        if registered.contains(fd) {
            if epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) == 0 { return }
        }
        if epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 {
            registered.insert(fd)
        } else if errno == EEXIST {
            _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
            registered.insert(fd)
        }
    }

    private func run() {
        // Loops live for the process (the thread holds `self` unowned): no release needed.
        pthread_setspecific(IOLoop.currentKey, Unmanaged.passUnretained(self).toOpaque())
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while true {
            let timeout = nextTimeoutMilliseconds()
            let count = epoll_wait(epollFD, events, Int32(capacity), timeout)
            if count < 0 && errno != EINTR { fatalError("epoll_wait failed: \(String(cString: strerror(errno)))") }
            for i in 0..<max(0, Int(count)) {
                let fd = events[i].data.fd
                if fd == wakeFD {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    continue
                }
                if let operation = operations[fd] { attempt(operation) }
            }
            // Deadlines before the queue: a long job in the queue (a task parsing a large reply
            // on this loop) must not make a reply that arrived meanwhile look late. After it,
            // the next turn polls with a zero timeout and takes the ready descriptors first.
            expireDeadlines()
            runQueued()
        }
    }

    private func runQueued() {
        lock.lock()
        let work = queued
        queued.removeAll(keepingCapacity: true)
        let jobs = queuedJobs
        queuedJobs.removeAll(keepingCapacity: true)
        lock.unlock()
        for item in work { item() }
        if jobs.isEmpty { return }
        let executor = asUnownedTaskExecutor()
        for job in jobs { job.runSynchronously(on: executor) }
    }

    private func nextTimeoutMilliseconds() -> Int32 {
        lock.lock()
        let hasQueued = !queued.isEmpty || !queuedJobs.isEmpty
        lock.unlock()
        if hasQueued { return 0 }
        guard let earliest = timers.peek?.instant else { return -1 }
        let remaining = ContinuousClock.now.duration(to: earliest)
        if remaining <= .zero { return 0 }
        let ms = remaining.components.seconds * 1000 + Int64(remaining.components.attoseconds / 1_000_000_000_000_000) + 1
        return Int32(clamping: ms)
    }

    private func expireDeadlines() {
        let now = ContinuousClock.now
        while let top = timers.peek, top.instant <= now {
            timers.pop()
            let operation = top.operation
            // The heap holds only waiting operations' entries (``forget(_:)``).
            assert(!operation.finished && operations[operation.fd] === operation)
            if top.isTick {
                attempt(operation)
            } else if operation.attempt?() == nil {
                // A last try first: what arrived after the turn's epoll_wait (more than a
                // turn's worth of ready descriptors, a long job) is not late.
                forget(operation)
            } else {
                fail(operation, with: .timedOut)
            }
        }
    }
}

extension IOLoop: TaskExecutor {
    /// Queues a job of a task that prefers this loop; it runs on the loop thread after the
    /// ready descriptors' steps of the current turn.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.lock()
        let wasEmpty = queued.isEmpty && queuedJobs.isEmpty
        queuedJobs.append(job)
        lock.unlock()
        if wasEmpty { wake() }
    }
}

/// A binary min-heap of the waiting operations' deadlines and ticks, earliest first. An
/// operation's entries leave it when the operation finishes, not when their time comes: the heap
/// holds at most two entries per waiting operation, however many finished before their deadline
/// (with a 2-minute RPC timeout, lazily dropped entries of finished reads piled up by the
/// hundred thousand on a busy agent). Each operation knows where its entries are (`slot`).
struct TimerHeap {
    struct Entry {
        var instant: ContinuousClock.Instant
        var operation: PendingOperation
        var isTick: Bool
    }

    private var items: [Entry] = []

    var peek: Entry? { items.first }
    var count: Int { items.count }

    /// Adds the operation's deadline or tick; it must not have one of that kind already.
    mutating func push(_ entry: Entry) {
        precondition(entry.operation.slot(tick: entry.isTick) < 0, "an operation has one timer of each kind")
        items.append(entry)
        siftUp(items.count - 1)
    }

    /// Moves the operation's tick to `instant`, or adds it.
    mutating func setTick(_ operation: PendingOperation, at instant: ContinuousClock.Instant) {
        let at = operation.tickSlot
        guard at >= 0 else { return push(Entry(instant: instant, operation: operation, isTick: true)) }
        let earlier = instant < items[at].instant
        items[at].instant = instant
        if earlier { siftUp(at) } else { siftDown(at) }
    }

    @discardableResult
    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        return remove(at: 0)
    }

    /// Takes out the operation's deadline and tick, if it has them.
    mutating func remove(_ operation: PendingOperation) {
        if operation.deadlineSlot >= 0 { remove(at: operation.deadlineSlot) }
        if operation.tickSlot >= 0 { remove(at: operation.tickSlot) }
    }

    @discardableResult
    private mutating func remove(at index: Int) -> Entry {
        let last = items.count - 1
        if index != last { swap(index, last) }
        let removed = items.removeLast()
        removed.operation.setSlot(-1, tick: removed.isTick)
        if index < items.count {
            siftDown(index)
            siftUp(index)
        }
        return removed
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].instant < items[parent].instant else { break }
            swap(child, parent)
            child = parent
        }
        items[child].operation.setSlot(child, tick: items[child].isTick)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left].instant < items[smallest].instant { smallest = left }
            if right < items.count && items[right].instant < items[smallest].instant { smallest = right }
            if smallest == parent { break }
            swap(parent, smallest)
            parent = smallest
        }
        items[parent].operation.setSlot(parent, tick: items[parent].isTick)
    }

    private mutating func swap(_ a: Int, _ b: Int) {
        items.swapAt(a, b)
        items[a].operation.setSlot(a, tick: items[a].isTick)
        items[b].operation.setSlot(b, tick: items[b].isTick)
    }
}

/// An operation waiting on the loop. Only touched on the loop thread.
final class PendingOperation: @unchecked Sendable {
    let fd: Int32
    let deadline: ContinuousClock.Instant?
    let tick: Duration?
    var attempt: (() -> IOEvents?)?
    var fail: ((Error) -> Void)?
    var finished = false
    var cancelled = false
    /// Where its deadline and tick entries are in the loop's ``TimerHeap`` (-1: none).
    var deadlineSlot = -1
    var tickSlot = -1

    func slot(tick: Bool) -> Int { tick ? tickSlot : deadlineSlot }
    func setSlot(_ slot: Int, tick: Bool) {
        if tick { tickSlot = slot } else { deadlineSlot = slot }
    }

    init(fd: Int32, deadline: ContinuousClock.Instant?, tick: Duration?) {
        self.fd = fd
        self.deadline = deadline
        self.tick = tick
    }

    /// Called from inside `attempt` when the step resumed the continuation itself.
    func markFinished() {
        finished = true
        attempt = nil
        fail = nil
    }

    /// Resumes the continuation with `error`, once; drops the closures that hold it.
    func complete(throwing error: Error) {
        guard !finished else { return }
        let fail = self.fail
        markFinished()
        fail?(error)
    }
}

/// A few loops (one per core, at most four) handed out round-robin, so that SSH key exchange and
/// encryption for many sessions spread over the cores while the thread count stays fixed.
public final class IOLoopGroup: @unchecked Sendable {
    public static let shared = IOLoopGroup(count: min(4, max(1, ProcessInfo.processInfo.activeProcessorCount)))

    public let loops: [IOLoop]
    private let lock = NSLock()
    private var index = 0

    public init(count: Int) {
        loops = (0..<max(1, count)).map { IOLoop(name: "care-agent-io-\($0)") }
    }

    /// The loop for a new session: the one whose thread the caller runs on (a collection
    /// running on a loop keeps its session there), else the next in turn.
    public func forSession() -> IOLoop {
        if let current = IOLoop.current, loops.contains(where: { $0 === current }) { return current }
        return next()
    }

    /// The next loop in turn.
    public func next() -> IOLoop {
        lock.lock()
        defer { lock.unlock() }
        index = (index + 1) % loops.count
        return loops[index]
    }
}
