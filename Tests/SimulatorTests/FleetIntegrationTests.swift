import Foundation
@testable import Simulator
import Testing
import TestSupport

/// `care-agent simulate fleet` as a user runs it (a child process until SIGTERM), collected from
/// with the project's own NETCONF/SSH client (`care-agent rpc`), one client per device at once.
@Suite(.serialized) struct FleetIntegrationTests {
    struct RPCRun {
        var device: FleetDevice
        var process: ChildProcess
        var stdout: String
        var stderr: String
    }

    /// Seconds each RPC may take: the hung device's failure takes this long. Generous, because a
    /// debug build on a loaded two-core CI machine can take seconds to parse a large configuration.
    static let rpcTimeout = 8

    @Test func twentyDevicesFourFaultsEachFailureNamedAndHealthyDevicesAnswer() throws {
        let executable = try careAgentExecutable()
        let scratch = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let state = scratch.appendingPathComponent("state").path
        let fleetLog = scratch.appendingPathComponent("fleet.out").path
        let fleet = try ChildProcess(executable, [
            "simulate", "fleet", "--devices", "20", "--profiles", Fixtures.packageRoot.appendingPathComponent("profiles").path,
            "--state", state, "--faults", "hang:1,rpc-error:1,truncate:1,auth-fail:1", "--seed", "11", "--latency-ms", "20",
        ], stdout: fleetLog, stderr: fleetLog)
        // SIGTERM first: the fleet stops its sshd processes (a SIGKILL left them listening).
        defer { if fleet.isRunning { fleet.signal(SIGTERM); _ = waitUntil(.seconds(10)) { !fleet.isRunning }; if fleet.isRunning { fleet.signal(SIGKILL) }; fleet.wait() } }
        #expect(waitUntil(.seconds(30)) { FileManager.default.fileExists(atPath: state + "/ready") || !fleet.isRunning },
                "fleet not ready: \(readText(fleetLog))")
        try #require(fleet.isRunning, "simulate fleet exited: \(readText(fleetLog))")
        #expect(readText(fleetLog).contains("Simulated fleet: 20 devices on 127.0.1.1...127.0.1.20"))

        let plan = try FleetPlan.read(from: URL(fileURLWithPath: state + "/fleet.json"))
        #expect(plan.devices.count == 20 && plan.sshdCount == 2)
        #expect(Set(plan.devices.compactMap(\.fault)) == ["hang", "rpc-error", "truncate", "auth-fail"])
        let inventory = readText(state + "/inventory.csv").split(separator: "\n")
        #expect(inventory.count == 21 && inventory[0].hasPrefix("name,host,port,group"))
        #expect(readText(state + "/known_hosts").split(separator: "\n").count == 20)

        // One `care-agent rpc` per device, all at once; the hung device's timeout bounds them.
        var runs: [RPCRun] = []
        for device in plan.devices {
            let out = scratch.appendingPathComponent("\(device.name).out").path, err = scratch.appendingPathComponent("\(device.name).err").path
            let process = try ChildProcess(executable, [
                "rpc", "--host", device.address, "--port", String(device.port), "--user", plan.user,
                "--key", state + "/client_ed25519", "--known-hosts", state + "/known_hosts",
                "--timeout", String(Self.rpcTimeout), "--connect-timeout", "10", "get-software-information", "get-chassis-inventory",
            ], stdout: out, stderr: err)
            runs.append(RPCRun(device: device, process: process, stdout: out, stderr: err))
        }
        #expect(waitUntil(.seconds(60)) { runs.allSatisfy { !$0.process.isRunning } }, "care-agent rpc still running after 60 s")
        for run in runs where run.process.isRunning { run.process.signal(SIGKILL) }

