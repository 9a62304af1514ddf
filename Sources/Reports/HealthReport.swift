import Foundation
import Junos

/// Thresholds of `report health`; each configurable in `[reports]` of agent.conf (docs/reports.md).
public struct HealthThresholds: Sendable, Equatable {
    /// RE CPU utilisation (100 - idle, over 5 minutes where the release prints it) at or above
    /// which a finding is raised: warning, critical.
    public var cpuWarningPercent = 80
    public var cpuCriticalPercent = 95
    /// RE memory utilisation.
    public var memoryWarningPercent = 85
    public var memoryCriticalPercent = 95
    /// File system capacity used.
    public var storageWarningPercent = 80
    public var storageCriticalPercent = 90
    /// Each routing engine's own temperature, in °C. Other sensors (ASICs and CPU dies run hotter
    /// by design) are judged by Junos's per-sensor thresholds: their status and chassis alarms.
    public var temperatureWarningCelsius = 65
    public var temperatureCriticalCelsius = 75
    /// An uptime below this many hours counts as a recent reboot.
    public var recentRebootHours = 24
    /// Facts older than this many days are reported as stale.
    public var staleAfterDays = 7

    public init() {}

    /// The `[reports]` keys: `cpu-warning = 80`, `storage-critical = 90`, ...
    public static let keyNames = ["cpu-warning", "cpu-critical", "memory-warning", "memory-critical", "storage-warning",
                                  "storage-critical", "temperature-warning", "temperature-critical", "reboot-within-hours",
                                  "stale-after-days"]

    /// The values `key` accepts.
    public static func range(of key: String) -> ClosedRange<Int> {
        switch key {
        case "temperature-warning", "temperature-critical": return 0...150
        case "reboot-within-hours": return 0...87_600
        case "stale-after-days": return 1...3_650
        default: return 0...100
        }
    }

    /// Sets the threshold named by a `[reports]` key; false when the key is not a threshold.
    /// Values are clamped to ``range(of:)`` (configuration files are checked against it first).
    public mutating func set(_ key: String, to value: Int) -> Bool {
        let range = Self.range(of: key), value = min(max(value, range.lowerBound), range.upperBound)
        switch key {
        case "cpu-warning": cpuWarningPercent = value
        case "cpu-critical": cpuCriticalPercent = value
        case "memory-warning": memoryWarningPercent = value
        case "memory-critical": memoryCriticalPercent = value
        case "storage-warning": storageWarningPercent = value
        case "storage-critical": storageCriticalPercent = value
        case "temperature-warning": temperatureWarningCelsius = value
        case "temperature-critical": temperatureCriticalCelsius = value
        case "reboot-within-hours": recentRebootHours = value
        case "stale-after-days": staleAfterDays = value
        default: return false
        }
        return true
    }

    /// A warning threshold above its critical one (the warning would never be raised), in words.
    public var contradiction: String? {
        let pairs = [("cpu", cpuWarningPercent, cpuCriticalPercent), ("memory", memoryWarningPercent, memoryCriticalPercent),
                     ("storage", storageWarningPercent, storageCriticalPercent),
                     ("temperature", temperatureWarningCelsius, temperatureCriticalCelsius)]
        return pairs.first { $0.1 > $0.2 }.map { "\($0.0)-warning (\($0.1)) is above \($0.0)-critical (\($0.2))" }
    }
}

/// How serious a health finding is.
public enum HealthSeverity: String, Codable, Sendable, CaseIterable, Comparable {
    case info, warning, critical

    var rank: Int { self == .info ? 0 : self == .warning ? 1 : 2 }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// One finding of `report health`: what, where, the value, the threshold it crossed, and what to do.
public struct HealthFinding: Codable, Sendable, Equatable {
    public var device: String
    public var severity: HealthSeverity
    /// `collection`, `not-collected`, `routing-engine`, `cpu`, `memory`, `storage`, `alarm`,
    /// `core-dump`, `reboot`, `environment`, `temperature`, `virtual-chassis`, `cluster`.
    public var check: String
    /// The fact it comes from (`routingEngines[re0].cpuIdle5MinutesPercent`, `storage[re0]./var`).
    public var fact: String
    public var value: String
    /// The threshold crossed, nil when the finding is not a threshold (an alarm, a core file).
    public var threshold: String?
    public var message: String
    /// What an engineer does about it.
    public var action: String?

