import Foundation

/// One thread of its own for blocking C calls (libcurl transfers, the bundle writer's writes and
/// fsyncs), so that they never hold a thread of Swift's cooperative pool. Jobs run one at a time,
/// in order; the thread starts with the first job.
final class SerialWorkThread: @unchecked Sendable {
    /// The thread's name as the kernel shows it: at most 15 bytes.
    let name: String
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false
    private var thread: Thread?

    init(name: String) { self.name = name }

    /// Runs `work` on the thread and returns its result to the awaiting task.
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            submit { continuation.resume(returning: work()) }
        }
    }

    private func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        if thread == nil {
            let thread = Thread { [self] in
                // Foundation on Linux does not pass Thread.name to the kernel, and a new thread
                // keeps its creator's name (a pool thread's): name it for `top -H` and `ps -L`.
                try? name.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
                loop()
            }
            self.thread = thread
            thread.start()
        }
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping { condition.unlock(); return }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Lets the thread end once its queued jobs are done.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }
}