        for run in runs {
            let status = run.process.wait(), out = readText(run.stdout), err = readText(run.stderr)
            let device = run.device, peer = "\(device.address):\(device.port)"
            switch device.fault {
            case nil:
                #expect(status == 0, "\(device.name): \(err)")
                #expect(XMLTextRewriter.values(of: "host-name", in: out).first == device.name)
                #expect(XMLTextRewriter.values(of: "serial-number", in: out).first == device.serialNumber)
            case "hang":
                #expect(status == 1)
                #expect(err == "care-agent: \(peer): no reply to get-software-information within \(Self.rpcTimeout) s\n"
                    + "care-agent: \(peer): get-chassis-inventory: not sent: the session was lost\n", "\(err)")
            case "rpc-error":
                #expect(status == 1)
                #expect(err.contains("care-agent: \(peer): get-software-information: could not connect to re0 : No route to host"), "\(err)")
                #expect(err.contains("care-agent: \(peer): get-chassis-inventory: could not connect to re0"), "\(err)")
            case "truncate":
                #expect(status == 1)
                #expect(err.hasPrefix("care-agent: \(peer): the device closed the session in the middle of the reply to get-software-information"), "\(err)")
            case "auth-fail":
                #expect(status == 2)
                #expect(err == "care-agent: \(peer): authentication failed for user \(plan.user) (server offered: publickey); tried: publickey\n" ||
                        err.hasPrefix("care-agent: \(peer): authentication failed for user \(plan.user)"), "\(err)")
            default:
                Issue.record("unexpected fault \(device.fault!)")
            }
        }
        // Host names and serials are distinct across the fleet.
        let healthy = runs.filter { $0.device.fault == nil }
        #expect(Set(healthy.compactMap { XMLTextRewriter.values(of: "host-name", in: readText($0.stdout)).first }).count == healthy.count)
        #expect(Set(healthy.compactMap { XMLTextRewriter.values(of: "serial-number", in: readText($0.stdout)).first }).count == healthy.count)

        // The key gives NETCONF and nothing else: a shell request gets the device's hello.
        let healthyDevice = try #require(plan.devices.first { $0.fault == nil })
        let shell = try runProgram("/usr/bin/ssh", [
            "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=\(state)/known_hosts", "-o", "StrictHostKeyChecking=yes",
            "-i", state + "/client_ed25519", "-p", String(plan.port), "\(plan.user)@\(healthyDevice.address)", "id",
        ])
        #expect(shell.hasPrefix("<?xml") && shell.contains("<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">"), "\(shell.prefix(200))")

        // SIGTERM stops the fleet: exit 0, every sshd gone, the ready marker removed.
        let sshdPIDs = (0..<plan.sshdCount).compactMap { Int32(readText("\(state)/sshd-\($0)/sshd.pid").trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(sshdPIDs.count == 2)
        fleet.signal(SIGTERM)
        #expect(waitUntil(.seconds(15)) { !fleet.isRunning }, "simulate fleet did not exit after SIGTERM")
        #expect(fleet.wait() == 0, "\(readText(fleetLog))")
        #expect(readText(fleetLog).contains("Simulated fleet stopped."))
        for pid in sshdPIDs { #expect(kill(pid, 0) != 0 && errno == ESRCH, "sshd \(pid) still running") }
        #expect(!FileManager.default.fileExists(atPath: state + "/ready"))
        #expect(!SimulatedFleet.canConnect(plan.devices[0].address, plan.port))
    }

    /// The demo's path: the agent's one-shot collection over the whole fleet.
    @Test func collectNowStandaloneClassifiesEveryFaultAndBundlesEveryHealthyDevice() throws {
        let executable = try careAgentExecutable()
        let scratch = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let fleet = try FleetProcess(executable: executable, devices: 14, in: scratch,
                                     arguments: ["--faults", "hang:1,rpc-error:1,truncate:1,auth-fail:1", "--seed", "5"])
        defer { fleet.stop() }
        let plan = try FleetPlan.read(from: URL(fileURLWithPath: fleet.state + "/fleet.json"))

        let out = scratch.appendingPathComponent("collect.json").path, err = scratch.appendingPathComponent("collect.err").path
        let bundles = scratch.appendingPathComponent("bundles").path
        let collect = try ChildProcess(executable, [
            "collect", "now", "--standalone", "--json"] + (try fleet.collectArguments()) + ["--out", bundles,
            "--state", scratch.appendingPathComponent("agent").path, "--timeout", String(Self.rpcTimeout),
        ], stdout: out, stderr: err)
        #expect(waitUntil(.seconds(90)) { !collect.isRunning }, "collect now still running after 90 s")
        if collect.isRunning { collect.signal(SIGKILL) }
        #expect(collect.wait() == 1, "some devices fail on purpose: \(readText(err).suffix(500))")

        struct DeviceResult: Decodable { var name: String; var status: String; var failure: String? }
        let results = try JSONDecoder().decode([DeviceResult].self, from: Data(readText(out).utf8))
        #expect(results.count == 14)
        let expectedFailure = ["hang": "timeout", "auth-fail": "authentication", "truncate": "session", "rpc-error": "rpc-errors"]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: bundles)) ?? []
        for device in plan.devices {
            let result = try #require(results.first { $0.name == device.name }, "\(device.name) missing from the results")
            if let fault = device.fault {
                #expect(result.status == "failed" && result.failure == expectedFailure[fault], "\(device.name) (\(fault)): \(result)")
            } else {
                #expect(result.status == "ok", "\(device.name): \(result)")
                // Bundles are named hostname-serial-time: each simulated device has its own.
                let serial = try #require(device.serialNumber)
                #expect(files.contains { $0.hasPrefix("\(device.name)-\(serial)-") && $0.hasSuffix(".tar.gz") }, "\(device.name): \(files)")
            }
        }
    }

    @Test func aProfilesDirectoryWithoutProfilesIsRefusedWithTheReason() throws {
        let scratch = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let empty = scratch.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let err = scratch.appendingPathComponent("err").path
        let fleet = try ChildProcess(try careAgentExecutable(), ["simulate", "fleet", "--devices", "2", "--profiles", empty.path,
                                                                "--state", scratch.appendingPathComponent("state").path], stderr: err)
        #expect(waitUntil(.seconds(20)) { !fleet.isRunning })
        #expect(fleet.wait() == 1)
        #expect(readText(err) == "care-agent: device profile \(empty.path): no profile directories (<name>/<rpc>.xml) in it\n")
    }
}
