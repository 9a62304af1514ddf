import Foundation
import SSH

/// Each group's SSH login, resolved once (secret files read, permissions checked, the private
/// key read into memory) and again only when a file behind it changes: a collection of
/// thousands of devices costs a stat(2) per file per device, instead of reading the secret files
/// and reading and parsing the private key twice (libssh2 derives the public key from it, then
/// signs with it) for every session. Failures are not kept: every device reports its own.
final class CredentialCache: @unchecked Sendable {
    private struct Entry {
        var stamps: [FileStamp]
        var credentials: SSHCredentials
    }

    /// Larger than any private key; a larger file is left to libssh2 to read (and refuse).
    static let maximumKeySize = 64 * 1024

    private let lock = NSLock()
    /// How many times credentials were read from their files (for tests and debugging).
    var resolutions: Int { lock.withLock { resolved } }
    private var resolved = 0
    /// By source, not group name: a device may bring its own login (an inventory's user).
    private var entries: [CredentialSource: Entry] = [:]

    /// The credentials of `group`, resolved through `source`.
    func credentials(group: String, source: CredentialSource, environment: [String: String]) throws(CredentialError) -> SSHCredentials {
        // Stamped before reading: a change while reading shows at the next device.
        let stamps = source.files(environment: environment).map(FileStamp.of)
        if let entry = lock.withLock({ entries[source] }), entry.stamps == stamps { return entry.credentials }
        var credentials = try source.resolve(group: group, environment: environment)
        lock.withLock { resolved += 1 }
        if let path = credentials.privateKeyPath { credentials.privateKey = Self.readKey(path) }
        lock.withLock { entries[source] = Entry(stamps: stamps, credentials: credentials) }
        return credentials
    }

    /// The key file's bytes, or nil (then libssh2 reads the file, and says what is wrong with it).
    static func readKey(_ path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path), data.count <= maximumKeySize else { return nil }
        return [UInt8](data)
    }
}

extension CredentialSource {
    /// The files these credentials are read from: the key, and the passphrase and password files
    /// or systemd credentials.
    func files(environment: [String: String]) -> [String] {
        let credentials = environment["CREDENTIALS_DIRECTORY"]
        return [keyFile, passphraseFile, passwordFile,
                passphraseCredential.flatMap { name in credentials.map { $0 + "/" + name } },
                passwordCredential.flatMap { name in credentials.map { $0 + "/" + name } }].compactMap { $0 }
    }
}