    public init(device: String, severity: HealthSeverity, check: String, fact: String, value: String, threshold: String?,
                message: String, action: String? = nil) {
        self.device = device
        self.severity = severity
        self.check = check
        self.fact = fact
        self.value = value
        self.threshold = threshold
        self.message = message
        self.action = action
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(device, forKey: .device)
        try c.encode(severity, forKey: .severity)
        try c.encode(check, forKey: .check)
        try c.encode(fact, forKey: .fact)
        try c.encode(value, forKey: .value)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(message, forKey: .message)
        try c.encode(action, forKey: .action)
    }
}

/// One device's line in the health report: when its facts are from, what could not be checked,
/// and its worst finding (nil: checked and nothing found).
public struct HealthDeviceSummary: Sendable, Equatable {
    public var device: String
    public var model: String?
    public var collected: Date
    /// The checks its facts did not allow (`alarms`, `storage`), from its not-collected findings.
    public var notChecked: [String]
    public var worst: HealthSeverity?
}

/// `report health`: each device's latest facts against the thresholds.
public struct HealthReport: Sendable {
    public var findings: [HealthFinding]
    public var deviceCount: Int
    public var thresholds: HealthThresholds
    /// Every device, in report order, also those with no finding: a clean device is listed as
    /// checked, not left out like a device nobody looked at.
    public var devices: [HealthDeviceSummary]

    public func count(_ severity: HealthSeverity) -> Int { findings.filter { $0.severity == severity }.count }

    /// `devices`: each device's latest snapshot with its previous one (for new core dumps);
    /// `now` dates the staleness check.
    public init(devices: [(latest: DeviceSnapshot, previous: DeviceSnapshot?)], thresholds: HealthThresholds = HealthThresholds(),
                now: Date = Date()) {
        self.thresholds = thresholds
        deviceCount = devices.count
        var findings: [HealthFinding] = [], summaries: [HealthDeviceSummary] = []
        for (latest, previous) in devices {
            let own = Self.check(latest, previous: previous, thresholds, now: now)
            findings += own
            summaries.append(HealthDeviceSummary(device: latest.device, model: latest.model, collected: latest.collected,
                                                 notChecked: own.filter { $0.check == "not-collected" }.map(\.fact),
                                                 worst: own.map(\.severity).max()))
        }
        self.findings = findings
        self.devices = summaries
    }

    /// File systems that are always full by design: the compressed read-only images Junos mounts
    /// (`/dev/md0.uzip` on `/`, packages under `/packages/mnt` or `/.mount/packages`) and pseudo
    /// file systems.
    static func isReadOnlyImage(_ fs: StorageReport.Filesystem) -> Bool {
        let name = fs.name.lowercased(), mount = fs.mountedOn ?? ""
        return name.hasSuffix(".uzip") || ["devfs", "procfs", "fdescfs"].contains(name)
            || mount.hasPrefix("/packages/mnt") || mount.hasPrefix("/.mount/packages") || mount == "/dev" || mount.hasPrefix("/proc")
    }

    /// A percentage as a device printed it, nil when it cannot be one (a hostile or garbled
    /// reply: `cpu-idle` of -9223372036854775807 must not become a finding, or a crash).
    static func percent(_ value: Int?) -> Int? { value.flatMap { (0...100).contains($0) ? $0 : nil } }

    // The checks, by fact: what each reply lets us check, for the not-collected findings.
    static let checked: [(FactKind, String)] = [
        (.routingEngines, "routing engines: state, CPU, memory, temperature, reboots"), (.storage, "storage"),
        (.chassisAlarms, "chassis alarms"), (.systemAlarms, "system alarms"), (.coreDumps, "core dumps"),
        (.environment, "environment: power, fans, sensors"),
    ]

    static func check(_ device: DeviceSnapshot, previous: DeviceSnapshot?, _ t: HealthThresholds, now: Date) -> [HealthFinding] {
        var out: [HealthFinding] = []
        let f = device.facts
        func add(_ severity: HealthSeverity, _ check: String, _ fact: String, _ value: String, _ threshold: String?, _ message: String,
                 action: String? = nil) {
            out.append(HealthFinding(device: device.device, severity: severity, check: check, fact: fact, value: value, threshold: threshold,
                                     message: message, action: action))
        }
        func level(_ value: Int, warning: Int, critical: Int) -> (HealthSeverity, Int)? {
            if value >= critical { return (.critical, critical) }
            if value >= warning { return (.warning, warning) }
            return nil
        }
        func day(_ date: Date) -> String { ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate]) }

