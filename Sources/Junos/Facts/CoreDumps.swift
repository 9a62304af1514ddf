import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct CoreDumpReport: JunosFact {
    public static let dataElements = ["directory-list"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
