import Foundation
import Simulator
import Testing
import TestSupport

/// The simulator's own posix_spawn child processes (sshd instances live as long as the fleet).
@Suite struct SpawnedProcessTests {
    @Test func exitStatusAndOutputFile() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path
        let child = try SpawnedProcess("/bin/sh", ["-c", "echo hello; exit 3"], stdout: out)
        #expect(child.wait() == 3)
        #expect(!child.isRunning)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "hello\n")
    }

    @Test func terminateStopsALongRunningChildInItsOwnProcessGroup() throws {
        let child = try SpawnedProcess("/bin/sleep", ["30"], ownProcessGroup: true)
        #expect(child.isRunning)
        #expect(getpgid(child.pid) == child.pid)
        #expect(child.wait(timeout: .milliseconds(100)) == nil)
        let started = ContinuousClock.now
        child.terminate(grace: .seconds(3), group: true)
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(child.wait() == 128 + SIGTERM)
    }

    @Test func childStartsWithDefaultSignalHandlingEvenWhenWeIgnoreSIGTERM() throws {
        let previous = signal(SIGTERM, SIG_IGN)
        defer { signal(SIGTERM, previous) }
        let child = try SpawnedProcess("/bin/sleep", ["30"])
        child.signal(SIGTERM)
        #expect(child.wait(timeout: .seconds(5)) == 128 + SIGTERM)
    }

    @Test func aMissingExecutableIsNamedInTheError() {
        #expect {
            _ = try SpawnedProcess("/nonexistent/sshd", [])
        } throws: { error in
            "\(error)" == "cannot start /nonexistent/sshd: No such file or directory"
        }
    }
}
