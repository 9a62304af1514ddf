#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file read whole up to a limit, the one way this project does it: a bundle (``BundleReader``)
/// and the files inventory sources name. The failure says which case it is, so that a directory
/// or a read error is never taken for an empty file (an Ansible inventory directory read as
/// "no devices"), and nothing is read past the limit (an 80 MiB CSV took 630 MB).
public enum BoundedFile {
    public enum Failure: Error, Equatable, Sendable {
        /// Opening or reading failed with this `errno`.
        case unreadable(Int32)
        case notAFile
        /// Larger than the limit: its size.
        case tooLarge(Int64)

        /// What went wrong with `path` for `what` (`the Ansible inventory`), as one line.
        public func message(_ what: String, _ path: String, limit: Int) -> String {
            switch self {
            case let .unreadable(code) where code == ENOENT || code == EACCES:
                return "cannot read \(what) \(path) (missing, or not readable by this user)"
            case let .unreadable(code): return "cannot read \(what) \(path): \(String(cString: strerror(code)))"
            case .notAFile: return "\(what) \(path) is not a regular file (a directory? name the file itself)"
            case .tooLarge: return "\(what) \(path) is larger than \(limit >> 20) MiB"
            }
        }
    }

    /// The whole file: the bytes fstat counts, read in place into a buffer of that size, looping
    /// over short reads (what a file being rewritten meanwhile adds is not read: never past `limit`).
    public static func contents(of path: String, limit: Int) -> Result<[UInt8], Failure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.unreadable(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.unreadable(errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(.notAFile) }
        guard Int(info.st_size) <= limit else { return .failure(.tooLarge(Int64(info.st_size))) }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.unreadable(errno))
            }
            if n == 0 { break }
            filled += n
        }
        bytes.removeLast(bytes.count - filled)
        return .success(bytes)
    }
}
