import Agent
import Foundation
import Junos
import NETCONF
import Testing
import TestSupport

@Suite struct ConfigurationTests {
    let example = """
    # test configuration
    [agent]
    outbox = /tmp/outbox
    concurrency = 7

    [defaults]
    user = care
    key-file = /etc/care-agent/id_ed25519   # inline comment
    rpc-timeout = 45s
    schedule = every 6h

    [group core]
    password-file = /etc/care-agent/core.password
    concurrency = 2
    schedule = daily 02:00-04:00
    jitter = 0
    rpc = get-interface-information
    command = show system users
    skip = storage, coreDumps

    [device r1]
    host = 192.0.2.1
    group = core

    [device sw1]
    host = "sw1.example.net"
    port = 22
    """

    @Test func parsesSectionsInheritanceAndDevices() throws {
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: example))
        #expect(config.agent.outbox == "/tmp/outbox")
        #expect(config.agent.concurrency == 7)
        let core = try #require(config.groups["core"])
        // Inherited from [defaults], overridden where the group says so.
        #expect(core.credentials.user == "care")
        #expect(core.credentials.keyFile == "/etc/care-agent/id_ed25519")
        #expect(core.credentials.passwordFile == "/etc/care-agent/core.password")
        #expect(core.rpcTimeout == .seconds(45))
        #expect(core.concurrency == 2)
        #expect(core.schedule == .daily(start: 120, end: 240))
        #expect(core.jitter == .zero)
        #expect(core.extraRequests == [.junos("get-interface-information"), .command("show system users")])
        #expect(core.skippedFacts == [.storage, .coreDumps])
        let defaults = try #require(config.groups[AgentConfiguration.defaultGroup])
        #expect(defaults.schedule == .interval(.seconds(6 * 3600)))
        #expect(defaults.credentials.passwordFile == nil)
        #expect(config.devices == [Device(name: "r1", host: "192.0.2.1", group: "core"),
                                   Device(name: "sw1", host: "sw1.example.net", port: 22)])
        // The plan: default facts minus the skipped ones, then the extras.
        let steps = CollectionPlan.steps(for: core).map(\.request.name)
        #expect(steps.first == "get-software-information")
        #expect(!steps.contains("get-system-storage") && !steps.contains("get-system-core-dumps"))
        #expect(steps.suffix(3) == ["get-configuration", "get-interface-information", "command \"show system users\""])
    }

    @Test(arguments: [
        ("[agent]\nconcurrency = lots\n", "agent.conf:2:15: expected a positive whole number, found \"lots\""),
        ("[agent]\nhandshakes = 0\n", "agent.conf:2:14: expected a positive whole number, found \"0\""),
        ("[agent]\n\n[group core]\nrpc-timeout = soon\n", "agent.conf:4:15: expected a duration such as 30s, 5m, 6h or 1d, found \"soon\""),
        ("[group core]\nschedule = hourly\n", "agent.conf:2:12: expected \"every DURATION\" (every 6h), \"daily HH:MM-HH:MM\" (daily 02:00-04:00) or \"manual\", found \"hourly\""),
        ("[group core]\nschedule = daily 25:00-02:00\n", "agent.conf:2:12: expected a window HH:MM-HH:MM such as 02:00-04:00 after \"daily\", found \"25:00-02:00\""),
        ("[group core\n", "agent.conf:1:12: expected \"]\" to close the section header"),
        ("[site x]\n", "agent.conf:1:2: expected agent, defaults, upload, reports, syslog, events, group NAME, device NAME, event KIND or inventory NAME, found \"site\""),
        ("user = x\n", "agent.conf:1:1: expected a section header such as [agent] before the first key"),
        ("[agent]\n  just words\n", "agent.conf:2:13: expected \"key = value\" or a [section] header"),
        ("[group a]\nport = 99999\n", "agent.conf:2:8: expected a TCP port from 1 to 65535, found \"99999\""),
        ("[group a]\nfrobnicate = yes\n", "agent.conf:2:1: unknown key \"frobnicate\" in a group section; see agent.conf.example for the keys"),
        ("[device r1]\nhost = 192.0.2.1\ngroup = nowhere\n", "agent.conf:3:9: device r1 is in group nowhere, which no [group nowhere] section defines; add one, or correct the name"),
        ("[group a]\nhost-key-policy = yolo\n", "agent.conf:2:19: expected strict or accept-new, found \"yolo\""),
        ("[group a]\nvalue = \"open\n", "agent.conf:2:14: expected a closing \" for the value started at column 9"),
        ("[agent]\nredact-path = snmp//name\n", "agent.conf:2:15: expected a statement path such as snmp/trap-group/name, found \"snmp//name\": it has an empty statement name (a leading, trailing or double /)"),
        ("[agent]\n\nredact-path = location\n", "agent.conf:3:15: expected a statement path such as snmp/trap-group/name, found \"location\": one name alone is a leaf anywhere, a keyword rule: use redact-keyword (--keyword)"),
        ("[agent]\nredact-path = interfaces/<*>/description\n", "agent.conf:2:15: expected a statement path such as snmp/trap-group/name, found \"interfaces/<*>/description\": \"<*>\" is not a statement name (no blanks, quotes, braces, brackets or wildcards)"),
    ])
    func brokenLineIsReportedWithItsPosition(text: String, expected: String) {
        #expect(throws: ConfigurationError.self) { try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text)) }
        do {
            _ = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text))
        } catch {
            #expect(error.description == expected)
        }
    }

    @Test func sessionSetUpTurnsAreAQuarterOfTheConcurrencyUnlessSet() async throws {
        func limits(_ text: String) async throws -> [Int] {
            let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text))
            let limits = CollectionLimits(configuration: config)
            return [config.agent.handshakeLimit, await limits.handshakes.limit]
        }
        #expect(try await limits("[agent]\n") == [8, 8])
        #expect(try await limits("[agent]\nconcurrency = 512\n") == [128, 128])
        #expect(try await limits("[agent]\nconcurrency = 2\n") == [1, 1])
        #expect(try await limits("[agent]\nconcurrency = 512\nhandshakes = 16\n") == [16, 16])
        // More turns than slots is allowed and simply never binds.
        #expect(try await limits("[agent]\nconcurrency = 4\nhandshakes = 64\n") == [64, 64])
    }

    @Test func windowsLineEndingsAndByteOrderMark() throws {
        let text = "\u{FEFF}" + example.replacingOccurrences(of: "\n", with: "\r\n")
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text))
        #expect(config.agent.concurrency == 7)
        #expect(config.devices.map(\.name).sorted() == ["r1", "sw1"])
        #expect(config.devices.first { $0.name == "sw1" }?.host == "sw1.example.net")
        // Positions still count lines as the editor shows them.
        do {
            _ = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: "[agent]\r\n\r\nconcurrency = lots\r\n"))
            Issue.record("accepted a broken line")
        } catch {
            #expect(error.description == "agent.conf:3:15: expected a positive whole number, found \"lots\"")
        }
    }

    @Test func inventoryCSVFromASpreadsheetWithByteOrderMark() throws {
        let inventory = try InventoryFile(path: "inv.csv", text: "\u{FEFF}name,host\r\nr1,192.0.2.1\r\n")
        var config = AgentConfiguration()
        try config.addInventory(inventory)
        #expect(config.devices == [Device(name: "r1", host: "192.0.2.1")])
    }

    @Test(arguments: ["https://care:hunter2@support.example.net/bundles/",
                      // Does not parse as a URL (space, `#`, `%` in the password): still not echoed.
                      "https://care:hun ter#2%zz@support.example.net/bundles/"])
    func uploadURLWithCredentialsIsRefusedWithoutEchoingThem(url: String) {
        do {
            _ = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: "[upload]\nurl = \(url)\n"))
            Issue.record("a URL with a password was accepted")
        } catch {
            #expect(error.description.hasPrefix("agent.conf:2:7: expected a URL without user:password@"), "\(error)")
            #expect(!error.description.contains("hunter2") && !error.description.contains("hun ter"))
        }
    }

    @Test func redactionRulesAreReadAndReachTheRedactor() throws {
        let text = """
        [agent]
        redact-keyword = customer-token
        redact-pattern = "AKIA[0-9A-Z]{8}"
        redact-path = snmp/contact
        redact-path = interfaces/interface/description
        """
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: text))
        #expect(config.agent.redactPaths == ["snmp/contact", "interfaces/interface/description"])
        #expect(config.agent.redactKeywords == ["customer-token"])
        #expect(config.agent.redactPatterns == ["AKIA[0-9A-Z]{8}"])
        // CollectionTests checks that the collector's redactor applies them.
    }

    /// Configuration asked for as JSON would be redacted for crypt-looking tokens only: refused,
    /// naming the forms that are redacted by structure; other JSON replies and XML/text/set pass.
    @Test func configurationAsJSONIsRefused() throws {
        for (line, column) in [("rpc = <get-configuration format=\"json\"/>", 7), ("rpc = <get-configuration format='JSON'><configuration><snmp/></configuration></get-configuration>", 7),
                               ("command = show configuration snmp | display json", 11)] {
            do {
                _ = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: "[defaults]\n\(line)\n"))
                Issue.record("accepted: \(line)")
            } catch {
                #expect(error.description.hasPrefix("agent.conf:2:\(column): configuration as JSON cannot be redacted by its structure"), "\(error)")
            }
        }
        for line in ["rpc = <get-configuration format=\"set\"/>", "rpc = <get-configuration format=\"text\"/>",
                     "rpc = <get-interface-information format=\"json\"/>", "command = show configuration | display set",
                     "command = show interfaces terse | display json"] {
            #expect(throws: Never.self, "\(line)") { _ = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: "[defaults]\n\(line)\n")) }
        }
    }

    @Test func clearTextSecretsAreRefused() {
        for (key, hint) in [("password", "password-file"), ("passphrase", "passphrase-file")] {
            do {
                _ = try AgentConfiguration(file: ConfigurationFile(path: "/etc/care-agent/agent.conf", text: "[defaults]\nuser = care\n\(key) = hunter2\n"))
                Issue.record("a clear-text \(key) was accepted")
            } catch {
                #expect(error.description.hasPrefix("/etc/care-agent/agent.conf:3:1: clear-text secrets are refused in agent.conf"))
                #expect(error.description.contains(hint))
                #expect(!error.description.contains("hunter2"))
            }
        }
    }

    @Test func inventoryCSVWithQuotesExtraColumnsAndGroups() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = [
            "name,host,port,group,site",
            "# a comment line",
            #"r1,192.0.2.1,,core,"Paris, rack 4""#,
            #""sw ""2""",sw2.example.net,22,,Lyon"#,
            "",
            #"r3 , 192.0.2.3 ,830,core,"multi"#,
            #"line""#,
        ].joined(separator: "\n")
        try csv.write(to: dir.appendingPathComponent("inventory.csv"), atomically: true, encoding: .utf8)
        let conf = "[agent]\ninventory = inventory.csv\n[group core]\nuser = x\n[device inline]\nhost = 192.0.2.9\n"
        try conf.write(to: dir.appendingPathComponent("agent.conf"), atomically: true, encoding: .utf8)
        let config = try AgentConfiguration.load(path: dir.appendingPathComponent("agent.conf").path)
        #expect(config.devices == [
            Device(name: "inline", host: "192.0.2.9"),
            Device(name: "r1", host: "192.0.2.1", group: "core"),
            Device(name: "sw \"2\"", host: "sw2.example.net", port: 22),
            Device(name: "r3", host: "192.0.2.3", port: 830, group: "core"),
        ])
    }

    @Test(arguments: [
        ("name,host\nr1,192.0.2.1\nr1,192.0.2.2\n", "inv.csv:3:1: device r1 is listed twice"),
        ("name,host,port\nr1,192.0.2.1,http\n", "inv.csv:2:14: expected a TCP port from 1 to 65535 for device r1, found \"http\""),
        ("name,address\nr1,192.0.2.1\n", "inv.csv:1:1: expected a \"host\" column in the header (name,host,port,group)"),
        ("name,host,group\nr1,192.0.2.1,edge\n", "inv.csv:2:1: device r1 is in group edge, which agent.conf does not define: add a [group edge] section (an empty one takes the [defaults])"),
        ("name,host\nr1,\"192.0.2.1\n", "inv.csv:2:4: expected a closing quote for the field opened here"),
        ("name,host\n\nr2\n", "inv.csv:3:1: expected a host (address or DNS name) for device r2"),
    ])
    func brokenInventoryLineIsReported(text: String, expected: String) {
        do {
            var config = AgentConfiguration()
            try config.addInventory(InventoryFile(path: "inv.csv", text: text))
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description == expected)
        }
    }

    /// What the error about an undefined group asks for is enough: an empty section.
    @Test func anEmptyGroupSectionTakesTheDefaults() throws {
        var config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: "[defaults]\nuser = care\nkey-file = /k\n[group edge]\n"))
        try config.addInventory(InventoryFile(path: "inv.csv", text: "name,host,group\nr1,192.0.2.1,edge\n"))
        #expect(config.devices.map(\.group) == ["edge"])
        #expect(config.groups["edge"]?.credentials.user == "care")
    }

    @Test func durations() {
        #expect(parseDuration("90") == .seconds(90))
        #expect(parseDuration("1.5s") == .milliseconds(1500))
        #expect(parseDuration("500ms") == .milliseconds(500))
        #expect(parseDuration("5m") == .seconds(300))
        #expect(parseDuration("6h") == .seconds(21600))
        #expect(parseDuration("1d") == .seconds(86400))
        #expect(parseDuration("-1s") == nil)
        #expect(parseDuration("soon") == nil)
        // Beyond Int64 milliseconds: refused, not a trap (a SIGHUP with this must not stop the service).
        #expect(parseDuration("1e17") == nil)
        #expect(parseDuration("1e17d") == nil)
        #expect(parseDuration("inf") == nil)
    }

    @Test func credentialsComeFromFilesOrSystemdCredentials() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "s3cret-from-file\nignored second line\n".write(to: dir.appendingPathComponent("pw"), atomically: true, encoding: .utf8)
        try "s3cret-from-systemd\r\n".write(to: dir.appendingPathComponent("netconf-password"), atomically: true, encoding: .utf8)
        chmod(dir.appendingPathComponent("pw").path, 0o600)
        chmod(dir.appendingPathComponent("netconf-password").path, 0o400)
        let fromFile = try CredentialSource(user: "care", passwordFile: dir.appendingPathComponent("pw").path).resolve(group: "g")
        #expect(fromFile.password == "s3cret-from-file")
        let fromSystemd = try CredentialSource(user: "care", passwordCredential: "netconf-password")
            .resolve(group: "g", environment: ["CREDENTIALS_DIRECTORY": dir.path])
        #expect(fromSystemd.password == "s3cret-from-systemd")
        #expect(throws: CredentialError.noCredentialsDirectory(group: "g", name: "netconf-password")) {
            try CredentialSource(user: "care", passwordCredential: "netconf-password").resolve(group: "g", environment: [:])
        }
        // systemd skips a credential whose /etc/credstore file does not exist: say where it goes.
        let keyFile = dir.appendingPathComponent("id_ed25519").path
        try "not read: the passphrase is missing first\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        chmod(keyFile, 0o600)
        #expect(throws: CredentialError.credentialNotLoaded(group: "g", name: "netconf-passphrase")) {
            try CredentialSource(user: "care", keyFile: keyFile, passphraseCredential: "netconf-passphrase")
                .resolve(group: "g", environment: ["CREDENTIALS_DIRECTORY": dir.path])
        }
        #expect(CredentialError.credentialNotLoaded(group: "g", name: "netconf-passphrase").description
            .contains("put the secret in /etc/credstore/netconf-passphrase (root, mode 0600) and restart care-agent"))
        var upload = UploadSettings()
        upload.tokenCredential = "upload-token"
        #expect(throws: UploadError("systemd passed no credential upload-token: put the token in /etc/credstore/upload-token "
            + "(root, mode 0600) and restart care-agent; a name the unit does not load needs LoadCredential=upload-token in a drop-in")) {
            try upload.token(environment: ["CREDENTIALS_DIRECTORY": dir.path])
        }
        #expect(throws: CredentialError.missing(group: "g", what: "key-file, password-file or password-credential")) {
            try CredentialSource(user: "care").resolve(group: "g")
        }
    }

    /// Issue 10: a secret other local users can read is refused, with the chmod that fixes it.
    @Test func secretFilesOthersCanReadAreRefused() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pw = dir.appendingPathComponent("pw").path, key = dir.appendingPathComponent("id_ed25519").path
        let token = dir.appendingPathComponent("token").path
        for path in [pw, key, token] { try "secret\n".write(toFile: path, atomically: true, encoding: .utf8) }
        for (mode, refused) in [(0o644, true), (0o640, true), (0o604, true), (0o600, false), (0o400, false)] as [(mode_t, Bool)] {
            for path in [pw, key, token] { chmod(path, mode) }
            let octal = String(format: "%04o", Int(mode))
            do {
                _ = try CredentialSource(user: "care", passwordFile: pw).resolve(group: "core")
                #expect(!refused, "password file mode \(octal) should be refused")
            } catch {
                #expect(refused)
                #expect("\(error)" == "group core: refusing the password file \(pw): its mode \(octal) lets other users read or change it; run: chmod 600 \(pw)")
            }
            do {
                _ = try CredentialSource(user: "care", keyFile: key).resolve(group: "core")
                #expect(!refused, "key file mode \(octal) should be refused")
            } catch {
                #expect(refused)
                #expect("\(error)".contains("refusing the private key file \(key): its mode \(octal)"))
                #expect("\(error)".hasSuffix("run: chmod 600 \(key)"))
            }
            var upload = UploadSettings(url: "https://support.example.net/bundles/")
            upload.tokenFile = token
            do {
                #expect(try upload.token() == "secret")
                #expect(!refused)
            } catch {
                #expect(refused)
                #expect("\(error)".contains("refusing the token file \(token): its mode \(octal)"), "\(error)")
            }
        }
        // Owned by someone else (root:care-agent 0640 for a care-agent user): only "others" bits count.
        #expect(SecretFile.Refusal(what: "password file", path: "/etc/p", mode: 0o644, ownedByUs: false).description
                == "refusing the password file /etc/p: its mode 0644 lets every local user read or change it; run: chmod o-rwx /etc/p")
        // The installed layout read by root (a standalone run with the service's configuration):
        // root:<the agent's group> 0640 passes, 0644 does not, root:root 0640 does not.
        if geteuid() == 0 {
            let key = dir.appendingPathComponent("installed-key").path
            try "key\n".write(toFile: key, atomically: true, encoding: .utf8)
            #expect(chown(key, 0, 65534) == 0 && chmod(key, 0o640) == 0)
            #expect(throws: Never.self) { try SecretFile.checkPermissions(key, what: "private key file") }
            chmod(key, 0o644)
            #expect(throws: SecretFile.Refusal.self) { try SecretFile.checkPermissions(key, what: "private key file") }
            #expect(chown(key, 0, 0) == 0 && chmod(key, 0o640) == 0)
            #expect(throws: SecretFile.Refusal.self) { try SecretFile.checkPermissions(key, what: "private key file") }
        }
    }
}

