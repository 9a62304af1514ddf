import Foundation
import Testing
import TestSupport

/// `proxy-jump` in agent.conf: a group's devices collected through a bastion (real sshds).
@Suite(.serialized) struct JumpHostCollectionTests {
    func careAgent(_ arguments: [String], in dir: URL) throws -> (status: Int32, out: String, err: String) {
        let out = dir.appendingPathComponent("out-\(UUID().uuidString.prefix(4))").path
        let err = dir.appendingPathComponent("err-\(UUID().uuidString.prefix(4))").path
        let status = try ChildProcess(try careAgentExecutable(), arguments, stdout: out, stderr: err).wait()
        return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    @Test func aGroupBehindABastion() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let device = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { device.stop() }
        let bastion = try SSHDHarness(.init(subsystem: "/bin/false"))
        defer { bastion.stop() }
        let closedPort = try SSHDHarness.freePort(on: "127.0.0.1")
        let knownHosts = dir.appendingPathComponent("known_hosts").path
        try (String(contentsOfFile: device.knownHostsPath, encoding: .utf8) + String(contentsOfFile: bastion.knownHostsPath, encoding: .utf8))
            .write(toFile: knownHosts, atomically: true, encoding: .utf8)
        func configuration(proxyJump: String) -> String {
            """
            [agent]
            outbox = \(dir.path)/outbox
            state-directory = \(dir.path)/state
            [defaults]
            user = \(device.user)
            key-file = \(device.clientKeys["ed25519"]!)
            known-hosts = \(knownHosts)
            schedule = manual
            retries = 0
            [group behind]
            proxy-jump = \(proxyJump)
            proxy-jump-key-file = \(bastion.clientKeys["ed25519"]!)
            proxy-jump-tunnels = 1
            [device r1]
            host = \(device.addresses[0])
            port = \(device.port)
            group = behind
            [device r2]
            host = \(device.addresses[0])
            port = \(device.port)
            group = behind
            [device r3]
            host = \(device.addresses[0])
            port = \(device.port)
            group = behind
            proxy-jump = none
            [device gone]
            host = 127.0.0.1
            port = \(closedPort)
            group = behind
            """
        }
        let conf = dir.appendingPathComponent("agent.conf").path
        try configuration(proxyJump: "\(bastion.user)@\(bastion.addresses[0]):\(bastion.port)").write(toFile: conf, atomically: true, encoding: .utf8)
        let run = try careAgent(["collect", "now", "--standalone", "--config", conf, "--json"], in: dir)
        #expect(run.status == 1, "\(run.out)\(run.err)")
        let results = try JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [[String: Any]] ?? []
        #expect(results.map { $0["status"] as? String } == ["ok", "ok", "ok", "failed"], "\(run.out)")
        // Nothing listens behind the bastion: it refuses the tunnel, the device is unreachable.
        #expect(results.last?["failure"] as? String == "unreachable")
        #expect((results.last?["reason"] as? String)?.contains("the jump host refused a tunnel to 127.0.0.1:\(closedPort)") == true, "\(run.out)")
        // r1 and r2 through one bastion login, r3 (proxy-jump = none) directly; each device with its own.
        #expect(bastion.log.components(separatedBy: "Accepted publickey for").count - 1 == 1, "\(bastion.log)")
        #expect(device.log.components(separatedBy: "Accepted publickey for").count - 1 == 3)

        // A bastion that is down: both devices unreachable, saying which jump host.
        bastion.stop()
        let down = try careAgent(["collect", "now", "--standalone", "--config", conf, "--device", "r1", "--json"], in: dir)
        #expect(down.status == 1)
        let failed = try JSONSerialization.jsonObject(with: Data(down.out.utf8)) as? [[String: Any]] ?? []
        #expect(failed.first?["failure"] as? String == "unreachable", "\(down.out)")
        #expect((failed.first?["reason"] as? String)?.hasPrefix("jump host \(bastion.user)@\(bastion.addresses[0]):\(bastion.port): ") == true, "\(down.out)")

        // A broken value is refused with its position.
        try configuration(proxyJump: "ops@bastion:99999").write(toFile: conf, atomically: true, encoding: .utf8)
        let broken = try careAgent(["collect", "now", "--standalone", "--config", conf, "--device", "NONE"], in: dir)
        #expect(broken.status == 2)
        #expect(broken.err.contains("agent.conf:11:14: expected jump hosts as user@host[:port]"), "\(broken.err)")
    }
}
