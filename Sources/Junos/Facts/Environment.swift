import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct EnvironmentReport: JunosFact {
    public static let dataElements = ["environment-information"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
