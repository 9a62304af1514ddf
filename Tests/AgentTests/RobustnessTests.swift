@testable import Agent
import Bundle
import Foundation
import Logging
import Testing
import TestSupport

/// A simulated MX480 on its own sshd, and an agent.conf text for devices on it.
struct SimulatedDevice {
    let sshd: SSHDHarness

    init(dir: URL, simulatorArguments: String = "") throws {
        let profile = try TestProfiles.write(fullProfile, named: "mx480-\(UUID().uuidString.prefix(4))", under: dir)
        sshd = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) \(simulatorArguments)"))
    }

    func configuration(_ devices: [String], agent: String = "", defaults: String = "") throws -> AgentConfiguration {
        try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text(devices, agent: agent, defaults: defaults)))
    }

    func text(_ devices: [String], agent: String = "", defaults: String = "") -> String {
        var text = """
        [agent]
        \(agent)
        [defaults]
        user = \(sshd.user)
        key-file = \(sshd.clientKeys["ed25519"]!)
        known-hosts = \(sshd.knownHostsPath)
        \(defaults)

        """
        for device in devices { text += "[device \(device)]\nhost = \(sshd.addresses[0])\nport = \(sshd.port)\n" }
        return text
    }

    func stop() { sshd.stop() }
}

/// A bundle that cannot be written makes the device's collection a failure everywhere it shows.
@Suite(.serialized) struct StoreFailureTests {
    @Test func aCollectionWhoseBundleCannotBeWrittenIsFailedInStatusAndMetrics() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = try SimulatedDevice(dir: dir)
        defer { device.stop() }
        // An outbox under a regular file: mkdir fails with ENOTDIR, for root too.
        let blocker = dir.appendingPathComponent("not-a-directory").path
        FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        var config = try device.configuration(["r1"], defaults: "skip = configuration, storage, coreDumps")
        config.agent.outbox = blocker + "/outbox"
        config.agent.stateDirectory = dir.appendingPathComponent("state").path
        let key = try AgentKey.loadOrCreate(stateDirectory: dir)
        let runtime = try AgentRuntime(configuration: config, configurationPath: nil, logger: Logger.test, makeSink: {
            BundleSink(outbox: $0.agent.outbox, key: key, agent: AgentIdentity(id: "t", version: "t"))
        })
        let result = try #require(await runtime.collect(config.devices, trigger: .request).first)
        #expect(result.status == .failed)
        #expect(result.failureKind == .notStored)
        #expect(result.reason?.hasPrefix("not stored: mkdir \(blocker): Not a directory") == true, "\(result.reason ?? "")")
        // What the device answered is kept: the facts were collected, only the bundle is missing.
        #expect(result.reason?.contains("(collected ok)") == true)
        #expect(result.facts.software?.model == "mx480")

        let status = await AgentStatus(runtime: runtime)
        #expect(status.results.map(\.status) == [.failed])
        #expect(status.results.first?.failure == .notStored)
        let metrics = await runtime.metrics.render(outboxDepth: 0)
        #expect(metrics.contains("care_agent_collections_total{group=\"default\",result=\"failed\"} 1\n"))
        #expect(metrics.contains("care_agent_collections_total{group=\"default\",result=\"ok\"} 0\n"))
        #expect(metrics.contains("care_agent_collection_failures_total{group=\"default\",cause=\"not-stored\"} 1\n"))
    }

    @Test func collectNowStandaloneExitsNonZeroWhenNothingCouldBeStored() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = try SimulatedDevice(dir: dir)
        defer { device.stop() }
        let h = device.sshd
        let inventory = dir.appendingPathComponent("inventory.csv").path
        try "name,host,port\nr1,\(h.addresses[0]),\(h.port)\n".write(toFile: inventory, atomically: true, encoding: .utf8)
        let blocker = dir.appendingPathComponent("not-a-directory").path
        FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        let common = ["collect", "now", "--standalone", "--inventory", inventory, "--user", h.user, "--key", h.clientKeys["ed25519"]!,
                      "--known-hosts", h.knownHostsPath, "--state", dir.appendingPathComponent("state").path, "--out", blocker + "/outbox"]
        let text = try CollectCommandTests().careAgent(common, in: dir)
        #expect(text.status == 1, "\(text.stdout)\(text.stderr)")
        #expect(text.stdout.contains("1 devices: 0 ok, 0 partial, 1 failed"), "\(text.stdout)")
        #expect(text.stdout.contains("  FAILED r1 (\(h.addresses[0]):\(h.port)): not stored: mkdir \(blocker): Not a directory"), "\(text.stdout)")
        let json = try CollectCommandTests().careAgent(common + ["--json"], in: dir)
        #expect(json.status == 1)
        let summaries = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(summaries?.first?["status"] as? String == "failed")
        #expect(summaries?.first?["failure"] as? String == "not-stored")
    }
}
