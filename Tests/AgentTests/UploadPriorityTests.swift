@testable import Agent
import Bundle
import Foundation
import Testing
import TestSupport

/// Event bundles jump the queue: through the real uploader, libcurl and nginx over TLS.
@Suite(.serialized) struct UploadPriorityTests {
    @Test func anEventBundleQueuedBehind100ScheduledOnesIsUploadedFirst() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let settings = UploadSettings(nginx: nginx)
        let bench = try UploadBench(dir: dir, upload: settings)
        let writer = BundleWriter(directory: URL(fileURLWithPath: bench.outbox), key: OutboxSample.key)
        let now = Date()
        var scheduled: [String] = []
        for i in 0 ..< 100 {
            let url = try writer.write(OutboxSample.contents(String(format: "sched%03d", i), trigger: .scheduled))
            // Older than the event bundle, each a second apart: by age alone they all go first.
            try FileManager.default.setAttributes([.modificationDate: now.addingTimeInterval(Double(i - 1000))], ofItemAtPath: url.path)
            scheduled.append(url.lastPathComponent)
        }
        let onDemand = try writer.write(OutboxSample.contents("asked", trigger: .onDemand)).lastPathComponent
        let event = try writer.write(OutboxSample.contents("incident", trigger: .event, event: OutboxSample.coreDump)).lastPathComponent

        let pass = await bench.pass()
        #expect(pass.failed == false)
        #expect(pass.outcomes.count == 102 && pass.outcomes.values.allSatisfy { $0 == .accepted(status: 201) })
        // nginx logs each PUT as it completes; the uploader sends one at a time.
        let order = nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT") }
            .map { String($0.split(separator: " ")[1].dropFirst("/care/bundles/".count)) }
        #expect(order.count == 102)
        #expect(order.first == event)
        #expect(order.dropFirst().first == onDemand)
        #expect(Array(order.dropFirst(2)) == scheduled)
        // What arrived is the signed bundle, event record included.
        let received = try BundleReader().read(contentsOf: URL(fileURLWithPath: nginx.received(event)))
        #expect(received.contents.trigger == .event && received.contents.event == OutboxSample.coreDump)
        #expect(FileOutbox(directory: bench.outbox).pending().isEmpty)
    }
}
