@testable import Agent
import Crypto
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

extension UploadSettings {
    /// Uploads to `nginx`'s WebDAV collection, trusting its test CA.
    init(nginx: NginxHarness) {
        self.init(url: nginx.bundlesURL)
        caFile = nginx.certificates.caCertificate
    }
}

/// An outbox, a runtime whose configuration has `upload`, and an uploader logging to `lines`.
struct UploadBench {
    let dir: URL
    let outbox: String
    let runtime: AgentRuntime
    let uploader: Uploader
    let lines: LineStore

    init(dir: URL, upload: UploadSettings) throws {
        self.dir = dir
        lines = LineStore()
        outbox = dir.appendingPathComponent("outbox").path
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        var configuration = AgentConfiguration()
        configuration.agent.outbox = outbox
        configuration.agent.stateDirectory = dir.appendingPathComponent("state").path
        configuration.upload = upload
        let lines = self.lines
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) }
        let root = dir.appendingPathComponent("out").path
        runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: logger,
                                   makeSink: { _ in DirectorySink(root: root) })
        uploader = Uploader(runtime: runtime, logger: logger)
    }

    /// Writes a bundle-named file of random bytes, `age` seconds old; returns its contents.
    @discardableResult
    func addBundle(_ name: String, size: Int = 64 * 1024, age: TimeInterval = 0) throws -> Data {
        var bytes = [UInt8](repeating: 0, count: size)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let data = Data(bytes)
        let path = outbox + "/" + name
        try data.write(to: URL(fileURLWithPath: path))
        if age > 0 {
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: path)
        }
        return data
    }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: outbox + "/" + name) }

    func pass() async -> Uploader.Pass {
        let configuration = await runtime.configuration
        return await uploader.uploadPending(settings: configuration.upload, outbox: outbox)
    }

    var metrics: String { get async { await runtime.metrics.render(outboxDepth: 0) } }
}

