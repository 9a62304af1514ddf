/// NETCONF message framing (RFC 6242): base:1.0 end-of-message (`]]>]]>`) or base:1.1 chunked.
public enum FramingMode: String, Sendable, Equatable {
    case endOfMessage = "base:1.0"
    case chunked = "base:1.1"
}

/// Why a byte stream cannot be split into NETCONF messages.
public enum FramingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A chunk header was not `\n#<size>\n` or `\n##\n`.
    case badChunkHeader(offset: Int, found: String)
    /// A chunk size of 0, above 4294967295, or with a leading zero.
    case badChunkSize(String)
    /// A message exceeded the configured maximum.
    case messageTooLarge(limit: Int)

    public var description: String {
        switch self {
        case let .badChunkHeader(offset, found):
            return "chunked framing broken at byte \(offset) of the stream: expected \\n#<size>\\n or \\n##\\n, found \"\(found)\""
        case let .badChunkSize(size):
            return "chunked framing: invalid chunk size \"\(size)\" (RFC 6242: 1 to 4294967295, no leading zero)"
        case let .messageTooLarge(limit):
            return limit >= 1 << 20 && limit % (1 << 20) == 0
                ? "message larger than the \(limit >> 20) MiB limit"
                : "message larger than the \(limit)-byte limit"
        }
    }
}

/// Splits a received byte stream into NETCONF messages. Pure: fed bytes, returns messages.
/// Bytes are copied once into the pending message; nothing is rescanned, so a 100 MB reply
/// costs linear time.
public struct FrameDecoder: Sendable {
    /// Switch to `.chunked` after the hello exchange when both sides offered base:1.1.
    public var mode: FramingMode
    /// Messages larger than this fail with ``FramingError/messageTooLarge(limit:)``.
    public let maximumMessageSize: Int

    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// End-of-message mode: how far `buffer` has been searched for the delimiter.
    private var scanned = 0
    /// Chunked mode: the message assembled from the chunks so far, and bytes left in the current chunk.
    private var message: [UInt8] = []
    private var chunkRemaining = 0
    private var consumedTotal = 0

    /// The default limit: 250 times the largest real Junos reply we know (133 KB), room for a
    /// large configuration in XML. Parsed, a reply costs about 14 times its size; large ones take
    /// turns within ``ReplyMemoryBudget`` (docs/security.md, "Memory ceiling"). Raise it per group
    /// with `maximum-reply-size` for configurations larger than this.
    public static let defaultMaximumMessageSize = 32 << 20

    public init(mode: FramingMode = .endOfMessage, maximumMessageSize: Int = FrameDecoder.defaultMaximumMessageSize) {
        self.mode = mode
        self.maximumMessageSize = maximumMessageSize
    }

    /// Bytes received but not yet returned as part of a message.
    public var bufferedByteCount: Int { buffer.count - readIndex + message.count }

    /// Bytes of storage the decoder holds (its buffers' capacity): what a session waiting for
    /// its next reply costs.
    public var heldCapacity: Int { buffer.capacity + message.capacity }

    /// Appends received bytes.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if readIndex > 0 && readIndex >= buffer.count / 2 {
            buffer.removeSubrange(0..<readIndex)
            scanned -= readIndex
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, or nil when more bytes are needed.
    public mutating func nextMessage() throws(FramingError) -> [UInt8]? {
        switch mode {
        case .endOfMessage: return try nextEndOfMessage()
        case .chunked: return try nextChunked()
        }
    }

    private static let delimiter: [UInt8] = Array("]]>]]>".utf8)

    private mutating func nextEndOfMessage() throws(FramingError) -> [UInt8]? {
        let d = FrameDecoder.delimiter
        var i = max(readIndex, scanned)
        let end = buffer.count
        while i + d.count <= end {
            // Fast skip to the next ']'.
            if buffer[i] != 0x5D { i += 1; continue }
            if buffer[i + 1] == 0x5D && buffer[i + 2] == 0x3E && buffer[i + 3] == 0x5D
                && buffer[i + 4] == 0x5D && buffer[i + 5] == 0x3E {
                let message = Array(buffer[readIndex..<i])
                consumed(i + d.count - readIndex)
                readIndex = i + d.count
                scanned = readIndex
                releaseIfDrained()
                return message
            }
            i += 1
        }
        scanned = max(readIndex, end - d.count + 1)
        if end - readIndex > maximumMessageSize { throw .messageTooLarge(limit: maximumMessageSize) }
        return nil
    }

