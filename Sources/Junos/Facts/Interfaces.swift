import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct InterfaceReport: JunosFact {
    public static let dataElements = ["interface-information"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
