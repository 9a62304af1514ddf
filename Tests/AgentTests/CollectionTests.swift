import Agent
import Bundle
import Foundation
import Logging
import NETCONF
import NETCONFSSH
import Testing
import TestSupport

/// Collections against real OpenSSH sshd instances running the simulator as their netconf
/// subsystem: healthy, hanging, answering rpc-errors, refusing the key, showing another host key.
@Suite(.serialized) struct CollectionTests {
    /// A simulated device on its own sshd.
    /// Collects one device (`r1`) serving `profile` behind real sshd; its result.
    func collectOnce(profile: String, dir: URL) async throws -> DeviceResult {
        let h = try SSHDHarness(SSHDHarness.Options(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let conf = """
        [defaults]
        user = \(h.user)
        key-file = \(h.clientKeys["ed25519"]!)
        known-hosts = \(h.knownHostsPath)
        [device r1]
        host = \(h.addresses[0])
        port = \(h.port)
        """
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let collector = try Collector(configuration: config, sink: DirectorySink(root: dir.appendingPathComponent("out").path), logger: Logger.test)
        return try #require(await collector.collect(config.devices, trigger: .standalone).first)
    }

    /// Each set-up stage has its own timeout; together they may not outlast the device timeout.
    /// A set-up slower than that (here: the connector waits 10 s before it even starts) ends at
    /// the device timeout, as a timeout, not after it.
    @Test func aSessionSetUpEndsAtTheDeviceTimeout() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try device(dir: dir)
        defer { h.stop() }
        let conf = """
        [defaults]
        user = \(h.user)
        key-file = \(h.clientKeys["ed25519"]!)
        known-hosts = \(h.knownHostsPath)
        device-timeout = 1500ms
        retries = 0
        [device r1]
        host = \(h.addresses[0])
        port = \(h.port)
        """
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let collector = try Collector(configuration: config, sink: DirectorySink(root: dir.appendingPathComponent("out").path), logger: Logger.test,
                                      connector: { endpoint, logger in
                                          try await Task.sleep(for: .seconds(10))
                                          return try await NETCONFClient.connect(to: endpoint, logger: logger)
                                      })
        let started = ContinuousClock.now
        let result = try #require(await collector.collect(config.devices, trigger: .standalone).first)
        #expect(started.duration(to: .now) < .seconds(4))
        #expect(result.status == .failed && result.failureKind == .timeout, "\(result.status) \(String(describing: result.failureKind)) \(result.reason ?? "")")
        #expect(result.reason?.contains("session set-up within the device timeout") == true, "\(result.reason ?? "")")
    }

    func device(_ simulatorArguments: String = "", dir: URL, password: Bool = false) throws -> SSHDHarness {
        let profile = try TestProfiles.write(fullProfile, named: "mx480-\(UUID().uuidString.prefix(4))", under: dir)
        var options = SSHDHarness.Options(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) \(simulatorArguments)")
        options.password = password
        return try SSHDHarness(options)
    }

    /// A known_hosts file with every harness' keys, and one where `changed`'s key is another key.
    func knownHosts(_ harnesses: [SSHDHarness], dir: URL) throws -> String {
        let text = try harnesses.map { try String(contentsOfFile: $0.knownHostsPath, encoding: .utf8) }.joined()
        let path = dir.appendingPathComponent("known_hosts").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func otherKey(dir: URL, name: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try runProgram("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path])
        return path
    }

    @Test func eachDeviceEndsWithItsOwnStatusAndHealthyOnesAreNotDelayed() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let healthy = try device("--latency-ms 20", dir: dir)
        let hung = try device("--fault hang", dir: dir)
        let failing = try device("--fault rpc-error", dir: dir)
        defer { healthy.stop(); hung.stop(); failing.stop() }
        let known = try knownHosts([healthy, hung, failing], dir: dir)
        // A known_hosts where the healthy device's entry is another server's key.
        let impostor = try otherKey(dir: dir, name: "impostor")
        let impostorPub = try String(contentsOfFile: impostor + ".pub", encoding: .utf8).split(separator: " ")
        let changed = dir.appendingPathComponent("known_hosts_changed").path
        try "[\(healthy.addresses[0])]:\(healthy.port) \(impostorPub[0]) \(impostorPub[1])\n".write(toFile: changed, atomically: true, encoding: .utf8)
        let strangerKey = try otherKey(dir: dir, name: "stranger")

        let conf = """
        [agent]
        concurrency = 10
        [defaults]
        user = \(healthy.user)
        known-hosts = \(known)
        connect-timeout = 10s
        rpc-timeout = 4s
        retries = 0
        [group healthy]
        key-file = \(healthy.clientKeys["ed25519"]!)
        [group hung]
        key-file = \(hung.clientKeys["ed25519"]!)
        [group failing]
        key-file = \(failing.clientKeys["ed25519"]!)
        [group stranger]
        key-file = \(strangerKey)
        [group changed]
        key-file = \(healthy.clientKeys["ed25519"]!)
        known-hosts = \(changed)
        [device healthy-1]
        host = \(healthy.addresses[0])
        port = \(healthy.port)
        group = healthy
        [device healthy-2]
        host = \(healthy.addresses[0])
        port = \(healthy.port)
        group = healthy
        [device hung]
        host = \(hung.addresses[0])
        port = \(hung.port)
        group = hung
        [device rpc-errors]
        host = \(failing.addresses[0])
        port = \(failing.port)
        group = failing
        [device wrong-key]
        host = \(healthy.addresses[0])
        port = \(healthy.port)
        group = stranger
        [device replaced]
        host = \(healthy.addresses[0])
        port = \(healthy.port)
        group = changed
        """
        let config = try AgentConfiguration(file: ConfigurationFile(path: dir.appendingPathComponent("agent.conf").path, text: conf))
        let out = dir.appendingPathComponent("out").path
        let collector = try Collector(configuration: config, sink: DirectorySink(root: out), logger: Logger.test)
        let started = ContinuousClock.now
        let results = await collector.collect(config.devices, trigger: .standalone)
        let elapsed = ContinuousClock.now - started
        let byName = Dictionary(uniqueKeysWithValues: results.map { ($0.device.name, $0) })

        for name in ["healthy-1", "healthy-2"] {
            let r = try #require(byName[name])
            #expect(r.status == .ok, "\(name): \(r.reason ?? "") \(r.log)")
            // Not held up by the hung device's 4 s RPC timeout.
            #expect(r.duration < .seconds(4), "\(name) took \(r.duration)")
            #expect(r.facts.software?.model == "mx480")
            #expect(r.facts.inventory?.chassisSerial != nil)
            #expect(r.facts.configuration != nil)
            // mx480 may have virtual chassis: asked, and the simulator's rpc-error means "not applicable".
            #expect(r.rpcs.first { $0.name == "get-virtual-chassis-information" }?.status == .notApplicable)
            // No chassis cluster on an MX: not even asked.
            let cluster = r.rpcs.first { $0.name == "get-chassis-cluster-status" }
            #expect(cluster?.status == .notApplicable && cluster?.durationMilliseconds == 0)
        }
        let hungResult = try #require(byName["hung"])
        #expect(hungResult.status == .failed)
        #expect(hungResult.failureKind == .timeout)
        #expect(hungResult.reason?.contains("no reply to get-software-information within 4 s") == true, "\(hungResult.reason ?? "")")
        #expect(hungResult.rpcs.first?.status == .timeout)
        #expect(hungResult.rpcs.dropFirst().allSatisfy { $0.status == .notRun || $0.status == .notApplicable })
        // One RPC timed out and the rest were never sent: said so, not "12 of 12 failed".
        let notSent = hungResult.rpcs.filter { $0.status == .notRun }.count
        #expect(hungResult.reason?.contains("1 of \(hungResult.rpcs.count) RPCs failed and \(notSent) were not sent") == true, "\(hungResult.reason ?? "")")

        let errors = try #require(byName["rpc-errors"])
        #expect(errors.status == .failed)
        #expect(errors.failureKind == .rpcErrors)
        #expect(errors.reason?.contains("could not connect to re0 : No route to host") == true)
        #expect(errors.rpcs.first?.status == .rpcError)

        let wrongKey = try #require(byName["wrong-key"])
        #expect(wrongKey.status == .failed)
        #expect(wrongKey.failureKind == .authentication)
        #expect(wrongKey.attempts == 1)
        #expect(wrongKey.reason?.contains("authentication failed for user \(healthy.user)") == true, "\(wrongKey.reason ?? "")")

        let replaced = try #require(byName["replaced"])
        #expect(replaced.status == .failed)
        #expect(replaced.failureKind == .hostKey)
        #expect(replaced.reason?.contains("has changed") == true, "\(replaced.reason ?? "")")

        // The whole run is bounded by the slowest device's own timeout, not the sum.
        #expect(elapsed < .seconds(12))

        // Each device's result is stored, with its redacted replies.
        let stored = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(stored == ["healthy-1", "healthy-2", "hung", "replaced", "rpc-errors", "wrong-key"])
        let runs = try FileManager.default.contentsOfDirectory(atPath: "\(out)/healthy-1")
        let replies = try FileManager.default.contentsOfDirectory(atPath: "\(out)/healthy-1/\(runs[0])/replies")
        #expect(replies.contains("01-get-software-information.xml"))
        let configuration = try #require(replies.first { $0.hasSuffix("get-configuration.xml") })
        let configText = try String(contentsOfFile: "\(out)/healthy-1/\(runs[0])/replies/\(configuration)", encoding: .utf8)
        #expect(configText.contains("&lt;redacted&gt;"))
        #expect(!configText.contains("$1$"))
    }

    static let longCommand = #"show chassis environment | match "Temp|Fan|Power Supply|FPC|Routing Engine|Midplane" | except "OK" | no-more"#

    @Test func oneSignedBundlePerDeviceInTheOutbox() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try device(dir: dir)
        defer { h.stop() }
        let conf = """
        [agent]
        agent-id = test-agent
        outbox = \(dir.path)/outbox
        state-directory = \(dir.path)/state
        redact-path = system/login/user/class
        [defaults]
        user = \(h.user)
        key-file = \(h.clientKeys["ed25519"]!)
        known-hosts = \(h.knownHostsPath)
        command = show chassis hardware
        command = \(Self.longCommand)
        [device r1]
        host = \(h.addresses[0])
        port = \(h.port)
        """
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let collector = try Collector(configuration: config, sink: BundleSink(configuration: config), logger: Logger.test)
        let result = try #require(await collector.collect(config.devices, trigger: .schedule).first)
        #expect(result.status == .ok, "\(result.reason ?? "")")
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir.path)/outbox").filter(BundleFileName.isBundle)
        #expect(files.count == 1)
        let bundle = try BundleReader().read(contentsOf: URL(fileURLWithPath: "\(dir.path)/outbox/\(files[0])"))
        let contents = bundle.contents
        #expect(contents.agent.id == "test-agent")
        #expect(contents.device.name == "r1")
        #expect(contents.device.model == "mx480")
        #expect(contents.device.chassisSerial == result.facts.inventory?.chassisSerial)
        #expect(contents.trigger == .scheduled)
        // Sent RPCs only (the cluster status was not asked of an MX); the command under a safe name.
        #expect(!contents.outcomes.contains { $0.rpc == "get-chassis-cluster-status" })
        #expect(contents.outcomes.contains { $0.rpc == "command-show_chassis_hardware" && $0.status == .ok })
        // A long command has its reply stored under a name that fits a tar header: it once made
        // every bundle of its group fail to encode.
        let long = try #require(contents.rawReplies.first { $0.rpc.hasPrefix("command-show_chassis_environment") })
        #expect(long.rpc.count <= 88)
        #expect(contents.outcomes.contains { $0.rpc == long.rpc && $0.status == .ok })
        // The MX480 profile answers virtual-chassis with an rpc-error: kept, and not a failure.
        #expect(contents.outcomes.first { $0.rpc == "get-virtual-chassis-information" }?.status == .notApplicable)
        #expect(contents.rawReplies.contains { $0.rpc == "get-virtual-chassis-information" })
        let configuration = try #require(contents.rawReplies.first { $0.rpc == "get-configuration" })
        let text = String(decoding: configuration.bytes, as: UTF8.self)
        #expect(text.contains("&lt;redacted&gt;") && !text.contains("$1$"))
        // The agent's own redact-path reaches the collector's redactor.
        #expect(!text.contains("super-user") && text.contains("<class>&lt;redacted&gt;</class>"))
        #expect(contents.facts.software?.model == "mx480")
        #expect(contents.log.contains("rpc ok"))
        // The key stays in the state directory and signs every bundle.
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/state/\(AgentKey.fileName)"))
    }

