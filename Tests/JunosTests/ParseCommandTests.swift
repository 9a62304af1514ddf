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
        // A branch SRX prints its system memory pool, not a DRAM size: "51% of -" before.
        let srx = try run(["parse", Fixtures.url("get-route-engine-information/pyez__srx210he2-branch.xml").path])
        #expect(srx.out.contains("% of 2048 MB"), "\(srx.out)")
        #expect(!srx.out.contains("% of -"), "\(srx.out)")
        // The CPU averages of a release that prints them.
        let mx = try run(["parse", Fixtures.url("get-route-engine-information/pyez__mx480-dual-re-15.1F5.xml").path])
        #expect(mx.out.contains("CPU idle:   98% (1 min)  99% (5 min)  99% (15 min)"), "\(mx.out)")
    }

    /// Readable text for every kind, values as the captures write them; several files at once.
    @Test func parseTextForIdentityAndRedundancyFacts() throws {
        let files = [
            "get-software-information/pyez__mx960-gnf-and-bsys.xml",
            "get-chassis-inventory/pyez__mx480-15.1F5-mpc-optics.xml",
            "get-route-engine-information/pyez__mx480-dual-re-15.1F5.xml",
            "get-virtual-chassis-information/jexp__ex-vc-23.4-no-serial.xml",
            "get-chassis-cluster-status/pyez__srx-12.1X44-node1-lost.xml",
        ].map { Fixtures.url($0).path }
        let result = try run(["parse"] + files)
        #expect(result.status == 0, "\(result.err)")
        #expect(!result.out.contains("{"), "text, not JSON")
        for file in files { #expect(result.out.contains("== \(file)")) }
        let lines = result.out.split(separator: "\n").map(String.init)
        func line(_ parts: String...) -> Bool { lines.contains { l in parts.allSatisfy(l.contains) } }
        // Software: every routing engine by its re-name, the first one primary.
        #expect(line("[gnf7-re0, primary]", "mgb-gnf-a"))
        #expect(line("[bsys-re1]", "mgb-dvaita-mx960-a1"))
        // Inventory: a module with its part, serial, model and CLEI code.
        #expect(line("Routing Engine 0", "REV 01", "740-051822", "9013088309", "RE-S-1800X4-32G-S", "COUCATEBAA"))
        // Routing engines: mastership and CPU idle per slot.
        #expect(line("[slot 0]", "master", "9013088309"))
        #expect(line("[slot 1]", "backup"))
        #expect(line("background 0%", "idle 98%"))
        #expect(line("background 0%", "idle 100%"))
        // Virtual chassis: member 1 is the master (and the local member), member 0 the backup.
        #expect(line("1 ", "130", "Master", "(local)"))
        #expect(line("0 ", "129", "Backup"))
        // Cluster: node1 lost.
        #expect(line("node1", "lost"))
        #expect(line("node0", "100", "primary"))
    }

    @Test func oneBadFileAmongGoodOnesFailsTheRunButPrintsTheOthers() throws {
        let good = Fixtures.url("get-system-storage/jexp__single-re-18.2R1.xml").path
        let result = try run(["parse", good, "/nonexistent/reply.xml"])
        #expect(result.status != 0)
        #expect(result.out.contains("/dev/"))
        #expect(result.err == "care-agent parse: /nonexistent/reply.xml: no such file\n")
    }

    @Test func redactFailsClearlyOnMissingAndMalformedFiles() throws {
        let missing = try run(["redact", "/nonexistent/configuration.xml"])
        #expect(missing.status != 0)
        #expect(missing.err.contains("/nonexistent/configuration.xml") && missing.err.contains("no such file"), "\(missing.err)")
        #expect(missing.out.isEmpty)
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.xml")
        try "<configuration>\n<system><root-authentication><encrypted-password>$1$abc$def</encrypted-password>\n</configuration>"
            .write(to: bad, atomically: true, encoding: .utf8)
        let malformed = try run(["redact", bad.path])
        #expect(malformed.status != 0)
        #expect(malformed.err.contains("line "), "\(malformed.err)")
        // Nothing of a file it could not redact reaches the output.
        #expect(!malformed.out.contains("$1$"))
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

    @Test func malformedNumbersAreShownAsText() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("re.xml")
        try "<rpc-reply><route-engine-information><route-engine><slot>0</slot><memory-dram-size> 6r75</memory-dram-size></route-engine></route-engine-information></rpc-reply>"
            .write(to: file, atomically: true, encoding: .utf8)
        let result = try run(["parse", file.path])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("Not numbers: memory-dram-size \"6r75\""), "\(result.out)")
    }
}
