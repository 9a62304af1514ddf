@testable import Agent
import Foundation
import Logging
import Testing
import TestSupport

/// NetBox 4.x through answers recorded from a real NetBox 4.7.3 (Tests/Fixtures/inventory/netbox,
/// README there: results/next/count paging, primary_ip4 with its prefix length, custom_fields,
/// platform {name, slug}) served on loopback by recorded-api.py, which checks the token as NetBox
/// does. The agent's real libcurl client reads them.
@Suite(.serialized) struct NetBoxSourceTests {
    static let token = "0123456789abcdef0123456789abcdef0123abcd"

    final class RecordedServer: @unchecked Sendable {
        let directory: URL
        let port: Int
        let process: ChildProcess
        var url: String { "http://127.0.0.1:\(port)" }
        var requests: [String] {
            ((try? String(contentsOf: directory.appendingPathComponent("requests.log"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("care-netbox-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for name in ["devices-offset-0.json", "devices-offset-2.json", "devices-offset-4.json"] {
                try FileManager.default.copyItem(at: Fixtures.url("inventory/netbox/" + name), to: directory.appendingPathComponent(name))
            }
            port = try SSHDHarness.freePort(on: "127.0.0.1")
            process = try ChildProcess("/usr/bin/python3", [Fixtures.url("inventory/netbox/recorded-api.py").path, "\(port)", directory.path, NetBoxSourceTests.token],
                                       stderr: directory.appendingPathComponent("server.err").path)
            try waitForListener(port: port, timeout: .seconds(20), process: process, name: "recorded NetBox API")
        }

        func mode(_ mode: String) throws { try mode.write(to: directory.appendingPathComponent("mode"), atomically: true, encoding: .utf8) }

        func stop() {
            process.signal(SIGTERM)
            process.wait()
        }

        deinit {
            stop()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    static func configuration(_ server: RecordedServer, state: URL, extra: String = "") throws -> AgentConfiguration {
        let tokenFile = state.appendingPathComponent("netbox.token").path
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile, 0o600)
        return try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: """
        [agent]
        state-directory = \(state.path)
        [group core]
        [inventory netbox]
        type = netbox
        url = \(server.url)/
        token-file = \(tokenFile)
        status = active
        page-size = 2
        \(extra)
        """))
    }

    @Test func readsEveryPageAndMapsDevices() throws {
        let server = try RecordedServer()
        let state = server.directory.appendingPathComponent("state")
        let configuration = try Self.configuration(server, state: state)
        let yield = try configuration.inventorySources[0].read().get()
        // Three pages followed through `next`, with the filter and the page size asked for.
        #expect(server.requests == [
            "/api/dcim/devices/?limit=2&status=active&exclude=config_context Token",
            // NetBox writes its next links with the parameters sorted.
            "/api/dcim/devices/?exclude=config_context&limit=2&offset=2&status=active Token",
            "/api/dcim/devices/?exclude=config_context&limit=2&offset=4&status=active Token",
        ])
        #expect(yield.entries.map(\.device) == [
            Device(name: "mx-core-01", host: "192.0.2.1", port: 830, group: "core", platform: "Junos"),
            // IPv6 when there is no primary IPv4; the prefix length dropped.
            Device(name: "mx-core-02", host: "2001:db8::2", group: "default", platform: "Junos"),
            // IPv4 preferred over IPv6.
            Device(name: "srx-edge-01", host: "198.51.100.3", port: 2830, group: "default", platform: "Junos"),
        ])
        #expect(yield.entries[0].origin == "\(server.url)/api/dcim/devices/1/")
        // Each skipped device is named with its URL and why; the source as a whole is fine.
        #expect(yield.skipped.count == 3)
        #expect(yield.skipped.contains { $0.contains("ex-no-ip") && $0.contains("/api/dcim/devices/4/") && $0.contains("no primary IPv4 or IPv6") })
        #expect(yield.skipped.contains { $0.contains("arista-01") && $0.contains("platform Arista EOS") })
        #expect(yield.skipped.contains { $0.contains("srx-bad-port") && $0.contains("netconf_port \"99999\"") })
    }

    /// Through a proxy that wants a login: from `proxy-credentials-file`; without it, the proxy's
    /// 407 is what the source reports.
    @Test func readsThroughAProxyThatWantsALogin() throws {
        let server = try RecordedServer()
        let state = server.directory.appendingPathComponent("state")
        let proxy = try TinyproxyHarness(directory: server.directory, connectPort: server.port, basicAuth: ("care", "Pr0xy-s3cret"))
        defer { proxy.stop() }
        let without = try Self.configuration(server, state: state, extra: "proxy = \(proxy.url)")
        guard case let .failure(refusal) = without.inventorySources[0].read() else {
            Issue.record("read through a proxy that wants a login, without one"); return
        }
        #expect(refusal.description.contains("407"), "\(refusal)")
        let credentials = state.appendingPathComponent("proxy-credentials").path
        try "care:Pr0xy-s3cret\n".write(toFile: credentials, atomically: true, encoding: .utf8)
        chmod(credentials, 0o600)
        let with = try Self.configuration(server, state: state, extra: "proxy = \(proxy.url)\nproxy-credentials-file = \(credentials)")
        let yield = try with.inventorySources[0].read().get()
        #expect(yield.entries.count == 3)
        #expect(proxy.log.contains("GET http://127.0.0.1:\(server.port)/api/dcim/devices/"), "\(proxy.log)")
    }

    @Test func refusedTokenGarbageAndHugeAnswersKeepTheLastGoodInventory() async throws {
        let server = try RecordedServer()
        let state = server.directory.appendingPathComponent("state")
        let configuration = try Self.configuration(server, state: state, extra: "maximum-response-size = 1MiB")
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger(label: "test"), makeSink: { _ in DirectorySink(root: state.path + "/out") })
        await runtime.refreshInventory(force: true)
        #expect(await runtime.configuration.devices.map(\.name) == ["mx-core-01", "mx-core-02", "srx-edge-01"])
        // Kept on disk, readable by its owner only.
        let kept = state.appendingPathComponent("inventory/netbox.json").path
        let attributes = try FileManager.default.attributesOfItem(atPath: kept)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        for (mode, expected) in [("garbage", "not JSON"), ("huge", "larger than 1048576 bytes")] {
            try server.mode(mode)
            await runtime.refreshInventory(force: true)
            let status = try #require(await runtime.inventoryStatus["netbox"])
            #expect(status.error?.contains(expected) == true, "\(mode): \(status.error ?? "no error")")
            #expect(status.devices == 3)
            #expect(await runtime.configuration.devices.count == 3)
        }
        try server.mode("")
        // A wrong token: NetBox's 403 and its detail, and still the last good inventory.
        try "nbt_wrong\n".write(toFile: state.appendingPathComponent("netbox.token").path, atomically: true, encoding: .utf8)
        chmod(state.appendingPathComponent("netbox.token").path, 0o600)
        await runtime.refreshInventory(force: true)
        let refused = try #require(await runtime.inventoryStatus["netbox"])
        #expect(refused.error?.contains("refused the API token (HTTP 403: Invalid v1 token)") == true)
        // A v2 token goes as a bearer token.
        #expect(server.requests.last?.hasSuffix(" Bearer") == true)
        #expect(await runtime.configuration.devices.count == 3)

        // Down, and the agent restarted: the fleet comes from the copy on disk at once.
        server.stop()
        let restarted = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger(label: "test"), makeSink: { _ in DirectorySink(root: state.path + "/out") })
        #expect(await restarted.configuration.devices.map(\.name) == ["mx-core-01", "mx-core-02", "srx-edge-01"])
        await restarted.refreshInventory(force: true)
        let down = try #require(await restarted.inventoryStatus["netbox"])
        #expect(down.error?.contains("cannot reach NetBox") == true)
        #expect(down.fromLastGood && down.devices == 3)
        #expect(await restarted.configuration.devices.count == 3)
    }

    @Test func nextOnAnotherHostIsNotFollowed() throws {
        var settings = SourceOfTruthSettings(url: "https://netbox.example.net")
        settings.tokenFile = "/nonexistent"
        var source = InventorySource(name: "nb", kind: .netbox(settings))
        source.maximumDevices = 10
        let client = SourceOfTruthClient(source: source)
        #expect(throws: InventorySourceError.self) { try client.sameServer("https://evil.example.org/api/dcim/devices/?offset=2").get() }
        // http:// written by a server behind a TLS proxy: the configured scheme is kept.
        #expect(try client.sameServer("http://netbox.example.net/api/dcim/devices/?limit=2&offset=2").get()
                == "https://netbox.example.net/api/dcim/devices/?limit=2&offset=2")
    }
}
