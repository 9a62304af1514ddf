import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct AlarmReport: JunosFact {
    public static let dataElements = ["alarm-information"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
