@testable import Agent
import Bundle
import Foundation
import Junos
import Logging
import Testing
import TestSupport

/// An outbox under test, with what the suite needs to date its bundles.
struct OutboxUnderTest {
    let outbox: any Outbox
    /// Makes a pending bundle look added at that time.
    let backdate: (String, Date) throws -> Void
    let cleanup: () -> Void
}

/// The implementations that must behave alike.
enum OutboxKind: String, CaseIterable, CustomTestStringConvertible {
    case file, memory

    var testDescription: String { rawValue }

    func make() throws -> OutboxUnderTest {
        switch self {
        case .file:
            let dir = try TestProfiles.temporaryDirectory()
            let path = dir.appendingPathComponent("outbox").path
            let outbox = FileOutbox(directory: path, key: OutboxSample.key)
            return OutboxUnderTest(outbox: outbox, backdate: { name, date in
                try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: outbox.path(of: name))
            }, cleanup: { try? FileManager.default.removeItem(at: dir) })
        case .memory:
            let outbox = InMemoryOutbox(key: OutboxSample.key)
            return OutboxUnderTest(outbox: outbox, backdate: { outbox.backdate($0, to: $1) }, cleanup: {})
        }
    }
}

/// Small, real bundle contents (signed and encoded by the real writer).
enum OutboxSample {
    static let key = try! AgentKey(rawRepresentation: [UInt8](repeating: 5, count: 32))

    static func contents(_ device: String, trigger: CollectionTrigger, event: TriggerEvent? = nil,
                         started: Date = Date(timeIntervalSince1970: 1_780_000_000), padding: Int = 0) -> BundleContents {
        // Incompressible padding, so that a test can make bundles of a known order of size.
        var filler = [UInt8](repeating: 0, count: padding)
        for i in filler.indices { filler[i] = UInt8.random(in: 0 ... 255) }
        return BundleContents(
            agent: AgentIdentity(id: "agent-test", version: "0.1.0"),
            device: DeviceIdentity(name: device, address: "192.0.2.1:830", hostname: device, chassisSerial: "SN-\(device)", model: "mx480"),
            trigger: trigger, started: started, finished: started.addingTimeInterval(2),
            outcomes: [RPCOutcome(rpc: "get-system-uptime-information", status: .ok, durationSeconds: 0.1)],
            rawReplies: [RawReply(rpc: "get-system-uptime-information", bytes: Array("<system-uptime-information/>".utf8))],
            facts: DeviceFacts(), log: padding > 0 ? filler.map { String(format: "%02x", $0) }.joined() : "collected\n",
            event: event)
    }

    static let coreDump = TriggerEvent(kind: "core-dump", source: "poll", time: Date(timeIntervalSince1970: 1_780_000_100),
                                          evidence: "new core file /var/tmp/rpd.core.0.gz")
}

/// One suite, run against every ``Outbox`` implementation: what the uploader, the quota, metrics
/// and `status` rely on.
@Suite struct OutboxConformanceTests {
    @Test(arguments: OutboxKind.allCases)
    func addedBundlesArePendingWithTheirTriggerAndEvent(kind: OutboxKind) throws {
        let subject = try kind.make()
        defer { subject.cleanup() }
        let outbox = subject.outbox
        #expect(outbox.pending().isEmpty)
        let event = try outbox.add(OutboxSample.contents("r1", trigger: .event, event: OutboxSample.coreDump))
        // The same device and start time twice: two bundles, never one overwriting the other.
        let first = try outbox.add(OutboxSample.contents("r2", trigger: .scheduled))
        let second = try outbox.add(OutboxSample.contents("r2", trigger: .scheduled))
        #expect(first.name != second.name)
        #expect(event.trigger == .event && event.event == OutboxSample.coreDump)
        #expect(event.size > 0)
        let pending = outbox.pending()
        #expect(Set(pending.map(\.name)) == [event.name, first.name, second.name])
        #expect(pending.first { $0.name == event.name }?.event == OutboxSample.coreDump)
        #expect(pending.first { $0.name == first.name }?.event == nil)
        #expect(outbox.depth == 3)
    }

