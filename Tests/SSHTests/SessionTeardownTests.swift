import Foundation
import Logging
@testable import SSH
import Testing
import TestSupport

/// Tearing a session down when its peer no longer answers: nothing of it may stay behind.
@Suite(.serialized) struct SessionTeardownTests {
    let logger = Logger.test

    /// Every process below `pid` (sshd's per-connection processes and the subsystem).
    func descendants(of pid: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { children[parent, default: []].append(child) }
        }
        var found: [Int32] = []
        var next = [pid]
        while let p = next.popLast() {
            for c in children[p] ?? [] { found.append(c); next.append(c) }
        }
        return found
    }

    @Test func aSessionWhosePeerHangsIsStillFreed() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let session = try await SSHSession.connect(
            host: h.addresses[0], port: h.port,
            credentials: SSHCredentials(user: h.user, privateKeyPath: h.clientKeys["ed25519"]!),
            hostKeyVerifier: HostKeyVerifier(knownHostsPath: h.knownHostsPath, policy: .strict),
            timeouts: SSHTimeouts(connect: .seconds(5), authentication: .seconds(10)), logger: logger)
        let channel = try await session.openSubsystem("netconf")
        #expect(try await channel.read(deadline: .now + .seconds(10)) != nil) // the device's hello
        // The device stops answering (it hangs, or the link black-holes).
        let listener = try #require(Int32(String(contentsOf: h.directory.appendingPathComponent("sshd.pid"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        let stopped = descendants(of: listener)
        try #require(!stopped.isEmpty)
        for p in stopped { kill(p, SIGSTOP) }
        defer { for p in stopped { kill(p, SIGCONT) } }
        let started = ContinuousClock.now
        await channel.close()
        // libssh2 frees a session only once its channel is closed by both sides; the peer never
        // closes it, and the free gave up (EAGAIN) and lost the session before.
        #expect(session.handleReleased)
        #expect(started.duration(to: .now) < .seconds(10))
    }
}
