import Foundation
import Testing
import TestSupport
@testable import Bundle

/// Issue 10, "bundle tools trust only what was verified": every bundle command checks the signer
/// against --pubkey/--keys or says it did not; reparse --write keeps the first signer and refuses
/// to vouch for an unchecked bundle; nothing may follow the tar end marker; bundle-supplied text
/// reaches the terminal escaped.
@Suite struct BundleTrustCommandTests {
    static let unchecked = "signature checked only against the key embedded in the bundle"

    func sampleBundle(in dir: TemporaryDirectory, key: AgentKey = Sample.key) throws -> URL {
        try BundleWriter(directory: dir.url, key: key).write(try Sample.contents())
    }

    @Test func everyBundleToolWarnsWithoutTrustedKeysAndChecksThemWhenGiven() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = try sampleBundle(in: dir).path
        let mine = Sample.key.publicKey.base64, theirs = Sample.otherKey.publicKey.base64
        let commands: [[String]] = [["bundle", "inspect", file], ["bundle", "inspect", "--json", file],
                                    ["bundle", "diff", file, file], ["bundle", "reparse", file], ["bundle", "verify", file]]
        for command in commands {
            let plain = try CareAgentBinary.run(command)
            #expect(plain.status == 0, "\(command): \(plain.stderr)")
            #expect(plain.stderr.contains("warning: \(file): \(Self.unchecked) (\(Sample.key.publicKey.fingerprint))"), "\(command): \(plain.stderr)")
            #expect(!plain.stdout.contains(Self.unchecked), "\(command): the warning goes to stderr, --json output stays clean")

            let trusted = try CareAgentBinary.run(command + ["--pubkey", mine])
            #expect(trusted.status == 0, "\(command): \(trusted.stderr)")
            #expect(!trusted.stderr.contains("warning"), "\(command): \(trusted.stderr)")

            let untrusted = try CareAgentBinary.run(command + ["--pubkey", theirs])
            #expect(untrusted.status == 1, "\(command)")
            let said = untrusted.stdout + untrusted.stderr
            #expect(said.contains("untrusted signer: bundle is signed by \(Sample.key.publicKey.fingerprint), which is not among the trusted keys"),
                    "\(command): \(said)")
        }
        // A keys directory works for the tools too.
        let keys = dir.url.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        try "\(mine)\n".write(to: keys.appendingPathComponent("agents.pub"), atomically: true, encoding: .utf8)
        let inspected = try CareAgentBinary.run(["bundle", "inspect", file, "--keys", keys.path])
        #expect(inspected.status == 0 && inspected.stderr.isEmpty, "\(inspected.stderr)")
    }

    @Test func reparseWriteRefusesAnUncheckedSignerAndKeepsTheFirstSignerThroughReparses() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let original = try sampleBundle(in: dir)
        let originalId = try BundleReader().read(contentsOf: original).manifest.bundleId
        let state = dir.url.appendingPathComponent("support-state")
        let first = dir.url.appendingPathComponent("first.tar.gz"), second = dir.url.appendingPathComponent("second.tar.gz")

        let refused = try CareAgentBinary.run(["bundle", "reparse", original.path, "--write", first.path, "--state-dir", state.path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("refusing to re-sign \(original.path): its signer \(Sample.key.publicKey.fingerprint) was checked only against the key embedded in the bundle"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--trust-embedded-key"))
        #expect(!FileManager.default.fileExists(atPath: first.path))

        // Trusted: re-signed by the support key; derivedFrom names the agent's capture.
        let written = try CareAgentBinary.run(["bundle", "reparse", original.path, "--write", first.path, "--state-dir", state.path,
                                               "--pubkey", Sample.key.publicKey.base64])
        #expect(written.status == 0, "\(written.stderr)")
        let supportKey = try AgentKey.loadOrCreate(stateDirectory: state)
        let derived = try BundleReader(trust: .keys([supportKey.publicKey])).read(contentsOf: first)
        #expect(derived.manifest.derivedFrom?.originalSigner == Sample.key.publicKey.fingerprint)
        #expect(derived.manifest.derivedFrom?.bundleId == originalId)

        // A re-parse of the re-parse (trusted as the support key's) still names the first signer and capture.
        let again = try CareAgentBinary.run(["bundle", "reparse", first.path, "--write", second.path, "--state-dir", state.path,
                                             "--pubkey", supportKey.publicKey.base64])
        #expect(again.status == 0, "\(again.stderr)")
        let twice = try BundleReader(trust: .keys([supportKey.publicKey])).read(contentsOf: second)
        // --json with --write: stdout is the JSON alone (a script parses it), the file named on stderr.
        let scripting = dir.url.appendingPathComponent("json-written.tar.gz")
        let scripted = try CareAgentBinary.run(["bundle", "reparse", first.path, "--json", "--write", scripting.path, "--state-dir", state.path,
                                                "--pubkey", supportKey.publicKey.base64])
        #expect(scripted.status == 0, "\(scripted.stderr)")
        #expect((try? JSONSerialization.jsonObject(with: Data(scripted.stdout.utf8))) is [Any], "\(scripted.stdout)")
        #expect(scripted.stderr.contains("wrote \(scripting.path)"))
        #expect(twice.signer == supportKey.publicKey)
        #expect(twice.manifest.derivedFrom?.originalSigner == Sample.key.publicKey.fingerprint)
        #expect(twice.manifest.derivedFrom?.bundleId == originalId)
        let shown = try CareAgentBinary.run(["bundle", "inspect", second.path, "--pubkey", supportKey.publicKey.base64])
        #expect(shown.stdout.contains("Derived    from bundle \(originalId.uuidString.lowercased()) signed by \(Sample.key.publicKey.fingerprint)"), "\(shown.stdout)")

        // --trust-embedded-key re-signs, and the derivation says the signer was not checked.
        let third = dir.url.appendingPathComponent("third.tar.gz")
        let anyway = try CareAgentBinary.run(["bundle", "reparse", original.path, "--write", third.path, "--state-dir", state.path,
                                              "--trust-embedded-key"])
        #expect(anyway.status == 0, "\(anyway.stderr)")
        let vouched = try BundleReader().read(contentsOf: third)
        #expect(vouched.manifest.derivedFrom?.originalSigner == Sample.key.publicKey.fingerprint)
        #expect(vouched.manifest.derivedFrom?.reason.contains("not checked against trusted keys") == true)
    }

    /// The sample's members as the writer would pack them, plus `extra` after the end marker.
    func archiveWithTrailingData(_ extra: [UInt8]) throws -> [UInt8] {
        let good = try Sample.encoded()
        let tar = try Gzip.decompress(good, limit: 64 << 20)
        return try Gzip.compress(tar + extra)
    }

    @Test func dataAfterTheTarEndMarkerIsRefused() throws {
        // Whole blocks of zeros (tar's record padding) are fine.
        let padded = try archiveWithTrailingData([UInt8](repeating: 0, count: 8 * 512))
        _ = try BundleReader().read(bytes: padded)
        // Anything else after the marker is refused, even though every signed member is intact.
        let smuggled = try archiveWithTrailingData([UInt8](repeating: 0, count: 512) + Array("#!/bin/sh\nrm -rf /\n".utf8))
        let tarCount = try Gzip.decompress(try Sample.encoded(), limit: 64 << 20).count
        #expect(throws: BundleError.trailingData(markerOffset: tarCount - 1024, firstByte: tarCount + 512, count: 512 + 19)) {
            try BundleReader().read(bytes: smuggled)
        }
        // A single zero block is not an end marker.
        let tar = try Gzip.decompress(try Sample.encoded(), limit: 64 << 20)
        #expect(throws: BundleError.truncated("the end-of-archive marker at byte \(tar.count - 1024) is a single zero block (two are required)")) {
            try BundleReader().read(bytes: try Gzip.compress(Array(tar.dropLast(512))))
        }

        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = dir.url.appendingPathComponent("smuggled.tar.gz")
        try Data(smuggled).write(to: file)
        let verify = try CareAgentBinary.run(["bundle", "verify", file.path])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains("FAILED: refused: 531 bytes after the tar end-of-archive marker"), "\(verify.stdout)")
        let inspect = try CareAgentBinary.run(["bundle", "inspect", file.path])
        #expect(inspect.status == 1)
        #expect(inspect.stderr.contains("nothing may follow it, the bundle was altered after it was written"), "\(inspect.stderr)")
    }

    /// facts.json is the signer's, and the signer anyone: one that closes its value and adds
    /// `"signer"` must not forge the field a script reads from `inspect --json`.
    @Test func factsCannotForgeTheSignerOfInspectJSON() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let attacker = try AgentKey(rawRepresentation: [UInt8](repeating: 9, count: 32))
        let forged = Array(#"{}, "signer" : "\#(Sample.key.publicKey.fingerprint)""#.utf8)
        let file = dir.url.appendingPathComponent("forged.tar.gz")
        try Data(try BundleWriter.encode(try Sample.contents(), key: attacker, factsJSON: forged)).write(to: file)
        let inspect = try CareAgentBinary.run(["bundle", "inspect", "--json", file.path])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any], "\(inspect.stdout)")
        #expect(object["signer"] as? String == attacker.publicKey.fingerprint)
        #expect(object["facts"] is NSNull && (object["facts_error"] as? String)?.contains("not one JSON value") == true)
        // Facts that are one value are shown as stored.
        let honest = try BundleWriter(directory: dir.url, key: attacker).write(try Sample.contents(hostname: "honest"))
        let shown = try JSONSerialization.jsonObject(with: Data(try CareAgentBinary.run(["bundle", "inspect", "--json", honest.path]).stdout.utf8)) as? [String: Any]
        #expect(shown?["facts"] is [String: Any] && shown?["facts_error"] == nil && shown?["signer"] as? String == attacker.publicKey.fingerprint)
    }

    /// A manifest that files the bundle under another chassis than its facts show: the intake
    /// refuses it (422), so `bundle verify` must not say OK, and `inspect` warns.
    @Test func verifyFailsABundleWhoseManifestContradictsItsFacts() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var contents = try Sample.contents()
        contents.device.chassisSerial = "OTHERCUST0001"
        let file = try BundleWriter(directory: dir.url, key: Sample.key).write(contents)
        let verify = try CareAgentBinary.run(["bundle", "verify", file.path, "--pubkey", Sample.key.publicKey.base64])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains("FAILED: inconsistent bundle: the manifest says chassis serial OTHERCUST0001, the chassis inventory says JN1249018AFB"),
                "\(verify.stdout)")
        let inspect = try CareAgentBinary.run(["bundle", "inspect", file.path, "--pubkey", Sample.key.publicKey.base64])
        #expect(inspect.stderr.contains("inconsistent bundle (the intake refuses it): the manifest says chassis serial OTHERCUST0001"), "\(inspect.stderr)")
        // The same bundle, consistent: OK.
        let good = try BundleWriter(directory: dir.url, key: Sample.key).write(try Sample.contents())
        #expect(try CareAgentBinary.run(["bundle", "verify", good.path, "--pubkey", Sample.key.publicKey.base64]).status == 0)
    }

    @Test func deviceSuppliedTextIsEscapedInVerifyInspectAndErrors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A host name that recolours the terminal, sets its title and forges a second OK line.
        let hostile = "baku\u{1B}[31m\u{1B}]0;owned\u{07}\nother.tar.gz: OK: signed by trusted key"
        var contents = try Sample.contents(hostname: hostile)
        contents.device.name = hostile
        // The facts say the same (a bundle whose manifest contradicts them fails verify).
        contents.facts.software?.hostname = hostile
        contents.outcomes[0].message = "line one\r\nline two\u{9B}2J"
        let file = try BundleWriter(directory: dir.url, key: Sample.key).write(contents)

        let verify = try CareAgentBinary.run(["bundle", "verify", file.path, "--pubkey", Sample.key.publicKey.base64])
        #expect(verify.status == 0)
        #expect(!verify.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 })
        #expect(verify.stdout.split(separator: "\n").count == 1, "\(verify.stdout)")
        #expect(verify.stdout.contains(#"baku\e[31m\e]0;owned\x07\nother.tar.gz: OK"#), "\(verify.stdout)")

        let inspect = try CareAgentBinary.run(["bundle", "inspect", file.path, "--pubkey", Sample.key.publicKey.base64])
        #expect(inspect.status == 0)
        #expect(!inspect.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B || $0 == "\r" })
        #expect(inspect.stdout.contains(#"Device     baku\e[31m\e]0;owned\x07\nother.tar.gz: OK: signed by trusted key (192.0.2.10:830)"#), "\(inspect.stdout)")
        #expect(inspect.stdout.contains(#"get-software-information: line one\r\nline two\x9b2J"#), "\(inspect.stdout)")
        #expect(!inspect.stdout.contains("\nother.tar.gz"))

        // An error naming a member: the member name is escaped too.
        let tar = try Gzip.decompress(try Sample.encoded(), limit: 64 << 20)
        var members = try USTar.members(of: tar, limits: .init())
        members.append(ArchiveMember(name: "raw/\u{1B}[2J\u{1B}[H.xml", bytes: Array("<x/>".utf8)))
        let doctored = dir.url.appendingPathComponent("doctored.tar.gz")
        try Data(try Gzip.compress(try USTar.archive(members, modified: 0))).write(to: doctored)
        let refused = try CareAgentBinary.run(["bundle", "inspect", doctored.path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains(#"tampered bundle: member raw/\e[2J\e[H.xml is not listed in the signed manifest"#), "\(refused.stderr)")
        #expect(!refused.stderr.unicodeScalars.contains { $0.value == 0x1B })
    }
}

@Suite struct TerminalTextTests {
    @Test func controlCharactersAreEscapedAndPrintableTextIsKept() {
        #expect(TerminalText.escaped("core-1.example.net") == "core-1.example.net")
        #expect(TerminalText.escaped("Zürich 東京 ✓") == "Zürich 東京 ✓")
        #expect(TerminalText.escaped("a\u{1B}[2Jb") == #"a\e[2Jb"#)
        #expect(TerminalText.escaped("one\ntwo\r\tthree") == #"one\ntwo\r\tthree"#)
        #expect(TerminalText.escaped("\u{0}\u{7}\u{7F}\u{9B}") == #"\x00\x07\x7f\x9b"#)
        // An escape in the input cannot pass for one added here.
        #expect(TerminalText.escaped(#"a\nb"#) == #"a\\nb"#)
        // Right-to-left override (makes "exe.txt" read as "txt.exe") and the Unicode line separator.
        #expect(TerminalText.escaped("file\u{202E}txt.exe\u{2028}x") == #"file\u{202e}txt.exe\u{2028}x"#)
    }
}
