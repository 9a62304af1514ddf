/// Splits a syslog TCP stream into messages: RFC 6587 octet counting (`123 <34>1 ...`) or
/// newline framing (`<34>...\n`), told apart per message by its first byte, as rsyslog does.
/// Bounded: a message longer than `maximumLength` is skipped whole (octet counting: its stated
/// length; newline framing: up to the next newline) and reported, never buffered.
public struct SyslogFraming: Sendable {
    public enum Frame: Sendable, Equatable {
        case message([UInt8])
        /// A message over the limit (its length, or at least this many bytes), skipped.
        case oversize(Int)
        /// Not syslog framing (a length with no space after it, a length of zero): the stream
        /// cannot be resynchronised and should be closed.
        case broken(String)
    }

    public let maximumLength: Int
    private var buffer: [UInt8] = []
    /// Bytes still to drop of an oversized message (octet counting), or -1 while dropping up to
    /// the next newline (newline framing).
    private var skipping = 0
    private var skipped = 0
    private var isBroken = false

    public init(maximumLength: Int = SyslogMessage.maximumLength) {
        self.maximumLength = maximumLength
    }

    /// Feeds received bytes; returns the frames they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [Frame] {
        guard !isBroken else { return [] }
        buffer.append(contentsOf: bytes)
        var frames: [Frame] = []
        let consumed = split(into: &frames)
        buffer.removeSubrange(0 ..< min(consumed, buffer.count))
        return frames
    }

    /// Appends the complete frames at the start of the buffer; returns how many bytes they took.
    private mutating func split(into frames: inout [Frame]) -> Int {
        var start = 0
        while start < buffer.count {
            if skipping > 0 {
                let n = min(skipping, buffer.count - start)
                skipping -= n
                start += n
                if skipping == 0 { frames.append(.oversize(skipped)) }
                continue
            }
            if skipping < 0 {
                if let newline = buffer[start...].firstIndex(of: 0x0A) {
                    skipped += newline - start
                    start = newline + 1
                    skipping = 0
                    frames.append(.oversize(skipped))
                } else {
                    skipped += buffer.count - start
                    start = buffer.count
                }
                continue
            }
            let first = buffer[start]
            if first == 0x0A || first == 0x0D || first == 0 {
                start += 1
                continue
            }
            if (0x30 ... 0x39).contains(first) {
                // Octet counting: digits, one space, then that many bytes.
                var i = start
                var length = 0
                while i < buffer.count, (0x30 ... 0x39).contains(buffer[i]), i - start < 9 {
                    length = length * 10 + Int(buffer[i] - 0x30)
                    i += 1
                }
                guard i < buffer.count else { return start }  // the length continues in the next read
                guard buffer[i] == 0x20, length > 0 else {
                    isBroken = true
                    frames.append(.broken("an octet count not followed by a space, or zero"))
                    return buffer.count
                }
                if length > maximumLength {
                    skipping = length
                    skipped = length
                    start = i + 1
                    continue
                }
                guard buffer.count - (i + 1) >= length else { return start }
                frames.append(.message(Array(buffer[(i + 1) ..< (i + 1 + length)])))
                start = i + 1 + length
                continue
            }
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                if newline - start > maximumLength {
                    frames.append(.oversize(newline - start))
                } else {
                    frames.append(.message(Array(buffer[start ..< newline])))
                }
                start = newline + 1
                continue
            }
            if buffer.count - start > maximumLength {
                skipping = -1
                skipped = buffer.count - start
                return buffer.count
            }
            return start
        }
        return start
    }
}
