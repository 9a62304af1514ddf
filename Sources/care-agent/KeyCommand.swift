import ArgumentParser
import Bundle
import Foundation

/// `care-agent key ...`: the agent's bundle-signing key.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Show the agent's Ed25519 bundle-signing key.",
        subcommands: [Show.self]
    )

    /// The agent's state directory when none is given.
    static let defaultStateDirectory = "/var/lib/care-agent"

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public key (base64) and its SHA256 fingerprint.",
            discussion: """
            Give the base64 line to support engineers: `care-agent bundle verify --pubkey KEY` (or a file \
            holding it in a --keys directory) then proves a bundle came from this agent.
            """
        )

        @Option(name: .customLong("state-dir"), help: "The agent's state directory.")
        var stateDirectory: String = KeyCommand.defaultStateDirectory

        @Flag(help: "Create the key when it does not exist yet (the agent does this on first start).")
        var create = false

        @Flag(help: "Also print the key as PEM, for checking a manifest with openssl.")
        var pem = false

        func run() throws {
            let directory = URL(fileURLWithPath: stateDirectory)
            let publicKey: AgentPublicKey
            do {
                publicKey = (create ? try AgentKey.loadOrCreate(stateDirectory: directory) : try AgentKey.load(stateDirectory: directory)).publicKey
            } catch .unreadable(let path, let reason) where !create {
                // The private key is the agent's alone; the service writes its public half beside it.
                do {
                    publicKey = try AgentKey.loadPublicKey(stateDirectory: directory)
                } catch {
                    FileHandle.standardError.write(Data("care-agent: cannot read agent key \(path): \(reason), nor its public half: \(error)\n".utf8))
                    throw ExitCode.failure
                }
            } catch {
                FileHandle.standardError.write(Data("care-agent: \(error)\n".utf8))
                throw ExitCode.failure
            }
            print("public key:  \(publicKey.base64)")
            print("fingerprint: \(publicKey.fingerprint)")
            if pem { print(publicKey.pem, terminator: "") }
        }
    }
}
