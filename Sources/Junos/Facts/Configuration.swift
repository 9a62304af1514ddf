import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct ConfigurationFacts: JunosFact {
    public static let dataElements = ["configuration", "configuration-text"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
