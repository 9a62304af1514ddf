import Crypto
import Foundation
import Logging

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
/// Parsed once into an index: a plain host name is a dictionary lookup; only wildcard, negated
/// and hashed entries are tried one by one.
///
/// Matching follows OpenSSH: the host name is lowercased before it is matched or hashed (so a
/// hashed entry written for `Router1` is found), a bracketed address (`[::1]`) is taken without
/// its brackets, CRLF line ends are accepted, and a malformed line is skipped and reported in
/// ``skipped`` (the rest of the file still counts).
public struct KnownHosts: Sendable {
    public struct Entry: Sendable, Equatable {
        public var line: Int
        public var patterns: [String]
        public var key: HostKey
        public var revoked: Bool
    }

    /// A line that was not understood and is ignored, with why.
    public struct SkippedLine: Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Files larger than this are refused rather than parsed (a fleet of 100,000 devices with
    /// three keys each is about 40 MB).
    public static let maximumFileSize = 64 << 20

    public let path: String
    public private(set) var entries: [Entry] = []
    public private(set) var skipped: [SkippedLine] = []
    /// Lowercased plain name (`router1`, `[192.0.2.1]:830`) → indices into `entries`, for entries
    /// made only of plain names.
    private var byName: [String: [Int]] = [:]
    /// Entries with a wildcard, negated or hashed pattern: each is tried against the name.
    private var scanned: [Int] = []

    /// Loads `path`; a missing file is an empty list (as for OpenSSH).
    public init(path: String) throws(SSHError) {
        let bytes = try KnownHostsFile.read(path).bytes
        self.init(path: path, bytes: bytes)
    }

    public init(path: String, text: String) {
        self.init(path: path, bytes: Array(text.utf8))
    }

    public init(path: String, bytes: [UInt8]) {
        self.path = path
        var lineNumber = 0
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = rawLine[...]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            parse(line, number: lineNumber)
        }
    }

    private mutating func parse(_ line: ArraySlice<UInt8>, number: Int) {
        let isBlank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        var fields = line.split(whereSeparator: isBlank).map { String(decoding: $0, as: UTF8.self) }
        guard let first = fields.first, !first.hasPrefix("#") else { return }
        var revoked = false
        if first.hasPrefix("@") {
            switch first {
            case "@revoked":
                revoked = true
                fields.removeFirst()
            case "@cert-authority":
                return  // valid, but host certificates are not supported: nothing to match
            default:
                skipped.append(SkippedLine(line: number, reason: "unknown marker \(first)"))
                return
            }
        }
        guard fields.count >= 3 else {
            skipped.append(SkippedLine(line: number, reason: "expected host patterns, key type and base64 key"))
            return
        }
        guard let blob = Data(base64Encoded: fields[2]), let key = HostKey(blob: Array(blob)) else {
            skipped.append(SkippedLine(line: number, reason: "the key is not valid base64 SSH key data"))
            return
        }
        guard key.type == fields[1] else {
            skipped.append(SkippedLine(line: number, reason: "key type \(fields[1]) does not match the key data (\(key.type))"))
            return
        }
        let patterns = fields[0].split(separator: ",").map(String.init)
        if let bad = patterns.first(where: { $0.hasPrefix("|") && HashedName(pattern: $0) == nil }) {
            skipped.append(SkippedLine(line: number, reason: "malformed hashed host name \(bad)"))
            return
        }
        let index = entries.count
        entries.append(Entry(line: number, patterns: patterns, key: key, revoked: revoked))
        if patterns.allSatisfy(KnownHosts.isPlain) {
            for pattern in Set(patterns.map { $0.lowercased() }) { byName[pattern, default: []].append(index) }
        } else {
            scanned.append(index)
        }
    }

    private static func isPlain(_ pattern: String) -> Bool {
        !pattern.hasPrefix("|") && !pattern.hasPrefix("!") && !pattern.contains("*") && !pattern.contains("?")
    }

    /// The name known_hosts lines are matched against, as OpenSSH forms it: lowercased, without
    /// brackets around an address, `[host]:port` for a port other than 22.
    public static func lookupName(host: String, port: Int) -> String {
        var host = host.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return knownHostsName(host: host, port: port)
    }

    /// Entries whose host patterns match `host` on `port`, in file order.
    public func entries(host: String, port: Int) -> [Entry] {
        entries(named: KnownHosts.lookupName(host: host, port: port))
    }

    /// Entries matching an already formed lookup name (``lookupName(host:port:)``).
    func entries(named name: String) -> [Entry] {
        var candidates = byName[name] ?? []
        if !scanned.isEmpty {
            candidates += scanned.filter { KnownHosts.matches(patterns: entries[$0].patterns, name: name) }
            candidates.sort()
        }
        return candidates.map { entries[$0] }
    }

