import Foundation

/// Why a bundle could not be read or did not verify. Each description is one line a support
/// engineer can act on. Member names and reasons are quoted as found: whoever prints a
/// description escapes it (``TerminalText``), once.
public enum BundleError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case notGzip
    case corruptCompression(String)
    case truncated(String)
    case tooLarge(String)
    case tooManyMembers(limit: Int)
    case malformedArchive(String)
    case unsafeMemberName(String)
    case unsupportedMemberType(name: String, type: String)
    case duplicateMember(String)
    case missingMember(String)
    case unlistedMember(String)
    case manifestUnreadable(String)
    case unsupportedVersion(found: Int, supported: Int)
    case invalidPublicKey(String)
    case badSignature(fingerprint: String)
    case untrustedKey(fingerprint: String)
    case digestMismatch(member: String)
    case sizeMismatch(member: String, expected: Int, found: Int)
    /// Non-zero bytes after the tar end-of-archive marker (at `markerOffset`); `count` bytes
    /// follow the marker, the first non-zero one at `firstByte`.
    case trailingData(markerOffset: Int, firstByte: Int, count: Int)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason): return "cannot read \(path): \(reason)"
        case .notGzip: return "not a bundle: the file is not gzip-compressed"
        case let .corruptCompression(reason): return "corrupt bundle: gzip data is damaged (\(reason))"
        case let .truncated(reason): return "truncated bundle: \(reason)"
        case let .tooLarge(reason): return "refused: bundle too large, \(reason)"
        case let .tooManyMembers(limit): return "refused: the archive holds more than \(limit) members"
        case let .malformedArchive(reason): return "corrupt bundle: \(reason)"
        case let .unsafeMemberName(name): return "refused: unsafe member name \"\(name)\" (absolute or with ..)"
        case let .unsupportedMemberType(name, type): return "refused: member \(name) is not a regular file (tar type \(type))"
        case let .duplicateMember(name): return "refused: member \(name) appears twice"
        case let .missingMember(name): return "incomplete bundle: member \(name) is missing"
        case let .unlistedMember(name): return "tampered bundle: member \(name) is not listed in the signed manifest"
        case let .manifestUnreadable(reason): return "corrupt bundle: manifest.json unreadable (\(reason))"
        case let .unsupportedVersion(found, supported):
            return "unsupported bundle format version \(found): this care-agent reads versions 1 to \(supported); upgrade care-agent"
        case let .invalidPublicKey(reason): return "invalid public key: \(reason)"
        case let .badSignature(fingerprint): return "tampered bundle: manifest signature does not verify with key \(fingerprint)"
        case let .untrustedKey(fingerprint):
            return "untrusted signer: bundle is signed by \(fingerprint), which is not among the trusted keys (--pubkey/--keys)"
        case let .digestMismatch(member): return "tampered bundle: SHA-256 of \(member) does not match the manifest"
        case let .sizeMismatch(member, expected, found):
            return "tampered bundle: \(member) is \(found) bytes, manifest says \(expected)"
        case let .trailingData(markerOffset, firstByte, count):
            return "refused: \(count) bytes after the tar end-of-archive marker at byte \(markerOffset) (data at byte \(firstByte)): "
                + "nothing may follow it, the bundle was altered after it was written"
        }
    }
}

/// Why a bundle could not be written.
public enum BundleWriteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed; `call` and `path` say which and where.
    case system(call: String, path: String, errno: Int32)
    /// The contents cannot be stored as given (duplicate RPC, bad RPC name).
    case invalidContents(String)
    case compression(String)
    case encoding(String)

    /// The file system is full (or the user's quota is): room made elsewhere would let it succeed.
    public var isOutOfSpace: Bool {
        if case let .system(_, _, code) = self { return code == ENOSPC || code == EDQUOT }
        return false
    }

    public var description: String {
        switch self {
        case let .system(call, path, code): return "\(call) \(path): \(SystemCall.message(code))"
        case let .invalidContents(reason): return "cannot write bundle: \(reason)"
        case let .compression(reason): return "cannot compress bundle: \(reason)"
        case let .encoding(reason): return "cannot encode bundle: \(reason)"
        }
    }
}