    @Test(arguments: OutboxKind.allCases)
    func pendingIsEventThenOnDemandThenScheduledOldestFirst(kind: OutboxKind) throws {
        let subject = try kind.make()
        defer { subject.cleanup() }
        let outbox = subject.outbox
        let now = Date()
        let oldScheduled = try outbox.add(OutboxSample.contents("s-old", trigger: .scheduled))
        let newScheduled = try outbox.add(OutboxSample.contents("s-new", trigger: .scheduled))
        let onDemand = try outbox.add(OutboxSample.contents("d", trigger: .onDemand))
        let newEvent = try outbox.add(OutboxSample.contents("e-new", trigger: .event, event: OutboxSample.coreDump))
        let oldEvent = try outbox.add(OutboxSample.contents("e-old", trigger: .event, event: OutboxSample.coreDump))
        try subject.backdate(oldScheduled.name, now.addingTimeInterval(-5000))
        try subject.backdate(newScheduled.name, now.addingTimeInterval(-4000))
        try subject.backdate(onDemand.name, now.addingTimeInterval(-3000))
        try subject.backdate(oldEvent.name, now.addingTimeInterval(-200))
        try subject.backdate(newEvent.name, now.addingTimeInterval(-100))
        #expect(outbox.pending().map(\.name) == [oldEvent.name, newEvent.name, onDemand.name, oldScheduled.name, newScheduled.name])
    }

    @Test(arguments: OutboxKind.allCases)
    func acceptRemovesAndRejectSetsAside(kind: OutboxKind) throws {
        let subject = try kind.make()
        defer { subject.cleanup() }
        let outbox = subject.outbox
        let a = try outbox.add(OutboxSample.contents("a", trigger: .scheduled))
        let b = try outbox.add(OutboxSample.contents("b", trigger: .onDemand))
        let c = try outbox.add(OutboxSample.contents("c", trigger: .event))
        try outbox.accept(a.name)
        try outbox.reject(b.name)
        #expect(outbox.pending().map(\.name) == [c.name])
        #expect(outbox.rejectedCount() == 1)
        // Settling twice, or a bundle never added, is an error naming it, not a silent success.
        #expect(throws: OutboxError.self) { try outbox.accept(a.name) }
        #expect(throws: OutboxError.self) { try outbox.reject("nowhere-SN0-20260101-000000.tar.gz") }
        do {
            try outbox.evict(b.name)
            Issue.record("evicting a rejected bundle succeeded")
        } catch {
            #expect(error.description.contains(b.name), "\(error)")
        }
        try outbox.evict(c.name)
        #expect(outbox.pending().isEmpty && outbox.rejectedCount() == 1)
    }

    @Test(arguments: OutboxKind.allCases)
    func sizeQuotaEvictsOldestScheduledThenOnDemandAndEventsLast(kind: OutboxKind) throws {
        let subject = try kind.make()
        defer { subject.cleanup() }
        let outbox = subject.outbox
        let now = Date()
        // Ages chosen so that age order alone would evict the event bundle first.
        let plan: [(String, CollectionTrigger, TimeInterval)] = [
            ("event-oldest", .event, 9000), ("demand-old", .onDemand, 8000), ("sched-mid", .scheduled, 5000),
            ("sched-old", .scheduled, 6000), ("demand-new", .onDemand, 1000), ("sched-new", .scheduled, 100),
        ]
        var names: [String: String] = [:]
        for (device, trigger, age) in plan {
            let entry = try outbox.add(OutboxSample.contents(device, trigger: trigger, event: trigger == .event ? OutboxSample.coreDump : nil,
                                                             padding: 20_000))
            try subject.backdate(entry.name, now.addingTimeInterval(-age))
            names[device] = entry.name
        }
        let sizes = Dictionary(uniqueKeysWithValues: outbox.pending().map { ($0.name, $0.size) })
        // Room for exactly three bundles: the three scheduled ones must go, oldest first.
        let three = outbox.pending().filter { [names["event-oldest"], names["demand-old"], names["demand-new"]].contains($0.name) }
            .reduce(Int64(0)) { $0 + $1.size }
        let dropped = outbox.enforceQuota(OutboxQuota(maxBytes: three, maxAge: nil), now: now)
        #expect(dropped.map(\.entry.name) == [names["sched-old"]!, names["sched-mid"]!, names["sched-new"]!])
        #expect(dropped.allSatisfy { $0.reason == .size })
        #expect(Set(outbox.pending().map(\.name)) == [names["event-oldest"]!, names["demand-old"]!, names["demand-new"]!])

        // One bundle's room: on-demand goes (oldest first) before the event bundle.
        let again = outbox.enforceQuota(OutboxQuota(maxBytes: sizes[names["event-oldest"]!]!, maxAge: nil), now: now)
        #expect(again.map(\.entry.name) == [names["demand-old"]!, names["demand-new"]!])
        #expect(outbox.pending().map(\.name) == [names["event-oldest"]!])

        // Under the limit: nothing goes.
        #expect(outbox.enforceQuota(OutboxQuota(maxBytes: 1 << 30, maxAge: nil), now: now).isEmpty)
    }

