@testable import Agent
@testable import Bundle
import Foundation
import Junos
import Testing
import TestSupport

extension SampleBundles {
    /// A valid bundle of a few MB (a large extra reply), written into `directory`; its upload
    /// takes seconds at a limited rate.
    static func large(device: String, into directory: String) throws -> (name: String, path: String, id: UUID) {
        var contents = try contents(device: device, started: started.addingTimeInterval(3600 * 5))
        var rng = SystemRandomNumberGenerator()
        let body = (0..<3_000_000).map { _ in "0123456789abcdef".randomElement(using: &rng)! }
        contents.rawReplies.append(RawReply(rpc: "get-large-output", bytes: Array("<rpc-reply><output>\(String(body))</output></rpc-reply>".utf8)))
        contents.outcomes.append(RPCOutcome(rpc: "get-large-output", status: .ok, durationSeconds: 1))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let url = try BundleWriter(directory: URL(fileURLWithPath: directory), key: agentKey).write(contents)
        return (url.lastPathComponent, url.path, contents.bundleId)
    }
}

extension IntakeHarness {
    /// curl PUTting `file` as the agent does, at `rate` (e.g. "300k"), to `port` (default: this intake's).
    func curl(_ file: String, name: String, rate: String? = nil, port: Int? = nil, output: String) throws -> ChildProcess {
        var arguments = ["-sS", "--cacert", certificates.caCertificate, "-T", file, "-H", "Authorization: Bearer \(token)",
                         "-H", "Content-Type: application/gzip", "-H", "Expect:", "-o", output + ".body", "-w", "%{http_code}",
                         "https://127.0.0.1:\(port ?? self.port)/bundles/\(name)"]
        if let rate { arguments = ["--limit-rate", rate] + arguments }
        return try ChildProcess("/usr/bin/curl", arguments, stdout: output, stderr: output + ".err")
    }

    func incomingFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: storeDirectory + "/incoming")) ?? []).sorted()
    }

    func storedFiles() -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: storeDirectory + "/bundles")) ?? []).filter { $0.hasSuffix(".tar.gz") }
    }

    /// Waits until an upload's temporary file has grown past `bytes`.
    func waitForPartialUpload(bytes: Int = 200_000) throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            for name in incomingFiles() {
                let size = (try? FileManager.default.attributesOfItem(atPath: storeDirectory + "/incoming/" + name)[.size] as? Int) ?? 0
                if size > bytes { return }
            }
            usleep(50_000)
        }
        throw HarnessError("no upload in progress in \(storeDirectory)/incoming")
    }
}

@Suite(.serialized) struct IntakeRobustnessTests {
    /// kill -9 of the intake in the middle of a body: nothing is visible, and the agent's retry
    /// stores the bundle whole.
    @Test func killedMidUploadLeavesNothingVisibleAndTheRetryCompletes() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        let big = try SampleBundles.large(device: "r1", into: intake.dir.path + "/side")
        let curl = try intake.curl(big.path, name: big.name, rate: "400k", output: intake.dir.path + "/curl1")
        try intake.waitForPartialUpload()
        intake.stop(signal: SIGKILL)
        curl.wait()
        #expect(intake.storedFiles().isEmpty)

