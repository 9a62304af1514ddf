import CLibSSH2
import Foundation
import IOLoop

/// A channel of an ``SSHSession`` running a subsystem. It owns the `LIBSSH2_CHANNEL` and keeps
/// its session alive. One read or write at a time.
public final class SSHChannel: @unchecked Sendable {
    public let session: SSHSession
    private var channel: OpaquePointer?

    init(session: SSHSession, channel: OpaquePointer) {
        self.session = session
        self.channel = channel
    }

    deinit {
        if let channel { libssh2_channel_free(channel) }
    }

    /// Largest read handed back at once.
    static let readChunk = 256 * 1024
    /// One libssh2 read: its channel packets carry at most 32 KiB.
    static let scratchSize = 32 * 1024

    /// The bytes available next (waiting until some arrive); nil when the server closed the channel.
    /// Sends SSH keepalives while it waits.
    public func read(deadline: ContinuousClock.Instant?) async throws -> [UInt8]? {
        guard let channel else { throw SSHError.closed(peer: session.peer) }
        let handle = SendablePointer(channel)
        return try await session.drive("reading from the channel", deadline: deadline, tick: session.timeouts.keepalive) { s -> LibSSH2Outcome<[UInt8]?> in
            // Stderr first: reading it makes libssh2 pull packets off the socket, stdout data among
            // them. Read after the stdout loop, that data would sit in libssh2's buffer while we
            // wait for the socket, which has nothing more to say: a reply lost until the timeout.
            SSHChannel.drainStandardError(handle.pointer)
            // Read through a small scratch buffer on the stack and keep only what arrived: a
            // zeroed 256 KiB array per attempt (most attempts find nothing) cost more CPU than
            // the protocol work in a 1,000-device profile (memset and page clearing).
            var received: [UInt8] = []
            var failure: Int32?
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: SSHChannel.scratchSize) { scratch in
                while received.count < SSHChannel.readChunk {
                    let n = care_ssh2_channel_read(handle.pointer, scratch.baseAddress!, scratch.count)
                    if n > 0 {
                        scratch.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: n) {
                            received.append(contentsOf: UnsafeBufferPointer(start: $0, count: n))
                        }
                        continue
                    }
                    if n == Int(LIBSSH2_ERROR_EAGAIN) || n == 0 { break }
                    failure = Int32(n)
                    break
                }
            }
            if let failure { return .failed(failure) }
            if !received.isEmpty { return .ok(received) }
            if libssh2_channel_eof(handle.pointer) != 0 { return .ok(nil) }
            var next: Int32 = 0
            _ = libssh2_keepalive_send(s, &next)
            return .again
        }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) async throws {
        guard let channel else { throw SSHError.closed(peer: session.peer) }
        let handle = SendablePointer(channel)
        let progress = WriteProgress()
        _ = try await session.drive("writing to the channel", deadline: deadline, tick: nil) { _ -> LibSSH2Outcome<Bool> in
            while progress.offset < bytes.count {
                let n = bytes.withUnsafeBytes { raw in
                    care_ssh2_channel_write(handle.pointer, raw.baseAddress!.assumingMemoryBound(to: CChar.self) + progress.offset,
                                            raw.count - progress.offset)
                }
                if n > 0 { progress.offset += n; continue }
                if n == Int(LIBSSH2_ERROR_EAGAIN) { return .again }
                return .failed(Int32(n))
            }
            return .ok(true)
        }
    }

    /// Closes and frees the channel, then the session.
    public func close() async {
        if let channel {
            self.channel = nil
            await SSHChannel.free(channel, session: session)
        }
        await session.close()
    }

    /// Best-effort channel close (bounded: a hung peer does not hold up teardown), then free.
    static func free(_ channel: OpaquePointer, session: SSHSession) async {
        let handle = SendablePointer(channel)
        _ = try? await session.call("closing the channel", deadline: .now + .seconds(2)) { _ in
            libssh2_channel_close(handle.pointer)
        }
        _ = try? await session.call("freeing the channel", deadline: .now + .seconds(1)) { _ in
            libssh2_channel_free(handle.pointer)
        }
    }

    /// Subsystem stderr would otherwise fill the window and stall the channel.
    private static func drainStandardError(_ channel: OpaquePointer) {
        var scratch = [CChar](repeating: 0, count: 4096)
        while care_ssh2_channel_read_stderr(channel, &scratch, scratch.count) > 0 {}
    }
}

/// Bytes written so far; touched only on the loop thread.
final class WriteProgress: @unchecked Sendable {
    var offset = 0
}
