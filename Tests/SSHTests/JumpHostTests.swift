import Foundation
import Logging
import NETCONF
import NETCONFSSH
import SSH
import Testing
import TestSupport

/// NETCONF through a jump host (`proxy-jump`): `direct-tcpip` tunnels on one shared, strictly
/// checked, separately authenticated bastion session. Two real sshds on loopback.
@Suite(.serialized) struct JumpHostTests {
    let logger = Logger.test

    func device(_ dir: URL) throws -> SSHDHarness {
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir)
        return try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
    }

    /// A bastion: any subsystem (never used), forwarding allowed (sshd's default).
    func bastion() throws -> SSHDHarness {
        try SSHDHarness(.init(subsystem: "/bin/false"))
    }

    func knownHosts(_ dir: URL, _ harnesses: SSHDHarness...) throws -> String {
        let path = dir.appendingPathComponent("known_hosts-\(UUID().uuidString.prefix(4))").path
        try harnesses.map { try String(contentsOfFile: $0.knownHostsPath, encoding: .utf8) }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func endpoint(_ d: SSHDHarness, via hops: [JumpHost], bastionKey: String, knownHosts: String, tunnels: Int = 10) -> DeviceEndpoint {
        let verifier = HostKeyVerifier(knownHostsPath: knownHosts, policy: .strict)
        return DeviceEndpoint(
            host: d.addresses[0], port: d.port,
            credentials: SSHCredentials(user: d.user, privateKeyPath: d.clientKeys["ed25519"]!),
            hostKeyVerifier: verifier,
            sshTimeouts: SSHTimeouts(connect: .seconds(5), authentication: .seconds(10)),
            netconfTimeouts: NETCONFTimeouts(hello: .seconds(10), rpc: .seconds(20)),
            jumpRoute: JumpRoute(hops: hops, credentials: SSHCredentials(user: d.user, privateKeyPath: bastionKey),
                                 hostKeyVerifier: verifier, maximumTunnels: tunnels))
    }

    func accepted(_ h: SSHDHarness) -> Int {
        h.log.components(separatedBy: "Accepted publickey for").count - 1
    }

    @Test func devicesBehindABastionShareItsSessionWithinTheTunnelCap() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = try device(dir)
        defer { d.stop() }
        let b = try bastion()
        defer { b.stop() }
        let known = try knownHosts(dir, d, b)
        let jumps = JumpHostSessions()
        let hop = JumpHost(user: b.user, host: b.addresses[0], port: b.port)
        // Each hop with its own key: each sshd authorises only its own harness's keys.
        let route = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: known, tunnels: 2)
        let names = try await withThrowingTaskGroup(of: String?.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    let client = try await NETCONFClient.connect(to: route, logger: logger, jumpHosts: jumps)
                    let reply = try await client.rpc(.junos("get-software-information"))
                    await client.close()
                    return reply.document.root.firstDescendant("host-name")?.value
                }
            }
            var all: [String?] = []
            for try await name in group { all.append(name) }
            return all
        }
        #expect(names.count == 5 && names.allSatisfy { $0 != nil })
        // Five NETCONF sessions on the device, one login on the bastion.
        #expect(accepted(d) == 5, "\(d.log)")
        #expect(accepted(b) == 1, "\(b.log)")
        // The last tunnel closed: so did the bastion session.
        for _ in 0..<50 where await jumps.openSessions > 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await jumps.openSessions == 0)

        // Without the bastion the device cannot be reached this way: the tunnel really carries it.
        b.stop()
        await #expect {
            _ = try await NETCONFClient.connect(to: route, logger: logger, jumpHosts: jumps)
        } throws: { error in
            "\(error)".hasPrefix("jump host \(hop): ") && "\(error)".contains("connection refused")
        }
    }

    @Test func aTunnelOpenGivenUpHalfWayIsNotResumedForTheNextDevice() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = try device(dir)
        defer { d.stop() }
        let b = try bastion()
        defer { b.stop() }
        let known = try knownHosts(dir, d, b)
        // A device behind the bastion that does not answer: a listener whose accept queue is
        // full drops SYNs, so the bastion's connect() for the tunnel (and its answer) takes minutes.
        let silentListener = try SilentListener()
        defer { withExtendedLifetime(silentListener) {} }

        let jumps = JumpHostSessions()
        let hop = JumpHost(user: b.user, host: b.addresses[0], port: b.port)
        var silent = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: known)
        silent.host = "127.0.0.1"
        silent.port = silentListener.port
        silent.sshTimeouts = SSHTimeouts(connect: .seconds(1), authentication: .seconds(10))
        let silentEndpoint = silent
        let waiting = Task { try await NETCONFClient.connect(to: silentEndpoint, logger: logger, jumpHosts: jumps) }
        try await Task.sleep(for: .milliseconds(300))
        // The reachable device shares the bastion session and waits for its turn to open a
        // tunnel while the silent one's open is outstanding; that open is given up after 1 s.
        // libssh2 would resume it for the next open on that session (waiting for the silent
        // device's answer, or handing over a tunnel to it): the reachable device gets a new
        // bastion session instead, and its own device.
        let reachable = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: known)
        let client = try await NETCONFClient.connect(to: reachable, logger: logger, jumpHosts: jumps)
        let reply = try await client.rpc(.junos("get-software-information"))
        #expect(reply.document.root.firstDescendant("host-name")?.value != nil)
        await client.close()
        await #expect(throws: (any Error).self) { _ = try await waiting.value }
        // Two logins on the bastion: the retired session's and the new one's.
        #expect(accepted(b) == 2, "\(b.log)")
    }

    /// A command closing the jump host sessions right after its last device (as `hosts scan`
    /// does before exit), while that device's tunnel is still closing: the session is freed with
    /// its channels, and the tunnel's relay stops without freeing its channel a second time (it
    /// crashed in about one run in four).
    @Test func closingTheJumpHostSessionsWhileATunnelClosesIsSafe() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = try device(dir)
        defer { d.stop() }
        let b = try bastion()
        defer { b.stop() }
        let known = try knownHosts(dir, d, b)
        let hop = JumpHost(user: b.user, host: b.addresses[0], port: b.port)
        let route = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: known)
        for _ in 0..<12 {
            let jumps = JumpHostSessions()
            let client = try await NETCONFClient.connect(to: route, logger: logger, jumpHosts: jumps)
            _ = try await client.rpc(.junos("get-software-information"))
            await client.close()
            await jumps.closeAll()
            try await Task.sleep(for: .milliseconds(30))
            #expect(await jumps.openSessions == 0)
        }
    }

    /// Two groups reaching the same bastion with different known_hosts files: each checks the
    /// bastion's key with its own. One session shared between them let the group whose file
    /// lacks the key through on the other's session.
    @Test func groupsWithTheirOwnKnownHostsDoNotShareABastionSession() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = try device(dir)
        defer { d.stop() }
        let b = try bastion()
        defer { b.stop() }
        let jumps = JumpHostSessions()
        let hop = JumpHost(user: b.user, host: b.addresses[0], port: b.port)
        let trusting = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: try knownHosts(dir, d, b))
        let client = try await NETCONFClient.connect(to: trusting, logger: logger, jumpHosts: jumps)
        _ = try await client.rpc(.junos("get-software-information"))
        // While that session is open: a group that knows the device but not the bastion.
        let unaware = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: try knownHosts(dir, d))
        await #expect {
            _ = try await NETCONFClient.connect(to: unaware, logger: logger, jumpHosts: jumps)
        } throws: { error in
            "\(error)".hasPrefix("jump host \(hop): ") && "\(error)".contains("not known")
        }
        await client.close()
    }

    /// A jump host that stops answering (its session processes stopped) while a device's tunnel
    /// closes: the close waits at most the connect timeout for the bastion, then frees the
    /// tunnel's slot. The next device (one slot) used to wait for it for good; it gets a new
    /// bastion session instead.
    @Test func aHungBastionDoesNotHoldItsTunnelSlotForGood() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = try device(dir)
        defer { d.stop() }
        let b = try bastion()
        defer { b.signalSessions(SIGCONT); b.stop() }
        let known = try knownHosts(dir, d, b)
        let jumps = JumpHostSessions()
        let hop = JumpHost(user: b.user, host: b.addresses[0], port: b.port)
        var route = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: known, tunnels: 1)
        route.sshTimeouts = SSHTimeouts(connect: .seconds(2), authentication: .seconds(5))
        route.netconfTimeouts = NETCONFTimeouts(hello: .seconds(5), rpc: .seconds(3))
        let first = try await NETCONFClient.connect(to: route, logger: logger, jumpHosts: jumps)
        _ = try await first.rpc(.junos("get-software-information"))
        b.signalSessions(SIGSTOP)
        let started = ContinuousClock.now
        let closing = Task { await first.close() }
        let second = try await NETCONFClient.connect(to: route, logger: logger, jumpHosts: jumps)
        let reply = try await second.rpc(.junos("get-software-information"))
        #expect(reply.document.root.firstDescendant("host-name")?.value != nil)
        #expect(started.duration(to: .now) < .seconds(25))
        await second.close()
        await closing.value
    }

    /// A device whose time runs out while it waits for its turn to open a tunnel (another
    /// device's open holds it): it ends at once, logs in nowhere new, and the shared session is
    /// not retired for an open that never reached libssh2.
    @Test func aDeviceCancelledWhileWaitingForItsTunnelTriesNothingMore() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = try device(dir)
        defer { d.stop() }
        let b = try bastion()
        defer { b.stop() }
        let known = try knownHosts(dir, d, b)
        let silentListener = try SilentListener()
        defer { withExtendedLifetime(silentListener) {} }
        let jumps = JumpHostSessions()
        let hop = JumpHost(user: b.user, host: b.addresses[0], port: b.port)
        var silent = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: known)
        silent.host = "127.0.0.1"
        silent.port = silentListener.port
        silent.sshTimeouts = SSHTimeouts(connect: .seconds(3), authentication: .seconds(10))
        let silentEndpoint = silent
        let holding = Task { try await NETCONFClient.connect(to: silentEndpoint, logger: logger, jumpHosts: jumps) }
        try await Task.sleep(for: .milliseconds(500))
        let waitingEndpoint = endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: known)
        let waiting = Task { try await NETCONFClient.connect(to: waitingEndpoint, logger: logger, jumpHosts: jumps) }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        waiting.cancel()
        _ = try? await waiting.value
        #expect(cancelled.duration(to: .now) < .seconds(1), "ended at once, not after a new bastion login")
        #expect(accepted(b) == 1, "no second login on the bastion: \(b.log)")
        _ = try? await holding.value
    }

    @Test func everyHopsHostKeyIsChecked() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = try device(dir)
        defer { d.stop() }
        let b = try bastion()
        defer { b.stop() }
        let hop = JumpHost(user: b.user, host: b.addresses[0], port: b.port)
        // The bastion's key unknown: refused before any tunnel.
        let deviceOnly = try knownHosts(dir, d)
        await #expect {
            _ = try await NETCONFClient.connect(to: endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: deviceOnly),
                                                logger: logger, jumpHosts: JumpHostSessions())
        } throws: { error in
            "\(error)".hasPrefix("jump host \(hop): host key for [\(b.addresses[0])]:\(b.port) is not known")
        }
        // The device's key unknown: the tunnel opens, the device is refused.
        let bastionOnly = try knownHosts(dir, b)
        await #expect {
            _ = try await NETCONFClient.connect(to: endpoint(d, via: [hop], bastionKey: b.clientKeys["ed25519"]!, knownHosts: bastionOnly),
                                                logger: logger, jumpHosts: JumpHostSessions())
        } throws: { error in
            guard let ssh = error as? SSHError, case .hostKeyUnknown = ssh else { return false }
            return "\(error)".contains("[\(d.addresses[0])]:\(d.port)")
        }
        // The device's key offered to the bastion: refused there.
        await #expect {
            _ = try await NETCONFClient.connect(to: endpoint(d, via: [hop], bastionKey: d.clientKeys["ed25519"]!, knownHosts: try knownHosts(dir, d, b)),
                                                logger: logger, jumpHosts: JumpHostSessions())
        } throws: { error in
            "\(error)".hasPrefix("jump host \(hop): ") && "\(error)".contains("authentication failed")
        }
    }

    @Test func aChainOfTwoJumpHosts() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = try device(dir)
        defer { d.stop() }
        let first = try bastion()
        defer { first.stop() }
        let second = try bastion()
        defer { second.stop() }
        // Both bastions take the same key here: the route has one login for its hops.
        try String(contentsOfFile: first.clientKeys["ed25519"]! + ".pub", encoding: .utf8)
            .write(toFile: second.directory.appendingPathComponent("authorized_keys").path, atomically: true, encoding: .utf8)
        let hops = [JumpHost(user: first.user, host: first.addresses[0], port: first.port),
                    JumpHost(user: second.user, host: second.addresses[0], port: second.port)]
        let jumps = JumpHostSessions()
        let client = try await NETCONFClient.connect(to: endpoint(d, via: hops, bastionKey: first.clientKeys["ed25519"]!,
                                                                  knownHosts: try knownHosts(dir, d, first, second)),
                                                     logger: logger, jumpHosts: jumps)
        #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
        await client.close()
        #expect(accepted(first) == 1 && accepted(second) == 1 && accepted(d) == 1)
        for _ in 0..<50 where await jumps.openSessions > 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await jumps.openSessions == 0)
    }

    @Test func parsesHops() {
        #expect(JumpHost("ops@bastion.example.net:2222") == JumpHost(user: "ops", host: "bastion.example.net", port: 2222))
        #expect(JumpHost("bastion") == JumpHost(host: "bastion"))
        #expect(JumpHost("ops@[2001:db8::1]:22") == JumpHost(user: "ops", host: "2001:db8::1", port: 22))
        #expect(JumpHost.chain("a@b, c:2200") == [JumpHost(user: "a", host: "b"), JumpHost(host: "c", port: 2200)])
        #expect(JumpHost("ops@") == nil)
        #expect(JumpHost("b:99999") == nil)
        #expect(JumpHost.chain("a,,b") == nil)
        #expect(JumpHost(user: "ops", host: "2001:db8::1", port: 2222).description == "ops@[2001:db8::1]:2222")
    }
}
