import Foundation
import Junos
import Testing
import TestSupport
import XML

@Suite struct ChassisInventoryTests {
    static let rpc = "get-chassis-inventory"

    static func fixture(_ name: String) throws -> ChassisInventory {
        try ChassisInventory.parse(bytes: Fixtures.bytes("\(rpc)/\(name)"), rpc: rpc)
    }

    static func parse(_ xml: String) throws -> ChassisInventory {
        try ChassisInventory.parse(bytes: Array(xml.utf8), rpc: rpc)
    }

    @Test func mx480TreeKeepsEveryLevel() throws {
        let inv = try Self.fixture("pyez__mx480-15.1F5-mpc-optics.xml")
        #expect(inv.chassisSerial == "JN1249018AFB")
        #expect(inv.chassisDescription == "MX480")
        let chassis = try #require(inv.chassis.first)
        #expect(chassis.style == "inventory")
        #expect(chassis.member == nil)
        let re0 = try #require(chassis.modules.first { $0.name == "Routing Engine 0" })
        #expect(re0.cleiCode == "COUCATEBAA")
        #expect(re0.modelNumber == "RE-S-1800X4-32G-S")
        #expect(re0.version == "REV 01")
        let fpc0 = try #require(chassis.modules.first { $0.name == "FPC 0" })
        let pic0 = try #require(fpc0.children.first { $0.name == "PIC 0" })
        #expect(pic0.depth == 2)
        #expect(pic0.children.first?.depth == 3)

        let optic = try #require(inv.fru(identity: "FPC 0/PIC 0/Xcvr 0"))
        #expect(optic.partNumber == "740-031980")
        #expect(optic.serialNumber == "MSR0YWA")
        #expect(optic.description == "SFP+-10G-SR")
        #expect(optic.member == nil)
        #expect(inv.frus.count == 43)
        #expect(Set(inv.frus.map(\.identity)).count == inv.frus.count, "identities are unique")
    }

    @Test func modulesWithoutPartNumbersStillAppear() throws {
        let inv = try Self.fixture("pyez__vsrx-firefly-12.1X46.xml")
        #expect(inv.chassisDescription == "FIREFLY-PERIMETER")
        #expect(!inv.frus.isEmpty)
        #expect(inv.frus.allSatisfy { $0.partNumber == nil })
    }

    @Test func twoCapturesDiffBySlotIdentity() throws {
        let a = try Self.fixture("ksator__ex4200-48t-a.xml")
        let b = try Self.fixture("ksator__ex4200-48t-c.xml")
        #expect(a.frus.map(\.identity) == b.frus.map(\.identity))
        let swapped = zip(a.frus, b.frus).filter { $0.serialNumber != $1.serialNumber }.map(\.0.identity)
        #expect(swapped == ["Routing Engine 0", "FPC 0", "Power Supply 0"])
    }

