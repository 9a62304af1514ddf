import Crypto
import Foundation
import Junos
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Bundle file names: `<hostname>-<chassis-serial>-<yyyymmdd-hhmmss>.tar.gz` (UTC collection start).
public enum BundleFileName {
    public static let suffix = ".tar.gz"

    /// The base name without suffix, each part reduced to `[A-Za-z0-9._-]` and "unknown" when empty.
    public static func base(for contents: BundleContents) -> String {
        let host = sanitized(contents.device.hostname ?? contents.device.name)
        let serial = sanitized(contents.device.chassisSerial)
        return "\(host)-\(serial)-\(timestamp(contents.started))"
    }

    /// True for names a reader or outbox should pick up: finished bundles, never temporary files.
    public static func isBundle(_ name: String) -> Bool {
        name.hasSuffix(suffix) && !name.hasPrefix(".") && !name.hasSuffix(".tmp")
    }

    /// True for the writer's in-progress files (`.<name>.<pid>-<random>.tmp`).
    public static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.hasSuffix(".tmp") }

    static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A" ... "Z", "a" ... "z", "0" ... "9", ".", "_", "-": return true
        default: return false
        }
    }

    static func sanitized(_ part: String?) -> String {
        guard let part else { return "unknown" }
        var out = String(part.unicodeScalars.map { isAllowed($0) ? Character($0) : "_" }.prefix(64))
        // A leading dot would hide the file and mark it as temporary.
        while out.hasPrefix(".") { out.removeFirst() }
        return out.isEmpty || out.allSatisfy({ $0 == "_" }) ? "unknown" : out
    }

    static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))-\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))"
    }
}

/// A bundle encoded and signed, not yet written: the bytes of its file and what an outbox needs
/// to know of it without reading them back. Encoding (facts, tar, gzip, signature) is CPU work a
/// collecting task does in parallel with the others; writing it is I/O for one writer.
public struct SignedBundle: Sendable {
    /// The whole `.tar.gz` file.
    public let bytes: [UInt8]
    /// The file name without suffix (``BundleFileName/base(for:)``).
    public let baseName: String
    public let trigger: CollectionTrigger
    public let event: TriggerEvent?

    /// Encodes and signs `contents` with `key`; `factsJSON` as for ``BundleWriter/encode(_:key:factsJSON:)``.
    public init(_ contents: BundleContents, key: AgentKey, factsJSON: [UInt8]? = nil) throws(BundleWriteError) {
        bytes = try BundleWriter.encode(contents, key: key, factsJSON: factsJSON)
        baseName = BundleFileName.base(for: contents)
        trigger = contents.trigger
        event = contents.event
    }
}

/// Writes signed bundles into a directory, crash-safely: the bundle is built in memory, written to
/// a temporary file in the same directory, fsynced, hard-linked to its final name (which fails
/// rather than overwrite an existing bundle) and the directory fsynced. A crash at any point leaves
/// a whole bundle or none, plus at worst a `.tmp` file that readers ignore. The writer holds an
/// exclusive `flock` on its temporary file for as long as it exists, so that a cleaner can tell
/// a dead writer's leftover from a live writer's file in another process.
public struct BundleWriter: Sendable {
    /// Points in ``write(_:)`` where a test can make the process die (`_exit(137)`), named by the
    /// hidden environment variable `CARE_AGENT_BUNDLE_CRASH_AT`.
    public enum CrashStep: String, Sendable, CaseIterable {
        case tempCreated = "temp-created"
        case halfWritten = "half-written"
        case written
        case synced
        case linked
        case tempRemoved = "temp-removed"
        case directorySynced = "directory-synced"
    }

    public static let crashEnvironmentVariable = "CARE_AGENT_BUNDLE_CRASH_AT"
    /// Hidden, for tests: the writer stops itself (SIGSTOP) at this step, holding its temporary
    /// file, until it gets SIGCONT: a writer caught in the middle of a write.
    public static let stopEnvironmentVariable = "CARE_AGENT_BUNDLE_STOP_AT"

    public let directory: URL
    public let key: AgentKey
    /// Where to die, for crash tests. Read from `CARE_AGENT_BUNDLE_CRASH_AT` by default.
    public var crashStep: CrashStep?
    /// Where to stop, for tests. Read from `CARE_AGENT_BUNDLE_STOP_AT` by default.
    public var stopStep: CrashStep?

    public init(directory: URL, key: AgentKey) {
        self.directory = directory
        self.key = key
        let environment = ProcessInfo.processInfo.environment
        self.crashStep = environment[Self.crashEnvironmentVariable].flatMap(CrashStep.init(rawValue:))
        self.stopStep = environment[Self.stopEnvironmentVariable].flatMap(CrashStep.init(rawValue:))
    }

