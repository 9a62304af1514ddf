import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct UptimeReport: JunosFact {
    public static let dataElements = ["system-uptime-information"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
