import Bundle
import Foundation
import Reports
import SupportStore

/// One thing a customer is told: an advisory that now hits a device (or no longer does), a
/// device or FRU that entered the EOL window or passed end of support, a new health finding.
///
/// Items are identified by `key` (`bug|DEVICE|CVE`, `eol|DEVICE|KIND|NAME|SERIAL`,
/// `health|DEVICE|CHECK|FACT[|WHAT]`); the store keeps the state each key had when last told,
/// so an item is told again only when its state changes.
public struct NotificationItem: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case bug, eol, health }
    public enum Change: String, Codable, Sendable { case new, changed, resolved }

    public var key: String
    public var kind: Kind
    public var device: String
    public var change: Change
    /// The state now: a verdict (`exposed`, `possibly-exposed`), an EOL status (`within`,
    /// `past`) or a severity (`warning`, `critical`); "" when resolved.
    public var state: String
    /// The state last told (absent for new items).
    public var previous: String?
    public var summary: String
    /// Why: the verdict's reason, the EOL dates and replacement, the finding and its value.
    public var detail: String?

    public init(key: String, kind: Kind, device: String, change: Change, state: String, previous: String?, summary: String, detail: String?) {
        self.key = key
        self.kind = kind
        self.device = device
        self.change = change
        self.state = state
        self.previous = previous
        self.summary = summary
        self.detail = detail
    }
}

/// `care-support notify`: what is new for a customer since the last notification.
public struct CustomerNotification: Codable, Sendable {
    public var id: UUID
    public var customer: String
    public var created: Date
    /// False for `--dry-run` and the API's preview: nothing was recorded.
    public var recorded: Bool
    /// Devices the reports covered.
    public var devices: Int
    public var items: [NotificationItem]
    /// Bundles that could not be used (not verifiable against the customer's keys now).
    public var refused: [String]

    public init(id: UUID = UUID(), customer: String, created: Date, recorded: Bool, devices: Int, items: [NotificationItem], refused: [String]) {
        self.id = id
        self.customer = customer
        self.created = created
        self.recorded = recorded
        self.devices = devices
        self.items = items
        self.refused = refused
    }

