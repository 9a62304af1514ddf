/// Text a device or a bundle supplied (host names, member names, rpc-error messages, facts),
/// made safe to print on a terminal or on one log line. A device can put ESC sequences in its
/// host name (recolour, retitle or clear the terminal, fake a prompt) or newlines (forge an "OK"
/// line in `verify` output); every command that prints such text passes it through
/// ``escaped(_:)`` so what is shown is what was received, visibly.
public enum TerminalText {
    /// `text` with control characters written as escapes: `\n`, `\r`, `\t`, `\e` (ESC), other C0
    /// and C1 controls and DEL as `\xHH`, bidirectional overrides and line/paragraph separators
    /// as `\u{HHHH}`, and the backslash doubled so an escape in the input cannot pass for one
    /// added here. Everything else (any printable Unicode) is unchanged.
    public static func escaped(_ text: String) -> String {
        // Fast path: most text needs nothing.
        if !text.unicodeScalars.contains(where: needsEscape) { return text }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count + 16)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{1B}": out += "\\e"
            default:
                let hex = String(scalar.value, radix: 16)
                out += scalar.value <= 0xFF ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{\(hex)}"
            }
        }
        return out
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00 ... 0x1F, 0x7F ... 0x9F, 0x5C: return true
        // Bidirectional embeddings, overrides and isolates can make a line read other than it is;
        // U+2028/2029 end a line in some terminals and viewers.
        case 0x200E, 0x200F, 0x2028 ... 0x202E, 0x2066 ... 0x2069: return true
        default: return false
        }
    }
}
