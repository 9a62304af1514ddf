import Foundation
import IOLoop
import Logging
import NETCONF
import NETCONFSSH
import SSH
import Testing
import TestSupport

/// NETCONF over SSH against a real OpenSSH sshd running the project's simulator as its subsystem.
@Suite(.serialized) struct SSHIntegrationTests {
    let logger = Logger.test

    /// A harness whose subsystem serves the MX480 captures with extra simulator arguments.
    func harness(_ simulatorArguments: String = "", configure: (inout SSHDHarness.Options) -> Void = { _ in }) throws -> (SSHDHarness, URL) {
        let dir = try TestProfiles.temporaryDirectory()
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir)
        var options = SSHDHarness.Options(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) \(simulatorArguments)")
        configure(&options)
        return (try SSHDHarness(options), dir)
    }

    func endpoint(_ h: SSHDHarness, key: String? = "ed25519", password: String? = nil, passphrase: String? = nil,
                  knownHosts: String? = nil, policy: HostKeyPolicy = .strict, rpcTimeout: Duration = .seconds(20),
                  capabilities: [String] = [NETCONFNamespace.base10, NETCONFNamespace.base11]) -> DeviceEndpoint {
        DeviceEndpoint(
            host: h.addresses[0], port: h.port,
            credentials: SSHCredentials(user: h.user, privateKeyPath: key.map { h.clientKeys[$0]! }, passphrase: passphrase, password: password),
            hostKeyVerifier: HostKeyVerifier(knownHostsPath: knownHosts ?? h.knownHostsPath, policy: policy),
            sshTimeouts: SSHTimeouts(connect: .seconds(5), authentication: .seconds(10)),
            netconfTimeouts: NETCONFTimeouts(hello: .seconds(10), rpc: rpcTimeout),
            capabilities: capabilities)
    }

    func hostName(_ reply: RPCReply) -> String? {
        reply.document.root.firstDescendant("host-name")?.value
    }

    @Test func ed25519KeyAuthenticationAndChunkedFraming() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let client = try await NETCONFClient.connect(to: endpoint(h), logger: logger)
        #expect(await client.framing == .chunked)
        let reply = try await client.rpc(.junos("get-software-information"))
        #expect(hostName(reply) == "mx480-re0" || hostName(reply) != nil)
        #expect(reply.errors.isEmpty)
        let inventory = try await client.rpc(.command("show chassis hardware"))
        #expect(inventory.document.root.firstDescendant("chassis")?.value("serial-number") == "JN11F00AAFRB" ||
                inventory.document.root.firstDescendant("serial-number") != nil)
        await client.close()
    }

    @Test func ecdsaAndPassphraseProtectedKeys() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let ecdsa = try await NETCONFClient.connect(to: endpoint(h, key: "ecdsa"), logger: logger)
        #expect(try await ecdsa.rpc(.junos("get-software-information")).errors.isEmpty)
        await ecdsa.close()
        let protected = try await NETCONFClient.connect(to: endpoint(h, key: "ed25519-passphrase", passphrase: h.keyPassphrase), logger: logger)
        #expect(try await protected.rpc(.junos("get-software-information")).errors.isEmpty)
        await protected.close()
        await #expect {
            _ = try await NETCONFClient.connect(to: endpoint(h, key: "ed25519-passphrase", passphrase: "wrong"), logger: logger)
        } throws: { error in
            guard let e = error as? SSHError, case .privateKey = e else { return false }
            return e.description.contains("wrong passphrase")
        }
    }

    /// The agent reads each group's key once and authenticates every session from memory: the
    /// file is not needed again (here it is gone), for every key type the agent supports.
    /// Unencrypted ed25519 and ECDSA keys sign through ``SSHSigningKey`` (parsed once); the
    /// encrypted one goes through libssh2.
    @Test func keysAuthenticateFromMemoryWithoutTheirFile() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        for (key, passphrase, signsItself) in [("ed25519", nil, true), ("ecdsa", nil, true), ("ecdsa-384", nil, true),
                                               ("ecdsa-521", nil, true), ("ecdsa-pem", nil, true),
                                               ("ed25519-passphrase", h.keyPassphrase, false)] {
            var target = endpoint(h, key: key, passphrase: passphrase)
            target.credentials.privateKey = [UInt8](try Data(contentsOf: URL(fileURLWithPath: h.clientKeys[key]!)))
            #expect((target.credentials.signingKey != nil) == signsItself, "\(key)")
            target.credentials.privateKeyPath = dir.appendingPathComponent("moved-away-\(key)").path
            let client = try await NETCONFClient.connect(to: target, logger: logger)
            #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty, "\(key)")
            await client.close()
        }
        // A wrong passphrase is still told as one.
        var wrong = endpoint(h, key: "ed25519-passphrase", passphrase: "wrong")
        wrong.credentials.privateKey = [UInt8](try Data(contentsOf: URL(fileURLWithPath: h.clientKeys["ed25519-passphrase"]!)))
        await #expect {
            _ = try await NETCONFClient.connect(to: wrong, logger: logger)
        } throws: { error in
            guard let e = error as? SSHError, case .privateKey = e else { return false }
            return e.description.contains("wrong passphrase")
        }
    }

    @Test func rsaKeyAgainstServerAllowingSSHRSA() async throws {
        let (h, dir) = try harness { $0.allowSSHRSA = true; $0.hostKeyTypes = ["rsa"] }
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let client = try await NETCONFClient.connect(to: endpoint(h, key: "rsa"), logger: logger)
        #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
        await client.close()
    }

    /// Debian 12's libssh2 (1.10) signs with SHA-1 (ssh-rsa) only, which OpenSSH 8.8+ refuses by
    /// default: the failure says so and what to use instead.
    @Test func rsaKeyRefusedByAModernServerSaysWhy() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        await #expect {
            _ = try await NETCONFClient.connect(to: endpoint(h, key: "rsa"), logger: logger)
        } throws: { error in
            guard let e = error as? SSHError, case .authenticationFailed = e else { return false }
            return e.description.contains("the key is RSA") && e.description.contains("ssh-keygen -t ed25519")
        }
    }

    @Test func passwordAuthentication() async throws {
        let (h, dir) = try harness { $0.publicKey = false; $0.password = true }
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        try #require(getuid() == 0, "password tests need root to give the care-test account a password")
        let client = try await NETCONFClient.connect(to: endpoint(h, key: nil, password: SSHDHarness.testPassword), logger: logger)
        #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
        await client.close()
    }

    @Test func keyboardInteractiveOnly() async throws {
        let (h, dir) = try harness { $0.publicKey = false; $0.keyboardInteractive = true }
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        try #require(getuid() == 0, "keyboard-interactive tests need root to give the care-test account a password")
        let client = try await NETCONFClient.connect(to: endpoint(h, key: nil, password: SSHDHarness.testPassword), logger: logger)
        #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
        await client.close()
    }

    @Test func wrongPasswordNamesTheOfferedMethods() async throws {
        let (h, dir) = try harness { $0.password = true; $0.publicKey = true
            $0.keyboardInteractive = false }
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        await #expect {
            _ = try await NETCONFClient.connect(to: endpoint(h, key: nil, password: "not-the-password"), logger: logger)
        } throws: { error in
            let text = "\(error)"
            return text == "\(h.addresses[0]):\(h.port): authentication failed for user \(h.user) (server offered: publickey,password); tried: password"
        }
    }

    /// The authentication requests sshd logged (DEBUG1), by method, in order. (sshd ends its
    /// stderr lines with CR LF: one Character, not "\n".)
    func authenticationMethods(in log: String) -> [String] {
        log.split(whereSeparator: \.isNewline).compactMap { line in
            guard line.contains("userauth-request for user"), let range = line.range(of: " method ") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != " " })
        }
    }

    @Test func aKeyIsTriedWithoutFirstAskingForTheMethods() async throws {
        let (h, dir) = try harness { $0.logLevel = "DEBUG1" }
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let client = try await NETCONFClient.connect(to: endpoint(h), logger: logger)
        #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
        await client.close()
        // libssh2 asks whether the key would do, then signs: no "none" request before it, which
        // would cost every session a round trip.
        #expect(authenticationMethods(in: h.log) == ["publickey", "publickey"])
    }

    @Test func aRefusedKeyFallsBackToThePassword() async throws {
        let (h, dir) = try harness { $0.password = true; $0.publicKey = true; $0.logLevel = "DEBUG1" }
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        try #require(getuid() == 0, "password tests need root to give the care-test account a password")
        // A key the device does not know.
        let stranger = dir.appendingPathComponent("stranger_ed25519").path
        let keygen = Process()
        keygen.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
        keygen.arguments = ["-q", "-t", "ed25519", "-N", "", "-f", stranger]
        try keygen.run()
        keygen.waitUntilExit()
        try #require(keygen.terminationStatus == 0)
        var device = endpoint(h, key: nil, password: SSHDHarness.testPassword)
        device.credentials.privateKeyPath = stranger
        let client = try await NETCONFClient.connect(to: device, logger: logger)
        #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
        await client.close()
        // The methods are asked for ("none") only once the key is refused, then the password goes.
        #expect(authenticationMethods(in: h.log) == ["publickey", "none", "password"])
    }

    @Test func unknownHostKeyStrictRefusesAcceptNewRecords() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("known_hosts_empty").path
        await #expect {
            _ = try await NETCONFClient.connect(to: endpoint(h, knownHosts: empty), logger: logger)
        } throws: { error in
            guard let e = error as? SSHError, case .hostKeyUnknown = e else { return false }
            return e.description.contains("[\(h.addresses[0])]:\(h.port)") && e.description.contains("SHA256:")
        }
        #expect(!FileManager.default.fileExists(atPath: empty))
        let first = try await NETCONFClient.connect(to: endpoint(h, knownHosts: empty, policy: .acceptNew), logger: logger)
        await first.close()
        let recorded = try String(contentsOfFile: empty, encoding: .utf8)
        #expect(recorded.hasPrefix("[\(h.addresses[0])]:\(h.port) ssh-ed25519 "))
        // Now known: strict accepts it.
        let second = try await NETCONFClient.connect(to: endpoint(h, knownHosts: empty, policy: .strict), logger: logger)
        #expect(try await second.rpc(.junos("get-software-information")).errors.isEmpty)
        await second.close()
    }

    @Test func changedHostKeyIsRefusedWithBothFingerprints() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        // A known_hosts whose ed25519 entry for this host is another key.
        let other = dir.appendingPathComponent("other_key").path
        try runProgram("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other])
        let otherPub = try String(contentsOfFile: other + ".pub", encoding: .utf8).split(separator: " ")
        let path = dir.appendingPathComponent("known_hosts_changed").path
        try "# comment\n[\(h.addresses[0])]:\(h.port) \(otherPub[0]) \(otherPub[1])\n".write(toFile: path, atomically: true, encoding: .utf8)
        let expectedKnown = HostKey(blob: Array(Data(base64Encoded: String(otherPub[1]))!))!.fingerprint
        let serverPub = try String(contentsOfFile: h.directory.appendingPathComponent("ssh_host_ed25519_key.pub").path, encoding: .utf8).split(separator: " ")
        let expectedSent = HostKey(blob: Array(Data(base64Encoded: String(serverPub[1]))!))!.fingerprint
        for policy in HostKeyPolicy.allCases {
            await #expect {
                _ = try await NETCONFClient.connect(to: endpoint(h, knownHosts: path, policy: policy), logger: logger)
            } throws: { error in
                "\(error)".hasPrefix("host key for [\(h.addresses[0])]:\(h.port) has changed: \(path) line 2 has \(expectedKnown), the server sent \(expectedSent)")
            }
        }
    }

    @Test func rpcErrorForUnknownRPC() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let client = try await NETCONFClient.connect(to: endpoint(h), logger: logger)
        let reply = try await client.rpc(.junos("get-no-such-thing"))
        #expect(reply.errors.count == 1)
        #expect(reply.errors.first?.info["bad-element"] == "get-no-such-thing")
        #expect(reply.errors.first?.message == "syntax error")
        // The session survives an rpc-error.
        #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
        await client.close()
    }

    @Test func warningBesideDataIsKeptAndDoesNotFail() async throws {
        let (h, dir) = try harness("--fault warning")
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let client = try await NETCONFClient.connect(to: endpoint(h), logger: logger)
        let reply = try await client.rpc(.junos("get-software-information"))
        #expect(reply.errors.isEmpty)
        #expect(reply.warnings.count == 1)
        #expect(reply.warnings.first?.message == "statement has no contents; ignored")
        #expect(hostName(reply) != nil)
        await client.close()
    }

    @Test func hangingDeviceTimesOutWithoutDelayingOthers() async throws {
        let (hung, dirA) = try harness("--fault hang")
        let (healthy, dirB) = try harness("--latency-ms 200")
        defer { hung.stop(); healthy.stop(); try? FileManager.default.removeItem(at: dirA); try? FileManager.default.removeItem(at: dirB) }
        let started = ContinuousClock.now
        async let hungResult: String = {
            let client = try await NETCONFClient.connect(to: endpoint(hung, rpcTimeout: .seconds(2)), logger: logger)
            do {
                _ = try await client.rpc(.junos("get-chassis-inventory"))
                return "no error"
            } catch {
                // The session is torn down: further RPCs fail at once.
                await #expect(throws: NETCONFError.self) { _ = try await client.rpc(.junos("get-software-information")) }
                return "\(error)"
            }
        }()
        var healthyDurations: [Duration] = []
        for _ in 0..<3 {
            let t = ContinuousClock.now
            let client = try await NETCONFClient.connect(to: endpoint(healthy), logger: logger)
            #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
            await client.close()
            healthyDurations.append(ContinuousClock.now - t)
        }
        let message = try await hungResult
        #expect(message == "\(hung.addresses[0]):\(hung.port): no reply to get-chassis-inventory within 2 s")
        #expect(ContinuousClock.now - started < .seconds(15))
        // Each healthy session took about its 200 ms latency, not the hung device's 2 s.
        #expect(healthyDurations.allSatisfy { $0 < .seconds(1.8) })
    }

    @Test func replyCutOffMidStream() async throws {
        let (h, dir) = try harness("--fault truncate")
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let client = try await NETCONFClient.connect(to: endpoint(h), logger: logger)
        await #expect {
            _ = try await client.rpc(.junos("get-chassis-inventory"))
        } throws: { error in
            "\(error)".hasPrefix("\(h.addresses[0]):\(h.port): the device closed the session in the middle of the reply to get-chassis-inventory")
        }
    }

    @Test func baseOneZeroFramingWhenTheDeviceOffersOnlyThat() async throws {
        let (h, dir) = try harness("--base 1.0")
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let client = try await NETCONFClient.connect(to: endpoint(h), logger: logger)
        #expect(await client.framing == .endOfMessage)
        #expect(try await client.rpc(.junos("get-software-information")).errors.isEmpty)
        #expect(try await client.rpc(.junos("get-chassis-inventory")).errors.isEmpty)
        await client.close()
        // And when the client offers only base:1.0 to a 1.1-capable device.
        let (h2, dir2) = try harness()
        defer { h2.stop(); try? FileManager.default.removeItem(at: dir2) }
        let client2 = try await NETCONFClient.connect(to: endpoint(h2, capabilities: [NETCONFNamespace.base10]), logger: logger)
        #expect(await client2.framing == .endOfMessage)
        #expect(try await client2.rpc(.junos("get-software-information")).errors.isEmpty)
        await client2.close()
    }

    @Test func hundredMegabyteReply() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "big", under: dir)
        // A 100 MB configuration made by repeating a real interface stanza.
        let stanza = "<interface><name>ge-0/0/0</name><description>uplink to core</description><unit><name>0</name><family><inet><address><name>192.0.2.1/31</name></address></inet></family></unit></interface>\n"
        let count = 100 * 1024 * 1024 / stanza.utf8.count + 1
        var big = Data("<rpc-reply xmlns:junos=\"http://xml.juniper.net/junos/21.4R3/junos\"><configuration><interfaces>\n".utf8)
        big.reserveCapacity(count * stanza.utf8.count + 200)
        let stanzaData = Data(stanza.utf8)
        for _ in 0..<count { big.append(stanzaData) }
        big.append(Data("</interfaces></configuration></rpc-reply>\n".utf8))
        try big.write(to: URL(fileURLWithPath: profile).appendingPathComponent("get-configuration.xml"))
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        // The default limit (32 MiB) refuses it, naming the limit; the device's session alone fails.
        let limited = try await NETCONFClient.connect(to: endpoint(h, rpcTimeout: .seconds(120)), logger: logger)
        do {
            _ = try await limited.rpc(.junosConfiguration())
            Issue.record("a 100 MB reply passed the default 32 MiB limit")
        } catch {
            #expect("\(error)".contains("message larger than the 32 MiB limit"), "\(error)")
        }
        await limited.close()
        // Raised for the group (maximum-reply-size = 256MiB), it arrives whole.
        var raised = endpoint(h, rpcTimeout: .seconds(120))
        raised.maximumMessageSize = 256 << 20
        let client = try await NETCONFClient.connect(to: raised, logger: logger)
        let reply = try await client.rpc(.junosConfiguration())
        #expect(reply.raw.count > 100 * 1024 * 1024)
        #expect(reply.document.root.child(path: "configuration/interfaces")?.children("interface").count == count)
        await client.close()
    }

    @Test func sessionSetUpsTakeTurnsAndTheHelloIsNotPartOfOne() async throws {
        // Each device takes 1.5 s to send its hello (Junos takes its time to start a NETCONF server).
        let (h, dir) = try harness("--setup-delay-ms 1500")
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let turns = CountingAdmission(limit: 2)
        var gated = endpoint(h)
        gated.handshakeAdmission = turns
        let endpoint = gated
        let started = ContinuousClock.now
        let failures = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    do {
                        let client = try await NETCONFClient.connect(to: endpoint, logger: logger)
                        await client.close()
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
            }
            var all: [String] = []
            for await failure in group { if let failure { all.append(failure) } }
            return all
        }
        let elapsed = started.duration(to: .now)
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        // Two set-ups at a time, never more, and every turn given back.
        #expect(await turns.peak == 2)
        #expect(await turns.admitted == 8)
        #expect(await turns.left == 8)
        // Had the 1.5 s hello been part of a turn, eight sessions on two turns would take 6 s.
        #expect(elapsed < .seconds(4.5), "\(elapsed)")

        // A set-up that fails (a login the server refuses) gives its turn back too.
        var refused = self.endpoint(h, key: nil, password: "not-the-password")
        refused.handshakeAdmission = turns
        await #expect(throws: (any Error).self) { _ = try await NETCONFClient.connect(to: refused, logger: logger) }
        #expect(await turns.admitted == 9)
        #expect(await turns.left == 9)
        #expect(await turns.held == 0)
    }

    /// A port that is no SSH server and never stops talking (text lines, or bytes without a
    /// newline): refused as such within the deadline, and another session on the same I/O loop
    /// completes meanwhile. libssh2's own banner reader took the bytes one at a time for as
    /// long as they came, holding the loop thread for good.
    @Test(arguments: ["hello there\r\n", "x"])
    func aServerThatStreamsTextIsRefusedWithoutHoldingItsLoop(text: String) async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let chatter = try ChatterServer(text: text)
        defer { chatter.stop() }
        let loop = IOLoopGroup.shared.forSession()
        let device = endpoint(h)
        let logger = logger
        let started = ContinuousClock.now
        let chatty = Task {
            try await SSHSession.connect(host: "127.0.0.1", port: chatter.port, credentials: device.credentials,
                                         hostKeyVerifier: device.hostKeyVerifier,
                                         timeouts: SSHTimeouts(connect: .seconds(3), authentication: .seconds(3)), loop: loop, logger: logger)
        }
        let other = try await SSHSession.connect(host: h.addresses[0], port: h.port, credentials: device.credentials,
                                                 hostKeyVerifier: device.hostKeyVerifier, timeouts: device.sshTimeouts, loop: loop, logger: logger)
        await other.close()
        #expect(started.duration(to: .now) < .seconds(3))
        do {
            let session = try await chatty.value
            await session.close()
            Issue.record("a server that is not SSH was accepted")
        } catch {
            let expected = text == "x" ? "a line longer than 1024 bytes" : "more than 8192 bytes without an SSH identification line"
            #expect("\(error)".contains(expected), "\(error)")
        }
        #expect(started.duration(to: .now) < .seconds(4))
    }

    @Test func aDeviceThatDoesNotAnswerHoldsNoTurn() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        // A listener whose accept queue is full: the kernel drops further SYNs, as a device that
        // is down or filtered does not answer them.
        let silentListener = try SilentListener()
        defer { withExtendedLifetime(silentListener) {} }

        let turns = CountingAdmission(limit: 1)
        var silent = endpoint(h)
        silent.port = silentListener.port
        silent.sshTimeouts = SSHTimeouts(connect: .seconds(4), authentication: .seconds(4))
        silent.handshakeAdmission = turns
        let silentEndpoint = silent
        let waiting = Task { try await NETCONFClient.connect(to: silentEndpoint, logger: logger) }
        try await Task.sleep(for: .milliseconds(300))
        // The one turn is free while the silent device's SYNs go unanswered: a reachable device
        // gets its session at once.
        var reachable = endpoint(h)
        reachable.handshakeAdmission = turns
        let started = ContinuousClock.now
        let client = try await NETCONFClient.connect(to: reachable, logger: logger)
        #expect(started.duration(to: .now) < .seconds(3))
        await client.close()
        // Had the silent device taken the turn before its TCP connect, the reachable one would
        // have waited for its 4 s connect timeout (or, once a retried SYN got through, for its
        // SSH timeout).
        await #expect(throws: (any Error).self) { _ = try await waiting.value }
        #expect(await turns.held == 0)
    }

    @Test func twoHundredConcurrentSessions() async throws {
        let (h, dir) = try harness()
        defer { h.stop(); try? FileManager.default.removeItem(at: dir) }
        let results = await withTaskGroup(of: Result<String, Error>.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    do {
                        let client = try await NETCONFClient.connect(to: endpoint(h, rpcTimeout: .seconds(60)), logger: logger)
                        let reply = try await client.rpc(.junos("get-software-information"))
                        await client.close()
                        return .success(hostName(reply) ?? "")
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var all: [Result<String, Error>] = []
            for await r in group { all.append(r) }
            return all
        }
        let failures = results.compactMap { if case let .failure(e) = $0 { return "\(e)" } else { return nil } }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(results.count == 200)
    }
}

