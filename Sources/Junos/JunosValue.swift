import XML

/// Numbers out of Junos text: values with units, padding and junk. Malformed text gives nil.
public enum JunosValue {
    /// The leading integer of a value: `"1024 MB"` → 1024, `" 15 percent"` → 15, `"-3"` → -3.
    /// Text that does not start with a number (`" 6r75"` counts as malformed) gives nil.
    public static func integer(_ text: String?) -> Int? {
        guard let token = leadingToken(text) else { return nil }
        return Int(token)
    }

    /// The leading decimal number: `"0.05"`, `"1.2G"` is not a plain number (nil).
    public static func double(_ text: String?) -> Double? {
        guard let token = leadingToken(text) else { return nil }
        return Double(token)
    }

    /// Celsius from `"45 degrees C / 113 degrees F"`, or from a `celsius` attribute.
    public static func celsius(_ element: XMLElement?) -> Int? {
        guard let element else { return nil }
        if let attr = element.attribute("celsius"), let value = Int(attr.trimmed) { return value }
        return integer(element.value)
    }

    /// Seconds from a `junos:seconds` (or unprefixed `seconds`) attribute.
    public static func seconds(_ element: XMLElement?) -> Int? {
        guard let element, let attr = element.attribute("seconds") else { return nil }
        return Int(attr.trimmed)
    }

    /// Bytes from a size with a unit: `"4058 MB"`, `"(4096 MB installed)"`, `"1.2G"`, `"512K"`,
    /// `"18G"`, `"2048"` (plain numbers are taken in `plainUnit`, bytes by default).
    public static func bytes(_ text: String?, plainUnit: Int64 = 1) -> Int64? {
        guard var s = text?.trimmed else { return nil }
        s = String(s.drop(while: { $0 == "(" }))
        var number = ""
        var rest = Substring(s)
        while let c = rest.first, c.isNumber || c == "." { number.append(c); rest = rest.dropFirst() }
        guard let value = Double(number) else { return nil }
        let unit = rest.drop(while: { $0 == " " }).prefix(while: { $0.isLetter }).uppercased()
        let multiplier: Int64
        switch unit {
        case "": multiplier = plainUnit
        case "B", "BYTES": multiplier = 1
        case "K", "KB", "KIB": multiplier = 1 << 10
        case "M", "MB", "MIB": multiplier = 1 << 20
        case "G", "GB", "GIB": multiplier = 1 << 30
        case "T", "TB", "TIB": multiplier = 1 << 40
        default: return nil
        }
        // A count beyond Int64 (junk such as `99999999999T`) is malformed, not a crash.
        let product = (value * Double(multiplier)).rounded()
        guard product.isFinite, product < 9.2e18 else { return nil }
        return Int64(product)
    }

    private static func leadingToken(_ text: String?) -> String? {
        guard let s = text?.trimmed.drop(while: { $0 == "(" }), !s.isEmpty else { return nil }
        let token = s.prefix(while: { !$0.isWhitespace && $0 != "%" && $0 != ")" })
        return token.isEmpty ? nil : String(token)
    }
}

extension String {
    /// Surrounding spaces, tabs and newlines removed.
    public var trimmed: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// Reads the numeric children of one element and keeps the text of those that are present but
/// not numbers (`<memory-dram-size> 6r75</memory-dram-size>`), so that a malformed value shows up
/// in the facts as text while its number is nil, instead of vanishing.
struct NumericFields {
    let element: XMLElement
    /// Child name → text, for values present but unreadable as numbers.
    private(set) var unreadable: [String: String] = [:]

    init(_ element: XMLElement) { self.element = element }

    /// ``unreadable``, or nil when every value read.
    var unreadableOrNil: [String: String]? { unreadable.isEmpty ? nil : unreadable }

    mutating func integer(_ name: String) -> Int? {
        read(name) { JunosValue.integer($0) }
    }

    mutating func double(_ name: String) -> Double? {
        read(name) { JunosValue.double($0) }
    }

    mutating func bytes(_ name: String, plainUnit: Int64 = 1) -> Int64? {
        read(name) { JunosValue.bytes($0, plainUnit: plainUnit) }
    }

    mutating func celsius(_ name: String) -> Int? {
        guard let child = element.child(name) else { return nil }
        if let value = JunosValue.celsius(child) { return value }
        note(name, child.value)
        return nil
    }

    private mutating func read<T>(_ name: String, _ parse: (String) -> T?) -> T? {
        guard let text = element.value(name) else { return nil }
        if let value = parse(text) { return value }
        note(name, text)
        return nil
    }

    private mutating func note(_ name: String, _ text: String?) {
        if let text, !text.isEmpty { unreadable[name] = text }
    }
}
