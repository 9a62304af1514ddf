import ArgumentParser
import Foundation
import Simulator

/// `care-agent simulate`: serve captured replies as Junos devices.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Serve captured replies as simulated Junos devices.",
        subcommands: [SimulateNETCONF.self]
    )
}

/// `care-agent simulate netconf`: one NETCONF session on stdin/stdout (OpenSSH's `Subsystem netconf`).
struct SimulateNETCONF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netconf",
        abstract: "Speak NETCONF on stdin/stdout as a Junos device, answering from a device profile."
    )

    @Option(help: "Directory of <rpc-name>.xml captured replies.") var profile: String
    @Option(help: "Delay before each reply, in milliseconds.") var latencyMs: Int = 0
    @Option(help: "Delay before the hello (Junos takes 1-4 s to open a session), in milliseconds.") var setupDelayMs: Int = 0
    @Option(help: "Misbehave: \(DeviceFault.allCases.map(\.rawValue).joined(separator: ", ")).") var fault: String?
    @Option(help: "Highest NETCONF base version to offer: 1.1 (default) or 1.0.") var base: String = "1.1"

    func validate() throws {
        if let fault, DeviceFault(rawValue: fault) == nil {
            throw ValidationError("unknown fault \(fault); one of \(DeviceFault.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if base != "1.0" && base != "1.1" { throw ValidationError("--base must be 1.0 or 1.1") }
    }

    func run() throws {
        let deviceProfile = try DeviceProfile(directory: URL(fileURLWithPath: profile))
        var responder = NETCONFResponder(
            profile: deviceProfile, fault: fault.flatMap(DeviceFault.init(rawValue:)),
            rpcLatency: .milliseconds(latencyMs), sessionSetupDelay: .milliseconds(setupDelayMs),
            offerBase11: base == "1.1")
        responder.run()
    }
}