func sha256Hex(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

@Suite(.serialized) struct UploaderTests {
    static let token = "s3cr3t-Upload-Token-4242"

    @Test func bundlesGoOutOldestFirstOverHTTPSAndAreRemovedLocally() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir, token: Self.token)
        defer { nginx.stop() }
        let tokenFile = dir.appendingPathComponent("upload.token").path
        try (Self.token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile, 0o600)
        var settings = UploadSettings(nginx: nginx)
        settings.tokenFile = tokenFile
        let bench = try UploadBench(dir: dir, upload: settings)
        let newer = try bench.addBundle("r1_SN1_20261125T010000Z.tar.gz", size: 300_000, age: 10)
        let older = try bench.addBundle("r2_SN2_20261125T000000Z.tar.gz", size: 1000, age: 100)

        let pass = await bench.pass()
        #expect(pass.failed == false)
        #expect(pass.outcomes["r1_SN1_20261125T010000Z.tar.gz"] == .accepted(status: 201))
        #expect(FileManager.default.contents(atPath: nginx.received("r1_SN1_20261125T010000Z.tar.gz")) == newer)
        #expect(FileManager.default.contents(atPath: nginx.received("r2_SN2_20261125T000000Z.tar.gz")) == older)
        #expect(!bench.exists("r1_SN1_20261125T010000Z.tar.gz") && !bench.exists("r2_SN2_20261125T000000Z.tar.gz"))
        #expect(!FileManager.default.fileExists(atPath: bench.outbox + "/sent"))
        // Oldest first, with the digest, type and length the protocol asks for.
        let puts = nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT") }
        #expect(puts == [
            "PUT /care/bundles/r2_SN2_20261125T000000Z.tar.gz 201 sha256=\(sha256Hex(older)) type=application/gzip length=1000",
            "PUT /care/bundles/r1_SN1_20261125T010000Z.tar.gz 201 sha256=\(sha256Hex(newer)) type=application/gzip length=300000",
        ])
        let status = await AgentStatus(runtime: bench.runtime)
        #expect(status.upload?.url == nginx.bundlesURL)
        #expect(status.upload?.lastSuccess != nil && status.upload?.lastError == nil && status.upload?.pending == 0)
        #expect(await bench.metrics.contains("care_agent_uploads_total{result=\"ok\"} 2\n"))

        // keep-sent: the confirmed bundle moves to sent/ instead of going away.
        settings.keepSent = true
        let kept = try bench.addBundle("r3_SN3_20261125T020000Z.tar.gz")
        let second = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        #expect(second.outcomes == ["r3_SN3_20261125T020000Z.tar.gz": .accepted(status: 201)])
        #expect(FileManager.default.contents(atPath: bench.outbox + "/sent/r3_SN3_20261125T020000Z.tar.gz") == kept)
        #expect(!bench.exists("r3_SN3_20261125T020000Z.tar.gz"))
        #expect(FileOutbox(directory: bench.outbox).depth == 0)
    }

    @Test func anUntrustedServerIsAFailureAndTheBundleStays() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        // A CA that did not sign the server's certificate.
        let other = try TestCertificates(in: dir, prefix: "other-")
        var settings = UploadSettings(url: nginx.bundlesURL)
        settings.caFile = other.caCertificate
        let bench = try UploadBench(dir: dir, upload: settings)
        let name = "r1_SN1_20261125T010000Z.tar.gz"
        try bench.addBundle(name)

        let pass = await bench.pass()
        #expect(pass.failed)
        guard case let .failed(reason) = pass.outcomes[name] else {
            Issue.record("expected a failure, got \(String(describing: pass.outcomes[name]))")
            return
        }
        #expect(reason.contains("certificate"), "\(reason)")
        #expect(bench.exists(name))
        #expect(!FileManager.default.fileExists(atPath: nginx.received(name)))
        #expect(!nginx.accessLog.contains("PUT"))
        let status = await AgentStatus(runtime: bench.runtime)
        #expect(status.upload?.lastError == reason && status.upload?.lastSuccess == nil && status.upload?.pending == 1)
        let metrics = await bench.metrics
        #expect(metrics.contains("care_agent_upload_failures_total 1\n"))
        #expect(metrics.contains("care_agent_uploads_total{result=\"failed\"} 1\n"))
        #expect(metrics.contains("care_agent_uploads_total{result=\"ok\"} 0\n"))
    }

    @Test func busyServerIsRetriedWithGrowingBackoffAndTheBundleKept() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(url: nginx.url("/busy/"))
        settings.caFile = nginx.certificates.caCertificate
        settings.retryBackoff = .milliseconds(200)
        settings.maxBackoff = .milliseconds(800)
        settings.interval = .seconds(3600)
        let bench = try UploadBench(dir: dir, upload: settings)
        let name = "r1_SN1_20261125T010000Z.tar.gz"
        try bench.addBundle(name)

        let started = ContinuousClock.now
        let loop = Task { try await bench.uploader.loop() }
        try await Task.sleep(for: .milliseconds(2500))
        loop.cancel()
        _ = try? await loop.value
        #expect(ContinuousClock.now - started < .seconds(5))
        // Attempts at about 0, 0.2, 0.6, 1.4 and 2.2 s: retried, but not in a tight loop.
        let attempts = nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT /busy/\(name) 503") }.count
        #expect((3...6).contains(attempts), "\(attempts) attempts")
        #expect(bench.exists(name))
        let status = await AgentStatus(runtime: bench.runtime)
        #expect(status.upload?.lastError?.contains("503") == true)
        #expect(status.upload?.nextAttempt != nil)
        #expect(await bench.metrics.contains("care_agent_upload_failures_total \(attempts)\n"))
    }

    /// 409 means the server did not store the bundle (care-support: another bundle has its id;
    /// WebDAV: no parent collection). Taken as "has it already", every bundle was deleted
    /// unsent: now a 409 for every bundle keeps them all and ends the pass.
    @Test func aConflictForEveryBundleKeepsThemAndBadRequestMeansRejected() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(url: nginx.url("/dup/"))
        settings.caFile = nginx.certificates.caCertificate
        let bench = try UploadBench(dir: dir, upload: settings)
        let kept = try bench.addBundle("a_SN_1.tar.gz", age: 10)
        try bench.addBundle("z_SN_9.tar.gz")
        let duplicate = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        #expect(duplicate.failed)
        guard case let .failed(reason) = duplicate.outcomes["a_SN_1.tar.gz"], reason.hasPrefix("HTTP 409 (conflict") else {
            Issue.record("expected a failed attempt with HTTP 409, got \(duplicate.outcomes)")
            return
        }
        #expect(FileManager.default.contents(atPath: bench.outbox + "/a_SN_1.tar.gz") == kept)
        #expect(bench.exists("z_SN_9.tar.gz"))
        #expect(!FileManager.default.fileExists(atPath: bench.outbox + "/rejected/a_SN_1.tar.gz"))
        try FileManager.default.removeItem(atPath: bench.outbox + "/a_SN_1.tar.gz")
        try FileManager.default.removeItem(atPath: bench.outbox + "/z_SN_9.tar.gz")

        // One bundle the server refuses for good, one it takes: the refused one goes to rejected/.
        settings.url = nginx.bundlesURL
        let refused = try bench.addBundle("bad-SN_2.tar.gz", age: 10)
        try bench.addBundle("c_SN_3.tar.gz")
        let bad = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        // A refused bundle does not hold up the ones after it.
        #expect(bad.failed == false)
        #expect(bad.outcomes["bad-SN_2.tar.gz"] == .rejected(status: 400, body: "bad bundle name\n"))
        #expect(bad.outcomes["c_SN_3.tar.gz"] == .accepted(status: 201))
        #expect(FileManager.default.contents(atPath: bench.outbox + "/rejected/bad-SN_2.tar.gz") == refused)
        #expect(!bench.exists("bad-SN_2.tar.gz"))
        #expect(bench.lines.lines.contains { $0.contains("rejected") && $0.contains("status=400") && $0.contains("bad bundle name") })
        let status = await AgentStatus(runtime: bench.runtime)
        #expect(status.upload?.rejected == 1 && status.upload?.pending == 0)
        let metrics = await bench.metrics
        #expect(metrics.contains("care_agent_uploads_total{result=\"rejected\"} 1\n"))
        #expect(metrics.contains("care_agent_uploads_total{result=\"ok\"} 1\n"))
        #expect(metrics.contains("care_agent_uploads_total{result=\"failed\"} 2\n"))
    }

    /// An intake older than the agent (422 "unsupported bundle format version") or a proxy
    /// refuses every bundle alike: moving each to rejected/ emptied the whole outbox in one pass,
    /// and fixing the server sent nothing. Two alike and none taken: all kept, the pass backs off.
    @Test func aServerRefusingEveryBundleAlikeKeepsThemAll() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(url: nginx.url("/refuse/"))
        settings.caFile = nginx.certificates.caCertificate
        let bench = try UploadBench(dir: dir, upload: settings)
        let names = ["a_SN_1.tar.gz", "b_SN_2.tar.gz", "c_SN_3.tar.gz", "d_SN_4.tar.gz"]
        for (i, name) in names.enumerated() { try bench.addBundle(name, age: Double(100 - i * 10)) }
        for _ in 1...3 {
            let pass = await bench.pass()
            #expect(pass.failed && pass.outcomes.count == 2, "\(pass.outcomes)")
        }
        #expect(names.allSatisfy { bench.exists($0) })
        #expect(!FileManager.default.fileExists(atPath: bench.outbox + "/rejected"))
        #expect(bench.lines.lines.contains { $0.contains("refuses every bundle alike") && $0.contains("status=422") })
        // Kept is not "moved to rejected/": status and the metrics say the attempt failed.
        let status = await AgentStatus(runtime: bench.runtime)
        #expect(status.upload?.lastError?.contains("kept") == true && status.upload?.lastError?.contains("rejected/") == false, "\(status.upload?.lastError ?? "")")
        #expect(await bench.metrics.contains("care_agent_uploads_total{result=\"rejected\"} 0\n"))
        // The server fixed: every bundle goes.
        settings.url = nginx.bundlesURL
        let fixed = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        #expect(!fixed.failed && names.allSatisfy { fixed.outcomes[$0] == .accepted(status: 201) }, "\(fixed.outcomes)")
    }

    /// A bundle the server (or a proxy) breaks the connection on once its body is in: it ended
    /// every pass first in line, and nothing behind it went. Now the next bundle tells, and it
    /// is set aside after five attempts like any bundle the server fails on.
    @Test func aBundleThatBreaksTheConnectionDoesNotHoldTheQueue() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let bench = try UploadBench(dir: dir, upload: UploadSettings(nginx: nginx))
        let reset = "reset-SN0-20261125T000000Z.tar.gz"
        try bench.addBundle(reset, size: 300_000, age: 1000)
        let others = ["r1_SN1_20261125T010000Z.tar.gz", "r2_SN2_20261125T020000Z.tar.gz", "r3_SN3_20261125T030000Z.tar.gz"]
        for (i, name) in others.enumerated() { try bench.addBundle(name, age: Double(100 - i)) }
        let first = await bench.pass()
        #expect(!first.failed && others.allSatisfy { first.outcomes[$0] == .accepted(status: 201) }, "\(first.outcomes)")
        guard case let .failed(reason) = first.outcomes[reset], reason.contains("connection broke") else {
            Issue.record("expected a cut-off attempt, got \(String(describing: first.outcomes[reset]))")
            return
        }
        for round in 2...Uploader.maxAttemptsPerBundle {
            try bench.addBundle("n\(round)_SN\(round)_20261126T000000Z.tar.gz")
            _ = await bench.pass()
        }
        #expect(!bench.exists(reset) && FileManager.default.fileExists(atPath: bench.outbox + "/rejected/" + reset))
    }

    /// "Busy, try later" for one bundle (care-support could not record its case) while the server
    /// takes the others: never counted against it, so it is never set aside.
    @Test func aBundleTheServerIsBusyForIsNeverSetAside() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let bench = try UploadBench(dir: dir, upload: UploadSettings(nginx: nginx))
        let busy = "casefail-SN0-20261125T000000Z.tar.gz"
        try bench.addBundle(busy, age: 1000)
        for round in 1...(Uploader.maxAttemptsPerBundle + 1) {
            try bench.addBundle("r\(round)_SN\(round)_20261125T0\(round)0000Z.tar.gz", age: 10)
            let pass = await bench.pass()
            #expect(!pass.failed && pass.setAside.isEmpty, "round \(round): \(pass.outcomes)")
        }
        #expect(bench.exists(busy) && !FileManager.default.fileExists(atPath: bench.outbox + "/rejected/" + busy))
        // nginx logs a request after answering it: the last line may come a moment later.
        func attempts() -> Int { nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT /care/bundles/\(busy) 503") }.count }
        let deadline = ContinuousClock.now + .seconds(3)
        while attempts() < Uploader.maxAttemptsPerBundle + 1 && ContinuousClock.now < deadline { usleep(20_000) }
        #expect(attempts() == Uploader.maxAttemptsPerBundle + 1)
    }

    /// After an outage the backlog can take hours to send: an incident's bundle written during
    /// the pass went after all of it. Now the pass takes it next.
    @Test func anEventBundleWrittenDuringAPassGoesNext() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let bench = try UploadBench(dir: dir, upload: UploadSettings(nginx: nginx))
        let outbox = FileOutbox(directory: bench.outbox, key: OutboxSample.key)
        var scheduled: [String] = []
        for i in 0..<60 {
            scheduled.append(try outbox.add(OutboxSample.contents("s\(i)", trigger: .scheduled, padding: 100_000)).name)
        }
        let pass = Task { await bench.pass() }
        func puts() -> [Substring] { nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT ") } }
        let deadline = ContinuousClock.now + .seconds(20)
        while puts().count < 3 && ContinuousClock.now < deadline { usleep(2_000) }
        let event = try outbox.add(OutboxSample.contents("e1", trigger: .event, event: OutboxSample.coreDump)).name
        bench.runtime.uploadWake.signal()
        let seenAt = puts().count
        let result = await pass.value
        #expect(result.outcomes[event] == .accepted(status: 201), "\(result.outcomes.count) outcomes")
        let order = puts().map { String($0.split(separator: " ")[1].split(separator: "/").last!) }
        let position = try #require(order.firstIndex(of: event))
        #expect(position <= seenAt + 1, "the event bundle was PUT at \(position), the wake at \(seenAt) of \(order.count)")
        #expect(Set(order) == Set(scheduled + [event]) && order.count == scheduled.count + 1, "every bundle once")
    }

    /// A 429 with Retry-After: 300 is not retried after the 30 s backoff.
    @Test func retryAfterIsHonouredWithinMaxBackoff() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(url: nginx.url("/later/"))
        settings.caFile = nginx.certificates.caCertificate
        let bench = try UploadBench(dir: dir, upload: settings)
        try bench.addBundle("r1_SN1_20261125T010000Z.tar.gz")
        let pass = await bench.pass()
        #expect(pass.failed && pass.retryAfter == 300, "\(pass)")
        let loop = Task { try await bench.uploader.loop() }
        defer { loop.cancel() }
        var next: Date?
        for _ in 0..<100 {
            next = await AgentStatus(runtime: bench.runtime).upload?.nextAttempt
            if next != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let wait = try #require(next).timeIntervalSinceNow
        #expect(wait > 290 && wait < 340, "next attempt in \(wait) s")
    }

    /// The server took the bundle and the outbox cannot be written (read-only after a storage
    /// fault): it was PUT again every pass. Now it is sent once, and only its removal retried.
    @Test func aDeliveredBundleThatCannotBeRemovedIsNotSentAgain() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(nginx: nginx)
        settings.keepSent = true
        let bench = try UploadBench(dir: dir, upload: settings)
        // sent/ is a file: the move after the upload fails, for root too.
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: bench.outbox + "/sent"))
        let name = "r1_SN1_20261125T010000Z.tar.gz"
        try bench.addBundle(name)
        for _ in 1...3 {
            let pass = await bench.pass()
            #expect(pass.failed)
        }
        #expect(nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT /care/bundles/\(name) 201") }.count == 1)
        // Once the outbox can be written again, the bundle leaves without another upload.
        try FileManager.default.removeItem(atPath: bench.outbox + "/sent")
        _ = await bench.pass()
        #expect(!bench.exists(name))
        #expect(nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT /care/bundles/\(name)") }.count == 1)
    }

    /// A url with no upload endpoint behind it (here nginx's plain root, which answers a PUT with
    /// 405) refuses every bundle alike: all stay, the pass ends, status says to check the url,
    /// and the fixed url sends them (they were moved to rejected/, never to be sent).
    @Test func aURLWithNoUploadEndpointKeepsEveryBundle() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(url: nginx.url("/care/bundels/"))
        settings.caFile = nginx.certificates.caCertificate
        let bench = try UploadBench(dir: dir, upload: settings)
        try bench.addBundle("a_SN_1.tar.gz", age: 10)
        try bench.addBundle("b_SN_2.tar.gz")
        let wrong = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        #expect(wrong.failed)
        #expect(bench.exists("a_SN_1.tar.gz") && bench.exists("b_SN_2.tar.gz"))
        #expect(!FileManager.default.fileExists(atPath: bench.outbox + "/rejected"))
        #expect(nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT /care/bundels/") }.count == 1, "the pass ends at the first")
        let status = await AgentStatus(runtime: bench.runtime)
        #expect(status.upload?.lastError?.contains("HTTP 405 (no upload endpoint at this url: check [upload] url)") == true,
                "\(status.upload?.lastError ?? "no error")")
        settings.url = nginx.url("/care/bundles/")
        let fixed = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        #expect(fixed.outcomes.values.allSatisfy { if case .accepted = $0 { true } else { false } } && fixed.outcomes.count == 2)
        #expect(!bench.exists("a_SN_1.tar.gz") && !bench.exists("b_SN_2.tar.gz"))
    }

    /// A bundle the server answers 500 for, or 409 (care-support: another bundle has its id).
    @Test(arguments: [("poison", 500), ("conflict", 409)])
    func aBundleTheServerFailsOnDoesNotHoldUpTheOthersAndIsSetAsideAfterFiveAttempts(prefix: String, code: Int) async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let settings = UploadSettings(nginx: nginx)
        let bench = try UploadBench(dir: dir, upload: settings)
        // The oldest bundle is one the server answers `code` for, every time.
        let poison = "\(prefix)-SN0-20261125T000000Z.tar.gz"
        let poisonData = try bench.addBundle(poison, age: 1000)
        try bench.addBundle("r1_SN1_20261125T010000Z.tar.gz", age: 100)
        for round in 1...Uploader.maxAttemptsPerBundle {
            let fresh = "r\(round + 1)_SN\(round + 1)_20261125T0\(round + 1)0000Z.tar.gz"
            let data = try bench.addBundle(fresh, age: 10)
            let pass = await bench.pass()
            // The newer bundles went; the pass is not a failure of the server: no backoff.
            #expect(pass.failed == false, "round \(round): \(pass.outcomes)")
            #expect(pass.outcomes[fresh] == .accepted(status: 201))
            #expect(FileManager.default.contents(atPath: nginx.received(fresh)) == data)
            guard case let .failed(reason) = pass.outcomes[poison], reason.hasPrefix("HTTP \(code)") else {
                Issue.record("round \(round): expected HTTP \(code) for the poison bundle, got \(String(describing: pass.outcomes[poison]))")
                return
            }
            if round < Uploader.maxAttemptsPerBundle {
                #expect(bench.exists(poison), "round \(round)")
                #expect(pass.setAside.isEmpty)
            } else {
                #expect(pass.setAside == [poison])
            }
        }
        #expect(!bench.exists("r1_SN1_20261125T010000Z.tar.gz"))
        // Set aside after five failures, byte for byte, for a person to look at.
        #expect(!bench.exists(poison))
        #expect(FileManager.default.contents(atPath: bench.outbox + "/rejected/" + poison) == poisonData)
        #expect(nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT /care/bundles/\(poison) \(code)") }.count == 5)
        #expect(bench.lines.lines.contains { $0.contains("moved to rejected/ after repeated failures") && $0.contains("attempts=5") && $0.contains(poison) })
        let status = await AgentStatus(runtime: bench.runtime)
        #expect(status.upload?.rejected == 1 && status.upload?.pending == 0)
        #expect(status.upload?.lastRejected?.hasPrefix("\(poison): 5 failed attempts in a row") == true, "\(status.upload?.lastRejected ?? "")")
        #expect(status.upload?.lastRejected?.contains("HTTP \(code)") == true)
        // Nothing else is tried for it any more.
        #expect(await bench.pass().outcomes.isEmpty)
    }

    /// Two bundles the server fails on at the head of the queue: each pass ends at the second
    /// (a server failing on everything looks the same), but the first goes to the back, so the
    /// next pass reaches the good bundles behind them and shows whose fault it was.
    @Test func twoBadBundlesAtTheHeadDoNotHoldTheQueue() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let bench = try UploadBench(dir: dir, upload: UploadSettings(nginx: nginx))
        let first = "poison-SN0-20261125T000000Z.tar.gz", second = "poison-SN9-20261125T000100Z.tar.gz"
        try bench.addBundle(first, age: 1000)
        try bench.addBundle(second, age: 900)
        let good = "r1_SN1_20261125T010000Z.tar.gz"
        let data = try bench.addBundle(good, age: 100)
        let opening = await bench.pass()
        #expect(opening.failed && opening.outcomes[good] == nil, "two failures in a row end the pass: \(opening.outcomes)")
        let next = await bench.pass()
        #expect(next.outcomes[good] == .accepted(status: 201), "the good bundle waited behind the bad pair: \(next.outcomes)")
        #expect(FileManager.default.contents(atPath: nginx.received(good)) == data)
    }

    @Test func aServerFailingOnEveryBundleEndsThePassAndSetsNothingAside() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(url: nginx.url("/busy/"))
        settings.caFile = nginx.certificates.caCertificate
        let bench = try UploadBench(dir: dir, upload: settings)
        let names = ["a_SN_1.tar.gz", "b_SN_2.tar.gz", "c_SN_3.tar.gz"]
        for (i, name) in names.enumerated() { try bench.addBundle(name, age: Double(100 - i * 10)) }
        for round in 1...(Uploader.maxAttemptsPerBundle + 2) {
            let pass = await bench.pass()
            // 503 twice in a row: the server, not the bundles; the pass ends and backs off (the
            // first of the two goes to the back, so the passes take turns at the head).
            #expect(pass.failed, "round \(round)")
            #expect(pass.outcomes.count == 2, "round \(round): \(pass.outcomes)")
            #expect(pass.setAside.isEmpty)
        }
        #expect(names.allSatisfy { bench.exists($0) })
        #expect(!FileManager.default.fileExists(atPath: bench.outbox + "/rejected"))
        // Unreachable (nothing listens): the pass ends at the first bundle.
        settings.url = "https://127.0.0.1:\(try SSHDHarness.freePort(on: "127.0.0.1"))/care/"
        let down = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        #expect(down.failed && down.outcomes.count == 1)
    }

    @Test func uploadsGoThroughAnHTTPProxyWithConnect() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let proxy = try TinyproxyHarness(directory: dir, connectPort: nginx.port)
        defer { proxy.stop() }
        var settings = UploadSettings(nginx: nginx)
        settings.proxy = proxy.url
        let bench = try UploadBench(dir: dir, upload: settings)
        let data = try bench.addBundle("r1_SN1_20261125T010000Z.tar.gz")
        let pass = await bench.pass()
        #expect(pass.outcomes == ["r1_SN1_20261125T010000Z.tar.gz": .accepted(status: 201)])
        #expect(FileManager.default.contents(atPath: nginx.received("r1_SN1_20261125T010000Z.tar.gz")) == data)
        #expect(proxy.log.contains("CONNECT 127.0.0.1:\(nginx.port)"), "\(proxy.log)")
    }

    /// A proxy that wants a login gets it from `proxy-credentials-file` (a private file); without
    /// it the proxy's 407 is the failure, and a file others can read is refused before any request.
    /// A corporate proxy offering Negotiate (Kerberos) beside Basic: libcurl asked for "any"
    /// method picks Negotiate and, without a ticket, never sends the configured login.
    @Test func aProxyOfferingNegotiateAndBasicGetsTheBasicLogin() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("proxy.log").path, portFile = dir.appendingPathComponent("proxy.port").path
        let script = """
        import socket, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(8)
        open(sys.argv[2], "w").write(str(s.getsockname()[1]))
        while True:
            c, _ = s.accept(); data = b""
            while b"\\r\\n\\r\\n" not in data:
                chunk = c.recv(4096)
                if not chunk: break
                data += chunk
            auth = [l for l in data.decode("latin1").split("\\r\\n") if l.lower().startswith("proxy-authorization:")]
            with open(sys.argv[1], "a") as f: f.write((auth[0] if auth else "none") + "\\n")
            if auth: c.sendall(b"HTTP/1.1 403 Forbidden\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")
            else: c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\\r\\nProxy-Authenticate: Negotiate\\r\\nProxy-Authenticate: Basic realm=\\"corp\\"\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")
            c.close()
        """
        let proxy = try ChildProcess("/usr/bin/python3", ["-c", script, log, portFile])
        defer { proxy.signal(SIGKILL); proxy.wait() }
        var port: String?
        for _ in 0..<100 where port == nil { port = try? String(contentsOfFile: portFile, encoding: .utf8); if port == nil { usleep(50_000) } }
        var settings = UploadSettings(url: "https://127.0.0.1:9/care/bundles/")
        settings.proxy = "http://127.0.0.1:\(try #require(port))"
        let credentials = dir.appendingPathComponent("proxy-credentials").path
        try "care:Pr0xy-s3cret\n".write(toFile: credentials, atomically: true, encoding: .utf8)
        chmod(credentials, 0o600)
        settings.proxyCredentialsFile = credentials
        let bench = try UploadBench(dir: dir, upload: settings)
        try bench.addBundle("r1_SN1_20261125T010000Z.tar.gz")
        _ = await bench.pass()
        let seen = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(seen.contains("Proxy-Authorization: Basic \(Data("care:Pr0xy-s3cret".utf8).base64EncodedString())"), "\(seen)")
    }

    @Test func uploadsLogInToAProxyFromItsCredentialsFile() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let proxy = try TinyproxyHarness(directory: dir, connectPort: nginx.port, basicAuth: ("care", "Pr0xy-s3cret"))
        defer { proxy.stop() }
        var settings = UploadSettings(nginx: nginx)
        settings.proxy = proxy.url
        let bench = try UploadBench(dir: dir, upload: settings)
        _ = try bench.addBundle("r1_SN1_20261125T010000Z.tar.gz")
        guard case let .failed(reason)? = await bench.pass().outcomes["r1_SN1_20261125T010000Z.tar.gz"] else {
            Issue.record("uploaded through a proxy that wants a login, without one"); return
        }
        #expect(reason.contains("407"), "\(reason)")

        let credentials = dir.appendingPathComponent("proxy-credentials").path
        try "care:Pr0xy-s3cret\n".write(toFile: credentials, atomically: true, encoding: .utf8)
        chmod(credentials, 0o644)
        settings.proxyCredentialsFile = credentials
        let open = try UploadBench(dir: dir, upload: settings)
        guard case let .failed(refusal)? = await open.pass().outcomes["r1_SN1_20261125T010000Z.tar.gz"] else {
            Issue.record("a credentials file every user can read was used"); return
        }
        #expect(refusal.contains("chmod 600 \(credentials)"), "\(refusal)")

        chmod(credentials, 0o600)
        let logged = try UploadBench(dir: dir, upload: settings)
        #expect(await logged.pass().outcomes == ["r1_SN1_20261125T010000Z.tar.gz": .accepted(status: 201)])
        #expect(proxy.log.contains("CONNECT 127.0.0.1:\(nginx.port)"), "\(proxy.log)")
    }

    @Test func inProgressBundlesAreNeverUploaded() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let settings = UploadSettings(nginx: nginx)
        let bench = try UploadBench(dir: dir, upload: settings)
        // What BundleWriter leaves when the agent dies mid-write.
        let partial = ".r1_SN1_20261125T010000Z.tar.gz.4242-abcd.tmp"
        try bench.addBundle(partial)
        try FileManager.default.createDirectory(atPath: bench.outbox + "/rejected", withIntermediateDirectories: true)
        try Data("old".utf8).write(to: URL(fileURLWithPath: bench.outbox + "/rejected/x_SN_0.tar.gz"))
        #expect(FileOutbox(directory: bench.outbox).pending().isEmpty)
        let pass = await bench.pass()
        #expect(pass.outcomes.isEmpty)
        #expect(bench.exists(partial))
        #expect(!nginx.accessLog.contains("PUT"))
        // Once renamed into place (the writer's last step), it goes.
        try FileManager.default.moveItem(atPath: bench.outbox + "/" + partial, toPath: bench.outbox + "/r1_SN1_20261125T010000Z.tar.gz")
        #expect(await bench.pass().outcomes == ["r1_SN1_20261125T010000Z.tar.gz": .accepted(status: 201)])
    }

    @Test func theTokenNeverReachesTheLogs() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir, token: Self.token)
        defer { nginx.stop() }
        let credentials = dir.appendingPathComponent("credentials")
        try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
        try Self.token.write(to: credentials.appendingPathComponent("upload-token"), atomically: true, encoding: .utf8)
        let wrong = "Wr0ng-Token-Also-Secret"
        try wrong.write(to: credentials.appendingPathComponent("wrong-token"), atomically: true, encoding: .utf8)
        // As systemd's LoadCredential= leaves them: 0400 (secret files others can read are refused).
        chmod(credentials.appendingPathComponent("upload-token").path, 0o400)
        chmod(credentials.appendingPathComponent("wrong-token").path, 0o400)
        var settings = UploadSettings(nginx: nginx)
        settings.tokenCredential = "upload-token"
        var bench = try UploadBench(dir: dir, upload: settings)
        bench = UploadBench(copy: bench, environment: ["CREDENTIALS_DIRECTORY": credentials.path])
        try bench.addBundle("a_SN_1.tar.gz")
        #expect(await bench.pass().outcomes == ["a_SN_1.tar.gz": .accepted(status: 201)])
        // A wrong token: 401, a configuration problem: the bundle is kept for a retry, not rejected.
        settings.tokenCredential = "wrong-token"
        try bench.addBundle("b_SN_2.tar.gz")
        let refused = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        guard case let .failed(reason) = refused.outcomes["b_SN_2.tar.gz"], reason.hasPrefix("HTTP 401 (check the upload token") else {
            Issue.record("expected a retryable 401, got \(String(describing: refused.outcomes["b_SN_2.tar.gz"]))")
            return
        }
        #expect(FileManager.default.fileExists(atPath: bench.outbox + "/b_SN_2.tar.gz"))
        // Without $CREDENTIALS_DIRECTORY: an error naming the credential, not its value.
        let outside = Uploader(runtime: bench.runtime, logger: Logger(label: "care-agent") { [lines = bench.lines] _ in CapturingLogHandler(store: lines) },
                               environment: [:])
        // (b_SN_2 is still pending after the 401, and a pass starts with the oldest.)
        guard case let .failed(reason) = await outside.uploadPending(settings: settings, outbox: bench.outbox).outcomes["b_SN_2.tar.gz"] else {
            Issue.record("expected a failure without CREDENTIALS_DIRECTORY")
            return
        }
        #expect(reason.contains("CREDENTIALS_DIRECTORY"))
        let lines = bench.lines.lines
        #expect(lines.count >= 3)
        #expect(!lines.contains { $0.contains(Self.token) || $0.contains(wrong) })
        let status = await AgentStatus(runtime: bench.runtime)
        let json = String(decoding: try ResultStore.encoder.encode(status), as: UTF8.self)
        #expect(!json.contains(Self.token) && !json.contains(wrong))
    }

    /// A bundle the server fails on, alone in the outbox: nothing tells whether the server fails
    /// on everything, so the uploader backs off (a minute here); a collection's new bundle ends
    /// that backoff at once, is taken, and shows the failure to be the old bundle's.
    @Test func aNewBundleEndsTheBackoffOfALoneFailure() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(nginx: nginx)
        settings.retryBackoff = .seconds(60)
        settings.interval = .seconds(3600)
        let bench = try UploadBench(dir: dir, upload: settings)
        let poison = "poison-SN0-20261125T000000Z.tar.gz"
        try bench.addBundle(poison, age: 1000)
        func poisonAttempts() -> Int {
            nginx.accessLog.split(separator: "\n").filter { $0.hasPrefix("PUT /care/bundles/\(poison) 500") }.count
        }
        let loop = Task { try await bench.uploader.loop() }
        defer { loop.cancel() }
        var deadline = ContinuousClock.now + .seconds(5)
        while poisonAttempts() == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(poisonAttempts() == 1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await AgentStatus(runtime: bench.runtime).upload?.nextAttempt != nil, "backing off")

        let fresh = "r1_SN1_20261125T010000Z.tar.gz"
        let data = try bench.addBundle(fresh)
        _ = await bench.runtime.collect([], trigger: .request)
        deadline = ContinuousClock.now + .seconds(5)
        while bench.exists(fresh) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(FileManager.default.contents(atPath: nginx.received(fresh)) == data, "the new bundle waited for the backoff")
        try await Task.sleep(for: .milliseconds(300))
        // Tried again beside it, and counted as its own failure: no backoff any more.
        #expect(poisonAttempts() == 2)
        #expect(bench.lines.lines.contains { $0.contains("bundle failed on its own") && $0.contains(poison) && $0.contains("attempts=1") })
        #expect(await AgentStatus(runtime: bench.runtime).upload?.nextAttempt == nil)
        loop.cancel()
        _ = try? await loop.value
    }

    /// A pass that stops on a server error twice in a row says nothing of the first one's bundle:
    /// no strike for it (a server restart while a backlog drains must not count against a bundle).
    @Test func aPassStoppedByTwoServerErrorsStrikesNoBundle() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let settings = UploadSettings(nginx: nginx)
        let bench = try UploadBench(dir: dir, upload: settings)
        try bench.addBundle("a_SN1_20261125T000000Z.tar.gz", age: 300)
        try bench.addBundle("poison-SN2-20261125T000000Z.tar.gz", age: 200)
        try bench.addBundle("poison-SN3-20261125T000000Z.tar.gz", age: 100)
        let pass = await bench.pass()
        #expect(pass.outcomes["a_SN1_20261125T000000Z.tar.gz"] == .accepted(status: 201))
        #expect(pass.failed && !pass.undecided)
        #expect(!bench.lines.lines.contains { $0.contains("bundle failed on its own") }, "\(bench.lines.lines)")
        #expect(bench.exists("poison-SN2-20261125T000000Z.tar.gz") && bench.exists("poison-SN3-20261125T000000Z.tar.gz"))
    }

    /// A bundle that cannot be sent within `timeout` (a large one on a slow link; here a server
    /// that stops reading it) does not block the ones behind it: they go, and it counts a
    /// failure of its own (set aside after five) instead of ending every pass first in line.
    @Test func aBundleThatTimesOutWhileSendingDoesNotBlockTheOthers() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try SSHDHarness.freePort(on: "127.0.0.1")
        let script = dir.appendingPathComponent("slow.py").path
        try """
        import http.server, sys, time
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                if 'big' in self.path:
                    self.rfile.read(1024)
                    time.sleep(30)
                    return
                self.rfile.read(int(self.headers['Content-Length']))
                self.send_response(201); self.send_header('Content-Length', '0'); self.end_headers()
            def log_message(self, *args): pass
        http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Handler).serve_forever()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let server = try ChildProcess("/usr/bin/python3", [script, String(port)], stderr: dir.path + "/slow.err")
        defer { server.signal(SIGKILL); server.wait() }
        try waitForListener(port: port, timeout: .seconds(10), process: server, name: "slow server")
        var settings = UploadSettings(url: "http://127.0.0.1:\(port)/bundles/")
        settings.timeout = .seconds(2)
        let bench = try UploadBench(dir: dir, upload: settings)
        let big = "big-SN0-20261125T000000Z.tar.gz"
        try bench.addBundle(big, size: 16 << 20, age: 1000)
        try bench.addBundle("r1_SN1_20261125T010000Z.tar.gz", age: 10)
        let pass = await bench.uploader.uploadPending(settings: settings, outbox: bench.outbox)
        #expect(pass.failed == false, "\(pass.outcomes)")
        #expect(pass.outcomes["r1_SN1_20261125T010000Z.tar.gz"] == .accepted(status: 201))
        guard case let .failed(reason)? = pass.outcomes[big] else { Issue.record("\(pass.outcomes)"); return }
        #expect(reason.contains("while sending the bundle"), "\(reason)")
        #expect(bench.exists(big) && !bench.exists("r1_SN1_20261125T010000Z.tar.gz"))
        #expect(bench.lines.lines.contains { $0.contains("bundle failed on its own") && $0.contains(big) })
    }

    /// A url with a typo fails every bundle (404) and the uploader backs off (an hour here); the
    /// operator fixes agent.conf and reloads: the bundles go at once, not after the backoff. A
    /// reload that keeps the outbox keeps its instance (and its memory of the manifests).
    @Test func aReloadEndsTheBackoffSoAFixedURLSendsAtOnce() async throws {
        let bench = try ReloadBench()
        defer { bench.remove() }
        try bench.write(url: bench.nginx.url("/care/bundels/"))
        let runtime = try await bench.start()
        let before = await runtime.outbox
        let deadline = ContinuousClock.now + .seconds(5)
        while !bench.nginx.accessLog.contains("bundels/\(bench.name)") && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(await AgentStatus(runtime: runtime).upload?.nextAttempt != nil, "backing off")
        try bench.write(url: bench.nginx.bundlesURL)
        #expect(await runtime.reload() == nil)
        #expect(await runtime.outbox === before)
        #expect(try await bench.sent(), "the fixed url waited for the backoff")
        await bench.stop()
    }

    /// Upload off (no url), then turned on by a reload: the bundles go at once, not after the
    /// interval the uploader was sleeping for.
    @Test func aReloadThatTurnsUploadOnSendsAtOnce() async throws {
        let bench = try ReloadBench()
        defer { bench.remove() }
        try bench.write(url: nil)
        let runtime = try await bench.start()
        // The first pass (no url) happens at once; then the uploader sleeps for the interval.
        try await Task.sleep(for: .milliseconds(500))
        try bench.write(url: bench.nginx.bundlesURL)
        #expect(await runtime.reload() == nil)
        #expect(try await bench.sent(), "the reload waited for the old interval")
        await bench.stop()
    }

    /// An agent.conf rewritten between reloads (interval and backoff an hour: only a reload or a
    /// wake sends), one bundle in the outbox, nginx, and the uploader running on them.
    final class ReloadBench: @unchecked Sendable {
        let dir: URL
        let nginx: NginxHarness
        let conf: String
        let outbox: String
        let name = "r1_SN1_20261125T010000Z.tar.gz"
        let data = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0) })
        var loop: Task<Void, any Error>?

        init() throws {
            dir = try TestProfiles.temporaryDirectory()
            nginx = try NginxHarness(directory: dir)
            conf = dir.appendingPathComponent("agent.conf").path
            outbox = dir.path + "/outbox"
            try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: outbox + "/" + name))
        }

        func write(url: String?) throws {
            try """
            [agent]
            outbox = \(outbox)
            state-directory = \(dir.path)/state
            [upload]
            \(url.map { "url = \($0)" } ?? "")
            ca-file = \(nginx.certificates.caCertificate)
            interval = 1h
            retry-backoff = 1h
            """.write(toFile: conf, atomically: true, encoding: .utf8)
        }

        /// The runtime on agent.conf as written, with its uploader running.
        func start() async throws -> AgentRuntime {
            let runtime = try AgentRuntime(configuration: try AgentConfiguration.load(path: conf), configurationPath: conf, logger: makeTestLogger(),
                                           makeSink: { [dir] _ in DirectorySink(root: dir.path + "/out") })
            loop = Task { try await Uploader(runtime: runtime, logger: makeTestLogger()).loop() }
            return runtime
        }

        /// Whether nginx received the bundle within 5 s.
        func sent() async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(5)
            while FileManager.default.fileExists(atPath: outbox + "/" + name) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            return FileManager.default.contents(atPath: nginx.received(name)) == data
        }

        /// The uploader stopped and finished.
        func stop() async {
            loop?.cancel()
            _ = try? await loop?.value
        }

        func remove() {
            loop?.cancel()
            nginx.stop()
            try? FileManager.default.removeItem(at: dir)
        }
    }

    @Test func aFinishedCollectionWakesTheUploader() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        var settings = UploadSettings(nginx: nginx)
        settings.interval = .seconds(3600)
        let bench = try UploadBench(dir: dir, upload: settings)
        let loop = Task { try await bench.uploader.loop() }
        defer { loop.cancel() }
        // The first (empty) scan happens at once; then the uploader sleeps for an hour.
        try await Task.sleep(for: .milliseconds(300))
        let data = try bench.addBundle("r1_SN1_20261125T010000Z.tar.gz")
        try await Task.sleep(for: .milliseconds(500))
        #expect(bench.exists("r1_SN1_20261125T010000Z.tar.gz"), "sent without a wake-up: the test proves nothing")
        _ = await bench.runtime.collect([], trigger: .request)
        let deadline = ContinuousClock.now + .seconds(5)
        while bench.exists("r1_SN1_20261125T010000Z.tar.gz") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(FileManager.default.contents(atPath: nginx.received("r1_SN1_20261125T010000Z.tar.gz")) == data)
        loop.cancel()
        _ = try? await loop.value
    }
}

extension UploadBench {
    /// The same bench with an uploader seeing `environment` (for $CREDENTIALS_DIRECTORY).
    init(copy: UploadBench, environment: [String: String]) {
        dir = copy.dir
        outbox = copy.outbox
        runtime = copy.runtime
        let lines = copy.lines
        uploader = Uploader(runtime: copy.runtime, logger: Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) },
                            environment: environment)
        self.lines = copy.lines
    }
}

/// glibc's `setfsuid` (in <sys/fsuid.h>, which the Glibc module does not bring).
@_silgen_name("setfsuid") private func setfsuid(_ uid: UInt32) -> Int32

@Suite struct UploadFailureScopeTests {
    /// A bundle the agent may not read is skipped, never set aside: it is fine, its owner is not.
    @Test func permissionIsNotTheBundlesFault() {
        #expect(FailureScope.ofUnreadable(errno: EACCES) == .permission)
        #expect(FailureScope.ofUnreadable(errno: EPERM) == .permission)
        #expect(FailureScope.ofUnreadable(errno: EIO) == .bundle)
        #expect(FailureScope.ofUnreadable(errno: ENOENT) == .bundle)
    }

    /// The bundle's read says why it failed: a bundle the service's user may not open (an
    /// operator's own `collect now --standalone` wrote it, 0640 to their group) is a permission
    /// problem, skipped, not a damaged bundle set aside after five passes. The read runs as
    /// another file-system user on a thread of its own (`setfsuid` is per thread, and drops
    /// root's file capabilities with it).
    @Test func aBundleTheAgentMayNotOpenIsAPermissionProblem() throws {
        let dir = "/tmp/care-agent-upload-read-\(getpid())"
        mkdir(dir, 0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let path = dir + "/r1-X-20261206-010000.tar.gz"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]))
        let good = try Uploader.read(path)
        #expect(good.size == 200_000)
        #expect(good.digest == SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined())

        let result = Mutex<Result<(size: Int64, digest: String), UploadError>?>(nil)
        let thread = Thread {
            _ = setfsuid(65534)
            defer { _ = setfsuid(0) }
            result.withLock { $0 = Result { () throws(UploadError) in try Uploader.read(path) } }
        }
        thread.start()
        while result.withLock({ $0 == nil }) { usleep(1000) }
        guard case let .failure(error)? = result.withLock({ $0 }) else {
            Issue.record("another user read a 0600 bundle of root's")
            return
        }
        #expect(error.errno == EACCES)
        #expect(error.description == "cannot read \(path): Permission denied")
        #expect(FailureScope.ofUnreadable(errno: error.errno!) == .permission)
        // A bundle that is not there (removed meanwhile) is no permission problem.
        #expect(throws: UploadError("cannot read \(dir)/gone.tar.gz: No such file or directory", errno: ENOENT)) {
            try Uploader.read(dir + "/gone.tar.gz")
        }
    }
}

@Suite struct UploadConfigurationTests {
    func parse(_ text: String) throws -> AgentConfiguration {
        try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text))
    }

    @Test func readsEveryKeyAndKeepsTheDefaults() throws {
        let off = try parse("[agent]\noutbox = /tmp/o\n")
        #expect(off.upload == UploadSettings())
        #expect(off.upload.url == nil && off.upload.interval == .seconds(60) && off.upload.timeout == .seconds(120))
        #expect(off.upload.retryBackoff == .seconds(30) && off.upload.maxBackoff == .seconds(3600) && off.upload.keepSent == false)
        let on = try parse("""
        [upload]
        url = https://support.example.net/care/bundles
        ca-file = /etc/care-agent/support-ca.pem
        client-certificate = /etc/care-agent/client.pem
        client-key = /etc/care-agent/client.key
        token-credential = upload-token
        proxy = http://proxy:3128
        interval = 2m
        timeout = 30s
        retry-backoff = 10s
        max-backoff = 30m
        keep-sent = yes
        """)
        var expected = UploadSettings(url: "https://support.example.net/care/bundles/")
        expected.caFile = "/etc/care-agent/support-ca.pem"
        expected.clientCertificate = "/etc/care-agent/client.pem"
        expected.clientKey = "/etc/care-agent/client.key"
        expected.tokenCredential = "upload-token"
        expected.proxy = "http://proxy:3128"
        expected.interval = .seconds(120)
        expected.timeout = .seconds(30)
        expected.retryBackoff = .seconds(10)
        expected.maxBackoff = .seconds(1800)
        expected.keepSent = true
        #expect(on.upload == expected)
        #expect(try parse("[upload]\nurl =\n").upload.url == nil)
    }

    @Test func theExampleDocumentsTheDefaults() throws {
        let path = Fixtures.packageRoot.appendingPathComponent("agent.conf.example").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // Every key is in the example, and the values it sets are the built-in ones.
        for key in ["url", "ca-file", "client-certificate", "client-key", "token-file", "token-credential", "proxy", "proxy-credentials-file",
                    "interval", "timeout", "retry-backoff", "max-backoff", "keep-sent"] {
            #expect(text.contains("\n\(key) = ") || text.contains("\n# \(key) = "), "\(key) is not documented")
        }
        #expect(try AgentConfiguration.load(path: path).upload == UploadSettings())
    }

    @Test func brokenValuesAreReportedAtTheirPlace() throws {
        func error(_ text: String) -> String {
            do { _ = try parse(text); return "no error" } catch { return "\(error)" }
        }
        #expect(error("[upload]\nurl = https://x/\ninterval = soon\n")
            == "agent.conf:3:12: expected a duration such as 30s, 5m, 6h or 1d, found \"soon\"")
        #expect(error("[upload]\nurl = ftp://x/\n").hasPrefix("agent.conf:2:7: expected an https:// URL"))
        #expect(error("[upload]\nurl = https://x/\ntoken = abc\n").hasPrefix("agent.conf:3:1: clear-text secrets are refused"))
        #expect(error("[upload]\nkeep-sent = maybe\n") == "agent.conf:2:13: expected yes or no, found \"maybe\"")
        #expect(error("[upload]\nretry-backoff = 0s\n").hasPrefix("agent.conf:2:17: expected a duration above zero"))
        #expect(error("[upload]\nproxy = http://\n").hasPrefix("agent.conf:2:9: expected a proxy"))
        // A password in the proxy url: refused like a token, and not repeated in the message.
        let secret = error("[upload]\nproxy = http://ops:Hunter2@proxy.example.net:3128\n")
        #expect(secret.hasPrefix("agent.conf:2:1: clear-text secrets are refused") && secret.contains("proxy-credentials-file") && !secret.contains("Hunter2"), "\(secret)")
        #expect(!error("[upload]\nproxy = http://ops:Hunter2@[bad\n").contains("Hunter2"))
        #expect(try parse("[upload]\nproxy = http://proxy:3128\nproxy-credentials-file = /etc/care-agent/proxy\n").upload.proxyCredentialsFile == "/etc/care-agent/proxy")
        #expect(error("[upload]\nuploads = 1\n").hasPrefix("agent.conf:2:1: unknown key \"uploads\" in [upload]"))
        #expect(error("[upload]\nurl = https://x/\nclient-key = /k\n") == "agent.conf:3:1: client-key needs client-certificate as well")
        #expect(error("[upload x]\n").hasPrefix("agent.conf:1:9: expected \"]\""))
    }
}

/// `ca-file` replaces the system CA store. libcurl also trusted its built-in directory
/// (/etc/ssl/certs) beside the file: a TLS-inspecting proxy's CA, or any public CA, still got the
/// token and the bundles. The service runs in its own mount namespace with /etc/ssl/certs holding
/// only the test server's CA: without `ca-file` it uploads (the premise), with a `ca-file` naming
/// another CA it must not.
@Suite(.serialized) struct UploadTrustTests {
    func run(caFile: String?, in dir: URL, nginx: NginxHarness, systemStore: String) throws -> Bool {
        let outbox = dir.appendingPathComponent("outbox-\(caFile == nil ? "system" : "file")").path
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        let name = "r1_SN1_2026112\(caFile == nil ? 5 : 6)T010000Z.tar.gz"
        try Data(repeating: 7, count: 10_000).write(to: URL(fileURLWithPath: outbox + "/" + name))
        let tag = caFile == nil ? "system" : "file"
        let conf = dir.appendingPathComponent("agent-\(tag).conf").path
        try """
        [agent]
        outbox = \(outbox)
        state-directory = \(dir.path)/state-\(tag)
        runtime-directory = \(dir.path)/run-\(tag)
        [upload]
        url = \(nginx.bundlesURL)
        \(caFile.map { "ca-file = \($0)" } ?? "")
        interval = 1h
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let script = "mount --bind \(systemStore) /etc/ssl/certs && exec \(try careAgentExecutable()) run --config \(conf)"
        let service = try ChildProcess("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script],
                                       stderr: dir.appendingPathComponent("service-\(tag).log").path)
        defer { if service.isRunning { service.signal(SIGTERM); service.wait() } }
        let deadline = ContinuousClock.now + .seconds(4)
        while FileManager.default.fileExists(atPath: outbox + "/" + name) && ContinuousClock.now < deadline { usleep(50_000) }
        let sent = FileManager.default.fileExists(atPath: nginx.received(name))
        if !sent { print("service-\(tag).log: " + ((try? String(contentsOfFile: dir.appendingPathComponent("service-\(tag).log").path, encoding: .utf8)) ?? "")) }
        return sent
    }

    @Test func aCAFileReplacesTheSystemStore() throws {
        try #require(getuid() == 0, "needs root for a mount namespace (CI runs as root)")
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        // The "system store": the test server's CA under its hash name, as update-ca-certificates lays it out.
        let store = dir.appendingPathComponent("system-certs").path
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: nginx.certificates.caCertificate, toPath: store + "/test-ca.pem")
        try FileManager.default.copyItem(atPath: nginx.certificates.caCertificate, toPath: store + "/ca-certificates.crt")
        try runProgram("/usr/bin/openssl", ["rehash", store])
        let other = try TestCertificates(in: dir, prefix: "other-")
        #expect(try run(caFile: nil, in: dir, nginx: nginx, systemStore: store), "the premise: the system store alone lets the upload through")
        #expect(try !run(caFile: other.caCertificate, in: dir, nginx: nginx, systemStore: store), "ca-file names another CA: nothing may be sent")
    }
}

