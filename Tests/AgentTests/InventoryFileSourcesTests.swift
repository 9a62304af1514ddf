@testable import Agent
import Foundation
import Testing
import TestSupport

/// Ansible inventories (INI and YAML), Oxidized router.db and CSV as `[inventory NAME]`
/// sources, read from realistic files in Tests/Fixtures/inventory.
@Suite struct InventoryFileSourcesTests {
    static func devices(_ yield: InventoryYield) -> [String: Device] {
        Dictionary(yield.entries.map { ($0.device.name, $0.device) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func ansibleINIEveryDocumentedForm() throws {
        let path = Fixtures.url("inventory/hosts.ini").path
        let yield = try AnsibleInventory(path: path).yield(source: "ansible", settings: AnsibleSettings(path: path), defaultGroup: "default")
        let d = Self.devices(yield)
        // Junos hosts only: the bastion (no network OS) and the EOS switch are left out.
        #expect(Set(d.keys) == ["mx-core-01", "mx-core-02", "srx-edge-01.example.net", "ex-acc-01.example.net", "ex-acc-02.example.net",
                                "ex-acc-03.example.net", "qfx-a", "qfx-b", "mx-old-01"])
        #expect(d["mx-core-01"] == Device(name: "mx-core-01", host: "192.0.2.1", group: "core"))
        // ansible_port on the host line, with a trailing comment.
        #expect(d["mx-core-02"]?.port == 2830)
        // host:port, and the host name is the address when there is no ansible_host.
        #expect(d["srx-edge-01.example.net"] == Device(name: "srx-edge-01.example.net", host: "srx-edge-01.example.net", port: 8300, group: "core"))
        // A range keeps its leading zeros; an alphabetic range; a quoted value.
        #expect(d["ex-acc-02.example.net"]?.host == "ex-acc-02.example.net")
        #expect(d["qfx-b"]?.host == "198.51.100.7")
        // A host variable wins over the parent group's ([core:vars]); ansible_network_os = junos.
        #expect(d["mx-old-01"] == Device(name: "mx-old-01", host: "203.0.113.10", group: "lab"))
        #expect(yield.entries.first { $0.device.name == "mx-core-01" }?.origin == "\(path):6")
        // Bad records are skipped with a message naming the device and the line; the rest stays.
        #expect(yield.skipped.contains { $0.contains("bad-port-01") && $0.contains("\(path):30") && $0.contains("netconf") })
        #expect(yield.skipped.contains { $0.contains("bad-range-[05:01]") && $0.contains("\(path):31") })
    }

    @Test func ansibleYAMLNestedChildrenAndVariables() throws {
        let path = Fixtures.url("inventory/hosts.yml").path
        let yield = try AnsibleInventory(path: path).yield(source: "yaml", settings: AnsibleSettings(path: path), defaultGroup: "default")
        let d = Self.devices(yield)
        #expect(Set(d.keys) == ["mx-core-01", "mx-core-02", "srx-edge-01.example.net", "ex-acc-01.example.net", "ex-acc-02.example.net",
                                "ex-acc-03.example.net", "vsrx-lab-01"])
        #expect(d["mx-core-01"] == Device(name: "mx-core-01", host: "192.0.2.1", group: "core"))
        #expect(d["mx-core-02"]?.port == 2830)
        // The nearer group's variable wins: edge over juniper; the host's own over both.
        #expect(d["srx-edge-01.example.net"] == Device(name: "srx-edge-01.example.net", host: "srx-edge-01.example.net", port: 8300, group: "edge"))
        #expect(d["ex-acc-03.example.net"]?.group == "edge")
        #expect(d["vsrx-lab-01"] == Device(name: "vsrx-lab-01", host: "2001:db8::10", port: 830, group: "lab"))
        #expect(yield.entries.first { $0.device.name == "mx-core-01" }?.origin == "\(path):17")
        #expect(yield.skipped.contains { $0.contains("bad-port-01") && $0.contains("99999") })
    }

    /// Ansible's documentation example: groups at the top level (no `all:`), a host in several
    /// groups, `children` making prod and test.
    @Test func ansibleYAMLTopLevelGroupsAsInTheDocs() throws {
        let text = """
        ungrouped:
          hosts:
            mail.example.com:
        webservers:
          hosts:
            foo.example.com:
            bar.example.com:
        dbservers:
          hosts:
            one.example.com:
            two.example.com:
            three.example.com:
        east:
          hosts:
            foo.example.com:
            one.example.com:
            two.example.com:
        west:
          hosts:
            bar.example.com:
            three.example.com:
        prod:
          children:
            east:
          vars:
            ansible_network_os: junos
        test:
          children:
            west:
        """
        var settings = AnsibleSettings(path: "docs.yaml")
        let inventory = try AnsibleInventory(path: "docs.yaml", text: text)
        // Junos only through prod's variable: the hosts of east.
        #expect(inventory.yield(source: "d", settings: settings, defaultGroup: "default").entries.map(\.device.name)
                == ["foo.example.com", "one.example.com", "two.example.com"])
        settings.networkOS = []
        settings.groups = ["test"]
        #expect(inventory.yield(source: "d", settings: settings, defaultGroup: "default").entries.map(\.device.name) == ["bar.example.com", "three.example.com"])
        settings.groups = []
        #expect(inventory.yield(source: "d", settings: settings, defaultGroup: "default").entries.count == 6)
    }

    @Test func ansibleGroupFilterAndAnyNetworkOS() throws {
        let path = Fixtures.url("inventory/hosts.ini").path
        var settings = AnsibleSettings(path: path)
        settings.groups = ["legacy"]
        #expect(Self.devices(try AnsibleInventory(path: path).yield(source: "a", settings: settings, defaultGroup: "default")).keys.sorted() == ["mx-old-01"])
        settings.groups = []
        settings.networkOS = []
        let all = Self.devices(try AnsibleInventory(path: path).yield(source: "a", settings: settings, defaultGroup: "default"))
        #expect(all["arista-01"] != nil && all["mgmt-bastion.example.net"]?.group == "default")
    }

    @Test func ansibleHostileInputStaysBounded() throws {
        // A range naming a million hosts, a cycle among children, an unterminated section.
        let text = """
        [big]
        r[0:999999] ansible_network_os=junos
        [a:children]
        b
        [b:children]
        a
        [b]
        ok ansible_network_os=junos
        [broken
        """
        let inventory = try AnsibleInventory(path: "hostile.ini", text: text)
        let yield = inventory.yield(source: "h", settings: AnsibleSettings(path: "hostile.ini"), defaultGroup: "default")
        #expect(yield.entries.map(\.device.name) == ["ok"])
        #expect(yield.skipped.contains { $0.contains("hostile.ini:2") && $0.contains("more than") })
        #expect(yield.skipped.contains { $0.contains("hostile.ini:9") })
        // YAML that is not an inventory fails the source with the file named.
        #expect(throws: InventorySourceError.self) { try AnsibleInventory(path: "x.yml", text: "- just\n- a list\n") }
        #expect(throws: InventorySourceError.self) { try AnsibleInventory(path: "x.yml", text: "all: {hosts: [unclosed\n") }
    }

    /// More groups than the cap: the hosts of the groups left out are named as skipped, not
    /// dropped silently (a read with nothing skipped is read whole); a YAML error quotes a few
    /// hundred characters of the line, not the line (a one-line JSON export made it 28 MB).
    @Test func ansibleGroupsOverTheCapAreSaidAndErrorsAreShort() throws {
        let groups = (0..<(AnsibleInventory.maximumGroups + 50)).map { "g\($0):\n  hosts:\n    r\($0):\n      ansible_network_os: junos\n" }
        let inventory = try AnsibleInventory(path: "many.yml", text: groups.joined())
        let yield = inventory.yield(source: "m", settings: AnsibleSettings(path: "many.yml"), defaultGroup: "default")
        let kept = yield.entries.count
        #expect(kept < AnsibleInventory.maximumGroups + 50)
        #expect(yield.skipped.count >= AnsibleInventory.maximumGroups + 50 - kept, "\(yield.skipped.prefix(3))")
        #expect(yield.skipped.allSatisfy { $0.contains("more than \(AnsibleInventory.maximumGroups) groups") })
        let oneLine = "{\"all\": {\"hosts\": {" + String(repeating: "\"r\": 1, ", count: 50_000) + "]}}"
        #expect { _ = try AnsibleInventory(path: "export.json.yml", text: oneLine) } throws: { error in
            "\(error)".count < 600 && "\(error)".contains("is not valid YAML")
        }
    }

    /// "Billion laughs": aliases nesting a list a billion entries wide, as host variables and as
    /// the children of groups. Read in bounded time; the hosts that are there are kept.
    @Test func ansibleYAMLAliasBombStaysBounded() throws {
        var text = "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in 1...9 { text += "x\(i): &x\(i) [" + Array(repeating: "*x\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        text += """
        all:
          children:
            junos:
              vars: {ansible_network_os: junos, bomb: *x9}
              hosts:
                r1: {ansible_host: 192.0.2.1, bomb: *x9}
              children: &kids
                a: {hosts: {r2: {ansible_network_os: junos}}}
            more:
              children: *kids

        """
        let clock = ContinuousClock()
        let start = clock.now
        let inventory = try AnsibleInventory(path: "bomb.yml", text: text)
        let yield = inventory.yield(source: "b", settings: AnsibleSettings(path: "bomb.yml"), defaultGroup: "default")
        #expect(yield.entries.map(\.device.name).sorted() == ["r1", "r2"])
        #expect(clock.now - start < .seconds(5))
    }

    @Test func ansibleRanges() throws {
        #expect(try AnsibleInventory.expand("r[01:03]", limit: 100).get() == ["r01", "r02", "r03"])
        #expect(try AnsibleInventory.expand("db-[a:c].example.net", limit: 100).get() == ["db-a.example.net", "db-b.example.net", "db-c.example.net"])
        #expect(try AnsibleInventory.expand("x[0:6:3]y[1:2]", limit: 100).get() == ["x0y1", "x0y2", "x3y1", "x3y2", "x6y1", "x6y2"])
    }

    @Test func oxidizedRouterDBWithFieldMapAndModelFilter() throws {
        let path = Fixtures.url("inventory/router.db").path
        var settings = RouterDBSettings(path: path)
        settings.fields = ["name": 0, "ip": 1, "model": 2, "group": 3]
        let yield = try RouterDB(path: path).yield(source: "oxidized", settings: settings, defaultGroup: "default")
        let d = Self.devices(yield)
        // Models compared without case (JunOS); eos and ios left out; a missing group column: the source's group.
        #expect(Set(d.keys) == ["mx-core-01", "mx-core-02", "srx-edge-01"])
        #expect(d["srx-edge-01"] == Device(name: "srx-edge-01", host: "192.0.2.3", group: "edge"))
        #expect(yield.entries.first?.origin == "\(path):2")
        #expect(yield.skipped.count == 1 && yield.skipped[0].contains("no-address") && yield.skipped[0].contains("\(path):9"))
        // Oxidized's default map (name:0 model:1): the name is the host.
        let defaults = RouterDB(path: "r.db", text: "core1:junos\nsw1:ios\n").yield(source: "o", settings: RouterDBSettings(path: "r.db"), defaultGroup: "default")
        #expect(defaults.entries.map(\.device) == [Device(name: "core1", host: "core1")])
    }

    @Test func oxidizedOtherDelimiterForIPv6AndPorts() throws {
        let path = Fixtures.url("inventory/router-pipe.db").path
        var settings = RouterDBSettings(path: path)
        settings.delimiter = "|"
        settings.fields = ["name": 0, "ip": 1, "model": 2, "port": 3]
        let yield = try RouterDB(path: path).yield(source: "v6", settings: settings, defaultGroup: "default")
        #expect(yield.entries.map(\.device) == [Device(name: "mx-v6-01", host: "2001:db8::1", port: 830),
                                                Device(name: "mx-v6-02", host: "2001:db8::2", port: 2830)])
        #expect(yield.skipped.count == 1 && yield.skipped[0].contains("mx-bad-port") && yield.skipped[0].contains("\"ssh\""))
    }

    @Test func sourcesFromAgentConfMergeWithDuplicatesReported() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("care-inv-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "name,host,port,group\nmx-core-01,10.0.0.1,,\ncsv-only,10.0.0.9,notaport,\ncsv-ok,10.0.0.8,,\n".write(to: dir.appendingPathComponent("devices.csv"), atomically: true, encoding: .utf8)
        let conf = """
        [agent]
        state-directory = \(dir.path)/state
        [group core]
        [group edge]
        [group lab]
        [device mx-core-02]
        host = 192.0.2.222
        [inventory ansible]
        type = ansible
        file = \(Fixtures.url("inventory/hosts.ini").path)
        [inventory spreadsheet]
        type = csv
        file = devices.csv
        group = edge
        """
        let path = dir.appendingPathComponent("agent.conf").path
        try conf.write(toFile: path, atomically: true, encoding: .utf8)
        let configuration = try AgentConfiguration.load(path: path)
        #expect(configuration.inventorySources.map(\.name) == ["ansible", "spreadsheet"])
        let yields = try configuration.inventorySources.map { try $0.read().get() }
        // A bad CSV row is skipped with its line; the rest of the file is used.
        #expect(yields[1].skipped.count == 1 && yields[1].skipped[0].contains("devices.csv:3") && yields[1].skipped[0].contains("device csv-only"))
        let fleet = FleetInventory(configuration: configuration, yields: yields)
        let byName = Dictionary(fleet.devices.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        // The [device] section came first and wins; the message names both places.
        #expect(byName["mx-core-02"]?.host == "192.0.2.222")
        #expect(fleet.problems.contains { $0.contains("mx-core-02") && $0.contains("agent.conf:6") && $0.contains("hosts.ini:7") })
        // Ansible before the CSV: its mx-core-01 wins, the CSV's is reported with its line.
        #expect(byName["mx-core-01"]?.host == "192.0.2.1")
        #expect(fleet.problems.contains { $0.contains("mx-core-01") && $0.contains("hosts.ini:6") && $0.contains("devices.csv:2") })
        #expect(byName["csv-ok"]?.group == "edge")
        #expect(fleet.devices.filter { $0.name == "mx-core-01" }.count == 1)
    }
}
