import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct VirtualChassisStatus: JunosFact {
    public static let dataElements = ["virtual-chassis-information"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
