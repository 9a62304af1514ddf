import Foundation
@testable import IOLoop
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

    @Test func aLoopThreadCarriesItsNameForTheKernel() async throws {
        // What `top -H`, `ps -L` and perf show: the loop's name, not its creator's.
        let loop = IOLoop(name: "care-test-loop-with-a-long-name")
        let comm = try await loop.submit { try String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8) }
        #expect(comm == "care-test-loop-\n")
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

    @Test func aReplyThatArrivedDuringALongJobOnTheLoopIsNotLate() async throws {
        // A task running on the loop may hold it for a while (parsing a large reply); a read whose
        // data came in meanwhile must get it, even when its deadline passed during the job.
        let loop = IOLoop(name: "stall-test")
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        let r = FileDescriptorStream(fd: fds[0], loop: loop), w = FileDescriptorStream(fd: fds[1], loop: loop)
        let reading = Task { try await r.read(deadline: .now + .milliseconds(400)) }
        try await Task.sleep(for: .milliseconds(100))
        let writer = fds[1]
        loop.execute {
            var byte: UInt8 = 7
            _ = write(writer, &byte, 1)
            usleep(800_000)
        }
        #expect(try await reading.value == [7])
        await r.close(); await w.close()
    }

    @Test func aTaskThatPrefersALoopRunsOnItsThreadAcrossWaits() async throws {
        let group = IOLoopGroup(count: 2)
        let loop = group.loops[1]
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        let r = FileDescriptorStream(fd: fds[0], loop: loop), w = FileDescriptorStream(fd: fds[1], loop: loop)
        let observed = Task(executorPreference: loop) { () async throws -> [Bool] in
            // A session started here stays on this loop; the group's turns go on as before.
            var seen = [loop.inLoop, group.forSession() === loop && group.next() !== group.next()]
            // Data already there: the step completes at once, on this thread.
            try await w.write([1])
            seen.append(try await r.read(deadline: .now + .seconds(30)) == [1])
            seen.append(loop.inLoop)
            // Data later: the task waits, and resumes on the loop thread.
            try await Task.sleep(for: .milliseconds(20))
            seen.append(loop.inLoop)
            return seen
        }
        let writer = Task {
            try await Task.sleep(for: .milliseconds(50))
            try await w.write([2])
        }
        #expect(try await observed.value == [true, true, true, true, true])
        try await writer.value
        let later = Task(executorPreference: loop) { try await r.read(deadline: .now + .seconds(30)) }
        #expect(try await later.value == [2])
        #expect(!loop.inLoop)
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

/// The timer heap holds only waiting operations: one that finishes takes its deadline and tick
/// out at once (an agent with 2-minute RPC timeouts would otherwise hold every finished read's
/// deadline for two minutes).
@Suite struct TimerHeapTests {
    @Test func aFinishedOperationLeavesNoTimerBehind() async throws {
        let loop = IOLoop(name: "timer-test")
        for _ in 0..<200 {
            var fds: [Int32] = [0, 0]
            try #require(pipe(&fds) == 0)
            let r = FileDescriptorStream(fd: fds[0], loop: loop), w = FileDescriptorStream(fd: fds[1], loop: loop)
            try await w.write([1, 2, 3], deadline: .now + .seconds(120))
            #expect(try await r.read(deadline: .now + .seconds(120)) == [1, 2, 3])
            await r.close(); await w.close()
        }
        #expect(try await loop.submit { loop.timerCount } == 0)
    }

    @Test func aWaitingOperationHoldsOneDeadlineAndOneTick() async throws {
        let loop = IOLoop(name: "timer-test")
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let r = FileDescriptorStream(fd: fds[0], loop: loop), w = FileDescriptorStream(fd: fds[1], loop: loop)
        let counter = Counter()
        let waiting = Task {
            try await loop.drive(fd: r.fd, deadline: .now + .seconds(30), tick: .milliseconds(10)) { () -> IOStep<Void> in
                counter.value += 1
                return counter.value >= 40 ? .done(()) : .wait(.read)
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        // Re-run by its tick a few times by now; still one entry of each kind.
        #expect(try await loop.submit { loop.timerCount } == 2)
        try await waiting.value
        #expect(try await loop.submit { loop.timerCount } == 0)
        #expect(counter.value == 40)
        await r.close(); await w.close()
    }

    @Test func entriesComeOutInOrderAfterRemovalsAndMovedTicks() throws {
        var heap = TimerHeap()
        let base = ContinuousClock.now
        var generator = SystemRandomNumberGenerator()
        let operations = (0..<300).map { PendingOperation(fd: Int32($0), deadline: nil, tick: nil) }
        var expected: [Int: (deadline: Int, tick: Int?)] = [:]
        for (i, operation) in operations.enumerated() {
            let deadline = Int.random(in: 0..<10_000, using: &generator)
            heap.push(.init(instant: base + .milliseconds(deadline), operation: operation, isTick: false))
            var tick: Int?
            if i % 3 == 0 {
                tick = Int.random(in: 0..<10_000, using: &generator)
                heap.setTick(operation, at: base + .milliseconds(tick!))
            }
            expected[i] = (deadline, tick)
        }
        // Finished operations leave; some ticks move earlier, some later.
        for i in stride(from: 0, to: 300, by: 7) {
            heap.remove(operations[i])
            expected[i] = nil
        }
        for i in stride(from: 3, to: 300, by: 9) where expected[i] != nil {
            let tick = Int.random(in: 0..<10_000, using: &generator)
            heap.setTick(operations[i], at: base + .milliseconds(tick))
            expected[i]!.tick = tick
        }
        #expect(heap.count == expected.values.reduce(0) { $0 + 1 + ($1.tick == nil ? 0 : 1) })
        var popped: [(Int, Bool, ContinuousClock.Instant)] = []
        while let entry = heap.pop() {
            popped.append((Int(entry.operation.fd), entry.isTick, entry.instant))
            #expect(entry.operation.slot(tick: entry.isTick) == -1)
        }
        #expect(zip(popped, popped.dropFirst()).allSatisfy { $0.2 <= $1.2 }, "in order")
        for (index, isTick, instant) in popped {
            let want = try #require(expected[index])
            #expect(instant == base + .milliseconds(isTick ? try #require(want.tick) : want.deadline))
        }
        #expect(operations.allSatisfy { $0.deadlineSlot == -1 && $0.tickSlot == -1 })
    }
}