    @Test func anErrorForOneREBesideTheOtherREsDataKeepsTheData() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480-re0-down", under: dir)
        // What a dual-RE router answers when re0 does not respond: an error, then re1's data.
        try """
        <rpc-reply xmlns:junos="http://xml.juniper.net/junos/15.1F5/junos">
        <rpc-error><error-type>protocol</error-type><error-tag>operation-failed</error-tag>
        <error-severity>error</error-severity><error-message>could not connect to re0 : timed out</error-message></rpc-error>
        <multi-routing-engine-results><multi-routing-engine-item><re-name>re1</re-name>
        <route-engine-information xmlns="http://xml.juniper.net/junos/15.1F5/junos-chassis">
        <route-engine><slot>1</slot><mastership-state>master</mastership-state><cpu-idle>93</cpu-idle>
        <memory-buffer-utilization>17</memory-buffer-utilization></route-engine>
        </route-engine-information></multi-routing-engine-item></multi-routing-engine-results>
        </rpc-reply>
        """.write(toFile: profile + "/get-route-engine-information.xml", atomically: true, encoding: .utf8)
        let result = try await collectOnce(profile: profile, dir: dir)
        let rpc = try #require(result.rpcs.first { $0.name == "get-route-engine-information" })
        #expect(rpc.status == .rpcError)
        #expect(rpc.message?.contains("could not connect to re0") == true, "\(rpc.message ?? "")")
        #expect(rpc.message?.contains("facts read from the data beside the error") == true)
        // re1's figures are kept, under its own name.
        let engines = try #require(result.facts.routingEngines?.routingEngines)
        #expect(engines.map(\.slot) == [1])
        #expect(engines.first?.cpuIdlePercent == 93)
        #expect(engines.first?.section == "re1")
        #expect(engines.first?.memoryUtilizationPercent == 17)
        #expect(result.facts.parseErrors["get-route-engine-information"] == nil)
        // The other RPCs are unaffected.
        #expect(result.facts.software != nil && result.facts.inventory != nil)
        #expect(result.status == .partial && result.failureKind == .rpcErrors)
    }

    /// Errors, warnings and parse errors quote what the device chose to say, configuration
    /// included: what they say is redacted before the result, facts and log keep it.
    @Test func errorsAndWarningsQuotingConfigurationAreRedacted() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480-quoting", under: dir)
        try """
        <rpc-reply xmlns:junos="http://xml.juniper.net/junos/15.1F5/junos">
        <rpc-error><error-severity>warning</error-severity><error-info><bad-element>community leakcomm1</bad-element></error-info>
        <error-message>statement has no effect: secret "$9$LEAKWARN"</error-message></rpc-error>
        <configuration><system><host-name>r1</host-name></system></configuration>
        </rpc-reply>
        """.write(toFile: profile + "/get-configuration.xml", atomically: true, encoding: .utf8)
        try """
        <rpc-reply xmlns:junos="http://xml.juniper.net/junos/15.1F5/junos">
        <output>set snmp community leakout1 authorization read-only</output>
        </rpc-reply>
        """.write(toFile: profile + "/get-chassis-inventory.xml", atomically: true, encoding: .utf8)
        let result = try await collectOnce(profile: profile, dir: dir)
        let warned = try #require(result.rpcs.first { $0.name == "get-configuration" }?.message)
        let unparsed = try #require(result.rpcs.first { $0.name == "get-chassis-inventory" }?.message)
        let parseError = try #require(result.facts.parseErrors["get-chassis-inventory"])
        // The messages still say what happened.
        #expect(warned.contains("warnings: ") && warned.contains("statement has no effect"), "\(warned)")
        #expect(unparsed.contains("no facts") && unparsed.contains("authorization read-only"), "\(unparsed)")
        let encoded = String(decoding: try JSONEncoder().encode(result.facts), as: UTF8.self)
        for (what, text) in [("message", warned), ("message", unparsed), ("parse error", parseError), ("facts", encoded), ("log", result.log), ("reason", result.reason ?? "")] {
            for secret in ["leakcomm1", "LEAKWARN", "leakout1"] { #expect(!text.contains(secret), "\(what) keeps \(secret): \(text)") }
        }
    }

    @Test func slowAndSilentDevicesEndAtTheirOwnTimeouts() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let slow = try device("--fault slow", dir: dir)
        let silent = try device("--fault hang-hello", dir: dir)
        defer { slow.stop(); silent.stop() }
        let known = try knownHosts([slow, silent], dir: dir)
        let conf = """
        [defaults]
        user = \(slow.user)
        known-hosts = \(known)
        rpc-timeout = 30s
        [group slow]
        key-file = \(slow.clientKeys["ed25519"]!)
        device-timeout = 3500ms
        [group silent]
        key-file = \(silent.clientKeys["ed25519"]!)
        connect-timeout = 1500ms
        retries = 1
        retry-backoff = 100ms
        [device slow]
        host = \(slow.addresses[0])
        port = \(slow.port)
        group = slow
        [device silent]
        host = \(silent.addresses[0])
        port = \(silent.port)
        group = silent
        """
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let collector = try Collector(configuration: config, sink: DirectorySink(root: dir.appendingPathComponent("out").path), logger: Logger.test)
        let results = await collector.collect(config.devices, trigger: .standalone)

        // One second per RPC: a few answer, the one running at 3.5 s is cut, the rest are not sent.
        let slowResult = results[0]
        #expect(slowResult.status == .partial, "\(slowResult.reason ?? "")")
        #expect(slowResult.failureKind == .timeout)
        #expect(slowResult.duration < .seconds(5))
        let answered = slowResult.rpcs.filter { $0.status == .ok }.count
        #expect(answered >= 1 && answered <= 3, "\(slowResult.rpcs.map(\.status))")
        #expect(slowResult.rpcs.filter { $0.status == .timeout }.count == 1)
        #expect(slowResult.rpcs.last?.status == .notRun)
        #expect(slowResult.facts.software != nil)

        // Never says hello: a timeout, retried once (a transport failure), then given up.
        let silentResult = results[1]
        #expect(silentResult.status == .failed)
        #expect(silentResult.failureKind == .timeout)
        #expect(silentResult.attempts == 2)
        #expect(silentResult.reason?.contains("(after 2 attempts)") == true, "\(silentResult.reason ?? "")")
        #expect(silentResult.duration < .seconds(5))
    }

    @Test func transportFailuresAreRetriedWithBackoff() async throws {
        // Nothing listens on this port: connection refused, a transport failure worth retrying.
        let port = try SSHDHarness.freePort(on: "127.0.0.1")
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try otherKey(dir: dir, name: "key")
        let conf = """
        [defaults]
        user = nobody
        key-file = \(key)
        retries = 2
        retry-backoff = 200ms
        [device down]
        host = 127.0.0.1
        port = \(port)
        """
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let collector = try Collector(configuration: config, sink: DirectorySink(root: dir.appendingPathComponent("out").path), logger: Logger.test)
        let started = ContinuousClock.now
        let result = try #require(await collector.collect(config.devices, trigger: .standalone).first)
        #expect(result.status == .failed)
        #expect(result.failureKind == .unreachable)
        #expect(result.attempts == 3)
        #expect(result.reason?.hasSuffix("(after 3 attempts)") == true, "\(result.reason ?? "")")
        #expect(result.reason?.contains("127.0.0.1:\(port): connection refused (nothing listens on port \(port)") == true, "\(result.reason ?? "")")
        // Waited 200 ms, then 400 ms between the attempts.
        #expect(ContinuousClock.now - started >= .milliseconds(600))
        #expect(result.log.contains("connection failed, retrying"))
    }

    @Test func aDeviceIsNeverCollectedTwiceAtOnceAndGroupLimitsHold() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let slow = try device("--latency-ms 100", dir: dir)
        defer { slow.stop() }
        var conf = """
        [defaults]
        user = \(slow.user)
        key-file = \(slow.clientKeys["ed25519"]!)
        known-hosts = \(slow.knownHostsPath)
        concurrency = 2
        skip = configuration, storage, coreDumps, uptime, environment

        """
        for i in 1...4 { conf += "[device d\(i)]\nhost = \(slow.addresses[0])\nport = \(slow.port)\n" }
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let collector = try Collector(configuration: config, sink: DirectorySink(root: dir.appendingPathComponent("out").path), logger: Logger.test)
        let peak = LockedPeak()
        let events: @Sendable (CollectionEvent) -> Void = { event in
            switch event {
            case .started(let device): peak.enter(device.name)
            case .finished(let r, _) where r.status.attempted: peak.leave()
            default: break
            }
        }
        let first = Task { await collector.collect(config.devices, trigger: .schedule, onEvent: events) }
        // Once the group's two slots are taken, a request for a device being collected is skipped.
        let deadline = ContinuousClock.now + .seconds(10)
        while peak.started.count < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let collecting = try #require(config.devices.first { $0.name == peak.started.first })
        let b = await collector.collect([collecting], trigger: .request)
        let a = await first.value
        #expect(a.allSatisfy { $0.status == .ok }, "\(a.map { $0.reason ?? "" })")
        #expect(b.first?.status == .skipped)
        #expect(b.first?.reason?.contains("already being collected") == true)
        // At most the group's 2 devices at once: from each result's own start and end times.
        #expect(highestOverlap(a) == 2)
        #expect(peak.maximum >= 2)
    }

    /// A collector of `count` devices of `h` (four slots, one session set-up turn), and its
    /// limits, whose only turn the test holds.
    func collectorWithTheTurnHeld(_ h: SSHDHarness, devices count: Int, dir: URL) async throws -> (AgentConfiguration, CollectionLimits, Collector) {
        var conf = """
        [agent]
        concurrency = 4
        handshakes = 1
        [defaults]
        user = \(h.user)
        key-file = \(h.clientKeys["ed25519"]!)
        known-hosts = \(h.knownHostsPath)
        skip = configuration, storage, coreDumps, uptime, environment, routingEngines

        """
        for i in 1...count { conf += "[device d\(i)]\nhost = \(h.addresses[0])\nport = \(h.port)\n" }
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let limits = CollectionLimits(configuration: config)
        try await limits.handshakes.acquire()
        let collector = try Collector(configuration: config, sink: DirectorySink(root: dir.appendingPathComponent("out").path),
                                      logger: Logger.test, limits: limits)
        return (config, limits, collector)
    }

    @Test func aSessionSetUpWaitsForItsTurn() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try device(dir: dir)
        defer { h.stop() }
        // The test holds the only turn: every device gets its collection slot, none its session.
        let (config, limits, collector) = try await collectorWithTheTurnHeld(h, devices: 3, dir: dir)
        let peak = LockedPeak()
        let run = Task {
            await collector.collect(config.devices, trigger: .standalone) { event in
                if case .started(let device) = event { peak.enter(device.name) }
            }
        }
        try await Task.sleep(for: .seconds(1.5))
        #expect(peak.started.count == 3)
        let released = Date()
        await limits.handshakes.release()
        let results = await run.value
        #expect(results.allSatisfy { $0.status == .ok }, "\(results.map { $0.reason ?? "" })")
        // Each device's session came up only after the turn was given back (its log counts from
        // the device's start, when it got its slot).
        for result in results {
            let line = try #require(result.log.split(separator: "\n").first { $0.contains("session established") })
            let at = try #require(Int(line.dropFirst().prefix { $0.isNumber }))
            let established = result.started.addingTimeInterval(Double(at) / 1000)
            #expect(established >= released, "\(result.device.name): \(line), turn given back \(released)")
        }
    }

    @Test func aDeviceWaitingForATurnStopsWithTheAgent() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try device(dir: dir)
        defer { h.stop() }
        let (config, limits, collector) = try await collectorWithTheTurnHeld(h, devices: 1, dir: dir)
        let run = Task { await collector.collect(config.devices, trigger: .standalone) }
        try await Task.sleep(for: .milliseconds(800))
        let cancelled = ContinuousClock.now
        run.cancel()
        let results = await run.value
        // It leaves the queue for the turn at once, as a device not collected because the agent is
        // stopping (its last result stands), and takes no turn.
        #expect(cancelled.duration(to: .now) < .seconds(2))
        let result = try #require(results.first)
        #expect(result.status == .skipped && result.failureKind == .cancelled, "\(result.status) \(result.reason ?? "")")
        #expect(result.reason?.contains("the agent is stopping") == true, "\(result.reason ?? "")")
        await limits.handshakes.release()
        #expect(await limits.handshakes.tryAcquire())
    }

    @Test func theGlobalCapHoldsAcrossGroups() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try device("--latency-ms 50", dir: dir)
        defer { h.stop() }
        var conf = """
        [agent]
        concurrency = 3
        [defaults]
        user = \(h.user)
        key-file = \(h.clientKeys["ed25519"]!)
        known-hosts = \(h.knownHostsPath)
        concurrency = 10
        skip = configuration, storage, coreDumps, uptime, environment, routingEngines
        [group a]
        [group b]

        """
        for i in 1...8 { conf += "[device d\(i)]\nhost = \(h.addresses[0])\nport = \(h.port)\ngroup = \(i % 2 == 0 ? "a" : "b")\n" }
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let collector = try Collector(configuration: config, sink: DirectorySink(root: dir.appendingPathComponent("out").path), logger: Logger.test)
        let results = await collector.collect(config.devices, trigger: .standalone)
        #expect(results.allSatisfy { $0.status == .ok }, "\(results.map { $0.reason ?? "" })")
        #expect(highestOverlap(results) == 3)
    }
}

