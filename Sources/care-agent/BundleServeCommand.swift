import ArgumentParser
import Bundle
import Foundation
import Simulator

/// `care-agent bundle serve`: replay the device a bundle was collected from, over NETCONF/SSH.
struct BundleServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a bundle's device (its raw replies) over NETCONF/SSH on 127.0.0.1 until Ctrl-C.",
        discussion: """
        The bundle is verified (hashes and signature: against --pubkey/--keys when given, else only \
        against its embedded key, with a warning), then each \
        raw/<rpc>.xml is served as the device's reply to <rpc>, exactly as stored (host name and \
        serial included), behind a generated sshd. RPCs the bundle holds no reply for get the \
        rpc-error Junos gives for an unknown RPC. Prints the host, port, user, key and known_hosts \
        to connect with.
        """
    )

    @Argument(help: "Bundle file (.tar.gz).") var file: String
    @Option(help: "Port on 127.0.0.1 (0: a free one).") var port: Int = 0
    @Option(help: "State directory for keys and sshd files (default: a temporary one, removed at exit).") var state: String?
    @Option(help: "Delay before each reply, in milliseconds.") var latencyMs: Int = 0
    @Option(help: "Delay before each session's hello, in milliseconds.") var setupDelayMs: Int = 0
    @Option(help: "Account clients log in as (default: the current user).") var user: String?
    @OptionGroup var trustedKeys: TrustedKeys

    func validate() throws {
        if port < 0 || port > 65535 { throw ValidationError("--port must be 0-65535") }
        if latencyMs < 0 || setupDelayMs < 0 { throw ValidationError("delays cannot be negative") }
    }

    func run() throws {
        let bundle = try BundleCommand.open(file, trust: try trustedKeys.trust(), decodesFacts: false)
        let profile: DeviceProfile
        do {
            let device = bundle.manifest.device
            profile = try DeviceProfile(name: device.hostname ?? device.name, bundleMembers: bundle.members.map { ($0.name, $0.bytes) })
        } catch {
            Console.error("\(file): \(error)")
            throw ExitCode(1)
        }
        try SingleDeviceServer(profile: profile, port: port, state: state, user: user,
                               latencyMs: latencyMs, setupDelayMs: setupDelayMs).serveUntilSignalled()
    }
}