    @Test func deeperLevelsDuplicateNamesAndWrappedMembers() throws {
        let xml = """
        <rpc-reply xmlns:junos="http://xml.juniper.net/junos/21.4R3/junos">
        <multi-routing-engine-results>
         <multi-routing-engine-item><re-name>node0</re-name>
          <chassis-inventory xmlns="http://xml.juniper.net/junos/21.4R3/junos-chassis">
           <chassis junos:style="inventory"><name>Chassis</name><serial-number> CZ001 </serial-number><description>SRX345</description>
            <chassis-module><name>FPC 0</name><part-number>750-1</part-number>
             <chassis-sub-module><name>PIC 0</name>
              <chassis-sub-sub-module><name>Xcvr 0</name>
               <chassis-sub-sub-sub-module><name>Lane 1</name><serial-number>L1</serial-number></chassis-sub-sub-sub-module>
              </chassis-sub-sub-module>
             </chassis-sub-module>
            </chassis-module>
            <chassis-module><name>Fan Tray</name><serial-number>F1</serial-number></chassis-module>
            <chassis-module><name>Fan Tray</name><serial-number>F2</serial-number></chassis-module>
            <chassis-module><serial-number>X</serial-number></chassis-module>
           </chassis>
          </chassis-inventory></multi-routing-engine-item>
         <multi-routing-engine-item><re-name>node1</re-name>
          <chassis-inventory><chassis><name>Chassis</name><serial-number>CZ002</serial-number>
            <chassis-module><name>FPC 0</name><part-number>750-1</part-number><serial-number>S2</serial-number></chassis-module>
            <chassis-module-count>1</chassis-module-count><chassis-subsub-module><name>not a module</name></chassis-subsub-module>
            <chassis-sub-modules><name>not a module</name></chassis-sub-modules>
          </chassis></chassis-inventory></multi-routing-engine-item>
        </multi-routing-engine-results></rpc-reply>
        """
        let inv = try Self.parse(xml)
        #expect(inv.chassis.map(\.member) == ["node0", "node1"])
        #expect(inv.chassis.map(\.serialNumber) == ["CZ001", "CZ002"])
        #expect(inv.chassisSerial == "CZ001")
        #expect(inv.frus.map(\.identity) == [
            "node0:FPC 0", "node0:FPC 0/PIC 0", "node0:FPC 0/PIC 0/Xcvr 0", "node0:FPC 0/PIC 0/Xcvr 0/Lane 1",
            "node0:Fan Tray", "node0:Fan Tray#2", "node0:?", "node1:FPC 0",
        ])
        #expect(inv.fru(identity: "node0:FPC 0/PIC 0/Xcvr 0/Lane 1")?.depth == 4)
        #expect(inv.fru(identity: "node0:FPC 0/PIC 0/Xcvr 0/Lane 1")?.serialNumber == "L1")
        #expect(inv.fru(identity: "node0:Fan Tray#2")?.serialNumber == "F2")
        #expect(inv.fru(identity: "node1:FPC 0")?.serialNumber == "S2")
        #expect(inv.frus.last?.member == "node1")
    }

    @Test func bareErrorElementIsATypedDeviceError() throws {
        do {
            _ = try Self.fixture("pyez__error-element.xml")
            Issue.record("an <error> reply parsed as inventory")
        } catch let JunosParseError.deviceError(rpc, messages) {
            #expect(rpc == Self.rpc)
            #expect(messages.map(\.message) == ["Some error message."])
            #expect(messages.first?.severity == .error)
        }
    }

    @Test func bareErrorWithoutWrapperAndXnmErrorsStillWork() throws {
        let bare = JunosReply(document: try XMLDocument(string: "<error>\n  boom \n</error>"))
        #expect(bare.errors.map(\.message) == ["boom"])
        #expect(bare.sections.isEmpty)
        let xnm = JunosReply(document: try XMLDocument(string: """
        <rpc-reply><xnm:error xmlns:xnm="http://xml.juniper.net/xnm/1.1/xnm"><message>bad</message></xnm:error></rpc-reply>
        """))
        #expect(xnm.errors.map(\.message) == ["bad"])
        // An <error> deep inside data is data, not a reply error.
        let nested = JunosReply(document: try XMLDocument(string: "<rpc-reply><chassis-inventory><error>x</error></chassis-inventory></rpc-reply>"))
        #expect(nested.errors.isEmpty)
        #expect(nested.sections.count == 1)
    }

    @Test func emptyInventoryParsesToNothing() throws {
        let inv = try Self.parse("<rpc-reply><chassis-inventory/></rpc-reply>")
        #expect(inv.chassis.isEmpty)
        #expect(inv.chassisSerial == nil)
        #expect(inv.frus.isEmpty)
    }

    @Test func roundTripsThroughJSON() throws {
        for url in try Fixtures.files(in: Self.rpc) where !url.lastPathComponent.contains("error") {
            let inv = try ChassisInventory.parse(bytes: Array(Data(contentsOf: url)), rpc: Self.rpc)
            let back = try JSONDecoder().decode(ChassisInventory.self, from: JSONEncoder().encode(inv))
            #expect(back == inv, "\(url.lastPathComponent)")
        }
    }

    @Test func twoChassisInOneSectionKeepDistinctIdentities() throws {
        let inv = try Self.parse("""
        <rpc-reply><chassis-inventory>
          <chassis><name>Chassis</name><serial-number>A1</serial-number>
            <chassis-module><name>FPC 0</name><serial-number>FA</serial-number></chassis-module></chassis>
          <chassis><name>Chassis</name><serial-number>B1</serial-number>
            <chassis-module><name>FPC 0</name><serial-number>FB</serial-number></chassis-module></chassis>
        </chassis-inventory></rpc-reply>
        """)
        #expect(inv.frus.map(\.identity) == ["FPC 0", "chassis#2/FPC 0"])
        #expect(inv.fru(identity: "chassis#2/FPC 0")?.serialNumber == "FB")
        #expect(Set(inv.frus.map(\.identity)).count == inv.frus.count)
    }

    // Shaped after PyEZ's vSRX capture: empty node items, the data in an item without a name, and
    // the serial on the Backplane module only.
    @Test func serialFromTheBackplaneWhenTheChassisHasNone() throws {
        let inv = try Self.parse("""
        <rpc-reply><multi-routing-engine-results>
          <multi-routing-engine-item><re-name>node0</re-name></multi-routing-engine-item>
          <multi-routing-engine-item><re-name>node1</re-name></multi-routing-engine-item>
          <multi-routing-engine-item><chassis-inventory><chassis><name>Chassis</name><description>VSRX</description>
            <chassis-module><name>Midplane</name></chassis-module>
            <chassis-module><name>Backplane</name><serial-number>123456789</serial-number></chassis-module>
          </chassis></chassis-inventory></multi-routing-engine-item>
        </multi-routing-engine-results></rpc-reply>
        """)
        #expect(inv.chassis.count == 1)
        #expect(inv.chassis.first?.serialNumber == nil)
        #expect(inv.chassisSerial == "123456789")
        #expect(inv.chassisDescription == "VSRX")
    }
}
