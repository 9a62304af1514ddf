import Crypto
import Foundation

/// A server host key: its algorithm name and the SSH wire-format blob.
public struct HostKey: Sendable, Equatable {
    public var type: String
    public var blob: [UInt8]

    public init(type: String, blob: [UInt8]) {
        self.type = type
        self.blob = blob
    }

    /// Reads the algorithm name from the blob (an SSH string at its start).
    public init?(blob: [UInt8]) {
        guard blob.count >= 4 else { return nil }
        let length = Int(blob[0]) << 24 | Int(blob[1]) << 16 | Int(blob[2]) << 8 | Int(blob[3])
        guard length > 0, length <= 64, blob.count >= 4 + length else { return nil }
        type = String(decoding: blob[4..<4 + length], as: UTF8.self)
        self.blob = blob
    }

    /// `SHA256:` and the unpadded base64 of the blob's SHA-256, as OpenSSH prints it.
    public var fingerprint: String {
        let digest = Data(SHA256.hash(data: blob)).base64EncodedString()
        return "SHA256:" + digest.replacingOccurrences(of: "=", with: "")
    }

    /// The key as a known_hosts / authorized_keys field pair: `ssh-ed25519 AAAA...`.
    public var openSSHText: String { "\(type) \(Data(blob).base64EncodedString())" }
}

/// How a known_hosts name is written for a host and port: `host` for 22, `[host]:port` otherwise
/// (OpenSSH semantics: a plain entry never matches a non-22 port).
public func knownHostsName(host: String, port: Int) -> String {
    port == 22 ? host : "[\(host)]:\(port)"
}

/// An OpenSSH known_hosts file: plain, `[host]:port`, wildcard, negated and hashed (`|1|salt|hash`)
/// entries, `@revoked` markers. `@cert-authority` lines are skipped (no certificate support).
public struct KnownHosts: Sendable {
    public struct Entry: Sendable, Equatable {
        public var line: Int
        public var patterns: [String]
        public var key: HostKey
        public var revoked: Bool
    }

    public let path: String
    public private(set) var entries: [Entry] = []

    /// Loads `path`; a missing file is an empty list (as for OpenSSH).
    public init(path: String) throws(SSHError) {
        var text = ""
        do {
            if FileManager.default.fileExists(atPath: path) {
                text = try String(contentsOfFile: path, encoding: .utf8)
            }
        } catch {
            throw .knownHostsUnreadable(path: path, message: error.localizedDescription)
        }
        self.init(path: path, text: text)
    }

    public init(path: String, text: String) {
        self.path = path
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var fields = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            var revoked = false
            if first.hasPrefix("@") {
                guard first == "@revoked" else { continue }
                revoked = true
                fields.removeFirst()
            }
            guard fields.count >= 3, let blob = Data(base64Encoded: fields[2]) else { continue }
            let key = HostKey(type: fields[1], blob: Array(blob))
            entries.append(Entry(line: index + 1, patterns: fields[0].split(separator: ",").map(String.init),
                                 key: key, revoked: revoked))
        }
    }

    /// Entries whose host patterns match `host` on `port`.
    public func entries(host: String, port: Int) -> [Entry] {
        let name = knownHostsName(host: host, port: port)
        return entries.filter { KnownHosts.matches(patterns: $0.patterns, name: name) }
    }

    /// Key types known for the host, in file order, to prefer in key exchange.
    public func knownKeyTypes(host: String, port: Int) -> [String] {
        var seen: [String] = []
        for entry in entries(host: host, port: port) where !entry.revoked && !seen.contains(entry.key.type) {
            seen.append(entry.key.type)
        }
        return seen
    }

    static func matches(patterns: [String], name: String) -> Bool {
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("|1|") {
                if hashedMatches(pattern, name: name) { matched = true }
            } else if pattern.hasPrefix("!") {
                if wildcardMatch(String(pattern.dropFirst()).lowercased(), name.lowercased()) { return false }
            } else if wildcardMatch(pattern.lowercased(), name.lowercased()) {
                matched = true
            }
        }
        return matched
    }

    /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
    static func hashedMatches(_ pattern: String, name: String) -> Bool {
        let parts = pattern.split(separator: "|", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[0] == "1",
              let salt = Data(base64Encoded: String(parts[1])),
              let expected = Data(base64Encoded: String(parts[2])) else { return false }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
        return Data(mac) == expected
    }

    /// OpenSSH glob: `*` any run, `?` one character.
    static func wildcardMatch(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars), t = Array(text.unicodeScalars)
        var pi = 0, ti = 0, starP = -1, starT = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) { pi += 1; ti += 1 }
            else if pi < p.count && p[pi] == "*" { starP = pi; starT = ti; pi += 1 }
            else if starP >= 0 { pi = starP + 1; starT += 1; ti = starT }
            else { return false }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// What to do with a server's host key. Strict by default; trust on first use only when configured.
