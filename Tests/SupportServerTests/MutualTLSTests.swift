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
}