@Suite struct ScheduleTests {
    let calendar: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()

    func date(_ text: String) -> Date {
        let f = ISO8601DateFormatter()
        return f.date(from: text)!
    }

    @Test func intervalWithJitter() throws {
        let schedule = try Schedule(parsing: "every 6h")
        let now = date("2026-11-25T03:00:00Z")
        // First run: within the jitter of now.
        #expect(schedule.nextRun(after: now, lastRun: nil, jitter: .seconds(600), unit: 0.5, calendar: calendar) == now.addingTimeInterval(300))
        // Then every 6 h plus jitter after the last run.
        let last = date("2026-11-25T01:00:00Z")
        #expect(schedule.nextRun(after: now, lastRun: last, jitter: .seconds(600), unit: 0.25, calendar: calendar) == date("2026-11-25T07:02:30Z"))
        // Overdue (the agent was down): soon, not in a burst of missed runs.
        let longAgo = date("2026-11-20T00:00:00Z")
        let overdue = schedule.nextRun(after: now, lastRun: longAgo, jitter: .seconds(600), unit: 0.1, calendar: calendar)!
        #expect(overdue > now && overdue <= now.addingTimeInterval(600))
    }

    @Test func dailyWindow() throws {
        let schedule = try Schedule(parsing: "daily 02:00-04:00")
        // Before the window: inside today's window.
        #expect(schedule.nextRun(after: date("2026-11-25T01:00:00Z"), lastRun: nil, jitter: .zero, unit: 0.5, calendar: calendar) == date("2026-11-25T03:00:00Z"))
        // Inside the window, not yet run today: in what is left of it.
        #expect(schedule.nextRun(after: date("2026-11-25T03:00:00Z"), lastRun: date("2026-11-24T02:30:00Z"), jitter: .zero, unit: 0.5, calendar: calendar) == date("2026-11-25T03:30:00Z"))
        // Already ran in today's window: tomorrow's.
        #expect(schedule.nextRun(after: date("2026-11-25T03:00:00Z"), lastRun: date("2026-11-25T02:10:00Z"), jitter: .zero, unit: 0, calendar: calendar) == date("2026-11-26T02:00:00Z").addingTimeInterval(0.001))
        // A window across midnight.
        let night = try Schedule(parsing: "daily 23:00-01:00")
        #expect(night.nextRun(after: date("2026-11-25T12:00:00Z"), lastRun: nil, jitter: .zero, unit: 0.75, calendar: calendar) == date("2026-11-26T00:30:00Z"))
        #expect(try Schedule(parsing: "manual").nextRun(after: Date(), lastRun: nil, jitter: .zero, unit: 0, calendar: calendar) == nil)
    }
}

