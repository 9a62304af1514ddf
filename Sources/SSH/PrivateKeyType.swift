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
        // After the magic: strings cipher, kdf, kdf options, uint32 key count, then the first
        // public key, a string whose first string is the type.
        guard var reader = SSHWireReader(openSSHKeyText: text),
              reader.string() != nil, reader.string() != nil, reader.string() != nil,
              let count = reader.uint32(), count >= 1,
              let publicKey = reader.string() else { return nil }
        var inner = SSHWireReader(publicKey)
        guard let type = inner.string(), type.count <= 64 else { return nil }
        return String(decoding: type, as: UTF8.self)
    }
}
