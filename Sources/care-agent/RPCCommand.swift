import Agent
import ArgumentParser
import Foundation
import NETCONF
import NETCONFSSH
import SSH

/// `care-agent rpc`: send RPCs to one device over one NETCONF session and print the replies.
struct RPCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc",
        abstract: "Send RPCs to a device over one NETCONF/SSH session and print each reply.",
        discussion: """
        Each RPC is a bare Junos RPC name (get-software-information), an XML element
        ('<get-configuration format="text"/>'), or a CLI command given with --command.
        Exit status is 0 only when every RPC succeeded; each failure is one line on stderr.
        """
    )

    @Option(help: "Device address or name.") var host: String
    @Option(help: "NETCONF port (Junos also serves netconf on 22).") var port: Int = 830
    @Option(help: "User name.") var user: String
    @Option(help: "Private key file (ed25519, ecdsa or rsa).") var key: String?
    @Option(help: "File holding the private key's passphrase.") var passphraseFile: String?
    @Option(help: "File holding the password (password and keyboard-interactive).") var passwordFile: String?
    @Option(help: "OpenSSH known_hosts file.") var knownHosts: String = FileManager.default.homeDirectoryForCurrentUser.path + "/.ssh/known_hosts"
    @Option(help: "strict (default) or accept-new (trust on first use).") var hostKeyPolicy: String = "strict"
    @Option(help: "Seconds to wait for each RPC's reply.") var timeout: Double = 60
    @Option(help: "Seconds for TCP connect, and again for SSH set-up.") var connectTimeout: Double = 15
    @Option(help: "Seconds of silence allowed while a reply is outstanding (default: only --timeout applies).") var idleTimeout: Double?
    @Option(help: "NETCONF base versions to offer: 1.1 (default, chunked framing when the device agrees) or 1.0.") var netconfBase: String = "1.1"
    @Option(name: .customLong("command"), help: "A Junos CLI command to run with XML output (repeatable).") var commands: [String] = []
    @Argument(help: "RPC names or XML elements.") var rpcs: [String] = []

    func validate() throws {
        if rpcs.isEmpty && commands.isEmpty { throw ValidationError("give at least one RPC or --command") }
        if key == nil && passwordFile == nil { throw ValidationError("give --key FILE or --password-file FILE") }
        if key != nil && passwordFile != nil { throw ValidationError("give either --key or --password-file, not both") }
        if HostKeyPolicy(rawValue: hostKeyPolicy) == nil { throw ValidationError("--host-key-policy must be strict or accept-new") }
        if netconfBase != "1.0" && netconfBase != "1.1" { throw ValidationError("--netconf-base must be 1.0 or 1.1") }
        if timeout <= 0 || connectTimeout <= 0 || (idleTimeout ?? 1) <= 0 { throw ValidationError("timeouts must be positive") }
    }

    func run() async throws {
        var requests: [RPCRequest] = []
        do {
            requests = try rpcs.map { try RPCRequest.parse($0) } + commands.map { RPCRequest.command($0) }
        } catch {
            throw ValidationError("\(error)")
        }
        if let key {
            do { try SecretFile.checkPermissions(key, what: "private key file") } catch { throw ValidationError("\(error)") }
        }
        let credentials = SSHCredentials(
            user: user, privateKeyPath: key,
            passphrase: try passphraseFile.map { try readSecret(file: $0, what: "passphrase") },
            password: try passwordFile.map { try readSecret(file: $0, what: "password") })
        var capabilities = [NETCONFNamespace.base10]
        if netconfBase == "1.1" { capabilities.append(NETCONFNamespace.base11) }
        let endpoint = DeviceEndpoint(
            host: host, port: port, credentials: credentials,
            hostKeyVerifier: HostKeyVerifier(knownHostsPath: knownHosts, policy: HostKeyPolicy(rawValue: hostKeyPolicy)!),
            sshTimeouts: SSHTimeouts(connect: .seconds(connectTimeout), authentication: .seconds(connectTimeout)),
            netconfTimeouts: NETCONFTimeouts(hello: .seconds(connectTimeout), rpc: .seconds(timeout), idle: idleTimeout.map { .seconds($0) }),
            capabilities: capabilities)
        let logger = Console.logger("care-agent.rpc")
        let client: NETCONFClient
        do {
            client = try await NETCONFClient.connect(to: endpoint, logger: logger)
        } catch {
            Console.error("\(error)")
            throw ExitCode(2)
        }
        var failures = 0
        for (index, request) in requests.enumerated() {
            do {
                let reply = try await client.rpc(request)
                Console.out(bytes: reply.raw + [0x0A])
                for warning in reply.warnings {
                    Console.error("\(host):\(port): \(request.name): warning: \(warning)")
                }
                if !reply.errors.isEmpty {
                    failures += 1
                    Console.error("\(host):\(port): \(request.name): " + reply.errors.map(\.description).joined(separator: "; "))
                }
            } catch {
                failures += 1
                Console.error("\(error)")
                // The session is torn down after a timeout or protocol error: say what was not sent.
                if error is NETCONFError || error is SSHError {
                    for skipped in requests.dropFirst(index + 1) {
                        failures += 1
                        Console.error("\(host):\(port): \(skipped.name): not sent: the session was lost")
                    }
                    break
                }
            }
        }
        await client.close()
        if failures > 0 { throw ExitCode(1) }
    }
}
