import Foundation

/// Writes `bytes` to a temporary file of an unpredictable name (O_EXCL | O_NOFOLLOW, `mode`),
/// fsyncs it and renames it over `path`: readers see the old file or the new one, never half.
/// The unpredictable name matters in shared directories (node_exporter's textfile directory):
/// a fixed one would let another local user plant a symbolic link the agent then writes
/// through; the rename replaces whatever is at `path`, a link included, without following it.
/// `durable`: the directory is fsynced too, so that the new file survives a power cut (a queued
/// notice); without it, a power cut may bring back the previous version (results, metrics).
func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t, what: String = "file", durable: Bool = false) throws {
    let directory = (path as NSString).deletingLastPathComponent
    func failure(_ reason: String) -> FileWriteError {
        FileWriteError(description: "cannot write \(what) \(path): \(reason): \(String(cString: strerror(errno)))")
    }
    var temp = ""
    var fd: Int32 = -1
    for _ in 0 ..< 8 {
        temp = directory + "/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt64.random(in: 0 ... UInt64.max)).tmp"
        fd = open(temp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode)
        if fd >= 0 || errno != EEXIST { break }
    }
    guard fd >= 0 else { throw failure("cannot create a temporary file in \(directory)") }
    var offset = 0
    var ok = fchmod(fd, mode) == 0
    while ok && offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { ok = false; break }
        offset += n
    }
    if ok { ok = fsync(fd) == 0 }
    let error = failure("writing \(temp)")
    close(fd)
    guard ok else { unlink(temp); throw error }
    guard rename(temp, path) == 0 else {
        let error = failure("renaming \(temp)")
        unlink(temp)
        throw error
    }
    if durable {
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}

/// Why a file the agent keeps could not be written: the path, the step and the system's reason,
/// as the log and the terminal show it (a CocoaError printed its domain and code instead).
public struct FileWriteError: Error, CustomStringConvertible, LocalizedError, Sendable {
    public var description: String
    public var errorDescription: String? { description }
}

/// Removes what writes interrupted by a kill or a crash left in `directory`: temporary files of
/// ``writeAtomically(_:to:mode:what:durable:)`` (`.NAME.PID.RANDOM.tmp`) and of Foundation's
/// atomic writes (`.dat.nosync...`), if their name starts with one of `prefixes` (all such files
/// when nil: directories that are the agent's alone) and they are older than `age` seconds (a
/// `collect now --standalone` may be writing into the same state directory right now). Each
/// crash left one set for good. Returns the paths removed.
@discardableResult
public func removeStaleTemporaryFiles(in directory: String, prefixes: [String]? = nil, olderThan age: TimeInterval = 3600,
                                      now: Date = Date()) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
    var removed: [String] = []
    for name in names where name.hasPrefix(".") && (name.hasSuffix(".tmp") || name.hasPrefix(".dat.nosync")) {
        if let prefixes, !prefixes.contains(where: { name.hasPrefix("." + $0 + ".") }) { continue }
        let path = directory + "/" + name
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
              now.timeIntervalSince1970 - Double(info.st_mtim.tv_sec) > age, unlink(path) == 0 else { continue }
        removed.append(path)
    }
    return removed
}