    /// Rejected bundles are kept for a person to look at, but within the same budget: over the
    /// size they go before any pending bundle (oldest first), and older than the maximum age they
    /// go like pending ones (a server refusing every bundle filled the disk past `outbox-max`).
    @Test(arguments: OutboxKind.allCases)
    func rejectedBundlesCountTowardsTheQuotaAndGoFirst(kind: OutboxKind) throws {
        let subject = try kind.make()
        defer { subject.cleanup() }
        let outbox = subject.outbox
        let now = Date()
        var entries: [OutboxEntry] = []
        for i in 0 ..< 4 {
            let entry = try outbox.add(OutboxSample.contents("d\(i)", trigger: .scheduled, padding: 10_000))
            try subject.backdate(entry.name, now.addingTimeInterval(TimeInterval(-4000 + 1000 * i)))
            entries.append(entry)
        }
        try outbox.reject(entries[0].name)
        try outbox.reject(entries[1].name)
        #expect(Set(outbox.setAside().map(\.name)) == [entries[0].name, entries[1].name])
        #expect(outbox.setAside().allSatisfy { $0.folder == .rejected })
        // Room for the two pending and one rejected: the older rejected one goes, no pending one.
        let pass = outbox.enforceQuotaCounting(OutboxQuota(maxBytes: entries[1].size + entries[2].size + entries[3].size, maxAge: nil), now: now)
        #expect(pass.evicted.isEmpty)
        #expect(pass.discarded.map(\.bundle.name) == [entries[0].name] && pass.discarded.map(\.reason) == [.size])
        #expect(outbox.setAside().map(\.name) == [entries[1].name] && outbox.rejectedCount() == 1)
        #expect(Set(outbox.pending().map(\.name)) == [entries[2].name, entries[3].name])
        #expect(pass.remaining == outbox.totals)
        // 1,000 s later, a maximum age of 3,500 s: the rejected bundle (4,000 s) goes, the pending
        // ones (3,000 and 2,000 s) stay.
        let aged = outbox.enforceQuotaCounting(OutboxQuota(maxBytes: nil, maxAge: 3500), now: now.addingTimeInterval(1000))
        #expect(aged.discarded.map(\.bundle.name) == [entries[1].name] && aged.discarded.map(\.reason) == [.age])
        #expect(aged.evicted.isEmpty && outbox.rejectedCount() == 0 && outbox.pending().count == 2)
    }

