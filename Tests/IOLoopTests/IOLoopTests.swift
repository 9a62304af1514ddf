import Foundation
import IOLoop
import Testing

/// The event loop on real pipes: readiness, deadlines, cancellation, and many waiters at once.
@Suite struct IOLoopTests {
    func makePipe() -> (read: FileDescriptorStream, write: FileDescriptorStream) {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        return (FileDescriptorStream(fd: fds[0]), FileDescriptorStream(fd: fds[1]))
    }

    @Test func readWaitsForDataThenReturnsIt() async throws {
        let (r, w) = makePipe()
        // Deadlines where data is expected are generous: CI runs every suite at once on 2 cores.
        async let received = r.read(deadline: .now + .seconds(30))
        try await Task.sleep(for: .milliseconds(50))
        try await w.write(Array("hello".utf8))
        #expect(try await received == Array("hello".utf8))
        await w.close()
        #expect(try await r.read(deadline: .now + .seconds(30)) == nil) // end of stream
        await r.close()
    }

    @Test func deadlinePassesWithTimedOut() async throws {
        let (r, w) = makePipe()
        let started = ContinuousClock.now
        await #expect(throws: IOLoopError.timedOut) { _ = try await r.read(deadline: .now + .milliseconds(200)) }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(10))
        await r.close(); await w.close()
    }

    @Test func cancellationEndsTheWait() async throws {
        let (r, w) = makePipe()
        let task = Task { try await r.read(deadline: .now + .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        await #expect(throws: IOLoopError.cancelled) { _ = try await task.value }
        await r.close(); await w.close()
    }

    @Test func aSecondWaiterOnOneDescriptorIsRefused() async throws {
        let (r, w) = makePipe()
        async let first = r.read(deadline: .now + .seconds(30))
        try await Task.sleep(for: .milliseconds(50))
        await #expect(throws: IOLoopError.busy(fd: r.fd)) { _ = try await r.read(deadline: .now + .seconds(2)) }
        try await w.write([1])
        #expect(try await first == [1])
        await r.close(); await w.close()
    }

    @Test func fiveHundredWaitersWithStaggeredDeadlines() async throws {
        // Half get data, half time out (staggered short deadlines); all on one loop thread.
        let pipes = (0..<500).map { _ in makePipe() }
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for (i, p) in pipes.enumerated() {
                group.addTask {
                    let deadline: Duration = i % 2 == 0 ? .seconds(30) : .milliseconds(300 + i % 7 * 10)
                    let got = try? await p.read.read(deadline: .now + deadline)
                    return (i, got != nil)
                }
            }
            for (i, p) in pipes.enumerated() where i % 2 == 0 { try? await p.write.write([UInt8(i % 256)]) }
            var out: [(Int, Bool)] = []
            for await r in group { out.append(r) }
            return out
        }
        #expect(results.count == 500)
        #expect(results.allSatisfy { $0.1 == ($0.0 % 2 == 0) })
        for p in pipes { await p.read.close(); await p.write.close() }
    }

    @Test func tickReRunsTheStepWithoutReadiness() async throws {
        let (r, w) = makePipe()
        let counter = Counter()
        let loop = IOLoop.shared
        await #expect(throws: IOLoopError.timedOut) {
            try await loop.drive(fd: r.fd, deadline: .now + .milliseconds(550), tick: .milliseconds(100)) { () -> IOStep<Void> in
                counter.value += 1
                return .wait(.read)
            }
        }
        #expect(counter.value >= 2 && counter.value <= 7)
        await r.close(); await w.close()
    }
}

final class Counter: @unchecked Sendable { var value = 0 }
