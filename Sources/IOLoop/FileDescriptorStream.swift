#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking byte stream over a pipe or socket descriptor, driven by an ``IOLoop``.
/// It owns the descriptor and closes it in ``close()`` (or `deinit` as a last resort).
public final class FileDescriptorStream: @unchecked Sendable {
    public let fd: Int32
    private let loop: IOLoop
    private var closed = false

    /// Takes ownership of `fd`, makes it non-blocking and close-on-exec (a child process that
    /// inherited it would keep the stream open after we close it).
    public init(fd: Int32, loop: IOLoop = .shared) {
        self.fd = fd
        self.loop = loop
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    deinit {
        if !closed { Glibc.close(fd) }
    }

    /// Reads what is available (up to `maximum` bytes); nil at end of stream.
    public func read(maximum: Int = 256 * 1024, deadline: ContinuousClock.Instant? = nil) async throws -> [UInt8]? {
        let fd = self.fd
        return try await loop.drive(fd: fd, deadline: deadline) { () throws -> IOStep<[UInt8]?> in
            var buffer = [UInt8](repeating: 0, count: maximum)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, maximum) }
            if n > 0 { buffer.removeSubrange(n...); return .done(buffer) }
            if n == 0 { return .done(nil) }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return .wait(.read) }
            throw IOLoopError.system(call: "read", errno: errno)
        }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant? = nil) async throws {
        let fd = self.fd
        let box = OffsetBox()
        try await loop.drive(fd: fd, deadline: deadline) { () throws -> IOStep<Void> in
            while box.offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + box.offset, bytes.count - box.offset) }
                if n > 0 { box.offset += n; continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return .wait(.write) }
                throw IOLoopError.system(call: "write", errno: errno)
            }
            return .done(())
        }
    }

    /// Closes the descriptor after removing it from the loop.
    public func close() async {
        guard !closed else { return }
        closed = true
        let fd = self.fd
        _ = try? await loop.submit { [loop] in
            loop.deregister(fd: fd)
            Glibc.close(fd)
        }
    }
}

/// Progress of a multi-attempt write, touched only on the loop thread.
final class OffsetBox: @unchecked Sendable {
    var offset = 0
}
