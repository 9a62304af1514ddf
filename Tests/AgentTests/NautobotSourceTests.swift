@testable import Agent
import Foundation
import Logging
import Testing
import TestSupport

/// A real Nautobot (``NautobotHarness``: PyPI nautobot on Debian's Python, PostgreSQL and
/// redis-server on loopback). The test builds the data through the REST API as a network team
/// would (manufacturer, device types, platforms, location, custom fields, devices with
/// interfaces and primary IPs), then reads it with the agent's inventory source: filters,
/// paging, a device going offline, a revoked token, the server stopped.
@Suite(.serialized) struct NautobotSourceTests {
    static func list(_ harness: NautobotHarness, _ path: String) throws -> [[String: Any]] {
        let (status, json) = try harness.api("GET", path)
        guard status == 200, let results = (json as? [String: Any])?["results"] as? [[String: Any]] else {
            throw HarnessError("GET \(path) answered \(status)")
        }
        return results
    }

    static func id(_ harness: NautobotHarness, _ path: String) throws -> String {
        guard let id = try list(harness, path).first?["id"] as? String else { throw HarnessError("nothing at \(path)") }
        return id
    }

    /// Devices named by `junos` (Junos, active), plus an EOS switch, a planned router, one
    /// without a primary IP and one whose port field is not a number.
    static func populate(_ n: NautobotHarness, junos: Int) throws -> [String: String] {
        let active = try id(n, "/api/extras/statuses/?name=Active")
        let global = try id(n, "/api/ipam/namespaces/?name=Global")
        let contentTypes = ["dcim.device"]
        let juniper = try n.create("/api/dcim/manufacturers/", ["name": "Juniper"])
        let arista = try n.create("/api/dcim/manufacturers/", ["name": "Arista"])
        let mx = try n.create("/api/dcim/device-types/", ["manufacturer": juniper, "model": "MX204"])
        let eosType = try n.create("/api/dcim/device-types/", ["manufacturer": arista, "model": "DCS-7050SX3"])
        let junosPlatform = try n.create("/api/dcim/platforms/", ["name": "Junos", "network_driver": "juniper_junos", "manufacturer": juniper])
        let eosPlatform = try n.create("/api/dcim/platforms/", ["name": "Arista EOS", "network_driver": "arista_eos", "manufacturer": arista])
        let siteType = try n.create("/api/dcim/location-types/", ["name": "Site", "content_types": contentTypes + ["ipam.prefix"]])
        let ams = try n.create("/api/dcim/locations/", ["name": "AMS1", "location_type": siteType, "status": active])
        let role = try n.create("/api/extras/roles/", ["name": "Core router", "content_types": contentTypes])
        _ = try n.create("/api/extras/custom-fields/", ["label": "NETCONF port", "key": "netconf_port", "type": "text", "content_types": contentTypes])
        _ = try n.create("/api/extras/custom-fields/", ["label": "care-agent group", "key": "care_agent_group", "type": "text", "content_types": contentTypes])
        _ = try n.create("/api/ipam/prefixes/", ["prefix": "192.0.2.0/24", "status": active, "type": "network"])
        _ = try n.create("/api/ipam/prefixes/", ["prefix": "2001:db8::/64", "status": active, "type": "network"])
        var devices: [String: String] = [:]
        func device(_ name: String, type: String, platform: String, status: String = active, address: String?, fields: [String: Any] = [:]) throws {
            let id = try n.create("/api/dcim/devices/", ["name": name, "device_type": type, "platform": platform, "role": role,
                                                          "location": ams, "status": status, "custom_fields": fields])
            devices[name] = id
            guard let address else { return }
            let interface = try n.create("/api/dcim/interfaces/", ["device": id, "name": "fxp0", "type": "1000base-t", "status": active])
            let ip = try n.create("/api/ipam/ip-addresses/", ["address": address, "status": active, "type": "host", "namespace": global])
            _ = try n.create("/api/ipam/ip-address-to-interface/", ["ip_address": ip, "interface": interface])
            let (patched, answer) = try n.api("PATCH", "/api/dcim/devices/\(id)/", body: [address.contains(":") ? "primary_ip6" : "primary_ip4": ip])
            guard patched == 200 else { throw HarnessError("PATCH primary IP of \(name): \(patched) \(answer.map { "\($0)" } ?? "")") }
        }
        for i in 1...junos {
            // One IPv6-only router; the others IPv4. A port and a group on the first.
            try device(String(format: "mx-%02d", i), type: mx, platform: junosPlatform,
                       address: i == 2 ? "2001:db8::2/64" : "192.0.2.\(i)/24",
                       fields: i == 1 ? ["netconf_port": "2830", "care_agent_group": "core"] : [:])
        }
        try device("arista-01", type: eosType, platform: eosPlatform, address: "192.0.2.200/24")
        let planned = try id(n, "/api/extras/statuses/?name=Planned")
        try device("mx-planned", type: mx, platform: junosPlatform, status: planned, address: "192.0.2.201/24")
        try device("mx-no-ip", type: mx, platform: junosPlatform, address: nil)
        try device("mx-bad-port", type: mx, platform: junosPlatform, address: "192.0.2.202/24", fields: ["netconf_port": "netconf"])
        return devices
    }

