import ArgumentParser
import Bundle
import Foundation
import Simulator

/// `care-agent simulate`: serve captured replies as Junos devices.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Serve captured replies as simulated Junos devices.",
        subcommands: [SimulateNETCONF.self, SimulateFleet.self, SimulateDevice.self]
    )
}

/// `care-agent simulate netconf`: one NETCONF session on stdin/stdout (OpenSSH's `Subsystem netconf`).
struct SimulateNETCONF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netconf",
        abstract: "Speak NETCONF on stdin/stdout as a Junos device, answering from a device profile.",
        discussion: """
        Give --profile DIR to serve one profile, or --fleet-state DIR to serve the device of a
        running `simulate fleet` that listens on the server address in SSH_CONNECTION.
        """
    )

    @Option(help: "Directory of <rpc-name>.xml captured replies.") var profile: String?
    @Option(help: "State directory of a running `simulate fleet`: serve the device sshd was reached on.") var fleetState: String?
    @Option(help: "Delay before each reply, in milliseconds.") var latencyMs: Int = 0
    @Option(help: "Delay before the hello (Junos takes 1-4 s to open a session), in milliseconds.") var setupDelayMs: Int = 0
    @Option(help: "Misbehave: \(DeviceFault.allCases.map(\.rawValue).joined(separator: ", ")).") var fault: String?
    @Option(help: "Highest NETCONF base version to offer: 1.1 (default) or 1.0.") var base: String = "1.1"

    func validate() throws {
        if (profile == nil) == (fleetState == nil) { throw ValidationError("give either --profile DIR or --fleet-state DIR") }
        if let fault, DeviceFault(rawValue: fault) == nil {
            throw ValidationError("unknown fault \(fault); one of \(DeviceFault.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if base != "1.0" && base != "1.1" { throw ValidationError("--base must be 1.0 or 1.1") }
    }

    func run() throws {
        var responder: NETCONFResponder
        if let fleetState {
            do {
                responder = try NETCONFResponder.forFleetSession(
                    stateDirectory: URL(fileURLWithPath: fleetState),
                    sshConnection: ProcessInfo.processInfo.environment["SSH_CONNECTION"])
            } catch {
                // sshd logs the subsystem's stderr nowhere useful; the client sees the channel close.
                Console.error("\(error)")
                throw ExitCode(1)
            }
        } else {
            let deviceProfile = try DeviceProfile(directory: URL(fileURLWithPath: profile!))
            responder = NETCONFResponder(
                profile: deviceProfile, fault: fault.flatMap(DeviceFault.init(rawValue:)),
                rpcLatency: .milliseconds(latencyMs), sessionSetupDelay: .milliseconds(setupDelayMs),
                offerBase11: base == "1.1")
        }
        responder.run()
    }
}

/// `care-agent simulate fleet`: many simulated devices behind real sshd instances, until Ctrl-C.
struct SimulateFleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Serve a fleet of simulated Junos devices over NETCONF/SSH until Ctrl-C or SIGTERM.",
        discussion: """
        Each device listens on its own loopback address (127.0.1.1, 127.0.1.2, ...) and the same
        port, behind real OpenSSH sshd processes (16 addresses each). Profiles are given round-robin.
        The state directory receives inventory.csv, known_hosts, the client key client_ed25519,
        fleet.json and one sshd-N directory per sshd; the file `ready` appears once every device
        accepts connections.

        --faults takes name:amount pairs: an amount below 1 is a fraction of the fleet, 1 or more a
        device count (hang:0.02,rpc-error:0.02,truncate:0.01,auth-fail:1,slow:0.05). Faults are
        \(FleetFault.allNames.joined(separator: ", ")).
        """
    )

    @Option(help: "Number of devices.") var devices: Int
    @Option(help: "Directory of device profiles (one <name>/ directory of <rpc>.xml files each).") var profiles: String
    @Option(help: "State directory for keys, configuration, inventory and logs.") var state: String
    @Option(help: "Delay before each reply, in milliseconds.") var latencyMs: Int = 0
    @Option(help: "Delay before each session's hello, in milliseconds.") var setupDelayMs: Int = 0
    @Option(help: "Faulty devices: name:fraction or name:count, comma-separated.") var faults: String = ""
    @Option(help: "Seed for picking the faulty devices.") var seed: UInt64 = 1
    @Option(help: "Port every device listens on (0: a free one).") var port: Int = 0
    @Option(help: "Account clients log in as (default: the current user).") var user: String?

    func validate() throws {
        if devices < 1 || devices > FleetPlan.maximumDevices { throw ValidationError("--devices must be between 1 and \(FleetPlan.maximumDevices)") }
        if latencyMs < 0 || setupDelayMs < 0 { throw ValidationError("delays cannot be negative") }
        if port < 0 || port > 65535 { throw ValidationError("--port must be 0-65535") }
        do { _ = try FaultMix(parsing: faults) } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        var options = SimulatedFleet.Options(
            deviceCount: devices, profilesDirectory: URL(fileURLWithPath: profiles), stateDirectory: URL(fileURLWithPath: state),
            user: user ?? SimulatorProcess.currentUserName(), subsystemCommand: [try SimulatorProcess.executablePath(), "simulate", "netconf"])
        options.relayPath = SimulatorProcess.relayPath()
        options.faults = try FaultMix(parsing: faults)
        options.seed = seed
        options.port = port
        options.rpcLatencyMs = latencyMs
        options.setupDelayMs = setupDelayMs
        FleetSignals.install()
        let fleet: SimulatedFleet
        do {
            fleet = try SimulatedFleet(options)
            try fleet.start()
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        Console.out(fleet.summary())
        var exitStatus: Int32 = 0
        while !FleetSignals.stopRequested {
            if let failure = fleet.deadSSHD() {
                Console.error("stopping the fleet: \(failure)")
                exitStatus = 1
                break
            }
            usleep(100_000)
        }
        fleet.stop()
        Console.out("Simulated fleet stopped.")
        if exitStatus != 0 { throw ExitCode(exitStatus) }
    }
}

