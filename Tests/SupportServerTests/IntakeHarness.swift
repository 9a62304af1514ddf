@testable import Agent
@testable import Bundle
import Foundation
import Junos
import Logging
import Testing
import TestSupport

/// The built executable `name` next to the test bundle in the build directory.
func builtExecutable(_ name: String) throws -> String {
    var candidates: [URL] = []
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        candidates.append(dir.appendingPathComponent(name))
        dir = dir.deletingLastPathComponent()
    }
    candidates.append(Fixtures.packageRoot.appendingPathComponent(".build/debug/\(name)"))
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
        return candidate.path
    }
    throw HarnessError("\(name) executable not found (looked in \(candidates.map(\.path))); run `swift build` first")
}

/// Bundles as a real agent writes them, from captured replies of an MX480.
enum SampleBundles {
    static let agentKey = try! AgentKey(rawRepresentation: [UInt8](repeating: 7, count: 32))
    static let strangerKey = try! AgentKey(rawRepresentation: [UInt8](repeating: 9, count: 32))
    static let otherKey = try! AgentKey(rawRepresentation: [UInt8](repeating: 11, count: 32))
    static let started = Date(timeIntervalSince1970: 1_764_036_000.25)

    static let mx480Software = "get-software-information/pyez__mx480-dual-re-15.1F5.xml"

    static func contents(device: String, started: Date, software: String = mx480Software) throws -> BundleContents {
        let raw = [
            // A fixture's path, or an absolute path (a test's own variant of one).
            RawReply(rpc: "get-software-information", bytes: software.hasPrefix("/") ? Array(try Data(contentsOf: URL(fileURLWithPath: software)))
                                                                                       : try Fixtures.bytes(software)),
            RawReply(rpc: "get-chassis-inventory", bytes: try Fixtures.bytes("get-chassis-inventory/pyez__mx480-15.1F5-mpc-optics.xml")),
        ]
        let facts = DeviceFacts.parsed(from: raw)
        var outcomes = raw.map { RPCOutcome(rpc: $0.rpc, status: .ok, durationSeconds: 0.4) }
        outcomes.append(RPCOutcome(rpc: "get-system-core-dumps", status: .timeout, message: "no reply within 60 s", durationSeconds: 60))
        return BundleContents(
            agent: AgentIdentity(id: "agent-acme-1", version: "0.1.0"),
            device: DeviceIdentity(name: device, address: "192.0.2.10:830", hostname: facts.software?.hostname,
                                   chassisSerial: facts.inventory?.chassisSerial, model: facts.software?.model),
            trigger: .scheduled, started: started, finished: started.addingTimeInterval(61),
            outcomes: outcomes, rawReplies: raw, facts: facts, log: "collected\n")
    }

    /// Writes a bundle into `outbox` as the agent does; returns its file name and bytes.
    @discardableResult
    static func write(device: String, minutesAfter minutes: Double, into outbox: String, key: AgentKey = agentKey,
                      software: String = mx480Software) throws -> (name: String, bytes: Data, id: UUID) {
        let contents = try contents(device: device, started: started.addingTimeInterval(minutes * 60), software: software)
        let url = try BundleWriter(directory: URL(fileURLWithPath: outbox), key: key).write(contents)
        return (url.lastPathComponent, try Data(contentsOf: url), contents.bundleId)
    }

    /// A signed bundle with one member's bytes changed after signing (SHA-256 no longer matches).
    static func tampered(_ bytes: Data) throws -> Data {
        var members = try USTar.members(of: try Gzip.decompress(Array(bytes), limit: 1 << 30), limits: .init())
        let index = members.firstIndex { $0.name == "facts.json" }!
        members[index].bytes[10] ^= 0x20
        return Data(try Gzip.compress(try USTar.archive(members, modified: 0)))
    }
}

