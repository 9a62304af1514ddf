import Foundation
import Testing
import TestSupport

/// `care-agent parse` and `care-agent redact` run as a user would run them.
@Suite struct ParseCommandTests {
    func run(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path, err = dir.appendingPathComponent("err").path
        let status = try ChildProcess(try careAgentExecutable(), arguments, stdout: out, stderr: err).wait()
        return (status, try String(contentsOfFile: out, encoding: .utf8), try String(contentsOfFile: err, encoding: .utf8))
    }

    @Test func parseJSONDetectsTheRPCAndPrintsFacts() throws {
        let result = try run(["parse", "--json", Fixtures.url("get-chassis-inventory/pyez__mx480-15.1F5-mpc-optics.xml").path])
        #expect(result.status == 0, "\(result.err)")
        let json = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any]
        #expect(json?["fact"] as? String == "inventory")
        // The chassis serial as written in the capture.
        #expect(result.out.contains("\"JN1249018AFB\""))
    }

    @Test func parseTextForHealthFacts() throws {
        let result = try run(["parse", Fixtures.url("get-system-storage/jexp__single-re-18.2R1.xml").path])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("/dev/"))
    }

    @Test func malformedXMLGivesLineAndColumn() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.xml")
        try "<rpc-reply>\n<software-information>\n<host-name>r1</host-nam>\n</software-information></rpc-reply>".write(to: bad, atomically: true, encoding: .utf8)
        let result = try run(["parse", bad.path])
        #expect(result.status != 0)
        #expect(result.err.contains("line 3"))
        #expect(result.err.split(separator: "\n").count == 1)
    }

    @Test func rpcErrorReplyIsAnErrorNotFacts() throws {
        let result = try run(["parse", Fixtures.url("rpc-error/pyez__rpc-error-permission-denied.xml").path])
        #expect(result.status != 0)
        #expect(result.err.contains("permission denied") || result.err.lowercased().contains("denied"))
    }

    @Test func redactRemovesEveryPasswordHash() throws {
        let fixture = Fixtures.url("get-configuration/pyez__firefly-full-12.1X46-md5crypt.xml")
        let original = try String(contentsOf: fixture, encoding: .utf8)
        #expect(original.contains("$1$kmSqRIU6$9EogG7ow0DWiww9mev8.b."))
        let result = try run(["redact", fixture.path])
        #expect(result.status == 0, "\(result.err)")
        #expect(!result.out.contains("$1$"))
        #expect(result.out.contains("<redacted>") || result.out.contains("&lt;redacted&gt;"))
        #expect(result.out.contains("<host-name>"))
    }
}
