import Junos
import NETCONF

/// One request in a device's collection and the fact it feeds, if any.
public struct CollectionStep: Sendable, Equatable {
    public var request: RPCRequest
    public var fact: FactKind?
    /// An `rpc-error` here means the device lacks the feature (not a failure).
    public var mayBeAbsent: Bool

    public init(request: RPCRequest, fact: FactKind? = nil, mayBeAbsent: Bool = false) {
        self.request = request
        self.fact = fact
        self.mayBeAbsent = mayBeAbsent
    }
}

/// What to collect from a device: the default fact set in a fixed order (software first, since
/// its model decides whether virtual-chassis and cluster status apply), then the group's extras.
public enum CollectionPlan {
    /// The facts collected by default, in order. Interfaces are left out: large, and not health.
    public static let defaultFacts: [FactKind] = [
        .software, .inventory, .routingEngines, .environment, .chassisAlarms, .systemAlarms,
        .storage, .coreDumps, .uptime, .virtualChassis, .cluster, .configuration,
    ]

    /// The steps for a group.
    public static func steps(for group: GroupSettings) -> [CollectionStep] {
        var steps: [CollectionStep] = []
        for kind in defaultFacts where !group.skippedFacts.contains(kind) {
            let request: RPCRequest = kind == .configuration ? .junosConfiguration() : .junos(kind.rpc)
            steps.append(CollectionStep(request: request, fact: kind, mayBeAbsent: kind == .virtualChassis || kind == .cluster))
        }
        for request in group.extraRequests {
            steps.append(CollectionStep(request: request, fact: FactKind(rpc: request.name)))
        }
        return steps
    }

    /// Whether a device of `model` (from get-software-information) can have `kind`; nil = unknown, ask.
    /// Virtual chassis: EX, QFX, MX and OCX families. Chassis cluster: SRX and vSRX (once "firefly-perimeter").
    public static func applies(_ kind: FactKind, toModel model: String?) -> Bool? {
        guard let model = model?.lowercased(), !model.isEmpty else { return nil }
        switch kind {
        case .virtualChassis:
            return ["ex", "qfx", "mx", "ocx"].contains { model.hasPrefix($0) }
        case .cluster:
            return model.hasPrefix("srx") || model.hasPrefix("vsrx") || model.hasPrefix("firefly")
        default:
            return true
        }
    }
}
