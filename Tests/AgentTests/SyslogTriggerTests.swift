@testable import Agent
import Junos
import Bundle
import Foundation
import Logging
import Testing
import TestSupport

/// The syslog trigger's pieces alone: TCP framing, `[syslog]`/`[events]` in agent.conf, the
/// sockets systemd passes, the event log's amendments.
@Suite struct SyslogPiecesTests {
    @Test func framingSplitsOctetCountedAndNewlineMessagesAcrossReads() {
        var framing = SyslogFraming(maximumLength: 64)
        let a = "<34>1 - host app - TAG_ONE - first"
        let b = "<34>Dec  4 21:00:00 host app: TAG_TWO: second"
        // Octet counting cut inside the length and inside the message, then newline framing.
        let stream = Array("\(a.utf8.count) \(a)\(b)\n".utf8)
        #expect(framing.feed(stream[0 ..< 1]) == [])
        #expect(framing.feed(stream[1 ..< 10]) == [])
        #expect(framing.feed(stream[10 ..< 40]) == [.message(Array(a.utf8))])
        #expect(framing.feed(stream[40...]) == [.message(Array(b.utf8))])
        // Over the limit: skipped whole by its count, the next message intact.
        let long = String(repeating: "x", count: 100)
        #expect(framing.feed(Array("100 \(long)3 <1>".utf8)) == [.oversize(100), .message(Array("<1>".utf8))])
        // A newline-framed message over the limit is dropped up to its newline, however it arrives.
        #expect(framing.feed(Array(("<1>" + long).utf8)) == [])
        #expect(framing.feed(Array((long + "\n<2>ok\n").utf8)) == [.oversize(203), .message(Array("<2>ok".utf8))])
        // A count without a space cannot be resynchronised: broken, and nothing more is read.
        #expect(framing.feed(Array("12x".utf8)) == [.broken("an octet count not followed by a space, or zero")])
        #expect(framing.feed(Array("<3>more\n".utf8)) == [])
    }

