import ArgumentParser
import Bundle
import Foundation

@main
struct CareAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "care-agent",
        abstract: "Collects health snapshots from Junos devices over NETCONF and packages them as signed bundles.",
        version: AgentIdentity.careAgentVersion,
        subcommands: [RunCommand.self, CollectCommand.self, StatusCommand.self, EventsCommand.self, InventoryCommand.self, HostsCommand.self, RPCCommand.self, ParseCommand.self, RedactCommand.self, SimulateCommand.self, BundleCommand.self, ReportCommand.self, KeyCommand.self, BenchSessionsCommand.self]
    )

    /// Usage errors (an unknown option, a missing or invalid value) exit 2, as the commands'
    /// help and docs/agent.md say, like configuration errors; ArgumentParser's own is 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
