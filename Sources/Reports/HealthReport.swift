import Foundation
import Junos

/// Thresholds of `report health`; each configurable in `[reports]` of agent.conf (docs/reports.md).
public struct HealthThresholds: Sendable, Equatable {
    /// RE CPU utilisation (100 - idle) at or above which a finding is raised: warning, critical.
    public var cpuWarningPercent = 80
    public var cpuCriticalPercent = 95
    /// RE memory utilisation.
    public var memoryWarningPercent = 85
    public var memoryCriticalPercent = 95
    /// File system capacity used.
    public var storageWarningPercent = 80
    public var storageCriticalPercent = 90
    /// Temperatures (sensor and RE), in °C.
    public var temperatureWarningCelsius = 65
    public var temperatureCriticalCelsius = 75
    /// An uptime below this many hours counts as a recent reboot.
    public var recentRebootHours = 24

    public init() {}

    /// The `[reports]` keys: `cpu-warning = 80`, `storage-critical = 90`, ...
    public static let keyNames = ["cpu-warning", "cpu-critical", "memory-warning", "memory-critical", "storage-warning",
                                  "storage-critical", "temperature-warning", "temperature-critical", "reboot-within-hours"]

    /// Sets the threshold named by a `[reports]` key; false when the key is not a threshold.
    public mutating func set(_ key: String, to value: Int) -> Bool {
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
        default: return false
        }
        return true
    }
}

/// How serious a health finding is.
public enum HealthSeverity: String, Codable, Sendable, CaseIterable, Comparable {
    case info, warning, critical

    var rank: Int { self == .info ? 0 : self == .warning ? 1 : 2 }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// One finding of `report health`: what, where, the value, and the threshold it crossed.
public struct HealthFinding: Codable, Sendable, Equatable {
    public var device: String
    public var severity: HealthSeverity
    /// `cpu`, `memory`, `storage`, `alarm`, `core-dump`, `reboot`, `environment`, `temperature`,
    /// `virtual-chassis`, `cluster`, `not-collected`.
    public var check: String
    /// The fact it comes from (`routingEngines[re0].cpuIdlePercent`, `storage[re0]./dev/gpt/var`).
    public var fact: String
    public var value: String
    /// The threshold crossed, nil when the finding is not a threshold (an alarm, a core file).
    public var threshold: String?
    public var message: String

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(device, forKey: .device)
        try c.encode(severity, forKey: .severity)
        try c.encode(check, forKey: .check)
        try c.encode(fact, forKey: .fact)
        try c.encode(value, forKey: .value)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(message, forKey: .message)
    }
}

/// `report health`: each device's latest facts against the thresholds.
public struct HealthReport: Sendable {
    public var findings: [HealthFinding]
    public var deviceCount: Int
    public var thresholds: HealthThresholds

    public func count(_ severity: HealthSeverity) -> Int { findings.filter { $0.severity == severity }.count }

    /// `devices`: each device's latest snapshot with its previous one (for new core dumps).
    public init(devices: [(latest: DeviceSnapshot, previous: DeviceSnapshot?)], thresholds: HealthThresholds = HealthThresholds()) {
        self.thresholds = thresholds
        deviceCount = devices.count
        findings = devices.flatMap { Self.check($0.latest, previous: $0.previous, thresholds) }
    }

    /// File systems that are always full by design: the compressed read-only images Junos mounts
    /// (`/dev/md0.uzip` on `/`, packages under `/packages/mnt` or `/.mount/packages`) and pseudo
    /// file systems.
    static func isReadOnlyImage(_ fs: StorageReport.Filesystem) -> Bool {
        let name = fs.name.lowercased(), mount = fs.mountedOn ?? ""
        return name.hasSuffix(".uzip") || ["devfs", "procfs", "fdescfs"].contains(name)
            || mount.hasPrefix("/packages/mnt") || mount.hasPrefix("/.mount/packages") || mount == "/dev" || mount.hasPrefix("/proc")
    }

