import Foundation

/// SSH wire encoding (RFC 4251 section 5): what key blobs and signatures are made of.
struct SSHWire {
    var bytes: [UInt8] = []

    mutating func uint32(_ value: Int) {
        bytes += [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                  UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    mutating func string(_ value: [UInt8]) {
        uint32(value.count)
        bytes += value
    }

    /// A non-negative integer from big-endian bytes: no leading zeros, one added when the top bit is set.
    mutating func mpint(_ magnitude: [UInt8]) {
        var value = Array(magnitude.drop(while: { $0 == 0 }))
        if let first = value.first, first & 0x80 != 0 { value.insert(0, at: 0) }
        string(value)
    }
}

/// Reads SSH wire encoding, bounds-checked: nil past the end.
struct SSHWireReader {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The contents of an OpenSSH-format private key file (`openssh-key-v1`, PROTOCOL.key in
    /// OpenSSH's sources), positioned after the magic; nil when `text` is not one.
    init?(openSSHKeyText text: String) {
        let begin = "-----BEGIN OPENSSH PRIVATE KEY-----", end = "-----END OPENSSH PRIVATE KEY-----"
        guard let start = text.range(of: begin), let stop = text.range(of: end, range: start.upperBound..<text.endIndex) else { return nil }
        let body = text[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
        guard let blob = Data(base64Encoded: String(body)) else { return nil }
        self.init(Array(blob))
        let magic = Array("openssh-key-v1\0".utf8)
        guard take(magic.count) == magic else { return nil }
    }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, count <= bytes.count - offset else { return nil }
        defer { offset += count }
        return Array(bytes[offset ..< offset + count])
    }

    mutating func uint32() -> Int? {
        guard let b = take(4) else { return nil }
        return Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
    }

    mutating func string() -> [UInt8]? {
        guard let count = uint32() else { return nil }
        return take(count)
    }
}