/// `care-agent simulate device`: one device, from a profile or an extracted bundle, on 127.0.0.1.
struct SimulateDevice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Serve one device (a profile directory or an extracted bundle) over NETCONF/SSH until Ctrl-C.",
        discussion: """
        The device answers with its replies exactly as captured (host name and serial included),
        behind a generated sshd on 127.0.0.1. An extracted bundle is a directory holding raw/<rpc>.xml
        (tar -xzf BUNDLE -C DIR).
        """
    )

    @Option(help: "Directory of <rpc-name>.xml captured replies.") var profile: String?
    @Option(help: "Extracted bundle directory (with raw/<rpc>.xml).") var bundleDir: String?
    @Option(help: "Port on 127.0.0.1 (0: a free one).") var port: Int = 0
    @Option(help: "State directory for keys and sshd files (default: a temporary one, removed at exit).") var state: String?
    @Option(help: "Delay before each reply, in milliseconds.") var latencyMs: Int = 0
    @Option(help: "Delay before each session's hello, in milliseconds.") var setupDelayMs: Int = 0
    @Option(help: "Account clients log in as (default: the current user).") var user: String?
    @OptionGroup var keys: TrustedKeys

    func validate() throws {
        if (profile == nil) == (bundleDir == nil) { throw ValidationError("give either --profile DIR or --bundle-dir DIR") }
        if port < 0 || port > 65535 { throw ValidationError("--port must be 0-65535") }
    }

    func run() throws {
        let deviceProfile: DeviceProfile
        do {
            if let bundleDir {
                // What is served is what was collected: the replies checked against the signed
                // manifest the directory holds (a reply edited after extraction is refused).
                let directory = URL(fileURLWithPath: bundleDir)
                if FileManager.default.fileExists(atPath: directory.appendingPathComponent("manifest.json").path) {
                    let trust = try keys.trust()
                    let (_, signer) = try BundleReader(trust: trust).verifyExtracted(directory: directory)
                    if case .embeddedKey = trust { Console.error(TrustedKeys.uncheckedWarning(bundleDir, signer: signer)) }
                } else {
                    Console.error("warning: \(bundleDir): no manifest.json: the replies are served unchecked (not known to be what was collected)")
                }
            }
            deviceProfile = try profile.map { try DeviceProfile(directory: URL(fileURLWithPath: $0)) }
                ?? DeviceProfile(bundleDirectory: URL(fileURLWithPath: bundleDir!))
        } catch let error as ValidationError {
            throw error
        } catch let error as BundleError {
            Console.error("\(bundleDir ?? ""): \(error)")
            throw ExitCode(1)
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        try SingleDeviceServer(profile: deviceProfile, port: port, state: state, user: user,
                               latencyMs: latencyMs, setupDelayMs: setupDelayMs).serveUntilSignalled()
    }
}

