import Bundle
import Foundation

/// Counters and histograms of the running agent, rendered in the Prometheus text exposition
/// format and written as a file for node_exporter's textfile collector (`metrics-file`).
public struct AgentMetrics: Sendable, Equatable {
    /// Upper bounds of the RPC duration histogram, in seconds (Junos RPCs take 0.05 s to minutes).
    public static let rpcDurationBuckets: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

    struct Histogram: Sendable, Equatable {
        var buckets: [Int] = Array(repeating: 0, count: AgentMetrics.rpcDurationBuckets.count)
        var count = 0
        var sum = 0.0

        mutating func observe(_ seconds: Double) {
            count += 1
            sum += seconds
            for (i, bound) in AgentMetrics.rpcDurationBuckets.enumerated() where seconds <= bound { buckets[i] += 1 }
        }
    }

    /// (group, result) → devices collected.
    var collections: [String: [DeviceStatus: Int]] = [:]
    /// rpc → histogram of durations of RPCs that were sent.
    var rpcDurations: [String: Histogram] = [:]
    /// (group, failure class) → failed device collections.
    var failures: [String: [FailureKind: Int]] = [:]
    public var lastCollectionEnd: Date?
    /// result (ok, rejected, failed) → bundle upload attempts.
    var uploads: [String: Int] = [:]

    /// trigger → reason (age, size) → bundles the outbox quota dropped unsent.
    var evictions: [CollectionTrigger: [OutboxEviction.Reason: Int]] = [:]
    var keptRemovals: [SetAsideBundle.Folder: [OutboxEviction.Reason: Int]] = [:]

    /// event kind → action (bundle, rate-limited) → events the health poll raised.
    var events: [String: [String: Int]] = [:]

    /// Counts an incident response's events.
    public mutating func recordEvents(admitted: [TriggerEvent], failed: [TriggerEvent] = [], limited: [TriggerEvent], duplicates: [TriggerEvent] = []) {
        for event in admitted { events[event.kind, default: [:]]["bundle", default: 0] += 1 }
        for event in failed { events[event.kind, default: [:]]["failed", default: 0] += 1 }
        for event in limited { events[event.kind, default: [:]]["rate-limited", default: 0] += 1 }
        for event in duplicates { events[event.kind, default: [:]]["duplicate", default: 0] += 1 }
    }

    /// result → syslog messages received.
    var syslogMessages: [SyslogResult: Int] = [:]
    /// result (ok, rejected, failed) → webhook delivery attempts.
    var webhookDeliveries: [String: Int] = [:]
    /// Event notices queued for the webhook (nil: never counted, not rendered).
    var webhookPending: Int?

    /// Counts syslog messages.
    public mutating func recordSyslog(_ result: SyslogResult, count: Int = 1) { syslogMessages[result, default: 0] += count }

    /// Counts one webhook delivery attempt.
    public mutating func recordWebhook(_ outcome: UploadOutcome) { webhookDeliveries[outcome.result, default: 0] += 1 }

    /// Counts bundles the outbox quota dropped.
    public mutating func recordEvictions(_ dropped: [OutboxEviction]) {
        for eviction in dropped { evictions[eviction.entry.trigger, default: [:]][eviction.reason, default: 0] += 1 }
    }

    /// Counts what a quota pass dropped: pending bundles and kept ones (sent, rejected).
    public mutating func record(_ pass: OutboxQuotaPass) {
        recordEvictions(pass.evicted)
        for removed in pass.discarded { keptRemovals[removed.bundle.folder, default: [:]][removed.reason, default: 0] += 1 }
    }

    /// Counts one upload attempt.
    public mutating func recordUpload(_ outcome: UploadOutcome) {
        uploads[outcome.result, default: 0] += 1
    }

    public init() {}

    /// Forgets the series of groups not in `groups` (a reload removed them).
    public mutating func keepGroups(_ groups: Set<String>) {
        collections = collections.filter { groups.contains($0.key) }
        failures = failures.filter { groups.contains($0.key) }
    }

