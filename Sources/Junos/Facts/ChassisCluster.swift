import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct ChassisClusterStatus: JunosFact {
    public static let dataElements = ["chassis-cluster-status"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
