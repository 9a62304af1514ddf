import CLibSSH2
import Foundation
import IOLoop

/// One at a time: channel opens on a jump host's session share its socket, and the event loop
/// drives one operation per descriptor. A waiter whose task is cancelled (its device's time ran
/// out) leaves the queue at once instead of waiting for the open ahead of it.
actor SerialGate {
    private var busy = false
    private var waiters: [(id: Int, continuation: CheckedContinuation<Void, Error>)] = []
    private var numbers = 0

    func enter() async throws {
        guard busy else { busy = true; return }
        numbers += 1
        let id = numbers
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                waiters.append((id, continuation))
            }
        } onCancel: {
            Task { await self.giveUp(id) }
        }
    }

    private func giveUp(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    func leave() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().continuation.resume() }
    }
}

extension SSHSession {
    /// Opens a `direct-tcpip` channel to `host`:`port` through this session (a jump host's, as
    /// `ssh -J` does) and returns one end of a socket pair: whatever an SSH session writes there
    /// reaches the target through the channel, and back. The relay runs on this session's loop
    /// until either side closes, then calls `onClose` (the jump host's slot is free again).
    /// `timeout` runs from this open's turn at the session, not from the call: opens wait for
    /// each other. A session on which an open was given up half-way (a timeout, a cancellation)
    /// takes no more: it throws ``SSHError/tunnelsRetired(peer:)``, and the caller opens a new one.
    public func openTunnel(to host: String, port: Int, timeout: Duration,
                           onClose: @escaping @Sendable () -> Void) async throws -> Int32 {
        try await tunnelGate.enter()
        guard !tunnelsRetired else {
            await tunnelGate.leave()
            throw SSHError.tunnelsRetired(peer: peer)
        }
        let deadline = ContinuousClock.now + timeout
        let channel: SendablePointer
        // Whether libssh2 was asked at all: an open cancelled before its first step (the device's
        // time ran out while it waited for its turn) left no state behind to retire the session for.
        let asked = StartedFlag()
        do {
            // A tick: the relays of other tunnels read this socket too, and may take the packet
            // this open waits for off it (libssh2 queues it for us, but the socket stays quiet).
            channel = try await drive("opening a tunnel to \(host):\(port)", deadline: deadline, tick: .milliseconds(10)) { s -> LibSSH2Outcome<SendablePointer> in
                asked.value = true
                if let pointer = libssh2_channel_direct_tcpip_ex(s, host, Int32(port), "127.0.0.1", 22) {
                    return .ok(SendablePointer(pointer))
                }
                let code = libssh2_session_last_errno(s)
                return code == LIBSSH2_ERROR_EAGAIN ? .again : .failed(code == 0 ? -1 : code)
            }
        } catch let SSHError.libssh2(peer, _, code, message) {
            await tunnelGate.leave()
            throw SSHError.channel(peer: peer, message: "the jump host refused a tunnel to \(host):\(port): \(message) (libssh2 error \(code)); "
                + "it needs AllowTcpForwarding yes, and must reach \(host):\(port) itself")
        } catch {
            // libssh2 keeps a given-up open's state (its message, its channel id) and resumes it on
            // the next `direct_tcpip` call, whatever target that names: the next device would wait
            // for this one's answer, or get a tunnel to this one's target.
            let wasAsked = (try? await loop.submit { asked.value }) ?? true
            if wasAsked { tunnelsRetired = true }
            await tunnelGate.leave()
            throw error
        }
        await tunnelGate.leave()
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            let message = String(cString: strerror(errno))
            _ = try? await loop.submit { libssh2_channel_free(channel.pointer) }
            throw SSHError.channel(peer: peer, message: "cannot create a socket pair for the tunnel: \(message)")
        }
        let relay = TunnelRelay(channel: channel, socket: pair[1], closeGrace: timeouts.connect)
        let loop = self.loop
        // Known to the session before it runs: closing the session ends it first (see close()).
        _ = try? await loop.submit { self.relays[ObjectIdentifier(relay)] = relay }
        Task {
            // The relay holds this session (and so the jump host's connection) while it runs.
            _ = try? await loop.drive(fd: relay.socket, deadline: nil, tick: .milliseconds(10)) { () throws -> IOStep<Void> in
                withExtendedLifetime(self) { relay.step() }
            }
            _ = try? await loop.submit {
                self.relays[ObjectIdentifier(relay)] = nil
                loop.deregister(fd: relay.socket)
                Glibc.close(relay.socket)
            }
            onClose()
        }
        return pair[0]
    }
}

