import Crypto
import Foundation
import Logging
import Testing
@testable import SSH

/// known_hosts parsing and matching with OpenSSH's semantics.
@Suite struct KnownHostsTests {
    // Two real ed25519 public key blobs (from ssh-keygen) and one ecdsa.
    static let keyA = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C7okWi0dh2l9GKJl"
    static let keyB = "AAAAC3NzaC1lZDI1NTE5AAAAIJLC0b/X1bR7oUOGNvV8Zla1HcQvuQ0yU+N7Szy2DdcI"
    static func key(_ base64: String) -> HostKey { HostKey(blob: Array(Data(base64Encoded: base64)!))! }

    /// A key accepted on first use that cannot be written says so (it said "cannot read").
    /// A known_hosts path that does not exist (a typo, never created) is what the message names.
    @Test func anUnknownKeyAgainstAMissingFileSaysTheFileIsMissing() {
        let missing = SSHError.hostKeyUnknown(host: "r1", keyType: "ssh-ed25519", fingerprint: "SHA256:x", knownHostsFile: "/nonexistent/kh")
        #expect(missing.description.contains("the known_hosts file /nonexistent/kh does not exist (check known-hosts in agent.conf or --known-hosts"), "\(missing)")
        let present = SSHError.hostKeyUnknown(host: "r1", keyType: "ssh-ed25519", fingerprint: "SHA256:x", knownHostsFile: "/etc/hostname")
        #expect(present.description.contains("which is not in /etc/hostname"), "\(present)")
    }

