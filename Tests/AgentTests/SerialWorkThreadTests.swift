@testable import Agent
import Foundation
import Testing

@Suite struct SerialWorkThreadTests {
    /// `/proc/thread-self` is `PID/task/TID` of the thread that reads it.
    static func threadID() -> String { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? "" }
    static func threadName() -> String { (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "" }

    @Test func jobsRunInOrderOnOneNamedThreadOffThePool() async {
        let thread = SerialWorkThread(name: "care-test-work")
        defer { thread.stop() }
        var seen: [(id: String, name: String, value: Int)] = []
        for i in 0..<20 {
            seen.append(await thread.run { (Self.threadID(), Self.threadName(), i) })
        }
        let caller = Self.threadID()
        #expect(Set(seen.map(\.id)).count == 1, "one thread for every job")
        #expect(seen[0].id != caller && !seen[0].id.isEmpty, "not the awaiting task's thread")
        #expect(Set(seen.map(\.name)) == ["care-test-work\n"])
        #expect(seen.map(\.value) == Array(0..<20))
    }
}
