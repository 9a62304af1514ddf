import Agent
import Foundation
import Testing
import TestSupport

/// `care-agent run` with `[inventory NAME]` sources: the first refresh at start, SIGHUP reading
/// the sources again (a device that left is no longer in the fleet), a source gone keeping its
/// last good inventory with the failure in `status`, and `care-agent inventory sources`.
@Suite(.serialized) struct InventoryServiceTests {
    func careAgent(_ arguments: [String], dir: URL) throws -> (Int32, String, String) {
        let out = dir.appendingPathComponent("o-\(UUID().uuidString.prefix(4))").path
        let err = dir.appendingPathComponent("e-\(UUID().uuidString.prefix(4))").path
        let child = try ChildProcess(try careAgentExecutable(), arguments, stdout: out, stderr: err)
        let status = child.wait()
        return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    /// Asks `status --json` until `condition` holds (10 s at most).
    func status(_ socket: String, dir: URL, until condition: (AgentStatus) -> Bool) throws -> AgentStatus? {
        var last: AgentStatus?
        for _ in 0..<100 {
            let (_, out, _) = try careAgent(["status", "--socket", socket, "--json"], dir: dir)
            if let data = out.data(using: .utf8), let status = try? ResultStore.decoder.decode(AgentStatus.self, from: data) {
                last = status
                if condition(status) { return status }
            }
            usleep(100_000)
        }
        return last
    }

    @Test func sourcesRefreshOnHangupAndKeepTheLastGood() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let routerDB = dir.appendingPathComponent("router.db").path
        try "mx-core-01:192.0.2.1:junos:core\nmx-core-02:192.0.2.2:junos:core\nsw-01:192.0.2.9:ios:core\n".write(toFile: routerDB, atomically: true, encoding: .utf8)
        let conf = dir.appendingPathComponent("agent.conf").path
        try """
        [agent]
        outbox = \(dir.path)/outbox
        state-directory = \(dir.path)/state
        runtime-directory = \(dir.path)/run
        [group core]
        schedule = manual
        [device r1]
        host = 192.0.2.100
        group = core
        [inventory oxidized]
        type = oxidized
        file = router.db
        map = name:0, ip:1, model:2, group:3
        [inventory ansible]
        type = ansible
        file = \(Fixtures.url("inventory/hosts.yml").path)
        groups = core_routers
        """.write(toFile: conf, atomically: true, encoding: .utf8)

        // The dry run first: what each source yields, nothing collected.
        let (dryStatus, dryJSON, dryErr) = try careAgent(["inventory", "sources", "--config", conf, "--json"], dir: dir)
        #expect(dryStatus == 0, "\(dryErr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(dryJSON.utf8)) as? [String: Any])
        let sources = try #require(report["sources"] as? [[String: Any]])
        #expect(sources.map { $0["name"] as? String } == ["oxidized", "ansible"])
        #expect((sources[0]["devices"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["mx-core-01", "mx-core-02"])
        #expect((sources[1]["devices"] as? [[String: Any]])?.first?["origin"] as? String == Fixtures.url("inventory/hosts.yml").path + ":17")
        // The same two routers in both sources: the first source's are kept, the others reported.
        #expect((report["problems"] as? [String])?.filter { $0.contains("is defined twice") }.count == 2)
        #expect(report["devices"] as? Int == 3)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/state/inventory"), "the dry run keeps no inventory")
        let (_, dryText, _) = try careAgent(["inventory", "sources", "--config", conf], dir: dir)
        #expect(dryText.contains("inventory oxidized (oxidized \(routerDB)): 2 devices, 0 skipped"))
        #expect(dryText.contains("mx-core-01  192.0.2.1  -     core   -         \(routerDB):1"))

        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf], stderr: dir.appendingPathComponent("service.log").path)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        let socket = "\(dir.path)/run/control.sock"
        let started = try #require(try status(socket, dir: dir) { $0.inventory?.allSatisfy { $0.lastRefresh != nil } == true })
        #expect(started.devices == 3)
        #expect(started.inventory?.map(\.devices) == [2, 2])

        // mx-core-02 leaves router.db; SIGHUP reads the sources again.
        try "mx-core-01:192.0.2.1:junos:core\n".write(toFile: routerDB, atomically: true, encoding: .utf8)
        service.signal(SIGHUP)
        let reloaded = try #require(try status(socket, dir: dir) { $0.inventory?.first?.devices == 1 })
        // mx-core-02 now comes from the Ansible source (second), with its own address.
        #expect(reloaded.devices == 3)

        // The file gone: the source fails, its last good inventory stays, and status says so.
        try FileManager.default.removeItem(atPath: routerDB)
        service.signal(SIGHUP)
        let failed = try #require(try status(socket, dir: dir) { $0.inventory?.first?.error != nil })
        #expect(failed.inventory?.first?.devices == 1)
        #expect(failed.devices == 3)
        let (_, text, _) = try careAgent(["status", "--socket", socket], dir: dir)
        #expect(text.contains("inventory oxidized (oxidized \(routerDB)): 1 devices"), "\(text)")
        #expect(text.contains("LAST REFRESH FAILED: cannot read the router.db \(routerDB)"), "\(text)")
        #expect(text.contains("using the last good inventory of"))
        let log = (try? String(contentsOfFile: dir.appendingPathComponent("service.log").path, encoding: .utf8)) ?? ""
        #expect(log.contains("inventory source failed: keeping its last good inventory"))
        #expect(log.contains("device mx-core-01 is defined twice"))
        let (failedDry, _, _) = try careAgent(["inventory", "sources", "--config", conf], dir: dir)
        #expect(failedDry == 1)

        service.signal(SIGTERM)
        #expect(service.wait() == 0)
    }

    /// `collect now --standalone` collects the sources' devices as the service would.
    @Test func standaloneCollectionSelectsSourceDevices() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let password = dir.appendingPathComponent("pw").path
        try "pw\n".write(toFile: password, atomically: true, encoding: .utf8)
        chmod(password, 0o600)
        // Port 1 on loopback: refused at once, which is enough to see the device was selected.
        try "only-in-source:127.0.0.1:junos:1\n".write(to: dir.appendingPathComponent("r.db"), atomically: true, encoding: .utf8)
        let conf = dir.appendingPathComponent("agent.conf").path
        try """
        [agent]
        outbox = \(dir.path)/outbox
        state-directory = \(dir.path)/state
        [defaults]
        user = care
        password-file = \(password)
        retries = 0
        known-hosts = \(dir.path)/known_hosts
        [inventory ox]
        type = oxidized
        file = r.db
        map = name:0, ip:1, model:2, port:3
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let (status, out, err) = try careAgent(["collect", "now", "--standalone", "--config", conf, "--device", "only-in-source", "--json"], dir: dir)
        #expect(status == 1, "\(err)")
        let results = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]], "\(out) \(err)")
        #expect(results.map { $0["name"] as? String } == ["only-in-source"])
        #expect(results.first?["port"] as? Int == 1 && results.first?["failure"] as? String == "unreachable")
    }
}


/// A reload that removes a source, or points it at another file, drops that source's devices at
/// once; the other sources keep theirs while they are read again.
@Suite struct InventoryReloadTests {
    @Test func reloadDropsRemovedSources() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "a1:junos\na2:junos\n".write(to: dir.appendingPathComponent("a.db"), atomically: true, encoding: .utf8)
        try "b1:junos\n".write(to: dir.appendingPathComponent("b.db"), atomically: true, encoding: .utf8)
        try "c1:junos\nc2:junos\nc3:junos\n".write(to: dir.appendingPathComponent("c.db"), atomically: true, encoding: .utf8)
        let conf = dir.appendingPathComponent("agent.conf").path
        func write(_ sources: [(String, String)]) throws {
            try (["[agent]", "state-directory = \(dir.path)/state"] + sources.flatMap { ["[inventory \($0.0)]", "type = oxidized", "file = \($0.1)"] })
                .joined(separator: "\n").write(toFile: conf, atomically: true, encoding: .utf8)
        }
        try write([("a", "a.db"), ("b", "b.db")])
        let runtime = try AgentRuntime(configuration: try AgentConfiguration.load(path: conf), configurationPath: conf, logger: .init(label: "test"),
                                       makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        await runtime.refreshInventory(force: true)
        #expect(await runtime.configuration.devices.map(\.name) == ["a1", "a2", "b1"])
        // b removed, a pointed at another file: neither contributes until a is read again.
        try write([("a", "c.db")])
        #expect(await runtime.reload() == nil)
        // (The reload's own refresh runs in the background: c.db's devices may be there already.)
        #expect(Set(await runtime.configuration.devices.map(\.name)).isSubset(of: ["c1", "c2", "c3"]))
        #expect(await runtime.inventoryStatus.keys.sorted() == ["a"])
        await runtime.refreshInventory(force: true)
        #expect(await runtime.configuration.devices.map(\.name) == ["c1", "c2", "c3"])
    }

    /// A source that answers with no devices where it had some (a token that lost its rights, a
    /// filter typed wrong, an export cut short) keeps its last good inventory, on disk too, and
    /// says so; a file that cannot be read as one (a directory) is a failure, not "no devices".
    @Test func aSourceThatSuddenlyHasNoDevicesKeepsItsLastGood() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("r.db")
        try "a1:junos\na2:junos\n".write(to: db, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("hosts.d"), withIntermediateDirectories: true)
        let configuration = try AgentConfiguration(file: ConfigurationFile(path: dir.path + "/agent.conf", text: """
        [agent]
        state-directory = \(dir.path)/state
        [inventory r]
        type = oxidized
        file = r.db
        [inventory ansible]
        type = ansible
        file = hosts.d
        """))
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: .init(label: "test"),
                                       makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        await runtime.refreshInventory(force: true)
        #expect(await runtime.configuration.devices.map(\.name) == ["a1", "a2"])
        let ansible = await runtime.inventoryStatus["ansible"]
        #expect(ansible?.error?.contains("is not a regular file") == true, "\(String(describing: ansible))")
        try "".write(to: db, atomically: true, encoding: .utf8)
        await runtime.refreshInventory(force: true)
        #expect(await runtime.configuration.devices.map(\.name) == ["a1", "a2"])
        let status = await runtime.inventoryStatus["r"]
        #expect(status?.error?.contains("answered with no devices where it had 2") == true && status?.devices == 2, "\(String(describing: status))")
        // The kept inventory on disk is still the good one: a restart (another runtime) has it.
        let restarted = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: .init(label: "test"),
                                         makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        #expect(await restarted.configuration.devices.map(\.name) == ["a1", "a2"])
    }

    /// An inventory CSV over 32 MiB is refused, not read whole (80 MiB took 630 MB).
    @Test func anOversizedInventoryFileIsRefused() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = dir.appendingPathComponent("big.csv").path
        FileManager.default.createFile(atPath: csv, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: csv))
        try handle.write(contentsOf: Data("name,host\n".utf8))
        let row = Data(String(repeating: "r,192.0.2.1\n", count: 100_000).utf8)
        while try handle.offset() <= UInt64(InventoryFile.maximumFileSize) { try handle.write(contentsOf: row) }
        try handle.close()
        #expect { _ = try InventoryFile(path: csv) } throws: { "\($0)".contains("is larger than 32 MiB") }
    }

    /// Between SIGHUPs a source is read again only when its `refresh` interval has passed.
    @Test func refreshWaitsForTheInterval() async throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("r.db")
        try "a1:junos\n".write(to: db, atomically: true, encoding: .utf8)
        let configuration = try AgentConfiguration(file: ConfigurationFile(path: dir.path + "/agent.conf", text: """
        [agent]
        state-directory = \(dir.path)/state
        [inventory r]
        type = oxidized
        file = r.db
        refresh = 10m
        """))
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: .init(label: "test"),
                                       makeSink: { _ in DirectorySink(root: dir.path + "/out") })
        #expect(await runtime.nextInventoryRefresh() == .distantPast)
        await runtime.refreshInventory(force: false)
        let first = try #require(await runtime.inventoryStatus["r"]?.lastRefresh)
        let next = try #require(await runtime.nextInventoryRefresh())
        #expect(abs(next.timeIntervalSince(first) - 600) < 0.001)
        try "a1:junos\na2:junos\n".write(to: db, atomically: true, encoding: .utf8)
        await runtime.refreshInventory(force: false)
        #expect(await runtime.configuration.devices.map(\.name) == ["a1"], "not due yet")
        await runtime.refreshInventory(force: true)
        #expect(await runtime.configuration.devices.map(\.name) == ["a1", "a2"])
    }
}