    @Test func syslogAndEventsSectionsParseAndRefuseWhatTheyCannotUse() throws {
        let text = """
        [agent]
        state-directory = /tmp/x
        [syslog]
        listen = udp:0.0.0.0:5514, tcp:[::1]:5514, systemd
        tag = CHASSISD_FRU_OFFLINE_NOTICE fru-offline
        text = */var/tmp/*.core* core-dump
        source = 192.0.2.10 mx1
        match-hostname = yes
        max-connections = 16
        [events]
        webhook = https://tickets.example.net/hooks/care
        [device mx1]
        host = 198.51.100.1
        """
        let configuration = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text))
        let syslog = try #require(configuration.syslog)
        #expect(syslog.listen == [.udp(host: "0.0.0.0", port: 5514), .tcp(host: "::1", port: 5514), .systemd])
        #expect(syslog.rules == [SyslogRule(.tag("CHASSISD_FRU_OFFLINE_NOTICE"), kind: "fru-offline"), SyslogRule(.text("*/var/tmp/*.core*"), kind: "core-dump")])
        #expect(syslog.sources == ["192.0.2.10": "mx1"] && syslog.matchHostname && syslog.maxConnections == 16)
        #expect(configuration.events.webhook == "https://tickets.example.net/hooks/care")
        // Without [syslog], no receiver; without rules of its own, the defaults.
        #expect(try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: "[agent]\n")).syslog == nil)
        #expect(SyslogSettings().effectiveRules == SyslogRule.defaults)

        let bad: [(String, String)] = [
            ("[syslog]\nlisten = udp:0.0.0.0\n", "agent.conf:2:10: expected udp:ADDRESS:PORT, tcp:ADDRESS:PORT or systemd"),
            ("[syslog]\nlisten = tcp:syslog.example.net:514\n", "agent.conf:2:10: expected udp:ADDRESS:PORT"),
            ("[syslog]\nlisten = udp:0.0.0.0:5514\ntag = chassisd fru-offline\n", "agent.conf:3:7: expected an event tag and an event kind"),
            ("[syslog]\nlisten = udp:0.0.0.0:5514\nsource = 192.0.2.1 nobody\n", "agent.conf:3:10: no device nobody in the inventory"),
            ("[syslog]\ntag = KERNEL_PANIC kernel-panic\n", "agent.conf:1:1: [syslog] needs listen = "),
            ("[syslog]\nlisten = systemd\nport = 514\n", "agent.conf:3:1: unknown key \"port\" in [syslog]"),
            ("[events]\nwebhook = ftp://x\n", "agent.conf:2:11: expected an https:// URL"),
            ("[events]\nwebhook = https://user:pw@x/hook\n", "agent.conf:2:11: expected a URL without user:password@"),
        ]
        // A device an [inventory] source brings is not known when the file is read: accepted.
        let fromSource = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: """
            [inventory lab]
            type = netbox
            url = https://netbox.example.net/
            token-credential = netbox-token
            [syslog]
            listen = udp:127.0.0.1:5514
            source = 10.0.0.1 mx480-1
            """))
        #expect(fromSource.syslog?.sources["10.0.0.1"] == "mx480-1")
        for (text, message) in bad {
            #expect(throws: ConfigurationError.self, "\(text)") { _ = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text)) }
            do { _ = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text)) } catch {
                #expect("\(error)".hasPrefix(message), "\(error)")
            }
        }
    }

    @Test func rulesMatchTagsOfBothFormatsAndTextPatterns() throws {
        let settings = SyslogSettings()
        let rfc5424 = try SyslogMessage(parsing: Array("<28>1 2026-12-04T21:00:00Z mx1 chassisd 2250 CHASSISD_FRU_OFFLINE_NOTICE [junos@2636.1.1.1.2.18 fru-name=\"FPC 1\"] Taking FPC 1 offline".utf8))
        #expect(settings.kind(of: rfc5424) == "fru-offline")
        let bsd = try SyslogMessage(parsing: Array("<30>Dec  4 21:00:00 mx1 rpd[1234]: RPD_SCHED_SLIP: 5 sec scheduler slip".utf8))
        #expect(settings.kind(of: bsd) == "rpd-sched-slip")
        let core = try SyslogMessage(parsing: Array("<26>Dec  4 21:00:00 mx1 dumpd: Core and context for rpd saved in /var/tmp/rpd.core.0.gz".utf8))
        #expect(settings.kind(of: core) == "core-dump")
        let quiet = try SyslogMessage(parsing: Array("<30>Dec  4 21:00:00 mx1 sshd[1]: Accepted publickey for care-agent".utf8))
        #expect(settings.kind(of: quiet) == nil)
        let sender = try #require(SocketAddress(host: "::ffff:192.0.2.7", port: 514))
        #expect(sender.host == "192.0.2.7", "an IPv4 sender on a dual-stack socket matches its inventory address")
        let evidence = SyslogReceiver.evidence(of: rfc5424, from: sender, redactor: ConfigurationRedactor())
        #expect(evidence == "syslog CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 1 offline [fru-name=FPC 1] (from 192.0.2.7, hostname mx1)")
        // Junos repeats the tag at the start of a BSD message's text: the evidence names it once.
        let repeated = try SyslogMessage(parsing: Array("<28>Dec  4 21:00:00 mx1 chassisd[1]: CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 1 offline".utf8))
        let once = SyslogReceiver.evidence(of: repeated, from: sender, redactor: ConfigurationRedactor())
        #expect(once.hasPrefix("syslog CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 1 offline"), "\(once)")
        #expect(once.components(separatedBy: "CHASSISD_FRU_OFFLINE_NOTICE").count == 2, "\(once)")
        // A command line logged with a password in it is redacted before it leaves as evidence.
        let command = try SyslogMessage(parsing: Array("<30>Dec  4 21:00:00 mx1 mgd[77]: UI_CMDLINE_READ_LINE: User 'ops', command 'file copy /var/tmp/rpd.core.0.gz ftp://backup:S3cret-pw@192.0.2.50/cores/'".utf8))
        let redacted = SyslogReceiver.evidence(of: command, from: sender, redactor: ConfigurationRedactor())
        #expect(!redacted.contains("S3cret-pw") && redacted.contains("ftp://backup:"), "\(redacted)")
        // A configuration command logged as typed, and the operator's own rules: the ones in force.
        let typed = try SyslogMessage(parsing: Array("<30>Dec  4 21:00:00 mx1 mgd[77]: UI_CMDLINE_READ_LINE: User 'ops', command 'set snmp community Pub1ic-x authorization read-only; set system radius-server 192.0.2.9 secret \"two words\"; set system location building ACME-7'".utf8))
        let rules = try ConfigurationRedactor(extraPatterns: ["ACME-[0-9]+"])
        let cleaned = SyslogReceiver.evidence(of: typed, from: sender, redactor: rules)
        for secret in ["Pub1ic-x", "two", "words", "ACME-7"] { #expect(!cleaned.contains(secret), "\(secret): \(cleaned)") }
        #expect(cleaned.contains("authorization read-only") && cleaned.contains("radius-server 192.0.2.9"), "\(cleaned)")
        // A redact-path whose list entries text writes without their element: the word after
        // the list's own keyword (`set routing-instances CUST-A`).
        let instances = try ConfigurationRedactor(extraPaths: ["routing-instances/instance/name"])
        let quoted = instances.redact(message: "error: set routing-instances CUST-A instance-type vrf: statement not valid")
        #expect(!quoted.contains("CUST-A") && quoted.contains("instance-type vrf"), "\(quoted)")
    }

    @Test func hostileStreamsStayWithinTheirBounds() throws {
        // Seeded, so that a failure replays: random bytes, random cuts, and runs of digits (octet
        // counts as large as they come) through the framing, every frame through the parser.
        var rng = SplitMix(seed: 15)
        var framing = SyslogFraming()
        var frames = 0
        for _ in 0 ..< 3000 {
            let count = Int(rng.next() % 3000)
            var chunk = (0 ..< count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if rng.next() % 4 == 0 { chunk.insert(contentsOf: Array("\(rng.next() % 100_000) <13>1 - h a - TAG_X - ".utf8), at: 0) }
            if rng.next() % 3 == 0 { chunk.append(0x0A) }
            for frame in framing.feed(chunk) {
                frames += 1
                if case let .message(bytes) = frame {
                    #expect(bytes.count <= SyslogMessage.maximumLength)
                    _ = try? SyslogMessage(parsing: bytes)
                }
            }
            // A broken stream is closed by the receiver; start a fresh one as a new connection would.
            if rng.next() % 50 == 0 { framing = SyslogFraming() }
        }
        #expect(frames > 0)
        // Deeply nested or endless structured data is read in one pass and bounded.
        let nested = "<13>1 - h a - ID " + String(repeating: "[x a=\"", count: 1000)
        #expect(throws: SyslogParseError.self) { try SyslogMessage(parsing: Array(nested.utf8)) }
        let many = "<13>1 - h a - ID " + (0 ..< 20).map { "[e\($0) " + (0 ..< 40).map { "p\($0)=\"v\"" }.joined(separator: " ") + "]" }.joined() + " text"
        let parsed = try SyslogMessage(parsing: Array(many.utf8))
        #expect(parsed.structuredData.count == SyslogMessage.maximumElements)
        #expect(parsed.structuredData.values.allSatisfy { $0.count <= SyslogMessage.maximumParameters })
        #expect(throws: SyslogParseError.self) { try SyslogMessage(parsing: [UInt8](repeating: 0x41, count: SyslogMessage.maximumLength + 1)) }
    }

    /// The senders' index follows the devices an inventory refresh brings, without a reload: a
    /// device it adds is known at once, one it removes is no longer (keyed by reloads alone, the
    /// first index stood until the next SIGHUP).
    @Test func sendersFollowAnInventoryRefresh() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("r.db")
        try "192.0.2.1:junos\n".write(to: db, atomically: true, encoding: .utf8)
        let configuration = try AgentConfiguration(file: ConfigurationFile(path: dir.path + "/agent.conf", text: """
        [agent]
        state-directory = \(dir.path)/state
        [inventory r]
        type = oxidized
        file = r.db
        """))
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        let receiver = SyslogReceiver(runtime: runtime, logger: Logger.test, responder: IncidentResponder(runtime: runtime, logger: Logger.test))
        func sender(_ address: String) async -> String? {
            let (current, generation) = await runtime.configurationWithDevicesGeneration
            return receiver.device(for: address, hostname: nil, configuration: current, devicesGeneration: generation, settings: SyslogSettings())?.name
        }
        await runtime.refreshInventory(force: true)
        #expect(await sender("192.0.2.1") == "192.0.2.1")
        #expect(await sender("192.0.2.2") == nil)
        try "192.0.2.2:junos\n".write(to: db, atomically: true, encoding: .utf8)
        await runtime.refreshInventory(force: true)
        #expect(await sender("192.0.2.2") == "192.0.2.2", "added by the refresh")
        #expect(await sender("192.0.2.1") == nil, "removed by the refresh")
    }

    @Test func sendersMapToDevicesByAddressSourceLinesAndHostname() async throws {
        var configuration = AgentConfiguration(devices: [
            Device(name: "mx1", host: "192.0.2.1"), Device(name: "nat-a", host: "198.51.100.7", port: 2201),
            Device(name: "nat-b", host: "198.51.100.7", port: 2202), Device(name: "v6", host: "2001:db8::10"),
            Device(name: "by-name", host: "srx1.example.net"),
        ])
        var settings = SyslogSettings()
        settings.listen = [.udp(host: "127.0.0.1", port: 5514)]
        settings.sources = ["203.0.113.9": "mx1"]
        configuration.syslog = settings
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: "/nonexistent") })
        let receiver = SyslogReceiver(runtime: runtime, logger: Logger.test, responder: IncidentResponder(runtime: runtime, logger: Logger.test))
        func device(_ address: String, _ hostname: String?, matchHostname: Bool = false) async -> String? {
            var s = settings
            s.matchHostname = matchHostname
            return receiver.device(for: address, hostname: hostname, configuration: configuration, devicesGeneration: 0, settings: s)?.name
        }
        #expect(await device("192.0.2.1", "anything") == "mx1", "the address decides; the hostname is the sender's word")
        #expect(await device("203.0.113.9", nil) == "mx1", "source = ADDRESS DEVICE: a loopback used as syslog source")
        #expect(await device("2001:db8::10", nil) == "v6")
        #expect(await device("198.51.100.7", nil) == nil, "two devices behind one address and no hostname: unknown")
        #expect(await device("198.51.100.7", "nat-b.example.net") == "nat-b")
        #expect(await device("192.0.2.99", "mx1") == nil, "an unknown address is not mapped by hostname unless asked")
        #expect(await device("192.0.2.99", "MX1", matchHostname: true) == "mx1")
        #expect(await device("192.0.2.99", "srx1.example.net", matchHostname: true) == "by-name")
    }

    @Test func listenSocketsAreTakenOnlyWhenMeantForThisProcess() {
        // Another process's variables (inherited from a parent) are not ours.
        #expect(SystemdListenSockets(environment: ["LISTEN_PID": "1", "LISTEN_FDS": "2"], pid: 4242).sockets.isEmpty)
        #expect(SystemdListenSockets(environment: ["LISTEN_PID": "4242", "LISTEN_FDS": "x"], pid: 4242).sockets.isEmpty)
        #expect(SystemdListenSockets(environment: [:]).sockets.isEmpty)
    }

    @Test func aLaterSightingIsAddedToItsIncidentsEntry() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = EventLog(stateDirectory: dir.path)
        let t = Date(timeIntervalSince1970: 1_780_000_000)
        let first = EventRecord(device: "r1", event: TriggerEvent(kind: "fru-offline", source: "syslog", time: t, evidence: "syslog ..."),
                                action: .bundle, bundle: "r1.tar.gz", id: "abc")
        let other = EventRecord(device: "r2", event: TriggerEvent(kind: "alarm", source: "poll", time: t, evidence: "x"), action: .bundle, id: "def")
        try log.append([first, other])
        let poll = TriggerEvent(kind: "fru-offline", source: "poll", time: t.addingTimeInterval(300), evidence: "routing engine /1 was OK, now Offline")
        #expect(try log.amend(id: "abc", with: poll))
        #expect(try !log.amend(id: "gone", with: poll))
        let loaded = log.load()
        #expect(loaded.count == 2 && loaded[1] == other)
        #expect(loaded[0].alsoSeen == [poll] && loaded[0].sources == ["syslog", "poll"] && loaded[0].bundle == "r1.tar.gz")
    }
}