    /// Writes `contents` as `<hostname>-<serial>-<time>.tar.gz` in ``directory`` (created, mode 0750,
    /// when missing). When that name exists, `-2`, `-3`, ... is added: bundles never overwrite each other.
    /// Returns the file written (mode 0640).
    @discardableResult
    public func write(_ contents: BundleContents, factsJSON: [UInt8]? = nil) throws(BundleWriteError) -> URL {
        try write(SignedBundle(contents, key: key, factsJSON: factsJSON))
    }

    /// Writes a bundle encoded and signed beforehand (``SignedBundle``), named as
    /// ``write(_:factsJSON:)`` names it.
    @discardableResult
    public func write(_ bundle: SignedBundle) throws(BundleWriteError) -> URL {
        try SystemCall.makeDirectory(directory.path, mode: 0o750)
        let base = bundle.baseName
        return try place(bundle.bytes, base: base) { attempt in
            switch attempt {
            case 1: return base + BundleFileName.suffix
            // A few readable suffixes, then random ones so a simulated fleet of identical
            // devices does not probe a long sequence of taken names.
            case 2 ... 9: return "\(base)-\(attempt)\(BundleFileName.suffix)"
            default: return "\(base)-\(String(UInt32.random(in: 0 ... .max), radix: 16))\(BundleFileName.suffix)"
            }
        }
    }

    /// Writes `contents` at exactly `file`; fails with EEXIST rather than replace an existing file.
    @discardableResult
    public func write(_ contents: BundleContents, to file: URL) throws(BundleWriteError) -> URL {
        let bytes = try Self.encode(contents, key: key)
        let writer = BundleWriter(directory: file.deletingLastPathComponent(), key: key, crashStep: crashStep, stopStep: stopStep)
        return try writer.place(bytes, base: file.lastPathComponent) { attempt in
            attempt == 1 ? file.lastPathComponent : nil
        }
    }

    private init(directory: URL, key: AgentKey, crashStep: CrashStep?, stopStep: CrashStep?) {
        self.directory = directory
        self.key = key
        self.crashStep = crashStep
        self.stopStep = stopStep
    }

    private func crash(at step: CrashStep) {
        if step == crashStep { _exit(137) }
        if step == stopStep { raise(SIGSTOP) }
    }

    private func place(_ bytes: [UInt8], base: String, name: (Int) -> String?) throws(BundleWriteError) -> URL {
        let dir = directory.path
        let (temp, fd) = try Self.createLockedTemporary(dir: dir, base: base)
        // Declared first, so run last: the lock is held until the temporary name is gone.
        defer { close(fd) }
        var tempExists = true
        defer { if tempExists { unlink(temp) } }
        do {
            crash(at: .tempCreated)
            // The umask may have removed bits; the bundle is readable by the agent's group (the uploader).
            try SystemCall.run("fchmod", temp) { fchmod(fd, 0o640) }
            let half = bytes.count / 2
            try SystemCall.writeAll(fd, bytes[..<half], path: temp)
            crash(at: .halfWritten)
            try SystemCall.writeAll(fd, bytes[half...], path: temp)
            crash(at: .written)
            try SystemCall.run("fsync", temp) { fsync(fd) }
            crash(at: .synced)
        }
        var attempt = 1
        var final: String
        while true {
            guard let candidate = name(attempt) else {
                throw .system(call: "link", path: "\(dir)/\(base)", errno: EEXIST)
            }
            final = "\(dir)/\(candidate)"
            if link(temp, final) == 0 { break }
            let code = errno
            if code == EINTR { continue }
            guard code == EEXIST else { throw .system(call: "link", path: final, errno: code) }
            attempt += 1
            if attempt > 10_000 { throw .system(call: "link", path: final, errno: EEXIST) }
        }
        crash(at: .linked)
        // The bundle is in the outbox from here on, and will be uploaded: failing now would report
        // it lost while it is not. A temporary name left (unlink failed) is removed at the next
        // start (its lock is gone with this process); a failed directory fsync (EIO) is the
        // disk's to report, and the file is there to read.
        if unlink(temp) == 0 { tempExists = false }
        crash(at: .tempRemoved)
        _ = try? SystemCall.syncDirectory(dir)
        crash(at: .directorySynced)
        return URL(fileURLWithPath: final)
    }

