import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An Ed25519 public key that signs bundles, with the fingerprint people compare.
public struct AgentPublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The raw 32-byte key.
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation: some Collection<UInt8>) throws(BundleError) {
        let raw = Array(rawRepresentation)
        guard raw.count == 32, (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil else {
            throw .invalidPublicKey("an Ed25519 public key is 32 bytes, got \(raw.count)")
        }
        self.rawRepresentation = raw
    }

    /// Parses the base64 form `care-agent key show` prints (surrounding whitespace ignored).
    public init(base64: String) throws(BundleError) {
        guard let data = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .invalidPublicKey("not base64: \(base64.prefix(60))")
        }
        try self.init(rawRepresentation: data)
    }

    public var base64: String { Data(rawRepresentation).base64EncodedString() }

    /// `SHA256:` + unpadded base64 of the SHA-256 of the raw key (the OpenSSH fingerprint style).
    public var fingerprint: String {
        let digest = Data(SHA256.hash(data: rawRepresentation)).base64EncodedString()
        return "SHA256:" + digest.trimmingCharacters(in: CharacterSet(charactersIn: "="))
    }

    /// PEM (SubjectPublicKeyInfo) so `openssl pkeyutl -verify` can check a manifest by hand.
    public var pem: String {
        let spkiPrefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]
        let body = Data(spkiPrefix + rawRepresentation).base64EncodedString()
        return "-----BEGIN PUBLIC KEY-----\n\(body)\n-----END PUBLIC KEY-----\n"
    }

    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    public var description: String { fingerprint }
}

/// Why the agent key could not be loaded or created.
public enum AgentKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    case missing(path: String)
    case unreadable(path: String, reason: String)
    case insecurePermissions(path: String, mode: String)
    case malformed(path: String)
    case cannotCreate(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missing(path):
            return "no agent key at \(path): the agent creates it on first start (or use `care-agent key show --create`)"
        case let .unreadable(path, reason): return "cannot read agent key \(path): \(reason)"
        case let .insecurePermissions(path, mode):
            return "agent key \(path) has mode \(mode), readable by others: run `chmod 600 \(path)` (and consider the key leaked)"
        case let .malformed(path): return "agent key \(path) is not a base64 Ed25519 private key"
        case let .cannotCreate(path, reason): return "cannot create agent key \(path): \(reason)"
        }
    }
}

/// The agent's Ed25519 signing key, kept as base64 of the 32-byte private key in
/// `<state directory>/agent-ed25519.key`, mode 0600.
public struct AgentKey: Sendable {
    public static let fileName = "agent-ed25519.key"

    /// Kept as raw bytes: the swift-crypto key type is not Sendable.
    private let privateKeyBytes: [UInt8]
    public let publicKey: AgentPublicKey

    public var privateKey: Curve25519.Signing.PrivateKey {
        // The bytes came from a valid key.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: privateKeyBytes)
    }

    public init(privateKey: Curve25519.Signing.PrivateKey) {
        self.privateKeyBytes = Array(privateKey.rawRepresentation)
        // A 32-byte key from the library is always valid.
        self.publicKey = try! AgentPublicKey(rawRepresentation: privateKey.publicKey.rawRepresentation)
    }

