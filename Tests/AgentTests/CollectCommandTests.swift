import Agent
import Bundle
import Foundation
import Testing
import TestSupport

/// `care-agent collect now --standalone` as a user runs it: the built executable, real sshd.
@Suite(.serialized) struct CollectCommandTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func careAgent(_ arguments: [String], in dir: URL, program: String? = nil) throws -> Run {
        let out = dir.appendingPathComponent("stdout-\(UUID().uuidString.prefix(4))").path
        let err = dir.appendingPathComponent("stderr-\(UUID().uuidString.prefix(4))").path
        let child = try ChildProcess(try program ?? careAgentExecutable(), arguments, stdout: out, stderr: err)
        let status = child.wait()
        return Run(status: status, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    /// `config check` says whether the service could run with agent.conf: exit 0 for a good file,
    /// 2 with one line per problem (a public key file, a missing known_hosts under strict, a
    /// missing token, a file the service's user cannot read, a [reports] typo) otherwise.
    @Test func configCheckFindsWhatTheServiceWouldTripOn() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let d = dir.path
        try "key\n".write(toFile: d + "/key", atomically: true, encoding: .utf8)
        chmod(d + "/key", 0o644)
        let conf = d + "/agent.conf"
        func write(_ extra: String = "") throws {
            try """
            [agent]
            state-directory = \(d)/state
            outbox = \(d)/outbox
            [defaults]
            user = care
            key-file = \(d)/key
            known-hosts = \(d)/known_hosts
            [upload]
            url = https://support.example.net/bundles/
            \(extra)
            [reports]
            cpu-warning = 50
            [device r1]
            host = 192.0.2.1

            """.write(toFile: conf, atomically: true, encoding: .utf8)
        }
        try write("token-file = \(d)/missing-token")
        let bad = try careAgent(["config", "check", "--config", conf], in: dir)
        #expect(bad.status == 2, "\(bad.stdout)\(bad.stderr)")
        for line in ["[defaults] key-file \(d)/key: refusing the file \(d)/key: its mode 0644", "[defaults] known-hosts \(d)/known_hosts: missing: with host-key-policy = strict",
                     "[upload] token-file \(d)/missing-token: missing", "\(conf): 3 problems"] {
            #expect(bad.stderr.contains(line), "\(line): \(bad.stderr)")
        }
        chmod(d + "/key", 0o600)
        FileManager.default.createFile(atPath: d + "/known_hosts", contents: Data())
        try write()
        let good = try careAgent(["config", "check", "--config", conf], in: dir)
        #expect(good.status == 0 && good.stdout.contains("\(conf): good: 1 devices in 1 groups"), "\(good.stdout)\(good.stderr)")
        if geteuid() == 0 {
            // Root reads the 0600 key; the service's user (here nobody) could not.
            chmod(d, 0o755)
            let asService = try careAgent(["config", "check", "--config", conf, "--user", "nobody"], in: dir)
            #expect(asService.status == 2 && asService.stderr.contains("key-file \(d)/key: not readable by nobody, the service's user"), "\(asService.stderr)")
            // The service's own key with group bits: root may read it, the service refuses it.
            chown(d + "/key", 65534, 65534)
            chmod(d + "/key", 0o640)
            let owned = try careAgent(["config", "check", "--config", conf, "--user", "nobody"], in: dir)
            #expect(owned.status == 2 && owned.stderr.contains("nobody (the service) refuses it: its mode 0640"), "\(owned.stderr)")
            // Readable by it, in a directory it cannot enter.
            chmod(d + "/key", 0o600)
            chmod(d, 0o700)
            let hidden = try careAgent(["config", "check", "--config", conf, "--user", "nobody"], in: dir)
            #expect(hidden.status == 2 && hidden.stderr.contains("not reachable by nobody, the service's user: it cannot enter \(d)"), "\(hidden.stderr)")
            chmod(d, 0o755)
            chown(d + "/key", 0, 0)
        }
        // A group that takes the key from [defaults]: the problem is named where the value is written, once.
        chmod(d + "/key", 0o644)
        try write("[group core]\n[device r2]\nhost = 192.0.2.2\ngroup = core")
        let inherited = try careAgent(["config", "check", "--config", conf], in: dir)
        #expect(inherited.stderr.components(separatedBy: "[defaults] key-file \(d)/key: refusing").count == 2
            && !inherited.stderr.contains("[group core] key-file"), "\(inherited.stderr)")
        chmod(d + "/key", 0o600)
        // No user, and nothing to log in with: every device would fail; zero timeouts are refused.
        try """
        [agent]
        state-directory = \(d)/state
        outbox = \(d)/outbox
        inventory = fleet.csv
        [defaults]
        known-hosts = \(d)/known_hosts
        [device r1]
        host = 192.0.2.1

        """.write(toFile: conf, atomically: true, encoding: .utf8)
        try "name,host\nr2,192.0.2.2\n".write(toFile: d + "/fleet.csv", atomically: true, encoding: .utf8)
        let anonymous = try careAgent(["config", "check", "--config", conf], in: dir)
        #expect(anonymous.status == 2 && anonymous.stderr.contains("[defaults]: no user: every device of the group would fail")
            && anonymous.stderr.contains("[defaults]: nothing to log in with"), "\(anonymous.stderr)")
        if geteuid() == 0 {
            // The inventory CSV is checked as the service's user reads it too.
            chmod(d + "/fleet.csv", 0o600)
            let unreadable = try careAgent(["config", "check", "--config", conf, "--user", "nobody"], in: dir)
            #expect(unreadable.stderr.contains("[agent] inventory \(d)/fleet.csv: not readable by nobody"), "\(unreadable.stderr)")
        }
        try write("[group g]\nrpc-timeout = 0s")
        let zero = try careAgent(["config", "check", "--config", conf], in: dir)
        #expect(zero.status == 2 && zero.stderr.contains("expected a duration above zero"), "\(zero.stderr)")
        // A [reports] typo: found here, and `report health` says it the same way (exit 2).
        try write("[reports]\ncpu-warnng = 50")
        let typo = try careAgent(["config", "check", "--config", conf], in: dir)
        #expect(typo.status == 2 && typo.stderr.contains("\(conf):11:1: unknown key \"cpu-warnng\" in [reports]"), "\(typo.stderr)")
        let health = try careAgent(["report", "health", "--config", conf], in: dir)
        #expect(health.status == 2 && health.stderr.contains("\(conf):11:1: unknown key \"cpu-warnng\" in [reports]"), "\(health.stderr)")
    }

    /// Without the service: status says to start it, and only `collect now` suggests --standalone
    /// (status has no such option).
    @Test func unreachableServiceAdviceFitsTheCommand() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let socket = dir.path + "/control.sock"
        let status = try careAgent(["status", "--socket", socket], in: dir)
        #expect(status.status == 2 && status.stderr.contains("is care-agent running?") && !status.stderr.contains("--standalone"), "\(status.stderr)")
        let collect = try careAgent(["collect", "now", "--socket", socket], in: dir)
        #expect(collect.stderr.contains("or use --standalone"), "\(collect.stderr)")
    }

    /// --inventory with agent.conf treats the CSV as the service treats `inventory =`: a group
    /// agent.conf does not define is an error saying what to add; without agent.conf it is created.
    @Test func inventoryGroupsAgreeWithTheService() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let inventory = dir.appendingPathComponent("inventory.csv").path
        try "name,host,group\nr1,192.0.2.1,edge\n".write(toFile: inventory, atomically: true, encoding: .utf8)
        let conf = dir.appendingPathComponent("agent.conf").path
        try "[defaults]\nuser = care\nkey-file = /nonexistent\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let strict = try careAgent(["collect", "now", "--standalone", "--config", conf, "--inventory", inventory, "--device", "NONE"], in: dir)
        #expect(strict.status == 2)
        #expect(strict.stderr.contains("device r1 is in group edge, which agent.conf does not define: add a [group edge] section"), "\(strict.stderr)")
        // Without agent.conf: the group exists, and the selection error is about the device.
        let bare = try careAgent(["collect", "now", "--standalone", "--inventory", inventory, "--group", "edge", "--device", "NONE"], in: dir)
        #expect(bare.status == 2)
        #expect(bare.stderr.contains("no device NONE"), "\(bare.stderr)")
    }

    @Test func groupSelectsOnlyThatGroupAndFailuresSetTheExitStatus() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(fullProfile, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let closedPort = try SSHDHarness.freePort(on: "127.0.0.1")
        let csv = """
        name,host,port,group,site
        edge-1,\(h.addresses[0]),\(h.port),edge,Paris
        edge-2,\(h.addresses[0]),\(h.port),edge,Paris
        core-1,\(h.addresses[0]),\(h.port),core,Lyon
        gone-1,127.0.0.1,\(closedPort),gone,Nowhere

        """
        let inventory = dir.appendingPathComponent("inventory.csv").path
        try csv.write(toFile: inventory, atomically: true, encoding: .utf8)
        let common = ["collect", "now", "--standalone", "--inventory", inventory, "--user", h.user,
                      "--key", h.clientKeys["ed25519"]!, "--known-hosts", h.knownHostsPath,
                      "--state", dir.appendingPathComponent("state").path, "--timeout", "10"]

        let out = dir.appendingPathComponent("out").path
        let edge = try careAgent(common + ["--out", out, "--group", "edge", "--json"], in: dir)
        #expect(edge.status == 0, "\(edge.stderr)")
        let summaries = try JSONSerialization.jsonObject(with: Data(edge.stdout.utf8)) as? [[String: Any]]
        #expect(summaries?.map { $0["name"] as? String } == ["edge-1", "edge-2"])
        #expect(summaries?.allSatisfy { $0["status"] as? String == "ok" } == true)
        // Written a device at a time, byte for byte what JSONEncoder writes for the whole array.
        let decoded = try ResultStore.decoder.decode([DeviceSummary].self, from: Data(edge.stdout.utf8))
        #expect(edge.stdout == String(decoding: try ResultStore.encoder.encode(decoded), as: UTF8.self) + "\n")
        // Only that group's devices were touched: one signed bundle each.
        let bundles = try FileManager.default.contentsOfDirectory(atPath: out).filter(BundleFileName.isBundle)
        #expect(bundles.count == 2)
        let names = try bundles.map { try BundleReader().read(contentsOf: URL(fileURLWithPath: "\(out)/\($0)")).contents.device.name }
        #expect(names.sorted() == ["edge-1", "edge-2"])
        // Each summary names the bundle it wrote, for telling support which one to look at.
        #expect(Set(summaries?.compactMap { $0["bundle"] as? String } ?? []) == Set(bundles), "\(edge.stdout.prefix(400))")
        // And their last results are recorded for status/inventory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("state/results").path).sorted() == ["edge-1.json", "edge-2.json"])

        // A failed device: listed with its reason, exit status 1; plain progress lines (not a TTY).
        let mixed = try careAgent(common + ["--out", out, "--group", "gone", "--device", "core-1", "--device-timeout", "5"], in: dir)
        #expect(mixed.status == 1)
        #expect(mixed.stdout.contains("] ok core-1: "))
        #expect(mixed.stdout.contains("2 devices: 1 ok, 0 partial, 1 failed"), "\(mixed.stdout)")
        #expect(mixed.stdout.contains("  FAILED gone-1 (127.0.0.1:\(closedPort)): 127.0.0.1:\(closedPort): connection refused (nothing listens on port \(closedPort)"), "\(mixed.stdout)")

        let unknown = try careAgent(common + ["--group", "nope"], in: dir)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("no group nope; groups: core, default, edge, gone"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func progressBarOnATerminal() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try SSHDHarness.freePort(on: "127.0.0.1"), b = try SSHDHarness.freePort(on: "127.0.0.1")
        let inventory = dir.appendingPathComponent("inventory.csv").path
        try "name,host,port\nr-a,127.0.0.1,\(a)\nr-b,127.0.0.1,\(b)\n".write(toFile: inventory, atomically: true, encoding: .utf8)
        let key = dir.appendingPathComponent("key").path
        try runProgram("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
        let command = [try careAgentExecutable(), "collect", "now", "--standalone", "--inventory", inventory, "--user", "x",
                       "--key", key, "--known-hosts", "/dev/null", "--out", dir.appendingPathComponent("out").path,
                       "--state", dir.appendingPathComponent("state").path, "--device-timeout", "1"].joined(separator: " ")
        // script(1) gives the command a pseudo-terminal, as a user at a shell would.
        let run = try careAgent(["-qec", command, "/dev/null"], in: dir, program: "/usr/bin/script")
        #expect(run.status == 1)
        #expect(run.stdout.contains("\r\u{1B}[2K[##############################] 2/2 done, 2 failed"), "\(run.stdout)")
        #expect(run.stdout.contains("0/2 done, 0 failed | r-"))
        #expect(run.stdout.contains("FAILED r-a"))
        // No log lines through the bar.
        #expect(!run.stdout.contains("warning"))
    }

    @Test func helpNamesTheAgentCommandsAndEveryOption() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let top = try careAgent(["--help"], in: dir)
        for line in ["  run                     Run the agent as a service (systemd Type=notify).",
                     "  collect                 Collect devices on demand.",
                     "  status                  Show the agent's state and each device's last result.",
                     "  inventory               List the devices' model, serial and Junos version, or"] {
            #expect(top.stdout.contains(line), "\(top.stdout)")
        }
        let inventory = try careAgent(["inventory", "--help"], in: dir)
        #expect(inventory.stdout.contains("list (default)") && inventory.stdout.contains("sources "), "\(inventory.stdout)")
        let sources = try careAgent(["inventory", "sources", "--help"], in: dir)
        for option in ["--config <config>", "--source <source>", "--json"] { #expect(sources.stdout.contains(option)) }
        let help = try careAgent(["collect", "now", "--help"], in: dir)
        #expect(help.stdout.hasPrefix("OVERVIEW: Collect devices now and print a summary."))
        for option in ["--standalone", "--config <config>", "--inventory <inventory>", "--user <user>", "--key <key>",
                       "--passphrase-file", "--password-file", "--known-hosts", "--host-key-policy", "--out <out>",
                       "--state <state>", "--concurrency <concurrency>", "--timeout <timeout>", "--device-timeout",
                       "--group <group>", "--device <device>", "--json", "--directories", "--socket <socket>"] {
            #expect(help.stdout.contains("  \(option)"), "missing \(option)")
        }
        #expect(help.stdout.replacingOccurrences(of: "\n", with: " ").contains(
            "Exit status: 0 when no device failed (partial ones are listed), 1 when one or more failed, 2 for a configuration error "
                + "(or an option the service cannot honour), 64 for a usage error (an unknown option, a missing or invalid value)."),
            "\(help.stdout)")
    }

    @Test func brokenConfigurationIsRefusedWithItsLine() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("agent.conf").path
        try "[agent]\nconcurrency = 4\n\n[group core]\nschedule = every now and then\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let run = try careAgent(["collect", "now", "--standalone", "--config", conf], in: dir)
        #expect(run.status == 2)
        #expect(run.stderr.contains("\(conf):5:12: expected \"every DURATION\""), "\(run.stderr)")
    }

    @Test func optionsTheServiceCannotHonourAreRefusedWithoutStandalone() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try careAgent(["collect", "now", "--socket", "\(dir.path)/none.sock", "--user", "x", "--timeout", "5"], in: dir)
        #expect(run.status == 2)
        #expect(run.stderr.hasPrefix("care-agent: --user applies with --standalone only") || run.stderr.contains("--user applies with --standalone only"), "\(run.stderr)")
    }

    @Test func aHalfEditedConfigurationStillFindsTheService() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("agent.conf").path
        try "[agent]\nruntime-directory = \(dir.path)/run\nconcurrency = lots\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let run = try careAgent(["collect", "now", "--config", conf], in: dir)
        // The file's error is a note; the service is then looked for at the default socket.
        #expect(run.stderr.contains("note: \(conf):3:15: expected a positive whole number"), "\(run.stderr)")
        #expect(run.stderr.contains("asking the service at /run/care-agent/control.sock"), "\(run.stderr)")
    }
}