/// The MX480 captures plus replies for every other RPC of the default set (from other devices:
/// the simulator serves whatever the profile holds).
let fullProfile: [String: String] = TestProfiles.mx480.merging([
    "get-system-alarm-information": "get-system-alarm-information/jexp__single-re-anon.xml",
    "get-system-storage": "get-system-storage/jexp__single-re-18.2R1.xml",
    "get-system-core-dumps": "get-system-core-dumps/pyez__vsrx-12.1X46-no-cores.xml",
    "get-system-uptime-information": "get-system-uptime-information/librenms__ex4650-localre.xml",
]) { a, _ in a }

/// Stores each collection in two sinks.
struct BothSinks: CollectionSink {
    var first: any CollectionSink
    var second: any CollectionSink
    func store(_ collection: consuming DeviceCollection) async throws -> String {
        _ = try await first.store(copy collection)
        return try await second.store(collection)
    }
}

/// Captures every log line with its metadata, for checking that no secret is ever logged.
/// A struct, as swift-log expects: each Logger copy keeps its own metadata.
struct CapturingLogHandler: LogHandler {
    let store: LineStore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    init(store: LineStore) { self.store = store }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let all = metadata.merging(explicit ?? [:]) { $1 }
        store.append("\(level) \(message) \(all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
    }
}