/// The syslog trigger with real parts: util-linux `logger` sends RFC 5424 and BSD messages over
/// UDP and TCP (octet counting and newline framing) to the receiver; two simulated MX480s behind
/// the real sshd share one address (127.0.0.1: every loopback sender has it, as devices behind
/// one NAT address would), so the receiver tells them apart by the HOSTNAME logger writes; each
/// gets event bundles of its own; the health poll sees the FRU incidents again and adds to them
/// instead of collecting twice; each bundle's notice reaches a webhook receiver the test runs.
@Suite(.serialized) struct SyslogTriggerTests {
    func eventBundles(_ outbox: String) throws -> [BundleContents] { try EventEvidence.bundles(outbox) }

    /// Polls `condition` without blocking a thread of the cooperative pool (the agent's services
    /// under test run there too).
    func waitFor(_ seconds: Double, _ condition: () throws -> Bool) async rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try condition()
    }

    /// Sends one message with util-linux logger from a host named `host`: logger writes the
    /// system's host name into the message, so it runs in a UTS namespace of its own (unshare)
    /// whose host name is the device's.
    func logger(from host: String, _ arguments: [String]) throws {
        _ = try runProgram("/usr/bin/unshare", ["--uts", "--", "/bin/sh", "-c", "hostname \"$0\" && exec /usr/bin/logger \"$@\"", host] + arguments)
    }

    @Test func loggerMessagesTriggerBundlesForTheRightDeviceOnceAndThePollAddsToThem() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let hook = try WebhookReceiver(directory: dir.appendingPathComponent("hook"), token: "hook-token-1")
        try hook.start()
        defer { hook.stop() }
        let tokenFile = dir.appendingPathComponent("token").path
        try "hook-token-1\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile, 0o600)
        let udp = try SSHDHarness.freePort(on: "127.0.0.1"), tcp = try SSHDHarness.freePort(on: "127.0.0.1")
        let conf = dir.appendingPathComponent("agent.conf").path
        try """
        [agent]
        outbox = \(dir.path)/outbox
        state-directory = \(dir.path)/state
        runtime-directory = \(dir.path)/run
        metrics-file = \(dir.path)/metrics.prom
        agent-id = agent-7
        [defaults]
        user = \(h.user)
        key-file = \(h.clientKeys["ed25519"]!)
        known-hosts = \(h.knownHostsPath)
        schedule = manual
        poll = 30s
        [upload]
        retry-backoff = 1s
        [syslog]
        listen = udp:0.0.0.0:\(udp), tcp:0.0.0.0:\(tcp)
        tag = CHASSISD_FRU_OFFLINE_NOTICE fru-offline
        tag = RPD_SCHED_SLIP rpd-sched-slip
        tag = KERNEL_PANIC kernel-panic
        text = */var/tmp/*.core* core-dump
        [events]
        webhook = \(hook.url)
        ca-file = \(hook.certificates.caCertificate)
        token-file = \(tokenFile)
        [device r1]
        host = 127.0.0.1
        port = \(h.port)
        [device r2]
        host = 127.0.0.1
        port = \(h.port)

        """.write(toFile: conf, atomically: true, encoding: .utf8)
        var configuration = try AgentConfiguration.load(path: conf)
        // Seconds instead of minutes (agent.conf allows 30 s at least); the window stays an hour.
        configuration.groups[AgentConfiguration.defaultGroup]?.poll = .milliseconds(700)
        let outbox = configuration.agent.outbox
        let lines = LineStore()
        let log = Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) }
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: log,
                                       makeSink: { BundleSink(outbox: $0.agent.outbox, key: OutboxSample.key, agent: AgentIdentity(id: "agent-7", version: "0.1.0")) })
        let responder = IncidentResponder(runtime: runtime, logger: log)
        let poller = HealthPoller(runtime: runtime, logger: log, tick: .milliseconds(100), responder: responder)
        let receiver = SyslogReceiver(runtime: runtime, logger: log, responder: responder)
        let sender = WebhookSender(runtime: runtime, logger: log)
        let tasks = [Task { try await poller.run() }, Task { try await receiver.run() }, Task { try await sender.run() }]
        defer { tasks.forEach { $0.cancel() } }
        #expect(await waitFor(60) { poller.snapshot(of: "r1") != nil && poller.snapshot(of: "r2") != nil }, "\(lines.lines.suffix(10))")
        #expect(await waitFor(10) { lines.lines.contains { $0.contains("syslog receiver listening") } })
        #expect(try eventBundles(outbox).isEmpty)

        // RFC 5424 over UDP from r2: its FPC goes offline, with Junos structured data.
        try logger(from: "r2", ["--server", "127.0.0.1", "--port", "\(udp)", "--udp", "--rfc5424", "--msgid", "CHASSISD_FRU_OFFLINE_NOTICE",
                    "--sd-id", "junos@2636.1.1.1.2.18", "--sd-param", "fru-name=\"FPC 1\"", "-t", "chassisd",
                    "Taking FPC 1 offline: Offlined by cli command"])
        #expect(try await waitFor(60) { try eventBundles(outbox).count == 1 }, "\(lines.lines.suffix(20))")
        let fru = try #require(try eventBundles(outbox).last)
        #expect(fru.device.name == "r2" && fru.trigger == .event)
        #expect(fru.event?.kind == "fru-offline" && fru.event?.source == "syslog")
        #expect(fru.event?.evidence.hasPrefix("syslog CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 1 offline: Offlined by cli command [fru-name=FPC 1] (from 127.0.0.1, hostname r2)") == true,
                "\(String(describing: fru.event))")
        #expect(fru.facts.software != nil && fru.facts.inventory != nil, "a full diagnostic collection")

        // BSD over TCP with newline framing from r1.
        try logger(from: "r1", ["--server", "127.0.0.1", "--port", "\(tcp)", "--tcp", "--rfc3164", "-t", "rpd",
                    "RPD_SCHED_SLIP: 5 sec scheduler slip, user: 0 sec 12345 usec, system: 0 sec, 0 usec"])
        #expect(try await waitFor(60) { try eventBundles(outbox).count == 2 }, "\(lines.lines.suffix(20))")
        #expect(try eventBundles(outbox).last?.device.name == "r1")
        #expect(try eventBundles(outbox).last?.event?.kind == "rpd-sched-slip")

        // RFC 5424 over TCP with octet counting from r2 again, another kind.
        try logger(from: "r2", ["--server", "127.0.0.1", "--port", "\(tcp)", "--tcp", "--octet-count", "--rfc5424", "--msgid", "KERNEL_PANIC",
                    "-t", "kernel", "panic: page fault while in kernel mode"])
        #expect(try await waitFor(60) { try eventBundles(outbox).count == 3 }, "\(lines.lines.suffix(20))")
        #expect(try eventBundles(outbox).last?.device.name == "r2")
        #expect(try eventBundles(outbox).last?.event?.kind == "kernel-panic")

        // BSD over UDP, matched by its text: a process core under /var/tmp.
        try logger(from: "r1", ["--server", "127.0.0.1", "--port", "\(udp)", "--udp", "--rfc3164", "-t", "dumpd",
                    "Core and context for rpd saved in /var/tmp/rpd.core.0.gz"])
        #expect(try await waitFor(60) { try eventBundles(outbox).count == 4 }, "\(lines.lines.suffix(20))")
        #expect(try eventBundles(outbox).last?.device.name == "r1")
        #expect(try eventBundles(outbox).last?.event?.kind == "core-dump")

        // The same FRU message again: within event-window, no bundle. An unknown sender and
        // noise: counted, no bundle.
        try logger(from: "r2", ["--server", "127.0.0.1", "--port", "\(udp)", "--udp", "--rfc5424", "--msgid", "CHASSISD_FRU_OFFLINE_NOTICE",
                    "-t", "chassisd", "Taking FPC 1 offline: Offlined by cli command"])
        try logger(from: "stranger", ["--server", "127.0.0.1", "--port", "\(udp)", "--udp", "--rfc5424", "--msgid", "CHASSISD_FRU_OFFLINE_NOTICE",
                    "-t", "chassisd", "Taking FPC 3 offline"])
        try logger(from: "r1", ["--server", "127.0.0.1", "--port", "\(tcp)", "--tcp", "--rfc3164", "-t", "sshd", "Accepted publickey for care-agent"])
        #expect(await waitFor(20) { lines.lines.contains { $0.contains("event within its rate-limit window") && $0.contains("event.source=syslog") } })
        #expect(await waitFor(20) { lines.lines.contains { $0.contains("sender no inventory device matches") && $0.contains("hostname=stranger") } })
        #expect(await waitFor(20) {
            let metrics = (try? String(contentsOfFile: dir.path + "/metrics.prom", encoding: .utf8)) ?? ""
            return metrics.contains("care_agent_syslog_messages_total{result=\"unknown-sender\"} 1\n")
                && metrics.contains("care_agent_syslog_messages_total{result=\"ignored\"} 1\n")
                && metrics.contains("care_agent_syslog_messages_total{result=\"event\"} 5\n")
        }, "\((try? String(contentsOfFile: dir.path + "/metrics.prom", encoding: .utf8)) ?? "")")

        // Poll and syslog see one incident: syslog first (r1's RE 1 goes offline), then the
        // next poll finds the routing engine offline. One bundle; the entry names both sources.
        try logger(from: "r1", ["--server", "127.0.0.1", "--port", "\(udp)", "--udp", "--rfc5424", "--msgid", "CHASSISD_FRU_OFFLINE_NOTICE",
                    "-t", "chassisd", "Taking Routing Engine 1 offline"])
        #expect(try await waitFor(60) { try eventBundles(outbox).count == 5 }, "\(lines.lines.suffix(20))")
        #expect(try eventBundles(outbox).last?.device.name == "r1")
        var engines = String(decoding: try Fixtures.bytes("get-route-engine-information/pyez__mx480-dual-re-15.1F5.xml"), as: UTF8.self)
        let backup = try #require(engines.range(of: "<status>OK</status>", options: .backwards))
        engines.replaceSubrange(backup, with: "<status>Offline</status>")
        try engines.write(toFile: profile + "/get-route-engine-information.xml", atomically: true, encoding: .utf8)
        chmod(profile + "/get-route-engine-information.xml", 0o644)
        #expect(await waitFor(60) { poller.snapshot(of: "r1")?.routingEngineStates.values.contains("Offline") == true })
        #expect(await waitFor(60) { poller.snapshot(of: "r2")?.routingEngineStates.values.contains("Offline") == true })
        try await Task.sleep(for: .seconds(2))
        #expect(try eventBundles(outbox).count == 5, "the poll's sighting of the same incidents collects nothing more")
        #expect(lines.lines.contains { $0.contains("the same incident seen by another source") && $0.contains("event.source=poll") })
        #expect(await runtime.metrics.render(outboxDepth: 0).contains("care_agent_events_total{kind=\"fru-offline\",action=\"duplicate\"} 2\n"))

        // `care-agent events`: r1's FRU incident, one bundle, seen by syslog then the poll.
        let listing = try EventEvidence.listing(state: configuration.agent.stateDirectory, device: "r1", dir: dir)
        let fruRecords = listing.events.filter { $0.event.kind == "fru-offline" }
        #expect(fruRecords.count == 1 && fruRecords.first?.sources == ["syslog", "poll"] && fruRecords.first?.action == .bundle,
                "\(fruRecords)")
        #expect(fruRecords.first?.alsoSeen?.first?.evidence.contains("now Offline") == true)
        #expect(listing.kinds["fru-offline"]?["duplicate"] == 1)

        // Every event bundle's notice reached the webhook: device, kind, source, bundle, evidence.
        #expect(await waitFor(30) { hook.received().count == 5 }, "\(hook.received().count) notices; \(lines.lines.suffix(10))")
        let notices = try hook.received().map { try EventNotice.decoder().decode(EventNotice.self, from: $0) }
        let bundles = try FileOutbox(directory: outbox).pending().filter { $0.trigger == .event }.map(\.name)
        #expect(Set(notices.map(\.bundle)) == Set(bundles))
        // The manifest's id too: what the intake stores the bundle (and its case) under.
        let ids = try eventBundles(outbox).map(\.bundleId)
        #expect(Set(notices.compactMap(\.bundleID)) == Set(ids) && notices.allSatisfy { $0.bundleID != nil })
        #expect(notices.map(\.kind).sorted() == ["core-dump", "fru-offline", "fru-offline", "kernel-panic", "rpd-sched-slip"])
        #expect(notices.allSatisfy { $0.agent == "agent-7" && $0.source == "syslog" && !$0.evidence.isEmpty })
        #expect(notices.first { $0.kind == "kernel-panic" }?.device == "r2")
        #expect(WebhookQueue(stateDirectory: configuration.agent.stateDirectory).pending().isEmpty)
    }
}