        try intake.start()
        #expect(try intake.json("bundles", "--customer", "ACME").isEmpty)
        try FileManager.default.copyItem(atPath: big.path, toPath: intake.outbox + "/" + big.name)
        #expect(await intake.pass().outcomes == [big.name: .accepted(status: 201)])
        #expect(try intake.json("bundles", "--customer", "ACME").compactMap { $0["id"] as? String } == [big.id.uuidString])
        #expect(intake.storedFiles().count == 1)
    }

    /// Verification inflates and hashes a bundle a piece at a time: a bundle whose raw reply
    /// unpacks to 256 MiB (a few hundred kilobytes on the wire) is stored, and the intake's peak
    /// memory stays far below that, also while reports read it; holding the archive and its
    /// members whole took twice that.
    @Test func aBundleThatUnpacksLargeIsVerifiedWithoutBeingHeldUnpacked() async throws {
        let intake = try await IntakeHarness(extraStore: "\n[reports]\ndata-directory = \(NotifyTests.data)\n")
        defer { intake.close() }
        try intake.start()
        var contents = try SampleBundles.contents(device: "r1", started: SampleBundles.started.addingTimeInterval(3600))
        contents.rawReplies.append(RawReply(rpc: "get-large-output", bytes: [UInt8](repeating: UInt8(ascii: "a"), count: 256 << 20)))
        contents.outcomes.append(RPCOutcome(rpc: "get-large-output", status: .ok, durationSeconds: 1))
        let url = try BundleWriter(directory: URL(fileURLWithPath: intake.outbox), key: SampleBundles.agentKey).write(contents)
        #expect(await intake.pass().outcomes == [url.lastPathComponent: .accepted(status: 201)])
        #expect(intake.storedFiles().count == 1)
        // The reports read it the same way: facts and the configuration reply, not the rest.
        let read = String(try intake.cli("token", "create", "ACME", "--read").split(separator: "\n").last!)
        #expect(try intake.get("/customers/ACME/reports/bugs", token: read).status == 200)
        #expect(try intake.get("/customers/ACME/reports/health", token: read).status == 200)
        let status = try String(contentsOfFile: "/proc/\(try #require(intake.server).pid)/status", encoding: .utf8)
        let peak = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[1]) } ?? Int.max
        print("care-support serve peak RSS after a 256 MiB bundle: \(peak) kB")
        #expect(peak < 128 << 10, "peak RSS \(peak) kB")
    }

    /// The intake dying at each step of storing (body received, file placed, row committed):
    /// no partial bundle is ever visible, and the agent's retry completes the bundle, stored once.
    @Test(arguments: ["received", "placed", "committed"])
    func aCrashAtAnyStepOfStoringLeavesNothingPartialAndTheRetryCompletes(step: String) async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start(environment: ["CARE_SUPPORT_CRASH_AT": step])
        let bundle = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        let crashed = await intake.pass()
        guard case .failed? = crashed.outcomes[bundle.name] else {
            Issue.record("\(step): \(String(describing: crashed.outcomes[bundle.name]))"); return
        }
        intake.stop()
        let visible = try intake.json("bundles", "--customer", "ACME")
        // Only a committed row is visible, and then its file is there whole.
        #expect(visible.count == (step == "committed" ? 1 : 0))
        #expect(intake.storedFiles().count == (step == "received" ? 0 : 1))

        try intake.start()
        let retried = await intake.pass()
        #expect(retried.outcomes == [bundle.name: .accepted(status: step == "committed" ? 200 : 201)])
        #expect(try intake.json("bundles", "--customer", "ACME").count == 1)
        #expect(intake.storedFiles().count == 1)
        let copy = intake.dir.path + "/copy.tar.gz"
        try intake.cli("bundle", "get", bundle.id.uuidString, "-o", copy)
        #expect(FileManager.default.contents(atPath: copy) == bundle.bytes)
    }

    /// The client going away mid-body: the temporary file goes, nothing is stored, the intake
    /// carries on.
    @Test func aConnectionCutMidUploadStoresNothing() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        let big = try SampleBundles.large(device: "r1", into: intake.dir.path + "/side")
        let curl = try intake.curl(big.path, name: big.name, rate: "400k", output: intake.dir.path + "/curl1")
        try intake.waitForPartialUpload()
        curl.signal(SIGKILL)
        curl.wait()
        let deadline = ContinuousClock.now + .seconds(10)
        while !intake.incomingFiles().isEmpty && ContinuousClock.now < deadline { usleep(50_000) }
        #expect(intake.incomingFiles().isEmpty)
        #expect(intake.storedFiles().isEmpty)
        let next = try SampleBundles.write(device: "r2", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes == [next.name: .accepted(status: 201)])
    }

    /// `idle-timeout`: a client that connects and says nothing (no TLS handshake), and an upload
    /// whose sender stops mid-body (an agent's link dying: curl stopped), are closed once silent
    /// that long; the stalled upload's temporary file goes with it, and the intake carries on.
    @Test func silentConnectionsAndStalledUploadsAreClosed() async throws {
        let intake = try await IntakeHarness(extraServer: "idle-timeout = 2s")
        defer { intake.close() }
        try intake.start()
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(intake.port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(silent, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        let big = try SampleBundles.large(device: "r1", into: intake.dir.path + "/side")
        let curl = try intake.curl(big.path, name: big.name, rate: "400k", output: intake.dir.path + "/curl1")
        try intake.waitForPartialUpload()
        curl.signal(SIGSTOP)
        defer { curl.signal(SIGKILL); curl.signal(SIGCONT); curl.wait() }
        let started = ContinuousClock.now
        // The silent client: the intake closes it (end of stream or a reset) within the timeout.
        var pollFD = pollfd(fd: silent, events: Int16(POLLIN), revents: 0)
        #expect(poll(&pollFD, 1, 8000) == 1, "the silent connection is still open after 8 s")
        var byte: UInt8 = 0
        let received = recv(silent, &byte, 1, Int32(MSG_DONTWAIT))
        let error = errno
        #expect(received == 0 || (received < 0 && error != EAGAIN), "the silent connection is still open")
        #expect(ContinuousClock.now - started < .seconds(6))
        // The stalled upload: its temporary file is removed, nothing is stored.
        let deadline = ContinuousClock.now + .seconds(8)
        while !intake.incomingFiles().isEmpty && ContinuousClock.now < deadline { usleep(50_000) }
        #expect(intake.incomingFiles().isEmpty, "\(intake.incomingFiles())")
        #expect(intake.storedFiles().isEmpty)
        let next = try SampleBundles.write(device: "r2", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes == [next.name: .accepted(status: 201)])
    }

    @Test func uploadsGoThroughTinyproxy() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        let proxy = try TinyproxyHarness(directory: intake.dir, connectPort: intake.port)
        defer { proxy.stop() }
        intake.upload.proxy = proxy.url
        let bundle = try SampleBundles.write(device: "r1", minutesAfter: 0, into: intake.outbox)
        #expect(await intake.pass().outcomes == [bundle.name: .accepted(status: 201)])
        #expect(proxy.log.contains("CONNECT"))
    }

    /// Two intake processes sharing one PostgreSQL database (and the bundle directory), each
    /// bundle sent to both at the same moment, several bundles at once: each stored once, one
    /// 201 and one 200 per bundle.
    @Test func twoIntakesOnOnePostgreSQLStoreEachBundleOnce() async throws {
        let postgres = try PostgresHarness.shared.get()
        let intake = try await IntakeHarness(database: try postgres.createDatabase())
        defer { intake.close() }
        try intake.start()
        let secondPort = try SSHDHarness.freePort(on: "127.0.0.1")
        let secondConfig = intake.dir.path + "/support2.conf"
        try String(contentsOfFile: intake.configPath, encoding: .utf8)
            .replacingOccurrences(of: "listen = 127.0.0.1:\(intake.port)", with: "listen = 127.0.0.1:\(secondPort)")
            .write(toFile: secondConfig, atomically: true, encoding: .utf8)
        let second = try ChildProcess(intake.executable, ["serve", "--config", secondConfig],
                                      stdout: intake.dir.path + "/serve2.out", stderr: intake.dir.path + "/serve2.err")
        defer { second.signal(SIGKILL); second.wait() }
        try waitForListener(port: secondPort, timeout: .seconds(20), process: second, name: "second care-support serve")

        let side = intake.dir.path + "/side"
        let bundles = try (0..<6).map { try SampleBundles.write(device: "r\($0)", minutesAfter: Double($0), into: side) }
        var uploads: [(String, ChildProcess, String)] = []
        for (index, bundle) in bundles.enumerated() {
            for port in [intake.port, secondPort] {
                let output = intake.dir.path + "/curl-\(index)-\(port)"
                uploads.append((bundle.name, try intake.curl(side + "/" + bundle.name, name: bundle.name, port: port, output: output), output))
            }
        }
        var statuses: [String: [String]] = [:]
        for (name, process, output) in uploads {
            process.wait()
            statuses[name, default: []].append((try? String(contentsOfFile: output, encoding: .utf8)) ?? "?")
        }
        for bundle in bundles {
            #expect(statuses[bundle.name]?.sorted() == ["200", "201"], "\(bundle.name): \(statuses[bundle.name] ?? [])")
        }
        let stored = try intake.json("bundles", "--customer", "ACME").compactMap { $0["id"] as? String }
        #expect(stored.sorted() == bundles.map { $0.id.uuidString }.sorted())
        #expect(intake.storedFiles().count == 6)
        #expect(try intake.json("devices", "--customer", "ACME").count == 6)
    }
}
