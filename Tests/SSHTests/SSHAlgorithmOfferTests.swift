import Foundation
import Logging
@testable import SSH
import Testing
import TestSupport

/// The server's algorithm offer: read from its first bytes (bounded), compared with the client's,
/// and, against a real sshd, named in the error of a handshake that found nothing in common.
@Suite struct SSHAlgorithmOfferTests {
    /// A server's first bytes: identification, then SSH_MSG_KEXINIT in a binary packet.
    static func serverStart(lines: [String] = [], kex: String = "curve25519-sha256,ext-info-s", hostKeys: String = "ssh-ed25519",
                            ciphers: String = "aes128-ctr", macs: String = "hmac-sha2-256", padding: Int = 6) -> [UInt8] {
        var payload = SSHWire()
        payload.bytes = [20] + [UInt8](repeating: 7, count: 16)
        for list in [kex, hostKeys, ciphers, ciphers, macs, macs, "none", "none", "", ""] { payload.string(Array(list.utf8)) }
        payload.bytes += [0, 0, 0, 0, 0]
        var packet = SSHWire()
        packet.uint32(1 + payload.bytes.count + padding)
        packet.bytes += [UInt8(padding)] + payload.bytes + [UInt8](repeating: 0, count: padding)
        let text = (lines + ["SSH-2.0-TestServer_1.0"]).map { $0 + "\r\n" }.joined()
        return Array(text.utf8) + packet.bytes
    }

    static let client = SSHAlgorithmOffer(serverVersion: "SSH-2.0-libssh2_1.10.0", keyExchange: ["curve25519-sha256", "ecdh-sha2-nistp256"],
                                          hostKeys: ["ssh-ed25519", "ssh-rsa"], ciphers: ["aes128-ctr", "aes256-ctr"],
                                          ciphersToClient: ["aes128-ctr", "aes256-ctr"], macs: ["hmac-sha2-256"], macsToClient: ["hmac-sha2-256"])

    @Test func readsTheOfferFedOneByteAtATimeAfterBannerLines() throws {
        var reader = SSHAlgorithmOffer.Reader()
        var offer: SSHAlgorithmOffer?
        let bytes = Self.serverStart(lines: ["Welcome to the lab", ""], kex: "ecdh-sha2-nistp256,kex-strict-s-v00@openssh.com")
        for (i, byte) in bytes.enumerated() {
            offer = try reader.feed([byte])
            #expect((offer == nil) == (i < bytes.count - 1))
        }
        #expect(offer?.serverVersion == "SSH-2.0-TestServer_1.0")
        #expect(offer?.keyExchange == ["ecdh-sha2-nistp256", "kex-strict-s-v00@openssh.com"])
        #expect(offer?.hostKeys == ["ssh-ed25519"])
        #expect(offer?.macs == ["hmac-sha2-256"])
        #expect(offer.map { $0.mismatches(with: Self.client) } == [])
    }

    /// A real OpenSSH 9.2 server's first bytes (the fuzz target's seed, after its piece-size byte).
    @Test func readsARealOpenSSHStart() throws {
        let capture = Fixtures.packageRoot.appendingPathComponent("Tests/FuzzRegressions/ssh-offer/openssh-9.2-start-whole.bin")
        var reader = SSHAlgorithmOffer.Reader()
        let offer = try #require(try reader.feed(Array(try Data(contentsOf: capture)).dropFirst()))
        #expect(offer.serverVersion.hasPrefix("SSH-2.0-OpenSSH_9.2p1"))
        #expect(offer.keyExchange.contains("curve25519-sha256") && offer.keyExchange.contains("kex-strict-s-v00@openssh.com"))
        #expect(offer.hostKeys.contains("ssh-ed25519"))
        #expect(offer.ciphers.contains("aes128-ctr") && offer.macs.contains("hmac-sha2-256"))
        #expect(offer.mismatches(with: Self.client) == [])
    }