/// The receiver's own bounds with real TCP connections: at most `max-connections` at once (the
/// next is closed at once and logged), an idle one closed after `idle-timeout`, a stream that is
/// not syslog framing closed, and a slot freed by a closed connection taken by the next.
@Suite(.serialized) struct SyslogConnectionLimitTests {
    /// A TCP connection to 127.0.0.1:`port`.
    func connectTCP(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let address = try #require(SocketAddress(host: "127.0.0.1", port: port))
        let rc = address.withSockaddr { connect(fd, $0, $1) }
        try #require(rc == 0, "connect: \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Whether the agent closed `fd` (a read returns 0, or the connection was reset) within `seconds`.
    func closedByPeer(_ fd: Int32, within seconds: Double) async -> Bool {
        let end = Date().addingTimeInterval(seconds)
        var byte: UInt8 = 0
        while Date() < end {
            let n = recv(fd, &byte, 1, 0)
            if n == 0 || (n < 0 && errno == ECONNRESET) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func connectionsAreCappedIdleOnesClosedAndBrokenStreamsDropped() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try SSHDHarness.freePort(on: "127.0.0.1")
        var configuration = AgentConfiguration(devices: [Device(name: "r1", host: "127.0.0.1")])
        configuration.agent.stateDirectory = dir.path + "/state"
        configuration.agent.outbox = dir.path + "/outbox"
        var settings = SyslogSettings()
        settings.listen = [.tcp(host: "127.0.0.1", port: port)]
        // One address holds at most an eighth: two connections from the device's address.
        settings.maxConnections = 16
        settings.idleTimeout = .seconds(3)
        configuration.syslog = settings
        let lines = LineStore()
        let logger = Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) }
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: logger,
                                       makeSink: { _ in DirectorySink(root: dir.path + "/results") })
        let receiver = SyslogReceiver(runtime: runtime, logger: logger, responder: IncidentResponder(runtime: runtime, logger: logger))
        let task = Task { try await receiver.run() }
        defer { task.cancel() }
        while receiver.listening.isEmpty { try await Task.sleep(for: .milliseconds(20)) }