/// `care-agent run` with `[upload]`: the service sends what is in the outbox, shows it in `status`,
/// and stops promptly on SIGTERM although the uploader is waiting for its next scan.
@Suite(.serialized) struct UploadServiceTests {
    @Test func theRunningServiceUploadsAndStopsPromptly() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let nginx = try NginxHarness(directory: dir)
        defer { nginx.stop() }
        let outbox = dir.appendingPathComponent("outbox").path
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
        let name = "r1_SN1_20261125T010000Z.tar.gz"
        let data = Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try data.write(to: URL(fileURLWithPath: outbox + "/" + name))
        let conf = dir.appendingPathComponent("agent.conf").path
        try """
        [agent]
        outbox = \(outbox)
        state-directory = \(dir.path)/state
        runtime-directory = \(dir.path)/run
        [upload]
        url = \(nginx.bundlesURL)
        ca-file = \(nginx.certificates.caCertificate)
        interval = 1h
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf], stderr: dir.appendingPathComponent("service.log").path)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        let deadline = ContinuousClock.now + .seconds(8)
        while FileManager.default.fileExists(atPath: outbox + "/" + name) && ContinuousClock.now < deadline { usleep(50_000) }
        #expect(FileManager.default.contents(atPath: nginx.received(name)) == data)
        #expect(!FileManager.default.fileExists(atPath: outbox + "/" + name))

        let out = dir.appendingPathComponent("status.out").path
        let status = try ChildProcess(try careAgentExecutable(), ["status", "--socket", "\(dir.path)/run/control.sock"], stdout: out)
        #expect(status.wait() == 0)
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(text.contains("upload: to \(nginx.bundlesURL), last success 20"), "\(text)")
        // The metrics file follows within a few seconds (outbox scans for it are spaced out).
        func metrics() -> String { (try? String(contentsOfFile: "\(dir.path)/state/metrics.prom", encoding: .utf8)) ?? "" }
        let written = ContinuousClock.now + .seconds(8)
        while !metrics().contains("care_agent_uploads_total{result=\"ok\"} 1\n") && ContinuousClock.now < written { usleep(100_000) }
        #expect(metrics().contains("care_agent_uploads_total{result=\"ok\"} 1\n"))
        #expect(metrics().contains("care_agent_outbox_bundles 0\n"), "\(metrics())")

        let stopping = ContinuousClock.now
        service.signal(SIGTERM)
        #expect(service.wait() == 0)
        #expect(ContinuousClock.now - stopping < .seconds(5))
    }
}