/// Copies bytes between a socket-pair end and a `direct-tcpip` channel, on the loop thread only.
/// Ends when either side has closed and what it sent has been passed on, then closes the channel.
final class TunnelRelay: @unchecked Sendable {
    let channel: SendablePointer
    let socket: Int32
    private var toSocket: [UInt8] = []
    private var toChannel: [UInt8] = []
    private var socketClosed = false
    private var channelClosed = false
    private var shutDownSocket = false
    private var closing = false
    private var closingSince: ContinuousClock.Instant?
    /// How long the channel's close may wait for the jump host's answer.
    private let closeGrace: Duration
    /// Set on the loop thread when the session is freed under the relay: the channel went with
    /// it, and must not be touched again (a `hosts scan` exiting crashed freeing it twice).
    var abandoned = false
    private var scratch = [UInt8](repeating: 0, count: 64 * 1024)

    init(channel: SendablePointer, socket: Int32, closeGrace: Duration) {
        self.channel = channel
        self.socket = socket
        self.closeGrace = closeGrace
    }

    func step() -> IOStep<Void> {
        if abandoned { return .done(()) }
        if closing { return finishClosing() }
        var failed = false
        // Target → session.
        if toSocket.isEmpty && !channelClosed {
            let n = scratch.withUnsafeMutableBytes { care_ssh2_channel_read(channel.pointer, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
            if n > 0 {
                toSocket += scratch[0..<n]
            } else if n == 0 || n == Int(LIBSSH2_ERROR_EAGAIN) {
                if libssh2_channel_eof(channel.pointer) != 0 { channelClosed = true }
            } else {
                failed = true
            }
        }
        if !toSocket.isEmpty {
            // MSG_NOSIGNAL: the local end may close first (the NETCONF client gave up); that is an
            // error to handle here, not a SIGPIPE that kills whichever process runs the tunnel.
            let n = toSocket.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { toSocket.removeFirst(n) } else if n < 0 && errno != EAGAIN && errno != EINTR { failed = true }
        }
        if channelClosed && toSocket.isEmpty && !shutDownSocket {
            shutDownSocket = true
            _ = shutdown(socket, Int32(SHUT_WR))
        }
        // Session → target.
        if toChannel.isEmpty && !socketClosed {
            let n = scratch.withUnsafeMutableBytes { Glibc.read(socket, $0.baseAddress, $0.count) }
            if n > 0 { toChannel += scratch[0..<n] } else if n == 0 { socketClosed = true } else if errno != EAGAIN && errno != EINTR { failed = true }
        }
        if !toChannel.isEmpty {
            let n = toChannel.withUnsafeBytes { care_ssh2_channel_write(channel.pointer, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
            if n > 0 { toChannel.removeFirst(n) } else if n < 0 && n != Int(LIBSSH2_ERROR_EAGAIN) { failed = true }
        }
        // The session closed its end (it is done), or the target went away and the session was told.
        if failed || (socketClosed && toChannel.isEmpty) || (channelClosed && shutDownSocket && socketClosed) {
            closing = true
            return finishClosing()
        }
        return .wait(toSocket.isEmpty ? .read : [.read, .write])
    }

    /// Closes and frees the channel, retried on each tick while libssh2 says EAGAIN, for at most
    /// `closeGrace`: a jump host that stopped answering never confirms the close, and the
    /// tunnel's slot (which devices queue for) would stay taken for good. Given up, the channel
    /// is freed with its session.
    private func finishClosing() -> IOStep<Void> {
        let rc = libssh2_channel_free(channel.pointer)
        guard rc == LIBSSH2_ERROR_EAGAIN else { return .done(()) }
        let since = closingSince ?? .now
        closingSince = since
        return since.duration(to: .now) > closeGrace ? .done(()) : .wait(.read)
    }
}