@Suite struct ConcurrencyLimitTests {
    @Test func neverMoreHoldersThanTheLimit() async throws {
        let limit = ConcurrencyLimit(limit: 3)
        let peak = Peak()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try? await limit.acquire()
                    await peak.enter()
                    try? await Task.sleep(for: .milliseconds(10))
                    await peak.leave()
                    await limit.release()
                }
            }
        }
        #expect(await peak.maximum == 3)
        #expect(await limit.inUse == 0)
    }

    @Test func cancelledWaiterLeavesTheQueue() async throws {
        let limit = ConcurrencyLimit(limit: 1)
        try await limit.acquire()
        let waiter = Task { try await limit.acquire() }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        await limit.release()
        // The slot is free again: the cancelled waiter did not take it.
        try await limit.acquire()
        #expect(await limit.inUse == 1)
    }
}

actor Peak {
    var current = 0
    var maximum = 0
    func enter() { current += 1; maximum = max(maximum, current) }
    func leave() { current -= 1 }
}

@Suite struct ExampleConfigurationTests {
    /// The shipped example must parse, and say what the defaults are.
    @Test func exampleParsesWithTheDocumentedValues() throws {
        let path = Fixtures.packageRoot.appendingPathComponent("agent.conf.example").path
        let config = try AgentConfiguration.load(path: path)
        let defaults = try #require(config.groups[AgentConfiguration.defaultGroup])
        let builtIn = GroupSettings(name: "default")
        #expect(defaults.port == builtIn.port)
        #expect(defaults.schedule == builtIn.schedule)
        #expect(defaults.jitter == builtIn.jitter)
        #expect(defaults.concurrency == builtIn.concurrency)
        #expect(defaults.connectTimeout == builtIn.connectTimeout)
        #expect(defaults.rpcTimeout == builtIn.rpcTimeout)
        #expect(defaults.deviceTimeout == builtIn.deviceTimeout)
        #expect(defaults.retries == builtIn.retries)
        #expect(defaults.retryBackoff == builtIn.retryBackoff)
        #expect(defaults.knownHosts == builtIn.knownHosts)
        #expect(defaults.hostKeyPolicy == builtIn.hostKeyPolicy)
        #expect(config.agent.concurrency == AgentSettings().concurrency)
        #expect(config.agent.outbox == AgentSettings().outbox)
        #expect(config.groups["core"]?.schedule == .daily(start: 120, end: 240))
        #expect(config.devices.map(\.name) == ["core-re1", "edge-sw1"])
    }

