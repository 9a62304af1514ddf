@testable import Agent
import Foundation
import Testing
import TestSupport

/// A client CA and a client certificate (clientAuth) made with openssl.
struct ClientCertificate {
    let ca: String
    let certificate: String
    let key: String
    /// As `openssl x509 -noout -subject -nameopt RFC2253` prints it.
    let subject: String

    init(in directory: String, name: String, subject: String) throws {
        let d = directory + "/" + name + "-"
        ca = d + "ca.crt"
        certificate = d + "client.crt"
        key = d + "client.key"
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try runProgram("/usr/bin/openssl", ["req", "-x509"] + ec + [
            "-keyout", d + "ca.key", "-out", ca, "-days", "2", "-subj", "/CN=\(name) client CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        try runProgram("/usr/bin/openssl", ["req"] + ec + ["-keyout", key, "-out", d + "client.csr", "-subj", subject])
        try "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n".write(toFile: d + "client.ext", atomically: true, encoding: .utf8)
        try runProgram("/usr/bin/openssl", ["x509", "-req", "-in", d + "client.csr", "-CA", ca, "-CAkey", d + "ca.key",
                                            "-CAcreateserial", "-out", certificate, "-days", "2", "-extfile", d + "client.ext"])
        let printed = try runProgram("/usr/bin/openssl", ["x509", "-in", certificate, "-noout", "-subject", "-nameopt", "RFC2253"])
        self.subject = String(printed.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("subject=".count))
    }

    /// Another client certificate from the same CA with the same subject and a key of its own
    /// (what anyone who can get certificates from a shared CA can make): its certificate and key.
    func sibling(_ name: String, subject: String) throws -> (certificate: String, key: String) {
        let d = (ca as NSString).deletingLastPathComponent + "/" + name + "-"
        let caKey = ca.replacingOccurrences(of: "ca.crt", with: "ca.key"), ext = certificate.replacingOccurrences(of: "client.crt", with: "client.ext")
        try runProgram("/usr/bin/openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                            "-keyout", d + "client.key", "-out", d + "client.csr", "-subj", subject])
        try runProgram("/usr/bin/openssl", ["x509", "-req", "-in", d + "client.csr", "-CA", ca, "-CAkey", caKey,
                                            "-CAcreateserial", "-out", d + "client.crt", "-days", "2", "-extfile", ext])
        return (d + "client.crt", d + "client.key")
    }

    /// `sha256//BASE64` of the certificate's public key (its SubjectPublicKeyInfo), as curl's
    /// --pinnedpubkey takes it, computed by openssl.
    func publicKeyPin(of path: String) throws -> String {
        let digest = try runProgram("/bin/sh", ["-c", "openssl x509 -in \"$1\" -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64", "sh", path])
        return "sha256//" + digest.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite(.serialized) struct MutualTLSTests {
    @Test func anAllowedClientCertificateUploadsWithoutAToken() async throws {
        let certificates = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: certificates) }
        let client = try ClientCertificate(in: certificates.path, name: "acme", subject: "/O=ACME/CN=agent-acme-1")
        let stranger = try ClientCertificate(in: certificates.path, name: "other", subject: "/O=ACME/CN=agent-acme-1")
        #expect(client.subject == "CN=agent-acme-1,O=ACME")
        let intake = try await IntakeHarness(extraServer: "client-ca = \(client.ca)")
        defer { intake.close() }
        try intake.start()
        try intake.cli("certificate", "allow", "ACME", "--subject", client.subject)

        // The certificate alone is the credential.
        let withToken = intake.upload
        intake.upload.tokenFile = nil
        intake.upload.clientCertificate = client.certificate
        intake.upload.clientKey = client.key
        let first = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes == [first.name: .accepted(status: 201)], "\(intake.serverLog)")

        // The same subject from a CA the intake does not trust: the TLS handshake fails.
        intake.upload.clientCertificate = stranger.certificate
        intake.upload.clientKey = stranger.key
        let second = try SampleBundles.write(device: "r1", minutesAfter: 1, into: intake.outbox)
        guard case let .failed(reason)? = await intake.pass().outcomes[second.name] else {
            Issue.record("a certificate of an unknown CA was accepted"); return
        }
        #expect(!reason.contains("HTTP"), "\(reason)")

        // Revoked subject: 401.
        try intake.cli("certificate", "revoke", "ACME", "--subject", client.subject)
        intake.upload.clientCertificate = client.certificate
        intake.upload.clientKey = client.key
        guard case let .failed(revoked)? = await intake.pass().outcomes[second.name] else {
            Issue.record("a revoked subject was accepted"); return
        }
        #expect(revoked.contains("HTTP 401"))

        // With client-ca set, a token without a certificate still works.
        intake.upload = withToken
        #expect(await intake.pass().outcomes == [second.name: .accepted(status: 201)])
    }

    /// A shared CA (a company's) issues certificates with any subject: pinned to its public key,
    /// an allowed subject uploads only with that key; another certificate with the same subject
    /// from the same CA gets 401. `--certificate` reads subject and pin from the file.
    @Test func aPinnedSubjectUploadsOnlyWithItsKey() async throws {
        let certificates = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: certificates) }
        let client = try ClientCertificate(in: certificates.path, name: "corp", subject: "/O=ACME/CN=agent-acme-1")
        let impostor = try client.sibling("impostor", subject: "/O=ACME/CN=agent-acme-1")
        let intake = try await IntakeHarness(extraServer: "client-ca = \(client.ca)")
        defer { intake.close() }
        try intake.start()
        let allowed = try intake.cli("certificate", "allow", "ACME", "--certificate", client.certificate)
        let pin = try client.publicKeyPin(of: client.certificate)
        #expect(allowed.contains(client.subject) && allowed.contains(pin), "\(allowed)")
        #expect(try intake.cli("certificate", "list", "ACME").contains(pin))

        intake.upload.tokenFile = nil
        intake.upload.clientCertificate = impostor.certificate
        intake.upload.clientKey = impostor.key
        let bundle = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        guard case let .failed(reason)? = await intake.pass().outcomes[bundle.name] else {
            Issue.record("a certificate with the allowed subject but another key was accepted"); return
        }
        #expect(reason.contains("HTTP 401"), "\(reason)")

        intake.upload.clientCertificate = client.certificate
        intake.upload.clientKey = client.key
        #expect(await intake.pass().outcomes == [bundle.name: .accepted(status: 201)], "\(intake.serverLog)")

        // Pinned by hand to the impostor's key instead (a rotated key): the old one is refused now.
        try intake.cli("certificate", "allow", "ACME", "--subject", client.subject, "--public-key-sha256", try client.publicKeyPin(of: impostor.certificate))
        let next = try SampleBundles.write(device: "r1", minutesAfter: 1, into: intake.outbox)
        guard case let .failed(rotated)? = await intake.pass().outcomes[next.name] else {
            Issue.record("the previous key was accepted after the pin changed"); return
        }
        #expect(rotated.contains("HTTP 401"), "\(rotated)")
        // Allowed again without a pin: still pinned; --any-key unpins.
        #expect(try intake.cli("certificate", "allow", "ACME", "--subject", client.subject).contains("is allowed for ACME already"))
        #expect(try intake.cli("certificate", "allow", "ACME", "--subject", client.subject, "--any-key").contains("any public key"))
        #expect(await intake.pass().outcomes == [next.name: .accepted(status: 201)], "\(intake.serverLog)")
    }
}
