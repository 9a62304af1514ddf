import Bundle
import Foundation
import Junos

/// What the health poll keeps of a device between two polls: the few facts whose change is an
/// incident worth an immediate diagnostic bundle. Built from the facts of a short poll session
/// (``pollFacts``); compared with the previous poll by ``events(since:at:)``.
public struct HealthSnapshot: Codable, Sendable, Equatable {
    /// Active major and minor chassis alarms, as `Class: description [section]`; nil when the
    /// poll did not get them (then nothing is compared).
    public var chassisAlarms: Set<String>?
    /// The same for system alarms.
    public var systemAlarms: Set<String>?
    /// Core files listed, as `section:path/name` (the path is part of the identity: the same
    /// name under another RE is another core); nil when the poll did not get the listing.
    public var coreFiles: Set<String>?
    /// The primary routing engine as `section/slot` (nil: unknown, or a single RE that says nothing).
    public var primaryRoutingEngine: String?
    /// Boot time (Unix seconds) of each routing engine / member / node section.
    public var bootTimes: [String: Int]
    /// Uptime in seconds of each section (a reboot shows as a decrease when the boot time is missing).
    public var uptimes: [String: Int]
    /// Routing engines as `section/slot` → status (`OK`, `Present`, `Offline`, `Absent`, ...).
    public var routingEngineStates: [String: String]
    /// Virtual Chassis members by id → status (`Prsnt`, `NotPrsnt`, ...).
    public var virtualChassisMembers: [Int: String]
    /// Chassis cluster nodes seen in any redundancy group (`node0`, `node1`).
    public var clusterNodes: Set<String>
    /// Each node's status per redundancy group, as `rgN/node1` → `secondary`, `lost`, ...
    public var clusterNodeStates: [String: String] = [:]
    /// Each routing engine's own uptime in seconds (`section/slot`, from the routing-engine
    /// reply): a reboot of the backup RE shows here, and a switchover does not look like one.
    public var engineUptimes: [String: Int] = [:]
    /// Each routing engine's boot time (Unix seconds), for when it reports no uptime.
    public var engineBootTimes: [String: Int] = [:]

    /// The facts a poll asks for: small replies, each a few KiB.
    public static let pollFacts: [FactKind] = [.chassisAlarms, .systemAlarms, .coreDumps, .routingEngines, .uptime, .virtualChassis, .cluster]

    public init(facts: DeviceFacts) {
        func alarms(_ report: AlarmReport?) -> Set<String>? {
            guard let report else { return nil }
            var alarms = Set<String>()
            for section in report.sections {
                for alarm in section.alarms {
                    let alarmClass = alarm.alarmClass ?? "Alarm"
                    guard ["major", "minor"].contains(alarmClass.lowercased()) else { continue }
                    let text = alarm.description ?? alarm.shortDescription ?? "(no description)"
                    alarms.insert("\(alarmClass): \(text)" + (section.routingEngine.map { " [\($0)]" } ?? ""))
                }
            }
            return alarms
        }
        chassisAlarms = alarms(facts.chassisAlarms)
        systemAlarms = alarms(facts.systemAlarms)
        coreFiles = facts.coreDumps.map { report in
            var cores = Set<String>()
            for section in report.sections {
                for file in section.files {
                    let path = file.name.hasPrefix("/") ? file.name : (section.rootPath.map { $0 + "/" } ?? "") + file.name
                    cores.insert((section.routingEngine ?? "") + ":" + path)
                }
            }
            return cores
        }
        let engines = facts.routingEngines
        primaryRoutingEngine = engines.flatMap { report in
            guard report.routingEngines.count > 1 || report.routingEngines.contains(where: { $0.mastershipState != nil }) else { return nil }
            return report.master.map(Self.key)
        }
        var states: [String: String] = [:]
        for engine in engines?.routingEngines ?? [] {
            let key = Self.key(engine)
            states[key] = engine.status ?? engine.mastershipState ?? "present"
            if let up = engine.uptimeSeconds { engineUptimes[key] = up }
            if let booted = engine.startTimeEpoch { engineBootTimes[key] = booted }
        }
        routingEngineStates = states
        var boots: [String: Int] = [:], uptimes: [String: Int] = [:]
        for section in facts.uptime?.sections ?? [] {
            let name = section.routingEngine ?? "local"
            if let booted = section.systemBooted?.seconds { boots[name] = booted }
            if let up = section.uptimeSeconds { uptimes[name] = up }
        }
        bootTimes = boots
        self.uptimes = uptimes
        var members: [Int: String] = [:]
        for member in facts.virtualChassis?.members ?? [] {
            if let id = member.id { members[id] = member.status ?? "present" }
        }
        virtualChassisMembers = members
        clusterNodes = Set((facts.cluster?.redundancyGroups ?? []).flatMap { $0.nodes.compactMap(\.name) })
        for group in facts.cluster?.redundancyGroups ?? [] {
            for node in group.nodes {
                guard let name = node.name, let status = node.status else { continue }
                clusterNodeStates["rg\(group.id.map(String.init) ?? "?")/\(name)"] = status.lowercased()
            }
        }
    }

