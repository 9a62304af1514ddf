import XML

/// Everything known about one device from one collection. Each field is nil when its RPC was not
/// collected or gave no data; `parseErrors` says why for the ones that failed.
///
/// A value type kept behind one reference, copied on write: inline it was 568 bytes, and every
/// copy of a device's result (several live in each collection's async frames, ~512 collections
/// at once) carried them (heaptrack, docs/performance.md). The JSON is the fields' own.
public struct DeviceFacts: Codable, Sendable, Equatable {
    /// The fields, stored once.
    private struct Fields: Codable, Sendable, Equatable {
        var software: SoftwareInformation?
        var inventory: ChassisInventory?
        var routingEngines: RoutingEngineReport?
        var environment: EnvironmentReport?
        var chassisAlarms: AlarmReport?
        var systemAlarms: AlarmReport?
        var storage: StorageReport?
        var coreDumps: CoreDumpReport?
        var uptime: UptimeReport?
        var virtualChassis: VirtualChassisStatus?
        var cluster: ChassisClusterStatus?
        var configuration: ConfigurationFacts?
        var interfaces: InterfaceReport?
        var parseErrors: [String: String] = [:]
    }

    /// Never mutated once shared: every setter copies it first unless it is the only owner.
    private final class Box: @unchecked Sendable {
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    private mutating func update(_ change: (inout Fields) -> Void) {
        if !isKnownUniquelyReferenced(&box) { box = Box(box.fields) }
        change(&box.fields)
    }

    public var software: SoftwareInformation? {
        get { box.fields.software }
        set { update { $0.software = newValue } }
    }
    public var inventory: ChassisInventory? {
        get { box.fields.inventory }
        set { update { $0.inventory = newValue } }
    }
    public var routingEngines: RoutingEngineReport? {
        get { box.fields.routingEngines }
        set { update { $0.routingEngines = newValue } }
    }
    public var environment: EnvironmentReport? {
        get { box.fields.environment }
        set { update { $0.environment = newValue } }
    }
    public var chassisAlarms: AlarmReport? {
        get { box.fields.chassisAlarms }
        set { update { $0.chassisAlarms = newValue } }
    }
    public var systemAlarms: AlarmReport? {
        get { box.fields.systemAlarms }
        set { update { $0.systemAlarms = newValue } }
    }
    public var storage: StorageReport? {
        get { box.fields.storage }
        set { update { $0.storage = newValue } }
    }
    public var coreDumps: CoreDumpReport? {
        get { box.fields.coreDumps }
        set { update { $0.coreDumps = newValue } }
    }
    public var uptime: UptimeReport? {
        get { box.fields.uptime }
        set { update { $0.uptime = newValue } }
    }
    public var virtualChassis: VirtualChassisStatus? {
        get { box.fields.virtualChassis }
        set { update { $0.virtualChassis = newValue } }
    }
    public var cluster: ChassisClusterStatus? {
        get { box.fields.cluster }
        set { update { $0.cluster = newValue } }
    }
    public var configuration: ConfigurationFacts? {
        get { box.fields.configuration }
        set { update { $0.configuration = newValue } }
    }
    public var interfaces: InterfaceReport? {
        get { box.fields.interfaces }
        set { update { $0.interfaces = newValue } }
    }
    /// RPC name → why its reply gave no facts.
    public var parseErrors: [String: String] {
        get { box.fields.parseErrors }
        set { update { $0.parseErrors = newValue } }
    }

    public init() { box = Box(Fields()) }

    public init(from decoder: any Decoder) throws { box = Box(try Fields(from: decoder)) }

    public func encode(to encoder: any Encoder) throws { try box.fields.encode(to: encoder) }

    public static func == (a: DeviceFacts, b: DeviceFacts) -> Bool { a.box === b.box || a.box.fields == b.box.fields }
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
