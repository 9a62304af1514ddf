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
        switch BoundedFile.contents(of: path, limit: limit) {
        case let .success(bytes): return bytes
        case let .failure(.unreadable(code)): throw .unreadableFile(path: path, reason: message(code))
        case .failure(.notAFile): throw .unreadableFile(path: path, reason: "not a regular file")
        case let .failure(.tooLarge(size)): throw .tooLarge("the file is \(size) bytes, more than the limit of \(limit)")
        }
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