    @Test func namesEachCategoryWithNothingInCommon() throws {
        var reader = SSHAlgorithmOffer.Reader()
        let offer = try #require(try reader.feed(Self.serverStart(kex: "sntrup761x25519-sha512@openssh.com,ext-info-s",
                                                                  ciphers: "aes128-gcm@openssh.com,aes256-ctr", macs: "umac-128-etm@openssh.com")))
        let found = offer.mismatches(with: Self.client)
        // ext-info-s is a signal, not a key exchange: it must not count as one the client lacks.
        #expect(found.map(\.category) == ["key exchange", "MAC"])
        #expect(found[0].server == ["sntrup761x25519-sha512@openssh.com"])
        #expect(found[1].junosStatement == "set system services ssh macs")
        // Only AEAD ciphers in common: no MAC is negotiated, so a MAC list without a match is fine.
        var aead = offer
        aead.ciphers = ["chacha20-poly1305@openssh.com"]; aead.ciphersToClient = aead.ciphers
        var chacha = Self.client
        chacha.ciphers = ["chacha20-poly1305@openssh.com"]
        #expect(aead.mismatches(with: chacha).map(\.category) == ["key exchange"])
    }

    @Test func hostileStartsAreRefusedAtTheirLimit() throws {
        var endless = SSHAlgorithmOffer.Reader()
        #expect(throws: SSHAlgorithmOffer.ReadError.tooLarge(what: "the server's identification", limit: 8192)) {
            for _ in 0..<100 { _ = try endless.feed([UInt8](repeating: UInt8(ascii: "x"), count: 1000)) }
        }
        var manyLines = SSHAlgorithmOffer.Reader()
        #expect(throws: SSHAlgorithmOffer.ReadError.tooLarge(what: "the server's identification", limit: 8192)) {
            for _ in 0..<1000 { _ = try manyLines.feed(Array("banner line\r\n".utf8)) }
        }
        var huge = SSHAlgorithmOffer.Reader()
        #expect(throws: SSHAlgorithmOffer.ReadError.tooLarge(what: "the first packet", limit: 35_000)) {
            _ = try huge.feed(Array("SSH-2.0-x\r\n".utf8) + [0x7f, 0xff, 0xff, 0xff])
        }
        var old = SSHAlgorithmOffer.Reader()
        #expect(throws: SSHAlgorithmOffer.ReadError.notSSH(line: "SSH-1.5-ancient")) { _ = try old.feed(Array("SSH-1.5-ancient\n".utf8)) }
        // A name-list whose length runs past the packet.
        var cut = Self.serverStart()
        let listStart = cut.firstIndex(of: 20)! + 17
        cut[listStart] = 0x01
        var truncated = SSHAlgorithmOffer.Reader()
        #expect(throws: SSHAlgorithmOffer.ReadError.malformed("name-list 1 is cut off")) { _ = try truncated.feed(cut) }
        var notKexInit = Self.serverStart()
        notKexInit[notKexInit.firstIndex(of: 20)!] = 21
        var wrong = SSHAlgorithmOffer.Reader()
        #expect(throws: SSHAlgorithmOffer.ReadError.malformed("the first packet is not SSH_MSG_KEXINIT")) { _ = try wrong.feed(notKexInit) }
    }
}

/// Against a real OpenSSH sshd whose configuration leaves nothing in common with libssh2 1.10.
@Suite(.serialized) struct SSHNegotiationFailureTests {
    func failure(_ configure: (inout SSHDHarness.Options) -> Void) async throws -> String {
        // The handshake fails before any subsystem would run.
        var options = SSHDHarness.Options(subsystem: "/bin/true")
        configure(&options)
        let h = try SSHDHarness(options)
        defer { h.stop() }
        do {
            _ = try await SSHSession.connect(host: h.addresses[0], port: h.port,
                                             credentials: SSHCredentials(user: h.user, privateKeyPath: h.clientKeys["ed25519"]),
                                             hostKeyVerifier: HostKeyVerifier(knownHostsPath: h.knownHostsPath, policy: .strict),
                                             timeouts: SSHTimeouts(connect: .seconds(5), authentication: .seconds(10)), logger: .test)
        } catch let error as SSHError {
            guard case .handshake = error else { Issue.record("not a handshake failure: \(error)"); return "" }
            return error.description
        }
        Issue.record("the handshake succeeded")
        return ""
    }

