import Foundation
import Testing
import TestSupport

/// Issue 10's reproductions, run through `care-agent` as a user runs it: each input once hurt
/// the agent (an 11.7 s, 1.1 GB entity expansion; a stack overflow; quadratic redaction).
@Suite struct HostileInputCommandTests {
    struct Run { var status: Int32; var out: String; var err: String; var peakKiB: Int; var seconds: Double }

    func run(_ arguments: [String]) throws -> Run {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path, err = dir.appendingPathComponent("err").path
        let start = ContinuousClock.now
        let (status, peak) = try runMeasuringPeakMemory(try careAgentExecutable(), arguments, stdout: out, stderr: err)
        let elapsed = ContinuousClock.now - start
        return Run(status: status, out: try String(contentsOfFile: out, encoding: .utf8),
                   err: try String(contentsOfFile: err, encoding: .utf8), peakKiB: peak,
                   seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    func write(_ bytes: [UInt8], name: String) throws -> (dir: URL, path: String) {
        let dir = try TestProfiles.temporaryDirectory()
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return (dir, url.path)
    }

    static func laughs(levels: Int) -> String {
        var entities = "<!ENTITY lol0 \"lol\">\n"
        for level in 1...levels {
            entities += "<!ENTITY lol\(level) \"" + String(repeating: "&lol\(level - 1);", count: 10) + "\">\n"
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<!DOCTYPE lolz [\n\(entities)]>\n<rpc-reply><software-information><host-name>&lol\(levels);</host-name></software-information></rpc-reply>\n"
    }

    @Test("entity bombs are refused at once, in UTF-16 and UTF-8", arguments: ["utf16", "utf8"])
    func billionLaughs(encoding: String) throws {
        let text = Self.laughs(levels: 9)
        var bytes: [UInt8]
        if encoding == "utf16" {
            bytes = [0xFF, 0xFE]
            for unit in text.utf16 { bytes += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        } else {
            bytes = Array(text.replacingOccurrences(of: "UTF-16", with: "UTF-8").utf8)
        }
        let file = try write(bytes, name: "laughs.xml")
        defer { try? FileManager.default.removeItem(at: file.dir) }
        let result = try run(["parse", file.path])
        #expect(result.status == 1, "\(result.err)")
        #expect(result.err.contains(file.path), "the error names the file: \(result.err)")
        #expect(result.err.contains(encoding == "utf16" ? "UTF-16" : "DOCTYPE"), "\(result.err)")
        #expect(result.seconds < 5, "refused after \(result.seconds) s")
        #expect(result.peakKiB < 200 * 1024, "peak \(result.peakKiB) KiB")
    }

    @Test func deeplyNestedXMLConfigurationIsRefusedNotACrash() throws {
        let depth = 300_000
        let xml = "<rpc-reply><configuration>" + String(repeating: "<system>", count: depth)
            + String(repeating: "</system>", count: depth) + "</configuration></rpc-reply>"
        let file = try write(Array(xml.utf8), name: "deep.xml")
        defer { try? FileManager.default.removeItem(at: file.dir) }
        for command in [["parse"], ["redact"]] {
            let result = try run(command + [file.path])
            #expect(result.status == 1, "\(command): status \(result.status) (128+ is a signal): \(result.err)")
            #expect(result.err.contains("nested deeper than 200"), "\(command): \(result.err)")
            #expect(result.err.contains(file.path))
        }
    }

    @Test func deeplyNestedTextConfigurationIsRefusedByParseAndRedactedInLinearTime() throws {
        // Deep enough that the old quadratic redaction took minutes (debug build), small enough
        // for a debug build to redact in seconds.
        let depth = 20_000
        var deep = ""
        deep.reserveCapacity(depth * 40)
        for i in 0..<depth { deep += "level\(i) {\n    secret \"$9$deepSecret\(i)\";\n" }
        deep += String(repeating: "}\n", count: depth)
        let xml = "<rpc-reply><configuration-text>" + deep + "</configuration-text></rpc-reply>"
        let xmlFile = try write(Array(xml.utf8), name: "deep-text.xml")
        defer { try? FileManager.default.removeItem(at: xmlFile.dir) }
        let parsed = try run(["parse", xmlFile.path])
        #expect(parsed.status == 1, "status \(parsed.status): \(parsed.err)")
        #expect(parsed.err.contains("nested deeper than 200 blocks"), "\(parsed.err)")

        // Redaction reads the text without a tree: every secret at every depth goes.
        let textFile = try write(Array(deep.utf8), name: "deep.conf")
        defer { try? FileManager.default.removeItem(at: textFile.dir) }
        let deepRun = try run(["redact", textFile.path])
        #expect(deepRun.status == 0, "\(deepRun.err)")
        #expect(!deepRun.out.contains("deepSecret"), "a secret survived deep redaction")
        #expect(deepRun.out.components(separatedBy: "<redacted>").count - 1 == depth)

        // And in time linear in the text: 300,000 levels (3.3 MB) take about 2 s in a debug
        // build; rebuilding or copying the path per statement (quadratic) took hours.
        let bomb = String(repeating: "system {\n", count: 300_000) + String(repeating: "}\n", count: 300_000)
        let bombFile = try write(Array(bomb.utf8), name: "bomb.conf")
        defer { try? FileManager.default.removeItem(at: bombFile.dir) }
        let bombRun = try run(["redact", bombFile.path])
        #expect(bombRun.status == 0, "\(bombRun.err)")
        #expect(bombRun.out.utf8.count == bomb.utf8.count)
        #expect(bombRun.seconds < 30, "300,000-deep text redacted in \(bombRun.seconds) s")
    }

    @Test func oversizedFileIsRefusedBeforeReading() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sparse.xml").path
        // A sparse file: 2 GiB long, no disk used.
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        #expect(fd >= 0)
        #expect(ftruncate(fd, 2 << 30) == 0)
        close(fd)
        let result = try run(["parse", path])
        #expect(result.status == 1)
        #expect(result.err.contains("larger than the 1024 MiB limit"), "\(result.err)")
        #expect(result.peakKiB < 200 * 1024)
    }
}
