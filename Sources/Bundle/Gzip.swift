import CZlib

/// gzip (RFC 1952) through zlib. Bundles are tar + gzip so `tar xzf` opens them on any machine.
public enum Gzip {
    /// zlib's windowBits for "gzip wrapper, 32 KiB window".
    private static let gzipWindowBits: Int32 = 15 + 16

    public static func compress(_ input: [UInt8], level: Int32 = 6) throws(BundleWriteError) -> [UInt8] {
        try deflate(input, level: level, windowBits: gzipWindowBits, memoryLevel: 8)
    }

    /// One-shot deflate of `input`, returned at its exact size (a buffer sized for incompressible
    /// input, trimmed, would keep that capacity; sealed bundles and ``DeflatedBytes`` wait in
    /// memory). `windowBits`: zlib's (15 + 16 for gzip, negative for raw deflate); `memoryLevel`
    /// sizes zlib's hash table (8 is its default).
    static func deflate(_ input: [UInt8], level: Int32, windowBits: Int32, memoryLevel: Int32) throws(BundleWriteError) -> [UInt8] {
        var stream = z_stream()
        guard care_deflate_init2(&stream, level, windowBits, memoryLevel) == Z_OK else {
            throw .compression("zlib deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 64)
        // zlib's next_in is not const but is only read: no copy of the (possibly large) input.
        let status: Int32 = input.withUnsafeBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = uInt(outBuffer.count)
                return CZlib.deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw .compression("zlib deflate returned \(status)") }
        return Array(output[..<Int(stream.total_out)])
    }

    /// Inflates a single gzip member, stopping as soon as the output would exceed `limit` bytes
    /// (a decompression bomb never gets to allocate more than that). The whole of what
    /// ``GzipInflater`` hands out a piece at a time, with its checks and errors.
    static func decompress(_ input: [UInt8], limit: Int) throws(BundleError) -> [UInt8] {
        let inflater = try GzipInflater(input, limit: limit)
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, input.count * 4))
        while let piece = try inflater.next() { output += piece }
        return output
    }

    /// The first `count` bytes a gzip stream inflates to (fewer when it ends or the input runs
    /// out first): enough to read the first archive member without unpacking the rest.
    static func decompressPrefix(_ input: [UInt8], count: Int) throws(BundleError) -> [UInt8] {
        guard input.count >= 2, input[0] == 0x1f, input[1] == 0x8b else { throw .notGzip }
        var stream = z_stream()
        guard care_inflate_init2(&stream, gzipWindowBits) == Z_OK else {
            throw .corruptCompression("zlib inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: count)
        var status: Int32 = Z_OK
        input.withUnsafeBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = uInt(outBuffer.count)
                repeat {
                    status = inflate(&stream, Z_NO_FLUSH)
                } while status == Z_OK && stream.avail_out > 0 && stream.avail_in > 0
            }
        }
        if status == Z_DATA_ERROR {
            throw .corruptCompression(stream.msg.map { String(cString: $0) } ?? "invalid data")
        }
        output.removeLast(Int(stream.avail_out))
        return output
    }
}

/// Inflates a gzip stream a piece at a time, with ``Gzip/decompress(_:limit:)``'s checks and
/// errors: for reading a bundle without holding it unpacked. zlib keeps a pointer to its
/// `z_stream`, so the stream lives at a fixed address owned here.
final class GzipInflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let input: [UInt8]
    private let limit: Int
    private var chunk: [UInt8]
    private var produced = 0
    private var ended = false

    init(_ input: [UInt8], limit: Int, chunkSize: Int = 256 * 1024) throws(BundleError) {
        guard input.count >= 2, input[0] == 0x1f, input[1] == 0x8b else {
            stream.deallocate()
            throw .notGzip
        }
        stream.initialize(to: z_stream())
        guard care_inflate_init2(stream, 15 + 16) == Z_OK else {
            stream.deallocate()
            throw .corruptCompression("zlib inflateInit2 failed")
        }
        self.input = input
        self.limit = limit
        chunk = [UInt8](repeating: 0, count: chunkSize)
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// The next inflated piece; nil once the stream has ended (and nothing follows it).
    func next() throws(BundleError) -> ArraySlice<UInt8>? {
        guard !ended else { return nil }
        let consumed = Int(stream.pointee.total_in)
        var status: Int32 = Z_OK
        let count = chunk.count
        // zlib keeps no pointer into the input between calls (its window is its own), so the
        // input is pointed at afresh each time from where it stopped.
        input.withUnsafeBufferPointer { inBuffer in
            chunk.withUnsafeMutableBufferPointer { out in
                stream.pointee.next_in = inBuffer.baseAddress.map { UnsafeMutablePointer(mutating: $0 + consumed) }
                stream.pointee.avail_in = uInt(inBuffer.count - consumed)
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(count)
                status = inflate(stream, Z_NO_FLUSH)
            }
        }
        let made = count - Int(stream.pointee.avail_out)
        produced += made
        if produced > limit { throw .tooLarge("it unpacks to more than \(limit) bytes (decompression limit)") }
        switch status {
        case Z_OK:
            break
        case Z_STREAM_END:
            ended = true
            if Int(stream.pointee.total_in) != input.count {
                throw .corruptCompression("\(input.count - Int(stream.pointee.total_in)) bytes of unexpected data after the gzip stream")
            }
        case Z_BUF_ERROR:
            throw .truncated("the gzip stream ends early (file cut short?)")
        case Z_DATA_ERROR:
            throw .corruptCompression(stream.pointee.msg.map { String(cString: $0) } ?? "invalid data")
        default:
            throw .corruptCompression("zlib inflate returned \(status)")
        }
        return chunk[..<made]
    }
}
