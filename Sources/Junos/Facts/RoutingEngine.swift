import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct RoutingEngineReport: JunosFact {
    public static let dataElements = ["route-engine-information"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
