import Agent
import Foundation
import Testing
import TestSupport

/// `[inventory NAME]` sections of agent.conf: what each type takes, and errors that name the line.
@Suite struct InventoryConfigurationTests {
    func load(_ text: String) throws(ConfigurationError) -> AgentConfiguration {
        try AgentConfiguration(file: ConfigurationFile(path: "/etc/care-agent/agent.conf", text: text))
    }

    func error(_ text: String) -> String {
        do { _ = try load(text); return "no error" } catch { return error.description }
    }

    @Test func netboxAndNautobotSettings() throws {
        let configuration = try load("""
        [group core]
        [inventory netbox]
        type = netbox
        url = https://netbox.example.net/
        token-credential = netbox-token
        ca-file = netbox-ca.pem
        platform = junos, junos-evo
        status = active
        site = ams1
        tag = care-agent
        role = core-router
        tenant = noc
        filter = cf_care_agent=true
        page-size = 250
        refresh = 30m
        group = core
        port-field = netconf
        [inventory nautobot]
        type = nautobot
        url = https://nautobot.example.net
        token-file = /etc/care-agent/nautobot.token
        platform__network_driver = juniper_junos
        config-context = yes
        platforms = any
        """)
        let netbox = configuration.inventorySources[0]
        guard case let .netbox(settings) = netbox.kind else { Issue.record("not netbox"); return }
        #expect(settings.url == "https://netbox.example.net")
        #expect(settings.tokenCredential == "netbox-token")
        #expect(settings.caFile == "/etc/care-agent/netbox-ca.pem")
        #expect(settings.pageSize == 250)
        #expect(settings.portField == "netconf" && settings.groupField == "care_agent_group")
        #expect(netbox.refresh == .seconds(1800) && netbox.group == "core")
        let client = SourceOfTruthClient(source: netbox)
        #expect(client.firstPageURL == "https://netbox.example.net/api/dcim/devices/?limit=250&platform=junos&platform=junos-evo&status=active&site=ams1"
            + "&tag=care-agent&role=core-router&tenant=noc&cf_care_agent=true&exclude=config_context")
        guard case let .nautobot(nautobot) = configuration.inventorySources[1].kind else { Issue.record("not nautobot"); return }
        #expect(nautobot.platforms.isEmpty && nautobot.configContext)
        // platform__network_driver is applied by the agent: Nautobot's device list refuses it.
        #expect(SourceOfTruthClient(source: configuration.inventorySources[1]).firstPageURL
            == "https://nautobot.example.net/api/dcim/devices/?limit=100&depth=1&include=config_context")
        // Defaults: 15 minutes, the default group.
        #expect(configuration.inventorySources[1].refresh == .seconds(900))
        #expect(configuration.inventorySources[1].group == "default")
    }

    @Test func fileSources() throws {
        let configuration = try load("""
        [inventory ansible]
        type = ansible
        file = hosts.yml
        network-os = junos
        groups = core, edge
        [inventory oxidized]
        type = oxidized
        file = /etc/oxidized/router.db
        delimiter = |
        map = name:0, ip:1, model:2, group:3
        models = junos, junos-evo
        [inventory spreadsheet]
        type = csv
        file = devices.csv
        """)
        guard case let .ansible(ansible) = configuration.inventorySources[0].kind,
              case let .oxidized(oxidized) = configuration.inventorySources[1].kind,
              case let .csv(csv) = configuration.inventorySources[2].kind else { Issue.record("wrong kinds"); return }
        #expect(ansible.path == "/etc/care-agent/hosts.yml" && ansible.networkOS == ["junos"] && ansible.groups == ["core", "edge"])
        #expect(oxidized.delimiter == "|" && oxidized.fields == ["name": 0, "ip": 1, "model": 2, "group": 3] && oxidized.models == ["junos", "junos-evo"])
        #expect(csv == "/etc/care-agent/devices.csv")
    }

    @Test func errorsNameTheLine() {
        #expect(error("[inventory nb]\nurl = https://x\n") == "/etc/care-agent/agent.conf:1:1: [inventory nb] needs type = netbox, nautobot, csv, ansible or oxidized")
        #expect(error("[inventory nb]\ntype = librenms\n").contains("agent.conf:2:8: expected type = netbox"))
        #expect(error("[inventory nb]\ntype = netbox\nurl = https://x\n").contains("needs token-file or token-credential"))
        #expect(error("[inventory nb]\ntype = netbox\nurl = https://x\ntoken = abc\n").contains("agent.conf:4:1: clear-text secrets are refused"))
        #expect(error("[inventory nb]\ntype = netbox\nurl = https://u:p@x\ntoken-file = t\n").contains("without user:password@"))
        #expect(error("[inventory nb]\ntype = netbox\nurl = https://x\ntoken-file = t\ncolour = red\n").contains("agent.conf:5:1: unknown key \"colour\""))
        #expect(error("[inventory nb]\ntype = netbox\nurl = https://x\ntoken-file = t\npage-size = 0\n").contains("page size from 1 to 1000"))
        #expect(error("[inventory nb]\ntype = netbox\nurl = https://x\ntoken-file = t\nrefresh = 5s\n").contains("at least 1m"))
        #expect(error("[inventory x]\ntype = ansible\nfile = h\ngroup = nope\n").contains("group nope, which no [group nope] section defines"))
        #expect(error("[inventory ../etc]\ntype = csv\nfile = a\n").contains("expected an inventory name"))
        #expect(error("[inventory a]\ntype = csv\nfile = a\n[inventory a]\ntype = csv\nfile = b\n").contains("inventory a is already defined at /etc/care-agent/agent.conf:1"))
        #expect(error("[inventory o]\ntype = oxidized\nfile = r\nmap = model:1\n").contains("expected a name column"))
        #expect(error("[inventory o]\ntype = oxidized\nfile = r\nnetwork-os = junos\n").contains("unknown key \"network-os\""))
        #expect(error("[inventory nb]\ntype = netbox\nurl = https://x\ntoken-file = t\nproxy = ftp://p\n").contains("agent.conf:5:9: expected a proxy"))
        let secret = error("[inventory nb]\ntype = netbox\nurl = https://x\ntoken-file = t\nproxy = http://u:Hunter2@p:3128\n")
        #expect(secret.contains("agent.conf:5:1: clear-text secrets are refused") && !secret.contains("Hunter2"), "\(secret)")
    }

    /// The commented `[inventory ...]` examples of agent.conf.example, uncommented, are valid.
    @Test func exampleSectionsParse() throws {
        let example = try String(contentsOf: Fixtures.packageRoot.appendingPathComponent("agent.conf.example"), encoding: .utf8)
        let lines = example.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex(of: "# [inventory netbox]"))
        let block = lines[start...].prefix { !$0.hasPrefix("# Devices can be listed") }
            .map { $0.hasPrefix("# ") ? String($0.dropFirst(2)) : $0 == "#" ? "" : $0 }
        let configuration = try load("[group core]\n" + block.joined(separator: "\n"))
        #expect(configuration.inventorySources.map(\.kind.type) == ["netbox", "nautobot", "ansible", "oxidized"])
    }
}
