import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct StorageReport: JunosFact {
    public static let dataElements = ["system-storage-information"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
