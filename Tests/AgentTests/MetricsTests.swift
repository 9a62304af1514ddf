@testable import Agent
import Foundation
import Logging
import Testing
import TestSupport

/// Prometheus text-format metrics for node_exporter's textfile collector.
@Suite struct MetricsTests {
    /// A result as the collector stores it (results/<device>.json), trimmed to what metrics read.
    func result(_ name: String, group: String, status: String, failure: String? = nil, rpcs: [(String, String, Int)]) throws -> DeviceResult {
        let rpcJSON = rpcs.map { #"{"name":"\#($0.0)","status":"\#($0.1)","durationMilliseconds":\#($0.2),"bytes":0}"# }.joined(separator: ",")
        let json = """
        {"device":{"name":"\(name)","host":"192.0.2.1","group":"\(group.replacingOccurrences(of: "\"", with: "\\\""))"},"host":"192.0.2.1","port":830,"trigger":"schedule",
         "started":0,"finished":1,"status":"\(status)",\(failure.map { #""failureKind":"\#($0)","# } ?? "")"attempts":1,
         "rpcs":[\(rpcJSON)],"facts":{"parseErrors":{}},"log":""}
        """
        return try JSONDecoder().decode(DeviceResult.self, from: Data(json.utf8))
    }

    @Test func rendersCountersHistogramAndOutboxDepth() throws {
        var metrics = AgentMetrics()
        metrics.record([
            try result("r1", group: "core", status: "ok", rpcs: [("get-software-information", "ok", 80), ("get-configuration", "ok", 3200)]),
            try result("r2", group: "core", status: "failed", failure: "timeout", rpcs: [("get-software-information", "timeout", 30000), ("get-configuration", "not-run", 0)]),
            try result("sw1", group: "access \"b\"", status: "ok", rpcs: []),
        ], at: Date(timeIntervalSince1970: 1_700_000_000))
        let text = metrics.render(outboxDepth: 7)
        let lines = Set(text.split(separator: "\n").map(String.init))
        #expect(lines.contains(#"care_agent_collections_total{group="core",result="ok"} 1"#))
        #expect(lines.contains(#"care_agent_collections_total{group="core",result="failed"} 1"#))
        #expect(lines.contains(#"care_agent_collections_total{group="access \"b\"",result="ok"} 1"#))
        #expect(lines.contains(#"care_agent_collection_failures_total{group="core",cause="timeout"} 1"#))
        // 80 ms lands in every bucket; 30 s only from le="30"; the not-run RPC is not observed.
        #expect(lines.contains(#"care_agent_rpc_duration_seconds_bucket{rpc="get-software-information",le="0.1"} 1"#))
        #expect(lines.contains(#"care_agent_rpc_duration_seconds_bucket{rpc="get-software-information",le="10"} 1"#))
        #expect(lines.contains(#"care_agent_rpc_duration_seconds_bucket{rpc="get-software-information",le="30"} 2"#))
        #expect(lines.contains(#"care_agent_rpc_duration_seconds_bucket{rpc="get-software-information",le="+Inf"} 2"#))
        #expect(lines.contains(#"care_agent_rpc_duration_seconds_sum{rpc="get-software-information"} 30.08"#))
        #expect(lines.contains(#"care_agent_rpc_duration_seconds_count{rpc="get-configuration"} 1"#))
        #expect(lines.contains("care_agent_outbox_bundles 7"))
        #expect(lines.contains("care_agent_last_collection_timestamp_seconds 1700000000"))
        #expect(lines.contains("# TYPE care_agent_rpc_duration_seconds histogram"))
    }

    /// A run that collected nothing (no device selected, all skipped) is no collection, and an
    /// RPC not asked (no cluster on an MX) is no latency.
    @Test func onlyWhatWasCollectedCounts() throws {
        var metrics = AgentMetrics()
        metrics.record([try result("r1", group: "core", status: "skipped", rpcs: [])], at: Date(timeIntervalSince1970: 1_700_000_000))
        metrics.record([], at: Date(timeIntervalSince1970: 1_700_000_100))
        #expect(!metrics.render(outboxDepth: 0).contains("care_agent_last_collection_timestamp_seconds"))
        metrics.record([try result("r2", group: "core", status: "ok", rpcs: [("get-chassis-cluster-status", "not-applicable", 0), ("get-software-information", "ok", 90)])],
                       at: Date(timeIntervalSince1970: 1_700_000_200))
        let text = metrics.render(outboxDepth: 0)
        #expect(text.contains("care_agent_last_collection_timestamp_seconds 1700000200"))
        #expect(!text.contains("get-chassis-cluster-status") && text.contains(#"care_agent_rpc_duration_seconds_count{rpc="get-software-information"} 1"#))
    }

    @Test func writtenAtomicallyAndCountsOnlyFinishedBundles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString.prefix(8))")
        let outbox = dir.appendingPathComponent("outbox")
        try FileManager.default.createDirectory(at: outbox, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["r1-JN1-20261125-020000.tar.gz", "r2-JN2-20261125-020000.tar.gz", ".r3-JN3-20261125-020000.tar.gz.4242.tmp"] {
            FileManager.default.createFile(atPath: outbox.appendingPathComponent(name).path, contents: Data())
        }
        // The oldest waits since an hour ago: the backlog's age is a gauge of its own.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)],
                                              ofItemAtPath: outbox.appendingPathComponent("r1-JN1-20261125-020000.tar.gz").path)
        let path = dir.appendingPathComponent("textfile/care-agent.prom").path
        try AgentMetrics().write(to: path, outbox: FileOutbox(directory: outbox.path).totals)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("care_agent_outbox_bundles 2\n"))
        let oldest = text.split(separator: "\n").first { $0.hasPrefix("care_agent_outbox_oldest_bundle_timestamp_seconds ") }.flatMap { Int($0.split(separator: " ")[1]) }
        #expect(oldest.map { abs(Date().timeIntervalSince1970 - 3600 - Double($0)) < 60 } == true, "\(text)")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("textfile").path) == ["care-agent.prom"])
        // A failure reads as what failed and why, not as a Foundation error's domain and code.
        let directory = dir.appendingPathComponent("textfile").path
        chmod(directory, 0o555)
        defer { chmod(directory, 0o755) }
        let blocked = directory + "/care-agent.prom"
        // Root writes anywhere: a read-only directory stops only others; a file as the parent stops both.
        let target = geteuid() == 0 ? path + "/care-agent.prom" : blocked
        do {
            try writeAtomically(Array("x".utf8), to: target, mode: 0o644, what: "metrics file")
            Issue.record("wrote \(target)")
        } catch {
            #expect("\(error)".hasPrefix("cannot write metrics file \(target): cannot create a temporary file in "), "\(error)")
            #expect(!"\(error)".contains("NSCocoaErrorDomain") && error.localizedDescription == "\(error)")
        }
    }

    @Test func metricsFileKey() throws {
        let on = try AgentConfiguration(file: ConfigurationFile(path: "a.conf", text: "[agent]\nstate-directory = /s\n"))
        #expect(on.agent.metricsPath == "/s/metrics.prom")
        let custom = try AgentConfiguration(file: ConfigurationFile(path: "a.conf", text: "[agent]\nmetrics-file = /t/care.prom\n"))
        #expect(custom.agent.metricsPath == "/t/care.prom")
        let off = try AgentConfiguration(file: ConfigurationFile(path: "a.conf", text: "[agent]\nmetrics-file = none\n"))
        #expect(off.agent.metricsPath == nil)
    }
}

/// Metrics rewrites between collections wait their turn (an outbox scan at most every few
/// seconds); one still waiting when the agent stops is written by the stop, not lost.
@Suite struct MetricsFlushTests {
    @Test func aWaitingRewriteIsWrittenAtTheStop() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var configuration = AgentConfiguration()
        configuration.agent.stateDirectory = dir.path
        configuration.agent.outbox = dir.path + "/outbox"
        configuration.agent.metricsFile = dir.path + "/metrics.prom"
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        func metrics() -> String { (try? String(contentsOfFile: dir.path + "/metrics.prom", encoding: .utf8)) ?? "" }
        await runtime.writeMetrics(outbox: OutboxTotals(bundles: 0, bytes: 0))
        await runtime.recordUpload(.accepted(status: 201), url: "https://example.net/b/")
        #expect(!metrics().contains("care_agent_uploads_total{result=\"ok\"} 1\n"), "written at once: the test proves nothing")
        await runtime.flushPendingMetrics()
        #expect(metrics().contains("care_agent_uploads_total{result=\"ok\"} 1\n"), "\(metrics())")
    }
}
