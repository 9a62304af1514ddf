@testable import Agent
import Foundation
import Logging
import Synchronization
import Testing

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
            "<3>configuration not reloaded, keeping the previous one error=agent.conf:3:1: unknown key\n",
            "<4>bundle not uploaded bundle=b.tar.gz\n",
            "<5>care-agent running\n",
            "<6>device collected device=mx1 rpc=get-software-information\n",
            "<7>detail\n",
            "<2>fatal\n",
        ])
    }

    @Test func aLineBreakInAMessageStaysInOneEntry() {
        let lines = Lines()
        logger(.journal, lines).error("first\nsecond", metadata: ["reply": "a\r\nb"])
        #expect(lines.all == ["<3>first\\nsecond reply=a\\r\\nb\n"])
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
