import Foundation

/// Notices the wall clock being stepped (set by hand, or by NTP after a boot with a wrong or
/// missing real-time clock) by comparing it with the boot-time clock, which a step does not move
/// (`ContinuousClock`, Linux's CLOCK_BOOTTIME: time in suspend counts on both).
///
/// Why it matters: the outbox dates a bundle by its file's modification time. Bundles written
/// while the clock was a year behind look a year old once NTP corrects it, and `outbox-max-age`
/// would delete them unsent: the evidence of a device that rebooted with the VM, say.
struct WallClockSteps {
    /// Smaller steps are left alone: a slewing NTP client never steps, and a minute is nothing
    /// against an age limit counted in days.
    static let threshold: TimeInterval = 60

    /// A forward step: the wall clock moved `seconds` more than the boot-time clock did, found
    /// when the wall clock read `observed`. What was dated before the step is dated `seconds`
    /// too early: everything dated before `observed - seconds`.
    struct Step: Equatable {
        var seconds: TimeInterval
        var observed: Date
        /// Dates before this were written before the step.
        var datedBefore: Date { observed.addingTimeInterval(-seconds) }
    }

    private var wallMinusBoot: TimeInterval
    private let origin: ContinuousClock.Instant

    init(wall: Date = Date(), boot: ContinuousClock.Instant = .now) {
        origin = boot
        wallMinusBoot = wall.timeIntervalSince1970
    }

    /// The step since the last observation, if the wall clock went forward by more than
    /// ``threshold``. A backward step is only noted (the next forward step is measured from it):
    /// it makes bundles look younger, which costs nothing but a later eviction.
    mutating func observe(wall: Date = Date(), boot: ContinuousClock.Instant = .now) -> Step? {
        let elapsed = boot - origin
        let offset = wall.timeIntervalSince1970 - (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let moved = offset - wallMinusBoot
        guard abs(moved) > Self.threshold else { return nil }
        wallMinusBoot = offset
        return moved > 0 ? Step(seconds: moved, observed: wall) : nil
    }
}
