import Foundation

/// A file an inventory source names, read whole up to a limit. Foundation's readers took a
/// directory (an Ansible inventory directory is a usual layout) or a read error for an empty
/// file, which read as "no devices", and one had no limit at all (an 80 MiB CSV took 630 MB).
enum BoundedFile {
    enum Failure: Error, Equatable {
        /// Opening or reading failed with this `errno`.
        case unreadable(Int32)
        case notAFile
        case tooLarge

        /// What went wrong with `path` for `what` (`the Ansible inventory`), as one line.
        func message(_ what: String, _ path: String, limit: Int) -> String {
            switch self {
            case let .unreadable(code) where code == ENOENT || code == EACCES:
                return "cannot read \(what) \(path) (missing, or not readable by this user)"
            case let .unreadable(code): return "cannot read \(what) \(path): \(String(cString: strerror(code)))"
            case .notAFile: return "\(what) \(path) is not a regular file (a directory? name the file itself)"
            case .tooLarge: return "\(what) \(path) is larger than \(limit >> 20) MiB"
            }
        }
    }

    static func read(_ path: String, limit: Int) -> Result<Data, Failure> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.unreadable(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.unreadable(errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(.notAFile) }
        guard info.st_size <= limit else { return .failure(.tooLarge) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.unreadable(errno))
            }
            data.append(contentsOf: buffer[0..<n])
            // Grown while read (a file being written): the limit holds all the same.
            if data.count > limit { return .failure(.tooLarge) }
        }
        return .success(data)
    }
}
