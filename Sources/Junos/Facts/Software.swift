import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct SoftwareInformation: JunosFact {
    public static let dataElements = ["software-information"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