    private mutating func nextChunked() throws(FramingError) -> [UInt8]? {
        while true {
            if chunkRemaining > 0 {
                let available = min(chunkRemaining, buffer.count - readIndex)
                if available == 0 { return nil }
                if message.count + available > maximumMessageSize { throw .messageTooLarge(limit: maximumMessageSize) }
                message.append(contentsOf: buffer[readIndex..<readIndex + available])
                readIndex += available
                consumed(available)
                chunkRemaining -= available
                continue
            }
            // Header: "\n#" then either "#\n" (end of message) or digits then "\n".
            let available = buffer.count - readIndex
            if available < 3 { return nil }
            guard buffer[readIndex] == 0x0A, buffer[readIndex + 1] == 0x23 else {
                throw .badChunkHeader(offset: consumedTotal, found: preview(at: readIndex))
            }
            if buffer[readIndex + 2] == 0x23 {
                if available < 4 { return nil }
                guard buffer[readIndex + 3] == 0x0A else {
                    throw .badChunkHeader(offset: consumedTotal, found: preview(at: readIndex))
                }
                readIndex += 4
                consumed(4)
                let complete = message
                message = []
                releaseIfDrained()
                return complete
            }
            var j = readIndex + 2
            var size = 0
            while j < buffer.count, buffer[j] >= 0x30, buffer[j] <= 0x39 {
                size = size * 10 + Int(buffer[j] - 0x30)
                if j - (readIndex + 2) > 10 { throw .badChunkSize(String(decoding: buffer[(readIndex + 2)...j], as: UTF8.self)) }
                j += 1
            }
            if j == buffer.count { return nil }
            let digits = buffer[(readIndex + 2)..<j]
            guard buffer[j] == 0x0A, !digits.isEmpty else {
                throw .badChunkHeader(offset: consumedTotal, found: preview(at: readIndex))
            }
            guard digits.first != 0x30, size >= 1, size <= 4_294_967_295 else {
                throw .badChunkSize(String(decoding: digits, as: UTF8.self))
            }
            consumed(j + 1 - readIndex)
            readIndex = j + 1
            chunkRemaining = size
        }
    }

    private mutating func consumed(_ count: Int) { consumedTotal += count }

    /// Gives the buffer back once everything in it was returned: a session spends most of its
    /// life waiting for the next reply (200 ms and more against ~1 ms receiving it), and should
    /// hold nothing meanwhile. Keeping up to 16 KiB cost ~5 MiB at the peak of 512 sessions
    /// (docs/performance.md); a new buffer per reply costs a malloc or two.
    private mutating func releaseIfDrained() {
        guard readIndex == buffer.count, buffer.capacity > 0 else { return }
        buffer = []
        readIndex = 0
        scanned = 0
    }

    private func preview(at index: Int) -> String {
        let slice = buffer[index..<min(buffer.count, index + 12)]
        return String(decoding: slice, as: UTF8.self)
            .replacingNewlines
    }
}

/// Frames outgoing messages.
public enum FrameEncoder {
    /// Largest chunk written in chunked mode (any size up to 4 GiB is legal; smaller chunks let
    /// the peer start parsing earlier).
    public static let chunkSize = 1 << 20

    public static func encode(_ message: [UInt8], mode: FramingMode) -> [UInt8] {
        switch mode {
        case .endOfMessage:
            return message + Array("]]>]]>".utf8)
        case .chunked:
            var out: [UInt8] = []
            out.reserveCapacity(message.count + 32)
            var offset = 0
            while offset < message.count {
                let size = min(chunkSize, message.count - offset)
                out.append(contentsOf: Array("\n#\(size)\n".utf8))
                out.append(contentsOf: message[offset..<offset + size])
                offset += size
            }
            out.append(contentsOf: Array("\n##\n".utf8))
            return out
        }
    }

    public static func encode(_ message: String, mode: FramingMode) -> [UInt8] {
        encode(Array(message.utf8), mode: mode)
    }
}

extension String {
    var replacingNewlines: String {
        var out = ""
        for ch in self {
            switch ch {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.append(ch)
            }
        }
        return out
    }
}
