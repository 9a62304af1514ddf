import Crypto
import Foundation
import SSH
import Testing

/// known_hosts parsing and matching with OpenSSH's semantics.
@Suite struct KnownHostsTests {
    // Two real ed25519 public key blobs (from ssh-keygen) and one ecdsa.
    static let keyA = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C7okWi0dh2l9GKJl"
    static let keyB = "AAAAC3NzaC1lZDI1NTE5AAAAIJLC0b/X1bR7oUOGNvV8Zla1HcQvuQ0yU+N7Szy2DdcI"
    static func key(_ base64: String) -> HostKey { HostKey(blob: Array(Data(base64Encoded: base64)!))! }

    /// `|1|salt|hash` as OpenSSH's HashKnownHosts writes it.
    static func hashed(_ name: String, salt: [UInt8] = Array(repeating: 7, count: 20)) -> String {
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
        return "|1|\(Data(salt).base64EncodedString())|\(Data(mac).base64EncodedString())"
    }

    @Test func keyTypeAndFingerprintAsOpenSSHPrintsThem() throws {
        let k = Self.key(Self.keyA)
        #expect(k.type == "ssh-ed25519")
        // ssh-keygen -lf prints SHA256 of the blob, base64 without padding.
        let expected = "SHA256:" + Data(SHA256.hash(data: Data(base64Encoded: Self.keyA)!)).base64EncodedString().replacingOccurrences(of: "=", with: "")
        #expect(k.fingerprint == expected)
        #expect(!k.fingerprint.hasSuffix("="))
    }

    @Test func plainEntryMatchesPort22Only() {
        let hosts = KnownHosts(path: "kh", text: "router1,192.0.2.1 ssh-ed25519 \(Self.keyA)\n")
        #expect(hosts.entries(host: "192.0.2.1", port: 22).count == 1)
        #expect(hosts.entries(host: "ROUTER1", port: 22).count == 1)
        // libssh2's own matcher accepts this for another port; OpenSSH does not, and neither do we.
        #expect(hosts.entries(host: "192.0.2.1", port: 830).isEmpty)
    }

    @Test func bracketedPortEntry() {
        let hosts = KnownHosts(path: "kh", text: "[192.0.2.1]:830 ssh-ed25519 \(Self.keyA)\n")
        #expect(hosts.entries(host: "192.0.2.1", port: 830).count == 1)
        #expect(hosts.entries(host: "192.0.2.1", port: 22).isEmpty)
        #expect(hosts.entries(host: "192.0.2.1", port: 8300).isEmpty)
    }

    @Test func hashedEntries() {
        let text = """
        # hashed, as with HashKnownHosts yes
        \(Self.hashed("[192.0.2.7]:830")) ssh-ed25519 \(Self.keyA)
        \(Self.hashed("core1.example.net")) ssh-ed25519 \(Self.keyB)
        """
        let hosts = KnownHosts(path: "kh", text: text)
        #expect(hosts.entries(host: "192.0.2.7", port: 830).first?.key == Self.key(Self.keyA))
        #expect(hosts.entries(host: "192.0.2.7", port: 22).isEmpty)
        #expect(hosts.entries(host: "core1.example.net", port: 22).first?.line == 3)
        #expect(hosts.entries(host: "core2.example.net", port: 22).isEmpty)
    }

    @Test func wildcardsAndNegation() {
        let hosts = KnownHosts(path: "kh", text: "*.lab.example.net,!bad.lab.example.net ssh-ed25519 \(Self.keyA)\n[10.0.0.?]:830 ssh-ed25519 \(Self.keyB)\n")
        #expect(hosts.entries(host: "r1.lab.example.net", port: 22).count == 1)
        #expect(hosts.entries(host: "bad.lab.example.net", port: 22).isEmpty)
        #expect(hosts.entries(host: "10.0.0.5", port: 830).count == 1)
        #expect(hosts.entries(host: "10.0.0.55", port: 830).isEmpty)
    }

    @Test func commentsBlankLinesCertAuthorityAndGarbageAreSkipped() {
        let text = "\n# comment\n@cert-authority *.example.net ssh-ed25519 \(Self.keyA)\nnot a valid line\nhost ssh-ed25519 !!!notbase64\nhost ssh-ed25519 \(Self.keyB) trailing comment\n"
        let hosts = KnownHosts(path: "kh", text: text)
        #expect(hosts.entries.count == 1)
        #expect(hosts.entries.first?.line == 6)
    }

    func verifier(_ text: String, policy: HostKeyPolicy = .strict) throws -> (HostKeyVerifier, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kh-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("known_hosts").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (HostKeyVerifier(knownHostsPath: path, policy: policy), path)
    }

    @Test func revokedKeyIsRefusedEvenWhenAlsoListed() throws {
        let (v, path) = try verifier("@revoked * ssh-ed25519 \(Self.keyA)\n[r1]:830 ssh-ed25519 \(Self.keyA)\n")
        #expect(throws: SSHError.hostKeyRevoked(host: "[r1]:830", fingerprint: Self.key(Self.keyA).fingerprint, knownHostsFile: path, line: 1)) {
            try v.verify(host: "r1", port: 830, key: Self.key(Self.keyA))
        }
    }

    @Test func changedKeyNamesTheLineAndBothFingerprints() throws {
        let (v, path) = try verifier("# first line\n[r1]:830 ssh-ed25519 \(Self.keyA)\n", policy: .acceptNew)
        #expect {
            try v.verify(host: "r1", port: 830, key: Self.key(Self.keyB))
        } throws: { error in
            "\(error)" == "host key for [r1]:830 has changed: \(path) line 2 has \(Self.key(Self.keyA).fingerprint), the server sent \(Self.key(Self.keyB).fingerprint) (possible man-in-the-middle, or the device was replaced: verify, then remove the old entry)"
        }
        // accept-new never replaces a changed key.
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "# first line\n[r1]:830 ssh-ed25519 \(Self.keyA)\n")
    }

    @Test func acceptNewAppendsOnceAndKeepsExistingLines() async throws {
        let (v, path) = try verifier("r0 ssh-ed25519 \(Self.keyB)", policy: .acceptNew) // no trailing newline
        chmod(path, 0o644)
        // Many first connections at once: one entry per host, none lost.
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                group.addTask {
                    do { try v.verify(host: "r\(i % 10 + 1)", port: 830, key: Self.key(Self.keyA)) } catch { Issue.record("\(error)") }
                }
            }
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "r0 ssh-ed25519 \(Self.keyB)")
        #expect(lines.count == 11)
        #expect(Set(lines.dropFirst()).count == 10)
        // Rewritten never readable by others (the file was 0644), its group read kept: root may
        // record keys in a file the agent reads through its group.
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o007 } == 0)
        #expect(mode == 0o640)
        // Now known: strict accepts.
        try HostKeyVerifier(knownHostsPath: path, policy: .strict).verify(host: "r3", port: 830, key: Self.key(Self.keyA))
    }

    @Test func strictRefusesUnknownHost() throws {
        let (v, path) = try verifier("")
        #expect(throws: SSHError.hostKeyUnknown(host: "[r9]:830", keyType: "ssh-ed25519", fingerprint: Self.key(Self.keyA).fingerprint, knownHostsFile: path)) {
            try v.verify(host: "r9", port: 830, key: Self.key(Self.keyA))
        }
    }
}
