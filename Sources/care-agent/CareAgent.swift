import ArgumentParser
import Bundle

@main
struct CareAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "care-agent",
        abstract: "Collects health snapshots from Junos devices over NETCONF and packages them as signed bundles.",
        version: AgentIdentity.careAgentVersion,
        subcommands: [RunCommand.self, CollectCommand.self, StatusCommand.self, ConfigCommand.self, EventsCommand.self, InventoryCommand.self, HostsCommand.self, RPCCommand.self, ParseCommand.self, RedactCommand.self, SimulateCommand.self, BundleCommand.self, ReportCommand.self, KeyCommand.self, BenchSessionsCommand.self]
    )
}