/// One device behind a generated sshd on 127.0.0.1 until SIGINT/SIGTERM: a one-device fleet that
/// keeps the captured identity. Shared by `simulate device` and `bundle serve`.
struct SingleDeviceServer {
    var profile: DeviceProfile
    var port: Int
    var state: String?
    var user: String?
    var latencyMs = 0
    var setupDelayMs = 0

    func serveUntilSignalled() throws {
        let loginUser = user ?? SimulatorProcess.currentUserName()
        let private_ = loginUser == SimulatorProcess.currentUserName()
        // The default state directory is made by mkdtemp: a fresh, unpredictable name, mode 0700,
        // so no other local user can pre-create it, plant a link in it or read the client key and
        // replies. The fleet lives in state/ below it (the simulator opens its own directory to
        // the login user; the private parent keeps everyone else out).
        let temporaryRoot: String?
        if state == nil {
            do { temporaryRoot = try PrivateDirectory.makeTemporary(prefix: "care-agent-device-") } catch {
                Console.error("\(error)")
                throw ExitCode(1)
            }
            // Another login account (--user) must be able to pass through to its files.
            if !private_ { chmod(temporaryRoot!, 0o711) }
        } else {
            temporaryRoot = nil
        }
        let stateDirectory = state.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: temporaryRoot!).appendingPathComponent("state")
        defer { if let temporaryRoot { try? FileManager.default.removeItem(atPath: temporaryRoot) } }
        FleetSignals.install()
        let fleet: SimulatedFleet
        do {
            let profiles = stateDirectory.appendingPathComponent("profiles")
            try? FileManager.default.removeItem(at: profiles)
            try profile.write(to: profiles.appendingPathComponent(safeName(profile.name)))
            var options = SimulatedFleet.Options(
                deviceCount: 1, profilesDirectory: profiles, stateDirectory: stateDirectory,
                user: user ?? SimulatorProcess.currentUserName(), subsystemCommand: [try SimulatorProcess.executablePath(), "simulate", "netconf"])
            options.relayPath = SimulatorProcess.relayPath()
            options.port = port
            options.addresses = ["127.0.0.1"]
            options.capturedIdentity = true
            options.rpcLatencyMs = latencyMs
            options.setupDelayMs = setupDelayMs
            fleet = try SimulatedFleet(options)
            // Served replies 0600, directories 0700: the login user is us, nobody else needs them.
            if private_ { try PrivateDirectory.restrict(stateDirectory.path) }
            try fleet.start()
            // start() adds sshd configurations, logs and the ready marker, with its own modes.
            if private_ { try PrivateDirectory.restrict(stateDirectory.path) }
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        let device = fleet.plan.devices[0]
        let replyNames = profile.replies.keys.sorted().map(TerminalText.escaped).joined(separator: ", ")
        Console.out("""
        Serving \(TerminalText.escaped(device.name)) (\(profile.replies.count) replies: \(replyNames))
          host:        \(device.address)
          port:        \(device.port)
          user:        \(fleet.plan.user)
          key:         \(fleet.clientKeyPath)
          known_hosts: \(fleet.knownHostsPath)
        Try: care-agent rpc --host \(device.address) --port \(device.port) --user \(fleet.plan.user) --key \(fleet.clientKeyPath) --known-hosts \(fleet.knownHostsPath) get-software-information
        Stop with Ctrl-C (or SIGTERM).
        """)
        var failed = false
        while !FleetSignals.stopRequested {
            if let failure = fleet.deadSSHD() {
                Console.error("stopping: \(failure)")
                failed = true
                break
            }
            usleep(100_000)
        }
        fleet.stop()
        if failed { throw ExitCode(1) }
    }

