import XML

/// Everything known about one device from one collection. Each field is nil when its RPC was not
/// collected or gave no data; `parseErrors` says why for the ones that failed.
public struct DeviceFacts: Codable, Sendable, Equatable {
    public var software: SoftwareInformation?
    public var inventory: ChassisInventory?
    public var routingEngines: RoutingEngineReport?
    public var environment: EnvironmentReport?
    public var chassisAlarms: AlarmReport?
    public var systemAlarms: AlarmReport?
    public var storage: StorageReport?
    public var coreDumps: CoreDumpReport?
    public var uptime: UptimeReport?
    public var virtualChassis: VirtualChassisStatus?
    public var cluster: ChassisClusterStatus?
    public var configuration: ConfigurationFacts?
    public var interfaces: InterfaceReport?
    /// RPC name → why its reply gave no facts.
    public var parseErrors: [String: String]

    public init() { parseErrors = [:] }
}

/// The kinds of fact the agent knows how to read, and the RPC that asks for each.
public enum FactKind: String, Codable, Sendable, CaseIterable {
    case software, inventory, routingEngines, environment, chassisAlarms, systemAlarms, storage
    case coreDumps, uptime, virtualChassis, cluster, configuration, interfaces

    /// The Junos RPC for this fact.
    public var rpc: String {
        switch self {
        case .software: return "get-software-information"
        case .inventory: return "get-chassis-inventory"
        case .routingEngines: return "get-route-engine-information"
        case .environment: return "get-environment-information"
        case .chassisAlarms: return "get-alarm-information"
        case .systemAlarms: return "get-system-alarm-information"
        case .storage: return "get-system-storage"
        case .coreDumps: return "get-system-core-dumps"
        case .uptime: return "get-system-uptime-information"
        case .virtualChassis: return "get-virtual-chassis-information"
        case .cluster: return "get-chassis-cluster-status"
        case .configuration: return "get-configuration"
        case .interfaces: return "get-interface-information"
        }
    }

    /// The kind whose RPC is `rpc`, if any.
    public init?(rpc: String) {
        guard let kind = FactKind.allCases.first(where: { $0.rpc == rpc }) else { return nil }
        self = kind
    }

    var factType: any JunosFact.Type {
        switch self {
        case .software: return SoftwareInformation.self
        case .inventory: return ChassisInventory.self
        case .routingEngines: return RoutingEngineReport.self
        case .environment: return EnvironmentReport.self
        case .chassisAlarms, .systemAlarms: return AlarmReport.self
        case .storage: return StorageReport.self
        case .coreDumps: return CoreDumpReport.self
        case .uptime: return UptimeReport.self
        case .virtualChassis: return VirtualChassisStatus.self
        case .cluster: return ChassisClusterStatus.self
        case .configuration: return ConfigurationFacts.self
        case .interfaces: return InterfaceReport.self
        }
    }

    /// The kind whose data element is the first section of `reply` (for `care-agent parse`).
    /// Alarm replies look the same for chassis and system alarms; they detect as chassis alarms.
    public static func detect(_ reply: JunosReply) -> FactKind? {
        for section in reply.sections {
            if let kind = allCases.first(where: { $0.factType.dataElements.contains(section.element.name) }) {
                return kind
            }
        }
        return nil
    }
}

extension DeviceFacts {
    /// Parses one reply into the field for `kind`. A failure is recorded in `parseErrors` and rethrown.
    public mutating func absorb(_ reply: JunosReply, as kind: FactKind) throws(JunosParseError) {
        do {
            switch kind {
            case .software: software = try SoftwareInformation.parse(reply, rpc: kind.rpc)
            case .inventory: inventory = try ChassisInventory.parse(reply, rpc: kind.rpc)
            case .routingEngines: routingEngines = try RoutingEngineReport.parse(reply, rpc: kind.rpc)
            case .environment: environment = try EnvironmentReport.parse(reply, rpc: kind.rpc)
            case .chassisAlarms: chassisAlarms = try AlarmReport.parse(reply, rpc: kind.rpc)
            case .systemAlarms: systemAlarms = try AlarmReport.parse(reply, rpc: kind.rpc)
            case .storage: storage = try StorageReport.parse(reply, rpc: kind.rpc)
            case .coreDumps: coreDumps = try CoreDumpReport.parse(reply, rpc: kind.rpc)
            case .uptime: uptime = try UptimeReport.parse(reply, rpc: kind.rpc)
            case .virtualChassis: virtualChassis = try VirtualChassisStatus.parse(reply, rpc: kind.rpc)
            case .cluster: cluster = try ChassisClusterStatus.parse(reply, rpc: kind.rpc)
            case .configuration: configuration = try ConfigurationFacts.parse(reply, rpc: kind.rpc)
            case .interfaces: interfaces = try InterfaceReport.parse(reply, rpc: kind.rpc)
            }
            parseErrors[kind.rpc] = nil
        } catch {
            parseErrors[kind.rpc] = error.description
            throw error
        }
    }
}