    /// A key from its raw 32 bytes (tests, key import).
    public init(rawRepresentation: some Collection<UInt8>) throws(AgentKeyError) {
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: Array(rawRepresentation)) else {
            throw .malformed(path: "(raw key)")
        }
        self.init(privateKey: key)
    }

    public static func url(stateDirectory: URL) -> URL { stateDirectory.appendingPathComponent(fileName) }

    /// Loads the key; fails when it does not exist.
    public static func load(stateDirectory: URL) throws(AgentKeyError) -> AgentKey {
        let path = url(stateDirectory: stateDirectory).path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            if errno == ENOENT { throw .missing(path: path) }
            throw .unreadable(path: path, reason: SystemCall.message(errno))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(path: path, reason: SystemCall.message(errno)) }
        if info.st_mode & 0o077 != 0 {
            throw .insecurePermissions(path: path, mode: String(info.st_mode & 0o777, radix: 8))
        }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw .malformed(path: path) }
        let text = String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Data(base64Encoded: text), raw.count == 32,
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw .malformed(path: path)
        }
        return AgentKey(privateKey: key)
    }

    /// Loads the key, creating it on first start. Creation writes a temporary file, fsyncs it and
    /// links it into place, so a crash or a second agent starting at the same moment never leaves
    /// a half-written key: whoever links first wins and the other loads that key.
    public static func loadOrCreate(stateDirectory: URL) throws(AgentKeyError) -> AgentKey {
        do {
            return try load(stateDirectory: stateDirectory)
        } catch .missing {
            // Create below.
        }
        let dir = stateDirectory.path
        let path = url(stateDirectory: stateDirectory).path
        do {
            try SystemCall.makeDirectory(dir, mode: 0o700)
            let key = Curve25519.Signing.PrivateKey()
            let temp = "\(dir)/.\(fileName).\(getpid())-\(UInt32.random(in: 0 ... .max)).tmp"
            let fd = try SystemCall.run("open", temp) { open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
            defer { unlink(temp) }
            do {
                defer { close(fd) }
                try SystemCall.run("fchmod", temp) { fchmod(fd, 0o600) }
                let text = Data(key.rawRepresentation).base64EncodedString() + "\n"
                try SystemCall.writeAll(fd, Array(text.utf8)[...], path: temp)
                try SystemCall.run("fsync", temp) { fsync(fd) }
            }
            if link(temp, path) != 0 {
                if errno == EEXIST { return try load(stateDirectory: stateDirectory) }
                throw BundleWriteError.system(call: "link", path: path, errno: errno)
            }
            try SystemCall.syncDirectory(dir)
            return AgentKey(privateKey: key)
        } catch let error as AgentKeyError {
            throw error
        } catch {
            throw .cannotCreate(path: path, reason: "\(error)")
        }
    }

    /// `agent-ed25519.pub`: the public key in base64, mode 0644, so that `care-agent key show`
    /// works for the care-agent group (the private key is 0600, the agent's alone).
    public static let publicFileName = "agent-ed25519.pub"

    /// Writes ``publicFileName`` beside the key when it is missing or differs (atomically).
    public func writePublicKeyFile(stateDirectory: URL) throws(BundleWriteError) {
        let dir = stateDirectory.path
        let path = stateDirectory.appendingPathComponent(Self.publicFileName).path
        let text = publicKey.base64 + "\n"
        if let existing = FileManager.default.contents(atPath: path), existing == Data(text.utf8) { return }
        let temp = "\(dir)/.\(Self.publicFileName).\(getpid())-\(UInt32.random(in: 0 ... .max)).tmp"
        let fd = try SystemCall.run("open", temp) { open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        defer { unlink(temp) }
        do {
            defer { close(fd) }
            _ = try SystemCall.run("fchmod", temp) { fchmod(fd, 0o644) }
            try SystemCall.writeAll(fd, Array(text.utf8)[...], path: temp)
            _ = try SystemCall.run("fsync", temp) { fsync(fd) }
        }
        _ = try SystemCall.run("rename", path) { rename(temp, path) }
        try SystemCall.syncDirectory(dir)
    }

    /// The public key from ``publicFileName``, for those who may not read the private key.
    public static func loadPublicKey(stateDirectory: URL) throws -> AgentPublicKey {
        let path = stateDirectory.appendingPathComponent(publicFileName).path
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw AgentKeyError.unreadable(path: path, reason: SystemCall.message(errno))
        }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: 512) ?? Data()
        return try AgentPublicKey(base64: String(decoding: data, as: UTF8.self))
    }

    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        Array(try privateKey.signature(for: message))
    }
}