    /// A directory name from a device name (host names are safe; bundle-derived names may not be).
    private func safeName(_ name: String) -> String {
        let cleaned = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
        return cleaned.isEmpty || cleaned.hasPrefix(".") ? "device" : cleaned
    }
}

/// What the simulator commands need from the running process.
enum SimulatorProcess {
    /// The path of the running care-agent executable, for sshd's subsystem line.
    /// `care-netconf-relay` next to this executable (every `swift build` makes it), if present:
    /// the fleet then answers from its own process instead of a process per session.
    static func relayPath() -> String? {
        guard let me = try? executablePath() else { return nil }
        let relay = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("care-netconf-relay").path
        return FileManager.default.isExecutableFile(atPath: relay) ? relay : nil
    }

    static func executablePath() throws -> String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        let argv0 = CommandLine.arguments[0]
        if argv0.hasPrefix("/") { return argv0 }
        if argv0.contains("/") { return FileManager.default.currentDirectoryPath + "/" + argv0 }
        throw ValidationError("cannot tell where the care-agent executable is; run it by its path")
    }

    /// The login name of the user running us: the default account of a simulated fleet.
    static func currentUserName() -> String {
        if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return ProcessInfo.processInfo.environment["USER"] ?? "root"
    }
}

/// SIGINT and SIGTERM ask the fleet to stop; the main loop polls the flag and stops the sshd
/// processes itself (they lead their own process groups, so a terminal Ctrl-C reaches only us).
enum FleetSignals {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static var stopRequested: Bool { flag != 0 }

    static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { _ in FleetSignals.flag = 1 }
        }
        signal(SIGPIPE, SIG_IGN)
        // A parent that blocked these (a test runner, a service manager's helper) passes its mask
        // on through fork and exec: unblocked, or SIGTERM would never stop the simulator.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }
}

/// Directories only the current user may enter, for the simulator's keys and served replies.
enum PrivateDirectory {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A new directory under $TMPDIR (or /tmp) made by mkdtemp(3): unpredictable name, mode 0700,
    /// created atomically (never an existing path someone else prepared).
    static func makeTemporary(prefix: String) throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base.hasSuffix("/") ? String(base.dropLast()) : base)/\(prefix)XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw Failure(description: "cannot create a private temporary directory in \(base): \(String(cString: strerror(errno)))")
        }
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Makes every directory under `path` (itself included) 0700 and every file 0600, without
    /// following symbolic links.
    static func restrict(_ path: String) throws {
        var pending = [path]
        while let next = pending.popLast() {
            var info = stat()
            guard lstat(next, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                guard chmod(next, 0o700) == 0 else {
                    throw Failure(description: "cannot restrict \(next) to mode 0700: \(String(cString: strerror(errno)))")
                }
                let names = (try? FileManager.default.contentsOfDirectory(atPath: next)) ?? []
                pending += names.map { next + "/" + $0 }
            case S_IFREG:
                guard chmod(next, 0o600) == 0 else {
                    throw Failure(description: "cannot restrict \(next) to mode 0600: \(String(cString: strerror(errno)))")
                }
            default:
                continue
            }
        }
    }
}
