import Foundation
@testable import Simulator
import Testing
import TestSupport

/// Planning a fleet: addresses, profile and fault assignment, the fleet map sessions read.
@Suite struct FleetPlanTests {
    static let profiles = Fixtures.packageRoot.appendingPathComponent("profiles")

    func plan(_ count: Int, faults: String = "", seed: UInt64 = 1) throws -> FleetPlan {
        try FleetPlan.make(deviceCount: count, profiles: DeviceProfileSource.all(in: Self.profiles), faults: FaultMix(parsing: faults),
                           seed: seed, port: 8830, user: "netops", rpcLatencyMs: 5, setupDelayMs: 7)
    }

    @Test func addressesSkipNetworkAndBroadcastAndRollOverToTheNextSlash24() {
        #expect(FleetPlan.address(ofDeviceAt: 0) == "127.0.1.1")
        #expect(FleetPlan.address(ofDeviceAt: 253) == "127.0.1.254")
        #expect(FleetPlan.address(ofDeviceAt: 254) == "127.0.2.1")
        #expect(FleetPlan.address(ofDeviceAt: 507) == "127.0.2.254")
        #expect(FleetPlan.address(ofDeviceAt: FleetPlan.maximumDevices - 1) == "127.0.255.254")
    }

    @Test func faultMixTakesFractionsAndCounts() throws {
        let mix = try FaultMix(parsing: "hang:0.02, rpc-error:0.1,auth-fail:2,slow:0")
        let counts = mix.counts(fleetSize: 50)
        #expect(counts.map(\.fault) == [.device(.hang), .device(.rpcError), .authFail, .device(.slow)])
        #expect(counts.map(\.devices) == [1, 5, 2, 0])
        #expect(try FaultMix(parsing: "").entries.isEmpty)
    }

    @Test func faultMixRejectsWhatItCannotMean() {
        for bad in ["hang", "hang:x", "explode:0.1", "hang:-1", "hang:0.1,hang:0.2"] {
            #expect(throws: SimulatorError.self, "\(bad)") { _ = try FaultMix(parsing: bad) }
        }
        #expect(throws: SimulatorError.self) { _ = try plan(3, faults: "hang:2,auth-fail:2") }
    }

    @Test func sameSeedSameFleetAndFaultsLandWhereAsked() throws {
        let a = try plan(300, faults: "hang:0.02,rpc-error:0.02,truncate:0.01,auth-fail:0.01,slow:0.05", seed: 42)
        let b = try plan(300, faults: "hang:0.02,rpc-error:0.02,truncate:0.01,auth-fail:0.01,slow:0.05", seed: 42)
        let c = try plan(300, faults: "hang:0.02,rpc-error:0.02,truncate:0.01,auth-fail:0.01,slow:0.05", seed: 43)
        #expect(a == b)
        #expect(a.devices.map(\.fault) != c.devices.map(\.fault))
        var perFault: [String: Int] = [:]
        for device in a.devices { if let fault = device.fault { perFault[fault, default: 0] += 1 } }
        #expect(perFault == ["hang": 6, "rpc-error": 6, "truncate": 3, "auth-fail": 3, "slow": 15])
    }

    @Test func devicesAreDistinctAndGroupedSixteenPerSSHD() throws {
        let fleet = try plan(40)
        #expect(Set(fleet.devices.map(\.address)).count == 40)
        #expect(Set(fleet.devices.map(\.name)).count == 40)
        #expect(Set(fleet.devices.compactMap(\.serialNumber)).count == 40)
        #expect(fleet.sshdCount == 3)
        for group in 0..<3 { #expect(fleet.devices.filter { $0.sshd == group }.count <= FleetPlan.addressesPerSSHD) }
        // Round-robin over the profiles in name order.
        let names = try DeviceProfileSource.all(in: Self.profiles).map(\.name)
        #expect(fleet.devices.prefix(names.count).map(\.profile) == names)
        #expect(fleet.devices[0].name == "\(names[0])-01")
        #expect(fleet.devices[names.count].name == "\(names[0])-02")
    }

    @Test func sessionsFindTheirDeviceFromTheServerAddressInSSHConnection() throws {
        let fleet = try plan(20)
        #expect(fleet.device(sshConnection: "127.0.0.1 51234 127.0.1.7 8830")?.name == fleet.devices[6].name)
        #expect(fleet.device(sshConnection: "127.0.0.1 51234 127.0.1.7 22") == nil)
        #expect(fleet.device(sshConnection: "127.0.0.1 51234 127.0.9.9 8830") == nil)
        #expect(fleet.device(sshConnection: "garbage") == nil)
    }

    @Test func fleetMapRoundTripsAndInventoryHasTheAgentColumnsFirst() throws {
        let fleet = try plan(9, faults: "auth-fail:1")
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("fleet.json")
        try fleet.write(to: url)
        #expect(try FleetPlan.read(from: url) == fleet)
        let lines = fleet.inventoryCSV().split(separator: "\n")
        #expect(lines.first == "name,host,port,group,profile,fault")
        #expect(lines.count == 10)
        let faulty = try #require(fleet.devices.first { $0.fault != nil })
        #expect(lines.contains("\(faulty.name),\(faulty.address),8830,\(faulty.profile),\(faulty.profile),auth-fail"))
    }

    @Test func responderForAFleetSessionServesThatDevicesIdentityAndFault() throws {
        let fleet = try plan(10, faults: "rpc-error:1", seed: 3)
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try fleet.write(to: dir.appendingPathComponent(SimulatedFleet.fleetMapName))
        for device in fleet.devices {
            let responder = try NETCONFResponder.forFleetSession(stateDirectory: dir, sshConnection: "127.0.0.1 40000 \(device.address) 8830")
            #expect(responder.fault == (device.fault == nil ? nil : .rpcError))
            #expect(responder.rpcLatency == .milliseconds(5) && responder.sessionSetupDelay == .milliseconds(7))
            let software = try #require(responder.profile.replies["get-software-information"])
            #expect(XMLTextRewriter.values(of: "host-name", in: String(decoding: software, as: UTF8.self)).first == device.name)
        }
        #expect(throws: SimulatorError.self) {
            _ = try NETCONFResponder.forFleetSession(stateDirectory: dir, sshConnection: "127.0.0.1 40000 127.0.8.8 8830")
        }
        #expect(throws: SimulatorError.self) { _ = try NETCONFResponder.forFleetSession(stateDirectory: dir, sshConnection: nil) }
    }
}