        // The collection itself: facts from an older collection, or old facts, are said to be.
        if let failure = device.latestFailure {
            add(.warning, "collection", "collection", "failed", nil,
                "the latest collection (\(day(failure.at))) failed: \(failure.reason); what follows is from the collection of \(day(device.collected))",
                action: "fix what stopped the collection (care-agent status names it), then collect again: care-agent collect now \(device.device)")
        }
        let ageDays = Int(now.timeIntervalSince(device.collected) / 86_400)
        if ageDays >= t.staleAfterDays {
            add(.warning, "collection", "collected", "\(ageDays) days ago", ">= \(t.staleAfterDays) days",
                "last collected \(day(device.collected)), \(ageDays) days ago: every finding is that old",
                action: "check that the agent still collects this device (care-agent status) and uploads its bundles")
        }

        // What could not be checked, and why: a missing fact is never a clean bill of health.
        for (kind, what) in checked {
            let present: Bool
            switch kind {
            case .routingEngines: present = f.routingEngines != nil
            case .storage: present = f.storage != nil
            case .chassisAlarms: present = f.chassisAlarms != nil
            case .systemAlarms: present = f.systemAlarms != nil
            case .coreDumps: present = f.coreDumps != nil
            default: present = f.environment != nil
            }
            if present { continue }
            if let problem = f.parseErrors[kind.rpc] {
                add(.warning, "not-collected", kind.rawValue, "unreadable", nil, "\(what) not checked: the \(kind.rpc) reply could not be read: \(problem)",
                    action: "re-parse the bundle with a newer care-agent (care-agent bundle reparse), or send it to support")
            } else if let failure = device.failedRPCs[kind.rpc] {
                add(.warning, "not-collected", kind.rawValue, "failed", nil, "\(what) not checked: \(kind.rpc) \(failure)",
                    action: "check the collection user's permissions and the device's load, then collect again")
            } else if let asked = device.askedRPCs, !asked.contains(kind.rpc) {
                add(.info, "not-collected", kind.rawValue, "not asked", nil, "\(what) not checked: \(kind.rpc) is left out of this device's collection",
                    action: "remove \(kind.rawValue) from the group's skip list in agent.conf to have it checked")
            } else {
                add(.warning, "not-collected", kind.rawValue, "absent", nil, "\(what) not checked: no \(kind.rpc) facts")
            }
        }
        // Virtual chassis and cluster status are asked only where they apply: missing is fine,
        // failed is not.
        // A standalone SRX answers "chassis cluster is not enabled" (an error reply, recorded as
        // rpc-error by older agents): not a failure. Only a reply that never came is.
        for kind in [FactKind.virtualChassis, .cluster] where (kind == .virtualChassis ? f.virtualChassis == nil : f.cluster == nil) {
            if let problem = device.failedRPCs[kind.rpc], !problem.hasPrefix("rpc-error"), !problem.hasPrefix("not sent") {
                add(.warning, "not-collected", kind.rawValue, "failed", nil,
                    "\(kind == .cluster ? "chassis cluster" : "virtual chassis") state not checked: \(kind.rpc) \(problem)")
            }
        }

