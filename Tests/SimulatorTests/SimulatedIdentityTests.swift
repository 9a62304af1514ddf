import Foundation
@testable import Simulator
import Testing
import TestSupport

/// Per-device host names and serial numbers, so that bundles of one fleet can be told apart.
@Suite struct SimulatedIdentityTests {
    func profile(_ name: String) throws -> DeviceProfile {
        try DeviceProfile(directory: Fixtures.packageRoot.appendingPathComponent("profiles/\(name)"))
    }

    func text(_ profile: DeviceProfile, _ rpc: String) -> String {
        String(decoding: profile.replies[rpc] ?? [], as: UTF8.self)
    }

    @Test func dualREHostNamesKeepOneNamePerRoutingEngine() throws {
        let mx = try profile("mx480")
        let captured = XMLTextRewriter.values(of: "host-name", in: text(mx, "get-software-information"))
        #expect(captured.count == 2 && captured[0] != captured[1])
        let served = mx.personalized(for: SimulatedIdentity(hostName: "mx480-07", serialNumber: "JN11F00A0007"))
        #expect(XMLTextRewriter.values(of: "host-name", in: text(served, "get-software-information")) == ["mx480-07", "mx480-07-re1"])
    }

    @Test func chassisSerialIsReplacedAndEveryOtherByteStaysAsCaptured() throws {
        let mx = try profile("mx480")
        let original = try #require(mx.chassisSerialNumber)
        let served = mx.personalized(for: SimulatedIdentity(hostName: "mx480-07", serialNumber: "JN11F00A0007"))
        #expect(served.chassisSerialNumber == "JN11F00A0007")
        let before = text(mx, "get-chassis-inventory"), after = text(served, "get-chassis-inventory")
        #expect(after.replacingOccurrences(of: ">JN11F00A0007<", with: ">\(original)<") == before)
        // Module serials are not the chassis's and stay.
        let serials = XMLTextRewriter.values(of: "serial-number", in: before)
        #expect(XMLTextRewriter.values(of: "serial-number", in: after).dropFirst() == serials.dropFirst())
        // A reply without host names or the serial is untouched.
        #expect(served.replies["get-environment-information"] == mx.replies["get-environment-information"])
        #expect(served.malformedReplies().isEmpty)
    }

    @Test func configurationHostNameFollowsTheDevice() throws {
        let ex = try profile("ex4200")
        #expect(!XMLTextRewriter.values(of: "host-name", in: text(ex, "get-configuration")).isEmpty)
        let served = ex.personalized(for: SimulatedIdentity(hostName: "access-12"))
        #expect(Set(XMLTextRewriter.values(of: "host-name", in: text(served, "get-configuration"))) == ["access-12"])
        // Without a new serial the inventory keeps the captured one.
        #expect(served.chassisSerialNumber == ex.chassisSerialNumber)
    }

    @Test func serialNumbersKeepTheCapturedShape() {
        #expect(SimulatedIdentity.serialNumber(from: "JN11F00AAFRB", device: 7) == "JN11F00A0007")
        #expect(SimulatedIdentity.serialNumber(from: "P5610", device: 12) == "P0012")
        #expect(SimulatedIdentity.serialNumber(from: "AB", device: 3) == "AB-0003")
    }

    @Test func rewriterLeavesElementsWithChildrenAndOtherNamesAlone() {
        let xml = "<a><host-name>x</host-name><host-names>y</host-names><host-name><b/>z</host-name><host-name>\n  x \n</host-name></a>"
        #expect(XMLTextRewriter.replacingValues(of: ["host-name"], in: xml) { $0 == "x" ? "n&m" : nil }
            == "<a><host-name>n&amp;m</host-name><host-names>y</host-names><host-name><b/>z</host-name><host-name>n&amp;m</host-name></a>")
    }
}