        let first = try connectTCP(port), second = try connectTCP(port)
        defer { close(first); close(second) }
        try await Task.sleep(for: .milliseconds(300))
        // The third is over the cap: closed at once, and said so.
        let third = try connectTCP(port)
        #expect(await closedByPeer(third, within: 2), "a connection over max-connections is closed")
        close(third)
        // The receiver logs after closing: the line may come a moment after the close is seen.
        func logged(_ condition: @escaping (String) -> Bool) async -> Bool {
            for _ in 0..<100 {
                if lines.lines.contains(where: condition) { return true }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return false
        }
        #expect(await logged { $0.contains("syslog connection refused: this address holds its share (2) of max-connections") && $0.contains("max-connections=16") })
        #expect(await !closedByPeer(first, within: 0.5), "the connections within the cap stay open")
        // A stream that is not syslog framing is closed; its slot goes to the next connection.
        _ = "12x".withCString { send(second, $0, 3, Int32(MSG_NOSIGNAL)) }
        #expect(await closedByPeer(second, within: 2))
        #expect(await logged { $0.contains("not syslog framing") })
        try await Task.sleep(for: .milliseconds(200))
        let fourth = try connectTCP(port)
        defer { close(fourth) }
        #expect(await !closedByPeer(fourth, within: 0.5), "a freed slot is taken by the next connection")
        // Idle connections go after idle-timeout (3 s here).
        #expect(await closedByPeer(first, within: 6), "an idle connection is closed after idle-timeout")
        #expect(await closedByPeer(fourth, within: 6))
    }

    /// A TCP connection from 127.0.0.1 (the default) or another loopback address.
    func connectTCP(_ port: Int, from source: String) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let local = try #require(SocketAddress(host: source, port: 0))
        try #require(local.withSockaddr { bind(fd, $0, $1) } == 0, "bind \(source): \(String(cString: strerror(errno)))")
        let address = try #require(SocketAddress(host: "127.0.0.1", port: port))
        try #require(address.withSockaddr { connect(fd, $0, $1) } == 0, "connect: \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Hosts that are no device (any host that reaches the port) holding silent connections
    /// cannot lock a device out: each address holds an eighth of max-connections, and addresses
    /// no device has half of them together.
    @Test func strangersCannotTakeEveryConnection() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try SSHDHarness.freePort(on: "127.0.0.1")
        var configuration = AgentConfiguration(devices: [Device(name: "r1", host: "127.0.0.1")])
        configuration.agent.stateDirectory = dir.path + "/state"
        configuration.agent.outbox = dir.path + "/outbox"
        var settings = SyslogSettings()
        settings.listen = [.tcp(host: "127.0.0.1", port: port)]
        settings.maxConnections = 16
        configuration.syslog = settings
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { _ in DirectorySink(root: dir.path + "/results") })
        let receiver = SyslogReceiver(runtime: runtime, logger: Logger.test, responder: IncidentResponder(runtime: runtime, logger: Logger.test))
        let task = Task { try await receiver.run() }
        defer { task.cancel() }
        while receiver.listening.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        // Six stranger addresses, three connections each: two per address, eight in all.
        var strangers: [Int32] = []
        defer { strangers.forEach { close($0) } }
        for host in 2 ... 7 {
            for _ in 0 ..< 3 { strangers.append(try connectTCP(port, from: "127.0.0.\(host)")) }
        }
        try await Task.sleep(for: .milliseconds(500))
        var open = 0
        for fd in strangers where await !closedByPeer(fd, within: 0.2) { open += 1 }
        #expect(open == 8, "\(open) stranger connections stayed open")
        // The device's own connection is admitted and stays.
        let device = try connectTCP(port, from: "127.0.0.1")
        defer { close(device) }
        #expect(await !closedByPeer(device, within: 0.5))
    }
}

/// An incident while its device is being collected (the scheduled run a restart began): the event
/// bundle follows that collection instead of failing as "already being collected".
@Suite(.serialized) struct IncidentDuringCollectionTests {
    @Test func theEventBundleFollowsTheRunningCollection() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        // Two seconds before each hello: the first collection is surely running when the event comes.
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) --setup-delay-ms 2000"))
        defer { h.stop() }
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["r1"])
        let configuration = try AgentConfiguration.load(path: conf)
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { BundleSink(outbox: $0.agent.outbox, key: OutboxSample.key, agent: AgentIdentity(id: "t", version: "0.1.0")) })
        let device = configuration.devices[0]
        let running = Task { await runtime.collect([device], trigger: .request) }
        while await !runtime.devicesInFlight.contains("r1") { try await Task.sleep(for: .milliseconds(20)) }
        let responder = IncidentResponder(runtime: runtime, logger: Logger.test)
        let event = TriggerEvent(kind: "fru-offline", source: "syslog", time: Date(), evidence: "syslog CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 0 offline")
        let response = await responder.respond(to: [event], device: device)
        _ = await running.value
        #expect(response.admitted == [event] && response.bundle != nil)
        let pending = FileOutbox(directory: configuration.agent.outbox).pending()
        #expect(pending.filter { $0.trigger == .event }.map(\.name) == [response.bundle].compactMap { $0 })
        #expect(pending.filter { $0.trigger == .onDemand }.count == 1, "the running collection's own bundle is kept")
        let record = try #require(EventLog(stateDirectory: configuration.agent.stateDirectory).load().last)
        #expect(record.action == .bundle && record.bundle == response.bundle)
    }
}

/// An incident on a device still waiting for its turn in a long run (one session at a time here,
/// the other device's collection slow): the event bundle takes the next free slot instead of
/// waiting for the run to reach the device; the run then skips it, saying why: one session to
/// the device, not two.
@Suite(.serialized) struct IncidentOnAQueuedDeviceTests {
    @Test func theEventCollectionTakesTheQueuedDeviceOver() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        // Three seconds before each hello: r1's collection holds the only slot that long.
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) --setup-delay-ms 3000"))
        defer { h.stop() }
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["r1", "r2"], defaults: "schedule = manual\nconcurrency = 1")
        let configuration = try AgentConfiguration.load(path: conf)
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { BundleSink(outbox: $0.agent.outbox, key: OutboxSample.key, agent: AgentIdentity(id: "t", version: "0.1.0")) })
        let running = Task { await runtime.collect(configuration.devices, trigger: .schedule) }
        while true {
            let queued = await runtime.devicesQueued, collecting = await runtime.devicesCollecting
            if queued.contains("r2") && collecting.contains("r1") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let responder = IncidentResponder(runtime: runtime, logger: Logger.test)
        let event = TriggerEvent(kind: "core-dump", source: "poll", time: Date(), evidence: "new core file /var/tmp/rpd.core.0.gz")
        let r2 = try #require(configuration.devices.first { $0.name == "r2" })
        let started = ContinuousClock.now
        let response = await responder.respond(to: [event], device: r2)
        // The next free slot (r1's, ~3 s), then its own collection (~3 s): not r2's scheduled
        // collection first and the event one after it (~9 s).
        #expect(ContinuousClock.now - started < .seconds(8), "waited for its turn in the run")
        #expect(response.bundle != nil && response.admitted == [event])
        let results = await running.value
        let r2Scheduled = try #require(results.first { $0.device.name == "r2" })
        #expect(r2Scheduled.status == .skipped && r2Scheduled.reason?.contains("collected meanwhile for an incident") == true, "\(r2Scheduled)")
        #expect(results.first { $0.device.name == "r1" }?.status == .ok)
        let pending = FileOutbox(directory: configuration.agent.outbox).pending()
        #expect(pending.filter { $0.trigger == .event }.map(\.name) == [response.bundle].compactMap { $0 })
        #expect(pending.filter { $0.trigger == .scheduled }.count == 1, "r1's scheduled bundle; r2 once, for the incident")
        #expect(await runtime.devicesInFlight.isEmpty)
    }
}

