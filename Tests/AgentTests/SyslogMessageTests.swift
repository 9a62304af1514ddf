@testable import Agent
import Foundation
import Testing

/// Junos syslog in both formats, as devices and util-linux `logger` send them, and hostile input.
@Suite struct SyslogMessageTests {
    @Test func junosStructuredDataFormat() throws {
        let line = #"<28>1 2026-12-04T19:40:00.123Z r1-re0 chassisd 1234 CHASSISD_FRU_OFFLINE_NOTICE [junos@2636.1.1.1.2.18 fru-name="FPC 1" reason="Error \"X\" [code\]"] Taking FPC 1 offline: Error"#
        let m = try SyslogMessage(parsing: Array(line.utf8))
        #expect(m.facility == 3 && m.severity == 4)
        #expect(m.hostname == "r1-re0" && m.appName == "chassisd" && m.messageID == "CHASSISD_FRU_OFFLINE_NOTICE")
        #expect(m.eventTag == "CHASSISD_FRU_OFFLINE_NOTICE")
        #expect(m.structuredData["junos@2636.1.1.1.2.18"] == ["fru-name": "FPC 1", "reason": #"Error "X" [code]"#])
        #expect(m.text == "Taking FPC 1 offline: Error")
    }

    @Test func bsdFormatWithTheTagInTheText() throws {
        let m = try SyslogMessage(parsing: Array("<28>Dec  4 19:40:00 r1 chassisd[1234]: CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 1 offline\n".utf8))
        #expect(m.hostname == "r1" && m.appName == "chassisd" && m.messageID == nil)
        #expect(m.eventTag == "CHASSISD_FRU_OFFLINE_NOTICE")
        #expect(m.text == "CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 1 offline")
        // What `logger --rfc3164 -t rpd` sends.
        let logged = try SyslogMessage(parsing: Array("<13>Dec 14 09:05:01 agent-host rpd: RPD_SCHED_SLIP: 5 sec scheduler slip".utf8))
        #expect(logged.eventTag == "RPD_SCHED_SLIP" && logged.appName == "rpd")
        // A core dump line has no tag: the text is kept whole for patterns to match.
        let core = try SyslogMessage(parsing: Array("<10>Dec  4 19:40:00 r1 /kernel: pid 1234 (rpd), uid 0: exited on signal 11 (core dumped)".utf8))
        #expect(core.eventTag == nil && core.text.hasSuffix("(core dumped)"))
    }

    /// Junos's `time-format millisecond`, `time-format year` and `explicit-priority`: the tag is
    /// found in each (it was missed: the timestamp cut at 15 characters made `.123` the host).
    @Test func junosTimeFormatsAndExplicitPriority() throws {
        for line in ["<0>Dec  4 19:40:00.123 r1 kernel: KERNEL_PANIC: panic",
                     "<0>Dec  4 2026 19:40:00 r1 kernel: KERNEL_PANIC: panic",
                     "<0>Dec  4 2026 19:40:00.123 r1 kernel: KERNEL_PANIC: panic",
                     "<0>Dec  4 19:40:00 r1 kernel: %KERN-0-KERNEL_PANIC: panic"] {
            let m = try SyslogMessage(parsing: Array(line.utf8))
            #expect(m.hostname == "r1" && m.appName == "kernel" && m.eventTag == "KERNEL_PANIC", "\(line): \(m)")
        }
    }

    /// The default core-dump rules match the paths of core files, but not the operator's own
    /// commands that name them (cleaning up a core raised a core-dump incident).
    @Test func defaultCoreRulesSkipTheOperatorsCommands() throws {
        func kind(_ line: String) throws -> String? {
            let message = try SyslogMessage(parsing: Array(line.utf8))
            return SyslogRule.defaults.first { $0.matches(message) }?.kind
        }
        #expect(try kind("<10>Dec  4 19:40:00 r1 dumpd: rpd core saved in /var/tmp/rpd.core.0.gz") == "core-dump")
        #expect(try kind("<14>Dec  4 19:41:00 r1 mgd[77]: UI_CMDLINE_READ_LINE: User 'ops', command 'file delete /var/tmp/rpd.core.0.gz '") == nil)
    }

    @Test func rfc5424WithoutStructuredDataAsLoggerSendsIt() throws {
        let m = try SyslogMessage(parsing: Array("<13>1 2026-12-04T19:40:00.000000+00:00 agent-host care - KERNEL_PANIC [timeQuality tzKnown=\"1\"] \u{FEFF}panic: page fault".utf8))
        #expect(m.eventTag == "KERNEL_PANIC" && m.text == "panic: page fault")
        let nil5424 = try SyslogMessage(parsing: Array("<13>1 - - - - - - plain text".utf8))
        #expect(nil5424.hostname == nil && nil5424.eventTag == nil && nil5424.text == "plain text")
    }

    @Test func hostileInputIsRefusedWithAReason() {
        func reason(_ text: String) -> String {
            do { _ = try SyslogMessage(parsing: Array(text.utf8)); return "accepted" } catch { return error.description }
        }
        #expect(reason("no pri") == "no <PRI> at the start")
        #expect(reason("<999>1 x") == "no <PRI> at the start")
        #expect(reason("<13>1 - h a - ID [x a=\"open") == "unterminated value of a in structured data element x")
        #expect(reason("<13>1 - h a - ID [x a=\"1\"") == "structured data element x is not closed")
        #expect(reason("<13>" + String(repeating: "A", count: 9000)) == "message of 9004 bytes, more than the limit of 8192")
        // Many elements and parameters: parsed in one pass, kept bounded.
        let many = "<13>1 - h a - ID " + (0 ..< 20).map { "[e\($0) a=\"1\" b=\"2\"]" }.joined()
            + "[wide " + (0 ..< 50).map { "p\($0)=\"v\"" }.joined(separator: " ") + "] text"
        let parsed = try? SyslogMessage(parsing: Array(many.utf8))
        #expect(parsed?.structuredData.count == SyslogMessage.maximumElements)
        #expect(parsed?.text == "text")
        let wide = try? SyslogMessage(parsing: Array(("<13>1 - h a - ID [wide " + (0 ..< 50).map { "p\($0)=\"v\"" }.joined(separator: " ") + "]").utf8))
        #expect(wide?.structuredData["wide"]?.count == SyslogMessage.maximumParameters)
    }
}
