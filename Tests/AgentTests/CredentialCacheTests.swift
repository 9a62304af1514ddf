@testable import Agent
import Foundation
import SSH
import Testing
import TestSupport

/// Credentials are resolved once per source and again only when a file behind them changes.
@Suite struct CredentialCacheTests {
    func write(_ text: String, to path: String, mode: mode_t = 0o600) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode)
    }

    @Test func resolvedOnceAndAgainWhenAFileChanges() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("id_test").path
        let password = dir.appendingPathComponent("password").path
        try write("-----BEGIN OPENSSH PRIVATE KEY-----\nfirst\n", to: key)
        try write("s3cret\n", to: password)
        let source = CredentialSource(user: "netconf", keyFile: key, passwordFile: password)
        let cache = CredentialCache()
        let first = try cache.credentials(group: "core", source: source, environment: [:])
        #expect(first.privateKey == Array("-----BEGIN OPENSSH PRIVATE KEY-----\nfirst\n".utf8))
        #expect(first.password == "s3cret")
        for _ in 0..<100 { _ = try cache.credentials(group: "core", source: source, environment: [:]) }
        #expect(cache.resolutions == 1)

        // A rewritten key (the same size, even) is read again.
        try write("-----BEGIN OPENSSH PRIVATE KEY-----\nsecnd\n", to: key)
        #expect(try cache.credentials(group: "core", source: source, environment: [:]).privateKey
            == Array("-----BEGIN OPENSSH PRIVATE KEY-----\nsecnd\n".utf8))
        #expect(cache.resolutions == 2)

        // A key opened to others is refused at once, as on the first read.
        chmod(key, 0o644)
        #expect(throws: CredentialError.self) { try cache.credentials(group: "core", source: source, environment: [:]) }
        chmod(key, 0o600)

        // A new password file (replaced by rename) is read again.
        let next = dir.appendingPathComponent("password.new").path
        try write("rotated\n", to: next)
        rename(next, password)
        #expect(try cache.credentials(group: "core", source: source, environment: [:]).password == "rotated")

        // Gone: every device says so; nothing stale is used.
        unlink(key)
        #expect(throws: CredentialError.self) { try cache.credentials(group: "core", source: source, environment: [:]) }
    }
}
