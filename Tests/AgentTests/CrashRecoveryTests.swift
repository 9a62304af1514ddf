import Bundle
import Foundation
import Testing
import TestSupport

/// `kill -9` of the service in the middle of a collection, then a restart: every bundle finished
/// before the crash is still there and verifies, no half-written file is taken for a bundle, and
/// the next collection writes exactly one new bundle per device.
@Suite(.serialized) struct CrashRecoveryTests {
    func careAgent(_ arguments: [String], dir: URL) throws -> (Int32, String, String) {
        let out = dir.appendingPathComponent("o-\(UUID().uuidString.prefix(4))").path
        let err = dir.appendingPathComponent("e-\(UUID().uuidString.prefix(4))").path
        let status = try ChildProcess(try careAgentExecutable(), arguments, stdout: out, stderr: err).wait()
        return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    func startService(conf: String, dir: URL, notifyPath: String) throws -> (ChildProcess, Int32) {
        try? FileManager.default.removeItem(atPath: notifyPath)
        let notify = try SystemdNotifierTests().listen(notifyPath)
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notifyPath
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf],
                                       stderr: dir.appendingPathComponent("service-\(UUID().uuidString.prefix(4)).log").path, environment: environment)
        #expect(SystemdNotifierTests().receive(notify).hasPrefix("READY=1"))
        return (service, notify)
    }

    func bundles(_ outbox: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: outbox).filter { BundleFileName.isBundle($0) }.sorted()
    }

    @Test func killDashNineMidCollectionLosesNothingAndDuplicatesNothing() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        // 300 ms per RPC: a collection of one device takes about 4 s.
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) --latency-ms 300"))
        defer { h.stop() }
        let outbox = "\(dir.path)/outbox"
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["r1", "r2", "r3"])
        let notifyPath = dir.appendingPathComponent("notify").path

        // 1. A whole collection: three bundles.
        var (service, notify) = try startService(conf: conf, dir: dir, notifyPath: notifyPath)
        let (first, _, firstErr) = try careAgent(["collect", "now", "--config", conf], dir: dir)
        #expect(first == 0, "\(firstErr)")
        let before = try bundles(outbox)
        #expect(before.count == 3)

        // 2. A second collection, killed with SIGKILL while the devices are being collected.
        let client = try ChildProcess(try careAgentExecutable(), ["collect", "now", "--config", conf],
                                      stdout: dir.appendingPathComponent("c2.out").path, stderr: dir.appendingPathComponent("c2.err").path)
        Thread.sleep(forTimeInterval: 2)
        service.signal(SIGKILL)
        service.wait()
        close(notify)
        #expect(client.wait() != 0) // the client sees the service go away
        // Leave a half-written bundle behind as a writer killed mid-write would.
        let stale = "\(outbox)/.r1-crashed.tar.gz.999-abc.tmp"
        FileManager.default.createFile(atPath: stale, contents: Data([0x1f, 0x8b, 0x08]))
        // And what other interrupted writes leave in the state directory: removed once old enough
        // to be nobody's write in progress (a `collect now --standalone` may share the directory).
        let results = "\(dir.path)/state/results"
        let oldResult = "\(results)/.r1.json.999.12345.tmp", oldFoundation = "\(results)/.dat.nosync999.AbCdEf"
        let freshResult = "\(results)/.r2.json.999.678.tmp", notOurs = "\(results)/.notes"
        for path in [oldResult, oldFoundation, freshResult, notOurs] {
            FileManager.default.createFile(atPath: path, contents: Data("{\"device\"".utf8))
        }
        for path in [oldResult, oldFoundation, notOurs] {
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: path)
        }
        #expect(try bundles(outbox) == before, "a collection in flight wrote nothing, and nothing before it was lost")

        // 3. Restart: the stale temporary file is removed, finished bundles stay; collect again.
        (service, notify) = try startService(conf: conf, dir: dir, notifyPath: notifyPath)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() }; close(notify) }
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(!FileManager.default.fileExists(atPath: oldResult) && !FileManager.default.fileExists(atPath: oldFoundation))
        #expect(FileManager.default.fileExists(atPath: freshResult) && FileManager.default.fileExists(atPath: notOurs))
        let (third, _, thirdErr) = try careAgent(["collect", "now", "--config", conf], dir: dir)
        #expect(third == 0, "\(thirdErr)")
        let after = try bundles(outbox)
        #expect(after.count == 6)
        #expect(Set(before).isSubset(of: Set(after)))
        // Every bundle verifies, and each is a different collection (distinct bundle ids).
        let (verify, verifyOut, verifyErr) = try careAgent(["bundle", "verify"] + after.map { "\(outbox)/\($0)" }, dir: dir)
        #expect(verify == 0, "\(verifyOut)\(verifyErr)")
        let ids = try after.map { try BundleReader().read(contentsOf: URL(fileURLWithPath: "\(outbox)/\($0)")).manifest.bundleId }
        #expect(Set(ids).count == 6)
        service.signal(SIGTERM)
        #expect(service.wait() == 0)
    }
}

/// The service on its own: a scheduled group is collected with no request.
@Suite struct ScheduledServiceTests {
    @Test func serviceCollectsOnScheduleByItself() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let outbox = "\(dir.path)/outbox"
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["r1"], defaults: "schedule = every 1m\njitter = 0s")
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf], stderr: dir.appendingPathComponent("service.log").path)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        // A group that never ran runs at once (plus its jitter, here none): no request needed.
        var count = 0
        for _ in 0..<200 {
            count = ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []).filter { BundleFileName.isBundle($0) }.count
            if count >= 1 { break }
            usleep(100_000)
        }
        #expect(count == 1, "\((try? String(contentsOfFile: dir.appendingPathComponent("service.log").path, encoding: .utf8)) ?? "")")
        service.signal(SIGTERM)
        #expect(service.wait() == 0)
    }
}