    @Test func realNautobotInventory() async throws {
        let nautobot = try NautobotHarness()
        defer { nautobot.stop() }
        let devices = try Self.populate(nautobot, junos: 12)
        // The agent's own token, provisioned as Nautobot does it (basic authentication).
        let (created, tokenAnswer) = try nautobot.api("POST", "/api/users/tokens/", body: ["description": "care-agent", "write_enabled": false], basicAuth: true)
        let tokenObject = try #require(tokenAnswer as? [String: Any], "token creation answered \(created)")
        let token = try #require(tokenObject["key"] as? String)
        let tokenID = try #require(tokenObject["id"] as? String)

        let state = URL(fileURLWithPath: nautobot.directory).appendingPathComponent("agent")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let tokenFile = state.appendingPathComponent("nautobot.token").path
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile, 0o600)
        let configuration = try AgentConfiguration(file: ConfigurationFile(path: "agent.conf", text: """
        [agent]
        state-directory = \(state.path)
        [group core]
        [inventory nautobot]
        type = nautobot
        url = \(nautobot.url)
        token-file = \(tokenFile)
        status = Active
        platform__network_driver = juniper_junos
        location = AMS1
        page-size = 5
        """))
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger(label: "test"),
                                       makeSink: { _ in DirectorySink(root: state.path + "/out") })
        await runtime.refreshInventory(force: true)
        let status = try #require(await runtime.inventoryStatus["nautobot"])
        #expect(status.error == nil)
        let fleet = await runtime.configuration.devices
        // 15 devices pass the server's filters (status, location): the 12 routers, the EOS switch
        // (left out by platform__network_driver, not reported), the router without an IP and the
        // one with a bad port (both reported). The planned router is filtered by the server.
        #expect(fleet.map(\.name) == (1...12).map { String(format: "mx-%02d", $0) })
        try #require(fleet.count == 12)
        #expect(fleet[0] == Device(name: "mx-01", host: "192.0.2.1", port: 2830, group: "core", platform: "Junos"))
        #expect(fleet[1].host == "2001:db8::2")
        #expect(fleet[2] == Device(name: "mx-03", host: "192.0.2.3", group: "default", platform: "Junos"))
        // Paging followed to the end: three pages of 5, asked with the filters.
        let pages = nautobot.requestLog.filter { $0.contains("GET /api/dcim/devices/?") }
        #expect(pages.count == 3, "\(pages)")
        #expect(pages.first?.contains("GET /api/dcim/devices/?limit=5&status=Active&location=AMS1&depth=1 ") == true)
        #expect(pages.allSatisfy { $0.contains("limit=5") && $0.contains("status=Active") && $0.contains("\" 200 ") })
        #expect(pages.contains { $0.contains("offset=10") })
        #expect(status.skippedCount == 2)
        #expect(status.skipped.contains { $0.contains("mx-no-ip") && $0.contains(devices["mx-no-ip"]!) && $0.contains("no primary IPv4 or IPv6") })
        #expect(status.skipped.contains { $0.contains("mx-bad-port") && $0.contains("\"netconf\"") })

        // The team marks a router offline: at the next refresh it is no longer scheduled.
        let offline = try Self.id(nautobot, "/api/extras/statuses/?name=Offline")
        let (patched, _) = try nautobot.api("PATCH", "/api/dcim/devices/\(devices["mx-05"]!)/", body: ["status": offline])
        #expect(patched == 200)
        await runtime.refreshInventory(force: true)
        #expect(await runtime.configuration.devices.map(\.name).contains("mx-05") == false)
        #expect(await runtime.configuration.devices.count == 11)

        // Port and group from a config context (Nautobot renders it with include=config_context).
        let location = try Self.id(nautobot, "/api/dcim/locations/?name=AMS1")
        _ = try nautobot.create("/api/extras/config-contexts/", ["name": "care-agent", "weight": 1000, "locations": [location],
                                                                  "data": ["care_agent": ["port": 3830, "group": "core"]]])
        var withContext = configuration.inventorySources[0]
        guard case var .nautobot(settings) = withContext.kind else { Issue.record("not nautobot"); return }
        settings.configContext = true
        settings.portField = "care_agent.port"
        settings.groupField = "care_agent.group"
        withContext.kind = .nautobot(settings)
        let contextYield = try withContext.read().get()
        #expect(contextYield.entries.count == 12)
        #expect(contextYield.entries.allSatisfy { $0.device.port == 3830 && $0.device.group == "core" })

        // The token revoked: refused, and the last good inventory (11 devices) stays in force.
        let (deleted, _) = try nautobot.api("DELETE", "/api/users/tokens/\(tokenID)/", basicAuth: true)
        #expect(deleted == 204)
        await runtime.refreshInventory(force: true)
        let revoked = try #require(await runtime.inventoryStatus["nautobot"])
        #expect(revoked.error?.contains("refused the API token (HTTP 40") == true, "\(revoked.error ?? "no error")")
        #expect(await runtime.configuration.devices.count == 11)

        // The server stopped: unreachable, the last good inventory kept, in memory and on disk.
        nautobot.stopServer()
        await runtime.refreshInventory(force: true)
        let down = try #require(await runtime.inventoryStatus["nautobot"])
        #expect(down.error?.contains("cannot reach Nautobot") == true)
        #expect(await runtime.configuration.devices.count == 11)
        let restarted = try AgentRuntime(configuration: configuration, configurationPath: nil, logger: Logger(label: "test"),
                                         makeSink: { _ in DirectorySink(root: state.path + "/out") })
        #expect(await restarted.configuration.devices.count == 11)
    }
}