    /// Issue 13: `--concurrency 512` on the command line kept every group (those an inventory
    /// CSV creates included) at the default cap of 16.
    @Test func commandLineConcurrencyLiftsEveryGroupsCap() throws {
        var config = AgentConfiguration()
        #expect(config.groups[AgentConfiguration.defaultGroup]?.concurrency == 16)
        try config.addInventoryCreatingGroups(InventoryFile(path: "inv.csv", text: "name,host,group\nr1,192.0.2.1,edge\nr2,192.0.2.2,core\n"))
        var overrides = CommandLineOverrides()
        overrides.concurrency = 512
        config.apply(overrides)
        #expect(config.agent.concurrency == 512)
        #expect(Set(config.groups.keys) == [AgentConfiguration.defaultGroup, "edge", "core"])
        for (name, group) in config.groups { #expect(group.concurrency == 512, "group \(name)") }
    }

    @Test func maximumReplySizeIsReadWithUnits() throws {
        let config = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: """
        [defaults]
        maximum-reply-size = 256MiB
        [group big]
        maximum-reply-size = 1G
        """))
        #expect(config.groups[AgentConfiguration.defaultGroup]?.maximumReplySize == 256 << 20)
        #expect(config.groups["big"]?.maximumReplySize == 1 << 30)
        #expect(AgentConfiguration().groups[AgentConfiguration.defaultGroup]?.maximumReplySize == 32 << 20)
        #expect(throws: ConfigurationError.self) {
            try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: "[defaults]\nmaximum-reply-size = 12 parsecs\n"))
        }
        #expect(throws: ConfigurationError.self) {
            try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: "[defaults]\nmaximum-reply-size = 1KiB\n"))
        }
    }

    /// install.sh's first agent.conf: valid, no device, the login install.sh prepares.
    @Test func firstRunConfigurationIsValidAndEmpty() throws {
        let path = Fixtures.packageRoot.appendingPathComponent("systemd/agent.conf").path
        let config = try AgentConfiguration.load(path: path)
        #expect(config.devices.isEmpty)
        let defaults = try #require(config.groups[AgentConfiguration.defaultGroup])
        #expect(defaults.credentials.user == "care-agent")
        #expect(defaults.credentials.keyFile == "/etc/care-agent/id_ed25519")
        #expect(defaults.credentials.passwordCredential == nil)
        #expect(defaults.hostKeyPolicy == .strict)
        #expect(defaults.port == 830)
        // Uncommenting the password line gives the credential the unit loads.
        let text = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "# password-credential = netconf-password", with: "password-credential = netconf-password")
        let withPassword = try AgentConfiguration(file: ConfigurationFile(path: path, text: text))
        #expect(withPassword.groups[AgentConfiguration.defaultGroup]?.credentials.passwordCredential == "netconf-password")
        let unit = try String(contentsOf: Fixtures.packageRoot.appendingPathComponent("systemd/care-agent.service"), encoding: .utf8)
        #expect(unit.contains("\nLoadCredential=netconf-password\n"))
    }
}

