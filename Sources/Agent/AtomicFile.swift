import Foundation

/// Writes `bytes` to a temporary file of an unpredictable name (O_EXCL | O_NOFOLLOW, `mode`),
/// fsyncs it and renames it over `path`: readers see the old file or the new one, never half.
/// The unpredictable name matters in shared directories (node_exporter's textfile directory):
/// a fixed one would let another local user plant a symbolic link the agent then writes
/// through; the rename replaces whatever is at `path`, a link included, without following it.
func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t, what: String = "file") throws {
    let directory = (path as NSString).deletingLastPathComponent
    func failure(_ reason: String) -> CocoaError {
        CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "cannot write \(what) \(path): \(reason): \(String(cString: strerror(errno)))"])
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
}