    @Test func aKeyThatCannotBeAddedSaysSo() {
        let path = "/nonexistent-\(UUID().uuidString)/known_hosts"
        do {
            try KnownHostsWriter.append(name: "[192.0.2.1]:830", key: Self.key(Self.keyA), to: path)
            Issue.record("appended to \(path)")
        } catch {
            #expect("\(error)".hasPrefix("cannot add the host key to known_hosts file \(path) (the file is unchanged): cannot open the lock file \(path).lock"),
                    "\(error)")
        }
    }

    /// Root recording a key (hosts scan) in the agent's directory leaves the lock file to the
    /// directory's owner, as the file itself: the agent's user could not open a root:root 0600
    /// lock read-write, and every later accept-new record failed.
    @Test(.enabled(if: geteuid() == 0, "needs root to give a file away"))
    func rootLeavesTheLockFileToTheDirectorysOwner() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("known-hosts-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(chown(dir, 65534, 65534) == 0)
        try KnownHostsWriter.append(name: "[192.0.2.1]:830", key: Self.key(Self.keyA), to: dir + "/known_hosts")
        for file in ["known_hosts", "known_hosts.lock"] {
            var info = stat()
            #expect(stat(dir + "/" + file, &info) == 0)
            #expect(info.st_uid == 65534 && info.st_gid == 65534, "\(file): \(info.st_uid):\(info.st_gid)")
            #expect(info.st_mode & 0o007 == 0, "\(file): nothing for others")
        }
        // A lock the directory's owner planted as a hard link to a file of root's is not given away.
        let rootsFile = FileManager.default.temporaryDirectory.appendingPathComponent("roots-\(UUID().uuidString)").path
        try "root's own\n".write(toFile: rootsFile, atomically: true, encoding: .utf8)
        chmod(rootsFile, 0o600)
        defer { unlink(rootsFile) }
        unlink(dir + "/known_hosts.lock")
        #expect(link(rootsFile, dir + "/known_hosts.lock") == 0)
        try KnownHostsWriter.append(name: "[192.0.2.2]:830", key: Self.key(Self.keyB), to: dir + "/known_hosts")
        var planted = stat()
        #expect(stat(rootsFile, &planted) == 0 && planted.st_uid == 0 && planted.st_mode & 0o777 == 0o600, "root's file was given away")
    }

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
        // Malformed lines are skipped, each reported with its line; comments and @cert-authority are not malformed.
        #expect(hosts.skipped.map(\.line) == [4, 5])
        #expect(hosts.skipped.map(\.description) == ["line 4: the key is not valid base64 SSH key data",
                                                     "line 5: the key is not valid base64 SSH key data"])
    }

    /// OpenSSH lowercases the host name before hashing (HashKnownHosts) and matching.
    @Test func hashedEntriesMatchMixedCaseHostNames() {
        let hosts = KnownHosts(path: "kh", text: "\(Self.hashed("core1.example.net")) ssh-ed25519 \(Self.keyA)\n\(Self.hashed("[edge1.example.net]:830")) ssh-ed25519 \(Self.keyB)\n")
        #expect(hosts.entries(host: "Core1.Example.NET", port: 22).first?.key == Self.key(Self.keyA))
        #expect(hosts.entries(host: "EDGE1.example.net", port: 830).first?.key == Self.key(Self.keyB))
        // And a mixed-case plain entry matches a lower-case name.
        #expect(KnownHosts(path: "kh", text: "Core2.Example.net ssh-ed25519 \(Self.keyA)\n").entries(host: "core2.example.net", port: 22).count == 1)
    }

    @Test func crlfLinesAreRead() {
        let hosts = KnownHosts(path: "kh", text: "# saved on Windows\r\nr1 ssh-ed25519 \(Self.keyA)\r\n[r2]:830 ssh-ed25519 \(Self.keyB)\r\n")
        #expect(hosts.skipped.isEmpty)
        #expect(hosts.entries(host: "r1", port: 22).first?.key == Self.key(Self.keyA))
        #expect(hosts.entries(host: "r2", port: 830).first?.line == 3)
    }

    @Test func bracketedIPv6Hosts() {
        let text = "[::1]:830 ssh-ed25519 \(Self.keyA)\n2001:db8::7 ssh-ed25519 \(Self.keyB)\n[2001:db8::9]:830,[2001:db8::10]:830 ssh-ed25519 \(Self.keyB)\n"
        let hosts = KnownHosts(path: "kh", text: text)
        #expect(hosts.skipped.isEmpty)
        #expect(hosts.entries(host: "::1", port: 830).first?.key == Self.key(Self.keyA))
        #expect(hosts.entries(host: "[::1]", port: 830).first?.key == Self.key(Self.keyA))  // as written in a URL or inventory
        #expect(hosts.entries(host: "::1", port: 22).isEmpty)
        #expect(hosts.entries(host: "2001:DB8::7", port: 22).first?.line == 2)
        #expect(hosts.entries(host: "2001:db8::10", port: 830).first?.line == 3)
        #expect(KnownHosts.lookupName(host: "[2001:DB8::9]", port: 830) == "[2001:db8::9]:830")
    }

    @Test func oneBadLineDoesNotHideTheOthers() throws {
        let (v, path) = try verifier("r1 ssh-ed25519 \(Self.keyA)\n[r2]:830 ssh-ed25519\n[r3]:830 ssh-rsa \(Self.keyA)\n@bogus r4 ssh-ed25519 \(Self.keyA)\n[r5]:830 ssh-ed25519 \(Self.keyB)\n")
        try v.verify(host: "r5", port: 830, key: Self.key(Self.keyB))
        try v.verify(host: "r1", port: 22, key: Self.key(Self.keyA))
        let hosts = try KnownHosts(path: path)
        #expect(hosts.skipped == [
            KnownHosts.SkippedLine(line: 2, reason: "expected host patterns, key type and base64 key"),
            KnownHosts.SkippedLine(line: 3, reason: "key type ssh-rsa does not match the key data (ssh-ed25519)"),
            KnownHosts.SkippedLine(line: 4, reason: "unknown marker @bogus"),
        ])
    }

    /// A bad line is a warning naming the file and line, once per parse, not once per connection.
    @Test func aBadLineIsLoggedOnceWithItsLine() throws {
        let (v, path) = try verifier("[r1]:830 ssh-ed25519 \(Self.keyA)\n[r2]:830 ssh-ed25519 AAAA-broken\n")
        let records = LogRecords()
        let logger = Logger(label: "test") { _ in RecordingLogHandler(records: records) }
        for _ in 0..<5 { try v.verify(host: "r1", port: 830, key: Self.key(Self.keyA), logger: logger) }
        let warnings = records.all.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        #expect(warnings.first?.message == "known_hosts line skipped")
        #expect(warnings.first?.metadata == ["file": "\(path)", "line": "2", "reason": "the key is not valid base64 SSH key data"])
    }

    /// Issue 13: known_hosts is parsed once, not per connection; it is parsed again when it changes.
    @Test func parsedOnceAndAgainOnlyWhenTheFileChanges() throws {
        var text = ""
        for i in 0..<2000 { text += "[10.1.\(i / 250).\(i % 250)]:830 ssh-ed25519 \(Self.keyA)\n" }
        let (v, path) = try verifier(text)
        for i in 0..<2000 { try v.verify(host: "10.1.\(i / 250).\(i % 250)", port: 830, key: Self.key(Self.keyA)) }
        #expect(KnownHostsCache.shared.parseCount(path) == 1)
        // Edited by hand (a new file, as editors write): the next connection sees the change.
        try (text + "[10.9.9.9]:830 ssh-ed25519 \(Self.keyB)\n").write(toFile: path, atomically: true, encoding: .utf8)
        try v.verify(host: "10.9.9.9", port: 830, key: Self.key(Self.keyB))
        #expect(KnownHostsCache.shared.parseCount(path) == 2)
        // Appended in place (same inode, new size).
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("[10.9.9.8]:830 ssh-ed25519 \(Self.keyB)\n".utf8))
        try handle.close()
        try v.verify(host: "10.9.9.8", port: 830, key: Self.key(Self.keyB))
        #expect(KnownHostsCache.shared.parseCount(path) == 3)
        // After an accept-new append, the new entry is known without another append.
        let acceptNew = HostKeyVerifier(knownHostsPath: path, policy: .acceptNew)
        try acceptNew.verify(host: "10.9.9.7", port: 830, key: Self.key(Self.keyA))
        try v.verify(host: "10.9.9.7", port: 830, key: Self.key(Self.keyA))
        #expect(try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "10.9.9.7").count == 2)
        #expect(KnownHostsCache.shared.parseCount(path) == 4)
        for _ in 0..<100 { try v.verify(host: "10.1.0.1", port: 830, key: Self.key(Self.keyA)) }
        #expect(KnownHostsCache.shared.parseCount(path) == 4)
    }

    /// An in-place rewrite of the same size right after a lookup is seen. (Where file times are
    /// coarse, it can even have the same stamp: the cache also compares the bytes of versions
    /// younger than `racyWindow`, so it is seen there too.)
    @Test func aSameSizeRewriteInPlaceIsSeen() throws {
        let (strict, path) = try verifier("[r1]:830 ssh-ed25519 \(Self.keyA)\n")
        try strict.verify(host: "r1", port: 830, key: Self.key(Self.keyA))
        // Device replaced and its entry updated at once: same length, same inode, same tick.
        let fd = open(path, O_WRONLY)
        let replacement = Array("[r1]:830 ssh-ed25519 \(Self.keyB)\n".utf8)
        #expect(pwrite(fd, replacement, replacement.count, 0) == replacement.count)
        close(fd)
        try strict.verify(host: "r1", port: 830, key: Self.key(Self.keyB))
        #expect(throws: SSHError.self) { try strict.verify(host: "r1", port: 830, key: Self.key(Self.keyA)) }
    }

    /// accept-new re-reads the file under its lock: a second, different key for a host that
    /// another connection (or process) just recorded is refused, never added beside it.
    @Test func acceptNewRefusesASecondDifferentKeyForTheSameHost() async throws {
        let (v, path) = try verifier("", policy: .acceptNew)
        // Both see an unknown host; the one that appends second must be refused.
        try KnownHostsWriter.append(name: "[r7]:830", key: Self.key(Self.keyA), to: path)
        #expect {
            try KnownHostsWriter.append(name: "[r7]:830", key: Self.key(Self.keyB), to: path)
        } throws: { error in
            guard case let SSHError.hostKeyChanged(host, _, line, _, known, _, sent) = error else { return false }
            return host == "[r7]:830" && line == 1 && known == Self.key(Self.keyA).fingerprint && sent == Self.key(Self.keyB).fingerprint
        }
        // Racing connections with two keys for one new host: exactly one key is recorded.
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<16 {
                group.addTask {
                    do { try v.verify(host: "r8", port: 830, key: Self.key(i % 2 == 0 ? Self.keyA : Self.keyB)); return true } catch { return false }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("[r8]:830 ") }
        #expect(lines.count == 1)
        #expect(outcomes.filter { $0 }.count == 8)
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

/// Log records kept for assertions.
final class LogRecords: @unchecked Sendable {
    struct Record { var level: Logger.Level; var message: String; var metadata: [String: String] }
    private let lock = NSLock()
    private var records: [Record] = []
    func append(_ record: Record) { lock.lock(); records.append(record); lock.unlock() }
    var all: [Record] { lock.lock(); defer { lock.unlock() }; return records }
}

struct RecordingLogHandler: LogHandler {
    let records: LogRecords
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let merged = self.metadata.merging(metadata ?? [:]) { $1 }.mapValues { "\($0)" }
        records.append(.init(level: level, message: "\(message)", metadata: merged))
    }
}
