import XML

/// Placeholder: filled in by the parser work for issue 3.
public struct ChassisInventory: JunosFact {
    public static let dataElements = ["chassis-inventory"]
    public static func parse(_ reply: JunosReply) -> Self { Self() }
}