/// The agent stopping while an incident's bundle is being collected: no empty event bundle goes
/// up first, and the incident is recorded as failed, not as a bundle.
@Suite struct CancelledIncidentTests {
    @Test func aCancelledIncidentCollectionStoresNothingAndIsRecordedFailed() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A device whose SYNs go unanswered: the collection waits in its TCP connect.
        let silent = try SilentListener()
        defer { withExtendedLifetime(silent) {} }
        var configuration = AgentConfiguration(devices: [Device(name: "r1", host: "127.0.0.1", port: silent.port)])
        let key = dir.path + "/id_ed25519"
        try runProgram("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
        configuration.agent.stateDirectory = dir.path + "/state"
        configuration.agent.outbox = dir.path + "/outbox"
        configuration.groups[AgentConfiguration.defaultGroup]?.retries = 0
        configuration.groups[AgentConfiguration.defaultGroup]?.credentials = CredentialSource(user: "u", keyFile: key)
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { BundleSink(outbox: $0.agent.outbox, key: OutboxSample.key, agent: AgentIdentity(id: "t", version: "0.1.0")) })
        let responder = IncidentResponder(runtime: runtime, logger: Logger.test)
        let event = TriggerEvent(kind: "alarm", source: "poll", time: Date(), evidence: "new chassis alarm: Major: PEM 1 Not OK")
        let device = configuration.devices[0]
        let responding = Task { await responder.respond(to: [event], device: device) }
        try await Task.sleep(for: .milliseconds(500))
        responding.cancel()
        let response = await responding.value
        #expect(response.admitted == [event] && response.bundle == nil)
        #expect(FileOutbox(directory: configuration.agent.outbox).pending().isEmpty, "no empty event bundle: \(EventLog(stateDirectory: configuration.agent.stateDirectory).load().map { $0.reason ?? "" })")
        let records = EventLog(stateDirectory: configuration.agent.stateDirectory).load()
        #expect(records.map(\.action) == [.failed], "\(records)")
    }
}

/// De-duplication never hides a failure: when a collection failed, the next sighting (the other
/// source's, or the same one's: the poll sees an unresolved incident again) collects again, up
/// to three attempts a window; after that, repeats are rate-limited.
@Suite struct FailedIncidentTests {
    @Test func anotherSourceRetriesAFailedCollection() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Nothing listens there: every collection fails at once (refused, no retries).
        let closed = try SSHDHarness.freePort(on: "127.0.0.1")
        var configuration = AgentConfiguration(devices: [Device(name: "r1", host: "127.0.0.1", port: closed)])
        configuration.agent.stateDirectory = dir.path + "/state"
        configuration.agent.outbox = dir.path + "/outbox"
        configuration.groups[AgentConfiguration.defaultGroup]?.retries = 0
        configuration.groups[AgentConfiguration.defaultGroup]?.credentials = CredentialSource(user: "u", keyFile: "/dev/null")
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger.test,
                                       makeSink: { BundleSink(outbox: $0.agent.outbox, key: OutboxSample.key, agent: AgentIdentity(id: "t", version: "0.1.0")) })
        let responder = IncidentResponder(runtime: runtime, logger: Logger.test)
        let device = configuration.devices[0]
        let t = Date()
        let syslog = TriggerEvent(kind: "fru-offline", source: "syslog", time: t, evidence: "syslog CHASSISD_FRU_OFFLINE_NOTICE")
        let poll = TriggerEvent(kind: "fru-offline", source: "poll", time: t.addingTimeInterval(60), evidence: "routing engine /1 was OK, now Offline")
        let first = await responder.respond(to: [syslog], device: device, now: t)
        #expect(first.admitted == [syslog])
        // A bundle holding only the log of why is stored, but the response says the collection
        // failed (the health poll keeps its baseline on that, to try again).
        #expect(first.bundle == nil)
        let second = await responder.respond(to: [poll], device: device, now: t.addingTimeInterval(60))
        #expect(second.admitted == [poll] && second.duplicates.isEmpty, "the poll's sighting tries again")
        let third = await responder.respond(to: [syslog], device: device, now: t.addingTimeInterval(120))
        #expect(third.admitted == [syslog], "a third attempt: the same source sees the unresolved incident again")
        let fourth = await responder.respond(to: [syslog], device: device, now: t.addingTimeInterval(121))
        #expect(fourth.rateLimited == [syslog], "three attempts a window: syslog repeating itself does not hammer an unreachable device")
        let records = EventLog(stateDirectory: configuration.agent.stateDirectory).load()
        #expect(records.map(\.action) == [.failed, .failed, .failed, .rateLimited])
        #expect(records.first?.reason?.isEmpty == false, "\(records)")
        // The metric says the same: three failed collections, no bundle.
        let counted = await runtime.metrics.render(outboxDepth: 0)
        #expect(counted.contains("care_agent_events_total{kind=\"fru-offline\",action=\"failed\"} 3\n")
                && counted.contains("care_agent_events_total{kind=\"fru-offline\",action=\"bundle\"} 0\n"), "\(counted)")

        // A chatty device repeating the message every second for 100 s after that: one record a
        // minute in the events log (the repeat at 121 s, then the 61st at 181 s), every repeat in
        // the metrics.
        var quiet = 0
        for second in 122 ... 221 {
            let repeated = await responder.respond(to: [syslog], device: device, now: t.addingTimeInterval(Double(second)))
            quiet += repeated.quietRepeats.count
            #expect(repeated.admitted.isEmpty)
        }
        let limited = EventLog(stateDirectory: configuration.agent.stateDirectory).load().filter { $0.action == .rateLimited }
        #expect(limited.count == 2, "\(limited.map(\.event.evidence))")
        #expect(limited.last?.event.evidence.hasSuffix("(repeat 61 within this window)") == true, "\(limited.map(\.event.evidence))")
        #expect(quiet == 99)
        #expect(await runtime.metrics.render(outboxDepth: 0).contains("care_agent_events_total{kind=\"fru-offline\",action=\"rate-limited\"} 101"))

        // The wall clock stepped back an hour (NTP correcting a clock that ran ahead): the open
        // incident now seems to open in the future; it does not hold the event back for the
        // hour as well as its window.
        let stepped = await responder.respond(to: [syslog], device: device, now: t.addingTimeInterval(-3600))
        #expect(stepped.admitted == [syslog] && stepped.rateLimited.isEmpty && stepped.quietRepeats.isEmpty)
    }
}

/// Port 514 without privilege: systemd opens the socket and passes it (LISTEN_FDS, LISTEN_PID,
/// LISTEN_FDNAMES). systemd-socket-activate (from the systemd package) does exactly that for a
/// spawned `care-agent run`: it listens, and at the first message execs the agent with the socket
/// as descriptor 3; the message waiting in the socket is the one that must trigger the bundle.
@Suite(.serialized) struct SyslogSocketActivationTests {
    static let activator = "/usr/bin/systemd-socket-activate"

    func configuration(_ h: SSHDHarness, dir: URL) throws -> String {
        let conf = try writeServiceConfiguration(h, dir: dir, devices: ["r1"])
        try (String(contentsOfFile: conf, encoding: .utf8) + "[syslog]\nlisten = systemd\n").write(toFile: conf, atomically: true, encoding: .utf8)
        return conf
    }

    func eventBundles(_ outbox: String) -> [OutboxEntry] {
        FileOutbox(directory: outbox).pending().filter { $0.trigger == .event }
    }