    /// Creates a new temporary file and takes its lock. A cleaner may take the lock and remove
    /// the file in the instant between the two; the writer sees the file unlinked and starts over
    /// with another name.
    static func createLockedTemporary(dir: String, base: String) throws(BundleWriteError) -> (String, Int32) {
        while true {
            let temp = "\(dir)/.\(base).\(getpid())-\(String(UInt32.random(in: 0 ... .max), radix: 16)).tmp"
            let fd = try SystemCall.run("open", temp) { open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640) }
            var info = stat()
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    let code = errno
                    close(fd)
                    unlink(temp)
                    throw .system(call: "flock", path: temp, errno: code)
                }
            }
            if fstat(fd, &info) == 0 && info.st_nlink > 0 { return (temp, fd) }
            close(fd)
        }
    }

    /// Removes temporary files left by writers that died more than `age` seconds ago. A file
    /// whose writer is alive (it holds the file's lock: another process writing into the same
    /// directory, a `collect now --standalone`) is never removed, however old.
    public func removeStaleTemporaryFiles(olderThan age: TimeInterval = 3600) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let now = Date()
        for name in names where BundleFileName.isTemporary(name) {
            let path = directory.appendingPathComponent(name).path
            if let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
               now.timeIntervalSince(modified) > age {
                Self.removeIfAbandoned(path)
            }
        }
    }

    /// Removes every temporary file whose writer is gone, however recent; what the agent does at
    /// start. Live writers' files are kept (see ``removeStaleTemporaryFiles(olderThan:)``).
    public func removeAbandonedTemporaryFiles() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where BundleFileName.isTemporary(name) {
            Self.removeIfAbandoned(directory.appendingPathComponent(name).path)
        }
    }

    /// Unlinks `path` if nobody holds its lock; the lock is held while unlinking, so that a writer
    /// that had just created it notices (``createLockedTemporary(dir:base:)``).
    static func removeIfAbandoned(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return }
        unlink(path)
    }

    /// The complete bundle file for `contents`, signed with `key`: tar + gzip of manifest.json,
    /// manifest.sig, facts.json, collection.log and raw/<rpc>.xml. `factsJSON`: the caller's
    /// ``factsJSON(_:)`` of `contents.facts`, when it has it already.
    public static func encode(_ contents: BundleContents, key: AgentKey, factsJSON encoded: [UInt8]? = nil) throws(BundleWriteError) -> [UInt8] {
        var payload: [ArchiveMember] = []
        do {
            payload.append(ArchiveMember(name: "facts.json", bytes: try encoded ?? factsJSON(contents.facts)))
        } catch {
            throw .encoding("facts: \(error)")
        }
        payload.append(ArchiveMember(name: "collection.log", bytes: Array(contents.log.utf8)))
        var rpcs = Set<String>()
        for reply in contents.rawReplies {
            guard !reply.rpc.isEmpty, !reply.rpc.hasPrefix("."),
                  reply.rpc.unicodeScalars.allSatisfy(BundleFileName.isAllowed) else {
                throw .invalidContents("RPC name \"\(reply.rpc)\" may only hold letters, digits, '.', '_' and '-'")
            }
            guard rpcs.insert(reply.rpc).inserted else {
                throw .invalidContents("two replies for RPC \(reply.rpc)")
            }
            payload.append(ArchiveMember(name: reply.memberName, bytes: reply.bytes))
        }
        let manifest = BundleManifest(
            formatVersion: BundleManifest.currentFormatVersion,
            bundleId: contents.bundleId,
            agent: contents.agent,
            device: contents.device,
            collection: .init(trigger: contents.trigger, event: contents.event, started: contents.started, finished: contents.finished),
            outcomes: contents.outcomes,
            members: payload.map { .init(path: $0.name, size: $0.bytes.count, sha256: hex(SHA256.hash(data: $0.bytes))) },
            signer: .init(algorithm: "ed25519", publicKey: key.publicKey.base64),
            derivedFrom: contents.derivedFrom)
        let manifestBytes: [UInt8]
        let signature: [UInt8]
        do {
            manifestBytes = Array(try BundleManifest.encoder().encode(manifest)) + [UInt8(ascii: "\n")]
            signature = try key.sign(manifestBytes)
        } catch {
            throw .encoding("manifest: \(error)")
        }
        let members = [ArchiveMember(name: "manifest.json", bytes: manifestBytes),
                       ArchiveMember(name: "manifest.sig", bytes: signature)] + payload
        let tar = try USTar.archive(members, modified: Int(contents.finished.timeIntervalSince1970))
        // Level 3: a third of level 6's CPU for bundles about 12% larger (measured on the simulated
        // fleet's captures); compression was 7% of the agent's CPU at level 6.
        return try Gzip.compress(tar, level: 3)
    }

    /// facts.json as written: pretty, keys sorted, so bundles diff well with ordinary tools too.
    public static func factsJSON(_ facts: DeviceFacts) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(facts)) + [UInt8(ascii: "\n")]
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