    static func check(_ device: DeviceSnapshot, previous: DeviceSnapshot?, _ t: HealthThresholds) -> [HealthFinding] {
        var out: [HealthFinding] = []
        let f = device.facts
        func add(_ severity: HealthSeverity, _ check: String, _ fact: String, _ value: String, _ threshold: String?, _ message: String) {
            out.append(HealthFinding(device: device.device, severity: severity, check: check, fact: fact, value: value, threshold: threshold, message: message))
        }
        func level(_ value: Int, warning: Int, critical: Int) -> (HealthSeverity, Int)? {
            if value >= critical { return (.critical, critical) }
            if value >= warning { return (.warning, warning) }
            return nil
        }
        // Routing engines.
        if let res = f.routingEngines?.routingEngines {
            for re in res {
                let joined = [re.section, re.slot.map { "re\($0)" }].compactMap { $0 }.joined(separator: "/")
                let name = joined.isEmpty ? "(single)" : joined
                let where_ = joined.isEmpty ? "routingEngines" : "routingEngines[\(joined)]"
                if let idle = re.cpuIdlePercent, let (s, limit) = level(100 - idle, warning: t.cpuWarningPercent, critical: t.cpuCriticalPercent) {
                    add(s, "cpu", "\(where_).cpuIdlePercent", "\(100 - idle)% used", ">= \(limit)%", "RE \(name) CPU \(100 - idle)% busy")
                }
                if let memory = re.memoryUtilizationPercent, let (s, limit) = level(memory, warning: t.memoryWarningPercent, critical: t.memoryCriticalPercent) {
                    add(s, "memory", "\(where_).memoryUtilizationPercent", "\(memory)%", ">= \(limit)%", "RE \(name) memory \(memory)% used")
                }
                for (value, field) in [(re.temperatureCelsius, "temperatureCelsius"), (re.cpuTemperatureCelsius, "cpuTemperatureCelsius")] {
                    if let c = value, let (s, limit) = level(c, warning: t.temperatureWarningCelsius, critical: t.temperatureCriticalCelsius) {
                        add(s, "temperature", "\(where_).\(field)", "\(c) °C", ">= \(limit) °C", "RE \(name) at \(c) °C")
                    }
                }
                if let up = re.uptimeSeconds, up < t.recentRebootHours * 3600 {
                    add(.warning, "reboot", "\(where_).uptimeSeconds", "\(up / 3600) h \((up % 3600) / 60) min", "< \(t.recentRebootHours) h",
                        "RE \(name) rebooted recently\(re.lastRebootReason.map { ": \($0)" } ?? "")")
                }
            }
        } else {
            add(.info, "not-collected", "routingEngines", "absent", nil, "routing engine facts were not collected: CPU, memory and reboots not checked")
        }
        // Storage.
        for section in f.storage?.sections ?? [] {
            for fs in section.filesystems where !Self.isReadOnlyImage(fs) {
                if let used = fs.usedPercent, let (s, limit) = level(used, warning: t.storageWarningPercent, critical: t.storageCriticalPercent) {
                    let place = section.routingEngine.map { "[\($0)]" } ?? ""
                    add(s, "storage", "storage\(place).\(fs.mountedOn ?? fs.name)", "\(used)%", ">= \(limit)%",
                        "\(fs.mountedOn ?? fs.name) (\(fs.name))\(section.routingEngine.map { " on \($0)" } ?? "") \(used)% full")
                }
            }
        }
        // Alarms.
        for (report, kind) in [(f.chassisAlarms, "chassis"), (f.systemAlarms, "system")] {
            for section in report?.sections ?? [] {
                for alarm in section.alarms {
                    let place = section.routingEngine.map { " on \($0)" } ?? ""
                    add(alarm.isMajor ? .critical : .warning, "alarm", "\(kind)Alarms\(section.routingEngine.map { "[\($0)]" } ?? "")",
                        alarm.alarmClass ?? "?", nil, "\(kind) alarm\(place): \(alarm.description ?? alarm.shortDescription ?? "?")\(alarm.timeText.map { " since \($0)" } ?? "")")
                }
            }
        }
        // Core dumps: new ones since the previous snapshot are warnings; old ones information.
        if let cores = f.coreDumps {
            let before = Set(previous?.facts.coreDumps?.files.map(\.name) ?? [])
            for section in cores.sections {
                for file in section.files {
                    let isNew = previous != nil && !before.contains(file.name)
                    add(isNew || previous == nil ? .warning : .info, "core-dump", "coreDumps\(section.routingEngine.map { "[\($0)]" } ?? "")",
                        file.name, nil, "\(isNew ? "new core file" : "core file")\(section.routingEngine.map { " on \($0)" } ?? ""): \(file.name)\(file.dateText.map { " (\($0))" } ?? "")")
                }
            }
        }
        // Environment.
        for section in f.environment?.sections ?? [] {
            for sensor in section.sensors {
                let place = section.routingEngine.map { "[\($0)]" } ?? ""
                if sensor.isFaulty {
                    add(.critical, "environment", "environment\(place).\(sensor.name)", sensor.status ?? "?", "OK",
                        "\(sensor.sensorClass ?? "item") \(sensor.name) is \(sensor.status ?? "?")\(sensor.comment.map { " (\($0))" } ?? "")")
                }
                if let c = sensor.celsius, let (s, limit) = level(c, warning: t.temperatureWarningCelsius, critical: t.temperatureCriticalCelsius) {
                    add(s, "temperature", "environment\(place).\(sensor.name)", "\(c) °C", ">= \(limit) °C", "\(sensor.name) at \(c) °C")
                }
            }
        }
        // Virtual chassis: every member present, one master.
        if let vc = f.virtualChassis, !vc.members.isEmpty {
            for member in vc.members where !member.isPresent {
                add(.critical, "virtual-chassis", "virtualChassis.members[\(member.id.map(String.init) ?? "?")]", member.status ?? "?", "Prsnt",
                    "VC member \(member.id.map(String.init) ?? "?") (\(member.model ?? "?") \(member.serialNumber ?? "")) is \(member.status ?? "not present")")
            }
            if vc.master == nil {
                add(.critical, "virtual-chassis", "virtualChassis.members", "no master", "one master", "the virtual chassis reports no master")
            }
        }
        // Cluster: each redundancy group has one primary and its other nodes secondary.
        if let cluster = f.cluster {
            for group in cluster.redundancyGroups {
                let id = group.id.map(String.init) ?? "?"
                if group.primary == nil {
                    add(.critical, "cluster", "cluster.redundancyGroups[\(id)]", "no primary", "one primary", "redundancy group \(id) has no primary node")
                }
                for node in group.nodes {
                    let status = node.status?.lowercased() ?? "?"
                    if status != "primary" && status != "secondary" {
                        add(.critical, "cluster", "cluster.redundancyGroups[\(id)].\(node.name ?? "?")", node.status ?? "?", "primary or secondary",
                            "redundancy group \(id): \(node.name ?? "?") is \(node.status ?? "?")")
                    }
                    if let failures = node.monitorFailures, !failures.isEmpty {
                        add(.warning, "cluster", "cluster.redundancyGroups[\(id)].\(node.name ?? "?").monitorFailures", failures.joined(separator: " "), "None",
                            "redundancy group \(id): \(node.name ?? "?") monitoring failures \(failures.joined(separator: " "))")
                    }
                }
            }
        }
        return out
    }
}