public enum HostKeyPolicy: String, Sendable, CaseIterable {
    /// The key must be in known_hosts.
    case strict
    /// An unknown host's key is appended to known_hosts; a changed key is still refused.
    case acceptNew = "accept-new"
}

/// Checks host keys against a known_hosts file under a policy. Appends are serialised and atomic.
public struct HostKeyVerifier: Sendable {
    public var knownHostsPath: String
    public var policy: HostKeyPolicy

    public init(knownHostsPath: String, policy: HostKeyPolicy = .strict) {
        self.knownHostsPath = knownHostsPath
        self.policy = policy
    }

    /// Key types to prefer when negotiating with this host (those already known for it).
    public func preferredKeyTypes(host: String, port: Int) -> [String] {
        (try? KnownHosts(path: knownHostsPath))?.knownKeyTypes(host: host, port: port) ?? []
    }

    /// Accepts `key` for `host`:`port` or throws why not.
    public func verify(host: String, port: Int, key: HostKey) throws(SSHError) {
        let known = try KnownHosts(path: knownHostsPath)
        let entries = known.entries(host: host, port: port)
        let name = knownHostsName(host: host, port: port)
        if let revoked = entries.first(where: { $0.revoked && $0.key.blob == key.blob }) {
            throw .hostKeyRevoked(host: name, fingerprint: key.fingerprint, knownHostsFile: knownHostsPath, line: revoked.line)
        }
        let valid = entries.filter { !$0.revoked }
        if valid.contains(where: { $0.key.blob == key.blob }) { return }
        if let mismatch = valid.first(where: { $0.key.type == key.type }) ?? valid.first {
            throw .hostKeyChanged(host: name, knownHostsFile: knownHostsPath, line: mismatch.line,
                                  knownType: mismatch.key.type, knownFingerprint: mismatch.key.fingerprint,
                                  sentType: key.type, sentFingerprint: key.fingerprint)
        }
        guard policy == .acceptNew else {
            throw .hostKeyUnknown(host: name, keyType: key.type, fingerprint: key.fingerprint, knownHostsFile: knownHostsPath)
        }
        try KnownHostsWriter.append(name: name, key: key, to: knownHostsPath)
    }
}

extension KnownHosts {
    /// Records `key` for `host`:`port` in the known_hosts file at `path` (created when missing),
    /// unless it is there already; atomic, like the agent's own accept-new records.
    public static func record(_ key: HostKey, host: String, port: Int, in path: String) throws(SSHError) {
        try KnownHostsWriter.append(name: knownHostsName(host: host, port: port), key: key, to: path)
    }
}

/// Appends to known_hosts atomically (copy, append, fsync, rename) under a process-wide lock and
/// an flock on the file's directory entry, so that concurrent first connections lose no entry.
enum KnownHostsWriter {
    private static let lock = NSLock()

    static func append(name: String, key: HostKey, to path: String) throws(SSHError) {
        lock.lock()
        defer { lock.unlock() }
        let lockPath = path + ".lock"
        let lockFD = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        if lockFD >= 0 { flock(lockFD, LOCK_EX) }
        defer { if lockFD >= 0 { flock(lockFD, LOCK_UN); close(lockFD) } }
        // Re-read under the lock: another process may have added it meanwhile.
        if let current = try? KnownHosts(path: path),
           current.entries.contains(where: { KnownHosts.matches(patterns: $0.patterns, name: name) && $0.key.blob == key.blob }) {
            return
        }
        var content = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
        if let last = content.last, last != 0x0A { content.append(0x0A) }
        content.append(contentsOf: Array("\(name) \(key.openSSHText)\n".utf8))
        let directory = (path as NSString).deletingLastPathComponent
        let temp = (directory.isEmpty ? "." : directory) + "/.known_hosts.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .knownHostsUnreadable(path: path, message: "cannot create \(temp): \(String(cString: strerror(errno)))")
        }
        // Never readable by others. The replacement keeps the file's owner and group and its
        // group read: root recording keys (care-agent hosts scan) must not leave a file the
        // agent's own user can no longer read. A file root creates in a directory of another
        // owner or group (the agent's state directory, /etc/care-agent) is theirs, group-readable.
        var info = stat()
        if stat(path, &info) == 0 {
            _ = fchmod(fd, info.st_mode & 0o640)
            if geteuid() == 0 { _ = fchown(fd, info.st_uid, info.st_gid) }
        } else if geteuid() == 0, stat(directory.isEmpty ? "." : directory, &info) == 0,
                  info.st_uid != geteuid() || info.st_gid != getegid() {
            _ = fchown(fd, info.st_uid, info.st_gid)
            _ = fchmod(fd, 0o640)
        }
        let ok = content.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { return false }
                offset += n
            }
            return fsync(fd) == 0
        }
        close(fd)
        guard ok, rename(temp, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temp)
            throw .knownHostsUnreadable(path: path, message: "cannot write: \(message)")
        }
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    }
}