    /// Key types known for the host, in file order, to prefer in key exchange.
    public func knownKeyTypes(host: String, port: Int) -> [String] {
        KnownHosts.keyTypes(of: entries(host: host, port: port))
    }

    static func keyTypes(of entries: [Entry]) -> [String] {
        var seen: [String] = []
        for entry in entries where !entry.revoked && !seen.contains(entry.key.type) {
            seen.append(entry.key.type)
        }
        return seen
    }

    /// What the file says about `key` for a host, from its matching entries.
    enum Verdict: Equatable {
        case known
        case revoked(line: Int)
        case changed(Entry)
        case unknown
    }

    static func verdict(for key: HostKey, among entries: [Entry]) -> Verdict {
        if let revoked = entries.first(where: { $0.revoked && $0.key.blob == key.blob }) { return .revoked(line: revoked.line) }
        let valid = entries.filter { !$0.revoked }
        if valid.contains(where: { $0.key.blob == key.blob }) { return .known }
        if let mismatch = valid.first(where: { $0.key.type == key.type }) ?? valid.first { return .changed(mismatch) }
        return .unknown
    }

    /// `name` must already be lowercased (``lookupName(host:port:)``).
    static func matches(patterns: [String], name: String) -> Bool {
        var matched = false
        for pattern in patterns {
            if pattern.hasPrefix("|") {
                if HashedName(pattern: pattern)?.matches(name) == true { matched = true }
            } else if pattern.hasPrefix("!") {
                if wildcardMatch(String(pattern.dropFirst()).lowercased(), name) { return false }
            } else if wildcardMatch(pattern.lowercased(), name) {
                matched = true
            }
        }
        return matched
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

/// A hashed known_hosts name, `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as OpenSSH's
/// HashKnownHosts writes it (of the lowercased name).
struct HashedName {
    var salt: SymmetricKey
    var digest: Data

    init?(pattern: String) {
        let parts = pattern.split(separator: "|", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[0] == "1",
              let salt = Data(base64Encoded: String(parts[1])), salt.count == 20,
              let digest = Data(base64Encoded: String(parts[2])), digest.count == 20 else { return nil }
        self.salt = SymmetricKey(data: salt)
        self.digest = digest
    }

    func matches(_ name: String) -> Bool {
        Data(HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: salt)) == digest
    }
}

/// What identifies one version of a file (device, inode, size, modification and change times):
/// the same stamp means the same bytes, owner and mode (a write, chmod, chown or replacement
/// changes one of them). For what is read once and again only when its file changes.
public struct FileStamp: Equatable, Sendable {
    public var device: UInt64, inode: UInt64, size: Int64
    public var modified: timespec, changed: timespec

    public static let missing = FileStamp(device: 0, inode: 0, size: -1, modified: timespec(), changed: timespec())

    /// The stamp of `path` now; ``missing`` when it cannot be stat'ed.
    public static func of(_ path: String) -> FileStamp {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        return FileStamp(info)
    }

    public static func == (a: FileStamp, b: FileStamp) -> Bool {
        a.device == b.device && a.inode == b.inode && a.size == b.size
            && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
            && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
    }
}

/// Reading a known_hosts file, and the stamp of the version read.
enum KnownHostsFile {
    /// The stamp of `path` now (``FileStamp/missing`` when there is no file).
    static func stamp(_ path: String) throws(SSHError) -> FileStamp {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return .missing }
            throw .knownHostsUnreadable(path: path, message: String(cString: strerror(errno)))
        }
        return FileStamp(info)
    }

    /// The bytes of `path` and the stamp of exactly those bytes; a missing file is empty.
    static func read(_ path: String) throws(SSHError) -> (bytes: [UInt8], stamp: FileStamp) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return ([], .missing) }
            throw .knownHostsUnreadable(path: path, message: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .knownHostsUnreadable(path: path, message: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .knownHostsUnreadable(path: path, message: "not a regular file") }
        guard Int(info.st_size) <= KnownHosts.maximumFileSize else {
            throw .knownHostsUnreadable(path: path, message: "\(info.st_size) bytes, more than the limit of \(KnownHosts.maximumFileSize)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .knownHostsUnreadable(path: path, message: String(cString: strerror(errno))) }
            if n == 0 { break }
            count += n
        }
        bytes.removeLast(bytes.count - count)
        return (bytes, FileStamp(info))
    }
}

extension FileStamp {
    /// Whether the file was modified or changed less than `seconds` ago (or has no times).
    func isRecent(_ seconds: Double) -> Bool {
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        let now = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9
        let latest = max(Double(modified.tv_sec) + Double(modified.tv_nsec) / 1e9, Double(changed.tv_sec) + Double(changed.tv_nsec) / 1e9)
        return now - latest < seconds
    }