    @Test func aCipherOnlyTheDeviceHasIsNamed() async throws {
        let message = try await failure { $0.extraConfig = "Ciphers aes128-gcm@openssh.com\n" }
        #expect(message.contains("no common cipher algorithm: the device (SSH-2.0-OpenSSH_"), "\(message)")
        #expect(message.contains("offers aes128-gcm@openssh.com;"))
        #expect(message.contains("aes128-ctr"))
        #expect(message.contains("'set system services ssh ciphers'"))
        #expect(!message.contains("key exchange algorithm"))
    }

    @Test func aKeyExchangeOnlyTheDeviceHasIsNamed() async throws {
        let message = try await failure { $0.extraConfig = "KexAlgorithms sntrup761x25519-sha512@openssh.com\n" }
        #expect(message.contains("no common key exchange algorithm"), "\(message)")
        #expect(message.contains("sntrup761x25519-sha512@openssh.com"))
        #expect(message.contains("curve25519-sha256"))
        #expect(!message.contains("cipher algorithm"))
    }

    /// A device offering only what libssh2 1.10 would also have accepted, but is broken (3DES,
    /// HMAC-MD5), is refused, naming the lists, instead of collected over it.
    @Test func weakCiphersAndMACsAreNotOffered() async throws {
        let cipher = try await failure { $0.extraConfig = "Ciphers 3des-cbc\n" }
        #expect(cipher.contains("no common cipher algorithm"), "\(cipher)")
        #expect(cipher.contains("offers 3des-cbc;"))
        #expect(cipher.contains("offers aes128-ctr,aes192-ctr,aes256-ctr "))
        let mac = try await failure { $0.extraConfig = "MACs hmac-md5\n" }
        #expect(mac.contains("no common MAC algorithm"), "\(mac)")
        #expect(mac.contains("'set system services ssh macs'"))
    }

    /// `hosts scan` against the same device: every key family fails alike, and the error names
    /// the category with nothing in common instead of a bare "unable to exchange encryption keys".
    @Test func aHostKeyScanNamesTheCategoryToo() async throws {
        var options = SSHDHarness.Options(subsystem: "/bin/true")
        options.extraConfig = "Ciphers 3des-cbc\n"
        let h = try SSHDHarness(options)
        defer { h.stop() }
        await #expect {
            _ = try await HostKeyScan.scan(host: h.addresses[0], port: h.port, timeout: .seconds(5))
        } throws: { error in
            "\(error)".contains("no common cipher algorithm") && "\(error)".contains("offers 3des-cbc;")
        }
    }

    /// An RSA host key on a server that refuses SHA-1: the host key category, with the libssh2 1.10 hint.
    @Test func anRSAOnlyHostKeyIsNamedWithTheSHA1Hint() async throws {
        let message = try await failure { $0.hostKeyTypes = ["rsa"] }
        #expect(message.contains("no common host key algorithm"), "\(message)")
        #expect(message.contains("rsa-sha2-512"))
        #expect(message.contains("only as ssh-rsa (SHA-1)"))
    }
}

/// The server's identification as read before libssh2 takes the socket (RFC 4253 4.2).
@Suite struct SSHIdentificationTests {
    func next(_ text: String, consumed: Int = 0) throws -> SSHIdentification.Action {
        try SSHIdentification.next(Array(text.utf8), consumed: consumed)
    }

    @Test func linesBeforeTheIdentificationAreSkippedWithinLimits() throws {
        #expect(try next("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\u{0}\u{0}\u{5}") == .ready)
        #expect(try next("SSH-1.99-Cisco-1.25\n") == .ready)
        #expect(try next("Authorized use only\r\nSSH-2.0-x\r\n") == .skip(21))
        #expect(try next("SSH-2.0-Open") == .needMore)
        #expect(try next("SS") == .needMore)
        #expect(try next("") == .needMore)
        #expect(throws: SSHIdentification.Failure.notSSH2(line: "SSH-1.5-old")) { try next("SSH-1.5-old\r\n") }
        #expect(throws: SSHIdentification.Failure.lineTooLong(limit: 255)) { try next("SSH-2.0-" + String(repeating: "a", count: 300)) }
        #expect(throws: SSHIdentification.Failure.lineTooLong(limit: 1024)) { try next(String(repeating: "b", count: 1024)) }
        #expect(throws: SSHIdentification.Failure.tooMuchBeforeIdentification(limit: 8192)) { try next("banner\n", consumed: 8190) }
    }
}
