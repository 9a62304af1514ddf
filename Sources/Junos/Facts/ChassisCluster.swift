import XML

/// What `show chassis cluster status` reports on an SRX cluster: per redundancy group the
/// priority and state of each node. A device without clustering answers with an error
/// ("Chassis cluster is not enabled"), which the throwing parse turns into
/// ``JunosParseError/deviceError(rpc:_:)``.
public struct ChassisClusterStatus: JunosFact {
    public static let dataElements = ["chassis-cluster-status"]

    public var clusterID: Int?
    public var redundancyGroups: [RedundancyGroup]

    public init(clusterID: Int? = nil, redundancyGroups: [RedundancyGroup] = []) {
        self.clusterID = clusterID
        self.redundancyGroups = redundancyGroups
    }

    /// A redundancy group by id (0 is the control plane).
    public func redundancyGroup(_ id: Int) -> RedundancyGroup? {
        redundancyGroups.first { $0.id == id }
    }

    /// True when `error` is the answer of a standalone device ("Chassis cluster is not enabled"):
    /// a fact about the device (no cluster), not a collection failure.
    public static func isNotEnabled(_ error: JunosParseError) -> Bool {
        guard case .deviceError(_, let messages) = error else { return false }
        return messages.contains { $0.message.lowercased().contains("chassis cluster is not enabled") }
    }

    public static func parse(_ reply: JunosReply) -> Self {
        guard let e = reply.sections(named: "chassis-cluster-status").first?.element else { return Self() }
        return ChassisClusterStatus(
            clusterID: JunosValue.integer(e.value("cluster-id")),
            redundancyGroups: e.children("redundancy-group").map(RedundancyGroup.init(element:)))
    }
}

/// One redundancy group.
public struct RedundancyGroup: Codable, Sendable, Equatable {
    public var id: Int?
    public var failoverCount: Int?
    public var nodes: [RedundancyGroupNode]

    public init(id: Int? = nil, failoverCount: Int? = nil, nodes: [RedundancyGroupNode] = []) {
        self.id = id
        self.failoverCount = failoverCount
        self.nodes = nodes
    }

    /// The node whose status is primary.
    public var primary: RedundancyGroupNode? { nodes.first { $0.status?.lowercased() == "primary" } }

    init(element: XMLElement) {
        id = JunosValue.integer(element.value("redundancy-group-id"))
        failoverCount = JunosValue.integer(element.value("redundancy-group-failover-count"))
        nodes = Self.nodes(in: element.children("device-stats"))
    }

    /// Junos lists both nodes' fields as flat siblings inside one `<device-stats>`
    /// (`device-name`, `device-priority`, ..., `device-name`, ...): each `device-name` starts a node.
    /// One `<device-stats>` per node reads the same way.
    static func nodes(in stats: [XMLElement]) -> [RedundancyGroupNode] {
        var nodes: [RedundancyGroupNode] = []
        for block in stats {
            for field in block.children {
                if field.name == "device-name" {
                    nodes.append(RedundancyGroupNode(name: field.value))
                    continue
                }
                // Fields before any device-name still belong to some node: keep them on an unnamed one.
                if nodes.isEmpty { nodes.append(RedundancyGroupNode()) }
                nodes[nodes.count - 1].absorb(field)
            }
        }
        return nodes
    }
}

/// One node's view within a redundancy group.
public struct RedundancyGroupNode: Codable, Sendable, Equatable {
    /// `node0`, `node1`.
    public var name: String?
    public var priority: Int?
    /// `primary`, `secondary`, `lost`, `disabled`, `secondary-hold`, `ineligible`, `hold`.
    public var status: String?
    /// Nil when the node reports `n/a` or leaves it out.
    public var preempt: Bool?
    /// `failover-mode`: a manual failover is in effect.
    public var manualFailover: Bool?
    /// Monitoring failure codes (`IF`, `CS`, `IP`); empty for `None`, nil when not reported.
    public var monitorFailures: [String]?

    public init(name: String? = nil, priority: Int? = nil, status: String? = nil, preempt: Bool? = nil,
                manualFailover: Bool? = nil, monitorFailures: [String]? = nil) {
        self.name = name
        self.priority = priority
        self.status = status
        self.preempt = preempt
        self.manualFailover = manualFailover
        self.monitorFailures = monitorFailures
    }

    mutating func absorb(_ field: XMLElement) {
        switch field.name {
        case "device-priority": priority = JunosValue.integer(field.value)
        case "redundancy-group-status": status = field.value
        case "preempt": preempt = Self.yesNo(field.value)
        case "failover-mode": manualFailover = Self.yesNo(field.value)
        case "monitor-failures":
            let text = field.value ?? ""
            monitorFailures = text.lowercased() == "none" ? []
                : text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        default: break
        }
    }

    static func yesNo(_ text: String?) -> Bool? {
        switch text?.lowercased() {
        case "yes": return true
        case "no": return false
        default: return nil
        }
    }
}
