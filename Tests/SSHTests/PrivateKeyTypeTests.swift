import Foundation
@testable import SSH
import Testing
import TestSupport

/// The algorithm of a private key file, read without its passphrase, for authentication hints.
@Suite struct PrivateKeyTypeTests {
    func keygen(_ dir: URL, _ name: String, _ arguments: [String]) throws -> String {
        let path = dir.appendingPathComponent(name).path
        let status = try ChildProcess("/usr/bin/ssh-keygen", ["-q", "-f", path, "-C", name] + arguments).wait()
        try #require(status == 0)
        return path
    }

    @Test func readsOpenSSHAndPEMKeys() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(PrivateKeyType.of(file: try keygen(dir, "ed", ["-t", "ed25519", "-N", ""])) == "ssh-ed25519")
        // Encrypted: the public half stays readable.
        #expect(PrivateKeyType.of(file: try keygen(dir, "ed-pass", ["-t", "ed25519", "-N", "secret words"])) == "ssh-ed25519")
        #expect(PrivateKeyType.of(file: try keygen(dir, "rsa", ["-t", "rsa", "-b", "2048", "-N", ""])) == "ssh-rsa")
        #expect(PrivateKeyType.of(file: try keygen(dir, "rsa-pem", ["-t", "rsa", "-b", "2048", "-N", "", "-m", "PEM"])) == "ssh-rsa")
        #expect(PrivateKeyType.of(file: try keygen(dir, "ec", ["-t", "ecdsa", "-N", ""])) == "ecdsa-sha2-nistp256")
    }

    @Test func brokenInputIsNoType() {
        #expect(PrivateKeyType.of(text: "") == nil)
        #expect(PrivateKeyType.of(text: "-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64!\n-----END OPENSSH PRIVATE KEY-----\n") == nil)
        // Valid base64, lengths pointing past the end.
        let truncated = Data("openssh-key-v1\0".utf8 + [0xff, 0xff, 0xff, 0xff]).base64EncodedString()
        #expect(PrivateKeyType.of(text: "-----BEGIN OPENSSH PRIVATE KEY-----\n\(truncated)\n-----END OPENSSH PRIVATE KEY-----\n") == nil)
        #expect(PrivateKeyType.of(file: "/nonexistent/key") == nil)
    }
}

/// Connection refused names the likely cause on Junos.
@Suite struct ConnectionRefusedHintTests {
    @Test func port830SaysHowToTurnNETCONFOn() {
        let text = SSHError.connectionRefused(peer: "192.0.2.1:830", port: 830).description
        #expect(text.hasPrefix("192.0.2.1:830: connection refused (nothing listens on port 830"))
        #expect(text.contains("set system services netconf ssh"))
        #expect(text.contains("port = 22"))
        #expect(SSHError.connectionRefused(peer: "r1:2830", port: 2830).description.contains("check the port"))
    }
}