    static func key(_ engine: RoutingEngineStatus) -> String { "\(engine.section ?? "")/\(engine.slot.map(String.init) ?? "-")" }

    /// This poll with what it did not get (an RPC that failed or timed out leaves its fact nil or
    /// empty) taken from `previous`: the baseline the next poll is compared with. Kept as it
    /// came, a partial poll (likeliest when the device is busy with an incident) made the next
    /// new alarm, reboot or lost member compare with nothing, and raise nothing.
    public func filling(from previous: HealthSnapshot) -> HealthSnapshot {
        var kept = self
        kept.chassisAlarms = chassisAlarms ?? previous.chassisAlarms
        kept.systemAlarms = systemAlarms ?? previous.systemAlarms
        kept.coreFiles = coreFiles ?? previous.coreFiles
        kept.primaryRoutingEngine = primaryRoutingEngine ?? previous.primaryRoutingEngine
        if bootTimes.isEmpty { kept.bootTimes = previous.bootTimes }
        if uptimes.isEmpty { kept.uptimes = previous.uptimes }
        if routingEngineStates.isEmpty { kept.routingEngineStates = previous.routingEngineStates }
        if virtualChassisMembers.isEmpty { kept.virtualChassisMembers = previous.virtualChassisMembers }
        if clusterNodes.isEmpty { kept.clusterNodes = previous.clusterNodes }
        if clusterNodeStates.isEmpty { kept.clusterNodeStates = previous.clusterNodeStates }
        if engineUptimes.isEmpty { kept.engineUptimes = previous.engineUptimes }
        if engineBootTimes.isEmpty { kept.engineBootTimes = previous.engineBootTimes }
        return kept
    }