    init(_ info: stat) {
        self.init(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                  modified: info.st_mtim, changed: info.st_ctim)
    }
}

/// known_hosts files parsed once per process and kept until they change: each connection costs
/// one stat(2) and an index lookup, however large the fleet (issue 13: re-parsing the file per
/// connection was a quarter of the agent's CPU at 1,000 devices). A file is parsed again when its
/// stamp changes (edited, replaced) and after this process appends to it.
final class KnownHostsCache: @unchecked Sendable {
    static let shared = KnownHostsCache()

    private struct Cached {
        var stamp: FileStamp
        var hosts: KnownHosts
        /// The bytes parsed, kept while the stamp is too recent to tell versions apart.
        var racyBytes: [UInt8]?
        /// Lookup name → matching entries: a hashed or wildcard file costs its HMACs once per host.
        var lookups: [String: [KnownHosts.Entry]] = [:]
    }

    /// File times advance in clock ticks (a few milliseconds), and a replaced file's inode number
    /// may be reused at once: two versions of the same size written within one tick can have the
    /// same stamp. Until a version is this old, its bytes are compared as well (as git does for
    /// "racily clean" files).
    static let racyWindow: Double = 2

    private let lock = NSLock()
    private var files: [String: Cached] = [:]
    /// How many times each path was parsed (tests check that lookups do not re-parse).
    private(set) var parses: [String: Int] = [:]

    /// Entries matching `name` in the current version of `path`. Malformed lines are logged
    /// (one warning each) when the file is parsed.
    func entries(path: String, named name: String, logger: Logger?) throws(SSHError) -> [KnownHosts.Entry] {
        lock.lock()
        defer { lock.unlock() }
        let now = try KnownHostsFile.stamp(path)
        if let cached = files[path], cached.stamp == now {
            if let racy = cached.racyBytes {
                let (bytes, stamp) = try KnownHostsFile.read(path)
                if bytes != racy || stamp != cached.stamp {
                    try parse(path, bytes: bytes, stamp: stamp, logger: logger)
                } else if !stamp.isRecent(KnownHostsCache.racyWindow) {
                    files[path]!.racyBytes = nil
                }
            }
        } else {
            let (bytes, stamp) = try KnownHostsFile.read(path)
            try parse(path, bytes: bytes, stamp: stamp, logger: logger)
        }
        if let hit = files[path]!.lookups[name] { return hit }
        let found = files[path]!.hosts.entries(named: name)
        files[path]!.lookups[name] = found
        return found
    }

    /// Parses one version of `path` into the cache (under the lock: 500 sessions starting
    /// together parse the file once).
    private func parse(_ path: String, bytes: [UInt8], stamp: FileStamp, logger: Logger?) throws(SSHError) {
        let hosts = KnownHosts(path: path, bytes: bytes)
        for skipped in hosts.skipped {
            (logger ?? KnownHostsCache.fallbackLogger).warning("known_hosts line skipped", metadata: [
                "file": "\(path)", "line": "\(skipped.line)", "reason": "\(skipped.reason)",
            ])
        }
        files[path] = Cached(stamp: stamp, hosts: hosts, racyBytes: stamp.isRecent(KnownHostsCache.racyWindow) ? bytes : nil)
        parses[path, default: 0] += 1
    }

    /// Forgets `path` (after this process rewrote it).
    func invalidate(_ path: String) {
        lock.lock()
        files[path] = nil
        lock.unlock()
    }

    func parseCount(_ path: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return parses[path] ?? 0
    }

    private static let fallbackLogger = Logger(label: "care-agent.ssh.known-hosts")
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
    public func preferredKeyTypes(host: String, port: Int, logger: Logger? = nil) -> [String] {
        let name = KnownHosts.lookupName(host: host, port: port)
        let entries = (try? KnownHostsCache.shared.entries(path: knownHostsPath, named: name, logger: logger)) ?? []
        return KnownHosts.keyTypes(of: entries)
    }

    /// Accepts `key` for `host`:`port` or throws why not.
    public func verify(host: String, port: Int, key: HostKey, logger: Logger? = nil) throws(SSHError) {
        let name = KnownHosts.lookupName(host: host, port: port)
        let entries = try KnownHostsCache.shared.entries(path: knownHostsPath, named: name, logger: logger)
        switch KnownHosts.verdict(for: key, among: entries) {
        case .known:
            return
        case let .revoked(line):
            throw .hostKeyRevoked(host: name, fingerprint: key.fingerprint, knownHostsFile: knownHostsPath, line: line)
        case let .changed(entry):
            throw HostKeyVerifier.changed(name, entry: entry, sent: key, file: knownHostsPath)
        case .unknown:
            guard policy == .acceptNew else {
                throw .hostKeyUnknown(host: name, keyType: key.type, fingerprint: key.fingerprint, knownHostsFile: knownHostsPath)
            }
            try KnownHostsWriter.append(name: name, key: key, to: knownHostsPath)
        }
    }