    /// A part of an item's key: `|` separates the parts, so one inside a part (a device named
    /// `a|b`) is written `%7C` (and `%` as `%25`); names without either are unchanged.
    static func keyPart(_ text: String) -> String {
        guard text.contains("|") || text.contains("%") else { return text }
        return text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "|", with: "%7C")
    }

    /// ``keyPart(_:)`` undone.
    static func keyPartText(_ part: Substring) -> String {
        guard part.contains("%") else { return String(part) }
        return part.replacingOccurrences(of: "%7C", with: "|").replacingOccurrences(of: "%25", with: "%")
    }

    /// The items the reports hold now, by key: only what a customer acts on (exposed or possibly
    /// exposed, within or past end of support, warning or critical). The first of equal keys wins.
    public static func currentItems(bugs: BugReport, lifecycle: LifecycleReport, health: HealthReport) -> [String: NotificationItem] {
        var items: [String: NotificationItem] = [:]
        func add(_ item: NotificationItem) { if items[item.key] == nil { items[item.key] = item } }
        let k = keyPart
        for f in bugs.findings where f.verdict != .notExposedConfig {
            add(NotificationItem(key: "bug|\(k(f.device))|\(k(f.cve))", kind: .bug, device: f.device, change: .new, state: f.verdict.rawValue, previous: nil,
                                 summary: "\(f.cve)\(f.jsa.map { " (\($0))" } ?? "") \(f.severity ?? "severity not given"): \(f.title)",
                                 detail: f.reason + (f.fixedIn.map { "; fixed in \($0)" } ?? "")))
        }
        for i in lifecycle.items where (i.status == .within || i.status == .past) && i.coveredBy == nil {
            let what = "\(i.kind.rawValue) \(i.name)\(i.model.map { " [\($0)]" } ?? "")\(i.serial.map { " serial \($0)" } ?? "")"
            add(NotificationItem(key: "eol|\(k(i.device))|\(i.kind.rawValue)|\(k(i.name))|\(k(i.serial ?? ""))", kind: .eol, device: i.device, change: .new,
                                 state: i.status.rawValue, previous: nil,
                                 summary: i.status == .past ? "\(what): past end of support" : "\(what): end of support within \(lifecycle.windowMonths) months",
                                 detail: "end of support \(i.endOfSupport?.description ?? "unknown")\(i.replacement.map { "; replacement \($0)" } ?? "") (\(i.source))"))
        }
        for f in health.findings where f.severity != .info {
            // A threshold finding is one item whatever its value, and so is a check that could not
            // be made or a failed collection (whatever the reason says); a core file is one per
            // file; an alarm one per what it names.
            let identity: String
            switch f.check {
            case _ where f.threshold != nil, "not-collected", "collection": identity = ""
            case "core-dump": identity = "|\(k(f.value))"
            default: identity = "|\(k(f.value))|\(k(f.message))"
            }
            // CPU is keyed under the field earlier releases judged (the sample), whichever average
            // judges it now: an item told before an upgrade stays the same item.
            var fact = f.fact
            if f.check == "cpu", let dot = fact.lastIndex(of: ".") { fact = String(fact[..<dot]) + ".cpuIdlePercent" }
            let key = "health|\(k(f.device))|\(k(f.check))|\(k(fact))" + identity
            add(NotificationItem(key: key, kind: .health, device: f.device, change: .new, state: f.severity.rawValue, previous: nil,
                                 summary: f.message, detail: "\(f.fact) = \(f.value)\(f.threshold.map { ", threshold \($0)" } ?? "")"))
        }
        return items
    }

    /// What changed against the states last told: new items (never told, or resolved since),
    /// changed states, and resolved items of devices that were reported on (a device with no
    /// usable bundle keeps its items). Ordered by kind, device, key.
    /// `unchecked`: per device, the facts its latest collection could not check (health's
    /// not-collected findings): an item told from them is neither resolved nor changed by their absence.
    public static func changes(current: [String: NotificationItem], told: [String: String], devices: Set<String>,
                               bugs: BugReport, unchecked: [String: Set<String>] = [:]) -> [NotificationItem] {
        var out: [NotificationItem] = []
        // Keys earlier releases wrote for what is the same item now: a core file's key carried
        // its message ("new core file ..."). Read as the key of today.
        var told = told
        for (key, state) in told {
            guard let today = Self.legacyCoreKey(key) else { continue }
            told[key] = nil
            if told[today] == nil { told[today] = state }
        }
        for (key, var item) in current {
            let previous = told[key]
            if previous == item.state { continue }
            if let previous, !previous.isEmpty {
                item.change = .changed
                item.previous = previous
            }
            out.append(item)
        }
        for (key, state) in told where !state.isEmpty && current[key] == nil {
            let parts = key.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, let kind = NotificationItem.Kind(rawValue: parts[0]), devices.contains(keyPartText(parts[1][...])) else { continue }
            let device = keyPartText(parts[1][...])
            let rest = parts[2].split(separator: "|", omittingEmptySubsequences: false).map(keyPartText)
            var summary: String, detail: String?
            switch kind {
            case .bug:
                // Still in the report as not exposed (configuration) says why; otherwise the release moved out of every range.
                let still = bugs.findings.first { $0.device == device && $0.cve == rest[0] }
                summary = "\(rest[0]): no longer \(state)"
                detail = still.map { "\($0.verdict.rawValue): \($0.reason)" } ?? "the running release is outside every affected range now"
            case .eol:
                summary = "\(rest.prefix(2).joined(separator: " ")): no longer \(state == "past" ? "past end of support" : "within the EOL window")"
                detail = "the item is no longer in the device's latest bundle or its status changed"
            case .health:
                // Sensor temperatures other than each RE's own are judged by Junos's own thresholds
                // now (their status, chassis alarms): an item told under the old single threshold is
                // retired quietly, not told "cleared" while the sensor may still be hot.
                if rest.first == "temperature", rest.count > 1, !rest[1].hasSuffix(".temperatureCelsius") || !rest[1].hasPrefix("routingEngines") { continue }
                // An alarm that was not looked at this time has not cleared.
                if rest.count > 1, let facts = unchecked[device],
                   facts.contains(where: { rest[1] == $0 || rest[1].hasPrefix($0 + "[") || rest[1].hasPrefix($0 + ".") }) { continue }
                summary = "\(rest.first ?? ""): cleared"
                detail = "was \(state): " + rest.dropFirst().joined(separator: " ")
            }
            out.append(NotificationItem(key: key, kind: kind, device: device, change: .resolved, state: "", previous: state, summary: summary, detail: detail))
        }
        let rank = Dictionary(uniqueKeysWithValues: NotificationItem.Kind.allCases.enumerated().map { ($0.element, $0.offset) })
        return out.sorted { a, b in
            if a.kind != b.kind { return rank[a.kind]! < rank[b.kind]! }
            if a.device != b.device { return a.device < b.device }
            return a.key < b.key
        }
    }

    /// `health|DEV|core-dump|FACT|FILE|MESSAGE` (a key of releases before the message left it)
    /// → `health|DEV|core-dump|FACT|FILE`; nil for any other key.
    static func legacyCoreKey(_ key: String) -> String? {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "health", parts[2] == "core-dump" else { return nil }
        return parts.prefix(5).joined(separator: "|")
    }

    /// Builds the notification from the customer's reports now and, unless `dryRun`, records it
    /// (each item claimed from the state read, see ``SupportDatabase/recordNotification``).
    public static func make(customer: String, reports: CustomerReports, dryRun: Bool, now: Date = Date()) async throws(SupportStoreError) -> CustomerNotification {
        let devices = try await reports.devices(customer: customer)
        let told = try await reports.database.notifiedStates(customer: customer)
        var notification = draft(customer: customer, devices: devices, reports: reports, told: told, now: now)
        let items = notification.items
        guard !dryRun, !items.isEmpty else { return notification }
        let claims = items.map { NotificationClaim(key: $0.key, expected: told[$0.key], state: $0.state) }
        let draft = notification
        let claimed = try await reports.database.recordNotification(customer: customer, id: notification.id, at: now, claims: claims) { keys in
            var kept = draft
            kept.recorded = true
            kept.items = draft.items.filter { keys.contains($0.key) }
            return String(decoding: try SupportJSON.encoder().encode(kept), as: UTF8.self)
        }
        notification.recorded = !claimed.isEmpty
        notification.items = items.filter { claimed.contains($0.key) }
        return notification
    }

    /// The notification `devices` give against the states last `told`, not recorded.
    static func draft(customer: String, devices: CustomerReports.Devices, reports: CustomerReports, told: [String: String],
                      now: Date) -> CustomerNotification {
        let bugs = reports.bugs(devices, now: now)
        let health = reports.health(devices, now: now)
        let current = currentItems(bugs: bugs, lifecycle: reports.lifecycle(devices, now: now), health: health)
        let unchecked = Dictionary(grouping: health.findings.filter { $0.check == "not-collected" }, by: \.device).mapValues { Set($0.map(\.fact)) }
        let items = changes(current: current, told: told, devices: Set(devices.latest.map(\.device)), bugs: bugs, unchecked: unchecked)
        return CustomerNotification(customer: customer, created: now, recorded: false, devices: devices.snapshots.count,
                                    items: items, refused: devices.refused)
    }

    /// The dry run of ``make(customer:reports:dryRun:now:)`` as JSON or an HTML page, served as
    /// the reports are (``CustomerReports/served(customer:report:readsConfiguration:also:now:render:)``):
    /// computed again only when the bundles, the keys, the day or the states last told change.
    /// Each preview read and verified every device's newest bundles again (a page a browser
    /// refreshes). A kept preview carries the time and id it was computed with.
    public static func preview(customer: String, reports: CustomerReports, html: Bool, now: Date = Date()) async throws -> String {
        let told = try await reports.database.notifiedStates(customer: customer)
        let toldText = told.sorted { $0.key < $1.key }.map { "\($0.key)\t\($0.value)\n" }.joined()
        return try await reports.served(customer: customer, report: html ? "notification.html" : "notification.json", readsConfiguration: true,
                                        also: toldText, now: now) { devices in
            let notification = draft(customer: customer, devices: devices, reports: reports, told: told, now: Date())
            return html ? notification.html() : try notification.json()
        }
    }

    public func count(_ change: NotificationItem.Change) -> Int { items.filter { $0.change == change }.count }

    public var headline: String {
        "\(customer): \(count(.new)) new, \(count(.changed)) changed, \(count(.resolved)) resolved across \(devices) devices"
    }

    public func text() -> String {
        var out = "Notification \(id.uuidString) for \(headline) (\(SupportJSON.time(created)))\n"
        if !recorded { out += "Not recorded: \(items.isEmpty ? "nothing new since the last notification" : "a dry run, these items will be told again")\n" }
        for kind in NotificationItem.Kind.allCases {
            let matching = items.filter { $0.kind == kind }
            guard !matching.isEmpty else { continue }
            out += "\n" + ["bug": "Bugs", "eol": "End of life", "health": "Health"][kind.rawValue]! + "\n"
            for item in matching {
                let state = item.change == .changed ? "\(item.previous ?? "") -> \(item.state)" : (item.change == .resolved ? "was \(item.previous ?? "")" : item.state)
                // Device-supplied text, one line each (TerminalText).
                out += "  \(item.change.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(TerminalText.escaped(item.device))  \(TerminalText.escaped(item.summary))  [\(TerminalText.escaped(state))]\n"
                if let detail = item.detail { out += "           \(TerminalText.escaped(detail))\n" }
            }
        }
        for refused in refused { out += "\nwarning: \(TerminalText.escaped(refused))\n" }
        return out
    }

    public func html() -> String {
        let rows = items.map { item in
            (item.change == .resolved ? "supported" : item.state,
             [(item.change.rawValue, "flag"), (item.kind.rawValue, nil), (item.device, nil), (item.state.isEmpty ? "resolved" : item.state, nil),
              (item.previous, nil), (item.summary, nil), (item.detail, "reason")] as [(String?, String?)])
        }
        var sections = "<h2>Items</h2>\n" + HTMLReport.table(id: "items", headers: ["Change", "Kind", "Device", "State", "Previously", "Summary", "Detail"], rows: rows)
        if !refused.isEmpty {
            sections += "<h2>Bundles not used</h2>\n" + HTMLReport.table(id: "refused", headers: ["Bundle"], rows: refused.map { ("warning", [($0, nil)]) })
        }
        return HTMLReport.page(title: "care-support notification for \(customer) (\(SupportJSON.time(created)))\(recorded ? "" : ", not recorded")", summary: [
            ("devices", "\(devices)"), ("new", "\(count(.new))"), ("changed", "\(count(.changed))"), ("resolved", "\(count(.resolved))"),
        ], sections: sections)
    }

    public func json() throws -> String {
        String(decoding: try SupportJSON.encoder().encode(self), as: UTF8.self) + "\n"
    }
}