        // Routing engines.
        if let res = f.routingEngines?.routingEngines {
            var masters: [String?: Int] = [:]
            for re in res {
                let joined = [re.section, re.slot.map { "re\($0)" }].compactMap { $0 }.joined(separator: "/")
                let name = joined.isEmpty ? "(single)" : joined
                let where_ = joined.isEmpty ? "routingEngines" : "routingEngines[\(joined)]"
                if re.isMaster { masters[re.section, default: 0] += 1 }
                if let status = re.status, status.lowercased() != "ok" {
                    // vSRX reports "Testing" for good; elsewhere it is a self-test still running.
                    let testing = status.lowercased() == "testing"
                    add(testing ? .info : .critical, "routing-engine", "\(where_).status", status, "OK", "RE \(name) status is \(status)",
                        action: testing ? "normal on a virtual SRX; on hardware, check again after the RE's self-test"
                            : "check the RE (show chassis routing-engine, its log messages); open a case with support if it stays so")
                }
                if re.mastershipState?.lowercased() == "disabled" {
                    add(.critical, "routing-engine", "\(where_).mastershipState", "disabled", "master or backup",
                        "RE \(name) is disabled: no redundancy", action: "check why the RE was taken out of service; reboot or replace it")
                }
                // Judged on the 5-minute average where the release prints one: the sample is a
                // few seconds, taken while our own session runs mgd.
                let averages: [(Int?, String, String)] = [(re.cpuIdle5MinutesPercent, "cpuIdle5MinutesPercent", "over the last 5 minutes"),
                                                          (re.cpuIdle1MinutePercent, "cpuIdle1MinutePercent", "over the last minute"),
                                                          (re.cpuIdle15MinutesPercent, "cpuIdle15MinutesPercent", "over the last 15 minutes"),
                                                          (re.cpuIdlePercent, "cpuIdlePercent", "in a single sample (this release prints no averages)")]
                if let (idle, field, over) = averages.lazy.compactMap({ a in Self.percent(a.0).map { ($0, a.1, a.2) } }).first,
                   let (level, limit) = level(100 - idle, warning: t.cpuWarningPercent, critical: t.cpuCriticalPercent) {
                    // A few seconds' sample, taken while our own session runs mgd, is never more
                    // than a warning: critical needs a load that lasts.
                    let s = field == "cpuIdlePercent" ? min(level, .warning) : level
                    add(s, "cpu", "\(where_).\(field)", "\(100 - idle)% used", ">= \(limit)%", "RE \(name) CPU \(100 - idle)% busy \(over)",
                        action: "find the busy process (show system processes extensive); rpd, mgd or a script are the usual ones")
                }
                if let memory = Self.percent(re.memoryUtilizationPercent),
                   let (s, limit) = level(memory, warning: t.memoryWarningPercent, critical: t.memoryCriticalPercent) {
                    add(s, "memory", "\(where_).memoryUtilizationPercent", "\(memory)%", ">= \(limit)%", "RE \(name) memory \(memory)% used",
                        action: "find the largest processes (show system processes extensive); a growing rpd is a case for support")
                }
                if let c = re.temperatureCelsius, (-60...300).contains(c),
                   let (s, limit) = level(c, warning: t.temperatureWarningCelsius, critical: t.temperatureCriticalCelsius) {
                    add(s, "temperature", "\(where_).temperatureCelsius", "\(c) °C", ">= \(limit) °C", "RE \(name) board at \(c) °C",
                        action: "check the fans, the air filters and the room's temperature (show chassis environment)")
                }
                if let up = re.uptimeSeconds, up >= 0, up / 3600 < t.recentRebootHours {
                    add(.warning, "reboot", "\(where_).uptimeSeconds", "\(up / 3600) h \((up % 3600) / 60) min", "< \(t.recentRebootHours) h",
                        "RE \(name) rebooted recently\(re.lastRebootReason.map { ": \($0)" } ?? "")",
                        action: "if nobody rebooted it, look for a core file and open a case with support")
                }
            }
            for (section, count) in masters.sorted(by: { ($0.key ?? "") < ($1.key ?? "") }) where count > 1 {
                add(.critical, "routing-engine", section.map { "routingEngines[\($0)]" } ?? "routingEngines", "\(count) masters", "one master",
                    "\(count) routing engines\(section.map { " of \($0)" } ?? "") report themselves master",
                    action: "check the REs' connectivity to each other; open a case with support")
            }
        }
        // Storage.
        for section in f.storage?.sections ?? [] {
            for fs in section.filesystems where !Self.isReadOnlyImage(fs) {
                if let used = Self.percent(fs.usedPercent), let (s, limit) = level(used, warning: t.storageWarningPercent, critical: t.storageCriticalPercent) {
                    let place = section.routingEngine.map { "[\($0)]" } ?? ""
                    add(s, "storage", "storage\(place).\(fs.mountedOn ?? fs.name)", "\(used)%", ">= \(limit)%",
                        "\(fs.mountedOn ?? fs.name) (\(fs.name))\(section.routingEngine.map { " on \($0)" } ?? "") \(used)% full",
                        action: "request system storage cleanup (old logs, images, core files); a full /var stops upgrades and logging")
                }
            }
        }
        // Alarms.
        for (report, kind) in [(f.chassisAlarms, "chassis"), (f.systemAlarms, "system")] {
            for section in report?.sections ?? [] {
                for alarm in section.alarms {
                    let place = section.routingEngine.map { " on \($0)" } ?? ""
                    let text = alarm.description ?? alarm.shortDescription ?? "?"
                    add(alarm.isMajor ? .critical : .warning, "alarm", "\(kind)Alarms\(section.routingEngine.map { "[\($0)]" } ?? "")",
                        alarm.alarmClass ?? "?", nil, "\(kind) alarm\(place): \(text)\(alarm.timeText.map { " since \($0)" } ?? "")",
                        action: Self.alarmAction(text))
                }
            }
        }
        // Core dumps: a file is a warning until it is gone; "new" only when the previous snapshot
        // listed core files and not this one (an earlier failed listing proves nothing).
        if let cores = f.coreDumps {
            let before = previous?.facts.coreDumps.map { Set($0.files.map(\.name)) }
            for section in cores.sections {
                for file in section.files {
                    let isNew = before.map { !$0.contains(file.name) } ?? false
                    add(.warning, "core-dump", "coreDumps\(section.routingEngine.map { "[\($0)]" } ?? "")", file.name, nil,
                        "core file\(section.routingEngine.map { " on \($0)" } ?? ""): \(file.name)\(file.dateText.map { " (\($0))" } ?? "")",
                        action: (isNew ? "new since the previous collection: " : "")
                            + "open a case with support, attaching the core file and show version; then remove it (file delete)")
                }
            }
        }
        // Environment: each item by the status Junos gives it against its own thresholds.
        for section in f.environment?.sections ?? [] {
            for sensor in section.sensors where sensor.isFaulty {
                let place = section.routingEngine.map { "[\($0)]" } ?? ""
                add(.critical, "environment", "environment\(place).\(sensor.name)", sensor.status ?? "?", "OK",
                    "\(sensor.sensorClass ?? "item") \(sensor.name) is \(sensor.status ?? "?")\(sensor.celsius.map { " at \($0) °C" } ?? "")\(sensor.comment.map { " (\($0))" } ?? "")",
                    action: "check the part (show chassis environment, show chassis alarms); replace a failed power supply or fan tray")
            }
        }
        // Virtual chassis: every member present, one master, a backup once there are two members.
        if let vc = f.virtualChassis, !vc.members.isEmpty {
            for member in vc.members where !member.isPresent {
                add(.critical, "virtual-chassis", "virtualChassis.members[\(member.id.map(String.init) ?? "?")]", member.status ?? "?", "Prsnt",
                    "VC member \(member.id.map(String.init) ?? "?") (\(member.model ?? "?") \(member.serialNumber ?? "")) is \(member.status ?? "not present")",
                    action: "check the member's power and its VC port links; remove it from the preprovisioned configuration if it is gone for good")
            }
            let present = vc.members.filter(\.isPresent)
            let masters = vc.members.filter { $0.role == .master }
            if masters.isEmpty {
                add(.critical, "virtual-chassis", "virtualChassis.members", "no master", "one master", "the virtual chassis reports no master",
                    action: "check the members' VC port links and mastership priorities")
            } else if masters.count > 1 {
                add(.critical, "virtual-chassis", "virtualChassis.masters", "\(masters.count) masters", "one master",
                    "the virtual chassis reports \(masters.count) masters (members \(masters.map { $0.id.map(String.init) ?? "?" }.joined(separator: ", "))): split",
                    action: "restore the VC port links between the members; the split halves run apart until then")
            }
            if present.count >= 2, vc.backup == nil {
                add(.warning, "virtual-chassis", "virtualChassis.backup", "no backup", "a backup",
                    "the virtual chassis has \(present.count) members and no backup: the master is a single point of failure",
                    action: "give a second member of the master's model mastership priority (virtual-chassis member N mastership-priority 255; "
                        + "in a mixed VC only that model can be a routing engine), or check why the backup is gone")
            }
        }
        // Cluster: each redundancy group has one primary, on its highest-priority node.
        if let cluster = f.cluster {
            for group in cluster.redundancyGroups {
                let id = group.id.map(String.init) ?? "?"
                let fact = "cluster.redundancyGroups[\(id)]"
                let primaries = group.nodes.filter { $0.status?.lowercased() == "primary" }
                if primaries.isEmpty {
                    add(.critical, "cluster", fact, "no primary", "one primary", "redundancy group \(id) has no primary node",
                        action: "check both nodes (show chassis cluster status, show chassis cluster interfaces)")
                } else if primaries.count > 1 {
                    add(.critical, "cluster", fact, "\(primaries.count) primaries", "one primary",
                        "redundancy group \(id) is primary on \(primaries.map { $0.name ?? "?" }.joined(separator: " and ")): split brain",
                        action: "restore the control and fabric links; then reboot the node that should be secondary")
                }
                for node in group.nodes {
                    let nodeName = node.name ?? "?"
                    switch node.status?.lowercased() {
                    case "primary"?, "secondary"?: break
                    case "secondary-hold"?:
                        add(.warning, "cluster", "\(fact).\(nodeName)", node.status!, "primary or secondary",
                            "redundancy group \(id): \(nodeName) is secondary-hold: it cannot take over until its hold-down timer ends",
                            action: "normal for a few minutes after a failover; if it stays, check the node")
                    case nil:
                        add(.warning, "cluster", "\(fact).\(nodeName)", "?", "primary or secondary",
                            "redundancy group \(id): \(nodeName) reports no status")
                    default:
                        add(.critical, "cluster", "\(fact).\(nodeName)", node.status!, "primary or secondary",
                            "redundancy group \(id): \(nodeName) is \(node.status!)",
                            action: "check the control and fabric links and the node itself; a disabled node needs a reboot to rejoin")
                    }
                    if node.priority == 0 {
                        add(.warning, "cluster", "\(fact).\(nodeName).priority", "0", "above 0",
                            "redundancy group \(id): \(nodeName) has priority 0: a monitored interface or IP failed, or the node is ineligible",
                            action: "show chassis cluster information: the monitoring that brought the priority down")
                    }
                    if let failures = node.monitorFailures, !failures.isEmpty {
                        add(.warning, "cluster", "\(fact).\(nodeName).monitorFailures", failures.joined(separator: " "), "None",
                            "redundancy group \(id): \(nodeName) monitoring failures \(failures.joined(separator: " "))",
                            action: "check the monitored interfaces and IP addresses of the group")
                    }
                    if node.manualFailover == true {
                        add(.info, "cluster", "\(fact).\(nodeName).manualFailover", "yes", nil,
                            "redundancy group \(id): a manual failover is in effect on \(nodeName)",
                            action: "request chassis cluster failover reset redundancy-group \(id) once it is no longer wanted")
                    }
                }
                // Failed over: the primary has a lower priority than a healthy secondary.
                if primaries.count == 1, let primary = primaries.first, let own = primary.priority, own > 0,
                   let better = group.nodes.first(where: { $0.status?.lowercased() == "secondary" && ($0.priority ?? 0) > own }) {
                    add(.warning, "cluster", "\(fact).primary", primary.name ?? "?", better.name ?? "?",
                        "redundancy group \(id) is primary on \(primary.name ?? "?") (priority \(own)), not on \(better.name ?? "?") (priority \(better.priority!))"
                            + (group.failoverCount.map { ": \($0) failover\($0 == 1 ? "" : "s")" } ?? ""),
                        action: "find why it failed over (show chassis cluster information); fail back by hand (request chassis cluster failover) unless preempt is set")
                }
            }
        }
        return out
    }

    /// What to do about an alarm, for the alarms every NOC meets.
    static func alarmAction(_ text: String) -> String {
        let t = text.lowercased()
        if t.contains("rescue configuration") { return "request system configuration rescue save" }
        if t.contains("autorecovery") { return "request system autorecovery state save" }
        if t.contains("license") { return "install the license the feature needs, or remove the feature (show system license)" }
        if t.contains("temperature") || t.contains("fan") { return "check the fans, the air filters and the room's temperature (show chassis environment)" }
        if t.contains("pem") || t.contains("power") { return "check the power supply and its feed (show chassis environment pem)" }
        if t.contains("partition") || t.contains("storage") || t.contains("disk") { return "check the storage (show system storage); request system storage cleanup" }
        return "see show chassis alarms / show system alarms and the alarm's entry in Juniper's alarm reference"
    }
}
