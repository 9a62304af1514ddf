import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The bundle files, content-addressed: `<directory>/bundles/<first two hex>/<sha256>.tar.gz`.
/// Uploads are written to `<directory>/incoming/` (same file system), fsynced and hard-linked
/// into place, the directory fsynced: a file is in `bundles/` whole or not at all, and the same
/// bytes are never kept twice. A database row points at a file only after the file is durable.
public struct BundleFileStore: Sendable {
    public let directory: String

    public var bundlesDirectory: String { directory + "/bundles" }
    public var incomingDirectory: String { directory + "/incoming" }

    /// Creates the directories (mode 0750) when missing.
    public init(directory: String) throws(SupportStoreError) {
        self.directory = directory
        for path in [directory, bundlesDirectory, incomingDirectory] {
            if mkdir(path, 0o750) != 0 && errno != EEXIST {
                throw .files("cannot create \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Where the file with this SHA-256 is (or would be).
    public func path(sha256: String) -> String {
        "\(bundlesDirectory)/\(sha256.prefix(2))/\(sha256).tar.gz"
    }

    /// A new temporary file in `incoming/` for an upload's body.
    public func newIncomingFile() throws(SupportStoreError) -> IncomingFile {
        try IncomingFile(directory: incomingDirectory)
    }

    /// Links a finished (fsynced) incoming file into place under its SHA-256. Returns false when
    /// the same content was stored already (nothing changes). The incoming file stays; remove it
    /// with ``IncomingFile/discard()``.
    @discardableResult
    public func place(_ file: IncomingFile, sha256: String) throws(SupportStoreError) -> Bool {
        guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw .files("not a lower-case hex SHA-256: \(sha256.prefix(80))")
        }
        let bucket = "\(bundlesDirectory)/\(sha256.prefix(2))"
        if mkdir(bucket, 0o750) == 0 {
            try Self.syncDirectory(bundlesDirectory)
        } else if errno != EEXIST {
            throw .files("cannot create \(bucket): \(String(cString: strerror(errno)))")
        }
        let target = path(sha256: sha256)
        if link(file.path, target) != 0 {
            if errno == EEXIST {
                // Fresh again: retention removes only files unreferenced for a while, so the
                // row about to point at this file cannot lose it to a prune running now.
                utimes(target, nil)
                return false
            }
            throw .files("cannot link \(file.path) to \(target): \(String(cString: strerror(errno)))")
        }
        // A link keeps the time of the body's last write: an upload that waited long for its
        // verification would look old enough to prune before its row commits.
        utimes(target, nil)
        try Self.syncDirectory(bucket)
        return true
    }

    /// Removes bundle files no stored bundle references and untouched for `grace`: those of
    /// bundles retention deleted, and those a crash left between placing a file and committing
    /// its row. `grace` protects a file an intake is placing now (placing touches an existing
    /// file too). One query per file older than `grace`. Returns how many files went.
    public func removeUnreferenced(database: any SupportDatabase, grace: TimeInterval, now: Date = Date()) async throws(SupportStoreError) -> Int {
        var removed = 0
        let buckets = ((try? FileManager.default.contentsOfDirectory(atPath: bundlesDirectory)) ?? []).sorted()
        for bucket in buckets where bucket.count == 2 {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: bundlesDirectory + "/" + bucket)) ?? []
            for name in names {
                let directory = "\(bundlesDirectory)/\(bucket)"
                // Set aside by a prune a crash interrupted: back under its name if none is there (the
                // next pass decides again), else the copy goes (same content, by its name).
                if name.hasSuffix(".tar.gz" + Self.pruneSuffix) {
                    let target = directory + "/" + name.dropLast(Self.pruneSuffix.count)
                    if access(target, F_OK) != 0 { rename(directory + "/" + name, target) } else { unlink(directory + "/" + name) }
                    continue
                }
                guard name.hasSuffix(".tar.gz") else { continue }
                let target = directory + "/" + name
                func old() -> Bool {
                    var info = stat()
                    return stat(target, &info) == 0 && now.timeIntervalSince1970 - Double(info.st_mtim.tv_sec) >= grace
                }
                guard old() else { continue }
                let sha256 = String(name.dropLast(".tar.gz".count))
                guard try await !database.isReferenced(sha256: sha256) else { continue }
                // Aside first, then asked again: an intake may have placed this file again (touching
                // it) and committed its row between the question and the unlink, which would leave
                // that row without its file.
                let aside = target + Self.pruneSuffix
                guard old(), rename(target, aside) == 0 else { continue }
                if try await database.isReferenced(sha256: sha256) {
                    // Same content whatever is at `target` now: the stored bundle keeps its file.
                    rename(aside, target)
                    continue
                }
                if unlink(aside) == 0 { removed += 1 }
            }
        }
        return removed
    }

    /// What a prune renames a file to while it asks the database once more.
    static let pruneSuffix = ".prune"

    /// Removes incoming files older than `age`: uploads cut off by a crash (a live upload
    /// rewrites its file continuously, so its modification time stays recent).
    @discardableResult
    public func sweepIncoming(olderThan age: TimeInterval, now: Date = Date()) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: incomingDirectory) else { return 0 }
        var removed = 0
        for name in names where name.hasSuffix(".tmp") {
            let path = incomingDirectory + "/" + name
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            if now.timeIntervalSince1970 - Double(info.st_mtim.tv_sec) > age, unlink(path) == 0 { removed += 1 }
        }
        return removed
    }

    static func syncDirectory(_ path: String) throws(SupportStoreError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .files("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .files("fsync \(path): \(String(cString: strerror(errno)))") }
    }
}

/// An upload's body as it arrives: appended to a temporary file with its SHA-256 computed on
/// the way, so the body is never held in memory whole. Not thread-safe: one writer.
public final class IncomingFile: @unchecked Sendable {
    public let path: String
    private var fd: Int32
    private var hasher = SHA256()
    public private(set) var size = 0

    init(directory: String) throws(SupportStoreError) {
        let name = ".upload-\(getpid())-\(UUID().uuidString.lowercased()).tmp"
        path = directory + "/" + name
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .files("cannot create \(path): \(String(cString: strerror(errno)))") }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(SupportStoreError) {
        hasher.update(bufferPointer: bytes)
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw .files("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        size += bytes.count
    }

    /// fsyncs and closes the file; returns its lower-case hex SHA-256.
    public func finish() throws(SupportStoreError) -> String {
        guard fsync(fd) == 0 else { throw .files("fsync \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        fd = -1
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Removes the temporary file (after it was placed, or when the upload is refused).
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(path)
    }
}