/// ``DevicesInFlight``: one holder per device; an incident's collection takes over a device only
/// queued in another run, never one being collected or queued for another incident.
@Suite struct DevicesInFlightTests {
    @Test func onlyTheHolderStartsAndReleases() async throws {
        let flight = DevicesInFlight()
        guard case let .claimed(scheduled) = await flight.claim("r1") else { Issue.record("r1 was free"); return }
        #expect(await flight.claim("r1") == .busy(.queued))
        // An incident takes it over: the scheduled run may no longer start it, nor release it.
        guard case let .claimed(incident) = await flight.claim("r1", overtakingQueued: true) else { Issue.record("not taken over"); return }
        #expect(await flight.claim("r1", overtakingQueued: true) == .busy(.queued), "another incident's claim is not taken over")
        #expect(await !flight.start("r1", claim: scheduled))
        await flight.release("r1", claim: scheduled)
        #expect(await flight.current == ["r1"])
        #expect(await flight.start("r1", claim: incident))
        #expect(await flight.collecting == ["r1"])
        #expect(await flight.claim("r1", overtakingQueued: true) == .busy(.collecting), "a device being collected is never taken")
        await flight.release("r1", claim: incident)
        #expect(await flight.current.isEmpty)
    }

    /// An incident's takeover that never starts (its run cancelled) gives the device back to the
    /// run it took it from, which then collects it.
    @Test func aTakeoverThatNeverStartsGivesTheDeviceBack() async throws {
        let flight = DevicesInFlight()
        guard case let .claimed(scheduled) = await flight.claim("r1"),
              case let .claimed(incident) = await flight.claim("r1", overtakingQueued: true) else { Issue.record("not claimed"); return }
        await flight.release("r1", claim: incident)
        #expect(await flight.queued == ["r1"])
        #expect(await flight.start("r1", claim: scheduled))
        await flight.release("r1", claim: scheduled)
        #expect(await flight.current.isEmpty)
    }

    /// The run the device was taken from has given it up (its turn came: overtaken); the takeover
    /// then cancelled gives it back to nobody, and the device is free, not queued for good.
    @Test func aTakeoverCancelledAfterTheOriginalRunMovedOnFreesTheDevice() async throws {
        let flight = DevicesInFlight()
        guard case let .claimed(scheduled) = await flight.claim("r1"),
              case let .claimed(incident) = await flight.claim("r1", overtakingQueued: true) else { Issue.record("not claimed"); return }
        #expect(await !flight.start("r1", claim: scheduled))
        await flight.release("r1", claim: incident)
        #expect(await flight.current.isEmpty)
        guard case .claimed = await flight.claim("r1") else { Issue.record("r1 stayed held"); return }
    }
}