    /// After a forward clock step, what was written before it is dated later by the step (pending
    /// and kept alike, the relative order kept); what came after is left alone, and the quota
    /// then judges the real ages.
    @Test(arguments: OutboxKind.allCases)
    func redatingShiftsOnlyWhatCameBeforeTheStep(kind: OutboxKind) throws {
        let subject = try kind.make()
        defer { subject.cleanup() }
        let outbox = subject.outbox
        let now = Date()
        let year: TimeInterval = 365 * 86400
        let before = try outbox.add(OutboxSample.contents("before", trigger: .scheduled))
        let beforeEvent = try outbox.add(OutboxSample.contents("before-event", trigger: .event, event: OutboxSample.coreDump))
        let refused = try outbox.add(OutboxSample.contents("refused", trigger: .scheduled))
        let after = try outbox.add(OutboxSample.contents("after", trigger: .scheduled))
        try subject.backdate(before.name, now.addingTimeInterval(-year - 3000))
        try subject.backdate(beforeEvent.name, now.addingTimeInterval(-year - 2000))
        try subject.backdate(refused.name, now.addingTimeInterval(-year - 1000))
        try subject.backdate(after.name, now.addingTimeInterval(-500))
        try outbox.reject(refused.name)
        // Listed once with the old dates: a cache must not keep them.
        #expect(outbox.pending().count == 3 && outbox.setAside().count == 1)
        #expect(outbox.redate(before: now.addingTimeInterval(-year), by: year) == 3)
        let pending = Dictionary(uniqueKeysWithValues: outbox.pending().map { ($0.name, $0.added) })
        #expect(abs(pending[before.name]!.timeIntervalSince(now) + 3000) < 1)
        #expect(abs(pending[beforeEvent.name]!.timeIntervalSince(now) + 2000) < 1)
        #expect(abs(pending[after.name]!.timeIntervalSince(now) + 500) < 1)
        #expect(abs(outbox.setAside()[0].added.timeIntervalSince(now) + 1000) < 1)
        // A 30-day age limit keeps them all now.
        let pass = outbox.enforceQuotaCounting(OutboxQuota(maxBytes: nil, maxAge: 30 * 86400), now: now)
        #expect(pass.evicted.isEmpty && pass.discarded.isEmpty)
        #expect(outbox.pending().count == 3 && outbox.rejectedCount() == 1)
    }

    /// What stays after a quota pass is counted from the pass's own scan (for the metrics written
    /// after a collection): it must be what a new scan finds, when bundles go and when none do.
    @Test(arguments: OutboxKind.allCases)
    func aQuotaPassCountsWhatStays(kind: OutboxKind) throws {
        let subject = try kind.make()
        defer { subject.cleanup() }
        let outbox = subject.outbox
        let now = Date()
        var sizes: [Int64] = []
        for (index, padding) in [30_000, 10_000, 20_000, 5_000].enumerated() {
            let entry = try outbox.add(OutboxSample.contents("d\(index)", trigger: .scheduled, padding: padding))
            try subject.backdate(entry.name, now.addingTimeInterval(TimeInterval(-1000 + index)))
            sizes.append(entry.size)
        }
        let before = outbox.totals
        #expect(before.bundles == 4 && before.bytes == sizes.reduce(0, +))
        // The oldest waiting bundle's date, for the backlog-age gauge (file times are whole seconds or finer).
        #expect(before.oldest.map { abs($0.timeIntervalSince(now.addingTimeInterval(-1000))) < 1 } == true, "\(before)")
        // Room for the two newest: the two oldest go.
        let pass = outbox.enforceQuotaCounting(OutboxQuota(maxBytes: sizes[2] + sizes[3], maxAge: nil), now: now)
        #expect(pass.evicted.count == 2)
        #expect(pass.remaining.bundles == 2 && pass.remaining.bytes == sizes[2] + sizes[3])
        #expect(pass.remaining.oldest.map { abs($0.timeIntervalSince(now.addingTimeInterval(-998))) < 1 } == true, "\(pass.remaining)")
        #expect(pass.remaining == outbox.totals)
        let none = outbox.enforceQuotaCounting(OutboxQuota(maxBytes: 1 << 30, maxAge: nil), now: now)
        #expect(none.evicted.isEmpty && none.remaining == outbox.totals)
    }

    @Test(arguments: OutboxKind.allCases)
    func ageQuotaDropsStaleBundlesOfEveryKind(kind: OutboxKind) throws {
        let subject = try kind.make()
        defer { subject.cleanup() }
        let outbox = subject.outbox
        let now = Date()
        let staleEvent = try outbox.add(OutboxSample.contents("e", trigger: .event, event: OutboxSample.coreDump))
        let staleScheduled = try outbox.add(OutboxSample.contents("s", trigger: .scheduled))
        let fresh = try outbox.add(OutboxSample.contents("f", trigger: .scheduled))
        try subject.backdate(staleEvent.name, now.addingTimeInterval(-31 * 86400))
        try subject.backdate(staleScheduled.name, now.addingTimeInterval(-40 * 86400))
        try subject.backdate(fresh.name, now.addingTimeInterval(-29 * 86400))
        let dropped = outbox.enforceQuota(OutboxQuota(), now: now)
        #expect(Set(dropped.map(\.entry.name)) == [staleEvent.name, staleScheduled.name])
        #expect(dropped.allSatisfy { $0.reason == .age })
        #expect(outbox.pending().map(\.name) == [fresh.name])
    }
}