    /// The incidents between `previous` and this poll, each as the manifest records it. A fact
    /// missing from either poll (its RPC failed) raises nothing: a failed RPC is not an incident.
    public func events(since previous: HealthSnapshot, at time: Date) -> [TriggerEvent] {
        var events: [TriggerEvent] = []
        func raise(_ kind: String, _ evidence: String) {
            events.append(TriggerEvent(kind: kind, source: "poll", time: time, evidence: evidence))
        }
        if let now = chassisAlarms, let before = previous.chassisAlarms {
            for alarm in now.subtracting(before).sorted() { raise("alarm", "new chassis alarm: \(alarm)") }
        }
        if let now = systemAlarms, let before = previous.systemAlarms {
            for alarm in now.subtracting(before).sorted() { raise("alarm", "new system alarm: \(alarm)") }
        }
        if let now = coreFiles, let before = previous.coreFiles {
            for core in now.subtracting(before).sorted() { raise("core-dump", "new core file \(core)") }
        }
        if let before = previous.primaryRoutingEngine, let now = primaryRoutingEngine, before != now {
            raise("switchover", "primary routing engine was \(before), now \(now)")
        }
        if let reboots = rebootEvidence(since: previous) { raise("reboot", reboots) }
        for (engine, before) in previous.routingEngineStates.sorted(by: { $0.key < $1.key }) {
            let now = routingEngineStates[engine]
            guard Self.isUp(before), !routingEngineStates.isEmpty, now.map(Self.isUp) != true else { continue }
            raise("fru-offline", "routing engine \(engine) was \(before), now \(now ?? "absent")")
        }
        for (id, before) in previous.virtualChassisMembers.sorted(by: { $0.key < $1.key }) {
            let now = virtualChassisMembers[id]
            guard Self.isUp(before), !virtualChassisMembers.isEmpty, now.map(Self.isUp) != true else { continue }
            raise("vc-member-lost", "virtual chassis member \(id) was \(before), now \(now ?? "absent")")
        }
        if !clusterNodes.isEmpty {
            for node in previous.clusterNodes.subtracting(clusterNodes).sorted() {
                raise("cluster-node-lost", "chassis cluster node \(node) no longer reported")
            }
        }
        // Junos keeps listing a node it lost, as `lost` or `disabled`: a node that was in
        // service and no longer is, once per node, naming its groups.
        var fallen: [String: [String]] = [:]
        for (key, now) in clusterNodeStates.sorted(by: { $0.key < $1.key }) {
            guard let before = previous.clusterNodeStates[key], Self.inService(before), !Self.inService(now) else { continue }
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            fallen[parts[1], default: []].append("\(parts[0].dropFirst(2)): \(before) → \(now)")
        }
        for (node, groups) in fallen.sorted(by: { $0.key < $1.key }) {
            raise("cluster-node-lost", "chassis cluster node \(node) out of service (redundancy group \(groups.joined(separator: ", ")))")
        }
        // A redundancy group whose primary moved to the other node: a failover.
        var primaries: [String: (before: String, now: String)] = [:]
        for (key, now) in clusterNodeStates where now == "primary" {
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let group = parts[0]
            let before = previous.clusterNodeStates.first { $0.key.hasPrefix(group + "/") && $0.value == "primary" }
            if let before, before.key != key { primaries[group] = (String(before.key.dropFirst(group.count + 1)), parts[1]) }
        }
        for (group, change) in primaries.sorted(by: { $0.key < $1.key }) {
            raise("cluster-failover", "redundancy group \(group.dropFirst(2)): primary was \(change.before), now \(change.now)")
        }
        return events
    }

    /// Which routing engines rebooted since `previous`, as evidence; nil when none. Each RE by its
    /// own uptime (the routing-engine reply, per slot), which only a reboot makes smaller and a
    /// clock step on the device does not touch; its boot time only where it gives no uptime (a
    /// boot over two minutes later: a clock step moves it a little). The uptime reply's sections
    /// too (a device whose routing-engine reply says nothing of it); its single, unwrapped
    /// section is whichever RE the session reached, so across a switchover it is another RE's,
    /// and not compared.
    func rebootEvidence(since previous: HealthSnapshot) -> String? {
        var rebooted: [String] = []
        for (engine, up) in engineUptimes.sorted(by: { $0.key < $1.key }) {
            if let before = previous.engineUptimes[engine], up < before {
                rebooted.append("routing engine \(engine): uptime \(up) s, was \(before) s")
            }
        }
        for (engine, booted) in engineBootTimes.sorted(by: { $0.key < $1.key }) where engineUptimes[engine] == nil || previous.engineUptimes[engine] == nil {
            if let before = previous.engineBootTimes[engine], booted > before + 120 {
                rebooted.append("routing engine \(engine): booted at \(booted), was \(before)")
            }
        }
        let switchedOver = previous.primaryRoutingEngine != nil && primaryRoutingEngine != nil && previous.primaryRoutingEngine != primaryRoutingEngine
        for section in Set(bootTimes.keys).union(uptimes.keys).sorted() {
            if section == "local", switchedOver { continue }
            if let up = uptimes[section], let before = previous.uptimes[section] {
                if up < before { rebooted.append("\(section): uptime \(up) s, was \(before) s") }
            } else if let booted = bootTimes[section], let before = previous.bootTimes[section], booted > before + 120 {
                rebooted.append("\(section): booted at \(booted), was \(before)")
            }
        }
        return rebooted.isEmpty ? nil : rebooted.joined(separator: "; ")
    }

    /// Whether a cluster node's status in a redundancy group means it is in service.
    static func inService(_ status: String) -> Bool {
        ["primary", "secondary", "secondary-hold"].contains(status)
    }

    /// Whether a status word means the part is there and working.
    static func isUp(_ status: String) -> Bool {
        let s = status.lowercased()
        return !(s.contains("offline") || s.contains("absent") || s.contains("notprsnt") || s.contains("not present")
            || s.contains("fail") || s.contains("unknown") || s.contains("inactive"))
    }
}
