@testable import Agent
import Foundation
import Testing

/// ``WallClockSteps``: a step is the wall clock moving apart from the boot-time clock.
@Suite struct WallClockStepsTests {
    let start = Date(timeIntervalSince1970: 1_780_000_000)
    let boot = ContinuousClock.now

    @Test func clocksMovingTogetherAreNoStep() {
        var steps = WallClockSteps(wall: start, boot: boot)
        #expect(steps.observe(wall: start.addingTimeInterval(3600), boot: boot.advanced(by: .seconds(3600))) == nil)
        // Under the threshold: NTP's small corrections.
        #expect(steps.observe(wall: start.addingTimeInterval(7230), boot: boot.advanced(by: .seconds(7200))) == nil)
    }

    @Test func aForwardStepIsMeasuredOnceAndDatesWhatCameBefore() throws {
        var steps = WallClockSteps(wall: start, boot: boot)
        let now = start.addingTimeInterval(100 + 86400)
        let observed = steps.observe(wall: now, boot: boot.advanced(by: .seconds(100)))
        let step = try #require(observed)
        #expect(abs(step.seconds - 86400) < 0.001)
        #expect(abs(step.datedBefore.timeIntervalSince(start.addingTimeInterval(100))) < 0.001)
        // Measured from the new offset: no second report of the same step.
        #expect(steps.observe(wall: now.addingTimeInterval(50), boot: boot.advanced(by: .seconds(150))) == nil)
    }

    @Test func aBackwardStepIsNotReportedButBecomesTheBaseline() throws {
        var steps = WallClockSteps(wall: start, boot: boot)
        #expect(steps.observe(wall: start.addingTimeInterval(10 - 86400), boot: boot.advanced(by: .seconds(10))) == nil)
        // Corrected forward again by the same day: that is a step from the wrong time.
        let observed = steps.observe(wall: start.addingTimeInterval(20), boot: boot.advanced(by: .seconds(20)))
        let step = try #require(observed)
        #expect(abs(step.seconds - 86400) < 0.001)
    }
}