/// What only the directory implementation has to do: see bundles other processes wrote, ignore
/// what is not a finished bundle, keep old bundles readable.
@Suite struct FileOutboxTests {
    @Test func bundlesWrittenBehindItsBackAreSeenWithTheirTrigger() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("outbox").path
        // `collect now --standalone` writes with its own writer into the same directory.
        let writer = BundleWriter(directory: URL(fileURLWithPath: path), key: OutboxSample.key)
        let scheduled = try writer.write(OutboxSample.contents("s", trigger: .scheduled)).lastPathComponent
        let event = try writer.write(OutboxSample.contents("e", trigger: .event, event: OutboxSample.coreDump)).lastPathComponent
        // Not bundles: a write in progress, a stray file; and a damaged "bundle" is still sent (as scheduled).
        try Data("partial".utf8).write(to: URL(fileURLWithPath: path + "/.x.tar.gz.1-2.tmp"))
        try Data("notes".utf8).write(to: URL(fileURLWithPath: path + "/README"))
        try Data("not gzip at all".utf8).write(to: URL(fileURLWithPath: path + "/broken-SN-20260101-000000.tar.gz"))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-60)], ofItemAtPath: path + "/" + scheduled)
        let outbox = FileOutbox(directory: path)
        let pending = outbox.pending()
        #expect(pending.map(\.name) == [event, scheduled, "broken-SN-20260101-000000.tar.gz"])
        #expect(pending.map(\.trigger) == [.event, .scheduled, .scheduled])
        #expect(pending[0].event == OutboxSample.coreDump)
        // Opened without the key: it can settle but not sign.
        #expect(throws: OutboxError.self) { try outbox.add(OutboxSample.contents("x", trigger: .scheduled)) }
    }

    @Test func aBundleReplacedUnderItsNameIsReadAgainAndOnlyFilesCount() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("outbox").path
        let writer = BundleWriter(directory: URL(fileURLWithPath: path), key: OutboxSample.key)
        let outbox = FileOutbox(directory: path)
        let scheduled = try writer.write(OutboxSample.contents("s", trigger: .scheduled)).lastPathComponent
        #expect(outbox.pending().map(\.trigger) == [.scheduled])
        #expect(outbox.pending().map(\.trigger) == [.scheduled]) // remembered by its listed inode
        // Another process writes a different bundle aside and renames it over the same name (a
        // new inode): it is read again, its trigger and size with it.
        let other = try BundleWriter(directory: dir, key: OutboxSample.key)
            .write(OutboxSample.contents("s", trigger: .event, event: OutboxSample.coreDump, padding: 4000))
        try #require(rename(other.path, path + "/" + scheduled) == 0)
        let replaced = outbox.pending()
        #expect(replaced.map(\.name) == [scheduled] && replaced.map(\.trigger) == [.event])
        #expect(replaced.first?.size == Int64((try FileManager.default.attributesOfItem(atPath: path + "/" + scheduled)[.size] as? Int) ?? -1))
        // Named like bundles but not regular files: a link and a directory are not bundles.
        try FileManager.default.createSymbolicLink(atPath: path + "/link-SN-20260101-000000.tar.gz", withDestinationPath: path + "/" + scheduled)
        try FileManager.default.createDirectory(atPath: path + "/dir-SN-20260101-000000.tar.gz", withIntermediateDirectories: false)
        #expect(outbox.pending().map(\.name) == [scheduled])
    }

    /// With `keep-sent`, the copies in `sent/` (the server has them) go before rejected bundles,
    /// however old; each removal is counted by folder and reason in the metrics.
    @Test func sentCopiesGoBeforeRejectedOnes() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outbox = FileOutbox(directory: dir.appendingPathComponent("outbox").path, key: OutboxSample.key, keepsSent: true)
        let now = Date()
        let refused = try outbox.add(OutboxSample.contents("refused", trigger: .event, event: OutboxSample.coreDump, padding: 10_000))
        let sent = try outbox.add(OutboxSample.contents("sent", trigger: .scheduled, padding: 10_000))
        let waiting = try outbox.add(OutboxSample.contents("waiting", trigger: .scheduled, padding: 10_000))
        for (entry, age) in [(refused, 3000.0), (sent, 2000), (waiting, 1000)] {
            try FileManager.default.setAttributes([.modificationDate: now.addingTimeInterval(-age)], ofItemAtPath: outbox.path(of: entry.name))
        }
        try outbox.reject(refused.name)
        try outbox.accept(sent.name)
        #expect(outbox.setAside().sorted { $0.name < $1.name }.map(\.folder) == [.rejected, .sent])
        let pass = outbox.enforceQuotaCounting(OutboxQuota(maxBytes: refused.size + waiting.size, maxAge: nil), now: now)
        #expect(pass.discarded.map(\.bundle.name) == [sent.name] && pass.evicted.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: outbox.directory + "/sent/" + sent.name))
        #expect(FileManager.default.fileExists(atPath: outbox.directory + "/rejected/" + refused.name))
        var metrics = AgentMetrics()
        metrics.record(pass)
        let text = metrics.render(outboxDepth: 1)
        #expect(text.contains("care_agent_outbox_kept_removed_total{folder=\"sent\",reason=\"size\"} 1\n"))
        #expect(text.contains("care_agent_outbox_kept_removed_total{folder=\"rejected\",reason=\"size\"} 0\n"))
    }

    /// A collector's sink writes through an outbox of its own that never lists: it must not keep
    /// an entry per bundle written (it did, for the agent's life), and the outbox that lists
    /// remembers only what is still there.
    @Test func writingRemembersNothingAndListingOnlyWhatIsThere() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("outbox").path
        let sink = FileOutbox(directory: path, key: OutboxSample.key)
        let written = try (0 ..< 20).map { try sink.add(OutboxSample.contents("d\($0)", trigger: $0 == 3 ? .event : .scheduled,
                                                                            event: $0 == 3 ? OutboxSample.coreDump : nil)) }
        #expect(sink.rememberedCount == 0)
        let runtime = FileOutbox(directory: path)
        #expect(runtime.pending().count == 20 && runtime.rememberedCount == 20)
        #expect(runtime.pending().filter { $0.trigger == .event }.map(\.name) == [written[3].name])
        for entry in written.prefix(15) { try runtime.accept(entry.name) }
        #expect(runtime.pending().count == 5 && runtime.rememberedCount == 5)
        // Gone behind its back (another process settled them): forgotten at the next listing.
        for entry in written.suffix(5) { try FileManager.default.removeItem(atPath: runtime.path(of: entry.name)) }
        #expect(runtime.pending().isEmpty && runtime.rememberedCount == 0)
    }

    @Test func aBundleFromBeforeEventsExistedReadsAsItsTrigger() throws {
        let fixture = Fixtures.url("bundles/baku-JN1249018AFB-20251125-020000.tar.gz").path
        let manifest = try BundleReader.unverifiedManifest(atPath: fixture)
        #expect(manifest.collection.trigger == .scheduled)
        #expect(manifest.collection.event == nil)
        #expect(manifest.device.hostname == "baku")
    }

    @Test func aManifestLargerThanTheFirstReadIsStillRead() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 1,000 outcomes with incompressible messages: the compressed manifest alone is over 64 KiB.
        var contents = OutboxSample.contents("big", trigger: .event, event: OutboxSample.coreDump)
        contents.outcomes = (0 ..< 1000).map { i in
            RPCOutcome(rpc: "rpc-\(i)", status: .rpcError, message: (0 ..< 100).map { _ in String(format: "%02x", UInt8.random(in: 0 ... 255)) }.joined(),
                       durationSeconds: 0.1)
        }
        let url = try BundleWriter(directory: dir, key: OutboxSample.key).write(contents)
        let manifest = try BundleReader.unverifiedManifest(atPath: url.path)
        #expect(manifest.outcomes.count == 1000 && manifest.collection.event == OutboxSample.coreDump)
        // A bundle cut short inside its manifest is an error, not a wrong answer.
        let bytes = try Data(contentsOf: url)
        let cut = dir.appendingPathComponent("cut-SN-20260101-000000.tar.gz")
        try bytes.prefix(70_000).write(to: cut)
        #expect(throws: BundleError.self) { try BundleReader.unverifiedManifest(atPath: cut.path) }
        #expect(FileOutbox(directory: dir.path).pending().first { $0.name == cut.lastPathComponent }?.trigger == .scheduled)
    }

    @Test func keepSentMovesAcceptedBundlesToSent() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("outbox").path
        let outbox = FileOutbox(directory: path, key: OutboxSample.key, keepsSent: true)
        let entry = try outbox.add(OutboxSample.contents("k", trigger: .onDemand))
        try outbox.accept(entry.name)
        #expect(FileManager.default.fileExists(atPath: path + "/sent/" + entry.name))
        #expect(outbox.pending().isEmpty)
        // A later bundle under the same name (same device, same second, or a clock stepped
        // back) is kept beside it, never over it; rejected/ the same.
        let first = try Data(contentsOf: URL(fileURLWithPath: path + "/sent/" + entry.name))
        try Data("another bundle".utf8).write(to: URL(fileURLWithPath: path + "/" + entry.name))
        try outbox.accept(entry.name)
        let stem = String(entry.name.dropLast(".tar.gz".count))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/sent/" + entry.name)) == first)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/sent/" + stem + "-2.tar.gz")) == Data("another bundle".utf8))
        for round in 1 ... 2 {
            try Data("rejected \(round)".utf8).write(to: URL(fileURLWithPath: path + "/" + entry.name))
            try outbox.reject(entry.name)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/rejected/" + entry.name)) == Data("rejected 1".utf8))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/rejected/" + stem + "-2.tar.gz")) == Data("rejected 2".utf8))
        #expect(outbox.rejectedCount() == 2 && !FileManager.default.fileExists(atPath: path + "/" + entry.name))
    }
}

