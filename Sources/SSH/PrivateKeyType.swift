import Foundation

/// The algorithm of a private key file (`ssh-rsa`, `ssh-ed25519`, `ecdsa-sha2-nistp256`...),
/// read without decrypting it, to explain an authentication failure: PEM files name it in their
/// header; OpenSSH's format keeps the public key unencrypted, whose first field is the type.
enum PrivateKeyType {
    /// Private key files are a few KB; anything larger is not read.
    static let maximumFileSize = 64 * 1024

    static func of(file path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: maximumFileSize) else { return nil }
        return of(text: String(decoding: data, as: UTF8.self))
    }

    static func of(text: String) -> String? {
        if text.contains("-----BEGIN RSA PRIVATE KEY-----") { return "ssh-rsa" }
        if text.contains("-----BEGIN EC PRIVATE KEY-----") { return "ecdsa" }
        let begin = "-----BEGIN OPENSSH PRIVATE KEY-----", end = "-----END OPENSSH PRIVATE KEY-----"
        guard let start = text.range(of: begin), let stop = text.range(of: end, range: start.upperBound..<text.endIndex) else { return nil }
        let body = text[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
        guard let blob = Data(base64Encoded: String(body)) else { return nil }
        // "openssh-key-v1\0", then strings cipher, kdf, kdf options, uint32 key count, then the
        // first public key, a string whose first string is the type.
        var reader = BlobReader(bytes: Array(blob))
        let magic = Array("openssh-key-v1\0".utf8)
        guard reader.take(magic.count) == magic,
              reader.string() != nil, reader.string() != nil, reader.string() != nil,
              let count = reader.uint32(), count >= 1,
              let publicKey = reader.string() else { return nil }
        var inner = BlobReader(bytes: publicKey)
        guard let type = inner.string(), type.count <= 64 else { return nil }
        return String(decoding: type, as: UTF8.self)
    }

    /// SSH wire-format fields (RFC 4251), bounds-checked.
    struct BlobReader {
        let bytes: [UInt8]
        var offset = 0

        mutating func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, count <= bytes.count - offset else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        mutating func uint32() -> UInt32? {
            guard let b = take(4) else { return nil }
            return b.reduce(0) { $0 << 8 | UInt32($1) }
        }

        mutating func string() -> [UInt8]? {
            guard let length = uint32() else { return nil }
            return take(Int(length))
        }
    }
}
