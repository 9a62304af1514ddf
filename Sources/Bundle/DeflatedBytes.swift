import CZlib

/// Bytes kept deflated in memory until they are needed whole: what a collection in progress
/// holds of its redacted replies. Hundreds of sessions are in flight at once, each keeping its
/// replies until its bundle is written; XML shrinks about four times.
///
/// Raw deflate at level 1 with a 4 KiB window and a small hash table (zlib's state is ~30 KiB
/// per call instead of ~270 KiB): measured on the simulated fleet's replies, the ratio is 4.18
/// (4.22 with zlib's full window and table) at ~200 MB/s. Bytes that do not shrink, or that zlib
/// cannot take, are kept as they are.
public struct DeflatedBytes: Sendable {
    /// The length of the bytes.
    public let count: Int
    private let stored: [UInt8]
    private let isDeflated: Bool

    private static let windowBits: Int32 = -12  // raw deflate, 4 KiB window
    private static let memoryLevel: Int32 = 5

    public init(_ bytes: [UInt8]) {
        count = bytes.count
        if bytes.count >= 256,
           let deflated = try? Gzip.deflate(bytes, level: 1, windowBits: Self.windowBits, memoryLevel: Self.memoryLevel),
           deflated.count < bytes.count {
            stored = deflated
            isDeflated = true
        } else {
            stored = bytes
            isDeflated = false
        }
    }

    /// Bytes kept (for tests and sizing).
    public var storedCount: Int { stored.count }
    /// Bytes of memory the kept array holds.
    public var heldCapacity: Int { stored.capacity }

    /// The bytes, inflated.
    public var bytes: [UInt8] {
        guard isDeflated else { return stored }
        guard let inflated = Self.inflate(stored, count: count) else {
            // Only this type writes `stored`: failing to inflate it means memory was corrupted.
            preconditionFailure("DeflatedBytes: \(stored.count) deflated bytes do not inflate to \(count)")
        }
        return inflated
    }

    private static func inflate(_ input: [UInt8], count: Int) -> [UInt8]? {
        var stream = z_stream()
        guard care_inflate_init2(&stream, windowBits) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var status: Int32 = Z_OK
        let output = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            input.withUnsafeBufferPointer { inBuffer in
                stream.next_in = UnsafeMutablePointer(mutating: inBuffer.baseAddress)
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = buffer.baseAddress
                stream.avail_out = uInt(count)
                status = CZlib.inflate(&stream, Z_FINISH)
            }
            initialized = Int(stream.total_out)
        }
        guard status == Z_STREAM_END, output.count == count else { return nil }
        return output
    }
}