/// A collection made for an incident becomes an `event` bundle carrying the incident.
@Suite struct EventBundleTests {
    func result(_ trigger: CollectionCause, event: TriggerEvent?) -> DeviceCollection {
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        var result = DeviceResult(device: Device(name: "r1", host: "192.0.2.1"), host: "192.0.2.1", port: 830, trigger: trigger,
                                  started: start, finished: start.addingTimeInterval(5), status: .ok,
                                  failureKind: nil, reason: nil, attempts: 1, rpcs: [], facts: DeviceFacts(), log: "")
        result.event = event
        return DeviceCollection(result: result, replies: [])
    }

    @Test func triggersMapToTheManifestAndTheEventIsRecorded() throws {
        let agent = AgentIdentity(id: "a", version: "0.1.0")
        let event = BundleSink.contents(result(.event, event: OutboxSample.coreDump), agent: agent)
        #expect(event.trigger == .event && event.event == OutboxSample.coreDump)
        #expect(BundleSink.contents(result(.schedule, event: nil), agent: agent).trigger == .scheduled)
        #expect(BundleSink.contents(result(.request, event: nil), agent: agent).trigger == .onDemand)
        #expect(BundleSink.contents(result(.standalone, event: nil), agent: agent).trigger == .onDemand)

        // Through the real writer and reader: the manifest holds the record; the outbox sees it.
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sink = BundleSink(outbox: dir.path, key: OutboxSample.key, agent: agent)
        let path = sink.outbox.path(of: try sink.outbox.add(event).name)
        let read = try BundleReader().read(contentsOf: URL(fileURLWithPath: path))
        #expect(read.manifest.collection.trigger == .event && read.manifest.collection.event == OutboxSample.coreDump)
        let manifestText = String(decoding: try #require(read.member("manifest.json")), as: UTF8.self)
        #expect(manifestText.contains("\"kind\" : \"core-dump\"") && manifestText.contains("\"source\" : \"poll\""))
        #expect(FileOutbox(directory: dir.path).pending().first?.event == OutboxSample.coreDump)
    }
}