    static func changed(_ name: String, entry: KnownHosts.Entry, sent key: HostKey, file: String) -> SSHError {
        .hostKeyChanged(host: name, knownHostsFile: file, line: entry.line,
                        knownType: entry.key.type, knownFingerprint: entry.key.fingerprint,
                        sentType: key.type, sentFingerprint: key.fingerprint)
    }
}

extension KnownHosts {
    /// Records `key` for `host`:`port` in the known_hosts file at `path` (created when missing),
    /// unless it is there already; atomic, like the agent's own accept-new records.
    public static func record(_ key: HostKey, host: String, port: Int, in path: String) throws(SSHError) {
        // The operator asked for every key type the host has (as ssh-keyscan lists them): a key of
        // another type beside a recorded one is added, a different key of the same type refused.
        try KnownHostsWriter.append(name: knownHostsName(host: host, port: port), key: key, to: path, sameTypeOnly: true)
    }
}

/// Appends to known_hosts atomically (copy, append, fsync, rename) under a process-wide lock and
/// an flock on `<known_hosts>.lock`, so that concurrent first connections (in this process or
/// another) lose no entry. The file is re-read under the lock and the decision taken again: if
/// another connection recorded a different key for the host meanwhile, this one is refused as a
/// changed key, never added as a second one.
enum KnownHostsWriter {
    private static let lock = NSLock()

    /// `sameTypeOnly`: only an entry of the key's own type can make it a changed key (explicit
    /// recording of each type); otherwise any other key recorded for the host does (accept-new).
    static func append(name: String, key: HostKey, to path: String, sameTypeOnly: Bool = false) throws(SSHError) {
        lock.lock()
        defer { lock.unlock() }
        let lockPath = path + ".lock"
        var lockFD = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0o600)
        // flock needs no write access: a lock file root left (hosts scan) must not lock the
        // agent's own user out of recording keys for good.
        if lockFD < 0 && errno == EACCES { lockFD = open(lockPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        guard lockFD >= 0 else {
            throw .knownHostsUnwritable(path: path, message: "cannot open the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        defer { flock(lockFD, LOCK_UN); close(lockFD) }
        // Root creating it in another owner's directory (the agent's): theirs, as the file is.
        var lockInfo = stat(), directoryInfo = stat()
        let lockDirectory = (path as NSString).deletingLastPathComponent
        // Only an empty regular file of one link: never a hard link planted to a file of root's.
        if geteuid() == 0, fstat(lockFD, &lockInfo) == 0, lockInfo.st_uid == 0,
           lockInfo.st_mode & S_IFMT == S_IFREG, lockInfo.st_nlink == 1, lockInfo.st_size == 0,
           stat(lockDirectory.isEmpty ? "." : lockDirectory, &directoryInfo) == 0,
           directoryInfo.st_uid != 0 || directoryInfo.st_gid != 0 {
            _ = fchown(lockFD, directoryInfo.st_uid, directoryInfo.st_gid)
            _ = fchmod(lockFD, 0o660)
        }
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw .knownHostsUnwritable(path: path, message: "cannot lock \(lockPath): \(String(cString: strerror(errno)))")
            }
        }
        // Re-read under the lock: another connection or process may have added this host.
        let (bytes, _) = try KnownHostsFile.read(path)
        let current = KnownHosts(path: path, bytes: bytes)
        let entries = current.entries(named: name).filter { !sameTypeOnly || $0.key.type == key.type || $0.key.blob == key.blob }
        switch KnownHosts.verdict(for: key, among: entries) {
        case .known:
            return
        case let .revoked(line):
            throw .hostKeyRevoked(host: name, fingerprint: key.fingerprint, knownHostsFile: path, line: line)
        case let .changed(entry):
            throw HostKeyVerifier.changed(name, entry: entry, sent: key, file: path)
        case .unknown:
            break
        }
        var content = bytes
        if let last = content.last, last != 0x0A { content.append(0x0A) }
        content.append(contentsOf: Array("\(name) \(key.openSSHText)\n".utf8))
        let directory = (path as NSString).deletingLastPathComponent
        let temp = (directory.isEmpty ? "." : directory) + "/.known_hosts.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw .knownHostsUnwritable(path: path, message: "cannot create \(temp): \(String(cString: strerror(errno)))")
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
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return fsync(fd) == 0
        }
        close(fd)
        guard ok, rename(temp, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temp)
            throw .knownHostsUnwritable(path: path, message: "writing \(temp): \(message)")
        }
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 { fsync(dirFD); close(dirFD) }
        // The next lookup parses the file again (the new inode would show it too).
        KnownHostsCache.shared.invalidate(path)
    }
}