final class LineStore: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ line: String) { lock.lock(); storage.append(line); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return storage }
}

@Suite(.serialized) struct SecretLoggingTests {
    @Test func noSecretReachesTheLogsOrTheStoredResults() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        var options = SSHDHarness.Options(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)")
        options.password = true
        let h = try SSHDHarness(options)
        defer { h.stop() }
        try #require(getuid() == 0, "password login needs root to give the care-test account a password")
        let passwordFile = dir.appendingPathComponent("netconf.password")
        try (SSHDHarness.testPassword + "\n").write(to: passwordFile, atomically: true, encoding: .utf8)
        let wrongPasswordFile = dir.appendingPathComponent("wrong.password")
        try "Wr0ng-But-Still-Secret\n".write(to: wrongPasswordFile, atomically: true, encoding: .utf8)
        // Secret files only care-agent's user may read (others are refused: SecretFile).
        chmod(passwordFile.path, 0o600)
        chmod(wrongPasswordFile.path, 0o600)
        let conf = """
        [defaults]
        user = \(h.user)
        known-hosts = \(h.knownHostsPath)
        [group pw]
        password-file = \(passwordFile.path)
        [group wrong]
        password-file = \(wrongPasswordFile.path)
        [device with-password]
        host = \(h.addresses[0])
        port = \(h.port)
        group = pw
        [device wrong-password]
        host = \(h.addresses[0])
        port = \(h.port)
        group = wrong
        """
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: conf))
        let store = LineStore()
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: store) }
        let out = dir.appendingPathComponent("out").path
        let outbox = dir.appendingPathComponent("outbox").path
        let key = try AgentKey.loadOrCreate(stateDirectory: dir)
        let sink = BothSinks(first: DirectorySink(root: out),
                             second: BundleSink(outbox: outbox, key: key, agent: AgentIdentity(id: "t", version: "t")))
        let collector = try Collector(configuration: config, sink: sink, logger: logger)
        let results = await collector.collect(config.devices, trigger: .standalone)
        #expect(results[0].status == .ok, "\(results[0].reason ?? "")")
        #expect(results[1].status == .failed && results[1].failureKind == .authentication)

        // The secrets: both passwords, and every secret value of the device's configuration.
        let fixture = try String(contentsOf: Fixtures.url(TestProfiles.mx480["get-configuration"]!), encoding: .utf8)
        var secrets = [SSHDHarness.testPassword, "Wr0ng-But-Still-Secret"]
        for keyword in ["encrypted-password", "secret", "authentication-key", "pre-shared-key"] {
            var rest = Substring(fixture)
            while let open = rest.range(of: "<\(keyword)>") {
                rest = rest[open.upperBound...]
                if let close = rest.range(of: "</\(keyword)>") {
                    let value = String(rest[..<close.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
                    if value.count >= 6 { secrets.append(value) }
                }
            }
        }
        #expect(secrets.count >= 4, "the fixture should hold secrets to look for: \(secrets.count)")
        let lines = store.lines
        #expect(lines.count > 20)
        #expect(lines.contains { $0.contains("rpc=get-configuration") && $0.contains("duration-ms=") && $0.contains("device=with-password") })
        var stored: [String] = []
        if let walker = FileManager.default.enumerator(atPath: out) {
            for case let file as String in walker where file.hasSuffix(".xml") || file.hasSuffix(".json") || file.hasSuffix(".log") {
                stored.append(try String(contentsOfFile: "\(out)/\(file)", encoding: .utf8))
            }
        }
        // And every member of the signed bundles.
        for file in try FileManager.default.contentsOfDirectory(atPath: outbox) where BundleFileName.isBundle(file) {
            let bundle = try BundleReader().read(contentsOf: URL(fileURLWithPath: "\(outbox)/\(file)"))
            stored += bundle.members.map { String(decoding: $0.bytes, as: UTF8.self) }
        }
        #expect(stored.count > 20)
        for secret in secrets {
            for line in lines { #expect(!line.contains(secret), "a log line holds a secret: \(line)") }
            for text in stored { #expect(!text.contains(secret), "a stored file holds the secret \(secret.prefix(3))…") }
            for result in results { #expect(!result.log.contains(secret)) }
        }
    }
}

/// Counts devices in flight from the collector's (synchronous) events.
final class LockedPeak: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    private var highest = 0
    private var names: [String] = []
    func enter(_ name: String = "") { lock.lock(); current += 1; highest = max(highest, current); names.append(name); lock.unlock() }
    func leave() { lock.lock(); current -= 1; lock.unlock() }
    var maximum: Int { lock.lock(); defer { lock.unlock() }; return highest }
    /// The devices started so far, in order.
    var started: [String] { lock.lock(); defer { lock.unlock() }; return names }
}

/// The most devices collected at the same moment, from each result's own start and end (an end
/// and a start at the same instant do not overlap).
func highestOverlap(_ results: [DeviceResult]) -> Int {
    var points: [(Date, Int)] = []
    for r in results { points.append((r.started, 1)); points.append((r.finished, -1)) }
    points.sort { x, y in x.0 == y.0 ? x.1 < y.1 : x.0 < y.0 }
    var overlap = 0, highest = 0
    for point in points { overlap += point.1; highest = max(highest, overlap) }
    return highest
}