/// `care-agent rpc` end to end against the simulator behind a real sshd.
@Suite struct RPCCommandTests {
    /// A name with an IPv6 address the device does not listen on, then its IPv4 one (a hosts
    /// file of the test's own, in a mount namespace): the second address is tried, as `ssh` does.
    @Test func everyAddressOfANameIsTried() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let hosts = dir.appendingPathComponent("hosts").path
        try "::1 dualhost\n127.0.0.1 dualhost\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let known = dir.appendingPathComponent("known_hosts").path
        try (try String(contentsOfFile: h.knownHostsPath, encoding: .utf8)).replacingOccurrences(of: "[127.0.0.1]", with: "[dualhost]")
            .write(toFile: known, atomically: true, encoding: .utf8)
        let command = "mount --bind \(hosts) /etc/hosts && exec \(try careAgentExecutable()) rpc --host dualhost --port \(h.port) --user \(h.user) "
            + "--key \(h.clientKeys["ed25519"]!) --known-hosts \(known) --connect-timeout 5 get-software-information"
        let out = try runProgram("/usr/bin/unshare", ["--mount", "/bin/sh", "-c", command])
        #expect(out.contains("<software-information>") || out.contains("<multi-routing-engine-results>"), "\(out)")
    }

    /// A resolver that never answers (a silent DNS server in a network namespace of the test's
    /// own): the name fails within the connect timeout, not the resolver's own timeouts and retries.
    @Test func aResolverThatDoesNotAnswerIsBoundByTheConnectTimeout() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let resolv = dir.appendingPathComponent("resolv.conf").path
        try "nameserver 127.0.0.1\noptions timeout:4 attempts:3\n".write(toFile: resolv, atomically: true, encoding: .utf8)
        let hosts = dir.appendingPathComponent("hosts").path
        try "127.0.0.1 localhost\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let password = dir.appendingPathComponent("password").path
        try "unused\n".write(toFile: password, atomically: true, encoding: .utf8)
        chmod(password, 0o600)
        let silentDNS = "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 53)); time.sleep(60)"
        let command = "ip link set lo up && mount --bind \(resolv) /etc/resolv.conf && mount --bind \(hosts) /etc/hosts && "
            + "(/usr/bin/python3 -c \"\(silentDNS)\" & sleep 0.3; "
            + "\(try careAgentExecutable()) rpc --host device.invalid-test --user x --password-file \(password) --known-hosts /dev/null --connect-timeout 1 get-software-information; "
            + "echo \"exit=$?\"; kill %1)"
        let started = ContinuousClock.now
        let child = try ChildProcess("/usr/bin/unshare", ["--net", "--mount", "/bin/sh", "-c", command],
                                     stdout: dir.appendingPathComponent("out").path, stderr: dir.appendingPathComponent("err").path)
        _ = child.wait()
        let elapsed = started.duration(to: .now)
        let output = readText(dir.appendingPathComponent("out").path) + readText(dir.appendingPathComponent("err").path)
        #expect(output.contains("exit=2") && output.contains("no answer from the name resolver within 1"), "\(output)")
        #expect(elapsed < .seconds(5), "\(elapsed)")
    }

    @Test func printsEveryReplyAndFailsOnlyForTheFailedRPC() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let out = dir.appendingPathComponent("out").path, err = dir.appendingPathComponent("err").path
        func run(_ extra: [String]) throws -> (Int32, String, String) {
            let child = try ChildProcess(try careAgentExecutable(), [
                "rpc", "--host", h.addresses[0], "--port", "\(h.port)", "--user", h.user,
                "--key", h.clientKeys["ed25519"]!, "--known-hosts", h.knownHostsPath,
            ] + extra, stdout: out, stderr: err)
            let status = child.wait()
            return (status, try String(contentsOfFile: out, encoding: .utf8), try String(contentsOfFile: err, encoding: .utf8))
        }
        let (ok, stdout, stderr) = try run(["get-software-information", "<get-route-engine-information/>", "--command", "show chassis hardware"])
        #expect(ok == 0, "\(stderr)")
        #expect(stdout.components(separatedBy: "<rpc-reply").count - 1 == 3)
        #expect(stdout.contains("<software-information>") || stdout.contains("<multi-routing-engine-results>"))
        #expect(stdout.contains("<route-engine-information"))
        #expect(stdout.contains("<chassis-inventory"))
        #expect(stderr.isEmpty)

        let (failed, _, stderr2) = try run(["get-software-information", "get-bogus-information"])
        #expect(failed == 1)
        #expect(stderr2 == "care-agent: \(h.addresses[0]):\(h.port): get-bogus-information: syntax error (bad element: get-bogus-information) [protocol operation-failed]\n")

        let (unknownHost, _, stderr3) = try run(["--host-key-policy", "strict", "get-software-information"].map { $0 } + ["--known-hosts", dir.appendingPathComponent("none").path])
        #expect(unknownHost == 2)
        #expect(stderr3.hasPrefix("care-agent: host key for [\(h.addresses[0])]:\(h.port) is not known"))
    }
}