    @Test(arguments: ["tcp", "udp"])
    func theAgentTakesTheSyslogSocketSystemdPasses(transport: String) async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let conf = try configuration(h, dir: dir)
        let port = try SSHDHarness.freePort(on: "127.0.0.1")
        let log = dir.appendingPathComponent("service.log").path
        let service = try ChildProcess(Self.activator, (transport == "udp" ? ["--datagram"] : []) + [
            "--listen=127.0.0.1:\(port)", "--fdname=syslog", try careAgentExecutable(), "run", "--config", conf,
        ], stderr: log)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        // systemd-socket-activate listens before anything runs.
        let text = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        let listening = ContinuousClock.now + .seconds(10)
        while !text().contains("Listening on") && ContinuousClock.now < listening { try await Task.sleep(for: .milliseconds(50)) }
        _ = try runProgram("/usr/bin/logger", ["--server", "127.0.0.1", "--port", "\(port)", transport == "udp" ? "--udp" : "--tcp",
                                                "--rfc3164", "-t", "chassisd", "CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 0 offline: Error"])
        let outbox = dir.path + "/outbox"
        let deadline = ContinuousClock.now + .seconds(90)
        while eventBundles(outbox).isEmpty && ContinuousClock.now < deadline && service.isRunning { try await Task.sleep(for: .milliseconds(200)) }
        let bundles = eventBundles(outbox)
        #expect(bundles.count == 1, "\(text())")
        #expect(bundles.first?.event?.kind == "fru-offline" && bundles.first?.event?.source == "syslog")
        #expect(bundles.first?.event?.evidence.contains("Taking FPC 0 offline") == true)
        #expect(text().contains("syslog receiver listening") && text().contains("(systemd syslog)"), "\(text())")
        // `status` says where syslog is received.
        let out = dir.appendingPathComponent("status.out").path
        let status = try ChildProcess(try careAgentExecutable(), ["status", "--socket", dir.path + "/run/control.sock"], stdout: out)
        #expect(status.wait() == 0)
        let shown = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(shown.contains("syslog: listening on \(transport):fd3 (systemd syslog)"), "\(shown)")
        service.signal(SIGTERM)
        #expect(service.wait() == 0, "\(text())")
    }

    @Test func withoutThePassedSocketTheAgentSaysWhatToDo() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try SSHDHarness(.init(subsystem: "/bin/false"))
        defer { h.stop() }
        let conf = try configuration(h, dir: dir)
        let log = dir.appendingPathComponent("service.log").path
        var environment = ProcessInfo.processInfo.environment
        // Variables meant for another process (a parent's) are not taken.
        environment["LISTEN_FDS"] = "1"
        environment["LISTEN_PID"] = "1"
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf], stderr: log, environment: environment)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        let deadline = ContinuousClock.now + .seconds(30)
        while service.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!service.isRunning)
        #expect(service.wait() != 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("systemd passed no socket (LISTEN_FDS): systemctl enable care-agent-syslog.socket && systemctl restart care-agent"), "\(text)")
    }
}

/// The webhook's store and forward against a receiver the test runs: down first (notices wait,
/// failures counted, backoff), then up (delivered in order, queue empty); a notice queued by a
/// previous run of the agent is delivered by the next.
@Suite(.serialized) struct WebhookDeliveryTests {
    @Test func noticesWaitForTheReceiverAndSurviveARestart() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let hook = try WebhookReceiver(directory: dir.appendingPathComponent("hook"), token: "t-42")
        defer { hook.stop() }
        let tokenFile = dir.appendingPathComponent("token").path
        try "t-42\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile, 0o600)
        var configuration = AgentConfiguration()
        configuration.agent.stateDirectory = dir.path + "/state"
        configuration.agent.outbox = dir.path + "/outbox"
        configuration.agent.metricsFile = dir.path + "/metrics.prom"
        // The support server's own case endpoint: [upload]'s CA and token.
        configuration.upload.url = "https://127.0.0.1:\(hook.port)/care/bundles/"
        configuration.upload.caFile = hook.certificates.caCertificate
        configuration.upload.tokenFile = tokenFile
        configuration.upload.retryBackoff = .milliseconds(300)
        configuration.upload.maxBackoff = .seconds(1)
        configuration.events.webhook = hook.url
        let queue = WebhookQueue(stateDirectory: configuration.agent.stateDirectory)
        let t = Date(timeIntervalSince1970: 1_780_000_000)
        let first = EventNotice(agent: "a1", device: "r1", kind: "core-dump", source: "poll", time: t, bundle: "r1-SN1-20260528-000000.tar.gz",
                                evidence: "new core file /var/tmp/rpd.core.0.gz")
        let second = EventNotice(agent: "a1", device: "r2", kind: "fru-offline", source: "syslog", time: t.addingTimeInterval(1),
                                 bundle: "r2-SN2-20260528-000001.tar.gz", evidence: "syslog CHASSISD_FRU_OFFLINE_NOTICE: ...")
        let firstName = try queue.add(first)
        // One file under its final name, group-readable only; no temporary name left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: queue.directory) == [firstName])
        #expect(try FileManager.default.attributesOfItem(atPath: queue.path(of: firstName))[.posixPermissions] as? Int == 0o640)
        let lines = LineStore()
        let log = Logger(label: "care-agent") { _ in CapturingLogHandler(store: lines) }

        // A previous run queued `first`; this run starts with the receiver down.
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: log,
                                       makeSink: { _ in DirectorySink(root: dir.path + "/results") })
        let sender = WebhookSender(runtime: runtime, logger: log)
        let task = Task { try await sender.run() }
        defer { task.cancel() }
        func metrics() -> String { (try? String(contentsOfFile: dir.path + "/metrics.prom", encoding: .utf8)) ?? "" }
        let down = ContinuousClock.now + .seconds(30)
        while !metrics().contains("care_agent_webhook_deliveries_total{result=\"failed\"} 2\n") && ContinuousClock.now < down { try await Task.sleep(for: .milliseconds(100)) }
        #expect(metrics().contains("care_agent_webhook_pending 1\n"), "\(metrics())")
        #expect(lines.lines.contains { $0.contains("event notice not delivered") })
        let whileDown = try #require(await AgentStatus(runtime: runtime).webhook)
        // The url without its path: chat webhooks carry their secret there.
        #expect(whileDown.url == "https://127.0.0.1:\(hook.port)/…" && !lines.lines.contains { $0.contains("/hooks/care") })
        #expect(whileDown.pending == 1 && whileDown.lastSuccess == nil
                && whileDown.lastError?.contains("Couldn't connect") == true, "\(whileDown)")
        try queue.add(second)
        runtime.webhookWake.signal()
        #expect(queue.pending().count == 2, "nothing is lost while the receiver is down")

        // Up: both delivered, oldest first, with the token and as JSON; the queue empties.
        try hook.start()
        let up = ContinuousClock.now + .seconds(30)
        while hook.received().count < 2 && ContinuousClock.now < up { try await Task.sleep(for: .milliseconds(100)) }
        let received = try hook.received().map { try EventNotice.decoder().decode(EventNotice.self, from: $0) }
        #expect(received == [first, second])
        let raw = try #require(hook.received().first.map { String(decoding: $0, as: UTF8.self) })
        #expect(raw.contains("\"device\":\"r1\"") && raw.contains("\"bundle\":\"r1-SN1-20260528-000000.tar.gz\"") && raw.contains("\"kind\":\"core-dump\"")
                && raw.contains("\"source\":\"poll\"") && raw.contains("\"time\":\"2026-05-28T") && raw.contains("\"evidence\":\"new core file"))
        let settled = ContinuousClock.now + .seconds(10)
        while !queue.pending().isEmpty && ContinuousClock.now < settled { try await Task.sleep(for: .milliseconds(50)) }
        #expect(queue.pending().isEmpty)
        while !metrics().contains("care_agent_webhook_deliveries_total{result=\"ok\"} 2\n") && ContinuousClock.now < settled { try await Task.sleep(for: .milliseconds(50)) }
        #expect(metrics().contains("care_agent_webhook_deliveries_total{result=\"ok\"} 2\n") && metrics().contains("care_agent_webhook_pending 0\n"),
                "\(metrics())")
        let whileUp = try #require(await AgentStatus(runtime: runtime).webhook)
        #expect(whileUp.pending == 0 && whileUp.lastSuccess != nil && whileUp.lastError == nil, "\(whileUp)")
    }
}