/// `care-support` on loopback: a test CA and server certificate, support.conf, the store in a
/// temporary directory, one customer (ACME) with a token and the sample agent key trusted; and
/// the agent's real uploader pointed at it.
final class IntakeHarness: @unchecked Sendable {
    let dir: URL
    let executable: String
    let certificates: TestCertificates
    let port: Int
    let configPath: String
    var token = ""
    var tokenId = ""
    var server: ChildProcess?
    let outbox: String
    let runtime: AgentRuntime
    let uploader: Uploader
    var upload: UploadSettings

    var storeDirectory: String { dir.path + "/store" }

    init(database: String? = nil, extraServer: String = "", extraStore: String = "") async throws {
        dir = try TestProfiles.temporaryDirectory()
        executable = try builtExecutable("care-support")
        certificates = try TestCertificates(in: dir)
        port = try SSHDHarness.freePort(on: "127.0.0.1")
        configPath = dir.path + "/support.conf"
        try """
            [server]
            listen = 127.0.0.1:\(port)
            tls-certificate = \(certificates.serverCertificate)
            tls-key = \(certificates.serverKey)
            \(extraServer)

            [store]
            directory = \(dir.path)/store
            \(database.map { "database = \($0)" } ?? "")
            \(extraStore)
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
        outbox = dir.path + "/outbox"
        try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)

        let tokenFile = dir.path + "/upload.token"
        upload = UploadSettings(url: "https://127.0.0.1:\(port)/bundles/")
        upload.caFile = certificates.caCertificate
        upload.tokenFile = tokenFile
        upload.timeout = .seconds(30)
        var configuration = AgentConfiguration()
        configuration.agent.outbox = outbox
        configuration.agent.stateDirectory = dir.path + "/state"
        configuration.upload = upload
        let logger = makeTestLogger()
        let root = dir.path + "/out"
        runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: logger,
                                   makeSink: { _ in DirectorySink(root: root) })
        uploader = Uploader(runtime: runtime, logger: logger)

        try cli("customer", "add", "ACME")
        let created = try cli("token", "create", "ACME").split(separator: "\n")
        token = String(created.last ?? "")
        tokenId = String(token.split(separator: ".").first ?? "")
        try cli("agent", "trust", "ACME", "--key", SampleBundles.agentKey.publicKey.base64)
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile, 0o600) // the uploader refuses a token file others can read
    }

    /// Runs `care-support ARGS --config support.conf`; returns its standard output.
    @discardableResult
    func cli(_ arguments: String...) throws -> String {
        try cli(arguments)
    }

    @discardableResult
    func cli(_ arguments: [String]) throws -> String {
        try runProgram(executable, arguments + ["--config", configPath])
    }

    func start(environment: [String: String] = [:]) throws {
        let process = try ChildProcess(executable, ["serve", "--config", configPath],
                                       stdout: dir.path + "/serve.out", stderr: dir.path + "/serve.err",
                                       environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        server = process
        do {
            try waitForListener(port: port, timeout: .seconds(20), process: process, name: "care-support serve")
        } catch {
            throw HarnessError("\(error): \(serverLog)")
        }
    }

    var serverLog: String { (try? String(contentsOfFile: dir.path + "/serve.err", encoding: .utf8)) ?? "" }

    func stop(signal: Int32 = SIGTERM) {
        guard let server else { return }
        server.signal(signal)
        let deadline = ContinuousClock.now + .seconds(10)
        while server.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        if server.isRunning { server.signal(SIGKILL) }
        server.wait()
        self.server = nil
    }

    func pass() async -> Uploader.Pass {
        await uploader.uploadPending(settings: upload, outbox: outbox)
    }

    func pending() -> [String] { FileOutbox(directory: outbox).pending().map(\.name) }

    func rejected() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: outbox + "/rejected")) ?? []).sorted()
    }

    func json(_ arguments: String...) throws -> [[String: Any]] {
        let output = try runProgram(executable, arguments + ["--json", "--config", configPath])
        return try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] ?? []
    }

    func close() {
        stop()
        try? FileManager.default.removeItem(at: dir)
    }
}