extension RPCCommandTests {
    @Test func aLostSessionNamesEveryRPCNotSent() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) --fault truncate"))
        defer { h.stop() }
        let out = dir.appendingPathComponent("out").path, err = dir.appendingPathComponent("err").path
        let status = try ChildProcess(try careAgentExecutable(), [
            "rpc", "--host", h.addresses[0], "--port", "\(h.port)", "--user", h.user,
            "--key", h.clientKeys["ed25519"]!, "--known-hosts", h.knownHostsPath,
            "get-software-information", "get-chassis-inventory", "--command", "show version",
        ], stdout: out, stderr: err).wait()
        let lines = try String(contentsOfFile: err, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(status == 1)
        #expect(lines.count == 3, "\(lines)")
        #expect(lines.first?.contains("closed the session in the middle of the reply to get-software-information") == true)
        #expect(lines.dropFirst().first == "care-agent: \(h.addresses[0]):\(h.port): get-chassis-inventory: not sent: the session was lost")
        #expect(lines.last == "care-agent: \(h.addresses[0]):\(h.port): command \"show version\": not sent: the session was lost")
    }
}

/// Turns for session set-ups that count what they see: how many were admitted, given back, held
/// at most at once.
actor CountingAdmission: HandshakeAdmission {
    let limit: Int
    private(set) var held = 0
    private(set) var peak = 0
    private(set) var admitted = 0
    private(set) var left = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = limit }

    func admit() async {
        if held < limit {
            held += 1
        } else {
            // The turn passes straight from the leaver, who keeps `held` as it is.
            await withCheckedContinuation { waiters.append($0) }
        }
        admitted += 1
        peak = max(peak, held)
    }

    func leave() {
        left += 1
        if waiters.isEmpty { held -= 1 } else { waiters.removeFirst().resume() }
    }
}
