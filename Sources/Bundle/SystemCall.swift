#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The one place bundle code calls into the C library for file I/O: retries EINTR and turns a
/// failure into an error naming the call and the path.
enum SystemCall {
    @discardableResult
    static func run(_ call: String, _ path: String, _ body: () -> Int32) throws(BundleWriteError) -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw .system(call: call, path: path, errno: code)
        }
    }

    static func message(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Writes all of `bytes`, looping over short writes.
    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>, path: String) throws(BundleWriteError) {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let result = bytes[offset...].withUnsafeBytes { buffer in write(fd, buffer.baseAddress, buffer.count) }
            if result < 0 {
                if errno == EINTR { continue }
                throw .system(call: "write", path: path, errno: errno)
            }
            offset += result
        }
    }

    /// Reads a whole file, refusing files larger than `limit`.
    static func readFile(_ path: String, limit: Int) throws(BundleError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .unreadableFile(path: path, reason: message(errno)) }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw .unreadableFile(path: path, reason: message(errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .unreadableFile(path: path, reason: "not a regular file") }
        guard Int(info.st_size) <= limit else {
            throw .tooLarge("the file is \(info.st_size) bytes, more than the limit of \(limit)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadableFile(path: path, reason: message(errno))
            }
            if n == 0 { break }
            filled += n
        }
        bytes.removeLast(bytes.count - filled)
        return bytes
    }

    /// fsync of a directory so a rename/link in it survives a power cut.
    static func syncDirectory(_ path: String) throws(BundleWriteError) {
        let fd = try run("open", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        try run("fsync", path) { fsync(fd) }
    }

    /// Creates `path` (and missing parents) with `mode` when it does not exist.
    static func makeDirectory(_ path: String, mode: mode_t) throws(BundleWriteError) {
        var info = stat()
        if stat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { return }
            throw .system(call: "mkdir", path: path, errno: ENOTDIR)
        }
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !parent.isEmpty && parent != path { try makeDirectory(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw .system(call: "mkdir", path: path, errno: errno)
        }
    }
}
