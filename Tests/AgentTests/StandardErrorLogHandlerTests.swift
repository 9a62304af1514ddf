@testable import Agent
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

/// Log lines for the journal (`<N>` priority, no own timestamp) and for a terminal.
@Suite struct StandardErrorLogHandlerTests {
    /// The lines a logger writes, captured.
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    func logger(_ format: StandardErrorLogHandler.Format, _ lines: Lines) -> Logger {
        var logger = Logger(label: "care-agent") { StandardErrorLogHandler(label: $0, format: format) { lines.append($0) } }
        logger.logLevel = .debug
        return logger
    }

    @Test func journalLinesCarryThePriorityAndNoTimestamp() {
        let lines = Lines()
        let log = logger(.journal, lines)
        log.error("configuration not reloaded, keeping the previous one", metadata: ["error": "agent.conf:3:1: unknown key"])
        log.warning("bundle not uploaded", metadata: ["bundle": "b.tar.gz"])
        log.notice("care-agent running")
        log.info("device collected", metadata: ["device": "mx1", "rpc": "get-software-information"])
        log.debug("detail")
        log.critical("fatal")
        #expect(lines.all == [
            "<3>configuration not reloaded, keeping the previous one error=\"agent.conf:3:1: unknown key\"\n",
            "<4>bundle not uploaded bundle=b.tar.gz\n",
            "<5>care-agent running\n",
            "<6>device collected device=mx1 rpc=get-software-information\n",
            "<7>detail\n",
            "<2>fatal\n",
        ])
    }

    /// logfmt: a value with a blank, `=` or `"` is quoted, so a log shipper reads it whole.
    @Test func valuesWithBlanksAreQuoted() {
        let lines = Lines()
        let log = logger(.journal, lines)
        log.warning("bundle not uploaded", metadata: ["error": "Couldn't connect to server: \"x\"", "bundle": "b.tar.gz", "empty": ""])
        #expect(lines.all == ["<4>bundle not uploaded bundle=b.tar.gz empty=\"\" error=\"Couldn't connect to server: \\\"x\\\"\"\n"], "\(lines.all)")
    }

    @Test func aLineBreakInAMessageStaysInOneEntry() {
        let lines = Lines()
        logger(.journal, lines).error("first\nsecond", metadata: ["reply": "a\r\nb"])
        #expect(lines.all == ["<3>first\\nsecond reply=a\\r\\nb\n"])
    }

    /// Syslog evidence and rpc-error text quote what a device (or whoever spoofs its address)
    /// sends: an escape sequence reaches no terminal through the log.
    @Test func controlCharactersFromDevicesAreWrittenOut() {
        let lines = Lines()
        logger(.plain, lines).warning("event", metadata: ["evidence": "KERNEL_PANIC \u{1B}[2J\u{1B}]0;owned\u{07}\u{9B}x\ttab"])
        let line = lines.all.first ?? ""
        #expect(line.hasSuffix("evidence=\"KERNEL_PANIC \\e[2J\\e]0;owned\\x07\\x9bx\ttab\"\n"), "\(line)")
        #expect(!line.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B })
    }

    @Test func plainLinesHaveTimeLevelAndLabel() throws {
        let lines = Lines()
        logger(.plain, lines).warning("outbox moved", metadata: ["from": "/a"])
        let line = try #require(lines.all.first)
        #expect(line.hasSuffix(" warning care-agent: outbox moved from=/a\n"))
        #expect(line.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z "#, options: .regularExpression) != nil)
        #expect(!line.hasPrefix("<"))
    }

    @Test func levelBelowTheLoggersIsNotWritten() {
        let lines = Lines()
        var log = logger(.journal, lines)
        log.logLevel = .warning
        log.info("hidden")
        log.warning("shown")
        #expect(lines.all == ["<4>shown\n"])
    }

    /// Under systemd each message is a native journal entry: the priority, and the metadata as
    /// fields of their own (`journalctl DEVICE=mx1`), a value with a line break in the binary form.
    @Test func journalEntriesCarryMetadataAsFields() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("journal.sock").path
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(receiver) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        let lines = Lines()
        var log = Logger(label: "care-agent") {
            StandardErrorLogHandler(label: $0, format: .journal, journal: JournalSocket(path: path)) { lines.append($0) }
        }
        log.logLevel = .info
        log.error("rpc failed", metadata: ["device": "mx1", "rpc": "get-software-information", "duration-ms": "12", "reply": "a\nb"])
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(receiver, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        try #require(n > 0)
        let datagram = Array(buffer[..<n])
        let text = String(decoding: datagram, as: UTF8.self)
        #expect(text.contains("PRIORITY=3\n"))
        #expect(text.contains("SYSLOG_IDENTIFIER=care-agent\n"))
        #expect(text.contains("DEVICE=mx1\n"))
        #expect(text.contains("RPC=get-software-information\n"))
        #expect(text.contains("DURATION_MS=12\n"))
        // "REPLY", newline, 3 as a 64-bit little-endian length, "a\nb", newline.
        #expect(datagram.contains(subsequence: Array("REPLY\n".utf8) + [3, 0, 0, 0, 0, 0, 0, 0] + Array("a\nb\n".utf8)))
        // MESSAGE holds a line break too: binary form, the metadata after the message.
        #expect(datagram.contains(subsequence: Array("MESSAGE\n".utf8)))
        #expect(text.contains("rpc failed device=mx1 duration-ms=12 reply=a\nb rpc=get-software-information\n"))
        #expect(lines.all.isEmpty, "sent to the journal, not to stderr")

        // No journal socket: the <N> line on stderr instead.
        let fallback = Lines()
        let orphan = Logger(label: "care-agent") {
            StandardErrorLogHandler(label: $0, format: .journal, journal: JournalSocket(path: dir.appendingPathComponent("none.sock").path)) { fallback.append($0) }
        }
        orphan.warning("no journal", metadata: ["device": "r2"])
        #expect(fallback.all == ["<4>no journal device=r2\n"])
    }

    @Test func journalFieldNames() {
        #expect(StandardErrorLogHandler.journalFieldName("duration-ms") == "DURATION_MS")
        #expect(StandardErrorLogHandler.journalFieldName("device.address") == "DEVICE_ADDRESS")
        #expect(StandardErrorLogHandler.journalFieldName("_hidden") == nil)
        #expect(StandardErrorLogHandler.journalFieldName("message") == nil)
        #expect(StandardErrorLogHandler.journalFieldName("1st") == nil)
        #expect(StandardErrorLogHandler.journalFieldName(String(repeating: "a", count: 65)) == nil)
    }

    /// systemd sets JOURNAL_STREAM to stderr's device:inode; a child whose stderr was redirected
    /// inherits the variable but writes somewhere else.
    @Test func journalOnlyWhenStderrIsTheNamedStream() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var info = stat()
        #expect(fstat(fds[1], &info) == 0)
        let stream = "\(info.st_dev):\(info.st_ino)"
        #expect(StandardErrorLogHandler.Format.detect(environment: ["JOURNAL_STREAM": stream], descriptor: fds[1]) == .journal)
        #expect(StandardErrorLogHandler.Format.detect(environment: ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino + 1)"], descriptor: fds[1]) == .plain)
        #expect(StandardErrorLogHandler.Format.detect(environment: [:], descriptor: fds[1]) == .plain)
        #expect(StandardErrorLogHandler.Format.detect(environment: ["JOURNAL_STREAM": "garbage"], descriptor: fds[1]) == .plain)
        // Another pipe: the variable names the first one.
        var other: [Int32] = [0, 0]
        #expect(pipe(&other) == 0)
        defer { close(other[0]); close(other[1]) }
        #expect(StandardErrorLogHandler.Format.detect(environment: ["JOURNAL_STREAM": stream], descriptor: other[1]) == .plain)
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return subsequence.isEmpty }
        return (0...(count - subsequence.count)).contains { Array(self[$0..<$0 + subsequence.count]) == subsequence }
    }
}