extension WebhookDeliveryTests {
    /// A notice sent again (its answer lost to a timeout, or the agent stopped before removing
    /// it) gets 409 from an idempotent receiver: that is delivered, and the queue goes on.
    /// A receiver refusing every notice must not fill the state directory: `rejected/` keeps the
    /// newest ``WebhookQueue/maximumRejected``, the oldest go first.
    @Test func refusedNoticesAreKeptUpToTheLimitNewestFirst() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let queue = WebhookQueue(stateDirectory: dir.path)
        let t = Date(timeIntervalSince1970: 1_780_000_000)
        var names: [String] = []
        for i in 0 ..< WebhookQueue.maximumRejected + 3 {
            let notice = EventNotice(agent: "a1", device: "r\(i)", kind: "core-dump", source: "poll", time: t.addingTimeInterval(Double(i)),
                                     bundle: "r\(i)-SN-20260528-000000.tar.gz", evidence: "new core file")
            let name = try queue.add(notice)
            names.append(name)
            let removed = try queue.reject(name)
            #expect(removed == (i < WebhookQueue.maximumRejected ? [] : [names[i - WebhookQueue.maximumRejected]]))
        }
        let kept = try FileManager.default.contentsOfDirectory(atPath: queue.directory + "/rejected").sorted()
        #expect(kept == Array(names.suffix(WebhookQueue.maximumRejected)))
        #expect(queue.pending().isEmpty)
    }

    /// A running receiver (no token) and an agent configuration posting to it, with its queue.
    static func receiverAndQueue(in dir: URL) throws -> (WebhookReceiver, AgentConfiguration, WebhookQueue) {
        let hook = try WebhookReceiver(directory: dir.appendingPathComponent("hook"))
        try hook.start()
        var configuration = AgentConfiguration()
        configuration.agent.stateDirectory = dir.path + "/state"
        configuration.agent.outbox = dir.path + "/outbox"
        configuration.events.caFile = hook.certificates.caCertificate
        configuration.events.webhook = hook.url
        return (hook, configuration, WebhookQueue(stateDirectory: configuration.agent.stateDirectory))
    }

    /// A notice the receiver always fails on (500) does not hold the ones behind it: they are
    /// delivered, it goes last, and after five failures the others showed to be its own it is
    /// set aside in webhook/rejected/.
    @Test func aNoticeTheReceiverFailsOnDoesNotHoldTheOthers() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (hook, configuration, queue) = try Self.receiverAndQueue(in: dir)
        defer { hook.stop() }
        let t = Date(timeIntervalSince1970: 1_780_000_000)
        let poison = try queue.add(EventNotice(agent: "a1", device: "r0", kind: "core-dump", source: "poll", time: t,
                                               bundle: "r0-SN0-20260528-000000.tar.gz", evidence: "poison"))
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: makeTestLogger(),
                                       makeSink: { _ in DirectorySink(root: dir.path + "/results") })
        let sender = WebhookSender(runtime: runtime, logger: makeTestLogger())
        for round in 1 ... WebhookSender.maximumAttempts {
            try queue.add(EventNotice(agent: "a1", device: "r\(round)", kind: "core-dump", source: "poll", time: t.addingTimeInterval(Double(round)),
                                      bundle: "r\(round)-SN\(round)-20260528-000000.tar.gz", evidence: "new core file"))
            let failed = await sender.sendPending(url: hook.url, settings: configuration.events.delivery(over: configuration.upload), queue: queue)
            #expect(!failed, "round \(round): the receiver works; one notice is its problem")
            #expect(hook.received().count == round, "round \(round): the notice behind the failing one was delivered")
        }
        #expect(queue.pending().isEmpty)
        #expect(FileManager.default.fileExists(atPath: queue.directory + "/rejected/" + poison))
    }

    @Test func aNoticeTheReceiverHasAlreadyCountsAsDelivered() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var (hook, configuration, queue) = try Self.receiverAndQueue(in: dir)
        defer { hook.stop() }
        configuration.upload.retryBackoff = .seconds(60)
        let t = Date(timeIntervalSince1970: 1_780_000_000)
        let notice = EventNotice(agent: "a1", device: "r1", kind: "core-dump", source: "poll", time: t, bundle: "r1-SN1-20260528-000000.tar.gz",
                                 evidence: "new core file /var/tmp/rpd.core.0.gz")
        let later = EventNotice(agent: "a1", device: "r2", kind: "fru-offline", source: "syslog", time: t.addingTimeInterval(5),
                                bundle: "r2-SN2-20260528-000005.tar.gz", evidence: "syslog CHASSISD_FRU_OFFLINE_NOTICE: ...")
        try queue.add(notice)
        try queue.add(notice)
        try queue.add(later)
        #expect(queue.pending().count == 3)
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: makeTestLogger(),
                                       makeSink: { _ in DirectorySink(root: dir.path + "/results") })
        let task = Task { try await WebhookSender(runtime: runtime, logger: makeTestLogger()).run() }
        defer { task.cancel() }
        let deadline = ContinuousClock.now + .seconds(20)
        while !queue.pending().isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(queue.pending().isEmpty, "a 409 held the queue")
        #expect(try hook.received().map { try EventNotice.decoder().decode(EventNotice.self, from: $0) } == [notice, later])
        #expect(!FileManager.default.fileExists(atPath: queue.directory + "/rejected"))
    }
}

/// The upload token and client certificate go to the support server only: a webhook elsewhere
/// (a ticketing or chat receiver) gets `[events] token-file`'s token or none.
@Suite(.serialized) struct WebhookCredentialTests {
    @Test func theUploadTokenGoesOnlyToTheSupportServer() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let hook = try WebhookReceiver(directory: dir.appendingPathComponent("hook"))
        defer { hook.stop() }
        try hook.start()
        func secret(_ name: String, _ value: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try "\(value)\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o600)
            return path
        }
        var configuration = AgentConfiguration()
        configuration.agent.stateDirectory = dir.path + "/state"
        configuration.agent.outbox = dir.path + "/outbox"
        configuration.upload.retryBackoff = .milliseconds(300)
        configuration.upload.url = "https://127.0.0.1:1/care/bundles/"
        configuration.upload.tokenFile = try secret("upload-token", "upload-secret")
        configuration.upload.caFile = hook.certificates.caCertificate
        configuration.events.webhook = hook.url
        let queue = WebhookQueue(stateDirectory: configuration.agent.stateDirectory)
        var sent = 0
        /// Queues a notice and runs the sender with `configuration` until it is delivered.
        func deliver() async throws {
            sent += 1
            try queue.add(EventNotice(agent: "a1", device: "r\(sent)", kind: "core-dump", source: "poll", time: Date(),
                                      bundle: "r\(sent)-SN-20260528-000000.tar.gz", evidence: "new core file"))
            let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: makeTestLogger(),
                                           makeSink: { _ in DirectorySink(root: dir.path + "/results") })
            let task = Task { try await WebhookSender(runtime: runtime, logger: makeTestLogger()).run() }
            defer { task.cancel() }
            let deadline = ContinuousClock.now + .seconds(20)
            while hook.received().count < sent && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        }
        // Elsewhere (another port): [events] ca-file is the CA used; no token unless [events] gives one.
        configuration.events.caFile = hook.certificates.caCertificate
        try await deliver()
        #expect(hook.authorizations() == ["-"], "no token to a third party: \(hook.authorizations())")
        configuration.events.tokenFile = try secret("hook-token", "hook-secret")
        try await deliver()
        #expect(hook.authorizations().last == "Bearer hook-secret")
        // On the support server (the upload url's host and port): [upload]'s CA and token.
        configuration.events = EventSettings()
        configuration.events.webhook = hook.url
        configuration.upload.url = "https://127.0.0.1:\(hook.port)/care/bundles/"
        try await deliver()
        #expect(hook.authorizations().last == "Bearer upload-secret")
        #expect(hook.received().count == 3)
    }

    @Test func theDeliverySettingsFollowTheReceiversOrigin() {
        var upload = UploadSettings()
        upload.url = "https://support.example.net/care/bundles/"
        upload.tokenFile = "/etc/care-agent/token"
        upload.caFile = "/etc/care-agent/support-ca.pem"
        upload.clientCertificate = "/etc/care-agent/client.pem"
        upload.clientKey = "/etc/care-agent/client.key"
        upload.proxy = "http://proxy.example.net:3128"
        var events = EventSettings()
        events.webhook = "https://SUPPORT.example.net:443/care/events"
        #expect(events.delivery(over: upload) == upload, "the same origin, spelled otherwise")
        events.webhook = "https://support.example.net:8443/care/events"
        let elsewhere = events.delivery(over: upload)
        #expect(elsewhere.tokenFile == nil && elsewhere.caFile == nil && elsewhere.clientCertificate == nil && elsewhere.clientKey == nil)
        #expect(elsewhere.proxy == upload.proxy)
        events.tokenFile = "/etc/care-agent/hook-token"
        #expect(events.delivery(over: upload).tokenFile == "/etc/care-agent/hook-token")
    }
}

/// A small seeded generator (SplitMix64), so that a random test replays exactly.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
