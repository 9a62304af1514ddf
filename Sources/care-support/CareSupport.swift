import ArgumentParser
import Bundle
import ConfigurationSyntax
import Foundation
import Logging
import SupportServer
import SupportStore

/// The support side: receives, verifies and stores bundles for many customers.
@main
struct CareSupport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "care-support",
        abstract: "Receive, verify and store care-agent bundles for many customers.",
        subcommands: [ServeCommand.self, CustomerCommand.self, TokenCommand.self, AgentCommand.self, CertificateCommand.self,
                      DatabaseCommand.self, DevicesCommand.self, BundlesCommand.self, BundleCommand.self, CasesCommand.self, CaseCommand.self,
                      ReportCommand.self, NotifyCommand.self])

    /// Files this process creates (database, bundle files) are not for other users; failures are
    /// one line, `care-support: MESSAGE`, exit status 1.
    static func main() async {
        umask(0o027)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            FileHandle.standardError.write(Data("care-support: \(failure.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// `--config FILE`, shared by every command.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "support.conf to use.")
    var config = "/etc/care-support/support.conf"

    func load() throws -> SupportConfiguration {
        do {
            return try SupportConfiguration(path: config)
        } catch {
            throw CommandFailure(error.description)
        }
    }

    /// The store of the configuration, migrated to this care-support's schema.
    func openStore(logger: Logger = Logger(label: "care-support")) async throws -> (SupportConfiguration, any SupportDatabase) {
        let configuration = try load()
        do {
            let database = try await configuration.store.database.open(logger: logger)
            do {
                try await database.migrate()
            } catch {
                await database.close()
                throw error
            }
            return (configuration, database)
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}

/// A failure printed as `care-support: MESSAGE`, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` with the store open, closing it afterwards; store errors become command failures.
func withStore<T>(_ options: ConfigOption, _ body: (SupportConfiguration, any SupportDatabase) async throws -> T) async throws -> T {
    let (configuration, database) = try await options.openStore()
    do {
        let result = try await body(configuration, database)
        await database.close()
        return result
    } catch let error as SupportStoreError {
        await database.close()
        throw CommandFailure(error.description)
    } catch {
        await database.close()
        throw error
    }
}

func printJSON<T: Encodable>(_ value: [T]) throws {
    guard !value.isEmpty else { return print("[]") }
    let data = try SupportJSON.encoder().encode(value)
    print(String(decoding: data, as: UTF8.self))
}

extension CommandFailure: LocalizedError {
    var errorDescription: String? { description }
}
