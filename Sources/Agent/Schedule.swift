import Foundation

/// When a group is collected: every fixed interval, or once a day at a random time inside a window
/// (`daily 02:00-04:00`, local time; a window may wrap past midnight), or only on request.
public enum Schedule: Sendable, Equatable, CustomStringConvertible {
    case interval(Duration)
    /// Minutes after midnight: start ..< end (end may be smaller than start: past midnight).
    case daily(start: Int, end: Int)
    case manual

    public struct ParseError: Error { public var message: String }

    /// `every 6h`, `every 90m`, `daily 02:00-04:00`, `daily 23:30-01:00`, `manual`.
    public init(parsing text: String) throws(ParseError) {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        let expected = "expected \"every DURATION\" (every 6h), \"daily HH:MM-HH:MM\" (daily 02:00-04:00) or \"manual\", found \"\(text)\""
        switch words.first {
        case "every" where words.count == 2:
            guard let d = parseDuration(String(words[1])), d >= .seconds(60) else {
                throw ParseError(message: "expected an interval of at least 1m such as 6h after \"every\", found \"\(words[1])\"")
            }
            self = .interval(d)
        case "daily" where words.count == 2:
            let parts = words[1].split(separator: "-")
            guard parts.count == 2, let start = Self.minutes(parts[0]), let end = Self.minutes(parts[1]), start != end else {
                throw ParseError(message: "expected a window HH:MM-HH:MM such as 02:00-04:00 after \"daily\", found \"\(words[1])\"")
            }
            self = .daily(start: start, end: end)
        case "manual" where words.count == 1, "never" where words.count == 1:
            self = .manual
        default:
            throw ParseError(message: expected)
        }
    }

    static func minutes(_ text: Substring) -> Int? {
        let hm = text.split(separator: ":")
        guard hm.count == 2, hm[1].count == 2, let h = Int(hm[0]), let m = Int(hm[1]), (0...23).contains(h), (0...59).contains(m) else { return nil }
        return h * 60 + m
    }

    public var description: String {
        switch self {
        case let .interval(d): return "every \(Int(d.components.seconds))s"
        case let .daily(start, end): return String(format: "daily %02d:%02d-%02d:%02d", start / 60, start % 60, end / 60, end % 60)
        case .manual: return "manual"
        }
    }

    /// The next run strictly after `now`, given the previous run (nil: never ran).
    /// `unit` is a random number in 0..<1 that places the run inside the jitter or the window.
    /// An interval schedule that never ran starts within the jitter of now.
    public func nextRun(after now: Date, lastRun: Date?, jitter: Duration, unit: Double, calendar: Calendar) -> Date? {
        let jitterSeconds = Double(jitter.components.seconds) + Double(jitter.components.attoseconds) / 1e18
        switch self {
        case .manual:
            return nil
        case let .interval(d):
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            guard let lastRun else { return now.addingTimeInterval(max(0.001, unit * jitterSeconds)) }
            let due = lastRun.addingTimeInterval(seconds + unit * jitterSeconds)
            return due > now ? due : now.addingTimeInterval(max(0.001, unit * min(jitterSeconds, seconds)))
        case let .daily(start, end):
            let length = (end - start + 1440) % 1440
            // Today's window, or tomorrow's if today's has started or a run already happened in it.
            let midnight = calendar.startOfDay(for: now)
            for dayOffset in -1...2 {
                guard let day = calendar.date(byAdding: .day, value: dayOffset, to: midnight),
                      let windowStart = calendar.date(byAdding: .minute, value: start, to: day) else { continue }
                let windowEnd = windowStart.addingTimeInterval(Double(length) * 60)
                if windowEnd <= now { continue }
                if let lastRun, lastRun >= windowStart { continue }
                let from = max(windowStart, now)
                return from.addingTimeInterval(max(0.001, unit * windowEnd.timeIntervalSince(from)))
            }
            return nil
        }
    }
}
