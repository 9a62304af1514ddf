import Foundation
import SSH
import Testing
import TestSupport

/// `care-agent hosts scan`: the devices' host keys fetched with the agent's own SSH code, shown,
/// and recorded in known_hosts only when new and confirmed.
@Suite(.serialized) struct HostsScanCommandTests {
    func careAgent(_ arguments: [String], in dir: URL) throws -> (status: Int32, out: String, err: String) {
        let out = dir.appendingPathComponent("out-\(UUID().uuidString.prefix(4))").path
        let err = dir.appendingPathComponent("err-\(UUID().uuidString.prefix(4))").path
        let status = try ChildProcess(try careAgentExecutable(), arguments, stdout: out, stderr: err).wait()
        return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    @Test func scanShowsRecordsAndRefusesChangedKeys() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let closedPort = try SSHDHarness.freePort(on: "127.0.0.1")
        let inventory = dir.appendingPathComponent("inventory.csv").path
        try "name,host,port\nr1,\(h.addresses[0]),\(h.port)\ngone,127.0.0.1,\(closedPort)\n".write(toFile: inventory, atomically: true, encoding: .utf8)
        let knownHosts = dir.appendingPathComponent("known_hosts").path
        let scan = ["hosts", "scan", "--inventory", inventory, "--known-hosts", knownHosts, "--timeout", "5"]
        // The harness's own known_hosts holds the keys sshd really has (ed25519 and ecdsa).
        let truth = try KnownHosts(path: h.knownHostsPath).entries(host: h.addresses[0], port: h.port).map(\.key)
        try #require(truth.count == 2)

        // Not on a terminal and no --yes: shown, not recorded.
        let shown = try careAgent(scan + ["--device", "r1"], in: dir)
        #expect(shown.status == 1)
        for key in truth { #expect(shown.out.contains("\(key.fingerprint)  new"), "\(shown.out)") }
        #expect(shown.err.contains("2 new host keys not recorded"))
        #expect(!FileManager.default.fileExists(atPath: knownHosts))

        // Collecting before: the unknown key's failure points at the scan.
        let collect = ["collect", "now", "--standalone", "--inventory", inventory, "--device", "r1", "--user", h.user,
                       "--key", h.clientKeys["ed25519"]!, "--known-hosts", knownHosts, "--host-key-policy", "strict",
                       "--out", dir.appendingPathComponent("out").path, "--state", dir.appendingPathComponent("state").path]
        let refused = try careAgent(collect, in: dir)
        #expect(refused.status == 1)
        #expect(refused.out.contains("is not known") && refused.out.contains("care-agent hosts scan shows its fingerprints"), "\(refused.out)")

        // --yes records them; the unreachable device is reported and sets the exit status.
        let recorded = try careAgent(scan + ["--yes"], in: dir)
        #expect(recorded.status == 1)
        #expect(recorded.out.contains("gone 127.0.0.1:\(closedPort): FAILED: 127.0.0.1:\(closedPort): connection refused"), "\(recorded.out)")
        #expect(recorded.out.contains("recorded 2 host keys in \(knownHosts)"), "\(recorded.out)")
        let written = try KnownHosts(path: knownHosts).entries(host: h.addresses[0], port: h.port).map(\.key)
        #expect(Set(written.map(\.fingerprint)) == Set(truth.map(\.fingerprint)))

        // Again: known, nothing to do.
        let again = try careAgent(scan + ["--device", "r1"], in: dir)
        #expect(again.status == 0, "\(again.out)\(again.err)")
        #expect(again.out.contains("no new host keys"))
        for key in truth { #expect(again.out.contains("\(key.fingerprint)  known")) }

        // The recorded file is what strict host-key checking needs.
        let collected = try careAgent(collect, in: dir)
        #expect(collected.status == 0, "\(collected.out)\(collected.err)")

        // A different ed25519 key on file for the device: CHANGED, never recorded, exit 1.
        let other = dir.appendingPathComponent("other_key").path
        #expect(try ChildProcess("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]).wait() == 0)
        let otherKey = try String(contentsOfFile: other + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        let changedFile = "[\(h.addresses[0])]:\(h.port) \(otherKey)\n"
        try changedFile.write(toFile: knownHosts, atomically: true, encoding: .utf8)
        let changed = try careAgent(scan + ["--device", "r1", "--yes"], in: dir)
        #expect(changed.status == 1)
        #expect(changed.out.contains("CHANGED: line 1 has SHA256:"), "\(changed.out)")
        // The ecdsa key is new and recorded; the changed ed25519 line stays as it was.
        let after = try String(contentsOfFile: knownHosts, encoding: .utf8)
        #expect(after.hasPrefix(changedFile))
        #expect(!after.contains(truth.first { $0.type == "ssh-ed25519" }!.openSSHText))
    }

    /// Behind a jump host: the bastion's keys first (a tunnel needs them), then the device's,
    /// fetched through the bastion.
    @Test func scanThroughAJumpHost() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let device = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { device.stop() }
        let bastion = try SSHDHarness(.init(subsystem: "/bin/false"))
        defer { bastion.stop() }
        let knownHosts = dir.appendingPathComponent("known_hosts").path
        let conf = dir.appendingPathComponent("agent.conf").path
        try """
        [defaults]
        user = \(device.user)
        key-file = \(device.clientKeys["ed25519"]!)
        known-hosts = \(knownHosts)
        proxy-jump = \(bastion.user)@\(bastion.addresses[0]):\(bastion.port)
        proxy-jump-key-file = \(bastion.clientKeys["ed25519"]!)
        [device r1]
        host = \(device.addresses[0])
        port = \(device.port)
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let scan = try careAgent(["hosts", "scan", "--config", conf, "--yes", "--timeout", "5"], in: dir)
        #expect(scan.status == 0, "\(scan.out)\(scan.err)")
        let hop = "jump host \(bastion.user)@\(bastion.addresses[0]):\(bastion.port) \(bastion.addresses[0]):\(bastion.port)"
        let hopLine = try #require(scan.out.range(of: hop), "\(scan.out)")
        let deviceLine = try #require(scan.out.range(of: "r1 \(device.addresses[0]):\(device.port)"), "\(scan.out)")
        #expect(hopLine.lowerBound < deviceLine.lowerBound)
        let known = try KnownHosts(path: knownHosts)
        let bastionKeys = try KnownHosts(path: bastion.knownHostsPath).entries(host: bastion.addresses[0], port: bastion.port).map(\.key.fingerprint)
        let deviceKeys = try KnownHosts(path: device.knownHostsPath).entries(host: device.addresses[0], port: device.port).map(\.key.fingerprint)
        #expect(Set(known.entries(host: bastion.addresses[0], port: bastion.port).map(\.key.fingerprint)) == Set(bastionKeys))
        #expect(Set(known.entries(host: device.addresses[0], port: device.port).map(\.key.fingerprint)) == Set(deviceKeys))
        // The device's keys came through the bastion (one login per tunnelled handshake's session).
        #expect(bastion.log.contains("Accepted publickey for \(bastion.user)"), "\(bastion.log)")
    }

    @Test func keysAreRecordedKeepingTheFilesOwnerAndMode() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("known_hosts").path
        try "".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o640)
        if getuid() == 0 { chown(path, 65534, 65534) }
        try KnownHosts.record(HostKey(type: "ssh-ed25519", blob: Array(Data(base64Encoded: "AAAAC3NzaC1lZDI1NTE5AAAAIH1UdIlyIFhfHEJnf3uXXg87opgNK24DyIFm3nYjjdpe")!)),
                              host: "192.0.2.1", port: 830, in: path)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o640)
        if getuid() == 0 { #expect(info.st_uid == 65534 && info.st_gid == 65534) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "[192.0.2.1]:830 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH1UdIlyIFhfHEJnf3uXXg87opgNK24DyIFm3nYjjdpe\n")
    }
}