    /// Counts one collection's results.
    public mutating func record(_ results: [DeviceResult], at date: Date = Date()) {
        // A queued answer is not a collection: the run that has the device queued counts it.
        for result in results where result.status != .queued {
            collections[result.device.group, default: [:]][result.status, default: 0] += 1
            if let kind = result.failureKind, result.status == .failed || result.status == .partial {
                failures[result.device.group, default: [:]][kind, default: 0] += 1
            }
            // Only RPCs that went to the device: one never sent, or not asked (no cluster on
            // an MX), would pull the latency figures down with zeros.
            for rpc in result.rpcs where rpc.status != .notRun && rpc.status != .notApplicable {
                rpcDurations[rpc.name, default: Histogram()].observe(Double(rpc.durationMilliseconds) / 1000)
            }
        }
        // Nothing selected, or every device skipped or queued: no collection happened.
        if results.contains(where: { $0.status.attempted }) { lastCollectionEnd = date }
    }

    /// The Prometheus text format (version 0.0.4), series sorted for stable output.
    public func render(outboxDepth: Int, outboxBytes: Int64? = nil, outboxOldest: Date? = nil) -> String {
        var out = ""
        out += "# HELP care_agent_collections_total Device collections finished, by group and result.\n"
        out += "# TYPE care_agent_collections_total counter\n"
        for group in collections.keys.sorted() {
            for status in [DeviceStatus.ok, .partial, .failed, .skipped] {
                out += "care_agent_collections_total{group=\"\(escape(group))\",result=\"\(status.rawValue)\"} \(collections[group]?[status] ?? 0)\n"
            }
        }
        out += "# HELP care_agent_collection_failures_total Failed or partial device collections, by group and cause.\n"
        out += "# TYPE care_agent_collection_failures_total counter\n"
        for group in failures.keys.sorted() {
            for (kind, n) in failures[group]!.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                out += "care_agent_collection_failures_total{group=\"\(escape(group))\",cause=\"\(kind.rawValue)\"} \(n)\n"
            }
        }
        out += "# HELP care_agent_rpc_duration_seconds Time from sending an RPC to its reply or failure.\n"
        out += "# TYPE care_agent_rpc_duration_seconds histogram\n"
        for rpc in rpcDurations.keys.sorted() {
            let h = rpcDurations[rpc]!
            let label = "rpc=\"\(escape(rpc))\""
            for (i, bound) in AgentMetrics.rpcDurationBuckets.enumerated() {
                out += "care_agent_rpc_duration_seconds_bucket{\(label),le=\"\(format(bound))\"} \(h.buckets[i])\n"
            }
            out += "care_agent_rpc_duration_seconds_bucket{\(label),le=\"+Inf\"} \(h.count)\n"
            out += "care_agent_rpc_duration_seconds_sum{\(label)} \(format(h.sum))\n"
            out += "care_agent_rpc_duration_seconds_count{\(label)} \(h.count)\n"
        }
        out += "# HELP care_agent_outbox_bundles Bundles in the outbox waiting to be sent.\n"
        out += "# TYPE care_agent_outbox_bundles gauge\n"
        out += "care_agent_outbox_bundles \(outboxDepth)\n"
        // A time, not an age: the file is written at collections and uploads, and an age would
        // stand still between them (alert on `time() - x`). Absent while nothing waits.
        if let outboxOldest {
            out += "# HELP care_agent_outbox_oldest_bundle_timestamp_seconds When the oldest bundle waiting in the outbox was written (Unix time); absent when none waits.\n"
            out += "# TYPE care_agent_outbox_oldest_bundle_timestamp_seconds gauge\n"
            out += "care_agent_outbox_oldest_bundle_timestamp_seconds \(Int(outboxOldest.timeIntervalSince1970))\n"
        }
        if let outboxBytes {
            out += "# HELP care_agent_outbox_bytes Bytes of the bundles in the outbox waiting to be sent (limit: outbox-max).\n"
            out += "# TYPE care_agent_outbox_bytes gauge\n"
            out += "care_agent_outbox_bytes \(outboxBytes)\n"
        }
        out += "# HELP care_agent_outbox_evictions_total Bundles the outbox quota dropped unsent, by trigger and reason (age: older than outbox-max-age; size: over outbox-max; disk-full: room made for a newer bundle on a full file system).\n"
        out += "# TYPE care_agent_outbox_evictions_total counter\n"
        for trigger in CollectionTrigger.allCases {
            for reason in OutboxEviction.Reason.allCases {
                out += "care_agent_outbox_evictions_total{trigger=\"\(trigger.rawValue)\",reason=\"\(reason.rawValue)\"} \(evictions[trigger]?[reason] ?? 0)\n"
            }
        }
        out += "# HELP care_agent_outbox_kept_removed_total Bundles kept in sent/ (keep-sent) or rejected/ that the outbox quota removed, or a write on a full disk removed to make room (disk-full), by folder and reason.\n"
        out += "# TYPE care_agent_outbox_kept_removed_total counter\n"
        for folder in SetAsideBundle.Folder.allCases {
            for reason in OutboxEviction.Reason.allCases {
                out += "care_agent_outbox_kept_removed_total{folder=\"\(folder.rawValue)\",reason=\"\(reason.rawValue)\"} \(keptRemovals[folder]?[reason] ?? 0)\n"
            }
        }
        if !events.isEmpty {
            out += "# HELP care_agent_events_total Incidents the health poll or syslog noticed, by kind and action (bundle: a diagnostic bundle was collected; failed: its collection failed (tried again while the incident lasts); rate-limited: within event-window of the last one; duplicate: already reported by another source).\n"
            out += "# TYPE care_agent_events_total counter\n"
            for kind in events.keys.sorted() {
                for action in ["bundle", "failed", "rate-limited", "duplicate"] {
                    out += "care_agent_events_total{kind=\"\(escape(kind))\",action=\"\(action)\"} \(events[kind]?[action] ?? 0)\n"
                }
            }
        }
        if !syslogMessages.isEmpty {
            out += "# HELP care_agent_syslog_messages_total Syslog messages received, by result (event: matched an event tag; ignored: no tag matched; unknown-sender: no inventory device; malformed: not syslog; oversize: over the size limit; overload: too many incident responses waiting; connection-refused: a TCP connection closed at once, max-connections or its address's share reached).\n"
            out += "# TYPE care_agent_syslog_messages_total counter\n"
            for result in SyslogResult.allCases {
                out += "care_agent_syslog_messages_total{result=\"\(result.rawValue)\"} \(syslogMessages[result] ?? 0)\n"
            }
        }
        if let webhookPending {
            out += "# HELP care_agent_webhook_deliveries_total Event notice deliveries to the [events] webhook, by result (ok, rejected: refused for good, failed: tried again later).\n"
            out += "# TYPE care_agent_webhook_deliveries_total counter\n"
            for result in ["ok", "rejected", "failed"] {
                out += "care_agent_webhook_deliveries_total{result=\"\(result)\"} \(webhookDeliveries[result] ?? 0)\n"
            }
            out += "# HELP care_agent_webhook_pending Event notices queued for the webhook.\n"
            out += "# TYPE care_agent_webhook_pending gauge\n"
            out += "care_agent_webhook_pending \(webhookPending)\n"
        }
        out += "# HELP care_agent_uploads_total Bundle upload attempts, by result (ok: the server has it; rejected: refused for good; failed: tried again later).\n"
        out += "# TYPE care_agent_uploads_total counter\n"
        for result in ["ok", "rejected", "failed"] {
            out += "care_agent_uploads_total{result=\"\(result)\"} \(uploads[result] ?? 0)\n"
        }
        out += "# HELP care_agent_upload_failures_total Upload attempts that failed (network, TLS, HTTP 401, 403, 404, 405, 408, 409, 410, 429 or 5xx).\n"
        out += "# TYPE care_agent_upload_failures_total counter\n"
        out += "care_agent_upload_failures_total \(uploads["failed"] ?? 0)\n"
        if let lastCollectionEnd {
            out += "# HELP care_agent_last_collection_timestamp_seconds When the last collection ended (Unix time).\n"
            out += "# TYPE care_agent_last_collection_timestamp_seconds gauge\n"
            out += "care_agent_last_collection_timestamp_seconds \(Int(lastCollectionEnd.timeIntervalSince1970))\n"
        }
        return out
    }

    /// Writes the text atomically, mode 0644 so node_exporter can read it. The temporary file
    /// has a name nobody can predict and is created with O_EXCL | O_NOFOLLOW: the textfile
    /// directory is often shared (node_exporter's), and a fixed name there would let another
    /// local user plant a symbolic link that the agent (root, often) then writes through. The
    /// rename replaces whatever is at `path`, a link included, without following it.
    public func write(to path: String, outbox: OutboxTotals) throws {
        let text = render(outboxDepth: outbox.bundles, outboxBytes: outbox.bytes, outboxOldest: outbox.oldest)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeAtomically(Array(text.utf8), to: path, mode: 0o644, what: "metrics file")
    }

    private func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
