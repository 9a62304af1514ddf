import Crypto
import Foundation

/// A client private key parsed once and kept in memory, signing public key authentications
/// itself (libssh2's sign callback) with swift-crypto.
///
/// Why not libssh2's own `publickey_frommemory`: with OpenSSL 3 it parses the key twice per
/// session through OpenSSL's generic decoders (every decoder of every provider tried in turn),
/// 6% of the agent's CPU in a 1,000-device run; one signature is microseconds.
///
/// Takes unencrypted OpenSSH-format keys (`-----BEGIN OPENSSH PRIVATE KEY-----`, what
/// `ssh-keygen` writes) of type ed25519 and ecdsa (nistp256, nistp384, nistp521), and PEM EC
/// keys (SEC 1 or PKCS #8). Anything else (RSA, encrypted keys) returns nil from the initialiser
/// and authenticates through libssh2 as before.
public struct SSHSigningKey: Sendable {
    /// swift-crypto's keys are immutable after creation and BoringSSL signs with a const key, so
    /// sharing one between sessions on several threads is safe; swift-crypto does not say so.
    enum Key: @unchecked Sendable {
        case ed25519(Curve25519.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case p521(P521.Signing.PrivateKey)
    }

    let key: Key
    /// The public key as SSH sends it (`string type, ...`): what the server looks up in authorized_keys.
    public let publicKeyBlob: [UInt8]
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, ...
    public let type: String

    /// Parses `bytes`, a private key file's contents; nil when it is not a key this type signs with.
    public init?(privateKey bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            guard let parsed = Self.openSSH(text) else { return nil }
            (key, type) = parsed
        } else if text.contains("-----BEGIN EC PRIVATE KEY-----") || text.contains("-----BEGIN PRIVATE KEY-----") {
            if let k = try? P256.Signing.PrivateKey(pemRepresentation: text) { (key, type) = (.p256(k), "ecdsa-sha2-nistp256") }
            else if let k = try? P384.Signing.PrivateKey(pemRepresentation: text) { (key, type) = (.p384(k), "ecdsa-sha2-nistp384") }
            else if let k = try? P521.Signing.PrivateKey(pemRepresentation: text) { (key, type) = (.p521(k), "ecdsa-sha2-nistp521") }
            else { return nil }
        } else {
            return nil
        }
        var blob = SSHWire()
        blob.string(Array(type.utf8))
        switch key {
        case let .ed25519(k): blob.string(Array(k.publicKey.rawRepresentation))
        case let .p256(k): blob.string(Array("nistp256".utf8)); blob.string(Array(k.publicKey.x963Representation))
        case let .p384(k): blob.string(Array("nistp384".utf8)); blob.string(Array(k.publicKey.x963Representation))
        case let .p521(k): blob.string(Array("nistp521".utf8)); blob.string(Array(k.publicKey.x963Representation))
        }
        publicKeyBlob = blob.bytes
    }

    /// The signature blob libssh2 wraps as `string type, string blob`: the 64 bytes of an Ed25519
    /// signature; `mpint r, mpint s` for ECDSA (RFC 5656 section 3.1.2).
    public func sign(_ data: UnsafeRawBufferPointer) throws -> [UInt8] {
        func ecdsa(_ raw: Data) -> [UInt8] {
            let half = raw.count / 2
            var blob = SSHWire()
            blob.mpint(Array(raw.prefix(half)))
            blob.mpint(Array(raw.suffix(half)))
            return blob.bytes
        }
        switch key {
        case let .ed25519(k): return Array(try k.signature(for: data))
        case let .p256(k): return ecdsa(try k.signature(for: data).rawRepresentation)
        case let .p384(k): return ecdsa(try k.signature(for: data).rawRepresentation)
        case let .p521(k): return ecdsa(try k.signature(for: data).rawRepresentation)
        }
    }

    /// An unencrypted `openssh-key-v1` (PROTOCOL.key in OpenSSH's sources) holding one key.
    static func openSSH(_ text: String) -> (Key, String)? {
        guard var r = SSHWireReader(openSSHKeyText: text),
              r.string() == Array("none".utf8), r.string() == Array("none".utf8), r.string() != nil,
              r.uint32() == 1, r.string() != nil, let section = r.string() else { return nil }
        var s = SSHWireReader(section)
        guard let check1 = s.uint32(), check1 == s.uint32(), let typeBytes = s.string() else { return nil }
        let type = String(decoding: typeBytes, as: UTF8.self)
        switch type {
        case "ssh-ed25519":
            // string public (32), string private (seed 32 || public 32)
            guard s.string()?.count == 32, let secret = s.string(), secret.count == 64,
                  let k = try? Curve25519.Signing.PrivateKey(rawRepresentation: secret.prefix(32)) else { return nil }
            return (.ed25519(k), type)
        case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
            // string curve, string Q, mpint d
            guard s.string() != nil, s.string() != nil, let d = s.string() else { return nil }
            let scalar = Array(d.drop(while: { $0 == 0 }))
            func padded(_ size: Int) -> [UInt8]? { scalar.count <= size ? [UInt8](repeating: 0, count: size - scalar.count) + scalar : nil }
            switch type {
            case "ecdsa-sha2-nistp256":
                guard let raw = padded(32), let k = try? P256.Signing.PrivateKey(rawRepresentation: raw) else { return nil }
                return (.p256(k), type)
            case "ecdsa-sha2-nistp384":
                guard let raw = padded(48), let k = try? P384.Signing.PrivateKey(rawRepresentation: raw) else { return nil }
                return (.p384(k), type)
            default:
                guard let raw = padded(66), let k = try? P521.Signing.PrivateKey(rawRepresentation: raw) else { return nil }
                return (.p521(k), type)
            }
        default:
            return nil
        }
    }
}
