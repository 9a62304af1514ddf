@testable import Agent
import Bundle
import Foundation
import Testing
import TestSupport

/// `<state-directory>/events.jsonl` and the `events` command's text.
@Suite struct EventLogTests {
    static func record(_ i: Int, evidence: String = "new chassis alarm: Minor: Plane 0 not online") -> EventRecord {
        EventRecord(device: "r\(i % 3)", event: TriggerEvent(kind: i % 2 == 0 ? "alarm" : "reboot", source: "poll",
                                                              time: Date(timeIntervalSince1970: 1_780_000_000 + Double(i)), evidence: evidence),
                    action: i % 5 == 0 ? .rateLimited : .bundle, bundle: i % 5 == 0 ? nil : "r-SN-\(i).tar.gz")
    }

    @Test func appendsLoadsSkipsABrokenLineAndStaysBounded() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = EventLog(stateDirectory: dir.path)
        #expect(log.load().isEmpty)
        try log.append([Self.record(1), Self.record(2)])
        // A line cut short by a crash hides nothing else.
        try Self.appendRaw(Data("{\"device\":\"r9\",\"ev".utf8) + Data([0x0A]), to: log)
        try log.append([Self.record(3)])
        #expect(log.load() == [Self.record(1), Self.record(2), Self.record(3)])
        // Thousands of events: the file stays under its bound and keeps the newest.
        try Self.expectBoundedAfterThousands(log)
    }

    /// Appends 4,000 events of ~500 bytes: the file must stay under its bound (trimmed), keep the
    /// newest, and keep its mode.
    static func expectBoundedAfterThousands(_ log: EventLog) throws {
        let long = String(repeating: "x", count: 400)
        for batch in 0 ..< 40 { try log.append((0 ..< 100).map { record(batch * 100 + $0, evidence: long) }) }
        let size = try #require(try FileManager.default.attributesOfItem(atPath: log.path)[.size] as? Int)
        #expect(size <= EventLog.maximumBytes + 100 * 600)
        #expect(log.load().last == record(3999, evidence: long))
        #expect(try FileManager.default.attributesOfItem(atPath: log.path)[.posixPermissions] as? Int == 0o640)
    }

    /// Writes `bytes` at the end of the log file, as a crash or a full disk leaves a line.
    static func appendRaw(_ bytes: Data, to log: EventLog) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log.path))
        handle.seekToEndOfFile()
        handle.write(bytes)
        try handle.close()
    }

    /// A line cut mid-character (not UTF-8) must not stop the trimming: the file stays bounded
    /// and the events after it load.
    @Test func aLineThatIsNotUTF8DoesNotStopTheTrimming() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = EventLog(stateDirectory: dir.path)
        try log.append([Self.record(1)])
        try Self.appendRaw(Data("{\"device\":\"r9\",\"evidence\":\"Temp \u{00B0}".utf8).dropLast() + Data([0x0A]), to: log)
        #expect(String(data: try Data(contentsOf: URL(fileURLWithPath: log.path)), encoding: .utf8) == nil, "the file is not UTF-8")
        try Self.expectBoundedAfterThousands(log)
    }

    /// A line a full disk or a crash cut short (no newline): the next record starts a line of its
    /// own, and loads (glued to the fragment, it was lost with it).
    @Test func aRecordAfterALineCutShortIsKept() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = EventLog(stateDirectory: dir.path)
        try log.append([Self.record(1)])
        try Self.appendRaw(Data("{\"device\":\"r9\",\"ev".utf8), to: log)
        try log.append([Self.record(2)])
        #expect(log.load() == [Self.record(1), Self.record(2)])
    }

    @Test func theCommandPrintsEachEventAndEscapesDeviceText() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try EventLog(stateDirectory: dir.path).append([Self.record(1), Self.record(5, evidence: "new alarm: \u{1B}[2J fake\nOK")])
        let out = dir.appendingPathComponent("out").path, err = dir.appendingPathComponent("err").path
        let run = try ChildProcess(try careAgentExecutable(), ["events", "--state", dir.path], stdout: out, stderr: err)
        #expect(run.wait() == 0)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.contains("2026-05-28T20:26:41Z  r1  reboot (poll)  bundle r-SN-1.tar.gz\n    new chassis alarm: Minor: Plane 0 not online\n"), "\(text)")
        #expect(text.contains("r2  reboot (poll)  rate-limited (within event-window)\n    new alarm: \\e[2J fake\\nOK\n"), "\(text)")
        #expect(text.hasSuffix("per kind: reboot 2 (bundle 1, rate-limited 1)\n"), "\(text)")
        let none = try ChildProcess(try careAgentExecutable(), ["events", "--state", dir.path, "--device", "nowhere"], stdout: out, stderr: err)
        #expect(none.wait() == 0)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "no events for nowhere\n")
    }
}

/// What interrupted writes leave behind is removed at start, only when old and only if it is
/// the agent's kind of temporary file.
@Suite struct StaleTemporaryFileTests {
    @Test func onlyOldTemporaryFilesOfOurWritersGo() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let now = Date()
        func make(_ name: String, age: TimeInterval) throws -> String {
            let path = dir.path + "/" + name
            FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
            try FileManager.default.setAttributes([.modificationDate: now.addingTimeInterval(-age)], ofItemAtPath: path)
            return path
        }
        let old = try make(".r1.json.12.345.tmp", age: 7200)
        let foundation = try make(".dat.nosync12.AbCdEf", age: 7200)
        let fresh = try make(".r2.json.12.678.tmp", age: 60)
        let hidden = try make(".keep", age: 7200)
        let result = try make("r1.json", age: 7200)
        try FileManager.default.createDirectory(atPath: dir.path + "/.dir.tmp", withIntermediateDirectories: false)
        #expect(Set(removeStaleTemporaryFiles(in: dir.path, now: now)) == [old, foundation])
        for path in [fresh, hidden, result, dir.path + "/.dir.tmp"] { #expect(FileManager.default.fileExists(atPath: path)) }
        // In a shared directory (node_exporter's), only the temporary files of our own file.
        let ours = try make(".care-agent.prom.12.345.tmp", age: 7200)
        let theirs = try make(".node.prom.12.345.tmp", age: 7200)
        #expect(removeStaleTemporaryFiles(in: dir.path, prefixes: ["care-agent.prom"], now: now) == [ours])
        #expect(FileManager.default.fileExists(atPath: theirs))
    }
}
