import Foundation
import IOLoop

/// The server's identification (RFC 4253 4.2), waited for before libssh2 sees the socket.
///
/// Why not leave it to libssh2: its banner reader takes one byte at a time for as long as bytes
/// keep coming, without returning EAGAIN, so a "device" that streams text (a misconfigured port, a
/// hostile host) held the I/O loop thread for good, stalling every other session on it past
/// every deadline. Here the bytes are looked at (`MSG_PEEK`), lines before the identification
/// are consumed within limits, and libssh2 is handed a socket that starts with the `SSH-` line.
public enum SSHIdentification {
    /// RFC 4253: the identification line is at most 255 bytes with its CR LF.
    public static let lineLimit = 255
    /// Lines a server may send before it (a pre-login banner): longest line and all of them.
    public static let otherLineLimit = 1024
    public static let otherLinesLimit = 8 * 1024

    /// What the bytes at the start of the stream call for.
    public enum Action: Equatable, Sendable {
        /// The stream starts with a whole `SSH-2.0-` (or `SSH-1.99-`) line: hand it over.
        case ready
        /// A whole line before the identification, this many bytes with its newline: consume it.
        case skip(Int)
        /// Not a whole line yet: wait for more.
        case needMore
    }

    /// Why the bytes are not an SSH server's identification.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case lineTooLong(limit: Int)
        case tooMuchBeforeIdentification(limit: Int)
        case notSSH2(line: String)

        public var description: String {
            switch self {
            case let .lineTooLong(limit):
                return "the server sent a line longer than \(limit) bytes where its SSH identification belongs (is this an SSH server?)"
            case let .tooMuchBeforeIdentification(limit):
                return "the server sent more than \(limit) bytes without an SSH identification line (is this an SSH server?)"
            case let .notSSH2(line):
                return "the server is not SSH-2: it identifies as \"\(line.prefix(80))\""
            }
        }
    }

    /// The action for `bytes`, the start of what the server sent after `consumed` bytes of
    /// earlier lines. Pure: fed bytes, it says what to do.
    public static func next(_ bytes: some Collection<UInt8>, consumed: Int) throws(Failure) -> Action {
        let startsSSH = bytes.starts(with: Array("SSH-".utf8)) || Array("SSH-".utf8).starts(with: bytes)
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            if startsSSH {
                guard bytes.count < lineLimit else { throw .lineTooLong(limit: lineLimit) }
            } else {
                guard bytes.count < otherLineLimit else { throw .lineTooLong(limit: otherLineLimit) }
                guard consumed + bytes.count <= otherLinesLimit else { throw .tooMuchBeforeIdentification(limit: otherLinesLimit) }
            }
            return .needMore
        }
        let length = bytes.distance(from: bytes.startIndex, to: newline) + 1
        guard startsSSH else {
            guard length <= otherLineLimit else { throw .lineTooLong(limit: otherLineLimit) }
            guard consumed + length <= otherLinesLimit else { throw .tooMuchBeforeIdentification(limit: otherLinesLimit) }
            return .skip(length)
        }
        guard length <= lineLimit else { throw .lineTooLong(limit: lineLimit) }
        var line = String(decoding: bytes.prefix(length - 1), as: UTF8.self)
        if line.hasSuffix("\r") { line.removeLast() }
        guard line.hasPrefix("SSH-2.0-") || line.hasPrefix("SSH-1.99-") else { throw .notSSH2(line: line) }
        return .ready
    }

    /// Waits on `loop` until `fd` starts with the server's identification line, consuming the
    /// lines before it; throws ``SSHError/handshake(peer:message:)`` for what is not SSH, and
    /// ``SSHError/timeout(peer:operation:seconds:)`` at `deadline`.
    static func await(fd: Int32, loop: IOLoop, deadline: ContinuousClock.Instant, peer: String) async throws {
        let started = ContinuousClock.now
        var consumed = 0
        while true {
            let action: Action
            let skipped = consumed
            do {
                action = try await loop.drive(fd: fd, deadline: deadline) { () throws -> IOStep<Action> in
                    var buffer = [UInt8](repeating: 0, count: otherLineLimit)
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_PEEK | MSG_DONTWAIT)) }
                    if n < 0 {
                        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return .wait(.read) }
                        throw SSHError.handshake(peer: peer, message: "reading the server's identification: \(String(cString: strerror(errno)))")
                    }
                    if n == 0 {
                        throw SSHError.handshake(peer: peer, message: "the server closed the connection before identifying itself (sshd refusing this client, MaxStartups, or not an SSH server)")
                    }
                    return .done(try next(buffer[..<n], consumed: skipped))
                }
            } catch IOLoopError.timedOut {
                let budget = started.duration(to: deadline)
                throw SSHError.timeout(peer: peer, operation: "waiting for the server's SSH identification",
                                       seconds: (Double(budget.components.seconds) * 10).rounded() / 10)
            } catch IOLoopError.cancelled {
                throw CancellationError()
            } catch let failure as Failure {
                throw SSHError.handshake(peer: peer, message: failure.description)
            }
            switch action {
            case .ready:
                return
            case let .skip(length):
                // The peeked line is in the socket's buffer: this takes exactly it.
                var line = [UInt8](repeating: 0, count: length)
                let taken = line.withUnsafeMutableBytes { recv(fd, $0.baseAddress, length, Int32(MSG_DONTWAIT)) }
                guard taken == length else {
                    throw SSHError.handshake(peer: peer, message: "reading the server's identification: \(taken < 0 ? String(cString: strerror(errno)) : "short read")")
                }
                consumed += length
            case .needMore:
                // Part of a line is there: readiness would report it again at once, so look
                // again shortly (a banner that arrives in pieces is rare and short).
                guard ContinuousClock.now < deadline else {
                    throw SSHError.timeout(peer: peer, operation: "waiting for the server's SSH identification",
                                           seconds: (Double(started.duration(to: deadline).components.seconds) * 10).rounded() / 10)
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }
}
